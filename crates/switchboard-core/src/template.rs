//! Command templating: renders an action's `command` elements with its
//! validated parameters. Each element renders to exactly one argv element —
//! except an element that is exactly `{{ name }}`, which renders a `list` as
//! one argument per item and an absent optional parameter as no argument.
//! Nothing is ever joined into a shell string.
//!
//! Templates use minijinja syntax with strict undefined variables; validation
//! of which names a template may use happens when the catalog loads.

use std::collections::BTreeSet;

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

use crate::params::{ParamValue, ValidatedParams};

/// An error rendering a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("command element {index} (`{element}`): {message}")]
pub struct TemplateError {
    pub index: usize,
    pub element: String,
    pub message: String,
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env
}

/// The parameter named by an element that is exactly `{{ name }}`.
fn sole_variable(element: &str) -> Option<&str> {
    let inner = element
        .trim()
        .strip_prefix("{{")?
        .strip_suffix("}}")?
        .trim();
    let ident = !inner.is_empty() && inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    ident.then_some(inner)
}

/// The variable names an element uses, or a syntax error.
pub fn variables(element: &str) -> Result<BTreeSet<String>, String> {
    if !element.contains("{{") && !element.contains("{%") {
        return Ok(BTreeSet::new());
    }
    let env = environment();
    let tmpl = env.template_from_str(element).map_err(|e| e.to_string())?;
    Ok(tmpl.undeclared_variables(false).into_iter().collect())
}

/// Renders `command` with `params`; `declared` lists every parameter name of
/// the action, so an absent optional one renders as empty text.
pub fn render_command(
    command: &[String],
    params: &ValidatedParams,
    declared: &[&str],
) -> Result<Vec<String>, TemplateError> {
    let mut ctx = std::collections::BTreeMap::new();
    for name in declared {
        let v = match params.get(name) {
            Some(ParamValue::List(items)) => Value::from(items.clone()),
            Some(ParamValue::Integer(n)) => Value::from(*n),
            Some(ParamValue::Boolean(b)) => Value::from(*b),
            Some(v) => Value::from(v.render()),
            None => Value::from(""),
        };
        ctx.insert((*name).to_owned(), v);
    }
    let env = environment();
    let mut argv = Vec::with_capacity(command.len());
    for (index, element) in command.iter().enumerate() {
        if let Some(name) = sole_variable(element).filter(|n| declared.contains(n)) {
            match params.get(name) {
                Some(ParamValue::List(items)) => argv.extend(items.iter().cloned()),
                Some(v) => argv.push(v.render()),
                None => {}
            }
            continue;
        }
        if !element.contains("{{") && !element.contains("{%") {
            argv.push(element.clone());
            continue;
        }
        let err = |e: minijinja::Error| TemplateError {
            index,
            element: element.clone(),
            message: e.to_string(),
        };
        let rendered = env.render_str(element, &ctx).map_err(err)?;
        argv.push(rendered);
    }
    Ok(argv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{ParamSpec, ParamType, RawParams};

    fn params(pairs: &[(&str, serde_json::Value)], specs: &[ParamSpec]) -> ValidatedParams {
        let raw: RawParams = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        ValidatedParams::validate(specs, &raw).unwrap()
    }

    #[test]
    fn each_element_is_one_argument_whatever_its_text() {
        let specs = [
            ParamSpec::new("msg", ParamType::String),
            ParamSpec::new("hosts", ParamType::List),
            ParamSpec::new("opt", ParamType::String),
        ];
        let p = params(
            &[
                ("msg", "x; touch /tmp/pwned $(id) `id`\nls".into()),
                ("hosts", serde_json::json!(["a", "b c"])),
            ],
            &specs,
        );
        let cmd: Vec<String> = [
            "echo",
            "{{ msg }}",
            "--",
            "{{hosts}}",
            "{{ opt }}",
            "n={{ hosts | join(',') }}",
        ]
        .map(String::from)
        .to_vec();
        let argv = render_command(&cmd, &p, &["msg", "hosts", "opt"]).unwrap();
        assert_eq!(
            argv,
            [
                "echo",
                "x; touch /tmp/pwned $(id) `id`\nls",
                "--",
                "a",
                "b c",
                "n=a,b c"
            ]
        );
    }

    #[test]
    fn template_syntax_in_values_is_not_evaluated() {
        let specs = [ParamSpec::new("msg", ParamType::String)];
        let p = params(&[("msg", "{{ 7 * 7 }}".into())], &specs);
        let argv = render_command(&["echo".into(), "say {{ msg }}".into()], &p, &["msg"]).unwrap();
        assert_eq!(argv, ["echo", "say {{ 7 * 7 }}"]);
    }

    #[test]
    fn lists_variables() {
        assert_eq!(
            variables("--lines={{ lines }}{% if all %}x{% endif %}").unwrap(),
            ["all", "lines"].map(String::from).into()
        );
        assert!(variables("{{ unclosed").is_err());
    }
}
