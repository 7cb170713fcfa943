//! The `[http]` table of an action run by the HTTP runner (`runner = "http"`):
//! its declaration ([`HttpSpec`]), the checks `catalog check` runs on it
//! ([`HttpSpec::check`], one problem per key), and rendering it with an
//! execution's validated parameters into the exact request to send
//! ([`HttpSpec::render`] → [`HttpRequest`]).
//!
//! Templates use the same minijinja syntax as commands, with strict
//! undefined variables. Where a parameter value lands decides how it is
//! inserted, so that a value can only ever fill the place it was put in:
//!
//! * **URL**: the scheme, host and port are literal; a template there is
//!   refused when the catalog loads. In the path, query and fragment, the
//!   output of every `{{ … }}` is percent-encoded: everything but
//!   `A–Z a–z 0–9 - . _ ~` is escaped, so a value cannot add a path segment
//!   (`../admin` → `..%2Fadmin`), a query parameter (`x?y=1`, `a&b=c`), a
//!   fragment (`a#b`) or change the host (`@evil.com`). A rendered path
//!   segment that is `.` or `..` (which URL parsers resolve, climbing a
//!   level) is refused. Credentials in the URL (`user:pass@host`) are refused
//!   too: send them in a header from a `secret` parameter.
//! * **Header values**: inserted as they are; a value with a line break (CR,
//!   LF) or NUL is refused, so it cannot add a header. Header names are
//!   literal; `Host`, `Content-Length`, `Transfer-Encoding` and `Connection`
//!   cannot be set.
//! * **`json`**: a TOML table sent as JSON; every string leaf is a template
//!   whose output becomes one JSON string, so a value cannot add keys or
//!   change the structure. Keys are literal; numbers and booleans written in
//!   the table are sent as they are.
//! * **`body`**: raw text, sent as it renders. A value is inserted as it is,
//!   so in a JSON (or any structured) body use the `tojson` filter, which
//!   writes a value as a JSON literal (`{"version": {{ version | tojson }}}`);
//!   without it a value can change the structure of the body.
//!
//! Not here: sending the request, timeouts, redirects and reading the answer
//! (the engine's HTTP runner), and reading the `[http]` table out of an
//! action file (the catalog loader, which reports [`HttpSpec::check`]'s
//! problems under `http.<key>`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde::Deserialize;

use crate::params::{ParamValue, ValidatedParams, closest};
use crate::template;

/// The methods an action may use.
pub const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Headers Switchboard sets itself, which an action cannot.
const RESERVED_HEADERS: [&str; 4] = ["host", "content-length", "transfer-encoding", "connection"];

/// The `[http]` table of an action file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    /// `GET`, `HEAD`, `POST`, `PUT`, `PATCH`, `DELETE` or `OPTIONS` (any case); default `GET`.
    #[serde(default = "default_method")]
    pub method: String,
    /// A URL template: `https://host/path/{{ param }}?q={{ other }}`.
    pub url: String,
    /// Header names (literal) and value templates.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A raw body template (use `| tojson` for values inside JSON).
    #[serde(default)]
    pub body: Option<String>,
    /// A body sent as JSON, whose string leaves are templates.
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    /// The statuses that mean success; empty means any 2xx.
    #[serde(default)]
    pub expect_status: Vec<u16>,
}

fn default_method() -> String {
    "GET".to_owned()
}

/// A rendered request, ready to send. Its `Debug` shows the method, the
/// header names and the body size only: the URL, header values and body may
/// hold secret values.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Upper case, one of [`METHODS`].
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("headers", &names)
            .field("body_bytes", &self.body.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

impl HttpSpec {
    /// Whether `status` is a success for this action.
    pub fn expects(&self, status: u16) -> bool {
        if self.expect_status.is_empty() {
            (200..300).contains(&status)
        } else {
            self.expect_status.contains(&status)
        }
    }

    /// How the expected statuses read in a message: `2xx`, `200, 201`.
    pub fn expected_text(&self) -> String {
        if self.expect_status.is_empty() {
            "2xx".to_owned()
        } else {
            let shown: Vec<String> = self.expect_status.iter().map(u16::to_string).collect();
            shown.join(", ")
        }
    }

    /// Every problem with the table, each with the key it is about
    /// (`method`, `url`, `headers`, `body`, `json`, `expect_status`).
    /// `declared` lists the action's parameter names.
    pub fn check(&self, declared: &[String]) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        let names: Vec<&str> = declared.iter().map(String::as_str).collect();
        let template_problems =
            |problems: &mut Vec<(&'static str, String)>, key, what: &str, text: &str| {
                for message in check_template(text, &names) {
                    let message = if what.is_empty() {
                        message
                    } else {
                        format!("{what}: {message}")
                    };
                    problems.push((key, message));
                }
            };

        // The URL: template syntax and names, then its literal origin.
        template_problems(&mut problems, "url", "", &self.url);
        if let Err(e) = check_url_template(&self.url, &names) {
            problems.push(("url", e));
        }

        let mut seen = BTreeSet::new();
        for (name, value) in &self.headers {
            if !is_token(name) {
                problems.push((
                    "headers",
                    format!("`{name}` is not a valid header name (and header names cannot use parameters)"),
                ));
                continue;
            }
            let lower = name.to_ascii_lowercase();
            if RESERVED_HEADERS.contains(&lower.as_str()) {
                problems.push((
                    "headers",
                    format!("header `{name}` is set by Switchboard and cannot be given"),
                ));
            }
            if !seen.insert(lower) {
                problems.push((
                    "headers",
                    format!("header `{name}` is given twice (header names ignore case)"),
                ));
            }
            if value.contains(['\r', '\n', '\0']) {
                problems.push((
                    "headers",
                    format!("header `{name}`: a value cannot contain a line break"),
                ));
            }
            template_problems(&mut problems, "headers", &format!("header `{name}`"), value);
        }

        if self.body.is_some() && self.json.is_some() {
            problems.push(("json", "`body` and `json` cannot both be given".to_owned()));
        }
        if let Some(body) = &self.body {
            template_problems(&mut problems, "body", "", body);
        }
        if let Some(json) = &self.json {
            let mut leaves = Vec::new();
            let mut bad_keys = Vec::new();
            json_strings(json, String::new(), &mut leaves, &mut bad_keys);
            for key in bad_keys {
                problems.push((
                    "json",
                    format!("key `{key}`: keys cannot use parameters (only values can)"),
                ));
            }
            for (path, leaf) in leaves {
                template_problems(&mut problems, "json", &format!("`{path}`"), leaf);
            }
        }

        if !METHODS.contains(&self.method.to_ascii_uppercase().as_str()) {
            problems.push((
                "method",
                format!(
                    "`{}` is not a supported method ({})",
                    self.method,
                    METHODS.join(", ")
                ),
            ));
        }
        for status in &self.expect_status {
            if !(100..=599).contains(status) {
                problems.push((
                    "expect_status",
                    format!("{status} is not an HTTP status (100 to 599)"),
                ));
            }
        }
        problems
    }

    /// The request for one execution. `declared` lists every parameter name
    /// of the action, so an absent optional one renders as empty text. An
    /// error names the part that failed and never quotes a value.
    pub fn render(
        &self,
        params: &ValidatedParams,
        declared: &[&str],
    ) -> Result<HttpRequest, String> {
        let method = self.method.to_ascii_uppercase();
        if !METHODS.contains(&method.as_str()) {
            return Err(format!("`{}` is not a supported method", self.method));
        }
        let ctx = context(params, declared);
        let url = render_url(&self.url, &ctx)?;
        let mut headers = Vec::with_capacity(self.headers.len() + 1);
        let plain = environment();
        for (name, value) in &self.headers {
            let rendered = plain
                .render_str(value, &ctx)
                .map_err(|e| format!("header `{name}`: {e}"))?;
            if rendered.contains(['\r', '\n', '\0']) {
                return Err(format!(
                    "header `{name}`: a parameter value contains a line break, which cannot be sent in a header"
                ));
            }
            headers.push((name.clone(), rendered));
        }
        let body = match (&self.body, &self.json) {
            (Some(_), Some(_)) => return Err("`body` and `json` cannot both be given".to_owned()),
            (Some(body), None) => Some(
                plain
                    .render_str(body, &ctx)
                    .map_err(|e| format!("body: {e}"))?
                    .into_bytes(),
            ),
            (None, Some(json)) => {
                let rendered = render_json(&plain, json, &ctx, "")?;
                if !headers
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
                {
                    headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
                }
                Some(serde_json::to_vec(&rendered).map_err(|e| format!("json: {e}"))?)
            }
            (None, None) => None,
        };
        Ok(HttpRequest {
            method,
            url,
            headers,
            body,
        })
    }
}

/// Percent-encodes `text` for any part of a URL: everything but the
/// unreserved characters (`A–Z a–z 0–9 - . _ ~`) is escaped, so the result
/// can add no `/`, `?`, `#`, `&`, `=`, `@` or `%`.
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Checks a URL written in full, with no templates (an inventory source's,
/// say): `http` or `https`, a host, no credentials, no spaces.
pub fn check_literal_url(url: &str) -> Result<(), String> {
    if url.contains("{{") || url.contains("{%") {
        return Err("this URL cannot use templates".to_owned());
    }
    check_rest(split_origin(url)?)
}

/// What follows the scheme and authority of a URL (`https://host:8443`):
/// its path, query and fragment, once the scheme and authority are checked.
fn split_origin(url: &str) -> Result<&str, String> {
    let Some((scheme, after)) = url.split_once("://") else {
        return Err("must start with `http://` or `https://`".to_owned());
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(format!(
            "the scheme must be `http` or `https`, not `{scheme}`"
        ));
    }
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    if authority.contains('@') {
        return Err(
            "credentials do not belong in the URL: send them in a header from a `secret` parameter"
                .to_owned(),
        );
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else {
            return Err(format!("`{authority}` is not a valid host"));
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`{addr}` is not an IPv6 address"));
        }
        match after {
            "" => (addr, None),
            p => match p.strip_prefix(':') {
                Some(port) => (addr, Some(port)),
                None => return Err(format!("`{authority}` is not a valid host")),
            },
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("the URL has no host".to_owned());
    }
    if !authority.starts_with('[')
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(format!("`{host}` is not a valid host name"));
    }
    if let Some(port) = port
        && port.parse::<u16>().map_or(true, |p| p == 0)
    {
        return Err(format!("`{port}` is not a valid port"));
    }
    Ok(rest)
}

/// The path, query and fragment of a rendered URL: printable, and no
/// `.`/`..` path segment.
fn check_rest(rest: &str) -> Result<(), String> {
    if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(
            "the URL contains a space or a control character (write it percent-encoded)".to_owned(),
        );
    }
    let path = &rest[..rest.find(['?', '#']).unwrap_or(rest.len())];
    let dots = path.split('/').any(|segment| {
        let s = segment.to_ascii_lowercase().replace("%2e", ".");
        s == "." || s == ".."
    });
    if dots {
        return Err(
            "the URL path would contain a `.` or `..` segment, which climbs to another path"
                .to_owned(),
        );
    }
    Ok(())
}

/// Checks a URL template: the origin is literal and valid, the rest renders
/// (with placeholder values) to a valid path, query and fragment.
fn check_url_template(url: &str, names: &[&str]) -> Result<(), String> {
    let origin = match url.split_once("://") {
        Some((scheme, after)) => {
            &url[..scheme.len() + 3 + after.find(['/', '?', '#']).unwrap_or(after.len())]
        }
        None => &url[..url.find(['/', '?', '#']).unwrap_or(url.len())],
    };
    if ["{{", "{%", "{#"].iter().any(|t| origin.contains(t)) {
        return Err(
            "the scheme and host cannot use parameters: only the path, query and fragment can"
                .to_owned(),
        );
    }
    split_origin(url)?;
    // Placeholder values stand in for every parameter; a template that
    // cannot render with text values (arithmetic on an integer, say) is
    // checked when it runs instead.
    let ctx: BTreeMap<String, Value> = names
        .iter()
        .map(|n| ((*n).to_owned(), Value::from("x")))
        .collect();
    if let Ok(rendered) = render_url_unchecked(url, &ctx) {
        check_rest(split_origin(&rendered)?)?;
    }
    Ok(())
}

/// Template syntax errors and undeclared names in one template.
fn check_template(text: &str, names: &[&str]) -> Vec<String> {
    match template::variables(text) {
        Err(e) => vec![format!("invalid template: {e}")],
        Ok(vars) => vars
            .iter()
            .filter(|v| !names.contains(&v.as_str()))
            .map(|var| {
                let hint = closest(var, names)
                    .map(|n| format!(" (did you mean `{n}`?)"))
                    .unwrap_or_default();
                format!("`{var}` is not a parameter of this action{hint}")
            })
            .collect(),
    }
}

/// Every string leaf of a JSON value with its path (`a.b[0]`), and the keys
/// that look like templates.
fn json_strings<'a>(
    value: &'a serde_json::Value,
    path: String,
    out: &mut Vec<(String, &'a str)>,
    bad_keys: &mut Vec<&'a str>,
) {
    match value {
        serde_json::Value::String(s) => out.push((path, s)),
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                json_strings(v, format!("{path}[{i}]"), out, bad_keys);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                if k.contains("{{") || k.contains("{%") {
                    bad_keys.push(k);
                }
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                json_strings(v, p, out, bad_keys);
            }
        }
        _ => {}
    }
}

/// Renders the string leaves of `json`; each stays one JSON string.
fn render_json(
    env: &Environment<'_>,
    json: &serde_json::Value,
    ctx: &BTreeMap<String, Value>,
    path: &str,
) -> Result<serde_json::Value, String> {
    use serde_json::Value as J;
    Ok(match json {
        J::String(s) if s.contains("{{") || s.contains("{%") => J::String(
            env.render_str(s, ctx)
                .map_err(|e| format!("json `{path}`: {e}"))?,
        ),
        J::Array(items) => J::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| render_json(env, v, ctx, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        J::Object(map) => J::Object(
            map.iter()
                .map(|(k, v)| {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    Ok((k.clone(), render_json(env, v, ctx, &p)?))
                })
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// The template context: every declared parameter, typed as commands see them.
fn context(params: &ValidatedParams, declared: &[&str]) -> BTreeMap<String, Value> {
    declared
        .iter()
        .map(|name| {
            let v = match params.get(name) {
                Some(ParamValue::List(items)) => Value::from(items.clone()),
                Some(ParamValue::Integer(n)) => Value::from(*n),
                Some(ParamValue::Boolean(b)) => Value::from(*b),
                Some(ParamValue::Number(x)) => Value::from(*x),
                Some(v) => Value::from(v.render()),
                None => Value::from(""),
            };
            ((*name).to_owned(), v)
        })
        .collect()
}

/// Templates that write their values as they are, plus `tojson`.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.add_filter("tojson", tojson);
    env
}

/// `{{ value | tojson }}`: the value as a JSON literal.
fn tojson(value: Value) -> Result<Value, minijinja::Error> {
    serde_json::to_string(&to_json(&value))
        .map(Value::from)
        .map_err(|e| {
            minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!("cannot write the value as JSON: {e}"),
            )
        })
}

/// A template value as JSON (minijinja is built without serde here).
fn to_json(value: &Value) -> serde_json::Value {
    use minijinja::value::ValueKind;
    use serde_json::Value as J;
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => J::Null,
        ValueKind::Bool => J::Bool(value.is_true()),
        ValueKind::Number => match i64::try_from(value.clone()) {
            Ok(n) => n.into(),
            Err(_) => f64::try_from(value.clone())
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or(J::Null, J::Number),
        },
        ValueKind::Map => {
            let mut map = serde_json::Map::new();
            if let Ok(keys) = value.try_iter() {
                for key in keys {
                    let item = value.get_item(&key).unwrap_or_default();
                    let name = key.as_str().map_or_else(|| key.to_string(), str::to_owned);
                    map.insert(name, to_json(&item));
                }
            }
            J::Object(map)
        }
        ValueKind::Seq | ValueKind::Iterable => value
            .try_iter()
            .map(|items| J::Array(items.map(|v| to_json(&v)).collect()))
            .unwrap_or(J::Null),
        _ => value
            .as_str()
            .map_or_else(|| J::String(value.to_string()), |s| J::String(s.to_owned())),
    }
}

/// Renders a URL template with every `{{ … }}` output percent-encoded.
fn render_url_unchecked(url: &str, ctx: &BTreeMap<String, Value>) -> Result<String, String> {
    if !url.contains("{{") && !url.contains("{%") {
        return Ok(url.to_owned());
    }
    let mut env = environment();
    env.set_formatter(|out, _state, value| {
        let text = if value.is_undefined() || value.is_none() {
            String::new()
        } else {
            value.to_string()
        };
        out.write_str(&encode_component(&text))
            .map_err(minijinja::Error::from)
    });
    env.render_str(url, ctx).map_err(|e| format!("url: {e}"))
}

fn render_url(url: &str, ctx: &BTreeMap<String, Value>) -> Result<String, String> {
    let rendered = render_url_unchecked(url, ctx)?;
    let rest = split_origin(&rendered).map_err(|e| format!("url: {e}"))?;
    check_rest(rest).map_err(|e| format!("url: {e}"))?;
    Ok(rendered)
}

/// An HTTP token (RFC 9110): what a header name may be.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

#[cfg(test)]
mod tests;
