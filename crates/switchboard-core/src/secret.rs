//! Secrets and references to them. Configuration never holds a secret
//! inline: it holds a reference (`env:NAME`, `file:PATH`) that is resolved
//! when the secret is needed. A resolved secret is a [`Secret`], whose
//! `Debug` and `Display` print `****`, so it cannot reach a log line or an
//! error message by accident.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

use crate::masking::MASK;

/// A value that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The value itself, for the one place that must use it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

/// Where a secret is to be found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// An environment variable of the server.
    Env(String),
    /// A file (its content, without the final newline): e.g. a mounted
    /// Kubernetes or systemd credential.
    File(PathBuf),
}

/// A secret reference that is malformed or cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a secret must be a reference, `env:NAME` or `file:PATH`, never the secret itself")]
    NotAReference,
    #[error("secret reference `env:{0}`: the environment variable is not set")]
    MissingEnv(String),
    #[error("secret reference `file:{}`: {reason}", .path.display())]
    File { path: PathBuf, reason: String },
    #[error("secret reference `{0}` resolves to an empty value")]
    Empty(String),
}

impl SecretRef {
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        if let Some(name) = text.strip_prefix("env:").filter(|n| !n.is_empty()) {
            Ok(Self::Env(name.to_owned()))
        } else if let Some(path) = text.strip_prefix("file:").filter(|p| !p.is_empty()) {
            Ok(Self::File(PathBuf::from(path)))
        } else {
            Err(SecretError::NotAReference)
        }
    }

    /// Reads the secret now.
    pub fn resolve(&self) -> Result<Secret<String>, SecretError> {
        let value = match self {
            Self::Env(name) => {
                std::env::var(name).map_err(|_| SecretError::MissingEnv(name.clone()))?
            }
            Self::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| SecretError::File {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                text.strip_suffix('\n')
                    .map(|t| t.strip_suffix('\r').unwrap_or(t))
                    .unwrap_or(&text)
                    .to_owned()
            }
        };
        if value.is_empty() {
            return Err(SecretError::Empty(self.to_string()));
        }
        Ok(Secret(value))
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(name) => write!(f, "env:{name}"),
            Self::File(path) => write!(f, "file:{}", path.display()),
        }
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2".to_owned());
        assert_eq!(format!("{s} {s:?} {:?}", Some(&s)), "**** **** Some(****)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn references_parse_and_resolve() {
        assert_eq!(
            SecretRef::parse("env:X").unwrap(),
            SecretRef::Env("X".into())
        );
        assert_eq!(
            SecretRef::parse("hunter2").unwrap_err(),
            SecretError::NotAReference
        );
        assert_eq!(
            SecretRef::parse("env:").unwrap_err(),
            SecretError::NotAReference
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cr3t\n").unwrap();
        let r = SecretRef::parse(&format!("file:{}", path.display())).unwrap();
        assert_eq!(r.resolve().unwrap().expose(), "s3cr3t");
        std::fs::write(&path, "").unwrap();
        assert!(matches!(r.resolve(), Err(SecretError::Empty(_))));
        let missing = SecretRef::parse("env:SWITCHBOARD_TEST_SURELY_UNSET").unwrap();
        assert_eq!(
            missing.resolve().unwrap_err().to_string(),
            "secret reference `env:SWITCHBOARD_TEST_SURELY_UNSET`: the environment variable is not set"
        );
    }
}
