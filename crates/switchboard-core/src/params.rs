//! Parameter types and validation: turns the raw values a door received (JSON
//! from the API, `key=value` text from the CLI or chat) into typed values, or a
//! list of every problem, each naming its parameter. Rendering values into argv
//! or environment text lives here too, so every runner renders alike.
//!
//! Host parameters are checked for syntax only; resolving them against an
//! inventory is the fleet's job, not this module's.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Raw parameter values as a door received them.
pub type RawParams = BTreeMap<String, serde_json::Value>;

/// Longest accepted text of one value, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Most elements of one `list` value.
pub const MAX_LIST_ITEMS: usize = 1024;

/// The declared type of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    String,
    Integer,
    Number,
    Boolean,
    Enum,
    Duration,
    List,
    Secret,
    Host,
}

impl ParamType {
    pub const ALL: [ParamType; 9] = [
        Self::String,
        Self::Integer,
        Self::Number,
        Self::Boolean,
        Self::Enum,
        Self::Duration,
        Self::List,
        Self::Secret,
        Self::Host,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Enum => "enum",
            Self::Duration => "duration",
            Self::List => "list",
            Self::Secret => "secret",
            Self::Host => "host",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

impl fmt::Display for ParamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A typed, validated parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// `string`, `enum`, `secret` and `host` values.
    Text(String),
    Integer(i64),
    Number(f64),
    Boolean(bool),
    Duration(Duration),
    List(Vec<String>),
}

impl ParamValue {
    /// The text a command receives for this value: integers and numbers in
    /// decimal, booleans as `true`/`false`, durations in whole or fractional
    /// seconds (`90`, `1.5`), lists joined with newlines (a command element
    /// that is exactly `{{ name }}` receives a list as separate arguments).
    pub fn render(&self) -> String {
        match self {
            Self::Text(s) => s.clone(),
            Self::Integer(n) => n.to_string(),
            Self::Number(x) => x.to_string(),
            Self::Boolean(b) => b.to_string(),
            Self::Duration(d) => {
                if d.subsec_nanos() == 0 {
                    d.as_secs().to_string()
                } else {
                    d.as_secs_f64().to_string()
                }
            }
            Self::List(items) => items.join("\n"),
        }
    }

    /// The value as JSON, as stored and shown.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Text(s) => s.clone().into(),
            Self::Integer(n) => (*n).into(),
            Self::Number(x) => {
                serde_json::Number::from_f64(*x).map_or(serde_json::Value::Null, Into::into)
            }
            Self::Boolean(b) => (*b).into(),
            Self::Duration(d) => humantime::format_duration(*d).to_string().into(),
            Self::List(items) => items.clone().into(),
        }
    }
}

/// The declaration of one parameter of an action.
#[derive(Debug, Clone)]
pub struct ParamSpec {
    pub name: String,
    pub ty: ParamType,
    pub required: bool,
    pub default: Option<ParamValue>,
    pub description: String,
    /// Allowed values of an `enum`.
    pub choices: Vec<String>,
    /// A regular expression the whole text of a `string` value must match.
    pub pattern: Option<regex::Regex>,
    /// Bounds of an `integer` or `number`.
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl ParamSpec {
    pub fn new(name: impl Into<String>, ty: ParamType) -> Self {
        Self {
            name: name.into(),
            ty,
            required: false,
            default: None,
            description: String::new(),
            choices: Vec::new(),
            pattern: None,
            min: None,
            max: None,
        }
    }

    pub fn is_secret(&self) -> bool {
        self.ty == ParamType::Secret
    }

    /// Converts one raw value to this parameter's type.
    pub fn coerce(&self, raw: &serde_json::Value) -> Result<ParamValue, String> {
        use serde_json::Value as J;
        let text = |v: &J| -> Result<String, String> {
            match v {
                J::String(s) => Ok(s.clone()),
                J::Number(n) if matches!(self.ty, ParamType::String | ParamType::Secret) => {
                    Ok(n.to_string())
                }
                J::Bool(b) if self.ty == ParamType::String => Ok(b.to_string()),
                other => Err(format!(
                    "expected {} text, got {}",
                    self.ty,
                    json_kind(other)
                )),
            }
        };
        let value = match self.ty {
            ParamType::String | ParamType::Secret => {
                let s = text(raw)?;
                if let Some(re) = self.pattern.as_ref().filter(|re| !re.is_match(&s)) {
                    let shown = if self.is_secret() {
                        crate::masking::MASK
                    } else {
                        s.as_str()
                    };
                    return Err(format!(
                        "`{shown}` does not match the pattern `{}`",
                        re.as_str()
                    ));
                }
                ParamValue::Text(s)
            }
            ParamType::Enum => {
                let s = text(raw)?;
                if !self.choices.contains(&s) {
                    return Err(format!(
                        "`{}` is not one of: {}",
                        s,
                        self.choices.join(", ")
                    ));
                }
                ParamValue::Text(s)
            }
            ParamType::Host => {
                let s = text(raw)?;
                check_host(&s)?;
                ParamValue::Text(s)
            }
            ParamType::Integer => {
                let n = match raw {
                    J::Number(n) => n
                        .as_i64()
                        .ok_or_else(|| format!("expected a whole number, got `{n}`"))?,
                    J::String(s) => s
                        .trim()
                        .parse::<i64>()
                        .map_err(|_| format!("expected a whole number, got `{s}`"))?,
                    other => {
                        return Err(format!("expected a whole number, got {}", json_kind(other)));
                    }
                };
                self.check_bounds(n as f64)?;
                ParamValue::Integer(n)
            }
            ParamType::Number => {
                let x = match raw {
                    J::Number(n) => n
                        .as_f64()
                        .ok_or_else(|| format!("expected a number, got `{n}`"))?,
                    J::String(s) => s
                        .trim()
                        .parse::<f64>()
                        .map_err(|_| format!("expected a number, got `{s}`"))?,
                    other => return Err(format!("expected a number, got {}", json_kind(other))),
                };
                if !x.is_finite() {
                    return Err("expected a finite number".to_owned());
                }
                self.check_bounds(x)?;
                ParamValue::Number(x)
            }
            ParamType::Boolean => ParamValue::Boolean(match raw {
                J::Bool(b) => *b,
                J::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                    "true" | "yes" | "on" | "1" => true,
                    "false" | "no" | "off" | "0" => false,
                    _ => return Err(format!("expected true or false, got `{s}`")),
                },
                other => return Err(format!("expected true or false, got {}", json_kind(other))),
            }),
            ParamType::Duration => ParamValue::Duration(match raw {
                J::Number(n) => match n.as_u64() {
                    Some(secs) => Duration::from_secs(secs),
                    None => {
                        return Err(format!(
                            "expected a duration such as `30s` or `5m`, got `{n}`"
                        ));
                    }
                },
                J::String(s) => parse_duration(s)?,
                other => {
                    return Err(format!(
                        "expected a duration such as `30s` or `5m`, got {}",
                        json_kind(other)
                    ));
                }
            }),
            ParamType::List => ParamValue::List(match raw {
                J::Array(items) => items
                    .iter()
                    .map(|item| match item {
                        J::String(s) => Ok(s.clone()),
                        J::Number(n) => Ok(n.to_string()),
                        J::Bool(b) => Ok(b.to_string()),
                        other => Err(format!("list items must be text, got {}", json_kind(other))),
                    })
                    .collect::<Result<_, _>>()?,
                J::String(s) if s.is_empty() => Vec::new(),
                J::String(s) => s.split(',').map(|p| p.trim().to_owned()).collect(),
                other => return Err(format!("expected a list, got {}", json_kind(other))),
            }),
        };
        check_text_limits(&value)?;
        Ok(value)
    }

    fn check_bounds(&self, x: f64) -> Result<(), String> {
        if let Some(min) = self.min.filter(|min| x < *min) {
            return Err(format!("must be at least {min}"));
        }
        if let Some(max) = self.max.filter(|max| x > *max) {
            return Err(format!("must be at most {max}"));
        }
        Ok(())
    }
}

/// Parses a human duration (`30s`, `5m`, `1h 30m`) or plain seconds (`90`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(t)
        .map_err(|_| format!("expected a duration such as `30s` or `5m`, got `{text}`"))
}

fn check_host(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && !s.starts_with('-')
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    '.' | '-' | '_' | ':' | '[' | ']' | '*' | '?' | ',' | '&' | '!'
                )
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a host name, address or selector (`web-1`, `group:prod`, `tag:db`, `web-*`, combined with `,` `&` `!`)"
        ))
    }
}

fn check_text_limits(value: &ParamValue) -> Result<(), String> {
    let check = |s: &str| {
        if s.contains('\0') {
            Err("must not contain a NUL byte".to_owned())
        } else if s.len() > MAX_VALUE_BYTES {
            Err(format!("is longer than {MAX_VALUE_BYTES} bytes"))
        } else {
            Ok(())
        }
    };
    match value {
        ParamValue::Text(s) => check(s),
        ParamValue::List(items) if items.len() > MAX_LIST_ITEMS => {
            Err(format!("has more than {MAX_LIST_ITEMS} items"))
        }
        ParamValue::List(items) => items.iter().try_for_each(|s| check(s)),
        _ => Ok(()),
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "text",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// One problem with one parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("parameter `{param}`: {message}")]
pub struct ParamError {
    pub param: String,
    pub message: String,
}

/// Parameters that passed validation, with defaults filled in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ValidatedParams {
    values: BTreeMap<String, ParamValue>,
    secrets: Vec<String>,
}

impl ValidatedParams {
    /// Validates `raw` against `specs`, reporting every problem at once.
    pub fn validate(specs: &[ParamSpec], raw: &RawParams) -> Result<Self, Vec<ParamError>> {
        let mut errors = Vec::new();
        for name in raw.keys() {
            if !specs.iter().any(|s| &s.name == name) {
                let known: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
                let message = match closest(name, &known) {
                    Some(near) => format!("unknown parameter (did you mean `{near}`?)"),
                    None if known.is_empty() => {
                        "unknown parameter (this action takes none)".to_owned()
                    }
                    None => format!("unknown parameter (known: {})", known.join(", ")),
                };
                errors.push(ParamError {
                    param: name.clone(),
                    message,
                });
            }
        }
        let mut out = Self::default();
        for spec in specs {
            let value = match raw.get(&spec.name) {
                Some(serde_json::Value::Null) | None => match &spec.default {
                    Some(d) => Some(d.clone()),
                    None if spec.required => {
                        errors.push(ParamError {
                            param: spec.name.clone(),
                            message: "is required".to_owned(),
                        });
                        None
                    }
                    None => None,
                },
                Some(v) => match spec.coerce(v) {
                    Ok(v) => Some(v),
                    Err(message) => {
                        errors.push(ParamError {
                            param: spec.name.clone(),
                            message,
                        });
                        None
                    }
                },
            };
            if let Some(v) = value {
                if spec.is_secret() {
                    out.secrets.push(v.render());
                }
                out.values.insert(spec.name.clone(), v);
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }

    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.values.get(name)
    }

    /// Replaces the value of a non-secret parameter that has one, e.g. a
    /// host selector by the one host it resolved to.
    pub fn replace(&mut self, name: &str, value: ParamValue) {
        if let Some(slot) = self.values.get_mut(name) {
            *slot = value;
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &ParamValue)> {
        self.values.iter()
    }

    /// The values of `secret` parameters, for masking.
    pub fn secret_values(&self) -> &[String] {
        &self.secrets
    }

    /// The parameters as JSON with every secret shown as `****`: what is
    /// stored, shown and audited.
    pub fn to_masked_json(&self, specs: &[ParamSpec]) -> serde_json::Value {
        let map = self
            .values
            .iter()
            .map(|(k, v)| {
                let secret = specs.iter().any(|s| &s.name == k && s.is_secret());
                let shown = if secret {
                    crate::masking::MASK.into()
                } else {
                    v.to_json()
                };
                (k.clone(), shown)
            })
            .collect();
        serde_json::Value::Object(map)
    }
}

/// The candidate nearest to `word` by edit distance, if it is near enough to
/// be a likely typo.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= (c.chars().count().max(3) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edit distance counting a swap of two neighbours as one edit (optimal
/// string alignment); small enough to keep here rather than add a crate.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests;
