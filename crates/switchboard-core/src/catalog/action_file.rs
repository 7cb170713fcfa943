//! Reading one action file: TOML is parsed into a spanned document, then every
//! key is converted on its own, so that one bad key does not hide the next.
//! Each problem is recorded with its line and dotted key.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::{Action, Alias, CatalogError, Runner};
use crate::alias::AliasFormat;
use crate::ids::ActionName;
use crate::params::{ParamSpec, ParamType, closest, parse_duration};
use crate::template;

pub(super) type Value<'i> = Spanned<DeValue<'i>>;

/// What a file of the catalog declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `actions/**/*.toml`: one action.
    Action,
    /// `workflows/**/*.toml`: one workflow, an action whose runner is
    /// `workflow`, with `steps`.
    Workflow,
}

/// The keys a workflow file has besides an action's.
const WORKFLOW_KEYS: [&str; 3] = ["steps", "output", "run_as"];

const ACTION_KEYS: [&str; 15] = [
    "approval",
    "http",
    "graph",
    "name",
    "description",
    "runner",
    "command",
    "timeout",
    "tags",
    "concurrency",
    "env",
    "working_dir",
    "idempotent",
    "params",
    "aliases",
];
const PARAM_KEYS: [&str; 8] = [
    "type",
    "required",
    "default",
    "description",
    "choices",
    "pattern",
    "min",
    "max",
];
const ALIAS_KEYS: [&str; 3] = ["format", "ack", "description"];
/// Longest accepted action timeout.
const MAX_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

pub(super) struct Reader<'a> {
    file: &'a Path,
    src: &'a str,
    errors: &'a mut Vec<CatalogError>,
    pub(super) found: usize,
}

impl Reader<'_> {
    /// The 1-based line of a byte offset.
    pub(super) fn line(&self, offset: usize) -> usize {
        crate::catalog::line_at(self.src, offset)
    }

    pub(super) fn error(&mut self, span: Range<usize>, key: &str, message: impl Into<String>) {
        let line = self.line(span.start);
        self.errors.push(CatalogError {
            file: self.file.to_path_buf(),
            line: Some(line),
            key: (!key.is_empty()).then(|| key.to_owned()),
            message: message.into(),
        });
        self.found += 1;
    }

    /// Converts one value with serde, recording a failure.
    pub(super) fn convert<T: DeserializeOwned>(
        &mut self,
        key: &str,
        value: &Value<'_>,
    ) -> Option<T> {
        match T::deserialize(ValueDeserializer::from(value.clone())) {
            Ok(v) => Some(v),
            Err(e) => {
                let span = e.span().unwrap_or_else(|| value.span());
                self.error(span, key, e.message().trim().to_owned());
                None
            }
        }
    }

    /// The entries of a table, complaining about keys not in `allowed`.
    pub(super) fn entries<'t, 'i>(
        &mut self,
        prefix: &str,
        table: &'t DeTable<'i>,
        allowed: &[&str],
    ) -> BTreeMap<String, &'t Value<'i>> {
        let mut out = BTreeMap::new();
        for (key, value) in table.iter() {
            let name: &str = key.get_ref();
            if allowed.contains(&name) {
                out.insert(name.to_owned(), value);
            } else {
                let hint = closest(name, allowed)
                    .map(|n| format!(" (did you mean `{n}`?)"))
                    .unwrap_or_default();
                self.error(
                    key.span(),
                    &join(prefix, name),
                    format!("unknown key{hint}"),
                );
            }
        }
        out
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Loads one action file; `None` when it has any problem (all recorded).
pub(super) fn load(
    root: &Path,
    rel: &Path,
    src: &str,
    kind: Kind,
    errors: &mut Vec<CatalogError>,
) -> Option<Action> {
    let (doc, syntax) = DeTable::parse_recoverable(src);
    let mut r = Reader {
        file: rel,
        src,
        errors,
        found: 0,
    };
    if !syntax.is_empty() {
        for e in syntax {
            r.error(
                e.span().unwrap_or(0..0),
                "",
                format!("invalid TOML: {}", e.message().trim()),
            );
        }
        return None;
    }
    let whole = doc.span();
    let allowed: Vec<&str> = match kind {
        Kind::Action => ACTION_KEYS.to_vec(),
        Kind::Workflow => ACTION_KEYS.iter().chain(&WORKFLOW_KEYS).copied().collect(),
    };
    let fields = r.entries("", doc.get_ref(), &allowed);
    let text =
        |r: &mut Reader<'_>, key: &str| fields.get(key).and_then(|v| r.convert::<String>(key, v));

    let name = match fields.get("name") {
        None => {
            r.error(
                whole.clone(),
                "name",
                "missing (every action needs a name such as `host.reboot`)",
            );
            None
        }
        Some(v) => r
            .convert::<String>("name", v)
            .and_then(|n| match ActionName::new(n) {
                Ok(n) => Some(n),
                Err(e) => {
                    r.error(v.span(), "name", e.to_string());
                    None
                }
            }),
    };
    let description = text(&mut r, "description").unwrap_or_default();
    if description.trim().is_empty() {
        let span = fields
            .get("description")
            .map_or(whole.clone(), |v| v.span());
        r.error(
            span,
            "description",
            "missing (say in a sentence what the action does)",
        );
    }
    let runner = match (fields.get("runner"), kind) {
        (None, Kind::Workflow) => Some(Runner::Workflow),
        (Some(v), Kind::Workflow) => match r.convert::<String>("runner", v).as_deref() {
            Some("workflow") => Some(Runner::Workflow),
            Some(other) => {
                r.error(
                    v.span(),
                    "runner",
                    format!("a file in `workflows/` is a workflow; its runner is `workflow`, not `{other}`"),
                );
                None
            }
            None => None,
        },
        (None, Kind::Action) => Some(Runner::Local),
        (Some(v), Kind::Action) => match r.convert::<String>("runner", v).as_deref() {
            Some("local") => Some(Runner::Local),
            Some("ssh") => Some(Runner::Ssh),
            Some("http") => Some(Runner::Http),
            Some("query") => Some(Runner::Query),
            Some("workflow") => {
                r.error(
                    v.span(),
                    "runner",
                    "a workflow is declared in its own file under `workflows/`, with its `[[steps]]`",
                );
                None
            }
            Some(other) => {
                r.error(
                    v.span(),
                    "runner",
                    format!("unknown runner `{other}` (available: {})", Runner::NAMES),
                );
                None
            }
            None => None,
        },
    };
    let timeout = match fields.get("timeout") {
        None if kind == Kind::Workflow => Some(super::workflow_file::DEFAULT_TIMEOUT),
        None => Some(Duration::from_secs(600)),
        Some(v) => {
            let raw = if v.get_ref().is_integer() {
                r.convert::<u64>("timeout", v).map(|n| n.to_string())
            } else {
                r.convert::<String>("timeout", v)
            };
            match raw.map(|t| parse_duration(&t)) {
                Some(Ok(d)) if d.is_zero() => {
                    r.error(v.span(), "timeout", "must be longer than zero");
                    None
                }
                Some(Ok(d)) if d > MAX_TIMEOUT => {
                    r.error(v.span(), "timeout", "must be at most 7 days");
                    None
                }
                Some(Ok(d)) => Some(d),
                Some(Err(e)) => {
                    r.error(v.span(), "timeout", e);
                    None
                }
                None => None,
            }
        }
    };
    let tags = fields
        .get("tags")
        .and_then(|v| r.convert::<Vec<String>>("tags", v))
        .unwrap_or_default();
    let concurrency =
        fields
            .get("concurrency")
            .and_then(|v| match r.convert::<i64>("concurrency", v) {
                Some(n) if n >= 1 => usize::try_from(n).ok(),
                Some(_) => {
                    r.error(v.span(), "concurrency", "must be at least 1");
                    None
                }
                None => None,
            });
    let idempotent = fields
        .get("idempotent")
        .and_then(|v| r.convert::<bool>("idempotent", v))
        .unwrap_or(false);
    let approval = fields
        .get("approval")
        .and_then(|v| read_approval(&mut r, v));
    let env = fields
        .get("env")
        .map(|v| read_env(&mut r, v))
        .unwrap_or_default();
    let working_dir = fields.get("working_dir").and_then(|v| {
        let dir = PathBuf::from(r.convert::<String>("working_dir", v)?);
        if dir.is_absolute()
            || dir
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            r.error(
                v.span(),
                "working_dir",
                "must be a folder inside the catalog, without `..`",
            );
            None
        } else if !root.join(&dir).is_dir() {
            r.error(
                v.span(),
                "working_dir",
                format!("folder `{}` does not exist in the catalog", dir.display()),
            );
            None
        } else {
            Some(dir)
        }
    });
    let params = match fields.get("params") {
        None => Vec::new(),
        Some(v) => match v.get_ref().as_table() {
            Some(t) => read_params(&mut r, t),
            None => {
                r.error(
                    v.span(),
                    "params",
                    "must be a table of `[params.NAME]` sections",
                );
                Vec::new()
            }
        },
    };
    // Names of every declared parameter, broken ones included, so that a bad
    // parameter is reported once and not again wherever it is used.
    let declared: Vec<String> = fields
        .get("params")
        .and_then(|v| v.get_ref().as_table())
        .map(|t| t.iter().map(|(k, _)| k.get_ref().to_string()).collect())
        .unwrap_or_default();
    let needs_command = matches!(runner, Some(Runner::Local | Runner::Ssh));
    let command = match fields.get("command") {
        Some(v) if needs_command => r.convert::<Vec<String>>("command", v).map(|c| {
            // A remote program is not a file of the catalog.
            let local_root = (runner == Some(Runner::Local)).then_some(root);
            check_command(&mut r, local_root, v.span(), c, &declared)
        }),
        Some(v) => {
            if let Some(runner) = runner {
                r.error(
                    v.span(),
                    "command",
                    format!("an action run by `{}` has no command", runner.as_str()),
                );
            }
            None
        }
        None if needs_command => {
            r.error(
                whole.clone(),
                "command",
                "missing (the program and its arguments, e.g. `[\"scripts/uptime.sh\"]`)",
            );
            None
        }
        None => Some(Vec::new()),
    };
    let http = read_http(
        &mut r,
        fields.get("http").copied(),
        runner,
        &whole,
        &declared,
    );
    let graph = read_graph(&mut r, fields.get("graph").copied(), runner, &whole);
    // What only a local process has.
    if let Some(runner) = runner.filter(|r| *r != Runner::Local) {
        for key in ["env", "working_dir"] {
            if let Some(v) = fields.get(key) {
                r.error(
                    v.span(),
                    key,
                    format!(
                        "only `local` actions have `{key}`; this one's runner is `{}`",
                        runner.as_str()
                    ),
                );
            }
        }
    }
    if runner == Some(Runner::Query) {
        let span = fields.get("params").map_or(whole.clone(), |v| v.span());
        for p in &params {
            if p.is_secret() {
                r.error(
                    span.clone(),
                    &format!("params.{}", p.name),
                    "a `query` action cannot take a secret: its values go into the query sent to Prometheus and into the result",
                );
            }
            if p.name == "range" && p.ty != ParamType::Duration {
                r.error(
                    span.clone(),
                    "params.range",
                    "the `range` of a `query` action is how far back to draw: it must be of type `duration`",
                );
            }
        }
    }
    if runner == Some(Runner::Ssh) {
        let span = fields.get("params").map_or(whole.clone(), |v| v.span());
        for p in params.iter().filter(|p| p.ty == ParamType::Host) {
            if !p.required && p.default.is_none() {
                r.error(
                    span.clone(),
                    &format!("params.{}", p.name),
                    "the hosts of an `ssh` action must be given: make it `required = true` or give it a `default`",
                );
            }
        }
        let hosts = params.iter().filter(|p| p.ty == ParamType::Host).count();
        if hosts != 1 {
            let span = fields.get("params").map_or(whole.clone(), |v| v.span());
            r.error(
                span,
                "params",
                format!(
                    "an `ssh` action needs exactly one parameter of type `host` (the hosts it runs on); it has {hosts}"
                ),
            );
        }
    }
    let aliases = fields
        .get("aliases")
        .map(|v| read_aliases(&mut r, v, &params, &declared))
        .unwrap_or_default();
    let workflow = match kind {
        Kind::Workflow => {
            super::workflow_file::read(&mut r, &fields, &whole).map(std::sync::Arc::new)
        }
        Kind::Action => None,
    };

    if r.found > 0 {
        return None;
    }
    Some(Action {
        name: name?,
        description,
        runner: runner?,
        command: command?,
        timeout: timeout?,
        tags,
        params,
        aliases,
        concurrency,
        env,
        working_dir,
        idempotent,
        approval,
        http,
        graph,
        workflow,
        file: rel.to_path_buf(),
    })
}

fn read_approval(r: &mut Reader<'_>, v: &Value<'_>) -> Option<super::ApprovalRule> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Raw {
        approvers: OneOrMany,
        count: Option<u32>,
        expires: Option<String>,
    }
    let raw: Raw = r.convert("approval", v)?;
    let texts = match raw.approvers {
        OneOrMany::One(t) => vec![t],
        OneOrMany::Many(ts) => ts,
    };
    match super::ApprovalRule::from_parts(&texts, raw.count, raw.expires.as_deref()) {
        Ok(rule) => Some(rule),
        Err(problems) => {
            for (part, message) in problems {
                r.error(v.span(), &format!("approval.{part}"), message);
            }
            None
        }
    }
}

fn read_env(r: &mut Reader<'_>, v: &Value<'_>) -> BTreeMap<String, String> {
    let Some(map) = r.convert::<BTreeMap<String, String>>("env", v) else {
        return BTreeMap::new();
    };
    for key in map.keys() {
        let valid = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            r.error(
                v.span(),
                &format!("env.{key}"),
                "not a valid environment variable name",
            );
        } else if key.starts_with("SB_") {
            r.error(
                v.span(),
                &format!("env.{key}"),
                "names starting with `SB_` are reserved for Switchboard",
            );
        }
    }
    map
}

fn read_params(r: &mut Reader<'_>, table: &DeTable<'_>) -> Vec<ParamSpec> {
    let mut specs = Vec::new();
    for (name, value) in table.iter() {
        let name: &str = name.get_ref();
        let prefix = format!("params.{name}");
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            r.error(
                value.span(),
                &prefix,
                "parameter names use lowercase letters, digits and `_`, starting with a letter",
            );
            continue;
        }
        let Some(t) = value.get_ref().as_table() else {
            r.error(
                value.span(),
                &prefix,
                "must be a table with at least `type`",
            );
            continue;
        };
        if let Some(spec) = read_param(r, &prefix, name, value.span(), t) {
            specs.push(spec);
        }
    }
    specs
}

fn read_param(
    r: &mut Reader<'_>,
    prefix: &str,
    name: &str,
    span: Range<usize>,
    t: &DeTable<'_>,
) -> Option<ParamSpec> {
    let before = r.found;
    let f = r.entries(prefix, t, &PARAM_KEYS);
    let key = |k: &str| format!("{prefix}.{k}");
    let ty = match f.get("type") {
        None => {
            r.error(span.clone(), &key("type"), "missing");
            None
        }
        Some(v) => r
            .convert::<String>(&key("type"), v)
            .and_then(|s| match ParamType::parse(&s) {
                Some(t) => Some(t),
                None => {
                    let names: Vec<&str> = ParamType::ALL.iter().map(|t| t.as_str()).collect();
                    let hint = closest(&s, &names)
                        .map(|n| format!("did you mean `{n}`? "))
                        .unwrap_or_default();
                    r.error(
                        v.span(),
                        &key("type"),
                        format!("unknown type `{s}` ({hint}types: {})", names.join(" ")),
                    );
                    None
                }
            }),
    }?;
    let mut spec = ParamSpec::new(name, ty);
    spec.required = f
        .get("required")
        .and_then(|v| r.convert(&key("required"), v))
        .unwrap_or(false);
    spec.description = f
        .get("description")
        .and_then(|v| r.convert(&key("description"), v))
        .unwrap_or_default();
    if let Some(v) = f.get("choices") {
        if ty == ParamType::Enum {
            spec.choices = r.convert(&key("choices"), v).unwrap_or_default();
        } else {
            r.error(
                v.span(),
                &key("choices"),
                "only `enum` parameters take choices",
            );
        }
    }
    if ty == ParamType::Enum && spec.choices.is_empty() && !f.contains_key("choices") {
        r.error(
            span.clone(),
            &key("choices"),
            "an `enum` parameter needs a non-empty list of choices",
        );
    }
    if let Some(v) = f.get("pattern") {
        if matches!(ty, ParamType::String | ParamType::Secret) {
            if let Some(p) = r.convert::<String>(&key("pattern"), v) {
                match regex::Regex::new(&format!("^(?:{p})$")) {
                    Ok(re) => spec.pattern = Some(re),
                    Err(e) => r.error(
                        v.span(),
                        &key("pattern"),
                        format!("invalid regular expression: {e}"),
                    ),
                }
            }
        } else {
            r.error(
                v.span(),
                &key("pattern"),
                "only `string` and `secret` parameters take a pattern",
            );
        }
    }
    for bound in ["min", "max"] {
        let Some(v) = f.get(bound) else { continue };
        if !matches!(ty, ParamType::Integer | ParamType::Number) {
            r.error(
                v.span(),
                &key(bound),
                "only `integer` and `number` parameters take bounds",
            );
            continue;
        }
        let x = r.convert::<f64>(&key(bound), v);
        if bound == "min" {
            spec.min = x
        } else {
            spec.max = x
        }
    }
    if let (Some(min), Some(max)) = (spec.min, spec.max)
        && min > max
    {
        r.error(
            span.clone(),
            &key("min"),
            format!("min {min} is above max {max}"),
        );
    }
    if let Some(v) = f.get("default") {
        if ty == ParamType::Secret {
            r.error(
                v.span(),
                &key("default"),
                "a `secret` parameter cannot have a default (it would sit in the catalog in clear)",
            );
        } else if let Some(json) = r.convert::<serde_json::Value>(&key("default"), v) {
            match spec.coerce(&json) {
                Ok(d) => spec.default = Some(d),
                Err(e) => r.error(
                    v.span(),
                    &key("default"),
                    format!("default does not fit the type: {e}"),
                ),
            }
        }
    }
    (r.found == before).then_some(spec)
}

/// The `[http]` table of an `http` action (and of no other).
fn read_http(
    r: &mut Reader<'_>,
    value: Option<&Value<'_>>,
    runner: Option<Runner>,
    whole: &Range<usize>,
    declared: &[String],
) -> Option<crate::http_request::HttpSpec> {
    match (value, runner) {
        (Some(v), Some(Runner::Http)) => {
            let spec = r.convert::<crate::http_request::HttpSpec>("http", v)?;
            let problems = spec.check(declared);
            for (key, message) in &problems {
                r.error(v.span(), &format!("http.{key}"), message.clone());
            }
            problems.is_empty().then_some(spec)
        }
        (Some(v), Some(other)) => {
            r.error(
                v.span(),
                "http",
                format!(
                    "only `http` actions have an `[http]` table; this one's runner is `{}`",
                    other.as_str()
                ),
            );
            None
        }
        (None, Some(Runner::Http)) => {
            r.error(
                whole.clone(),
                "http",
                "missing: an `http` action needs an `[http]` table with at least `url`",
            );
            None
        }
        _ => None,
    }
}

/// The `graph` of a `query` action: a name in `graphs.toml` (checked by the
/// catalog, which has read that file).
fn read_graph(
    r: &mut Reader<'_>,
    value: Option<&Value<'_>>,
    runner: Option<Runner>,
    whole: &Range<usize>,
) -> Option<String> {
    match (value, runner) {
        (Some(v), Some(Runner::Query)) => r.convert::<String>("graph", v),
        (Some(v), Some(other)) => {
            r.error(
                v.span(),
                "graph",
                format!(
                    "only `query` actions name a graph; this one's runner is `{}`",
                    other.as_str()
                ),
            );
            None
        }
        (None, Some(Runner::Query)) => {
            r.error(
                whole.clone(),
                "graph",
                "missing: a `query` action names its graph in `graphs.toml` (`graph = \"cpu\"`)",
            );
            None
        }
        _ => None,
    }
}

fn check_command(
    r: &mut Reader<'_>,
    root: Option<&Path>,
    span: Range<usize>,
    command: Vec<String>,
    declared: &[String],
) -> Vec<String> {
    let Some(program) = command.first() else {
        r.error(span, "command", "must name at least the program to run");
        return command;
    };
    let names: Vec<&str> = declared.iter().map(String::as_str).collect();
    for (i, element) in command.iter().enumerate() {
        let key = format!("command[{i}]");
        match template::variables(element) {
            Err(e) => r.error(span.clone(), &key, format!("invalid template: {e}")),
            Ok(vars) if i == 0 && !vars.is_empty() => r.error(
                span.clone(),
                &key,
                "the program itself cannot be chosen by a parameter",
            ),
            Ok(vars) => {
                for var in vars.iter().filter(|v| !names.contains(&v.as_str())) {
                    let hint = closest(var, &names)
                        .map(|n| format!(" (did you mean `{n}`?)"))
                        .unwrap_or_default();
                    r.error(
                        span.clone(),
                        &key,
                        format!("`{var}` is not a parameter of this action{hint}"),
                    );
                }
            }
        }
    }
    if let Some(root) = root.filter(|_| program.contains('/')) {
        let path = root.join(program);
        match std::fs::metadata(&path) {
            Err(_) => r.error(
                span,
                "command[0]",
                format!("program `{program}` does not exist"),
            ),
            Ok(m) if !m.is_file() => r.error(
                span,
                "command[0]",
                format!("program `{program}` is not a file"),
            ),
            Ok(m) => {
                use std::os::unix::fs::PermissionsExt;
                if m.permissions().mode() & 0o111 == 0 {
                    r.error(
                        span,
                        "command[0]",
                        format!("program `{program}` is not executable (chmod +x)"),
                    );
                }
            }
        }
    }
    command
}

fn read_aliases(
    r: &mut Reader<'_>,
    v: &Value<'_>,
    params: &[ParamSpec],
    declared: &[String],
) -> Vec<Alias> {
    let Some(items) = v.get_ref().as_array() else {
        r.error(
            v.span(),
            "aliases",
            "must be a list of `[[aliases]]` sections",
        );
        return Vec::new();
    };
    let mut aliases = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let prefix = format!("aliases[{i}]");
        let Some(t) = item.get_ref().as_table() else {
            r.error(item.span(), &prefix, "must be a table with a `format`");
            continue;
        };
        let f = r.entries(&prefix, t, &ALIAS_KEYS);
        let key = |k: &str| format!("{prefix}.{k}");
        let ack = f.get("ack").and_then(|v| r.convert(&key("ack"), v));
        let description = f
            .get("description")
            .and_then(|v| r.convert(&key("description"), v));
        let Some(fv) = f.get("format") else {
            r.error(item.span(), &key("format"), "missing");
            continue;
        };
        let Some(text) = r.convert::<String>(&key("format"), fv) else {
            continue;
        };
        let format = match AliasFormat::parse(&text) {
            Ok(f) => f,
            Err(e) => {
                r.error(fv.span(), &key("format"), e);
                continue;
            }
        };
        for c in format.captures() {
            match params.iter().find(|p| p.name == c.name) {
                None if declared.contains(&c.name) => {}
                None => r.error(
                    fv.span(),
                    &key("format"),
                    format!("`{{{}}}` is not a parameter of this action", c.name),
                ),
                Some(p) if p.is_secret() => r.error(
                    fv.span(),
                    &key("format"),
                    format!("secret parameter `{}` cannot be typed in chat", c.name),
                ),
                Some(p) if c.optional && p.required && p.default.is_none() => r.error(
                    fv.span(),
                    &key("format"),
                    format!(
                        "required parameter `{}` sits in an optional group and has no default",
                        c.name
                    ),
                ),
                Some(_) => {}
            }
        }
        aliases.push(Alias {
            format,
            ack,
            description,
            line: r.line(fv.span().start),
        });
    }
    aliases
}
