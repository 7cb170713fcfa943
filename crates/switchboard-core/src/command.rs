//! The chat command grammar: what a chat user typed (`logs web1 lines=50`)
//! matched against the `[[aliases]]` of the actions they may run, giving an
//! action and its raw parameters, or an error a person can act on (the
//! usage, a did-you-mean). Help and suggestions come from the same aliases,
//! and [`overlaps`] finds aliases that accept the same text, which the
//! catalog loader reports as errors.
//!
//! It does not authorize, fill in defaults, fully validate or run anything:
//! the conversation engine (in the engine crate) calls it with the actions
//! the asking user may run, then hands the result to `Engine::submit`, which
//! validates the parameters like any other door's.
//!
//! Rules, in the order they apply:
//! * Words are separated by whitespace. `"…"` and `'…'` (and the curly
//!   quotes phones type) group words; a quote opens only at the start of a
//!   word, right after `name=`, or right after another quoted part, so
//!   `don't` is an ordinary word. Inside double quotes `\` escapes a quote or
//!   a backslash. Control characters are refused.
//! * An unquoted word `name=value` names a parameter; quote it (`"a=b"`) to
//!   pass it as a plain value.
//! * Literal words of a format match regardless of case. `{x}` takes one
//!   word (or the value of `x=…`); in a word such as `lines={lines}` the
//!   literal part must match and the capture takes the rest (a capture
//!   followed by literal text ends where that text first appears). Optional
//!   groups are used when they fit and skipped otherwise, trying groups
//!   present before absent, leftmost first; the first combination that fits
//!   wins.
//! * Every captured value must fit its parameter's type (`ParamSpec::coerce`);
//!   a value that does not makes that combination fail, so another can fit.
//! * A format that ends in `{x}` of a `string` parameter (not in an
//!   optional group) lets it take all remaining words, joined with single
//!   spaces, except trailing `name=value` words that name other parameters
//!   of the action.
//! * Trailing `name=value` words give parameters not captured by the format.
//! * Two aliases that both fit are ambiguous unless they are the same
//!   action with the same parameters: the user is asked, never guessed for.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::alias::{AliasFormat, Part, Piece};
use crate::catalog::{Action, Catalog};
use crate::ids::ActionName;
use crate::params::{MAX_VALUE_BYTES, ParamSpec, ParamType, ParamValue, RawParams, closest};

/// Longest chat command read, in bytes.
pub const MAX_COMMAND_BYTES: usize = MAX_VALUE_BYTES;

const DOUBLE_QUOTES: [char; 4] = ['"', '“', '”', '„'];
const SINGLE_QUOTES: [char; 3] = ['\'', '‘', '’'];

/// The commands a chat user can type: every alias of the given actions.
#[derive(Debug, Clone, Default)]
pub struct CommandSet {
    /// One per alias, by action name then alias order.
    entries: Vec<Entry>,
}

/// A parsed chat command: which action, with which raw parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub action: ActionName,
    /// Text values as typed (`"50"`, `"web1"`), which the engine's
    /// validation coerces; defaults are not filled in.
    pub params: RawParams,
    /// The format of the alias that matched.
    pub format: String,
    /// The alias's `ack` with `{param}` filled in: the typed value, else the
    /// parameter's default, else nothing.
    pub ack: Option<String>,
}

/// One line of help: an alias and what it does.
#[derive(Debug, Clone, PartialEq)]
pub struct HelpEntry {
    /// The alias format, e.g. `logs {host} [lines={lines}]`.
    pub usage: String,
    pub action: ActionName,
    /// The alias's description, else the action's.
    pub description: String,
    /// The parameters a user can give (secrets cannot be typed in chat, so
    /// they are left out), in file order; filled only by
    /// [`CommandSet::help_for`].
    pub params: Vec<ParamHelp>,
}

/// What a user needs to know about one parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamHelp {
    pub name: String,
    pub ty: ParamType,
    /// Must be given: declared required and without a default.
    pub required: bool,
    /// The default as it would be typed.
    pub default: Option<String>,
    /// Allowed values of an `enum`.
    pub choices: Vec<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub description: String,
}

/// Why a chat command was not understood; each says what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("no command given")]
    Empty,
    /// The text cannot be split into words (an unclosed quote, a control
    /// character), with the column.
    #[error("{0}")]
    Syntax(String),
    /// The first word is no alias's.
    #[error("unknown command `{word}`{}", did_you_mean(suggestion.as_deref()))]
    NoMatch {
        word: String,
        suggestion: Option<String>,
    },
    /// More than one alias fits: `action — format` of each.
    #[error("that could mean several commands: {}; please be more specific", candidates.join("; "))]
    Ambiguous { candidates: Vec<String> },
    /// The right command with the wrong arguments.
    #[error("{message} (usage: `{usage}`)")]
    Invalid {
        action: ActionName,
        usage: String,
        message: String,
    },
}

fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}

/// Two aliases that accept the same text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    pub first: AliasSite,
    pub second: AliasSite,
    /// A chat text both accept.
    pub example: String,
}

/// Where an alias is declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasSite {
    pub action: ActionName,
    /// Its position in the action's `[[aliases]]`.
    pub index: usize,
    pub format: String,
    /// The action file, relative to the catalog root.
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for Overlap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b) = (&self.first, &self.second);
        write!(
            f,
            "aliases `{}` ({}:{}) and `{}` ({}:{}) both match `{}`",
            a.format,
            a.file.display(),
            a.line,
            b.format,
            b.file.display(),
            b.line,
            self.example
        )
    }
}

impl fmt::Display for HelpEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} — {}", self.usage, self.description)
    }
}

impl fmt::Display for ParamHelp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.name, self.ty)?;
        if !self.choices.is_empty() {
            write!(f, ", one of: {}", self.choices.join(", "))?;
        }
        if let Some(min) = self.min {
            write!(f, ", at least {min}")?;
        }
        if let Some(max) = self.max {
            write!(f, ", at most {max}")?;
        }
        if self.required {
            f.write_str(", required")?;
        }
        if let Some(d) = &self.default {
            write!(f, ", default {d}")?;
        }
        f.write_str(")")?;
        if !self.description.is_empty() {
            write!(f, ": {}", self.description)?;
        }
        Ok(())
    }
}

/// One word of chat text.
#[derive(Debug, Clone)]
struct Token {
    text: String,
    /// For an unquoted `name=value`, the byte length of `name`.
    key: Option<usize>,
}

impl Token {
    /// `(name, value)` of an unquoted `name=value`.
    fn key_value(&self) -> Option<(&str, &str)> {
        let k = self.key?;
        Some((self.text.get(..k)?, self.text.get(k + 1..)?))
    }
}

/// Splits chat text into words (see the module documentation for quoting).
pub fn tokenize(text: &str) -> Result<Vec<String>, String> {
    Ok(lex(text)?.into_iter().map(|t| t.text).collect())
}

/// Quotes a value, when needed, so that [`tokenize`] gives it back as one
/// plain word (never a `name=value`).
pub fn quote(value: &str) -> String {
    let plain = !value.is_empty()
        && !value.chars().any(|c| {
            c.is_whitespace()
                || c == '\\'
                || DOUBLE_QUOTES.contains(&c)
                || SINGLE_QUOTES.contains(&c)
        })
        && key_length(value).is_none();
    if plain {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '\\' || DOUBLE_QUOTES.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The byte length of `name` when `text` starts with `name=`.
fn key_length(text: &str) -> Option<usize> {
    let end = text.find('=')?;
    let name = text.get(..end)?;
    is_key(name).then_some(end)
}

fn is_key(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Quote {
    Double,
    Single,
}

fn quote_kind(c: char) -> Option<Quote> {
    if DOUBLE_QUOTES.contains(&c) {
        Some(Quote::Double)
    } else if SINGLE_QUOTES.contains(&c) {
        Some(Quote::Single)
    } else {
        None
    }
}

fn refuse_control(c: char, index: usize) -> Result<(), String> {
    if c.is_control() && !c.is_whitespace() {
        Err(format!(
            "control character U+{:04X} at column {} is not allowed",
            u32::from(c),
            index + 1
        ))
    } else {
        Ok(())
    }
}

fn lex(text: &str) -> Result<Vec<Token>, String> {
    if text.len() > MAX_COMMAND_BYTES {
        return Err(format!(
            "the command is longer than {MAX_COMMAND_BYTES} bytes"
        ));
    }
    let mut tokens = Vec::new();
    let mut current: Option<Token> = None;
    // Whether a quote here opens a quoted part.
    let mut may_open = true;
    // Whether the word so far is unquoted name characters.
    let mut bare_name = true;
    let mut chars = text.chars().enumerate().peekable();
    while let Some((i, c)) = chars.next() {
        refuse_control(c, i)?;
        if c.is_whitespace() {
            tokens.extend(current.take());
            may_open = true;
            bare_name = true;
            continue;
        }
        let token = current.get_or_insert_with(|| Token {
            text: String::new(),
            key: None,
        });
        match quote_kind(c) {
            Some(kind) if may_open => {
                let mut closed = false;
                while let Some((j, d)) = chars.next() {
                    refuse_control(d, j)?;
                    if kind == Quote::Double
                        && d == '\\'
                        && let Some(&(_, e)) = chars.peek()
                        && (e == '\\' || DOUBLE_QUOTES.contains(&e))
                    {
                        token.text.push(e);
                        chars.next();
                        continue;
                    }
                    if quote_kind(d) == Some(kind) {
                        closed = true;
                        break;
                    }
                    token.text.push(d);
                }
                if !closed {
                    return Err(format!(
                        "the quote `{c}` at column {} is never closed",
                        i + 1
                    ));
                }
                bare_name = false;
            }
            _ if c == '=' && bare_name && token.key.is_none() && is_key(&token.text) => {
                token.key = Some(token.text.len());
                token.text.push(c);
                may_open = true;
                bare_name = false;
            }
            _ => {
                bare_name &= c.is_ascii_alphanumeric() || c == '_' || c == '-';
                token.text.push(c);
                may_open = false;
            }
        }
    }
    tokens.extend(current);
    Ok(tokens)
}

/// Case-insensitive comparison of two characters.
fn same_letter(a: char, b: char) -> bool {
    a == b || a.to_lowercase().eq(b.to_lowercase())
}

/// How many characters of `chars` the literal `lit` matches at its start.
fn starts_with(chars: &[char], lit: &str) -> Option<usize> {
    let mut n = 0;
    for l in lit.chars() {
        if !same_letter(*chars.get(n)?, l) {
            return None;
        }
        n += 1;
    }
    Some(n)
}

/// Splits a token's characters along a word's pieces: each literal must
/// match, each capture takes at least one character up to where the next
/// literal first appears.
fn split<'p>(pieces: &'p [Piece], chars: &[char]) -> Option<Vec<(&'p str, String)>> {
    match pieces {
        [] => chars.is_empty().then(Vec::new),
        [Piece::Literal(lit), rest @ ..] => {
            let n = starts_with(chars, lit)?;
            split(rest, chars.get(n..)?)
        }
        [Piece::Capture(name)] => {
            (!chars.is_empty()).then(|| vec![(name.as_str(), chars.iter().collect())])
        }
        [Piece::Capture(name), rest @ ..] => {
            let next = match rest.first() {
                Some(Piece::Literal(lit)) => lit,
                _ => return None,
            };
            let end = (1..chars.len()).find(|&i| {
                chars
                    .get(i..)
                    .is_some_and(|tail| starts_with(tail, next).is_some())
            })?;
            let mut caps = split(rest, chars.get(end..)?)?;
            caps.insert(0, (name.as_str(), chars.get(..end)?.iter().collect()));
            Some(caps)
        }
    }
}

/// A word as written in the format.
fn show_word(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Literal(l) => l.clone(),
            Piece::Capture(c) => format!("{{{c}}}"),
        })
        .collect()
}

/// Why a word does not fit a token.
enum Miss {
    /// The token does not have the word's shape.
    Shape(String),
    /// It has the shape, but a value or parameter name is wrong.
    Value(String),
}

/// Why one combination of an alias does not fit: how far it got (the token
/// index, then 0 for a shape mismatch, 1 for a wrong value, 2 for a missing
/// parameter after all words fit) and what to tell the user. The furthest
/// failure is the one shown.
#[derive(Debug, Clone)]
struct Failure {
    at: (usize, u8),
    message: String,
}

/// One alias of one action, ready to match.
#[derive(Debug, Clone)]
struct Entry {
    action: Arc<Action>,
    index: usize,
    format: String,
    ack: Option<String>,
    description: Option<String>,
    line: usize,
    /// The word sequences it accepts, in order of preference.
    variants: Vec<Vec<Vec<Piece>>>,
    /// The parameter of a final `{x}` of a `string` parameter, which takes
    /// the remaining words. Only a format that itself ends in the capture
    /// has one: in `disk [{path}] [above {n}]`, `{path}` takes one word.
    text_capture: Option<String>,
}

impl Entry {
    fn spec(&self, name: &str) -> Option<&ParamSpec> {
        self.action.params.iter().find(|p| p.name == name)
    }

    fn first_word(&self) -> &[Piece] {
        self.variants
            .first()
            .and_then(|v| v.first())
            .map_or(&[], Vec::as_slice)
    }

    /// The literal text the format starts with, e.g. `reboot`.
    fn command_word(&self) -> Option<&str> {
        match self.first_word().first() {
            Some(Piece::Literal(l)) => Some(l.as_str()),
            _ => None,
        }
    }

    /// Whether `token` has the shape of the format's first word.
    fn starts(&self, token: &str) -> bool {
        let chars: Vec<char> = token.chars().collect();
        split(self.first_word(), &chars).is_some()
    }

    fn site(&self) -> AliasSite {
        AliasSite {
            action: self.action.name.clone(),
            index: self.index,
            format: self.format.clone(),
            file: self.action.file.clone(),
            line: self.line,
        }
    }

    /// Checks a value against its parameter's type.
    fn check(&self, name: &str, value: &str) -> Result<(), String> {
        let spec = self
            .spec(name)
            .ok_or_else(|| format!("`{name}` is not a parameter of this command"))?;
        spec.coerce(&serde_json::Value::String(value.to_owned()))
            .map(|_| ())
            .map_err(|e| format!("`{name}`: {e}"))
    }

    fn unknown_param(&self, name: &str) -> String {
        unknown_param(&self.action, name)
    }

    fn match_word<'p>(
        &self,
        word: &'p [Piece],
        token: &Token,
    ) -> Result<Vec<(&'p str, String)>, Miss> {
        let captures = match word {
            [Piece::Capture(name)] => {
                let value = match token.key_value() {
                    Some((k, v)) if k.eq_ignore_ascii_case(name) => v.to_owned(),
                    // A `name=value` word gives a parameter by name, not
                    // the value of this capture.
                    Some((k, _)) if self.spec(&k.to_ascii_lowercase()).is_some() => {
                        return Err(Miss::Shape(format!("`{name}` is required")));
                    }
                    Some((k, _)) => return Err(Miss::Value(self.unknown_param(k))),
                    None => token.text.clone(),
                };
                vec![(name.as_str(), value)]
            }
            _ => {
                let chars: Vec<char> = token.text.chars().collect();
                split(word, &chars).ok_or_else(|| {
                    Miss::Shape(format!(
                        "expected `{}`, got `{}`",
                        show_word(word),
                        token.text
                    ))
                })?
            }
        };
        for (name, value) in &captures {
            self.check(name, value).map_err(|m| {
                // A word that cannot be a host (`/etc/passwd`) is not of a
                // host's shape: another reading of it should explain.
                if self.spec(name).is_some_and(|s| s.ty == ParamType::Host) {
                    Miss::Shape(m)
                } else {
                    Miss::Value(m)
                }
            })?;
        }
        Ok(captures)
    }

    /// Matches one word sequence against all tokens.
    fn match_variant(
        &self,
        words: &[Vec<Piece>],
        tokens: &[Token],
        check_required: bool,
    ) -> Result<RawParams, Failure> {
        let fail = |at: usize, level: u8, message: String| Failure {
            at: (at, level),
            message,
        };
        let mut params = RawParams::new();
        let text_capture = self.text_capture.as_deref();
        let fixed = words
            .len()
            .saturating_sub(usize::from(text_capture.is_some()));
        for (i, word) in words.iter().take(fixed).enumerate() {
            let Some(token) = tokens.get(i) else {
                let message = match word.as_slice() {
                    [Piece::Capture(name)] => format!("`{name}` is required"),
                    _ => format!(
                        "expected `{}` after `{}`",
                        show_word(word),
                        tokens.get(i.wrapping_sub(1)).map_or("", |t| &t.text)
                    ),
                };
                return Err(fail(i, 0, message));
            };
            match self.match_word(word, token) {
                Ok(captures) => {
                    for (name, value) in captures {
                        params.insert(name.to_owned(), value.into());
                    }
                }
                Err(Miss::Shape(m)) => return Err(fail(i, 0, m)),
                Err(Miss::Value(m)) => return Err(fail(i, 1, m)),
            }
        }
        let rest = tokens.get(fixed..).unwrap_or_default();
        let mut extras = rest;
        if let Some(name) = text_capture {
            // Trailing `name=value` words that name other parameters are
            // left for below; at least one word stays for the text.
            let mut end = rest.len();
            let mut named = BTreeSet::new();
            while end > 1 {
                let Some((k, _)) = rest.get(end - 1).and_then(Token::key_value) else {
                    break;
                };
                let k = k.to_ascii_lowercase();
                if k == name || params.contains_key(&k) || self.spec(&k).is_none() {
                    break;
                }
                if !named.insert(k) {
                    break;
                }
                end -= 1;
            }
            let (text, after) = rest.split_at(end.min(rest.len()));
            let Some((first, others)) = text.split_first() else {
                return Err(fail(fixed, 0, format!("`{name}` is required")));
            };
            let first = match first.key_value() {
                Some((k, v)) if k.eq_ignore_ascii_case(name) => v,
                Some((k, _)) if self.spec(&k.to_ascii_lowercase()).is_some() => {
                    return Err(fail(fixed, 0, format!("`{name}` is required")));
                }
                _ => first.text.as_str(),
            };
            let value = std::iter::once(first)
                .chain(others.iter().map(|t| t.text.as_str()))
                .collect::<Vec<_>>()
                .join(" ");
            self.check(name, &value).map_err(|m| fail(fixed, 1, m))?;
            params.insert(name.to_owned(), value.into());
            extras = after;
        }
        let offset = tokens.len() - extras.len();
        for (j, token) in extras.iter().enumerate() {
            let at = offset + j;
            let Some((k, v)) = token.key_value() else {
                return Err(fail(at, 0, format!("unexpected `{}`", token.text)));
            };
            let key = k.to_ascii_lowercase();
            let Some(spec) = self.spec(&key) else {
                return Err(fail(at, 1, self.unknown_param(k)));
            };
            if spec.is_secret() {
                return Err(fail(
                    at,
                    1,
                    format!("`{key}` is a secret and cannot be typed in chat"),
                ));
            }
            if params.contains_key(&key) {
                return Err(fail(at, 1, format!("`{key}` is given twice")));
            }
            self.check(&key, v).map_err(|m| fail(at, 1, m))?;
            params.insert(key, v.into());
        }
        if check_required {
            for spec in &self.action.params {
                if spec.required && spec.default.is_none() && !params.contains_key(&spec.name) {
                    let message = if spec.is_secret() {
                        format!(
                            "`{}` is required, and is a secret, which cannot be typed in chat",
                            spec.name
                        )
                    } else {
                        format!("`{}` is required", spec.name)
                    };
                    return Err(fail(tokens.len(), 2, message));
                }
            }
        }
        Ok(params)
    }

    /// The parameters of the first combination that fits; else the furthest
    /// failure, or `None` when even the first word does not fit.
    fn match_tokens(
        &self,
        tokens: &[Token],
        check_required: bool,
    ) -> Result<RawParams, Option<Failure>> {
        match tokens.first() {
            Some(first) if self.starts(&first.text) => {}
            _ => return Err(None),
        }
        let mut best: Option<Failure> = None;
        for words in &self.variants {
            match self.match_variant(words, tokens, check_required) {
                Ok(params) => return Ok(params),
                // Of failures that got as far, the one with fewer optional
                // groups reads more simply (`unexpected `now`` rather than
                // `expected `dry_run={dry_run}``).
                Err(f) => {
                    if best.as_ref().is_none_or(|b| f.at >= b.at) {
                        best = Some(f);
                    }
                }
            }
        }
        Err(best)
    }

    fn ack(&self, params: &RawParams) -> Option<String> {
        let template = self.ack.as_deref()?;
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            let (before, from) = rest.split_at(open);
            out.push_str(before);
            let name = from
                .get(1..)
                .and_then(|s| s.find('}').map(|close| (s, close)))
                .and_then(|(s, close)| s.get(..close))
                .filter(|n| is_key(n));
            match name {
                Some(name) => {
                    let typed = params.get(name).and_then(|v| v.as_str()).map(str::to_owned);
                    let default = || {
                        self.spec(name)
                            .and_then(|s| s.default.as_ref())
                            .map(shown_value)
                    };
                    out.push_str(&typed.or_else(default).unwrap_or_default());
                    rest = from.get(name.len() + 2..).unwrap_or_default();
                }
                None => {
                    out.push('{');
                    rest = from.get(1..).unwrap_or_default();
                }
            }
        }
        out.push_str(rest);
        Some(out)
    }

    fn help(&self, with_params: bool) -> HelpEntry {
        let params = if with_params {
            self.action
                .params
                .iter()
                .filter(|p| !p.is_secret())
                .map(|p| ParamHelp {
                    name: p.name.clone(),
                    ty: p.ty,
                    required: p.required && p.default.is_none(),
                    default: p.default.as_ref().map(shown_value),
                    choices: p.choices.clone(),
                    min: p.min,
                    max: p.max,
                    description: p.description.clone(),
                })
                .collect()
        } else {
            Vec::new()
        };
        HelpEntry {
            usage: self.format.clone(),
            action: self.action.name.clone(),
            description: self
                .description
                .clone()
                .filter(|d| !d.trim().is_empty())
                .unwrap_or_else(|| self.action.description.clone()),
            params,
        }
    }
}

/// A value as a user would type it.
fn shown_value(value: &ParamValue) -> String {
    match value {
        ParamValue::Duration(d) => humantime::format_duration(*d).to_string(),
        ParamValue::List(items) => items.join(","),
        other => other.render(),
    }
}

fn sorted(mut entries: Vec<HelpEntry>) -> Vec<HelpEntry> {
    entries.sort_by(|a, b| {
        (a.usage.to_lowercase(), &a.action).cmp(&(b.usage.to_lowercase(), &b.action))
    });
    entries
}

impl CommandSet {
    /// Built from some actions (the caller passes only those the asking
    /// user may run, so help and suggestions never reveal others).
    pub fn new<'a>(actions: impl IntoIterator<Item = &'a Arc<Action>>) -> Self {
        let mut entries: Vec<Entry> = actions
            .into_iter()
            .flat_map(|action| {
                action
                    .aliases
                    .iter()
                    .enumerate()
                    .map(|(index, alias)| Entry {
                        text_capture: text_capture(action, &alias.format).map(str::to_owned),
                        action: Arc::clone(action),
                        index,
                        format: alias.format.text.clone(),
                        ack: alias.ack.clone(),
                        description: alias.description.clone(),
                        line: alias.line,
                        variants: alias
                            .format
                            .variants()
                            .into_iter()
                            .map(|words| words.into_iter().map(<[Piece]>::to_vec).collect())
                            .collect(),
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        entries.sort_by(|a, b| (&a.action.name, a.index).cmp(&(&b.action.name, b.index)));
        Self { entries }
    }

    /// Parses one chat command (the bot's name or prefix already stripped).
    pub fn parse(&self, text: &str) -> Result<Command, CommandError> {
        let tokens = lex(text).map_err(CommandError::Syntax)?;
        let Some(first) = tokens.first() else {
            return Err(CommandError::Empty);
        };
        let mut found: Vec<(&Entry, RawParams)> = Vec::new();
        let mut best: Option<(&Entry, Failure)> = None;
        for entry in &self.entries {
            match entry.match_tokens(&tokens, true) {
                Ok(params) => {
                    let same = found
                        .iter()
                        .any(|(e, p)| e.action.name == entry.action.name && *p == params);
                    if !same {
                        found.push((entry, params));
                    }
                }
                Err(Some(f)) => {
                    if best.as_ref().is_none_or(|(_, b)| f.at > b.at) {
                        best = Some((entry, f));
                    }
                }
                Err(None) => {}
            }
        }
        match (found.as_slice(), best) {
            ([(entry, params)], _) => Ok(Command {
                action: entry.action.name.clone(),
                ack: entry.ack(params),
                params: params.clone(),
                format: entry.format.clone(),
            }),
            ([], Some((entry, failure))) => Err(CommandError::Invalid {
                action: entry.action.name.clone(),
                usage: entry.format.clone(),
                message: failure.message,
            }),
            ([], None) => Err(CommandError::NoMatch {
                word: first.text.clone(),
                suggestion: self.suggest(&first.text),
            }),
            (many, _) => Err(CommandError::Ambiguous {
                candidates: many
                    .iter()
                    .map(|(e, _)| format!("{} — {}", e.action.name, e.format))
                    .collect(),
            }),
        }
    }

    /// One line per alias, sorted: usage (the format) and description.
    pub fn help(&self) -> Vec<HelpEntry> {
        sorted(self.entries.iter().map(|e| e.help(false)).collect())
    }

    /// Help for a command word or action name: the aliases whose first word
    /// (or action name) matches, with their action's parameters. Empty when
    /// nothing matches (the caller then uses [`Self::suggest`]).
    pub fn help_for(&self, word: &str) -> Vec<HelpEntry> {
        let word = word.trim();
        sorted(
            self.entries
                .iter()
                .filter(|e| e.starts(word) || e.action.name.as_str().eq_ignore_ascii_case(word))
                .map(|e| e.help(true))
                .collect(),
        )
    }

    /// The command word nearest to a misspelt first word ("did you mean …").
    pub fn suggest(&self, word: &str) -> Option<String> {
        let words: BTreeSet<String> = self
            .entries
            .iter()
            .filter_map(Entry::command_word)
            .map(str::to_lowercase)
            .collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        closest(&word.to_lowercase(), &words).map(str::to_owned)
    }
}

/// Says that `name` is not a parameter of `action`, with the nearest one
/// or the list of those that can be typed (secrets cannot).
pub fn unknown_param(action: &Action, name: &str) -> String {
    let known: Vec<&str> = action
        .params
        .iter()
        .filter(|p| !p.is_secret())
        .map(|p| p.name.as_str())
        .collect();
    match closest(&name.to_ascii_lowercase(), &known) {
        Some(near) => format!("unknown parameter `{name}` (did you mean `{near}`?)"),
        None if known.is_empty() => {
            format!("unknown parameter `{name}` (this command takes none)")
        }
        None => format!(
            "unknown parameter `{name}` (parameters: {})",
            known.join(", ")
        ),
    }
}

/// The parameter of a format's final `{x}` capture when it is a `string`
/// parameter outside any optional group: it takes all remaining words.
pub fn text_capture<'f>(action: &Action, format: &'f AliasFormat) -> Option<&'f str> {
    match format.parts.last() {
        Some(Part::Word(pieces)) => match pieces.as_slice() {
            [Piece::Capture(name)]
                if action
                    .params
                    .iter()
                    .any(|p| p.name == *name && p.ty == ParamType::String) =>
            {
                Some(name.as_str())
            }
            _ => None,
        },
        _ => None,
    }
}

/// Pairs of aliases (across the whole catalog, also within one action) that
/// can match the same text, each with an example text that both accept. Two
/// aliases of one action count only when that text gives them different
/// parameters.
///
/// Each combination of optional groups of one alias is compared word by word
/// with each of the other's: a word common to both is looked for among the
/// literals of the two words and sample values of their captures' types,
/// and a final `string` capture absorbs whatever the other alias has left.
/// The text found is then parsed with both aliases, so an overlap is only
/// reported when both truly accept it. Two `string` captures with different
/// patterns are found to overlap only when a sample value fits both.
pub fn overlaps(catalog: &Catalog) -> Vec<Overlap> {
    overlaps_among(catalog.actions())
}

pub(crate) fn overlaps_among<'a>(
    actions: impl IntoIterator<Item = &'a Arc<Action>>,
) -> Vec<Overlap> {
    let set = CommandSet::new(actions);
    let mut out = Vec::new();
    for (i, a) in set.entries.iter().enumerate() {
        for b in set.entries.iter().skip(i + 1) {
            if let Some(example) = shared_text(a, b) {
                out.push(Overlap {
                    first: a.site(),
                    second: b.site(),
                    example,
                });
            }
        }
    }
    out
}

/// A text both aliases accept (with different parameters when they are of
/// the same action).
fn shared_text(a: &Entry, b: &Entry) -> Option<String> {
    // Every combination starts with the same word, so that decides quickly.
    common_word(a, a.first_word(), b, b.first_word())?;
    for va in &a.variants {
        for vb in &b.variants {
            let Some(words) = shared_words(a, va, b, vb) else {
                continue;
            };
            let text = words
                .iter()
                .map(|w| written(w))
                .collect::<Vec<_>>()
                .join(" ");
            let Ok(tokens) = lex(&text) else { continue };
            let (Ok(pa), Ok(pb)) = (
                a.match_tokens(&tokens, false),
                b.match_tokens(&tokens, false),
            ) else {
                continue;
            };
            if a.action.name != b.action.name || pa != pb {
                return Some(text);
            }
        }
    }
    None
}

/// A word as a user would type it: as is when it needs no quotes, with the
/// value quoted after `name=`.
fn written(word: &str) -> String {
    match key_length(word) {
        Some(k) => match (word.get(..=k), word.get(k + 1..)) {
            (Some(name), Some(value)) if !value.is_empty() => {
                let quoted = quote(value);
                format!("{name}{quoted}")
            }
            _ => quote(word),
        },
        None => quote(word),
    }
}

/// Words for one combination of each alias that fit both, position by
/// position; a final `string` capture absorbs the other's remaining words.
fn shared_words(a: &Entry, va: &[Vec<Piece>], b: &Entry, vb: &[Vec<Piece>]) -> Option<Vec<String>> {
    let mut words = Vec::new();
    for i in 0..va.len().max(vb.len()) {
        let word = match (va.get(i), vb.get(i)) {
            (Some(wa), Some(wb)) => common_word(a, wa, b, wb)?,
            (Some(w), None) => candidates(a, w).into_iter().next()?,
            (None, Some(w)) => candidates(b, w).into_iter().next()?,
            (None, None) => return None,
        };
        words.push(word);
    }
    Some(words)
}

/// A word that both format words accept.
fn common_word(a: &Entry, wa: &[Piece], b: &Entry, wb: &[Piece]) -> Option<String> {
    let mut all = candidates(a, wa);
    all.extend(candidates(b, wb));
    all.into_iter().find(|word| {
        let Ok(tokens) = lex(&written(word)) else {
            return false;
        };
        match tokens.as_slice() {
            [token] => a.match_word(wa, token).is_ok() && b.match_word(wb, token).is_ok(),
            _ => false,
        }
    })
}

/// Words a format word accepts: its literal text with sample values of its
/// captures' types.
fn candidates(entry: &Entry, word: &[Piece]) -> Vec<String> {
    let samples: BTreeMap<&str, Vec<String>> = word
        .iter()
        .filter_map(|p| match p {
            Piece::Capture(name) => {
                let fitting: Vec<String> = entry
                    .spec(name)
                    .map(samples)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|v| entry.check(name, v).is_ok())
                    .collect();
                Some((name.as_str(), fitting))
            }
            Piece::Literal(_) => None,
        })
        .collect();
    let rounds = samples.values().map(Vec::len).max().unwrap_or(1);
    (0..rounds)
        .filter_map(|k| {
            word.iter()
                .map(|p| match p {
                    Piece::Literal(l) => Some(l.clone()),
                    Piece::Capture(name) => {
                        let values = samples.get(name.as_str())?;
                        values.get(k % values.len().max(1)).cloned()
                    }
                })
                .collect::<Option<String>>()
        })
        .collect()
}

/// Typical values of a parameter's type.
fn samples(spec: &ParamSpec) -> Vec<String> {
    let texts: &[&str] = match spec.ty {
        ParamType::Enum => return spec.choices.clone(),
        ParamType::Integer | ParamType::Number => {
            let mut out: Vec<String> = [spec.min, spec.max]
                .into_iter()
                .flatten()
                .map(|x| x.to_string())
                .collect();
            out.extend(["1", "10", "0", "100", "-1"].map(str::to_owned));
            if spec.ty == ParamType::Number {
                out.push("1.5".to_owned());
            }
            return out;
        }
        ParamType::Boolean => &["true", "false", "yes", "no", "on", "off", "1", "0"],
        ParamType::Duration => &["5m", "30s", "1h", "10"],
        ParamType::Host => &["web1", "db1.example.org", "10.0.0.1"],
        ParamType::List => &["web1,web2", "x"],
        ParamType::String | ParamType::Secret => &[
            "web1",
            "nginx",
            "/var/log/syslog",
            "/tmp/x",
            "/",
            "x",
            "10",
            "true",
            "5m",
            "a,b",
        ],
    };
    texts.iter().map(|t| (*t).to_owned()).collect()
}

#[cfg(test)]
mod tests;
