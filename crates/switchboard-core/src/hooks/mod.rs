//! Inbound webhooks: the catalog's `hooks.toml`. A hook is a URL
//! (`POST /api/v1/hooks/NAME`) that runs an action when a request signed
//! with the hook's secret arrives, its parameters taken from the JSON body
//! and the headers.
//!
//! ```toml
//! [[hooks]]
//! name   = "deploy-on-push"
//! action = "app.deploy"
//! run_as = "svc:github"               # the principal the run is requested as
//! secret = "env:GITHUB_HOOK_SECRET"   # a reference, never the secret
//! [hooks.signature]                   # all optional; GitHub's form by default
//! header           = "X-Hub-Signature-256"
//! algorithm        = "sha256"         # sha1, sha256, sha512
//! encoding         = "hex"            # hex, base64
//! prefix           = "sha256="
//! timestamp_header = "X-Timestamp"    # then `{timestamp}.{body}` is signed
//! signed           = "{timestamp}.{body}"
//! replay_window    = "5m"
//! delivery_header  = "X-GitHub-Delivery"
//! [hooks.params]
//! ref = "{{ body.ref }}"
//! ```
//!
//! Owns reading the file ([`Hooks::parse`]), the signature
//! ([`signature`]) and rendering a request's parameters
//! ([`Hook::params_for`]: minijinja, strict, so a field the body lacks is
//! an error naming the parameter and its template). Not here: checking the
//! action (the catalog), resolving the secret, remembering delivery ids,
//! and running (the engine).

pub mod signature;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use minijinja::value::{Serde, Value};
use minijinja::{AutoEscape, Environment, UndefinedBehavior, context};
use toml::de::DeTable;

use crate::alerts::toml_reader::{Item, Reader, join};
use crate::catalog::CatalogError;
use crate::params::closest;
use crate::schedules::{MAX_NAME, valid_trigger_name};
use crate::secret::SecretRef;
pub use signature::{Algorithm, Encoding, Rejection, SignatureSpec, SignedText, Verified};

/// The file, relative to the catalog root.
pub const FILE: &str = "hooks.toml";

const TOP_KEYS: [&str; 1] = ["hooks"];
const HOOK_KEYS: [&str; 7] = [
    "name",
    "description",
    "action",
    "run_as",
    "secret",
    "signature",
    "params",
];
const SIGNATURE_KEYS: [&str; 8] = [
    "header",
    "algorithm",
    "encoding",
    "prefix",
    "timestamp_header",
    "signed",
    "replay_window",
    "delivery_header",
];

/// One hook.
#[derive(Debug, Clone)]
pub struct Hook {
    pub name: String,
    pub description: String,
    pub action: String,
    pub run_as: String,
    /// Where the shared secret is; resolved on each request.
    pub secret: SecretRef,
    pub signature: SignatureSpec,
    /// Parameter name → template over `body` and `headers`.
    pub params: BTreeMap<String, String>,
    /// The line of its `[[hooks]]` entry.
    pub line: usize,
}

/// A parameter whose template failed for a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ParamFailure {
    /// `params.NAME`.
    pub field: String,
    pub message: String,
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env
}

/// A minijinja error without the template source it may quote.
fn describe(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    }
}

impl Hook {
    /// The action's parameters for a request: each template rendered over
    /// `body` (the parsed JSON) and `headers` (lower-case names).
    pub fn params_for(
        &self,
        body: &serde_json::Value,
        headers: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, ParamFailure> {
        let env = environment();
        let ctx = context! { body => Value::from(Serde(body)), headers => headers };
        self.params
            .iter()
            .map(|(name, template)| {
                env.render_str(template, &ctx)
                    .map(|value| (name.clone(), value))
                    .map_err(|e| ParamFailure {
                        field: format!("params.{name}"),
                        message: format!("`{template}`: {}", describe(&e)),
                    })
            })
            .collect()
    }
}

/// The hooks of a catalog, in file order.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    list: Vec<Hook>,
}

impl Hooks {
    /// The hooks of the text of a `hooks.toml`, or every problem in it.
    pub fn parse(text: &str) -> Result<Self, Vec<CatalogError>> {
        let mut r = Reader {
            file: FILE,
            src: text,
            errors: Vec::new(),
        };
        let (doc, syntax) = DeTable::parse_recoverable(text);
        if !syntax.is_empty() {
            for e in syntax {
                let message = format!("invalid TOML: {}", e.message().trim());
                r.error(e.span().unwrap_or(0..0), "", message);
            }
            return Err(r.errors);
        }
        let top = r.fields(doc.get_ref(), "", &TOP_KEYS);
        let mut list: Vec<Hook> = Vec::new();
        if let Some(v) = top.get("hooks") {
            for it in r.tables(v, "hooks", &HOOK_KEYS) {
                let before = r.errors.len();
                let hook = read_hook(&mut r, &it);
                if let Some(hook) = hook
                    && r.errors.len() == before
                {
                    if list.iter().any(|h| h.name == hook.name) {
                        r.error(
                            it.fields.get("name").map_or(it.entry.span(), |v| v.span()),
                            &it.key("name"),
                            format!("hook `{}` is declared twice", hook.name),
                        );
                    } else {
                        list.push(hook);
                    }
                }
            }
        }
        if r.errors.is_empty() {
            Ok(Self { list })
        } else {
            Err(r.errors)
        }
    }

    pub fn get(&self, name: &str) -> Option<&Hook> {
        self.list.iter().find(|h| h.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Hook> {
        self.list.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

fn read_hook(r: &mut Reader<'_>, it: &Item<'_, '_>) -> Option<Hook> {
    let f = &it.fields;
    let name = r.item_name(it);
    let name_span = f.get("name").map_or(it.entry.span(), |v| v.span());
    if let Some(n) = &name
        && !valid_trigger_name(n)
    {
        r.error(
            name_span,
            &it.key("name"),
            format!("`{n}` must be 1 to {MAX_NAME} letters, digits, `.`, `_` or `-` (it is a URL segment)"),
        );
    }
    let action = r.required(it, "action");
    let run_as = r.required(it, "run_as");
    let secret = r
        .required(it, "secret")
        .and_then(|text| match SecretRef::parse(&text) {
            Ok(s) => Some(s),
            Err(e) => {
                r.error(f["secret"].span(), &it.key("secret"), e.to_string());
                None
            }
        });
    let description = f
        .get("description")
        .and_then(|v| r.string(v, &it.key("description")))
        .unwrap_or_default();
    let signature = match f.get("signature") {
        None => Some(SignatureSpec::default()),
        Some(v) => read_signature(r, v, &it.key("signature")),
    };
    let mut params = BTreeMap::new();
    if let Some(p) = f.get("params")
        && let Some(t) = r.table(p, &it.key("params"))
    {
        for (pname, value) in t.iter() {
            let key = join(&it.key("params"), pname.get_ref());
            let Some(template) = r.string(value, &key) else {
                continue;
            };
            match template_variables(&template) {
                Err(e) => r.error(value.span(), &key, format!("not a template: {e}")),
                Ok(vars) => {
                    for var in vars.iter().filter(|v| *v != "body" && *v != "headers") {
                        r.error(
                            value.span(),
                            &key,
                            format!("`{var}` is unknown: a template reads `body` and `headers`"),
                        );
                    }
                }
            }
            params.insert(pname.get_ref().to_string(), template);
        }
    }
    Some(Hook {
        name: name?,
        description,
        action: action?,
        run_as: run_as?,
        secret: secret?,
        signature: signature?,
        params,
        line: r.line(it.entry.span().start),
    })
}

fn template_variables(source: &str) -> Result<BTreeSet<String>, String> {
    let env = environment();
    let tmpl = env.template_from_str(source).map_err(|e| describe(&e))?;
    Ok(tmpl.undeclared_variables(false).into_iter().collect())
}

/// A header name as HTTP allows it, kept in lower case.
fn header_name(
    r: &mut Reader<'_>,
    v: &crate::alerts::toml_reader::Entry<'_>,
    key: &str,
) -> Option<String> {
    let name = r.name(v, key)?;
    if name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    {
        Some(name.to_ascii_lowercase())
    } else {
        r.error(v.span(), key, format!("`{name}` is not a header name"));
        None
    }
}

fn read_signature(
    r: &mut Reader<'_>,
    v: &crate::alerts::toml_reader::Entry<'_>,
    key: &str,
) -> Option<SignatureSpec> {
    let table = r.table(v, key)?;
    let f = r.fields(table, key, &SIGNATURE_KEYS);
    let before = r.errors.len();
    let mut spec = SignatureSpec::default();
    if let Some(h) = f
        .get("header")
        .and_then(|h| header_name(r, h, &join(key, "header")))
    {
        spec.header = h;
    }
    let choice = |r: &mut Reader<'_>, field: &str, names: &[&'static str]| {
        let entry = f.get(field)?;
        let k = join(key, field);
        let text = r.string(entry, &k)?;
        if names.contains(&text.as_str()) {
            Some(text)
        } else {
            let hint = closest(&text, names)
                .map(|n| format!(" (did you mean `{n}`?)"))
                .unwrap_or_default();
            r.error(
                entry.span(),
                &k,
                format!("must be one of {}, not `{text}`{hint}", names.join(", ")),
            );
            None
        }
    };
    if let Some(a) = choice(r, "algorithm", &Algorithm::NAMES).and_then(|a| Algorithm::parse(&a)) {
        spec.algorithm = a;
        spec.prefix = format!("{}=", a.as_str());
    }
    if let Some(e) = choice(r, "encoding", &Encoding::NAMES).and_then(|e| Encoding::parse(&e)) {
        spec.encoding = e;
    }
    if let Some(p) = f
        .get("prefix")
        .and_then(|p| r.string(p, &join(key, "prefix")))
    {
        spec.prefix = p;
    }
    spec.timestamp_header = f
        .get("timestamp_header")
        .and_then(|h| header_name(r, h, &join(key, "timestamp_header")));
    spec.delivery_header = f
        .get("delivery_header")
        .and_then(|h| header_name(r, h, &join(key, "delivery_header")));
    if let Some(w) = f
        .get("replay_window")
        .and_then(|w| r.duration(w, &join(key, "replay_window"), true))
    {
        spec.replay_window = w;
    }
    let signed_key = join(key, "signed");
    match f.get("signed") {
        Some(s) => {
            if let Some(form) = r.string(s, &signed_key) {
                match SignedText::parse(&form) {
                    Ok(t) if t.uses_timestamp() && spec.timestamp_header.is_none() => r.error(
                        s.span(),
                        &signed_key,
                        "uses `{timestamp}`, so `timestamp_header` must name its header",
                    ),
                    Ok(t) => spec.signed = t,
                    Err(e) => r.error(s.span(), &signed_key, e),
                }
            }
        }
        None if spec.timestamp_header.is_some() => {
            spec.signed = SignedText(vec![
                signature::Piece::Timestamp,
                signature::Piece::Text(".".to_owned()),
                signature::Piece::Body,
            ]);
        }
        None => {}
    }
    (r.errors.len() == before).then_some(spec)
}

/// Every hook names an action of the catalog, maps only its parameters,
/// and maps each of its required parameters that has no default.
pub(crate) fn check_actions(
    hooks: &Hooks,
    actions: &BTreeMap<crate::ids::ActionName, std::sync::Arc<crate::catalog::Action>>,
    errors: &mut Vec<CatalogError>,
) {
    for (i, hook) in hooks.iter().enumerate() {
        let error = |key: String, message: String| CatalogError {
            file: FILE.into(),
            line: Some(hook.line),
            key: Some(key),
            message,
        };
        let at = format!("hooks[{i}]");
        let Some(action) = actions.values().find(|a| a.name.as_str() == hook.action) else {
            let names: Vec<&str> = actions.keys().map(|n| n.as_str()).collect();
            let hint = closest(&hook.action, &names)
                .map(|n| format!(" (did you mean `{n}`?)"))
                .unwrap_or_default();
            errors.push(error(
                join(&at, "action"),
                format!("unknown action `{}`{hint}", hook.action),
            ));
            continue;
        };
        for name in hook.params.keys() {
            if !action.params.iter().any(|p| p.name == *name) {
                let known = action.param_names();
                let hint = closest(name, &known)
                    .map(|n| format!(" (did you mean `{n}`?)"))
                    .unwrap_or_default();
                errors.push(error(
                    join(&join(&at, "params"), name),
                    format!("`{name}` is not a parameter of `{}`{hint}", hook.action),
                ));
            }
        }
        for p in &action.params {
            if p.required && p.default.is_none() && !hook.params.contains_key(&p.name) {
                errors.push(error(
                    join(&at, "params"),
                    format!(
                        "`{}` needs parameter `{}`: map it from the request",
                        hook.action, p.name
                    ),
                ));
            }
        }
    }
}
