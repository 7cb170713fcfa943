//! Reading the parts of a workflow file that an action file does not have:
//! `[[steps]]`, `[output]` and `run_as`. Each key is converted on its own
//! and every problem recorded with its line, as for actions. What needs the
//! rest of the catalog (the actions steps run, references between steps) is
//! checked afterwards by `workflow::check_all`.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use super::Approver;
use super::action_file::{Reader, Value};
use crate::ids::{ActionName, Principal};
use crate::params::parse_duration;
use crate::workflow::{AnswerKind, Inquiry, Retry, Step, StepKind, Workflow};

/// How long a workflow may run when its file does not say.
pub(super) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// How long an inquiry waits when it does not say.
const DEFAULT_INQUIRY_TIMEOUT: Duration = Duration::from_secs(3600);
/// Most steps in one workflow.
const MAX_STEPS: usize = 1000;

const STEP_KEYS: [&str; 13] = [
    "name",
    "action",
    "params",
    "when",
    "needs",
    "retry",
    "timeout",
    "on_failure",
    "allow_failure",
    "for_each",
    "concurrency",
    "publish",
    "inquiry",
];
const INQUIRY_KEYS: [&str; 6] = [
    "prompt",
    "answer",
    "choices",
    "approvers",
    "timeout",
    "on_timeout",
];

/// The workflow of a workflow file; `None` when any part is wrong (all
/// problems recorded).
pub(super) fn read(
    r: &mut Reader<'_>,
    fields: &BTreeMap<String, &Value<'_>>,
    whole: &Range<usize>,
) -> Option<Workflow> {
    let before = r.found;
    let run_as = fields.get("run_as").and_then(|v| {
        let name = r.convert::<String>("run_as", v)?;
        match Principal::new(name) {
            Ok(p) => Some(p),
            Err(e) => {
                r.error(v.span(), "run_as", e.to_string());
                None
            }
        }
    });
    let output = fields
        .get("output")
        .and_then(|v| r.convert::<BTreeMap<String, String>>("output", v))
        .unwrap_or_default();
    let Some(steps_value) = fields.get("steps") else {
        r.error(
            whole.clone(),
            "steps",
            "missing: a workflow needs at least one `[[steps]]`",
        );
        return None;
    };
    let Some(items) = steps_value.get_ref().as_array() else {
        r.error(
            steps_value.span(),
            "steps",
            "must be a list of `[[steps]]` sections",
        );
        return None;
    };
    if items.is_empty() || items.len() > MAX_STEPS {
        r.error(
            steps_value.span(),
            "steps",
            format!("a workflow has between 1 and {MAX_STEPS} steps"),
        );
        return None;
    }
    let mut steps: Vec<Step> = Vec::new();
    let mut explicit_needs = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let prefix = format!("steps[{i}]");
        let Some(t) = item.get_ref().as_table() else {
            r.error(
                item.span(),
                &prefix,
                "must be a table with `name` and `action` or `inquiry`",
            );
            continue;
        };
        let f = r.entries(&prefix, t, &STEP_KEYS);
        if let Some((step, has_needs)) = read_step(r, &prefix, item.span(), &f) {
            if steps.iter().any(|s| s.name == step.name) {
                r.error(
                    item.span(),
                    &format!("{prefix}.name"),
                    format!("step `{}` is declared twice", step.name),
                );
                continue;
            }
            explicit_needs.push(has_needs);
            steps.push(step);
        }
    }
    if r.found > before {
        return None;
    }
    let mut workflow = Workflow {
        steps,
        output,
        run_as,
    };
    // Without `needs`, a step follows the one before it in the file (that
    // is not a failure branch, which runs only when called).
    let roots: Vec<String> = workflow
        .steps
        .iter()
        .flat_map(|s| s.on_failure.iter().chain(s.on_timeout()).cloned())
        .collect();
    let mut previous: Option<String> = None;
    for (step, explicit) in workflow.steps.iter_mut().zip(explicit_needs) {
        let is_root = roots.contains(&step.name);
        if !explicit && !is_root {
            step.needs = previous.iter().cloned().collect();
        }
        if !is_root {
            previous = Some(step.name.clone());
        }
    }
    Some(workflow)
}

/// One step, and whether it says its `needs`.
fn read_step(
    r: &mut Reader<'_>,
    prefix: &str,
    span: Range<usize>,
    f: &BTreeMap<String, &Value<'_>>,
) -> Option<(Step, bool)> {
    let before = r.found;
    let key = |k: &str| format!("{prefix}.{k}");
    let line = r.line(span.start);
    let name = match f.get("name") {
        None => {
            r.error(
                span.clone(),
                &key("name"),
                "missing (every step has a name)",
            );
            None
        }
        Some(v) => r.convert::<String>(&key("name"), v).and_then(|n| {
            let ok = !n.is_empty()
                && n.len() <= 64
                && n.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
            if ok {
                Some(n)
            } else {
                r.error(
                    v.span(),
                    &key("name"),
                    "step names use lowercase letters, digits, `_` and `-`, starting with a letter",
                );
                None
            }
        }),
    };
    let needs = f
        .get("needs")
        .and_then(|v| r.convert::<Vec<String>>(&key("needs"), v));
    let when = f
        .get("when")
        .and_then(|v| r.convert::<String>(&key("when"), v));
    let on_failure = f
        .get("on_failure")
        .and_then(|v| r.convert::<String>(&key("on_failure"), v));
    let allow_failure = f
        .get("allow_failure")
        .and_then(|v| r.convert::<bool>(&key("allow_failure"), v))
        .unwrap_or(false);
    let for_each = f
        .get("for_each")
        .and_then(|v| r.convert::<String>(&key("for_each"), v));
    let concurrency = match f.get("concurrency") {
        None => Some(1),
        Some(v) => match r.convert::<i64>(&key("concurrency"), v) {
            Some(n) if (1..=256).contains(&n) => usize::try_from(n).ok(),
            Some(_) => {
                r.error(v.span(), &key("concurrency"), "must be between 1 and 256");
                None
            }
            None => None,
        },
    };
    if let (Some(v), None) = (f.get("concurrency"), &for_each) {
        r.error(
            v.span(),
            &key("concurrency"),
            "only a step with `for_each` runs items at once",
        );
    }
    let publish = f
        .get("publish")
        .and_then(|v| r.convert::<BTreeMap<String, String>>(&key("publish"), v))
        .unwrap_or_default();
    let timeout = f
        .get("timeout")
        .and_then(|v| duration(r, &key("timeout"), v));
    let retry = f.get("retry").and_then(|v| read_retry(r, &key("retry"), v));
    let kind = match (f.get("action"), f.get("inquiry")) {
        (Some(a), None) => {
            let action =
                r.convert::<String>(&key("action"), a)
                    .and_then(|n| match ActionName::new(n) {
                        Ok(n) => Some(n),
                        Err(e) => {
                            r.error(a.span(), &key("action"), e.to_string());
                            None
                        }
                    });
            let params = f
                .get("params")
                .and_then(|v| r.convert::<BTreeMap<String, serde_json::Value>>(&key("params"), v))
                .unwrap_or_default();
            action.map(|action| StepKind::Action { action, params })
        }
        (None, Some(q)) => {
            for k in ["params", "retry", "timeout", "for_each"] {
                if let Some(v) = f.get(k) {
                    r.error(
                        v.span(),
                        &key(k),
                        format!(
                            "an inquiry step has no `{k}` (its `inquiry` table has its `timeout`)"
                        ),
                    );
                }
            }
            read_inquiry(r, &key("inquiry"), q).map(StepKind::Inquiry)
        }
        (Some(a), Some(_)) => {
            r.error(
                a.span(),
                prefix,
                "a step either runs an `action` or asks an `inquiry`, not both",
            );
            None
        }
        (None, None) => {
            r.error(
                span,
                prefix,
                "missing: a step runs an `action` or asks an `inquiry`",
            );
            None
        }
    };
    if r.found > before {
        return None;
    }
    Some((
        Step {
            name: name?,
            line,
            needs: needs.clone().unwrap_or_default(),
            when,
            kind: kind?,
            retry: retry.unwrap_or_default(),
            timeout,
            on_failure,
            allow_failure,
            for_each,
            concurrency: concurrency?,
            publish,
        },
        needs.is_some(),
    ))
}

fn duration(r: &mut Reader<'_>, key: &str, v: &Value<'_>) -> Option<Duration> {
    let text = if v.get_ref().is_integer() {
        r.convert::<u64>(key, v).map(|n| n.to_string())
    } else {
        r.convert::<String>(key, v)
    }?;
    match parse_duration(&text) {
        Ok(d) if d.is_zero() => {
            r.error(v.span(), key, "must be longer than zero");
            None
        }
        Ok(d) if d > Duration::from_secs(7 * 24 * 3600) => {
            r.error(v.span(), key, "must be at most 7 days");
            None
        }
        Ok(d) => Some(d),
        Err(e) => {
            r.error(v.span(), key, e);
            None
        }
    }
}

fn read_retry(r: &mut Reader<'_>, key: &str, v: &Value<'_>) -> Option<Retry> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Raw {
        count: u32,
        delay: Option<String>,
        backoff: Option<f64>,
    }
    let raw: Raw = r.convert(key, v)?;
    let mut retry = Retry {
        count: raw.count,
        ..Retry::default()
    };
    if raw.count > 100 {
        r.error(v.span(), &format!("{key}.count"), "at most 100 retries");
    }
    if let Some(d) = raw.delay {
        match parse_duration(&d) {
            Ok(d) => retry.delay = d,
            Err(e) => r.error(v.span(), &format!("{key}.delay"), e),
        }
    }
    if let Some(b) = raw.backoff {
        if (1.0..=10.0).contains(&b) {
            retry.backoff = b;
        } else {
            r.error(
                v.span(),
                &format!("{key}.backoff"),
                "must be between 1 and 10",
            );
        }
    }
    Some(retry)
}

fn read_inquiry(r: &mut Reader<'_>, prefix: &str, v: &Value<'_>) -> Option<Inquiry> {
    let Some(t) = v.get_ref().as_table() else {
        r.error(v.span(), prefix, "must be a table with at least `prompt`");
        return None;
    };
    let before = r.found;
    let f = r.entries(prefix, t, &INQUIRY_KEYS);
    let key = |k: &str| format!("{prefix}.{k}");
    let prompt = match f.get("prompt") {
        Some(p) => r.convert::<String>(&key("prompt"), p),
        None => {
            r.error(v.span(), &key("prompt"), "missing (the question to ask)");
            None
        }
    };
    let choices = f
        .get("choices")
        .and_then(|c| r.convert::<Vec<String>>(&key("choices"), c));
    let answer = match f.get("answer") {
        None => Some("yes_no".to_owned()),
        Some(a) => r.convert::<String>(&key("answer"), a),
    };
    let answer = match (answer.as_deref(), choices) {
        (Some("yes_no"), None) => Some(AnswerKind::YesNo),
        (Some("text"), None) => Some(AnswerKind::Text),
        (Some("choice"), Some(c)) if !c.is_empty() => Some(AnswerKind::Choice(c)),
        (Some("choice"), _) => {
            r.error(
                v.span(),
                &key("choices"),
                "a `choice` answer needs a non-empty list of choices",
            );
            None
        }
        (Some("yes_no" | "text"), Some(_)) => {
            r.error(
                v.span(),
                &key("choices"),
                "only a `choice` answer has choices",
            );
            None
        }
        (Some(other), _) => {
            r.error(
                v.span(),
                &key("answer"),
                format!("unknown answer `{other}` (yes_no, choice or text)"),
            );
            None
        }
        (None, _) => None,
    };
    let mut approvers = Vec::new();
    if let Some(a) = f.get("approvers") {
        for text in r
            .convert::<Vec<String>>(&key("approvers"), a)
            .unwrap_or_default()
        {
            match Approver::parse(text.trim()) {
                Ok(p) => approvers.push(p),
                Err(e) => r.error(a.span(), &key("approvers"), e),
            }
        }
    }
    let timeout = match f.get("timeout") {
        Some(t) => duration(r, &key("timeout"), t),
        None => Some(DEFAULT_INQUIRY_TIMEOUT),
    };
    let on_timeout = f
        .get("on_timeout")
        .and_then(|o| r.convert::<String>(&key("on_timeout"), o));
    if r.found > before {
        return None;
    }
    Some(Inquiry {
        prompt: prompt?,
        answer: answer?,
        approvers,
        timeout: timeout?,
        on_timeout,
    })
}
