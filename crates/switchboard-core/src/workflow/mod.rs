//! Workflows: multi-step automations declared in `workflows/*.toml`. This
//! module owns what a workflow *is* (its steps, their dependencies, retries,
//! timeouts, `for_each`, inquiries, published variables and output), the
//! checks `catalog check` makes against the rest of the catalog (unknown
//! actions and steps, cycles, parameter types), the expressions steps are
//! templated with (`expr`), and the state of one run with the decision of
//! what happens next (`state`) — all pure, told the time, so every rule is
//! tested without a runtime.
//!
//! It does not run anything, store anything or wait for anyone: the engine's
//! workflow driver does, persisting a [`state::RunState`] before and after
//! every step.

pub mod expr;
pub mod state;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::catalog::{Action, Approver, CatalogError};
use crate::ids::{ActionName, Principal};
use crate::params::{ParamSpec, ParamType};

/// The folder of the catalog that holds workflows.
pub const FOLDER: &str = "workflows";

/// The steps of a workflow action (`runner = "workflow"`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workflow {
    /// In file order.
    pub steps: Vec<Step>,
    /// The workflow's result: name → template over its context.
    pub output: BTreeMap<String, String>,
    /// When set, every step runs as this service principal instead of the
    /// requester (the audit log names both).
    pub run_as: Option<Principal>,
}

impl Workflow {
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// Steps that run only when another step fails (`on_failure`) or an
    /// inquiry times out (`on_timeout`), and the steps that need them.
    pub fn branch_steps(&self) -> BTreeSet<&str> {
        let mut branch: BTreeSet<&str> = self
            .steps
            .iter()
            .flat_map(|s| s.on_failure.iter().chain(s.on_timeout()))
            .map(String::as_str)
            .collect();
        // Steps are checked acyclic, so a fixed point is reached.
        loop {
            let before = branch.len();
            for s in &self.steps {
                if s.needs.iter().any(|n| branch.contains(n.as_str())) {
                    branch.insert(&s.name);
                }
            }
            if branch.len() == before {
                return branch;
            }
        }
    }
}

/// One step of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub name: String,
    /// The line of the step in its file.
    pub line: usize,
    /// Steps that must be done first. When the file does not say, the
    /// previous step in file order (that is not a failure branch).
    pub needs: Vec<String>,
    /// An expression; the step is skipped when it is false.
    pub when: Option<String>,
    pub kind: StepKind,
    pub retry: Retry,
    /// Longest one attempt may run before it is stopped (`timed_out`).
    #[serde(serialize_with = "optional_duration_text")]
    pub timeout: Option<Duration>,
    /// A step that runs when this one fails.
    pub on_failure: Option<String>,
    /// Whether a failure of this step leaves the workflow going (later steps
    /// still run and the workflow can still succeed).
    pub allow_failure: bool,
    /// An expression giving a list: the step runs once per item, with
    /// `item` and `index` in its context.
    pub for_each: Option<String>,
    /// Items of a `for_each` run at once at most.
    pub concurrency: usize,
    /// Variables this step publishes when it succeeds: name → template.
    pub publish: BTreeMap<String, String>,
}

impl Step {
    /// The step an inquiry's timeout leads to.
    pub fn on_timeout(&self) -> Option<&String> {
        match &self.kind {
            StepKind::Inquiry(q) => q.on_timeout.as_ref(),
            StepKind::Action { .. } => None,
        }
    }
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Runs an action (any runner, workflows included) with parameters
    /// templated from the context; strings that are exactly `{{ expr }}`
    /// keep the expression's type.
    Action {
        action: ActionName,
        params: BTreeMap<String, serde_json::Value>,
    },
    /// Pauses until an allowed person answers.
    Inquiry(Inquiry),
}

/// A question a workflow asks a person, and waits for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inquiry {
    /// A template over the context.
    pub prompt: String,
    pub answer: AnswerKind,
    /// Who may answer; empty means anyone the policies allow to `approve`
    /// the workflow.
    pub approvers: Vec<Approver>,
    #[serde(serialize_with = "duration_text")]
    pub timeout: Duration,
    pub on_timeout: Option<String>,
}

/// The shape of an inquiry's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "choices")]
pub enum AnswerKind {
    /// `yes` goes on; `no` fails the step.
    YesNo,
    /// One of the choices.
    Choice(Vec<String>),
    /// Free text.
    Text,
}

impl AnswerKind {
    /// Reads an answer as a person gives it (`yes`, `no`, a choice or text).
    pub fn read(&self, text: &str) -> Result<serde_json::Value, String> {
        let t = text.trim();
        match self {
            Self::YesNo => match t.to_ascii_lowercase().as_str() {
                "yes" | "y" | "true" | "approve" | "ok" => Ok(serde_json::Value::Bool(true)),
                "no" | "n" | "false" | "reject" => Ok(serde_json::Value::Bool(false)),
                _ => Err(format!("answer `yes` or `no`, not `{t}`")),
            },
            Self::Choice(choices) => choices
                .iter()
                .find(|c| c.eq_ignore_ascii_case(t))
                .map(|c| serde_json::Value::String(c.clone()))
                .ok_or_else(|| format!("answer one of {}, not `{t}`", choices.join(", "))),
            Self::Text if t.is_empty() => Err("the answer is empty".to_owned()),
            Self::Text if t.len() > 4096 => Err("the answer is longer than 4096 bytes".to_owned()),
            Self::Text => Ok(serde_json::Value::String(t.to_owned())),
        }
    }

    /// How to answer, as said to people.
    pub fn hint(&self) -> String {
        match self {
            Self::YesNo => "yes or no".to_owned(),
            Self::Choice(c) => format!("one of: {}", c.join(", ")),
            Self::Text => "any text".to_owned(),
        }
    }
}

/// How often a failed step is tried again, and how long to wait between.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Retry {
    /// Attempts after the first.
    pub count: u32,
    #[serde(serialize_with = "duration_text")]
    pub delay: Duration,
    /// Each wait is the previous one times this.
    pub backoff: f64,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            count: 0,
            delay: Duration::from_secs(1),
            backoff: 1.0,
        }
    }
}

impl Retry {
    /// The wait before attempt `next` (2 for the first retry).
    pub fn delay_before(&self, next: u32) -> Duration {
        let factor = self
            .backoff
            .powi(i32::try_from(next.saturating_sub(2)).unwrap_or(i32::MAX));
        let secs = (self.delay.as_secs_f64() * factor).min(24.0 * 3600.0);
        Duration::from_secs_f64(secs.max(0.0))
    }
}

fn duration_text<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_duration(*d))
}

fn optional_duration_text<S: serde::Serializer>(
    d: &Option<Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => duration_text(d, s),
        None => s.serialize_none(),
    }
}

/// Checks every workflow of the catalog against its actions: steps name
/// actions that exist, with parameters they have and values of their
/// types; references to steps, inputs and variables resolve; `needs` has
/// no cycles. Every problem is added to `errors` with file and line.
pub(crate) fn check_all(
    actions: &BTreeMap<ActionName, Arc<Action>>,
    errors: &mut Vec<CatalogError>,
) {
    for action in actions.values() {
        if let Some(workflow) = &action.workflow {
            check(action, workflow, actions, errors);
        }
    }
}

fn check(
    owner: &Action,
    workflow: &Workflow,
    actions: &BTreeMap<ActionName, Arc<Action>>,
    errors: &mut Vec<CatalogError>,
) {
    let mut error = |line: usize, key: String, message: String| {
        errors.push(CatalogError {
            file: owner.file.clone(),
            line: Some(line),
            key: Some(key),
            message,
        });
    };
    let names: Vec<&str> = workflow.steps.iter().map(|s| s.name.as_str()).collect();
    let published: BTreeSet<&str> = workflow
        .steps
        .iter()
        .flat_map(|s| s.publish.keys().map(String::as_str))
        .collect();
    for (i, step) in workflow.steps.iter().enumerate() {
        let key = |k: &str| format!("steps[{i}].{k}");
        for target in step
            .needs
            .iter()
            .chain(&step.on_failure)
            .chain(step.on_timeout())
        {
            if !names.contains(&target.as_str()) {
                let hint = crate::params::closest(target, &names)
                    .map(|n| format!(" (did you mean `{n}`?)"))
                    .unwrap_or_default();
                error(
                    step.line,
                    key("needs"),
                    format!("no step `{target}` in this workflow{hint}"),
                );
            }
        }
        for target in step.on_failure.iter().chain(step.on_timeout()) {
            if let Some(t) = workflow.step(target)
                && !t.needs.is_empty()
            {
                error(
                    t.line,
                    format!(
                        "steps[{}].needs",
                        names.iter().position(|n| *n == t.name).unwrap_or(0)
                    ),
                    format!(
                        "step `{}` runs when `{}` fails or times out, so it cannot also wait for other steps",
                        t.name, step.name
                    ),
                );
            }
            if target == &step.name {
                error(
                    step.line,
                    key("on_failure"),
                    "a step cannot be its own failure branch".to_owned(),
                );
            }
        }
        let scope = Scope {
            owner,
            step: Some(step),
            steps: &names,
            published: &published,
        };
        let mut templates: Vec<(String, &str)> = Vec::new();
        if let Some(w) = &step.when {
            templates.push((key("when"), w.as_str()));
        }
        if let Some(f) = &step.for_each {
            // The list itself cannot depend on its own items.
            let outer = Scope {
                step: None,
                ..scope
            };
            for problem in outer.check_expression(f) {
                error(step.line, key("for_each"), problem);
            }
        }
        // Published after the step ended: it may read its own result, but
        // no single item.
        let after = Scope {
            step: None,
            ..scope
        };
        for (name, template) in &step.publish {
            for problem in after.check_template(template) {
                error(step.line, key(&format!("publish.{name}")), problem);
            }
        }
        match &step.kind {
            StepKind::Inquiry(q) => templates.push((key("inquiry.prompt"), q.prompt.as_str())),
            StepKind::Action { action, params } => {
                match actions.get(action) {
                    None => {
                        let known: Vec<&str> = actions.keys().map(ActionName::as_str).collect();
                        let hint = crate::params::closest(action.as_str(), &known)
                            .map(|n| format!(" (did you mean `{n}`?)"))
                            .unwrap_or_default();
                        error(
                            step.line,
                            key("action"),
                            format!("unknown action `{action}`{hint}"),
                        );
                    }
                    Some(target) if target.name == owner.name => {
                        error(
                            step.line,
                            key("action"),
                            "a workflow cannot run itself".to_owned(),
                        );
                    }
                    Some(target) => {
                        for problem in check_params(owner, target, params) {
                            error(step.line, key(&format!("params.{}", problem.0)), problem.1);
                        }
                    }
                }
                for (name, value) in params {
                    if let serde_json::Value::String(s) = value {
                        for problem in scope.check_template(s) {
                            error(step.line, key(&format!("params.{name}")), problem);
                        }
                    }
                }
            }
        }
        for (k, t) in templates {
            let problems = if k.ends_with(".when") {
                scope.check_expression(t)
            } else {
                scope.check_template(t)
            };
            for problem in problems {
                error(step.line, k.clone(), problem);
            }
        }
    }
    for (name, template) in &workflow.output {
        let scope = Scope {
            owner,
            step: None,
            steps: &names,
            published: &published,
        };
        for problem in scope.check_template(template) {
            error(1, format!("output.{name}"), problem);
        }
    }
    if let Some(cycle) = find_cycle(workflow) {
        let first = workflow.step(&cycle[0]).map_or(1, |s| s.line);
        error(
            first,
            "steps".to_owned(),
            format!(
                "the steps wait for each other in a cycle: {}",
                cycle.join(" → ")
            ),
        );
    }
}

/// What a template of a step may name.
#[derive(Clone, Copy)]
struct Scope<'a> {
    owner: &'a Action,
    /// The step being checked; `None` for the workflow's output and a
    /// `for_each` list (where `item` and `index` do not exist).
    step: Option<&'a Step>,
    steps: &'a [&'a str],
    published: &'a BTreeSet<&'a str>,
}

impl Scope<'_> {
    fn check_template(&self, template: &str) -> Vec<String> {
        match expr::template_variables(template) {
            Err(e) => vec![format!("invalid template: {e}")],
            Ok(vars) => self.check_names(&vars),
        }
    }

    fn check_expression(&self, expression: &str) -> Vec<String> {
        match expr::expression_variables(expression) {
            Err(e) => vec![format!("invalid expression: {e}")],
            Ok(vars) => self.check_names(&vars),
        }
    }

    fn check_names(&self, vars: &BTreeSet<String>) -> Vec<String> {
        let mut problems = Vec::new();
        let for_each = self.step.is_some_and(|s| s.for_each.is_some());
        for var in vars {
            let mut parts = var.split('.');
            let root = parts.next().unwrap_or_default();
            let field = parts.next();
            match (root, field) {
                ("input", None) | ("steps", None) | ("vars", None) | ("workflow", _) => {}
                ("input", Some(p)) => {
                    if !self.owner.params.iter().any(|s| s.name == p) {
                        problems.push(format!(
                            "`input.{p}`: `{p}` is not a parameter of this workflow"
                        ));
                    }
                }
                ("steps", Some(s)) => {
                    if !self.steps.contains(&s) {
                        let hint = crate::params::closest(s, self.steps)
                            .map(|n| format!(" (did you mean `{n}`?)"))
                            .unwrap_or_default();
                        problems.push(format!("`steps.{s}`: no step `{s}` in this workflow{hint}"));
                    } else if self.step.is_some_and(|me| me.name == s) {
                        problems.push(format!("`steps.{s}`: a step cannot read its own result"));
                    }
                }
                ("vars", Some(v)) => {
                    if !self.published.contains(v) {
                        problems.push(format!("`vars.{v}`: no step publishes `{v}`"));
                    }
                }
                ("item" | "index", _) if for_each => {}
                ("item" | "index", _) => {
                    problems.push(format!("`{root}` exists only in a step with `for_each`"));
                }
                _ => problems.push(format!(
                    "`{root}` is unknown here (use `input`, `steps`, `vars`{})",
                    if for_each { ", `item`, `index`" } else { "" }
                )),
            }
        }
        problems
    }
}

/// Parameters of a step against the action it runs: each one it has, of
/// its type (literal values checked now, `{{ input.x }}` by the input's
/// type), and every required one given.
fn check_params(
    owner: &Action,
    target: &Action,
    params: &BTreeMap<String, serde_json::Value>,
) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    for (name, value) in params {
        let Some(spec) = target.params.iter().find(|p| &p.name == name) else {
            let known = target.param_names();
            let hint = crate::params::closest(name, &known)
                .map(|n| format!(" (did you mean `{n}`?)"))
                .unwrap_or_default();
            problems.push((
                name.clone(),
                format!("`{name}` is not a parameter of `{}`{hint}", target.name),
            ));
            continue;
        };
        match value {
            serde_json::Value::String(s) if expr::is_template(s) => {
                if let Some(source) = expr::sole_expression(s)
                    .and_then(|e| e.strip_prefix("input."))
                    .filter(|p| p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                    && let Some(from) = owner.params.iter().find(|p| p.name == source)
                    && !fits(from, spec)
                {
                    problems.push((
                        name.clone(),
                        format!(
                            "`input.{source}` is a `{}`, but `{name}` of `{}` takes a `{}`",
                            from.ty.as_str(),
                            target.name,
                            spec.ty.as_str()
                        ),
                    ));
                }
            }
            literal => {
                if let Err(e) = spec.coerce(literal) {
                    problems.push((
                        name.clone(),
                        format!("does not fit `{name}` of `{}`: {e}", target.name),
                    ));
                }
            }
        }
    }
    for spec in &target.params {
        if spec.required && spec.default.is_none() && !params.contains_key(&spec.name) {
            problems.push((
                spec.name.clone(),
                format!(
                    "`{}` needs `{}` (required, no default)",
                    target.name, spec.name
                ),
            ));
        }
    }
    problems
}

/// Whether a value of `from`'s type can be given where `to` is declared
/// (the target still validates it when the step runs).
fn fits(from: &ParamSpec, to: &ParamSpec) -> bool {
    use ParamType as T;
    from.ty == to.ty
        || matches!(
            (from.ty, to.ty),
            (T::Enum | T::Host, T::String)
                | (T::String | T::Enum, T::Host | T::Enum)
                | (T::Integer, T::Number | T::String)
                | (T::Number | T::Boolean | T::Duration, T::String)
        )
}

/// The first cycle in `needs`, as step names in order.
fn find_cycle(workflow: &Workflow) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        w: &Workflow,
        name: &str,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(name).copied().unwrap_or(Mark::New) {
            Mark::Done => return None,
            Mark::Open => {
                let start = path.iter().position(|p| p == name).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.push(name.to_owned());
                return Some(cycle);
            }
            Mark::New => {}
        }
        marks.insert(name.to_owned(), Mark::Open);
        path.push(name.to_owned());
        if let Some(step) = w.step(name) {
            for need in &step.needs {
                if let Some(c) = visit(w, need, marks, path) {
                    return Some(c);
                }
            }
        }
        path.pop();
        marks.insert(name.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for step in &workflow.steps {
        let mut path = Vec::new();
        if let Some(c) = visit(workflow, &step.name, &mut marks, &mut path) {
            return Some(c);
        }
    }
    None
}
