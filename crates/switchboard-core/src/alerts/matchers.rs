//! Label matchers: `name="value"`, `name!="value"`, `name=~"regex"`,
//! `name!~"regex"`, alone or in lists, as Alertmanager writes them in
//! routes, inhibition rules, silences and `amtool`.
//!
//! Owns [`Matcher`], [`Matchers`] and their parser. Both of Alertmanager's
//! list forms are read: braced, `{alertname="Disk", severity=~"crit|page"}`,
//! and bare, `alertname=Disk,severity=~"crit|page"`. Values are double-quoted
//! (escapes `\\`, `\"`, `\n`, `\t`, `\r`; any other backslash is kept as
//! written, so a regex such as `"\d+"` means what it says) or unquoted (no
//! spaces, commas, quotes, braces or operator characters). A trailing comma
//! is allowed, an empty list is `{}` or nothing. Errors name the character
//! column. Regexes are anchored as Alertmanager anchors them,
//! `^(?:regex)$`, and must also compile on their own, so that a value such
//! as `a)|(b` cannot break out of the anchors (Alertmanager would accept
//! it). A label an alert lacks matches as the empty string. Printing
//! follows Alertmanager's `Matcher.String()`: the value always quoted, with
//! `\`, `"` and newlines escaped, and lists as `{a="1",b=~"2"}`.
//!
//! Not here: label names beyond Prometheus' classic ones (quoted UTF-8
//! names are refused), and the RE2 details the Rust regex crate does
//! differently (its `\d`, `\w` and `\s` are Unicode-aware; RE2's are ASCII).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use regex::{Regex, RegexBuilder};

use super::labels::{LabelSet, is_valid_label_name};

/// The largest compiled regex a matcher may have, in bytes.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// How a matcher compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchOp {
    /// `=`
    Eq,
    /// `!=`
    NotEq,
    /// `=~`
    Re,
    /// `!~`
    NotRe,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::NotEq => "!=",
            Self::Re => "=~",
            Self::NotRe => "!~",
        }
    }

    fn is_regex(self) -> bool {
        matches!(self, Self::Re | Self::NotRe)
    }
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A matcher that could not be read: what is wrong, at which character
/// (0-based; shown 1-based as a column).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {}: {message}", position + 1)]
pub struct MatcherError {
    pub position: usize,
    pub message: String,
}

fn err<T>(position: usize, message: impl Into<String>) -> Result<T, MatcherError> {
    Err(MatcherError {
        position,
        message: message.into(),
    })
}

/// One label matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    name: String,
    op: MatchOp,
    value: String,
    /// `^(?:value)$`, for `=~` and `!~`.
    regex: Option<Regex>,
}

impl Matcher {
    /// A matcher; the name must be a label name and a regex must compile.
    pub fn new(
        name: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<Self, MatcherError> {
        let name = name.into();
        let value = value.into();
        if !is_valid_label_name(&name) {
            return err(0, format!("`{name}` is not a valid label name"));
        }
        let regex = if op.is_regex() {
            Some(compile(&value).map_err(|message| MatcherError {
                position: 0,
                message,
            })?)
        } else {
            None
        };
        Ok(Self {
            name,
            op,
            value,
            regex,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn op(&self) -> MatchOp {
        self.op
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether a label value (`""` for a missing label) satisfies this matcher.
    pub fn matches_value(&self, value: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Eq, _) => value == self.value,
            (MatchOp::NotEq, _) => value != self.value,
            (MatchOp::Re, Some(re)) => re.is_match(value),
            (MatchOp::NotRe, Some(re)) => !re.is_match(value),
            (_, None) => false,
        }
    }

    /// Whether `labels` satisfy this matcher; a missing label is `""`.
    pub fn matches(&self, labels: &LabelSet) -> bool {
        self.matches_value(labels.value(&self.name))
    }
}

fn compile(value: &str) -> Result<Regex, String> {
    let build = |pattern: &str| {
        RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| format!("invalid regular expression `{value}`: {e}"))
    };
    build(value)?;
    build(&format!("^(?:{value})$"))
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

impl Hash for Matcher {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.op.hash(state);
        self.value.hash(state);
    }
}

/// Alertmanager's order (`labels.Matchers.Less`): by name, then value, then
/// operator.
impl Ord for Matcher {
    fn cmp(&self, other: &Self) -> Ordering {
        self.name
            .cmp(&other.name)
            .then_with(|| self.value.cmp(&other.value))
            .then_with(|| self.op.cmp(&other.op))
    }
}

impl PartialOrd for Matcher {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// `name="value"` with `\`, `"` and newlines escaped (Alertmanager's
/// `openMetricsEscape`).
impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}\"", self.name, self.op)?;
        for c in self.value.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

impl FromStr for Matcher {
    type Err = MatcherError;

    /// Exactly one matcher, braces allowed.
    fn from_str(s: &str) -> Result<Self, MatcherError> {
        let mut list = Matchers::parse(s)?.0;
        match (list.pop(), list.is_empty()) {
            (Some(m), true) => Ok(m),
            (None, _) => err(0, "expected a matcher such as `severity=\"critical\"`"),
            (Some(_), false) => err(0, "expected one matcher, found several"),
        }
    }
}

/// Matchers that must all hold (an empty list matches everything).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Matchers(Vec<Matcher>);

impl Matchers {
    pub fn new(matchers: Vec<Matcher>) -> Self {
        Self(matchers)
    }

    /// A list, braced (`{a="1", b=~"x|y"}`) or bare (`a=1,b=~"x|y"`).
    pub fn parse(text: &str) -> Result<Self, MatcherError> {
        Parser::new(text).list().map(Self)
    }

    /// Whether every matcher holds for `labels`.
    pub fn matches(&self, labels: &LabelSet) -> bool {
        self.0.iter().all(|m| m.matches(labels))
    }

    /// Sorted in Alertmanager's order, as routes keep their matchers.
    pub fn sorted(mut self) -> Self {
        self.0.sort();
        self
    }

    pub fn push(&mut self, matcher: Matcher) {
        self.0.push(matcher);
    }

    pub fn extend(&mut self, other: Matchers) {
        self.0.extend(other.0);
    }

    pub fn iter(&self) -> impl Iterator<Item = &Matcher> {
        self.0.iter()
    }

    pub fn as_slice(&self) -> &[Matcher] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Alertmanager's `Matchers.String()`: `{a="1",b=~"2"}`.
impl fmt::Display for Matchers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{m}")?;
        }
        f.write_str("}")
    }
}

impl FromStr for Matchers {
    type Err = MatcherError;

    fn from_str(s: &str) -> Result<Self, MatcherError> {
        Self::parse(s)
    }
}

/// Characters an unquoted value cannot contain.
fn reserved(c: char) -> bool {
    c.is_whitespace() || "{}!=~,\"'`".contains(c)
}

struct Parser {
    chars: Vec<char>,
    at: usize,
}

impl Parser {
    fn new(text: &str) -> Self {
        Self {
            chars: text.chars().collect(),
            at: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    fn eat(&mut self, s: &str) -> bool {
        let n = s.chars().count();
        let matched = self
            .chars
            .get(self.at..self.at + n)
            .is_some_and(|got| got.iter().copied().eq(s.chars()));
        if matched {
            self.at += n;
        }
        matched
    }

    fn list(&mut self) -> Result<Vec<Matcher>, MatcherError> {
        self.skip_space();
        let open = self.at;
        let braced = self.eat("{");
        let mut out = Vec::new();
        loop {
            self.skip_space();
            match self.peek() {
                None if braced => return err(open, "missing closing `}`"),
                None => return Ok(out),
                Some('}') if braced => {
                    self.at += 1;
                    self.skip_space();
                    if self.peek().is_some() {
                        return err(self.at, "unexpected text after `}`");
                    }
                    return Ok(out);
                }
                Some(_) => {}
            }
            out.push(self.matcher()?);
            self.skip_space();
            match self.peek() {
                Some(',') => self.at += 1,
                Some('}') if braced => {}
                None => {}
                Some(c) => {
                    return err(
                        self.at,
                        format!(
                            "expected `,` between matchers, found `{c}` (quote values that contain spaces)"
                        ),
                    );
                }
            }
        }
    }

    fn matcher(&mut self) -> Result<Matcher, MatcherError> {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.at += 1;
        }
        let name: String = self
            .chars
            .get(start..self.at)
            .unwrap_or_default()
            .iter()
            .collect();
        if name.is_empty() {
            let found = self
                .peek()
                .map_or("the end".to_owned(), |c| format!("`{c}`"));
            return err(start, format!("expected a label name, found {found}"));
        }
        if !is_valid_label_name(&name) {
            return err(start, format!("`{name}` is not a valid label name"));
        }
        self.skip_space();
        let op_at = self.at;
        let op = if self.eat("=~") {
            MatchOp::Re
        } else if self.eat("!=") {
            MatchOp::NotEq
        } else if self.eat("!~") {
            MatchOp::NotRe
        } else if self.eat("=") {
            MatchOp::Eq
        } else {
            return err(
                op_at,
                format!("expected an operator after `{name}`: `=`, `!=`, `=~` or `!~`"),
            );
        };
        self.skip_space();
        let value_at = self.at;
        let value = if self.peek() == Some('"') {
            self.quoted()?
        } else {
            self.unquoted()?
        };
        Matcher::new(name, op, value).map_err(|e| MatcherError {
            position: value_at,
            message: e.message,
        })
    }

    fn quoted(&mut self) -> Result<String, MatcherError> {
        let open = self.at;
        self.at += 1;
        let mut value = String::new();
        loop {
            let Some(c) = self.peek() else {
                return err(open, "unterminated quoted value (missing closing `\"`)");
            };
            self.at += 1;
            match c {
                '"' => return Ok(value),
                '\\' => {
                    let Some(next) = self.peek() else {
                        return err(open, "unterminated quoted value (missing closing `\"`)");
                    };
                    self.at += 1;
                    match next {
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        'n' => value.push('\n'),
                        't' => value.push('\t'),
                        'r' => value.push('\r'),
                        other => {
                            value.push('\\');
                            value.push(other);
                        }
                    }
                }
                c => value.push(c),
            }
        }
    }

    fn unquoted(&mut self) -> Result<String, MatcherError> {
        let start = self.at;
        while self.peek().is_some_and(|c| !reserved(c)) {
            self.at += 1;
        }
        if let Some(c) = self.peek().filter(|c| "!=~'`".contains(*c)) {
            return err(
                self.at,
                format!("unexpected `{c}` in an unquoted value; put the value in double quotes"),
            );
        }
        if self.at == start {
            return err(start, "expected a value (write `\"\"` for the empty value)");
        }
        Ok(self
            .chars
            .get(start..self.at)
            .unwrap_or_default()
            .iter()
            .collect())
    }
}
