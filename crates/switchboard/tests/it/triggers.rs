//! Triggers: cron schedules and signed inbound webhooks, against the real
//! daemon — signatures computed here with HMAC, executions followed over
//! the API, outcomes read back from the audit log and `switchboard
//! schedules`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::harness::{Server, copy_catalog, test_catalog, text};

const SECRET: &str = "hook-secret-0123456789";

/// The test catalog plus `files`, in a folder of its own.
fn catalog_with(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    let root = dir.join("catalog");
    std::fs::create_dir_all(&root).unwrap();
    copy_catalog(&test_catalog(), &root);
    for (name, content) in files {
        std::fs::write(root.join(name), content).unwrap();
    }
    root
}

fn unix_now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// GitHub's header value for `{timestamp}.{body}`.
fn sign(secret: &str, timestamp: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Every audit record, in chain order.
async fn audit(server: &Server) -> Vec<Value> {
    let (status, page) = server.get("/audit?limit=5000").await;
    assert_eq!(status, 200, "{page}");
    page["records"].as_array().unwrap().clone()
}

fn of_kind<'a>(records: &'a [Value], kind: &str, subject: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["kind"] == kind && r["subject"] == subject)
        .collect()
}

/// A client with no credential: a webhook sender.
struct Sender {
    http: reqwest::Client,
    url: String,
}

impl Sender {
    fn new(server: &Server) -> Self {
        Self {
            http: reqwest::Client::new(),
            url: server.url.clone(),
        }
    }

    async fn post(&self, hook: &str, headers: &[(&str, String)], body: &str) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}/api/v1/hooks/{hook}", self.url))
            .header("content-type", "application/json")
            .body(body.to_owned());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// A correctly signed call with a fresh timestamp.
    async fn signed(&self, hook: &str, delivery: &str, body: &str) -> (u16, Value) {
        let ts = unix_now().to_string();
        self.post(
            hook,
            &[
                ("x-hub-signature-256", sign(SECRET, &ts, body)),
                ("x-timestamp", ts),
                ("x-delivery", delivery.to_owned()),
            ],
            body,
        )
        .await
    }
}

fn hooks_toml(secret_file: &Path) -> String {
    format!(
        r#"
[[hooks]]
name = "alert-text"
description = "Echo the instance of the first alert"
action = "test.args"
run_as = "admin"
secret = "file:{secret}"
[hooks.signature]
timestamp_header = "X-Timestamp"
delivery_header = "X-Delivery"
replay_window = "5m"
[hooks.params]
text = "{{{{ body.alerts[0].labels.instance }}}}"

[[hooks]]
name = "denied"
action = "test.fail"
run_as = "admin"
secret = "file:{secret}"
signature = {{ timestamp_header = "X-Timestamp", delivery_header = "X-Delivery" }}
"#,
        secret = secret_file.display()
    )
}

/// Webhooks run no action for whoever merely knows the URL.
const GUARD: &str = r#"
@id("no-failing-from-webhooks")
forbid (principal, action == Action::"run", resource)
when { context.door == "webhook" && resource.name == "test.fail" };
"#;

#[tokio::test]
async fn a_signed_webhook_runs_its_action_and_every_refusal_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("hook.secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let catalog = catalog_with(dir.path(), &[("hooks.toml", &hooks_toml(&secret_file))]);
    std::fs::write(catalog.join("policies/guard.cedar"), GUARD).unwrap();
    let server = Server::start(&catalog);
    let sender = Sender::new(&server);
    let body = r#"{"alerts":[{"labels":{"instance":"db-1"}}]}"#;

    // Signed: accepted, run as the hook's principal from its door.
    let (status, accepted) = sender.signed("alert-text", "d-1", body).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["execution_id"].as_i64().unwrap();
    assert_eq!(accepted["url"], format!("/api/v1/executions/{id}"));
    let execution = server.wait_finished(id).await;
    assert_eq!(execution["status"], "succeeded", "{execution}");
    assert_eq!(execution["params"]["text"], "db-1");
    assert_eq!(execution["origin"], "webhook:alert-text");
    assert_eq!(execution["requester"], "admin");
    assert!(server.output_text(id).await.contains("env:db-1"));

    // The same delivery again, freshly signed: a replay.
    let (status, replay) = sender.signed("alert-text", "d-1", body).await;
    assert_eq!(status, 401, "{replay}");
    assert_eq!(replay["error"]["code"], "replay", "{replay}");
    assert!(
        replay["error"]["message"]
            .as_str()
            .unwrap()
            .contains("delivery `d-1` was received before")
    );

    // Signed with another secret.
    let ts = unix_now().to_string();
    let forged = sign("not-the-secret", &ts, body);
    let (status, bad) = sender
        .post(
            "alert-text",
            &[
                ("x-hub-signature-256", forged.clone()),
                ("x-timestamp", ts.clone()),
                ("x-delivery", "d-2".into()),
            ],
            body,
        )
        .await;
    assert_eq!(status, 401, "{bad}");
    assert_eq!(bad["error"]["code"], "bad_signature");

    // The body changed after signing.
    let (status, tampered) = sender
        .post(
            "alert-text",
            &[
                ("x-hub-signature-256", sign(SECRET, &ts, body)),
                ("x-timestamp", ts.clone()),
                ("x-delivery", "d-3".into()),
            ],
            &body.replace("db-1", "db-2"),
        )
        .await;
    assert_eq!(status, 401, "{tampered}");
    assert_eq!(tampered["error"]["code"], "bad_signature");

    // Correctly signed ten minutes ago: stale.
    let old = (unix_now() - 600).to_string();
    let (status, stale) = sender
        .post(
            "alert-text",
            &[
                ("x-hub-signature-256", sign(SECRET, &old, body)),
                ("x-timestamp", old),
                ("x-delivery", "d-4".into()),
            ],
            body,
        )
        .await;
    assert_eq!(status, 401, "{stale}");
    assert_eq!(stale["error"]["code"], "stale");
    assert!(
        stale["error"]["message"]
            .as_str()
            .unwrap()
            .contains("replay window of 5m")
    );

    // Unsigned.
    let (status, unsigned) = sender.post("alert-text", &[], body).await;
    assert_eq!(status, 401, "{unsigned}");

    // Signed, but the body lacks the field a parameter is taken from.
    let (status, missing) = sender.signed("alert-text", "d-5", r#"{"alerts":[]}"#).await;
    assert_eq!(status, 400, "{missing}");
    assert_eq!(
        missing["error"]["details"][0]["field"], "params.text",
        "{missing}"
    );
    let (status, not_json) = sender.signed("alert-text", "d-6", "not json").await;
    assert_eq!(status, 400, "{not_json}");
    assert_eq!(not_json["error"]["details"][0]["field"], "body");

    // Signed, but the policies forbid the action through the webhook door.
    let (status, denied) = sender.signed("denied", "d-7", "{}").await;
    assert_eq!(status, 403, "{denied}");

    // No such hook.
    let (status, unknown) = sender.signed("nope", "d-8", body).await;
    assert_eq!(status, 404, "{unknown}");
    assert_eq!(unknown["error"]["code"], "unknown_hook");

    // Over 1 MiB: refused before anything is read.
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(1024 * 1024));
    let (status, too_large) = sender.signed("alert-text", "d-9", &huge).await;
    assert_eq!(status, 413, "{too_large}");

    // Nothing else ran.
    let (_, page) = server.get("/executions?origin=webhook:alert-text").await;
    assert_eq!(page["executions"].as_array().unwrap().len(), 1, "{page}");

    // Every call is in the audit log, the secret and signatures never.
    let records = audit(&server).await;
    let calls = of_kind(&records, "hook.received", "hook:alert-text");
    let outcomes: Vec<(&str, &str)> = calls
        .iter()
        .map(|r| {
            (
                r["outcome"].as_str().unwrap(),
                r["detail"]["kind"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("accepted", "-"),
            ("rejected", "replay"),
            ("rejected", "bad_signature"),
            ("rejected", "bad_signature"),
            ("rejected", "stale"),
            ("rejected", "bad_signature"),
            ("rejected", "bad_request"),
            ("rejected", "bad_request"),
        ],
        "{calls:#?}"
    );
    assert_eq!(calls[0]["detail"]["execution"], id);
    assert_eq!(calls[0]["actor"], "admin");
    assert_eq!(
        calls[2]["actor"], "anonymous",
        "an unproven caller is nobody"
    );
    assert_eq!(calls[2]["origin"], "webhook:alert-text");
    let denied = of_kind(&records, "hook.received", "hook:denied");
    assert_eq!(denied[0]["detail"]["kind"], "denied", "{denied:?}");
    assert_eq!(of_kind(&records, "hook.received", "hook:nope").len(), 1);
    let all = serde_json::to_string(&records).unwrap();
    assert!(!all.contains(SECRET), "the secret is never audited");
    assert!(!all.contains(&forged[7..]), "nor a signature");

    // Both routes are in the API's description; the hook's needs no token.
    let (_, doc) = server.get("/openapi.json").await;
    let hook = &doc["paths"]["/api/v1/hooks/{name}"]["post"];
    assert_eq!(hook["security"], serde_json::json!([{}]), "{hook}");
    assert!(doc["paths"]["/api/v1/schedules"]["get"].is_object());

    let (_, metrics) = server.page("/metrics").await;
    assert!(
        metrics.contains("switchboard_hook_calls_total{result=\"accepted\"} 1"),
        "{metrics}"
    );
}

/// Polls `check` every 50 ms until it returns something, for `secs`.
async fn eventually<T>(secs: u64, what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn executions_from(server: &Server, origin: &str) -> Vec<Value> {
    let (status, page) = server.get(&format!("/executions?origin={origin}")).await;
    assert_eq!(status, 200, "{page}");
    page["executions"].as_array().unwrap().clone()
}

const EVERY_SECOND: &str = r#"
[[schedules]]
name = "every-second"
description = "Say tick"
action = "test.args"
cron = "* * * * * *"
params = { text = "tick" }
run_as = "admin"

[[schedules]]
name = "yearly"
action = "test.args"
cron = "0 0 1 1 *"
timezone = "Europe/Berlin"
params = { text = "new year" }
run_as = "admin"
"#;

#[tokio::test]
async fn a_schedule_runs_its_action_at_each_tick_and_a_reload_adds_one() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog_with(dir.path(), &[("schedules.toml", EVERY_SECOND)]);
    let server = Server::start(&catalog);

    let runs = eventually(20, "two scheduled runs", async || {
        let runs = executions_from(&server, "schedule:every-second").await;
        (runs.len() >= 2).then_some(runs)
    })
    .await;
    let id = runs[0]["id"].as_i64().unwrap();
    let execution = server.wait_finished(id).await;
    assert_eq!(execution["status"], "succeeded", "{execution}");
    assert_eq!(execution["params"]["text"], "tick");
    assert_eq!(execution["requester"], "admin");
    assert!(server.output_text(id).await.contains("env:tick"));

    // Listed with the next and last runs.
    let out = server.cli(&["schedules"]);
    assert!(out.status.success(), "{out:?}");
    let listed = text(&out.stdout);
    let line = listed
        .lines()
        .find(|l| l.starts_with("every-second"))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(
        line.contains("test.args") && line.contains("* * * * * *"),
        "{line}"
    );
    let yearly = listed.lines().find(|l| l.starts_with("yearly")).unwrap();
    assert!(yearly.contains("-01-01 00:00:00 CET"), "{yearly}");
    let out = server.cli(&["schedules", "--output", "json"]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let every = json
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "every-second")
        .unwrap();
    assert_eq!(every["last_run"]["outcome"], "submitted", "{every}");
    assert!(
        every["last_run"]["execution_id"].as_i64().is_some(),
        "{every}"
    );
    assert!(every["next_run"].as_str().is_some(), "{every}");
    let yearly = json
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "yearly")
        .unwrap();
    assert!(yearly["last_run"].is_null(), "{yearly}");
    assert!(
        yearly["next_run"]
            .as_str()
            .unwrap()
            .ends_with("-12-31T23:00:00.000000Z"),
        "midnight in Berlin: {yearly}"
    );

    // Audited, each tick once.
    let records = audit(&server).await;
    let fired = of_kind(&records, "schedule.fired", "schedule:every-second");
    assert!(fired.len() >= 2, "{fired:?}");
    assert!(
        fired
            .iter()
            .all(|r| r["outcome"] == "submitted" && r["origin"] == "schedule:every-second")
    );
    let mut ticks: Vec<&str> = fired
        .iter()
        .map(|r| r["detail"]["tick"].as_str().unwrap())
        .collect();
    let n = ticks.len();
    ticks.dedup();
    assert_eq!(ticks.len(), n, "a tick fired twice: {ticks:?}");

    // A schedule added by a reload runs without a restart.
    let more = format!(
        "{EVERY_SECOND}\n[[schedules]]\nname = \"added\"\naction = \"test.args\"\ncron = \"* * * * * *\"\nparams = {{ text = \"added\" }}\nrun_as = \"admin\"\n"
    );
    std::fs::write(catalog.join("schedules.toml"), more).unwrap();
    let out = server.cli(&["catalog", "reload"]);
    assert!(out.status.success(), "{out:?}");
    let added = eventually(20, "a run of the added schedule", async || {
        executions_from(&server, "schedule:added")
            .await
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(added["params"]["text"], "added");
}

const TWO_POLICIES: &str = r#"
[[schedules]]
name = "catch-up"
action = "test.args"
cron = "* * * * * *"
params = { text = "caught up" }
run_as = "admin"
missed = "run_once"

[[schedules]]
name = "skipper"
action = "test.args"
cron = "* * * * * *"
params = { text = "skipped" }
run_as = "admin"
missed = "skip"
"#;

#[tokio::test]
async fn after_downtime_a_missed_tick_runs_once_with_run_once_and_not_with_skip() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog_with(dir.path(), &[("schedules.toml", TWO_POLICIES)]);
    let mut server = Server::start(&catalog);
    eventually(20, "both schedules fired", async || {
        let (_, list) = server.get("/schedules").await;
        list.as_array()
            .unwrap()
            .iter()
            .all(|s| s["last_run"]["outcome"] == "submitted")
            .then_some(())
    })
    .await;
    server.stop();
    // Down for three seconds: at least two ticks of each are missed.
    std::thread::sleep(Duration::from_secs(3));
    server.start_again();

    let records = eventually(20, "the catch-up is recorded", async || {
        let records = audit(&server).await;
        let caught = of_kind(&records, "schedule.fired", "schedule:catch-up")
            .iter()
            .any(|r| !r["detail"]["missed"].is_null());
        let skipped = !of_kind(&records, "schedule.missed", "schedule:skipper").is_empty();
        (caught && skipped).then_some(records)
    })
    .await;

    // run_once: one run stands for the missed ticks, and it ran.
    let catch_ups: Vec<&Value> = of_kind(&records, "schedule.fired", "schedule:catch-up")
        .into_iter()
        .filter(|r| !r["detail"]["missed"].is_null())
        .collect();
    assert_eq!(catch_ups.len(), 1, "{catch_ups:?}");
    assert!(
        catch_ups[0]["detail"]["missed"].as_u64().unwrap() >= 2,
        "{catch_ups:?}"
    );
    assert_eq!(catch_ups[0]["outcome"], "submitted");
    let id = catch_ups[0]["detail"]["execution"].as_i64().unwrap();
    let execution = server.wait_finished(id).await;
    assert_eq!(execution["status"], "succeeded", "{execution}");
    assert_eq!(execution["params"]["text"], "caught up");

    // skip: recorded as skipped, nothing run for the missed ticks.
    let skips = of_kind(&records, "schedule.missed", "schedule:skipper");
    assert_eq!(skips.len(), 1, "{skips:?}");
    assert_eq!(skips[0]["outcome"], "skipped");
    assert!(
        skips[0]["detail"]["missed"].as_u64().unwrap() >= 2,
        "{skips:?}"
    );
    let skipped_tick = skips[0]["detail"]["latest"].as_str().unwrap();
    let skipper_fired = of_kind(&records, "schedule.fired", "schedule:skipper");
    assert!(
        skipper_fired.iter().all(|r| r["detail"]["missed"].is_null()
            && r["detail"]["tick"].as_str().unwrap() != skipped_tick),
        "{skipper_fired:?}"
    );

    // Both carry on, and no tick ever fired twice.
    for name in ["catch-up", "skipper"] {
        let subject = format!("schedule:{name}");
        let before = of_kind(&records, "schedule.fired", &subject).len();
        let records = eventually(20, "a tick after the restart", async || {
            let records = audit(&server).await;
            (of_kind(&records, "schedule.fired", &subject).len() > before).then_some(records)
        })
        .await;
        let mut ticks: Vec<&str> = of_kind(&records, "schedule.fired", &subject)
            .iter()
            .map(|r| r["detail"]["tick"].as_str().unwrap())
            .collect();
        let n = ticks.len();
        ticks.sort_unstable();
        ticks.dedup();
        assert_eq!(ticks.len(), n, "{name}: a tick fired twice");
    }
}
