//! Workflows through the real server: results passed between steps,
//! conditions, retries, `for_each`, failure branches, inquiries answered
//! (and refused) from the API, the CLI and chat, timeouts, pause, resume,
//! cancel, re-run from a failed step, the steps' own authorization, and a
//! workflow that survives `kill -9` of its node.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Api, Server, copy_catalog, test_catalog, text, wait_for_pid};

const USERS: &str = "[[users]]\nname = \"alice\"\ngroups = [\"sre\"]\n\n\
    [[users]]\nname = \"bob\"\ngroups = [\"sre-leads\"]\n\n\
    [[users]]\nname = \"dave\"\ngroups = [\"dev\"]\n\n\
    [[service_accounts]]\nname = \"svc:rollout\"\ngroups = [\"automation\"]\n";

/// Actions the workflows below are made of.
const ACTIONS: &[(&str, &str)] = &[
    (
        "actions/wf/result.toml",
        r#"name = "wf.result"
description = "Write the given JSON as the result"
command = ["sh", "-c", "printf '%s' \"$1\" > \"$SB_RESULT\"; echo \"result $1\"", "sh", "{{ json }}"]
[params.json]
type = "string"
required = true
"#,
    ),
    (
        "actions/wf/flaky.toml",
        r#"name = "wf.flaky"
description = "Fail until called the given number of times (counted in a file)"
command = ["sh", "-c", "n=$(cat \"$1\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$1\"; echo \"call $n\"; [ $n -ge $2 ]", "sh", "{{ counter }}", "{{ succeed_on }}"]
[params.counter]
type = "string"
required = true
[params.succeed_on]
type = "integer"
default = 1
"#,
    ),
    (
        "actions/wf/sleep.toml",
        r#"name = "wf.sleep"
description = "Sleep, idempotent"
command = ["scripts/sleep.sh", "{{ seconds }}", "{{ pidfile }}"]
idempotent = true
[params.seconds]
type = "duration"
default = "60s"
[params.pidfile]
type = "string"
default = "/dev/null"
"#,
    ),
    (
        "actions/wf/guarded.toml",
        r#"name = "wf.guarded"
description = "Only sre-leads and the rollout service may run this"
command = ["echo", "guarded ran"]
tags = ["guarded"]
"#,
    ),
    (
        "policies/workflows.cedar",
        r#"@id("leads-approve")
permit (principal, action == Action::"approve", resource);

@id("guarded-for-leads-and-rollout")
forbid (principal, action == Action::"run", resource)
when { resource.tags.contains("guarded") }
unless { principal in Group::"sre-leads" || principal in Group::"automation" };
"#,
    ),
];

/// A copy of the test catalog with the workflow actions and `files`.
fn catalog(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_catalog(&test_catalog(), dir.path());
    for (path, body) in ACTIONS.iter().chain(files) {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    dir
}

async fn steps(api: &Api, id: i64) -> Value {
    let (status, view) = api.get(&format!("/executions/{id}/steps")).await;
    assert_eq!(status, 200, "{view}");
    view
}

fn step<'a>(view: &'a Value, name: &str) -> &'a Value {
    view["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {view}"))
}

/// The statuses of the steps, in file order.
fn statuses(view: &Value) -> Vec<(String, String)> {
    view["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// Polls the step tree until `done` holds.
async fn wait_steps(api: &Api, id: i64, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, view) = api.get(&format!("/executions/{id}/steps")).await;
        if !view.is_null() && done(&view) {
            return view;
        }
        assert!(Instant::now() < deadline, "workflow {id} stuck at {view}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn children(api: &Api, id: i64) -> Vec<Value> {
    let (_, page) = api
        .get(&format!("/executions?parent={id}&limit=1000"))
        .await;
    let mut list = page["executions"].as_array().unwrap().clone();
    list.reverse();
    list
}

const PIPELINE: &str = r#"name = "wf.pipeline"
description = "Probe, retry a flaky step, fan out over the hosts, skip what is healthy"
[params.counter]
type = "string"
required = true

[[steps]]
name = "probe"
action = "wf.result"
params = { json = '{"hosts": ["a", "b", "c"], "healthy": false, "version": 7}' }
publish = { version = "{{ steps.probe.result.version }}" }

[[steps]]
name = "flaky"
action = "wf.flaky"
params = { counter = "{{ input.counter }}", succeed_on = 3 }
retry = { count = 2, delay = "100ms", backoff = 2.0 }

[[steps]]
name = "each"
action = "test.args"
for_each = "steps.probe.result.hosts"
concurrency = 2
params = { text = "host {{ item }} ({{ index }}) v{{ vars.version }}", items = "{{ steps.probe.result.hosts }}" }

[[steps]]
name = "fix"
action = "test.args"
needs = ["probe"]
when = "steps.probe.result.healthy"
params = { text = "never" }

[[steps]]
name = "report"
action = "wf.result"
needs = ["each", "fix"]
params = { json = '{"done": {{ steps.each.result | length }}}' }

[output]
version = "{{ vars.version }}"
each = "{{ steps.each.status }}"
"#;

#[tokio::test]
async fn steps_pass_results_retry_fan_out_skip_and_join() {
    let dir = catalog(&[("workflows/pipeline.toml", PIPELINE)]);
    let server = Server::start(dir.path());
    let counter = dir.path().join("flaky.count");
    let id = server
        .submit("wf.pipeline", json!({"counter": counter.to_str().unwrap()}))
        .await;
    let done = server.wait_finished(id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"], json!({"version": 7, "each": "succeeded"}));
    let view = steps(&server, id).await;
    assert_eq!(
        statuses(&view),
        pairs(&[
            ("probe", "succeeded"),
            ("flaky", "succeeded"),
            ("each", "succeeded"),
            ("fix", "skipped"),
            ("report", "succeeded"),
        ])
    );
    // Three attempts, each its own execution, the last one succeeding.
    let flaky = &step(&view, "flaky")["units"][0];
    assert_eq!(flaky["attempt"], 3);
    assert_eq!(flaky["executions"].as_array().unwrap().len(), 3);
    assert_eq!(std::fs::read_to_string(&counter).unwrap().trim(), "3");
    // One unit per item, with the item in its parameters.
    let each = step(&view, "each")["units"].as_array().unwrap().clone();
    assert_eq!(each.len(), 3);
    let kids = children(&server, id).await;
    let labels: Vec<&str> = kids.iter().map(|k| k["step"].as_str().unwrap()).collect();
    for label in [
        "probe#1",
        "flaky#1",
        "flaky#2",
        "flaky#3",
        "each[0]#1",
        "each[1]#1",
        "each[2]#1",
        "report#1",
    ] {
        assert!(labels.contains(&label), "{label} not in {labels:?}");
    }
    assert!(!labels.iter().any(|l| l.starts_with("fix")), "{labels:?}");
    let b = kids.iter().find(|k| k["step"] == "each[1]#1").unwrap();
    assert_eq!(b["params"]["text"], "host b (1) v7");
    assert_eq!(
        b["params"]["items"],
        json!(["a", "b", "c"]),
        "a list stays a list"
    );
    assert!(
        kids.iter()
            .all(|k| k["parent"] == id && k["requester"] == "admin")
    );
    let report = kids.iter().find(|k| k["step"] == "report#1").unwrap();
    assert_eq!(report["result"], json!({"done": 3}));
    // The workflow's own output is the live step log.
    let log = server.output_text(id).await;
    for line in [
        "✖ flaky: failed (exited with status 1); retry 1 of 2 in",
        "▶ flaky: wf.flaky started (execution",
        ", attempt 3)",
        "↷ fix: skipped (`when` was false)",
        "✔ report: succeeded",
        "workflow succeeded: probe succeeded, flaky succeeded, each succeeded, fix skipped, report succeeded",
    ] {
        assert!(log.contains(line), "`{line}` not in:\n{log}");
    }
    // The CLI shows the tree.
    let out = server.cli(&["steps", &id.to_string()]);
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(shown.contains("✔ flaky"), "{shown}");
    assert!(shown.contains("↷ fix"), "{shown}");
    assert!(shown.contains("item \"b\": succeeded"), "{shown}");
}

const ROLLBACK: &str = r#"name = "wf.rollback"
description = "A step that fails calls its failure branch; the rest is not reached"
[params.counter]
type = "string"
required = true

[[steps]]
name = "prepare"
action = "wf.result"
params = { json = '{"ok": true}' }

[[steps]]
name = "change"
action = "wf.flaky"
params = { counter = "{{ input.counter }}", succeed_on = 2 }
on_failure = "undo"

[[steps]]
name = "verify"
action = "test.args"
params = { text = "verify" }

[[steps]]
name = "undo"
action = "test.args"
params = { text = "undo after {{ steps.change.status }}" }
"#;

#[tokio::test]
async fn a_failure_takes_its_branch_and_a_rerun_starts_at_the_failed_step() {
    let dir = catalog(&[("workflows/rollback.toml", ROLLBACK)]);
    let server = Server::start(dir.path());
    let counter = dir.path().join("change.count");
    let id = server
        .submit("wf.rollback", json!({"counter": counter.to_str().unwrap()}))
        .await;
    let done = server.wait_finished(id).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(done["error"], "step `change` failed: exited with status 1");
    let view = steps(&server, id).await;
    assert_eq!(
        statuses(&view),
        pairs(&[
            ("prepare", "succeeded"),
            ("change", "failed"),
            ("verify", "unreached"),
            ("undo", "succeeded"),
        ])
    );
    let undo = children(&server, id)
        .await
        .into_iter()
        .find(|k| k["step"] == "undo#1")
        .unwrap();
    assert_eq!(undo["params"]["text"], "undo after failed");
    // Re-run from the failed step: `prepare` keeps its result, not run again.
    let out = server.cli(&["rerun", &id.to_string()]);
    assert!(out.status.success(), "{out:?}");
    let again: i64 = text(&out.stdout)
        .trim_start_matches('#')
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let done = server.wait_finished(again).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let view = steps(&server, again).await;
    assert_eq!(
        statuses(&view),
        pairs(&[
            ("prepare", "succeeded"),
            ("change", "succeeded"),
            ("verify", "succeeded"),
            ("undo", "unreached"),
        ])
    );
    let labels: Vec<String> = children(&server, again)
        .await
        .iter()
        .map(|k| k["step"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(labels, ["change#1", "verify#1"]);
    let (status, body) = server
        .post(&format!("/executions/{again}/rerun"), json!({}))
        .await;
    assert_eq!(status, 400, "nothing failed: {body}");
    let (status, body) = server
        .post(&format!("/executions/{id}/rerun"), json!({"from": "nope"}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "workflow `wf.rollback` has no step `nope`"
    );
}

const CONFIRM: &str = r#"name = "wf.confirm"
description = "Ask a lead before the change"
[params.host]
type = "string"
required = true

[[steps]]
name = "drain"
action = "test.args"
params = { text = "drain {{ input.host }}" }

[[steps]]
name = "confirm"
inquiry = { prompt = "Restart {{ input.host }}?", approvers = ["group:sre-leads"], timeout = "{TIMEOUT}", on_timeout = "undrain" }
on_failure = "undrain"

[[steps]]
name = "restart"
action = "test.args"
params = { text = "restart {{ input.host }} for {{ steps.confirm.by }}" }

[[steps]]
name = "undrain"
action = "test.args"
params = { text = "undrain {{ input.host }}" }
"#;

#[tokio::test]
async fn an_inquiry_waits_for_an_allowed_answer_from_the_api_cli_or_chat() {
    let dir = catalog(&[(
        "workflows/confirm.toml",
        &CONFIRM.replace("{TIMEOUT}", "10m"),
    )]);
    let server = Server::start_with_config(dir.path(), USERS);
    let alice_token = server.token_for("alice");
    let bob_token = server.token_for("bob");
    let alice = Api::with_token(server.url.clone(), &alice_token);
    let bob = Api::with_token(server.url.clone(), &bob_token);

    // Yes, from the CLI, by a lead.
    let id = alice.submit("wf.confirm", json!({"host": "web-1"})).await;
    let view = wait_steps(&alice, id, |v| step(v, "confirm")["status"] == "waiting").await;
    assert_eq!(step(&view, "confirm")["prompt"], "Restart web-1?");
    let (status, body) = alice
        .post(
            &format!("/executions/{id}/answer"),
            json!({"answer": "yes"}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["error"]["message"],
        "step `confirm` is answered by group:sre-leads, and alice is not one of them"
    );
    let out = server.cli_as(&bob_token, &["answer", &id.to_string(), "maybe"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("answer `yes` or `no`, not `maybe`"),
        "{out:?}"
    );
    let out = server.cli_as(&bob_token, &["answer", &id.to_string(), "yes"]);
    assert!(out.status.success(), "{out:?}");
    let done = alice.wait_finished(id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let view = steps(&alice, id).await;
    assert_eq!(step(&view, "confirm")["answered_by"], "bob");
    assert_eq!(step(&view, "undrain")["status"], "unreached");
    let restart = children(&alice, id)
        .await
        .into_iter()
        .find(|k| k["step"] == "restart#1")
        .unwrap();
    assert_eq!(restart["params"]["text"], "restart web-1 for bob");
    let (status, body) = bob
        .post(
            &format!("/executions/{id}/answer"),
            json!({"answer": "yes"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");

    // No, from chat: the failure branch undrains and nothing restarts.
    let id = alice.submit("wf.confirm", json!({"host": "web-2"})).await;
    wait_steps(&alice, id, |v| step(v, "confirm")["status"] == "waiting").await;
    let out = server.cli_as(
        &bob_token,
        &["chat", "-o", "json", "-c", &format!("reject {id}")],
    );
    let said = text(&out.stdout);
    assert!(
        said.contains(&format!("bob answered step `confirm` of workflow {id}: no")),
        "{said}"
    );
    let done = alice.wait_finished(id).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(done["error"], "step `confirm` failed: bob answered no");
    let view = steps(&alice, id).await;
    assert_eq!(step(&view, "restart")["status"], "unreached");
    assert_eq!(step(&view, "undrain")["status"], "succeeded");

    // Every answer and refusal is in the audit log.
    let (_, page) = server.get("/audit?limit=1000").await;
    let answers: Vec<(String, String)> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "workflow.answered")
        .map(|r| {
            (
                r["actor"].as_str().unwrap().to_owned(),
                r["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        answers,
        pairs(&[
            ("alice", "denied"),
            ("bob", "answered"),
            ("bob", "rejected")
        ])
    );
}

#[tokio::test]
async fn an_unanswered_inquiry_takes_its_timeout_path() {
    let dir = catalog(&[(
        "workflows/confirm.toml",
        &CONFIRM.replace("{TIMEOUT}", "1s"),
    )]);
    let server = Server::start_with_config(dir.path(), USERS);
    let id = server.submit("wf.confirm", json!({"host": "web-3"})).await;
    let done = server.wait_finished(id).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(
        done["error"],
        "step `confirm` timed out: nobody answered in time"
    );
    let view = steps(&server, id).await;
    assert_eq!(step(&view, "undrain")["status"], "succeeded");
    assert_eq!(step(&view, "restart")["status"], "unreached");
}

const SLOW: &str = r#"name = "wf.slow"
description = "Steps that take time"
timeout = "{WHOLE}"
[params.dir]
type = "string"
required = true

[[steps]]
name = "first"
action = "wf.sleep"
params = { seconds = "{FIRST}", pidfile = "{{ input.dir }}/first.pid" }
timeout = "{STEP}"

[[steps]]
name = "second"
action = "test.sleep"
params = { seconds = "30s", pidfile = "{{ input.dir }}/second.pid" }

[[steps]]
name = "third"
action = "test.args"
params = { text = "third" }
"#;

fn slow(first: &str, step: &str, whole: &str) -> String {
    SLOW.replace("{FIRST}", first)
        .replace("{STEP}", step)
        .replace("{WHOLE}", whole)
}

#[tokio::test]
async fn timeouts_stop_a_step_or_the_whole_workflow() {
    let dir = catalog(&[
        ("workflows/slow.toml", &slow("30s", "1s", "1h")),
        (
            "workflows/whole.toml",
            &slow("1s", "1h", "3s").replace("wf.slow", "wf.whole"),
        ),
    ]);
    let server = Server::start(dir.path());
    let d = dir.path().to_str().unwrap();
    let id = server.submit("wf.slow", json!({"dir": d})).await;
    let done = server.wait_finished(id).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(
        done["error"],
        "step `first` timed out: stopped after the step's timeout of 1s"
    );
    let id = server.submit("wf.whole", json!({"dir": d})).await;
    let done = server.wait_finished(id).await;
    assert_eq!(done["status"], "timed_out", "{done}");
    let view = steps(&server, id).await;
    assert_eq!(
        statuses(&view),
        pairs(&[
            ("first", "succeeded"),
            ("second", "cancelled"),
            ("third", "cancelled")
        ])
    );
    let second = children(&server, id)
        .await
        .into_iter()
        .find(|k| k["step"] == "second#1")
        .unwrap();
    assert_eq!(second["status"], "cancelled");
}

#[tokio::test]
async fn pause_holds_the_next_step_and_cancel_stops_the_running_one() {
    let dir = catalog(&[("workflows/slow.toml", &slow("2s", "1h", "1h"))]);
    let server = Server::start_with_config(dir.path(), USERS);
    let alice = Api::with_token(server.url.clone(), &server.token_for("alice"));
    let dave = Api::with_token(server.url.clone(), &server.token_for("dave"));
    let d = dir.path().to_str().unwrap();
    let id = alice.submit("wf.slow", json!({"dir": d})).await;
    wait_steps(&alice, id, |v| step(v, "first")["status"] == "running").await;
    let (status, _) = dave
        .post(&format!("/executions/{id}/pause"), json!({}))
        .await;
    assert_eq!(status, 403, "only who may cancel it may pause it");
    let (status, body) = alice
        .post(&format!("/executions/{id}/pause"), json!({}))
        .await;
    assert_eq!(status, 204, "{body}");
    // `first` ends; `second` does not start while paused.
    let view = wait_steps(&alice, id, |v| step(v, "first")["status"] == "succeeded").await;
    assert!(view["paused"].as_bool().unwrap());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        step(&steps(&alice, id).await, "second")["status"],
        "pending"
    );
    let (status, _) = alice
        .post(&format!("/executions/{id}/resume"), json!({}))
        .await;
    assert_eq!(status, 204);
    wait_steps(&alice, id, |v| step(v, "second")["status"] == "running").await;
    let pid = wait_for_pid(&dir.path().join("second.pid")).await;
    let (status, body) = alice
        .post(&format!("/executions/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let done = alice.wait_finished(id).await;
    assert_eq!(done["status"], "cancelled");
    assert!(
        !crate::harness::alive(pid),
        "the running step's process was stopped"
    );
    let view = steps(&alice, id).await;
    assert_eq!(
        statuses(&view),
        pairs(&[
            ("first", "succeeded"),
            ("second", "cancelled"),
            ("third", "cancelled")
        ])
    );
    let log = alice.output_text(id).await;
    assert!(log.contains("⏸ paused by alice"), "{log}");
    assert!(log.contains("⏵ resumed by alice"), "{log}");
}

const GUARDED: &str = r#"name = "wf.launder"
description = "Runs a guarded action as a step"
[[steps]]
name = "run"
action = "wf.guarded"
"#;

#[tokio::test]
async fn a_workflow_cannot_launder_a_permission_unless_it_runs_as_a_service() {
    let service = GUARDED.replacen(
        "name = \"wf.launder\"",
        "name = \"wf.delegated\"\nrun_as = \"svc:rollout\"",
        1,
    );
    let dir = catalog(&[
        ("workflows/guarded.toml", GUARDED),
        ("workflows/delegated.toml", &service),
    ]);
    let server = Server::start_with_config(dir.path(), USERS);
    let alice = Api::with_token(server.url.clone(), &server.token_for("alice"));
    // alice may start the workflow, but not the step it runs.
    let id = alice.submit("wf.launder", json!({})).await;
    let done = alice.wait_finished(id).await;
    assert_eq!(done["status"], "failed");
    assert!(
        done["error"]
            .as_str()
            .unwrap()
            .contains("forbidden by `guarded-for-leads-and-rollout`"),
        "{done}"
    );
    assert!(children(&alice, id).await.is_empty(), "the step never ran");
    // Run as the service principal, the step runs; the audit log shows both.
    let id = alice.submit("wf.delegated", json!({})).await;
    let done = alice.wait_finished(id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let kids = children(&alice, id).await;
    assert_eq!(kids[0]["requester"], "svc:rollout");
    let (_, page) = server.get("/audit?limit=1000").await;
    let requested = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "execution.requested" && r["detail"]["workflow"] == id)
        .unwrap()
        .clone();
    assert_eq!(requested["actor"], "svc:rollout");
    assert_eq!(requested["detail"]["step"], "run#1");
    let log = alice.output_text(id).await;
    assert!(
        log.contains("steps run as svc:rollout on behalf of alice"),
        "{log}"
    );
}

const DURABLE: &str = r#"name = "wf.durable"
description = "Survives the death of its node"
[params.dir]
type = "string"
required = true

[[steps]]
name = "before"
action = "wf.flaky"
params = { counter = "{{ input.dir }}/before.count" }

[[steps]]
name = "long"
action = "{LONG}"
params = { seconds = "4s", pidfile = "{{ input.dir }}/long.pid" }
on_failure = "cleanup"

[[steps]]
name = "confirm"
inquiry = { prompt = "Go on?" }

[[steps]]
name = "after"
action = "wf.flaky"
params = { counter = "{{ input.dir }}/after.count" }

[[steps]]
name = "cleanup"
action = "test.args"
params = { text = "cleanup" }
"#;

fn count(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[tokio::test]
async fn a_workflow_resumes_after_kill_9_without_running_finished_steps_again() {
    let dir = catalog(&[
        (
            "workflows/idem.toml",
            &DURABLE.replace("{LONG}", "wf.sleep"),
        ),
        (
            "workflows/once.toml",
            &DURABLE
                .replace("{LONG}", "test.sleep")
                .replace("wf.durable", "wf.once"),
        ),
    ]);
    let mut server = Server::start(dir.path());
    let idem = tempfile::tempdir().unwrap();
    let once = tempfile::tempdir().unwrap();
    let a = server
        .submit("wf.durable", json!({"dir": idem.path()}))
        .await;
    let b = server.submit("wf.once", json!({"dir": once.path()})).await;
    let long_a = wait_for_pid(&idem.path().join("long.pid")).await;
    let long_b = wait_for_pid(&once.path().join("long.pid")).await;
    // The node dies mid-step; its children go with its process group.
    server.kill_9();
    for pid in [long_a, long_b] {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    std::fs::remove_file(idem.path().join("long.pid")).unwrap();
    server.start_again();

    // The idempotent step runs again; the workflow then waits as before.
    let view = wait_steps(&server, a, |v| step(v, "confirm")["status"] == "waiting").await;
    let long = &step(&view, "long")["units"][0];
    assert_eq!(long["executions"].as_array().unwrap().len(), 2, "{view}");
    let first = long["executions"][0].as_i64().unwrap();
    let (_, lost) = server.get(&format!("/executions/{first}")).await;
    assert_eq!(lost["status"], "lost");
    // Killed again while it waits for the answer: it still waits after.
    server.kill_9();
    server.start_again();
    let view = wait_steps(&server, a, |v| step(v, "confirm")["status"] == "waiting").await;
    assert_eq!(
        step(&view, "before")["units"][0]["executions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let out = server.cli(&["answer", &a.to_string(), "yes"]);
    assert!(out.status.success(), "{out:?}");
    let done = server.wait_finished(a).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        count(idem.path(), "before.count"),
        "1",
        "a finished step never runs twice"
    );
    assert_eq!(count(idem.path(), "after.count"), "1");
    let log = server.output_text(a).await;
    assert!(log.contains("resumed after a restart"), "{log}");
    assert!(log.contains("is idempotent, so it runs again"), "{log}");

    // A step that is not idempotent is not run again: the failure path.
    let done = server.wait_finished(b).await;
    assert_eq!(done["status"], "failed");
    let view = steps(&server, b).await;
    assert_eq!(
        statuses(&view),
        pairs(&[
            ("before", "succeeded"),
            ("long", "failed"),
            ("confirm", "unreached"),
            ("after", "unreached"),
            ("cleanup", "succeeded"),
        ])
    );
    let reason = step(&view, "long")["reason"].as_str().unwrap();
    assert!(
        reason.contains("`test.sleep` is not declared idempotent, so it is not run again"),
        "{reason}"
    );
    assert_eq!(count(once.path(), "before.count"), "1");
    // The audit chain is whole.
    let (_, verified) = server.get("/audit/verify").await;
    assert!(verified["broken"].is_null(), "{verified}");
}

#[tokio::test]
async fn catalog_check_names_every_workflow_error_with_its_line() {
    let bad = r#"name = "wf.bad"
description = "Broken"
[[steps]]
name = "a"
action = "wf.nope"

[[steps]]
name = "b"
action = "test.args"
params = { text = "{{ steps.zz.result }}" }
"#;
    let dir = catalog(&[("workflows/bad.toml", bad)]);
    let out = std::process::Command::new(crate::harness::BIN)
        .args(["catalog", "check"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let shown = text(&out.stdout) + &text(&out.stderr);
    assert!(
        shown.contains("workflows/bad.toml:3: steps[0].action: unknown action `wf.nope`"),
        "{shown}"
    );
    assert!(
        shown.contains(
            "workflows/bad.toml:7: steps[1].params.text: `steps.zz`: no step `zz` in this workflow"
        ),
        "{shown}"
    );
}

const FAN_OUT: &str = r#"name = "wf.fan_out"
description = "Four sleeps, two at a time"
[[steps]]
name = "each"
action = "wf.sleep"
for_each = "[1, 2, 3, 4]"
concurrency = 2
params = { seconds = "1s" }
"#;

#[tokio::test]
async fn for_each_runs_no_more_items_at_once_than_its_concurrency() {
    let dir = catalog(&[("workflows/fan_out.toml", FAN_OUT)]);
    let server = Server::start(dir.path());
    let id = server.submit("wf.fan_out", json!({})).await;
    let done = server.wait_finished(id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let time = |v: &Value| {
        humantime::parse_rfc3339(v.as_str().unwrap())
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
    };
    let runs: Vec<(Duration, Duration)> = children(&server, id)
        .await
        .iter()
        .map(|k| (time(&k["started_at"]), time(&k["finished_at"])))
        .collect();
    assert_eq!(runs.len(), 4);
    // At each start, how many runs were going on.
    let most = runs
        .iter()
        .map(|(start, _)| runs.iter().filter(|(s, f)| s <= start && start < f).count())
        .max()
        .unwrap();
    assert_eq!(most, 2, "{runs:?}");
}

const CHATTY: &str = r#"name = "wf.chatty"
description = "Two steps, run from chat"
[[aliases]]
format = "chatty"
[[steps]]
name = "first"
action = "test.args"
params = { text = "one" }
[[steps]]
name = "second"
action = "test.args"
params = { text = "two" }
"#;

#[tokio::test]
async fn chat_reports_a_workflow_as_its_step_tree() {
    let dir = catalog(&[("workflows/chatty.toml", CHATTY)]);
    let server = Server::start(dir.path());
    let out = server.cli(&["chat", "-o", "json", "-c", "chatty"]);
    assert!(out.status.success(), "{out:?}");
    let said = text(&out.stdout);
    let finished: Vec<Value> = said
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "post" && e["text"].as_str().unwrap().contains("succeeded"))
        .collect();
    let last = finished.last().unwrap_or_else(|| panic!("{said}"))["text"]
        .as_str()
        .unwrap()
        .to_owned();
    for line in ["✔ first succeeded #", "✔ second succeeded #"] {
        assert!(last.contains(line), "`{line}` not in {last}");
    }
}

#[tokio::test]
async fn schedules_and_signed_webhooks_start_workflows() {
    use hmac::{Hmac, KeyInit, Mac};
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "s3cret").unwrap();
    let hooks = format!(
        "[[hooks]]\nname = \"deploy\"\naction = \"wf.chatty\"\nrun_as = \"admin\"\nsecret = \"file:{}\"\n",
        secret.path().display()
    );
    let schedules = "[[schedules]]\nname = \"often\"\naction = \"wf.chatty\"\ncron = \"* * * * * *\"\nrun_as = \"admin\"\n";
    let dir = catalog(&[
        ("workflows/chatty.toml", CHATTY),
        ("hooks.toml", &hooks),
        ("schedules.toml", schedules),
    ]);
    let server = Server::start(dir.path());
    let body = r#"{"ref": "main"}"#;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"s3cret").unwrap();
    mac.update(body.as_bytes());
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let resp = reqwest::Client::new()
        .post(server.api("/hooks/deploy"))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let id = resp.json::<Value>().await.unwrap()["execution_id"]
        .as_i64()
        .unwrap();
    let done = server.wait_finished(id).await;
    assert_eq!(
        (&done["status"], &done["origin"]),
        (&json!("succeeded"), &json!("webhook:deploy"))
    );
    // Its steps keep the door it came through.
    let kids = children(&server, id).await;
    assert!(
        kids.iter().all(|k| k["origin"] == "webhook:deploy"),
        "{kids:?}"
    );
    // The schedule starts it too, every second.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, page) = server
            .get("/executions?origin=schedule:often&limit=10")
            .await;
        let runs = page["executions"].as_array().unwrap().clone();
        if let Some(e) = runs
            .iter()
            .find(|e| e["action"] == "wf.chatty" && e["status"] == "succeeded")
        {
            let view = steps(&server, e["id"].as_i64().unwrap()).await;
            assert_eq!(
                statuses(&view),
                pairs(&[("first", "succeeded"), ("second", "succeeded")])
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no scheduled workflow ran: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
