//! Label sets and their fingerprints: the identity of an alert.
//!
//! Owns [`LabelSet`] (label names validated as Prometheus names,
//! `[a-zA-Z_][a-zA-Z0-9_]*`; values any UTF-8, the empty string included,
//! kept as given because Alertmanager fingerprints them as given), the
//! fingerprint Prometheus' `model.LabelSet.Fingerprint()` computes (FNV-1a
//! 64 over the labels sorted by name, each written as name, `0xff`, value,
//! `0xff`; shown as 16 lower-case hex digits, as Alertmanager shows it), and
//! the text form Alertmanager prints in group keys,
//! `{alertname="Disk", job="node"}`, whose values are quoted like Go's
//! `strconv.Quote`.
//!
//! Deliberately not here: annotations (plain maps, not identity), matching
//! (`matchers`), and the newer UTF-8 label names of Prometheus 3, which are
//! refused.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// FNV-1a 64 offset basis.
const FNV_OFFSET: u64 = 14_695_981_039_346_656_037;
/// FNV-1a 64 prime.
const FNV_PRIME: u64 = 1_099_511_628_211;
/// Prometheus' `model.SeparatorByte`.
const SEPARATOR: u8 = 0xff;

/// Whether `name` is a Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A label name that is not a Prometheus label name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` is not a valid label name (letters, digits and `_`, not starting with a digit)")]
pub struct LabelError {
    pub name: String,
}

/// An alert's labels: names to values, sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelSet(BTreeMap<String, String>);

impl LabelSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a label, returning the value it replaced.
    pub fn insert(
        &mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Option<String>, LabelError> {
        let name = name.into();
        if !is_valid_label_name(&name) {
            return Err(LabelError { name });
        }
        Ok(self.0.insert(name, value.into()))
    }

    /// A label set from pairs, refusing the first invalid name.
    pub fn from_pairs<N, V>(pairs: impl IntoIterator<Item = (N, V)>) -> Result<Self, LabelError>
    where
        N: Into<String>,
        V: Into<String>,
    {
        let mut set = Self::new();
        for (n, v) in pairs {
            set.insert(n, v)?;
        }
        Ok(set)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The value of `name`, or the empty string when the label is missing
    /// (how Alertmanager's matchers and inhibition rules see a missing label).
    pub fn value(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    pub fn remove(&mut self, name: &str) -> Option<String> {
        self.0.remove(name)
    }

    /// Labels sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// The labels whose names `keep` accepts.
    pub fn filter(&self, mut keep: impl FnMut(&str) -> bool) -> Self {
        Self(
            self.0
                .iter()
                .filter(|(n, _)| keep(n))
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect(),
        )
    }

    /// Alertmanager's fingerprint of these labels.
    pub fn fingerprint(&self) -> Fingerprint {
        fingerprint(self)
    }
}

impl TryFrom<BTreeMap<String, String>> for LabelSet {
    type Error = LabelError;

    fn try_from(map: BTreeMap<String, String>) -> Result<Self, LabelError> {
        match map.keys().find(|n| !is_valid_label_name(n)) {
            Some(bad) => Err(LabelError { name: bad.clone() }),
            None => Ok(Self(map)),
        }
    }
}

impl From<LabelSet> for BTreeMap<String, String> {
    fn from(set: LabelSet) -> Self {
        set.0
    }
}

/// Alertmanager's text form: `{alertname="Disk", job="node"}`, sorted by
/// name, values quoted as Go's `strconv.Quote` does.
impl fmt::Display for LabelSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (n, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{n}={}", go_quote(v))?;
        }
        f.write_str("}")
    }
}

impl Serialize for LabelSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for LabelSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, String>::deserialize(d)?;
        Self::try_from(map).map_err(serde::de::Error::custom)
    }
}

/// An alert's identity: the FNV-1a 64 hash of its labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint(pub u64);

/// Prometheus' `model.LabelSet.Fingerprint()`: FNV-1a 64 over the labels
/// sorted by name, each as name, `0xff`, value, `0xff`. An empty set hashes
/// to the FNV offset basis, as in Prometheus.
pub fn fingerprint(labels: &LabelSet) -> Fingerprint {
    let mut hash = FNV_OFFSET;
    let mut add = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(FNV_PRIME);
        }
    };
    for (name, value) in labels.iter() {
        add(name.as_bytes());
        add(&[SEPARATOR]);
        add(value.as_bytes());
        add(&[SEPARATOR]);
    }
    Fingerprint(hash)
}

/// 16 lower-case hex digits, as Alertmanager prints fingerprints.
impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for Fingerprint {
    type Err = String;

    /// Hex digits (1 to 16), as Prometheus' `FingerprintFromString` reads.
    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("`{s}` is not a fingerprint (up to 16 hex digits)"));
        }
        u64::from_str_radix(s, 16)
            .map(Self)
            .map_err(|e| format!("`{s}` is not a fingerprint: {e}"))
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// `s` quoted as Go's `strconv.Quote` quotes it: `"` and `\` escaped,
/// `\a \b \f \n \r \t \v` by name, other characters Go does not print as
/// `\xNN`, `\uNNNN` or `\UNNNNNNNN`. Go decides what prints from Unicode
/// categories; this follows them for control, space and format characters
/// and private use, and treats unassigned code points as printable (Go
/// escapes those), which only matters for values no one writes.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if go_printable(c) => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if (c as u32) < 0x1_0000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// Go's `unicode.IsPrint`, approximately (see [`go_quote`]).
fn go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    let format = matches!(
        u,
        0xad | 0x600..=0x605
            | 0x61c
            | 0x6dd
            | 0x70f
            | 0x890..=0x891
            | 0x8e2
            | 0x180e
            | 0x200b..=0x200f
            | 0x202a..=0x202e
            | 0x2060..=0x2064
            | 0x2066..=0x206f
            | 0xfeff
            | 0xfff9..=0xfffb
            | 0x110bd
            | 0x110cd
            | 0x13430..=0x1343f
            | 0x1bca0..=0x1bca3
            | 0x1d173..=0x1d17a
            | 0xe0001
            | 0xe0020..=0xe007f
    );
    let private_use = matches!(u, 0xe000..=0xf8ff | 0xf_0000..=0x10_ffff);
    let noncharacter = matches!(u, 0xfdd0..=0xfdef) || (u & 0xfffe) == 0xfffe;
    !(format || private_use || noncharacter)
}
