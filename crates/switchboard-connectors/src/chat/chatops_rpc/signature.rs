//! The request signature of ChatOps-RPC: `Chatops-Signature: Signature
//! keyid=<id>,signature=<base64>`, an RSA PKCS#1 v1.5 SHA-256 signature by
//! the client's private key over
//! `full_url "\n" Chatops-Nonce "\n" Chatops-Timestamp "\n" body` (a `GET`
//! has an empty body and keeps the last newline). A request is accepted
//! when its timestamp lies within [`MAX_SKEW`] of now and the primary or
//! the alternate public key verifies the signature (two keys, so that the
//! client's key can be rotated without a pause). The `keyid` is not used to
//! choose a key: Hubot always sends the same one.
//!
//! Not here: refusing a nonce seen before (the engine keeps them in the
//! store), and which URL the client used (the caller builds `full_url`
//! from the configured base URL and the request's path).

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::sha2::Sha256;
use rsa::signature::Verifier as _;
use switchboard_core::Timestamp;

/// The signature header (lower-cased, as headers are handed over).
pub const SIGNATURE_HEADER: &str = "chatops-signature";
/// The nonce header: unique to every request.
pub const NONCE_HEADER: &str = "chatops-nonce";
/// The timestamp header: ISO 8601 in UTC, `2017-05-11T19:15:23Z`.
pub const TIMESTAMP_HEADER: &str = "chatops-timestamp";

/// How far a request's timestamp may be from the server's clock.
pub const MAX_SKEW: Duration = Duration::from_secs(5 * 60);

/// Longest nonce accepted (Hubot's are 44 characters of base64).
const MAX_NONCE: usize = 256;

/// The string a client signs.
pub fn signing_string(full_url: &str, nonce: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(full_url.len() + nonce.len() + timestamp.len() + body.len() + 3);
    for part in [full_url.as_bytes(), nonce.as_bytes(), timestamp.as_bytes()] {
        s.extend_from_slice(part);
        s.push(b'\n');
    }
    s.extend_from_slice(body);
    s
}

/// A parsed `Chatops-Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    pub keyid: Option<String>,
    pub signature: Vec<u8>,
}

/// Parses `Signature keyid=<id>,signature=<base64>` (keys in any order;
/// unknown keys are ignored).
pub fn parse_signature_header(value: &str) -> Result<SignatureHeader, String> {
    let rest = value
        .strip_prefix("Signature")
        .filter(|r| r.starts_with(char::is_whitespace))
        .ok_or("`Chatops-Signature` must start with `Signature `")?;
    let mut keyid = None;
    let mut signature = None;
    for item in rest.trim().split(',') {
        let (key, value) = item
            .trim()
            .split_once('=')
            .ok_or_else(|| "`Chatops-Signature` must be `key=value` pairs".to_owned())?;
        match key {
            "keyid" => keyid = Some(value.to_owned()),
            "signature" => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(value)
                    .map_err(|_| "the signature in `Chatops-Signature` is not base64".to_owned())?;
                signature = Some(bytes);
            }
            _ => {}
        }
    }
    Ok(SignatureHeader {
        keyid,
        signature: signature.ok_or("`Chatops-Signature` has no `signature=`")?,
    })
}

/// Why a request's authentication was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A header is missing or cannot be read.
    #[error("{0}")]
    Malformed(String),
    /// The timestamp is too far from now.
    #[error("{0}")]
    Stale(String),
    /// No configured key verifies the signature.
    #[error("the signature does not verify with the configured public keys")]
    BadSignature,
}

impl Refusal {
    /// A short word for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::Stale(_) => "stale",
            Self::BadSignature => "bad_signature",
        }
    }
}

/// What a verified request carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// To be refused the next time it is seen.
    pub nonce: String,
    pub timestamp: Timestamp,
    /// Which key verified it: `primary` or `alternate`.
    pub key: &'static str,
}

/// The client's public keys: the primary one and, while rotating, the
/// alternate one.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: Vec<(&'static str, std::sync::Arc<VerifyingKey<Sha256>>)>,
}

impl Verifier {
    /// From PEM public keys (`-----BEGIN PUBLIC KEY-----`, SubjectPublicKeyInfo).
    pub fn from_pem(primary: &str, alternate: Option<&str>) -> Result<Self, String> {
        let read = |name: &str, pem: &str| {
            rsa::RsaPublicKey::from_public_key_pem(pem.trim())
                .map(|k| std::sync::Arc::new(VerifyingKey::<Sha256>::new(k)))
                .map_err(|e| {
                    format!("the {name} public key is not an RSA public key in PEM (`-----BEGIN PUBLIC KEY-----`): {e}")
                })
        };
        let mut keys = vec![("primary", read("primary", primary)?)];
        if let Some(pem) = alternate {
            keys.push(("alternate", read("alternate", pem)?));
        }
        Ok(Self { keys })
    }

    /// Checks a request sent to `full_url` with these `headers` (names
    /// lower-cased) and `body`, at `now`.
    pub fn verify(
        &self,
        full_url: &str,
        headers: &BTreeMap<String, String>,
        body: &[u8],
        now: Timestamp,
    ) -> Result<Verified, Refusal> {
        let header = |name: &str, shown: &str| {
            headers
                .get(name)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Refusal::Malformed(format!("the `{shown}` header is missing")))
        };
        let nonce = header(NONCE_HEADER, "Chatops-Nonce")?;
        if nonce.len() > MAX_NONCE || !nonce.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Refusal::Malformed(format!(
                "`Chatops-Nonce` must be at most {MAX_NONCE} visible ASCII characters"
            )));
        }
        let stamp = header(TIMESTAMP_HEADER, "Chatops-Timestamp")?;
        let timestamp = Timestamp::parse_rfc3339(stamp).ok_or_else(|| {
            Refusal::Malformed(format!(
                "`Chatops-Timestamp` is not an ISO 8601 time such as `2017-05-11T19:15:23Z`: `{}`",
                stamp.chars().take(64).collect::<String>()
            ))
        })?;
        let skew = Duration::from_micros(now.micros().abs_diff(timestamp.micros()));
        if skew > MAX_SKEW {
            return Err(Refusal::Stale(format!(
                "`Chatops-Timestamp` {stamp} is {}s away from the server's time; at most {}s are accepted",
                skew.as_secs(),
                MAX_SKEW.as_secs()
            )));
        }
        let parsed = parse_signature_header(header(SIGNATURE_HEADER, "Chatops-Signature")?)
            .map_err(Refusal::Malformed)?;
        let message = signing_string(full_url, nonce, stamp, body);
        let key = self
            .verify_message(&message, &parsed.signature)
            .ok_or(Refusal::BadSignature)?;
        Ok(Verified {
            nonce: nonce.to_owned(),
            timestamp,
            key,
        })
    }

    /// The key (`primary` or `alternate`) whose signature `signature` is
    /// over `message`, if any.
    pub fn verify_message(&self, message: &[u8], signature: &[u8]) -> Option<&'static str> {
        let signature = Signature::try_from(signature).ok()?;
        self.keys
            .iter()
            .find(|(_, key)| key.verify(message, &signature).is_ok())
            .map(|(name, _)| *name)
    }
}
