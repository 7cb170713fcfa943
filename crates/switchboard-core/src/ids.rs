//! Newtype identifiers and timestamps: action names, execution ids, principals,
//! origins. Each validates its text on construction so that the rest of the code
//! never meets a malformed one. Authentication of principals is not done here.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A malformed identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error(
        "invalid action name `{0}`: use lowercase letters, digits, `_` and `-`, in dot-separated parts (e.g. `host.reboot`)"
    )]
    ActionName(String),
    #[error("invalid principal `{0}`: use 1 to 256 visible characters without spaces")]
    Principal(String),
    #[error(
        "invalid origin `{0}`: use `cli`, `api`, `web`, `schedule`, `alert`, `webhook` or `chat:<platform>:<room>`"
    )]
    Origin(String),
    #[error("invalid execution id `{0}`: expected a positive whole number")]
    ExecutionId(String),
}

/// `as_str`, `Display`, and conversions from and to `String` (checked by
/// `new`) for a validated text newtype.
macro_rules! text_id {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// The dotted name of an action, e.g. `host.reboot`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ActionName(String);

impl ActionName {
    pub fn new(name: impl Into<String>) -> Result<Self, IdError> {
        let name = name.into();
        let part_ok = |p: &str| {
            let mut chars = p.chars();
            matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
                && chars
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        };
        if name.len() <= 128 && name.split('.').all(part_ok) {
            Ok(Self(name))
        } else {
            Err(IdError::ActionName(name))
        }
    }
}

text_id!(ActionName);

/// The number of an execution, unique within one store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ExecutionId(pub i64);

impl std::str::FromStr for ExecutionId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().trim_start_matches('#').parse::<i64>() {
            Ok(n) if n > 0 => Ok(Self(n)),
            _ => Err(IdError::ExecutionId(s.to_owned())),
        }
    }
}

impl fmt::Display for ExecutionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

fn visible_token(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.chars().all(|c| !c.is_whitespace() && !c.is_control())
}

/// Who asked for something: a user or service account (`alice`,
/// `svc:deploy-bot`). Until authentication lands every door uses [`Principal::local`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Principal(String);

impl Principal {
    pub fn new(name: impl Into<String>) -> Result<Self, IdError> {
        let name = name.into();
        if visible_token(&name, 256) {
            Ok(Self(name))
        } else {
            Err(IdError::Principal(name))
        }
    }

    /// The single principal that every door uses until authentication exists.
    pub fn local() -> Self {
        Self("local".to_owned())
    }

    /// Switchboard itself, for what no person asked for (start-up, signals).
    pub fn system() -> Self {
        Self("switchboard".to_owned())
    }

    /// The built-in administrator, who signs in with the bootstrap token.
    pub fn admin() -> Self {
        Self("admin".to_owned())
    }

    /// Whoever presented a credential that proved nothing.
    pub fn anonymous() -> Self {
        Self("anonymous".to_owned())
    }
}

text_id!(Principal);

/// Which door a request came through: `cli`, `api`, `web`, `schedule`, `alert`,
/// `webhook`, or `chat:<platform>:<room>`; a trigger of the catalog names
/// itself after its door: `schedule:<name>`, `webhook:<name>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Origin(String);

impl Origin {
    const SIMPLE: [&'static str; 8] = [
        "cli", "api", "web", "schedule", "alert", "webhook", "local", "system",
    ];

    pub fn new(origin: impl Into<String>) -> Result<Self, IdError> {
        let origin = origin.into();
        let ok = if let Some(rest) = origin.strip_prefix("chat:") {
            matches!(rest.split_once(':'), Some((platform, room))
                if visible_token(platform, 32) && !room.is_empty() && visible_token(rest, 256))
        } else if let Some((door, name)) = origin.split_once(':')
            && Self::NAMED.contains(&door)
        {
            visible_token(name, 128)
        } else {
            Self::SIMPLE.contains(&origin.as_str())
        };
        if ok {
            Ok(Self(origin))
        } else {
            Err(IdError::Origin(origin))
        }
    }

    /// The doors whose origin may name the trigger: `schedule:<name>`.
    const NAMED: [&'static str; 2] = ["schedule", "webhook"];

    /// The door alone, as policies see it: `schedule` for
    /// `schedule:nightly`, `chat` for `chat:slack:#ops`.
    pub fn door(&self) -> &str {
        self.0
            .split_once(':')
            .map_or(self.0.as_str(), |(door, _)| door)
    }

    pub fn cli() -> Self {
        Self("cli".to_owned())
    }

    pub fn api() -> Self {
        Self("api".to_owned())
    }

    /// Switchboard itself: start-up, signals, timers.
    pub fn system() -> Self {
        Self("system".to_owned())
    }

    /// An offline run from `switchboard run --local`.
    pub fn local() -> Self {
        Self("local".to_owned())
    }
}

text_id!(Origin);

/// A point in time, in microseconds since the Unix epoch (UTC). Serialized as
/// RFC 3339 text with microseconds, e.g. `2026-11-24T10:00:00.123456Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self(i64::try_from(since.as_micros()).unwrap_or(i64::MAX))
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    /// Parses RFC 3339 text (`2026-11-24T10:00:00Z`, fractional seconds allowed).
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let t = humantime::parse_rfc3339_weak(text).ok()?;
        let d = t.duration_since(UNIX_EPOCH).ok()?;
        i64::try_from(d.as_micros()).ok().map(Self)
    }

    /// The time elapsed from `self` to `later` (zero if `later` is earlier).
    pub fn until(self, later: Timestamp) -> Duration {
        Duration::from_micros(u64::try_from(later.0 - self.0).unwrap_or(0))
    }

    /// This time minus `d` (saturating).
    pub fn before(self, d: Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_sub(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
        )
    }

    /// This time plus `d` (saturating).
    pub fn after(self, d: Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
        )
    }
}

/// The proleptic Gregorian year, month (1–12) and day of a count of days
/// since 1970-01-01 (Howard Hinnant's `civil_from_days`): calendar
/// arithmetic without a date crate, for chart labels and time intervals.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let micros = u64::try_from(self.0).unwrap_or(0);
        let t = UNIX_EPOCH + Duration::from_micros(micros);
        write!(f, "{}", humantime::format_rfc3339_micros(t))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse_rfc3339(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid RFC 3339 time `{text}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names() {
        for ok in ["host.reboot", "demo.echo", "a", "db-1.fail_over", "x.y.z"] {
            assert!(ActionName::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Host.reboot",
            ".x",
            "x.",
            "x..y",
            "x y",
            "-x",
            "x;y",
            "ü",
        ] {
            assert!(ActionName::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn origins() {
        for ok in [
            "cli",
            "api",
            "chat:slack:#ops",
            "chat:irc:libera/#sre",
            "schedule:nightly-backup",
            "webhook:github",
        ] {
            assert!(Origin::new(ok).is_ok(), "{ok}");
        }
        let door = |o: &str| Origin::new(o).unwrap().door().to_owned();
        assert_eq!(door("schedule:nightly"), "schedule");
        assert_eq!(door("webhook:github"), "webhook");
        assert_eq!(door("chat:slack:#ops"), "chat");
        assert_eq!(door("cli"), "cli");
        for bad in [
            "",
            "chat",
            "chat:slack",
            "chat::#x",
            "chat:slack:",
            "ftp",
            "chat:a b:c",
            "schedule:",
            "webhook:a b",
            "cli:x",
            "alert:x",
        ] {
            assert!(Origin::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamps_round_trip() {
        let t = Timestamp(1_764_000_000_123_456);
        let text = t.to_string();
        assert_eq!(text, "2025-11-24T16:00:00.123456Z");
        assert_eq!(Timestamp::parse_rfc3339(&text), Some(t));
    }

    #[test]
    fn execution_ids() {
        assert_eq!("42".parse::<ExecutionId>(), Ok(ExecutionId(42)));
        assert_eq!("#7".parse::<ExecutionId>(), Ok(ExecutionId(7)));
        assert!("0".parse::<ExecutionId>().is_err());
        assert!("x".parse::<ExecutionId>().is_err());
    }
}
