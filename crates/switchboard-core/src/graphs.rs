//! Graphs: the catalog's named PromQL queries (`graphs.toml`), checked when
//! the catalog loads, and rendered for one request — the title as plain
//! text, the query with every inserted value escaped as the content of a
//! PromQL double-quoted string, so that no value can leave the label matcher
//! it was put in.
//!
//! Not here: asking Prometheus and drawing the chart (the engine's query
//! runner), and deciding which context a graph is rendered with (the
//! catalog and the actions that use graphs).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::catalog::CatalogError;
use crate::params::{closest, parse_duration};

/// The file, relative to the catalog root.
pub const FILE: &str = "graphs.toml";
/// The range a graph shows when its file names none.
pub const DEFAULT_RANGE: Duration = Duration::from_secs(3600);
/// The longest range a graph may show.
pub const MAX_RANGE: Duration = Duration::from_secs(366 * 24 * 3600);
/// Longest graph name.
const MAX_NAME: usize = 64;

const GRAPH_KEYS: [&str; 6] = ["title", "description", "query", "unit", "legend", "range"];

/// One named graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphSpec {
    pub name: String,
    /// A template of the chart's title.
    pub title: String,
    pub description: String,
    /// A template of the PromQL query; values may only be inserted inside
    /// double-quoted strings.
    pub query: String,
    /// The unit shown on the y axis (may be empty).
    pub unit: String,
    /// A template of each series' label over its metric labels.
    pub legend: Option<String>,
    /// The range shown unless the request names another.
    pub range: Duration,
    /// The line of its `[graphs.NAME]` header.
    pub line: usize,
}

/// A graph rendered for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedGraph {
    pub title: String,
    pub query: String,
}

/// The graphs of a catalog, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Graphs {
    graphs: BTreeMap<String, GraphSpec>,
}

impl Graphs {
    /// Reads `graphs.toml` in the catalog `root`; no file is no graphs.
    /// Problems are added to `errors` with file and line.
    pub(crate) fn load(root: &Path, errors: &mut Vec<CatalogError>) -> Self {
        crate::catalog::load_optional(root, FILE, errors, Self::parse)
    }

    /// The graphs of the text of a `graphs.toml`, or every problem in it.
    pub fn parse(text: &str) -> Result<Self, Vec<CatalogError>> {
        let mut r = Reader {
            src: text,
            errors: Vec::new(),
        };
        let (doc, syntax) = DeTable::parse_recoverable(text);
        if !syntax.is_empty() {
            for e in syntax {
                r.error(
                    e.span().unwrap_or(0..0),
                    "",
                    format!("invalid TOML: {}", e.message().trim()),
                );
            }
            return Err(r.errors);
        }
        let mut graphs = BTreeMap::new();
        for (key, value) in doc.get_ref().iter() {
            let name: &str = key.get_ref();
            if name != "graphs" {
                let hint = if closest(name, &["graphs"]).is_some() {
                    " (did you mean `graphs`?)"
                } else {
                    " (graphs are `[graphs.NAME]` sections)"
                };
                r.error(key.span(), name, format!("unknown key{hint}"));
                continue;
            }
            let Some(table) = value.get_ref().as_table() else {
                r.error(
                    value.span(),
                    "graphs",
                    "must be a table of `[graphs.NAME]` sections",
                );
                continue;
            };
            for (gkey, gvalue) in table.iter() {
                if let Some(spec) = r.graph(gkey, gvalue) {
                    graphs.insert(spec.name.clone(), spec);
                }
            }
        }
        if r.errors.is_empty() {
            Ok(Self { graphs })
        } else {
            r.errors.sort_by_key(|e| e.line);
            Err(r.errors)
        }
    }

    pub fn get(&self, name: &str) -> Option<&GraphSpec> {
        self.graphs.get(name)
    }

    /// Every graph, by name.
    pub fn iter(&self) -> impl Iterator<Item = &GraphSpec> {
        self.graphs.values()
    }

    pub fn is_empty(&self) -> bool {
        self.graphs.is_empty()
    }

    pub fn len(&self) -> usize {
        self.graphs.len()
    }
}

impl GraphSpec {
    /// The title and query for `context` (a JSON object: `host`, `address`,
    /// `vars`, parameters). Every value the query inserts is escaped for a
    /// PromQL double-quoted string; the title is plain text.
    pub fn render(&self, context: &serde_json::Value) -> Result<RenderedGraph, String> {
        let ctx = json_value(context);
        let title = environment()
            .render_str(&self.title, &ctx)
            .map_err(|e| format!("graph `{}`: title: {}", self.name, describe(&e)))?;
        let query = query_environment()
            .render_str(&self.query, &ctx)
            .map_err(|e| format!("graph `{}`: query: {}", self.name, describe(&e)))?;
        Ok(RenderedGraph { title, query })
    }

    /// The variables the title and the query use (top-level names: `vars`
    /// for `vars.region`).
    pub fn variables(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for source in [&self.title, &self.query] {
            if let Ok(found) = template_variables(source) {
                names.extend(found);
            }
        }
        names
    }

    /// The label of one series, from its metric labels: the `legend`
    /// template (a label the series lacks renders as nothing), or else every
    /// label as `k=v` joined by `, `, or else `fallback` (the query).
    pub fn legend(&self, labels: &BTreeMap<String, String>, fallback: &str) -> String {
        if let Some(template) = &self.legend {
            let mut env = environment();
            env.set_undefined_behavior(UndefinedBehavior::Lenient);
            let ctx = Value::from_pairs(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            if let Ok(text) = env.render_str(template, ctx) {
                let text = text.trim();
                if !text.is_empty() {
                    return text.to_owned();
                }
            }
        }
        default_legend(labels, fallback)
    }
}

/// A JSON value as a template value.
fn json_value(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(items) => items.iter().map(json_value).collect(),
        serde_json::Value::Object(map) => {
            Value::from_pairs(map.iter().map(|(k, v)| (k.as_str(), json_value(v))))
        }
    }
}

/// Every label as `k=v`, joined by `, `; `fallback` when there are none.
pub fn default_legend(labels: &BTreeMap<String, String>, fallback: &str) -> String {
    if labels.is_empty() {
        return fallback.to_owned();
    }
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `value` as the content of a PromQL double-quoted string: backslash and
/// double quote are escaped, and so is every control character, so the
/// value can neither end the string nor the line.
pub fn escape_promql_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                // `\uXXXX` covers every control character (all are below U+00A0).
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// Templates for plain text: strict undefined, no escaping.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env
}

/// Templates for queries: every printed value goes through
/// [`escape_promql_string`], whatever its type and filters (`safe` too).
fn query_environment() -> Environment<'static> {
    let mut env = environment();
    env.set_formatter(|out, _state, value| {
        let escaped = match value.as_str() {
            Some(s) => escape_promql_string(s),
            None => escape_promql_string(&value.to_string()),
        };
        out.write_str(&escaped)?;
        Ok(())
    });
    env
}

fn template_variables(source: &str) -> Result<BTreeSet<String>, String> {
    let env = environment();
    let tmpl = env.template_from_str(source).map_err(|e| describe(&e))?;
    Ok(tmpl.undeclared_variables(false).into_iter().collect())
}

/// A minijinja error without the template source it may quote.
fn describe(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    }
}

/// Where the query prints a value outside a double-quoted PromQL string
/// (a byte offset), if it does. The template source is read as PromQL with
/// template tags in it: `{% … %}` and `{# … #}` print nothing and are
/// skipped, and each `{{ … }}` must sit inside `"…"`, where the escaping
/// makes it harmless. (Tags inside `{% if %}` branches are read as if every
/// branch were taken; the check guards against mistakes, not against the
/// catalog's authors.)
fn output_outside_string(query: &str) -> Option<usize> {
    #[derive(PartialEq)]
    enum State {
        Code,
        Double,
        Single,
        Backtick,
        Comment,
    }
    let bytes = query.as_bytes();
    let find = |from: usize, needle: &[u8]| {
        bytes[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map_or(bytes.len(), |end| from + end + needle.len())
    };
    let mut state = State::Code;
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        if rest.starts_with(b"{{") {
            if state != State::Double {
                return Some(i);
            }
            i = find(i, b"}}");
            continue;
        }
        if rest.starts_with(b"{%") {
            i = find(i, b"%}");
            continue;
        }
        if rest.starts_with(b"{#") {
            i = find(i, b"#}");
            continue;
        }
        let b = bytes[i];
        match state {
            State::Code => match b {
                b'"' => state = State::Double,
                b'\'' => state = State::Single,
                b'`' => state = State::Backtick,
                b'#' => state = State::Comment,
                _ => {}
            },
            State::Double | State::Single => {
                if b == b'\\' {
                    i += 1;
                } else if (b == b'"' && state == State::Double)
                    || (b == b'\'' && state == State::Single)
                {
                    state = State::Code;
                }
            }
            State::Backtick => {
                if b == b'`' {
                    state = State::Code;
                }
            }
            State::Comment => {
                if b == b'\n' {
                    state = State::Code;
                }
            }
        }
        i += 1;
    }
    None
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'))
}

fn error(line: Option<usize>, key: Option<String>, message: String) -> CatalogError {
    CatalogError {
        file: FILE.into(),
        line,
        key,
        message,
    }
}

type Entry<'i> = Spanned<DeValue<'i>>;

struct Reader<'a> {
    src: &'a str,
    errors: Vec<CatalogError>,
}

impl Reader<'_> {
    /// The 1-based line of a byte offset.
    fn line(&self, offset: usize) -> usize {
        crate::catalog::line_at(self.src, offset)
    }

    fn error(&mut self, span: Range<usize>, key: &str, message: impl Into<String>) {
        let line = self.line(span.start);
        self.errors.push(error(
            Some(line),
            (!key.is_empty()).then(|| key.to_owned()),
            message.into(),
        ));
    }

    /// A string value, or an error naming its type.
    fn text(&mut self, key: &str, value: &Entry<'_>) -> Option<String> {
        match value.get_ref().as_str() {
            Some(s) => Some(s.to_owned()),
            None => {
                self.error(
                    value.span(),
                    key,
                    format!("must be a string, not {}", value.get_ref().type_str()),
                );
                None
            }
        }
    }

    /// A template that must parse.
    fn template(&mut self, key: &str, value: &Entry<'_>) -> Option<String> {
        let source = self.text(key, value)?;
        match template_variables(&source) {
            Ok(_) => Some(source),
            Err(e) => {
                self.error(value.span(), key, format!("not a valid template: {e}"));
                None
            }
        }
    }

    /// One `[graphs.NAME]` section; `None` when it has any problem (recorded).
    fn graph(
        &mut self,
        key: &Spanned<toml::de::DeString<'_>>,
        value: &Entry<'_>,
    ) -> Option<GraphSpec> {
        let before = self.errors.len();
        let name: &str = key.get_ref();
        let prefix = format!("graphs.{name}");
        let header = key.span();
        if !valid_name(name) {
            self.error(
                header.clone(),
                &prefix,
                format!(
                    "`{name}` is not a valid graph name (lower-case letters, digits, `_`, `-`; at most {MAX_NAME})"
                ),
            );
        }
        let Some(table) = value.get_ref().as_table() else {
            self.error(value.span(), &prefix, "must be a `[graphs.NAME]` section");
            return None;
        };
        let mut fields: BTreeMap<&str, &Entry<'_>> = BTreeMap::new();
        for (k, v) in table.iter() {
            let field: &str = k.get_ref();
            match GRAPH_KEYS.iter().find(|allowed| **allowed == field) {
                Some(allowed) => {
                    fields.insert(allowed, v);
                }
                None => {
                    let hint = closest(field, &GRAPH_KEYS)
                        .map(|n| format!(" (did you mean `{n}`?)"))
                        .unwrap_or_default();
                    self.error(
                        k.span(),
                        &format!("{prefix}.{field}"),
                        format!("unknown key{hint}"),
                    );
                }
            }
        }
        let required = |r: &mut Self, field: &str, what: &str| {
            if fields.contains_key(field) {
                true
            } else {
                r.error(
                    header.clone(),
                    &format!("{prefix}.{field}"),
                    format!("missing ({what})"),
                );
                false
            }
        };
        let has_title = required(
            self,
            "title",
            "the chart's title, e.g. `CPU busy on {{ host }}`",
        );
        let has_query = required(self, "query", "the PromQL query to draw");
        let has_unit = required(
            self,
            "unit",
            "the unit of the y axis, e.g. `%` or `bytes`; may be empty",
        );

        let title = if has_title {
            self.template(&format!("{prefix}.title"), fields["title"])
        } else {
            None
        };
        let query = if has_query {
            let key = format!("{prefix}.query");
            let value = fields["query"];
            self.template(&key, value).and_then(|q| {
                if q.trim().is_empty() {
                    self.error(value.span(), &key, "must not be empty");
                    None
                } else if let Some(at) = output_outside_string(&q) {
                    let near: String = q.get(at..).unwrap_or_default().chars().take(30).collect();
                    self.error(
                        value.span(),
                        &key,
                        format!(
                            "a value may only be inserted inside a double-quoted string, such as `instance=\"{{{{ address }}}}:9100\"` (at `{near}`)"
                        ),
                    );
                    None
                } else {
                    Some(q)
                }
            })
        } else {
            None
        };
        let unit = if has_unit {
            self.text(&format!("{prefix}.unit"), fields["unit"])
        } else {
            None
        };
        let description = match fields.get("description") {
            Some(v) => self.text(&format!("{prefix}.description"), v),
            None => Some(String::new()),
        };
        let legend = match fields.get("legend") {
            Some(v) => self.template(&format!("{prefix}.legend"), v).map(Some),
            None => Some(None),
        };
        let range = match fields.get("range") {
            None => Some(DEFAULT_RANGE),
            Some(v) => {
                let key = format!("{prefix}.range");
                self.text(&key, v)
                    .and_then(|text| match parse_duration(&text) {
                        Ok(d) if d.is_zero() => {
                            self.error(v.span(), &key, "must be longer than zero");
                            None
                        }
                        Ok(d) if d > MAX_RANGE => {
                            self.error(v.span(), &key, "must be at most 366 days");
                            None
                        }
                        Ok(d) => Some(d),
                        Err(e) => {
                            self.error(v.span(), &key, e);
                            None
                        }
                    })
            }
        };
        if self.errors.len() > before {
            return None;
        }
        Some(GraphSpec {
            name: name.to_owned(),
            title: title?,
            description: description?,
            query: query?,
            unit: unit?,
            legend: legend?,
            range: range?,
            line: self.line(header.start),
        })
    }
}

#[cfg(test)]
mod tests;
