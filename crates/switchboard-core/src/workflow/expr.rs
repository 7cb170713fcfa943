//! The expressions and templates of workflow steps (minijinja, strict about
//! undefined names): `when` conditions, `for_each` lists, step parameters,
//! inquiry prompts, published variables and the workflow's output.
//!
//! A string that is exactly one `{{ expression }}` evaluates to the
//! expression's own value (a list stays a list, a number a number); any
//! other string renders to text. Expressions may be written with or
//! without the braces.
//!
//! The context is JSON built by the driver: `input` (the workflow's
//! parameters), `steps.NAME` (`status`, `result`, `exit_code`, `error`,
//! `answer`, `by`, `items`), `vars` (published), `workflow.id`, and in a
//! `for_each` step `item` and `index`. Nothing here reads files or clocks.

use std::collections::BTreeSet;

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env
}

/// Whether a string holds template syntax.
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

/// The expression of a string that is exactly `{{ expression }}`.
pub fn sole_expression(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}") && !inner.contains("{%"))
        .then(|| inner.trim())
        .filter(|e| !e.is_empty())
}

/// An expression as written: `{{ a == 1 }}` or `a == 1`.
fn bare(expression: &str) -> &str {
    sole_expression(expression).unwrap_or(expression.trim())
}

/// A minijinja error without the source it may quote.
fn describe(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    }
}

/// The names a template reads, with their first attribute (`steps.drain`).
pub fn template_variables(template: &str) -> Result<BTreeSet<String>, String> {
    if !is_template(template) {
        return Ok(BTreeSet::new());
    }
    let env = environment();
    let t = env.template_from_str(template).map_err(|e| describe(&e))?;
    Ok(t.undeclared_variables(true).into_iter().collect())
}

/// The names an expression reads, with their first attribute.
pub fn expression_variables(expression: &str) -> Result<BTreeSet<String>, String> {
    let env = environment();
    let e = env
        .compile_expression(bare(expression))
        .map_err(|e| describe(&e))?;
    Ok(e.undeclared_variables(true).into_iter().collect())
}

fn to_json(value: &Value) -> Result<serde_json::Value, String> {
    if value.is_undefined() {
        return Err("the expression is undefined".to_owned());
    }
    serde_json::to_value(value).map_err(|e| e.to_string())
}

/// Evaluates an expression against the context.
pub fn eval(expression: &str, ctx: &serde_json::Value) -> Result<serde_json::Value, String> {
    let env = environment();
    let e = env
        .compile_expression(bare(expression))
        .map_err(|e| describe(&e))?;
    let v = e
        .eval(Value::from(minijinja::value::Serde(ctx)))
        .map_err(|e| describe(&e))?;
    to_json(&v)
}

/// Whether a `when` condition holds (Jinja's truth: empty, zero, none and
/// false are false).
pub fn holds(expression: &str, ctx: &serde_json::Value) -> Result<bool, String> {
    let env = environment();
    let e = env
        .compile_expression(bare(expression))
        .map_err(|e| describe(&e))?;
    let v = e
        .eval(Value::from(minijinja::value::Serde(ctx)))
        .map_err(|e| describe(&e))?;
    Ok(v.is_true())
}

/// The list a `for_each` expression gives.
pub fn list(expression: &str, ctx: &serde_json::Value) -> Result<Vec<serde_json::Value>, String> {
    match eval(expression, ctx)? {
        serde_json::Value::Array(items) => Ok(items),
        other => Err(format!(
            "`for_each` must give a list; it gave {}",
            kind_of(&other)
        )),
    }
}

fn kind_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "none",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a map",
    }
}

/// Renders one template string: a sole expression keeps its type, other
/// text renders to a string, text without template syntax stays as is.
pub fn render_text(text: &str, ctx: &serde_json::Value) -> Result<serde_json::Value, String> {
    if let Some(expression) = sole_expression(text) {
        return eval(expression, ctx);
    }
    if !is_template(text) {
        return Ok(serde_json::Value::String(text.to_owned()));
    }
    let env = environment();
    env.render_str(text, Value::from(minijinja::value::Serde(ctx)))
        .map(serde_json::Value::String)
        .map_err(|e| describe(&e))
}

/// Renders every string inside a value (lists and maps included).
pub fn render(
    value: &serde_json::Value,
    ctx: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    match value {
        serde_json::Value::String(s) => render_text(s, ctx),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|i| render(i, ctx))
            .collect::<Result<Vec<_>, _>>()
            .map(serde_json::Value::Array),
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(k, v)| render(v, ctx).map(|v| (k.clone(), v)))
            .collect::<Result<serde_json::Map<_, _>, _>>()
            .map(serde_json::Value::Object),
        other => Ok(other.clone()),
    }
}
