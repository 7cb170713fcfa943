//! The HMAC signature of an inbound webhook: which header carries it, how
//! it is written (algorithm, hex or base64, a prefix such as `sha256=`),
//! what text is signed (the body, or the body with a timestamp header as
//! in `{timestamp}.{body}`), and the replay window around that timestamp.
//!
//! Owns verifying one request ([`SignatureSpec::verify`], constant time)
//! and making a signature ([`SignatureSpec::sign`], for senders and tests).
//! Not here: the secret's resolution, and remembering delivery ids (the
//! engine and its store).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};

use crate::ids::Timestamp;

/// The default header (GitHub's).
pub const DEFAULT_HEADER: &str = "X-Hub-Signature-256";
/// The default replay window.
pub const DEFAULT_REPLAY_WINDOW: Duration = Duration::from_secs(5 * 60);
/// Longest delivery id kept.
pub const MAX_DELIVERY_ID: usize = 256;

/// The hash under the HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    pub const NAMES: [&'static str; 3] = ["sha256", "sha1", "sha512"];

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "sha1" => Some(Self::Sha1),
            "sha256" => Some(Self::Sha256),
            "sha512" => Some(Self::Sha512),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }
}

/// How the signature's bytes are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Hex,
    Base64,
}

impl Encoding {
    pub const NAMES: [&'static str; 2] = ["hex", "base64"];

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "hex" => Some(Self::Hex),
            "base64" => Some(Self::Base64),
            _ => None,
        }
    }
}

/// One piece of the signed text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Timestamp,
    Body,
}

/// What is signed: literal text, `{timestamp}` and `{body}`, e.g.
/// `{timestamp}.{body}` or Slack's `v0:{timestamp}:{body}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedText(pub Vec<Piece>);

impl SignedText {
    /// Reads a form; it must contain `{body}` once, and `{timestamp}` at
    /// most once; other braces are refused.
    pub fn parse(form: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut rest = form;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
            }
            let after = &rest[open..];
            if let Some(tail) = after.strip_prefix("{body}") {
                pieces.push(Piece::Body);
                rest = tail;
            } else if let Some(tail) = after.strip_prefix("{timestamp}") {
                pieces.push(Piece::Timestamp);
                rest = tail;
            } else {
                return Err(format!(
                    "`{form}`: only `{{body}}` and `{{timestamp}}` may stand in braces"
                ));
            }
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        if pieces
            .iter()
            .any(|p| matches!(p, Piece::Text(t) if t.contains('}')))
        {
            return Err(format!("`{form}` has a `}}` without its `{{`"));
        }
        let count = |want: &Piece| pieces.iter().filter(|p| *p == want).count();
        if count(&Piece::Body) != 1 {
            return Err(format!("`{form}` must contain `{{body}}` exactly once"));
        }
        if count(&Piece::Timestamp) > 1 {
            return Err(format!("`{form}` may contain `{{timestamp}}` only once"));
        }
        Ok(Self(pieces))
    }

    pub fn uses_timestamp(&self) -> bool {
        self.0.contains(&Piece::Timestamp)
    }
}

impl fmt::Display for SignedText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.0 {
            match p {
                Piece::Text(t) => f.write_str(t)?,
                Piece::Timestamp => f.write_str("{timestamp}")?,
                Piece::Body => f.write_str("{body}")?,
            }
        }
        Ok(())
    }
}

/// How a hook's requests are signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureSpec {
    /// The header with the signature, lower case.
    pub header: String,
    pub algorithm: Algorithm,
    pub encoding: Encoding,
    /// Text before the encoded signature (`sha256=`; may be empty).
    pub prefix: String,
    /// The header with the request's time (Unix seconds), lower case.
    pub timestamp_header: Option<String>,
    pub signed: SignedText,
    /// How far the timestamp may be from now, and how long delivery ids
    /// are remembered.
    pub replay_window: Duration,
    /// The header with the sender's delivery id, lower case.
    pub delivery_header: Option<String>,
}

impl Default for SignatureSpec {
    fn default() -> Self {
        Self {
            header: DEFAULT_HEADER.to_ascii_lowercase(),
            algorithm: Algorithm::Sha256,
            encoding: Encoding::Hex,
            prefix: "sha256=".to_owned(),
            timestamp_header: None,
            signed: SignedText(vec![Piece::Body]),
            replay_window: DEFAULT_REPLAY_WINDOW,
            delivery_header: None,
        }
    }
}

/// Why a request's signature is refused. The messages never show the
/// secret or the signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("no `{0}` header: the request is not signed")]
    MissingSignature(String),
    #[error("the `{header}` header is malformed: {reason}")]
    MalformedSignature { header: String, reason: String },
    #[error("the signature does not match the body")]
    BadSignature,
    #[error("no `{0}` header: the hook needs the request's time")]
    MissingTimestamp(String),
    #[error("the `{0}` header is not a time in Unix seconds")]
    MalformedTimestamp(String),
    #[error(
        "stale request: its time is {age_secs} s from now, outside the replay window of {window}"
    )]
    Stale { age_secs: u64, window: String },
    #[error("no `{0}` header: the hook needs the delivery id")]
    MissingDelivery(String),
    #[error("the `{0}` header must be 1 to 256 visible characters")]
    MalformedDelivery(String),
}

impl Rejection {
    /// A short, stable word for the audit log and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Stale { .. } | Self::MissingTimestamp(_) | Self::MalformedTimestamp(_) => "stale",
            Self::MissingDelivery(_) | Self::MalformedDelivery(_) => "replay",
            _ => "bad_signature",
        }
    }
}

/// What a verified request says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verified {
    /// The sender's delivery id, when the hook reads one.
    pub delivery: Option<String>,
}

/// One MAC of any of the algorithms.
enum AnyMac {
    Sha1(Hmac<sha1::Sha1>),
    Sha256(Hmac<sha2::Sha256>),
    Sha512(Hmac<sha2::Sha512>),
}

impl AnyMac {
    fn new(algorithm: Algorithm, key: &[u8]) -> Option<Self> {
        Some(match algorithm {
            Algorithm::Sha1 => Self::Sha1(<Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key).ok()?),
            Algorithm::Sha256 => {
                Self::Sha256(<Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).ok()?)
            }
            Algorithm::Sha512 => {
                Self::Sha512(<Hmac<sha2::Sha512> as KeyInit>::new_from_slice(key).ok()?)
            }
        })
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha1(m) => m.update(data),
            Self::Sha256(m) => m.update(data),
            Self::Sha512(m) => m.update(data),
        }
    }

    fn finalize(self) -> Vec<u8> {
        match self {
            Self::Sha1(m) => m.finalize().into_bytes().to_vec(),
            Self::Sha256(m) => m.finalize().into_bytes().to_vec(),
            Self::Sha512(m) => m.finalize().into_bytes().to_vec(),
        }
    }

    /// Compares in constant time.
    fn verify(self, expected: &[u8]) -> bool {
        match self {
            Self::Sha1(m) => m.verify_slice(expected).is_ok(),
            Self::Sha256(m) => m.verify_slice(expected).is_ok(),
            Self::Sha512(m) => m.verify_slice(expected).is_ok(),
        }
    }
}

impl SignatureSpec {
    fn mac(&self, secret: &[u8], timestamp: &str, body: &[u8]) -> Option<AnyMac> {
        let mut mac = AnyMac::new(self.algorithm, secret)?;
        for piece in &self.signed.0 {
            match piece {
                Piece::Text(t) => mac.update(t.as_bytes()),
                Piece::Timestamp => mac.update(timestamp.as_bytes()),
                Piece::Body => mac.update(body),
            }
        }
        Some(mac)
    }

    /// The header value a sender puts on `body` (with `timestamp` as the
    /// timestamp header's value, when the signed text uses it).
    pub fn sign(&self, secret: &[u8], timestamp: &str, body: &[u8]) -> String {
        let bytes = self
            .mac(secret, timestamp, body)
            .map(AnyMac::finalize)
            .unwrap_or_default();
        let encoded = match self.encoding {
            Encoding::Hex => hex::encode(bytes),
            Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode(bytes),
        };
        format!("{}{encoded}", self.prefix)
    }

    /// Checks a request: its signature over the signed text (in constant
    /// time), then its time against the replay window, then that it has
    /// a delivery id when the hook reads one. `headers` have lower-case
    /// names.
    pub fn verify(
        &self,
        secret: &[u8],
        headers: &BTreeMap<String, String>,
        body: &[u8],
        now: Timestamp,
    ) -> Result<Verified, Rejection> {
        let value = headers
            .get(&self.header)
            .ok_or_else(|| Rejection::MissingSignature(self.header.clone()))?;
        let malformed = |reason: &str| Rejection::MalformedSignature {
            header: self.header.clone(),
            reason: reason.to_owned(),
        };
        let encoded = value
            .trim()
            .strip_prefix(self.prefix.as_str())
            .ok_or_else(|| malformed(&format!("it does not start with `{}`", self.prefix)))?;
        let given = match self.encoding {
            Encoding::Hex => hex::decode(encoded).map_err(|_| malformed("not hexadecimal"))?,
            Encoding::Base64 => base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| malformed("not base64"))?,
        };
        let timestamp = match &self.timestamp_header {
            Some(h) => Some(
                headers
                    .get(h)
                    .map(|t| t.trim())
                    .ok_or_else(|| Rejection::MissingTimestamp(h.clone()))?,
            ),
            None => None,
        };
        let mac = self
            .mac(secret, timestamp.unwrap_or_default(), body)
            .ok_or(Rejection::BadSignature)?;
        if !mac.verify(&given) {
            return Err(Rejection::BadSignature);
        }
        if let (Some(h), Some(text)) = (&self.timestamp_header, timestamp) {
            let secs: i64 = text
                .parse()
                .map_err(|_| Rejection::MalformedTimestamp(h.clone()))?;
            let age = now.0.div_euclid(1_000_000).abs_diff(secs);
            if age > self.replay_window.as_secs() {
                return Err(Rejection::Stale {
                    age_secs: age,
                    window: humantime::format_duration(self.replay_window).to_string(),
                });
            }
        }
        let delivery = match &self.delivery_header {
            Some(h) => {
                let id = headers
                    .get(h)
                    .map(|d| d.trim())
                    .ok_or_else(|| Rejection::MissingDelivery(h.clone()))?;
                if id.is_empty()
                    || id.len() > MAX_DELIVERY_ID
                    || id.chars().any(|c| c.is_control() || c.is_whitespace())
                {
                    return Err(Rejection::MalformedDelivery(h.clone()));
                }
                Some(id.to_owned())
            }
            None => None,
        };
        Ok(Verified { delivery })
    }
}
