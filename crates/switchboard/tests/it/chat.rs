//! The chat front door through the console (`switchboard chat`, the web
//! console's `POST /api/v1/chat`): the same conversation engine every chat
//! platform uses, with the caller signed in by token.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::authz::TEAM;
use crate::harness::{BIN, Server, copy_catalog, sample_catalog, text};

/// The console events a line produces (`switchboard chat -o json -c LINE`).
fn console_events(server: &Server, token: &str, line: &str) -> Vec<Value> {
    let out = server.cli_as(token, &["chat", "-o", "json", "-c", line]);
    assert!(out.status.success(), "{out:?}");
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn posts(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "post")
        .map(|e| e["text"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_chat_command_runs_through_the_engine_as_the_signed_in_user() {
    let dir = tempfile::tempdir().unwrap();
    copy_catalog(&sample_catalog(), dir.path());
    let server = Server::start_with_config(dir.path(), TEAM);
    let alice = server.token_for("alice");

    let out = server.cli_as(&alice, &["chat", "-c", "echo hello big   world"]);
    assert!(out.status.success(), "{out:?}");
    let said = text(&out.stdout);
    assert!(
        said.contains("» Running demo.echo… (demo.echo #1)"),
        "{said}"
    );
    assert!(said.contains("» demo.echo #1 succeeded in"), "{said}");
    assert!(said.contains("  hello big world"), "{said}");

    let (_, e) = server.get("/executions/1").await;
    assert_eq!(e["requester"], "alice");
    assert_eq!(e["origin"], "chat:shell:console");
    assert_eq!(e["params"]["message"], "hello big world");
}

#[tokio::test]
async fn help_lists_only_what_the_asker_may_run_here_and_denials_give_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    copy_catalog(&sample_catalog(), dir.path());
    let server = Server::start_with_config(dir.path(), TEAM);
    let bob = server.token_for("bob");

    let help = posts(&console_events(&server, &bob, "help")).join("\n");
    assert!(help.contains("uptime "), "{help}");
    assert!(help.contains("echo {message}"), "{help}");
    // service.restart is not bob's to run, so help does not offer it.
    assert!(!help.contains("restart {service}"), "{help}");
    // The admin may run everything.
    let help = posts(&console_events(
        &server,
        crate::harness::ADMIN_TOKEN,
        "help",
    ))
    .join("\n");
    assert!(help.contains("restart {service}"), "{help}");

    // A command bob may see but not run is refused with the policy's reason, and audited.
    let said = posts(&console_events(&server, &bob, "restart cron"));
    assert_eq!(
        said,
        ["Refused: no policy permits bob to run service.restart"]
    );
    let (_, page) = server.get("/audit?limit=1000").await;
    let denial = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "authz.decision" && r["outcome"] == "denied" && r["actor"] == "bob")
        .cloned()
        .unwrap();
    assert_eq!(denial["origin"], "chat:shell:console");

    // sre may restart services, but from chat only in #ops: the policy sees the room.
    let alice = server.token_for("alice");
    let said = posts(&console_events(&server, &alice, "restart cron"));
    assert_eq!(
        said,
        ["Refused: no policy permits alice to run service.restart"]
    );
}

#[tokio::test]
async fn help_for_one_command_near_misses_and_bad_arguments_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    copy_catalog(&sample_catalog(), dir.path());
    let server = Server::start(dir.path());
    let admin = crate::harness::ADMIN_TOKEN;

    let help = posts(&console_events(&server, admin, "help logs")).join("\n");
    assert!(
        help.contains("logs [{file}] [lines={lines}] [grep={grep}]"),
        "{help}"
    );
    assert!(help.contains("lines"), "{help}");
    assert!(help.contains("10"), "the default is shown: {help}");

    assert_eq!(
        posts(&console_events(&server, admin, "logz")),
        ["Refused: no command `logz`; did you mean `logs`? Say `help` for the list"]
    );
    let said = posts(&console_events(&server, admin, "logs lines=ten")).join("\n");
    assert!(said.starts_with("Refused: "), "{said}");
    assert!(said.contains("lines"), "{said}");
    assert!(said.contains("logs [{file}]"), "the usage is shown: {said}");
    let said = posts(&console_events(&server, admin, "echo \"unbalanced")).join("\n");
    assert!(said.contains("never closed"), "{said}");
    // Nothing ran.
    let (_, page) = server.get("/executions").await;
    assert_eq!(page["executions"].as_array().unwrap().len(), 0, "{page}");
}

#[tokio::test]
async fn huge_messages_and_control_characters_are_refused_without_running_anything() {
    let dir = tempfile::tempdir().unwrap();
    copy_catalog(&sample_catalog(), dir.path());
    let server = Server::start(dir.path());
    let admin = crate::harness::ADMIN_TOKEN;

    let huge = format!("echo {}", "x".repeat(5000));
    let said = posts(&console_events(&server, admin, &huge)).join("\n");
    assert!(said.contains("longer than 4000 characters"), "{said}");
    let said = posts(&console_events(&server, admin, "echo a\u{7}b")).join("\n");
    assert!(said.starts_with("Refused:"), "{said}");
    // Text that reads otherwise than it runs (right-to-left override, zero-width space).
    for sneaky in ["echo \u{202e}evil", "restart nginx\u{200b}"] {
        let said = posts(&console_events(&server, admin, sneaky)).join("\n");
        assert!(
            said.starts_with("Refused: the message contains an invisible"),
            "{said}"
        );
    }
    let (status, body) = server.post("/chat", json!({"text": 5})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = server
        .post("/chat", json!({"text": "help", "client": "irc"}))
        .await;
    assert_eq!(status, 400, "{body}");
    let (_, page) = server.get("/executions").await;
    let ran: Vec<&Value> = page["executions"].as_array().unwrap().iter().collect();
    assert!(ran.is_empty(), "{ran:?}");
}

#[tokio::test]
async fn long_output_shows_its_tail_and_comes_whole_as_a_file() {
    let dir = tempfile::tempdir().unwrap();
    copy_catalog(&sample_catalog(), dir.path());
    let server = Server::start(dir.path());
    let log = tempfile::Builder::new()
        .prefix("sb-chat")
        .tempfile_in("/tmp")
        .unwrap();
    for i in 1..=100 {
        writeln!(log.as_file(), "line {i}").unwrap();
    }
    let line = format!("logs {} lines=100", log.path().display());
    let events = console_events(&server, crate::harness::ADMIN_TOKEN, &line);
    let result = posts(&events).last().cloned().unwrap();
    assert!(result.contains("succeeded"), "{result}");
    assert!(
        result.contains("line 100") && result.contains("line 86"),
        "{result}"
    );
    assert!(!result.contains("line 85\n"), "only the tail: {result}");
    let file = events.iter().find(|e| e["event"] == "file").unwrap();
    let whole = file["text"].as_str().unwrap();
    assert_eq!(whole.lines().count(), 100, "{whole}");
    assert!(whole.starts_with("line 1\n"), "{whole}");
    assert_eq!(file["filename"], "host.logs-1.log");
}

#[tokio::test]
async fn long_runs_show_progress_edited_into_the_acknowledgement() {
    let dir = tempfile::tempdir().unwrap();
    copy_catalog(&sample_catalog(), dir.path());
    let server = Server::start_with_config(
        dir.path(),
        "[chat]\nprogress_after = \"300ms\"\nprogress_every = \"300ms\"\n",
    );
    let events = console_events(
        &server,
        crate::harness::ADMIN_TOKEN,
        "slow steps=4 every 500ms",
    );
    let ack_id = events[0]["id"].as_str().unwrap();
    let updates: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "update" && e["id"] == ack_id)
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(
        updates.iter().any(|u| u.contains("running for")),
        "{events:?}"
    );
    let last = posts(&events).last().cloned().unwrap();
    assert!(last.contains("demo.slow #1 succeeded"), "{last}");
}

#[tokio::test]
async fn lines_typed_into_the_shell_run_concurrently_and_all_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    copy_catalog(&sample_catalog(), dir.path());
    let server = Server::start(dir.path());
    let mut child = Command::new(BIN)
        .arg("chat")
        .env("SWITCHBOARD_URL", &server.url)
        .env("SWITCHBOARD_TOKEN", crate::harness::ADMIN_TOKEN)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"slow steps=2 every 300ms\necho second\nwhoami\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = text(&out.stdout);
    // The lines run at once, so which gets which number is not fixed.
    let slow = said
        .find("» demo.slow #")
        .unwrap_or_else(|| panic!("{said}"));
    let echo = said
        .find("» demo.echo #")
        .unwrap_or_else(|| panic!("{said}"));
    assert!(
        said[slow..].lines().next().unwrap().contains("succeeded"),
        "{said}"
    );
    assert!(
        said[echo..].lines().next().unwrap().contains("succeeded"),
        "{said}"
    );
    assert!(said.contains("You are admin"), "{said}");
    // The quick echo is reported before the slow run ends.
    assert!(echo < slow, "{said}");
}

/// A console line left running in the background, its events read as they come.
struct Pending {
    child: std::process::Child,
    events: std::sync::mpsc::Receiver<Value>,
}

impl Pending {
    fn start(server: &Server, token: &str, line: &str) -> Self {
        let mut child = Command::new(BIN)
            .args(["chat", "-o", "json", "-c", line])
            .env("SWITCHBOARD_URL", &server.url)
            .env("SWITCHBOARD_TOKEN", token)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, events) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let _ = tx.send(serde_json::from_str(&line.unwrap()).unwrap());
            }
        });
        Self { child, events }
    }

    /// The next posted text.
    fn next_post(&self) -> String {
        loop {
            let e = self
                .events
                .recv_timeout(std::time::Duration::from_secs(30))
                .unwrap();
            if e["event"] == "post" {
                return e["text"].as_str().unwrap().to_owned();
            }
        }
    }
}

#[tokio::test]
async fn approvals_status_and_cancel_are_answered_in_chat_too() {
    let dir = tempfile::tempdir().unwrap();
    copy_catalog(&sample_catalog(), dir.path());
    let server = Server::start_with_config(dir.path(), TEAM);
    let admin = crate::harness::ADMIN_TOKEN;
    let carol = server.token_for("carol");
    let bob = server.token_for("bob");

    // The request is acknowledged and the approval request names the rule;
    // the requester's conversation stays open for the result.
    let mut request = Pending::start(&server, admin, "failover to db-2");
    let ack = request.next_post();
    assert!(
        ack.starts_with("Asking for approval to promote db-2… (db.failover #1)"),
        "{ack}"
    );
    let ask = request.next_post();
    assert!(
        ask.contains("needs approval from 1 of group:sre-leads"),
        "{ask}"
    );
    assert!(ask.contains("`approve 1`"), "{ask}");

    // Status is for those who may view it; approving is for sre-leads only.
    let status = posts(&console_events(&server, &bob, "status 1")).join("\n");
    assert!(
        status.contains(
            "db.failover) requested by admin from chat:shell:console is awaiting_approval"
        ),
        "{status}"
    );
    let refused = posts(&console_events(&server, &bob, "approve 1")).join("\n");
    assert!(refused.starts_with("Refused: "), "{refused}");
    let said = posts(&console_events(&server, &carol, "approve 1 looks right")).join("\n");
    assert_eq!(
        said,
        "carol approved execution 1 (db.failover); it runs now."
    );
    // The requester's thread gets the result.
    let result = request.next_post();
    assert!(result.starts_with("db.failover #1 succeeded"), "{result}");
    assert!(
        result.contains("dry run: would run: ssh db-2 pg_ctl promote"),
        "{result}"
    );
    assert!(request.child.wait().unwrap().success());
    let e = server.wait_finished(1).await;
    assert_eq!(e["approvals"][0]["reason"], "looks right", "{e}");
    assert_eq!(e["approvals"][0]["origin"], "chat:shell:console", "{e}");

    // A rejection ends it, and the requester hears; a cancel of someone else's run is refused.
    let mut request = Pending::start(&server, admin, "failover to db-1");
    request.next_post();
    request.next_post();
    let said = posts(&console_events(&server, &bob, "cancel 2")).join("\n");
    assert!(said.starts_with("Refused: "), "{said}");
    let said = posts(&console_events(&server, &carol, "reject 2")).join("\n");
    assert_eq!(
        said,
        "carol rejected execution 2 (db.failover); it will not run."
    );
    let result = request.next_post();
    assert!(
        result.starts_with("db.failover #2 cancelled: rejected by carol"),
        "{result}"
    );
    assert!(request.child.wait().unwrap().success());
    let said = posts(&console_events(&server, &bob, "status x")).join("\n");
    assert_eq!(
        said,
        "Refused: say `status ID`, with the execution's number"
    );
}

#[tokio::test]
async fn files_an_action_returns_are_uploaded_to_the_thread() {
    let server = Server::start(&crate::harness::test_catalog());
    let events = console_events(&server, crate::harness::ADMIN_TOKEN, "graph load");
    let files: Vec<&Value> = events.iter().filter(|e| e["event"] == "file").collect();
    // The PNG arrives whole; an entry with a path in its name is dropped.
    assert_eq!(files.len(), 1, "{events:?}");
    assert_eq!(files[0]["filename"], "load.png");
    assert_eq!(files[0]["content_type"], "image/png");
    assert_eq!(files[0]["title"], "Load");
    assert_eq!(files[0]["size"], 73);
    assert!(
        posts(&events)
            .last()
            .unwrap()
            .contains("test.graph #1 succeeded"),
        "{events:?}"
    );
}

#[tokio::test]
async fn alerts_are_listed_silenced_acknowledged_and_unsilenced_from_chat_by_those_allowed() {
    let dir = tempfile::tempdir().unwrap();
    copy_catalog(&sample_catalog(), dir.path());
    std::fs::write(
        dir.path().join("alerts.toml"),
        "[route]\nreceiver = \"ops\"\ngroup_by = [\"alertname\"]\n[[receivers]]\nname = \"ops\"\n",
    )
    .unwrap();
    let server = Server::start_with_config(dir.path(), TEAM);
    let (alice, bob) = (server.token_for("alice"), server.token_for("bob"));
    let (status, _) = server
        .post(
            "/alerts",
            serde_json::json!([
                {"labels": {"alertname": "DiskFull", "instance": "db-1", "severity": "critical"}, "status": "firing"},
                {"labels": {"alertname": "HighLoad", "instance": "web-1"}, "status": "firing"}
            ]),
        )
        .await;
    assert_eq!(status, 200);

    let said = posts(&console_events(&server, &bob, "alerts severity=critical")).join("\n");
    assert!(said.contains("1 firing:"), "{said}");
    assert!(said.contains("DiskFull db-1 (critical), for"), "{said}");
    assert!(!said.contains("HighLoad"), "{said}");
    let fp = said
        .lines()
        .find(|l| l.contains("DiskFull"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();

    // bob (dev) may look but not silence or acknowledge; the denial says why.
    let said = posts(&console_events(
        &server,
        &bob,
        "silence alertname=DiskFull for 2h because swapping disks",
    ))
    .join("\n");
    assert_eq!(
        said,
        "Refused: no policy permits bob to silence switchboard"
    );
    let said = posts(&console_events(&server, &bob, &format!("ack {}", &fp[..6]))).join("\n");
    assert_eq!(
        said,
        "Refused: no policy permits bob to silence switchboard"
    );

    // alice (sre) may; a mistake in the request is explained.
    let said = posts(&console_events(
        &server,
        &alice,
        "silence alertname=DiskFull for 2h",
    ))
    .join("\n");
    assert!(said.contains("say why"), "{said}");
    let said = posts(&console_events(
        &server,
        &alice,
        "silence alertname=DiskFull instance=~\"db-.*\" for 2h because swapping disks",
    ))
    .join("\n");
    assert!(
        said.contains("Silenced {alertname=\"DiskFull\",instance=~\"db-.*\"} until"),
        "{said}"
    );
    let id = said
        .split("silence ")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .to_owned();
    let (_, silences) = server.get("/silences").await;
    assert_eq!(silences[0]["id"], id.as_str(), "{silences}");
    assert_eq!(silences[0]["created_by"], "alice");
    assert_eq!(silences[0]["comment"], "swapping disks");

    let said = posts(&console_events(
        &server,
        &alice,
        &format!("ack {} on it", &fp[..6]),
    ))
    .join("\n");
    assert_eq!(said, format!("alice acknowledged alert `{fp}`."));
    let said = posts(&console_events(&server, &bob, "alerts")).join("\n");
    assert!(said.contains("acknowledged by alice"), "{said}");
    let said = posts(&console_events(&server, &alice, "ack ffffffffffff")).join("\n");
    assert!(said.contains("no firing alert or group"), "{said}");

    let said = posts(&console_events(&server, &alice, &format!("unsilence {id}"))).join("\n");
    assert!(said.contains("has ended"), "{said}");
    let (_, silences) = server.get("/silences").await;
    assert_eq!(silences, serde_json::json!([]));

    // Each is audited.
    let (_, page) = server.get("/audit?limit=500").await;
    let kinds: Vec<&str> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    for kind in ["silence.created", "alert.acknowledged", "silence.expired"] {
        assert!(kinds.contains(&kind), "{kind} missing: {kinds:?}");
    }
}
