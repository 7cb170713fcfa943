//! API tokens: their scopes, their stored form and how a presented token is
//! turned into what is stored. A token is shown once, at creation; only the
//! SHA-256 of it is kept (tokens are 256 random bits, so a fast hash is
//! enough), and hashes are compared in constant time.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ids::{Principal, Timestamp};

/// Every token starts so, which makes them easy to find in leaked text.
pub const TOKEN_PREFIX: &str = "sb_";

/// What a token may be used for, beneath what policies allow its principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// See actions, executions, output.
    Read,
    /// Run and cancel executions.
    Run,
    /// Manage tokens, reload the catalog, read the audit log.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Run, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Run => "run",
            Self::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Parses `read,run`; an empty list is an error.
    pub fn parse_list(text: &str) -> Result<Vec<Scope>, String> {
        let mut scopes = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let scope = Self::parse(part)
                .ok_or_else(|| format!("unknown scope `{part}` (scopes: read, run, admin)"))?;
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        if scopes.is_empty() {
            return Err("give at least one scope (read, run, admin)".to_owned());
        }
        scopes.sort();
        Ok(scopes)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The SHA-256 of a token, hex: what is stored and looked up.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compares two token hashes in constant time.
pub fn hashes_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A token as stored (never the token itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: i64,
    pub principal: Principal,
    pub scopes: Vec<Scope>,
    pub description: String,
    pub created_by: Principal,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}

impl TokenRecord {
    /// Why the token cannot be used at `now`, if it cannot.
    pub fn unusable(&self, now: Timestamp) -> Option<&'static str> {
        if self.revoked_at.is_some() {
            Some("the token was revoked")
        } else if self.expires_at.is_some_and(|e| e <= now) {
            Some("the token has expired")
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_sort() {
        assert_eq!(
            Scope::parse_list("run, read,run").unwrap(),
            [Scope::Read, Scope::Run]
        );
        assert!(
            Scope::parse_list("write")
                .unwrap_err()
                .contains("unknown scope `write`")
        );
        assert!(Scope::parse_list(" , ").is_err());
    }

    #[test]
    fn hashes_compare_equal_only_when_equal() {
        let h = token_hash("sb_abc");
        assert_eq!(h.len(), 64);
        assert!(hashes_equal(&h, &token_hash("sb_abc")));
        assert!(!hashes_equal(&h, &token_hash("sb_abd")));
        assert!(!hashes_equal(&h, "short"));
    }
}
