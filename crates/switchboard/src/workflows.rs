//! The CLI's workflow commands: the step tree (`steps`, and after `logs` of
//! a workflow), answers to inquiries (`answer`), `pause`, `resume` and
//! `rerun`. Starting and cancelling a workflow are `run` and `cancel`, as
//! for any action.

use crate::cli::{ClientArgs, OutputFormat};
use crate::client::{Api, ExecutionView, execution_id, print_json};
use crate::terminal;

/// The tree of a workflow's steps, one line per step (and per attempt or
/// item beneath it), or `None` when `id` is not a workflow.
pub(crate) async fn tree(api: &Api, id: i64) -> Option<String> {
    let view: serde_json::Value = api.get(&format!("/executions/{id}/steps")).await.ok()?;
    if view.is_null() {
        return Some("(no step has started yet)\n".to_owned());
    }
    let mut out = String::new();
    if view["paused"].as_bool() == Some(true) {
        out.push_str("(paused)\n");
    }
    for step in view["steps"].as_array().into_iter().flatten() {
        let status = step["status"].as_str().unwrap_or_default();
        let what = match step["kind"].as_str() {
            Some("inquiry") => "inquiry".to_owned(),
            _ => step["action"].as_str().unwrap_or_default().to_owned(),
        };
        out.push_str(&format!(
            "{} {:<16} {:<10} {what}",
            mark(status),
            step["name"].as_str().unwrap_or_default(),
            status,
        ));
        if let Some(reason) = step["reason"].as_str() {
            out.push_str(&format!("  ({reason})"));
        }
        out.push('\n');
        if let Some(prompt) = step["prompt"].as_str() {
            out.push_str(&format!("    ? {prompt}"));
            if let Some(by) = step["answered_by"].as_str() {
                out.push_str(&format!("  → {} by {by}", step["answer"]));
            }
            out.push('\n');
        }
        let units = step["units"].as_array().cloned().unwrap_or_default();
        let many = units.len() > 1 || units.iter().any(|u| !u["item"].is_null());
        for u in &units {
            let runs: Vec<String> = u["executions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| format!("#{e}"))
                .collect();
            if many || runs.len() > 1 {
                let label = if many {
                    format!("item {}", u["item"])
                } else {
                    "attempts".to_owned()
                };
                out.push_str(&format!(
                    "    {} {label}: {} {}\n",
                    mark(u["status"].as_str().unwrap_or_default()),
                    u["status"].as_str().unwrap_or_default(),
                    runs.join(" ")
                ));
            } else if let Some(run) = runs.first() {
                out.push_str(&format!("    execution {run}\n"));
            }
        }
    }
    Some(out)
}

fn mark(status: &str) -> &'static str {
    match status {
        "succeeded" => "✔",
        "failed" | "timed_out" => "✖",
        "running" => "▶",
        "waiting" => "?",
        "skipped" => "↷",
        "cancelled" => "■",
        "unreached" => "·",
        _ => " ",
    }
}

pub async fn steps(args: &ClientArgs, id: &str) -> anyhow::Result<u8> {
    let api = Api::new(args)?;
    let id = execution_id(id)?;
    if args.output == OutputFormat::Json {
        let view: serde_json::Value = api.get(&format!("/executions/{id}/steps")).await?;
        print_json(&view);
        return Ok(terminal::EXIT_OK);
    }
    let execution: ExecutionView = api.get(&format!("/executions/{id}")).await?;
    println!(
        "#{} {} {}",
        execution.id, execution.action, execution.status
    );
    match tree(&api, id).await {
        Some(tree) => print!("{tree}"),
        None => anyhow::bail!("execution {id} ({}) is not a workflow", execution.action),
    }
    Ok(terminal::EXIT_OK)
}

pub async fn answer(
    args: &ClientArgs,
    id: &str,
    answer: &str,
    step: Option<&str>,
) -> anyhow::Result<u8> {
    let api = Api::new(args)?;
    let id = execution_id(id)?;
    let raw: serde_json::Value = api
        .post(
            &format!("/executions/{id}/answer"),
            &serde_json::json!({ "answer": answer, "step": step }),
        )
        .await?;
    if args.output == OutputFormat::Json {
        print_json(&raw);
    } else {
        println!("answered {}", raw["answered"].as_str().unwrap_or_default());
    }
    Ok(terminal::EXIT_OK)
}

/// Pauses (`pause`) or resumes a workflow.
pub async fn steer(args: &ClientArgs, id: &str, pause: bool) -> anyhow::Result<u8> {
    let api = Api::new(args)?;
    let id = execution_id(id)?;
    let verb = if pause { "pause" } else { "resume" };
    api.send(
        api.http
            .post(api.url(&format!("/executions/{id}/{verb}")))
            .json(&serde_json::json!({})),
    )
    .await?;
    if args.output == OutputFormat::Json {
        print_json(&serde_json::json!({ "id": id, verb: true }));
    } else if pause {
        println!("#{id} paused: running steps finish, no new step starts");
    } else {
        println!("#{id} resumed");
    }
    Ok(terminal::EXIT_OK)
}

pub async fn rerun(args: &ClientArgs, id: &str, from: Option<&str>) -> anyhow::Result<u8> {
    let api = Api::new(args)?;
    let id = execution_id(id)?;
    let raw: serde_json::Value = api
        .post(
            &format!("/executions/{id}/rerun"),
            &serde_json::json!({ "from": from }),
        )
        .await?;
    if args.output == OutputFormat::Json {
        print_json(&raw);
    } else {
        let e: ExecutionView = serde_json::from_value(raw)?;
        println!("#{} {} {} (re-run of #{id})", e.id, e.action, e.status);
    }
    Ok(terminal::EXIT_OK)
}
