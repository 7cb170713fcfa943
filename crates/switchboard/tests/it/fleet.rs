//! Reaching the fleet: the sample catalog's SSH actions run through the
//! daemon against a real OpenSSH server on loopback, with the inventory's
//! selectors, host-labelled output, the chat alias and the policies that
//! see the hosts' groups.

use serde_json::json;

use crate::authz::TEAM;
use crate::harness::{Api, Server, copy_catalog, sample_catalog, text};

#[path = "../../../switchboard-engine/tests/it/support/sshd.rs"]
mod sshd;

/// The sample catalog with its inventory pointed at `sshd`: web-1, web-2
/// and db-1 are that server; db-2 is a port nobody listens on.
fn catalog_for(sshd: &sshd::Sshd, dir: &std::path::Path) {
    copy_catalog(&sample_catalog(), dir);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let host = |name: &str, port: u16, groups: &str| {
        format!(
            "[[hosts]]\nname = \"{name}\"\naddress = \"127.0.0.1\"\nport = {port}\nuser = \"{}\"\ngroups = [{groups}]\n\n",
            sshd.user
        )
    };
    let inventory = [
        host("web-1", sshd.port, "\"web\""),
        host("web-2", sshd.port, "\"web\""),
        host("db-1", sshd.port, "\"db\""),
        host("db-2", closed_port, "\"db\""),
        host("lab-1", sshd.port, "\"lab\""),
        "[groups.prod]\nchildren = [\"web\", \"db\"]\n".to_owned(),
    ]
    .concat();
    std::fs::write(dir.join("inventory.toml"), inventory).unwrap();
}

fn config(sshd: &sshd::Sshd) -> String {
    format!(
        "{TEAM}\n[ssh]\nknown_hosts = \"{}\"\nkey = \"file:{}\"\nconcurrency = 4\n",
        sshd.known_hosts.display(),
        sshd.client_key.display()
    )
}

fn log_file(lines: usize) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new()
        .prefix("switchboard-fleet-")
        .suffix(".log")
        .tempfile_in("/tmp")
        .unwrap();
    let body: String = (1..=lines).map(|i| format!("line {i}\n")).collect();
    std::fs::write(file.path(), body).unwrap();
    file
}

#[tokio::test]
async fn logs_of_a_group_come_back_labelled_by_host_with_a_summary() {
    let sshd = sshd::Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    catalog_for(&sshd, dir.path());
    let server = Server::start_with_config(dir.path(), &config(&sshd));
    let alice = server.token_for("alice");
    let log = log_file(20);
    let file = format!("file={}", log.path().display());

    // What the selector names.
    let out = server.cli(&["hosts", "group:web"]);
    assert!(out.status.success(), "{out:?}");
    let listed = text(&out.stdout);
    assert!(
        listed.contains("web-1") && listed.contains("web-2") && !listed.contains("db-1"),
        "{listed}"
    );

    let out = server.cli_as(
        &alice,
        &[
            "run",
            "fleet.logs",
            "host=group:web",
            &file,
            "lines=2",
            "--follow",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let shown = text(&out.stdout);
    for expected in [
        "[web-1] line 19",
        "[web-1] line 20",
        "[web-2] line 19",
        "[web-2] line 20",
    ] {
        assert!(shown.contains(expected), "{expected} missing from {shown}");
    }
    assert!(!shown.contains("line 18"), "{shown}");
    // Switchboard's own lines (one per host, the summary) go to stderr.
    let notes = text(&out.stderr);
    assert!(notes.contains("web-1: succeeded (exit 0"), "{notes}");
    assert!(notes.contains("2 hosts: 2 succeeded, 0 did not"), "{notes}");

    // One host down: the others still answer; the run fails naming it.
    let out = server.cli_as(
        &alice,
        &[
            "run",
            "fleet.logs",
            "host=group:db",
            &file,
            "lines=1",
            "--follow",
        ],
    );
    assert!(!out.status.success());
    let shown = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(shown.contains("[db-1] line 20"), "{shown}");
    assert!(
        shown.contains("1 of 2 hosts did not succeed: db-2 (cannot connect"),
        "{shown}"
    );

    // db-2 needs attention now; web hosts do not.
    let out = server.cli_as(&alice, &["hosts", "--attention"]);
    assert!(out.status.success(), "{out:?}");
    let listed = text(&out.stdout);
    assert!(listed.starts_with("HOST"), "{listed}");
    assert!(
        listed.contains("db-2") && listed.contains("fleet.logs"),
        "{listed}"
    );
    assert!(listed.contains("cannot connect"), "{listed}");
    assert!(
        !listed.contains("web-1") && !listed.contains("db-1"),
        "{listed}"
    );
    let out = server.cli_as(&alice, &["chat", "-c", "status"]);
    let said = text(&out.stdout);
    assert!(said.contains("1 host(s) need attention"), "{said}");
    assert!(said.contains("db-2: fleet.logs #2 failed"), "{said}");

    // The execution records the hosts it ran on.
    let api = Api::with_token(server.url.clone(), &alice);
    let id = api
        .submit(
            "fleet.logs",
            json!({"host": "web-*", "file": log.path(), "lines": 1}),
        )
        .await;
    let done = api.wait_finished(id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["params"]["host"], "web-*");
    let hosts: Vec<&str> = done["result"]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["web-1", "web-2"]);
}

#[tokio::test]
async fn unknown_hosts_and_single_host_actions_are_refused_clearly() {
    let sshd = sshd::Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    catalog_for(&sshd, dir.path());
    let server = Server::start_with_config(dir.path(), &config(&sshd));
    let alice = Api::with_token(server.url.clone(), &server.token_for("alice"));

    let (status, body) = alice
        .post(
            "/executions",
            json!({"action": "fleet.logs", "params": {"host": "web-9"}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let shown = body.to_string();
    assert!(
        shown.contains("web-9") && shown.contains("did you mean"),
        "{shown}"
    );

    // db.failover runs locally for one host: a group is refused, naming its hosts.
    let (status, body) = alice
        .post(
            "/executions",
            json!({"action": "db.failover", "params": {"host": "group:db"}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.to_string().contains(
            "`db.failover` runs for one host at a time, and `group:db` names 2: db-1, db-2"
        ),
        "{body}"
    );
}

#[tokio::test]
async fn policies_decide_on_every_host_a_selector_names() {
    let sshd = sshd::Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    catalog_for(&sshd, dir.path());
    std::fs::write(
        dir.path().join("policies/prod.cedar"),
        "@id(\"only-leads-reboot-prod\")\nforbid (principal, action == Action::\"run\", resource)\n\
         when { resource.name == \"fleet.reboot\" && context has target && context.target in HostGroup::\"prod\" }\nunless { principal in Group::\"sre-leads\" };\n",
    )
    .unwrap();
    let server = Server::start_with_config(dir.path(), &config(&sshd));
    let alice = Api::with_token(server.url.clone(), &server.token_for("alice"));

    // Reboots on prod are for sre-leads: one prod host in the selection denies it all.
    let (status, body) = alice
        .post(
            "/executions",
            json!({"action": "fleet.reboot", "params": {"host": "lab-1,web-2"}}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.to_string().contains("only-leads-reboot-prod"),
        "{body}"
    );

    // A lab host is not prod: allowed (and waits for approval).
    let (status, body) = alice
        .post(
            "/executions",
            json!({"action": "fleet.reboot", "params": {"host": "lab-1"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "awaiting_approval");
}

#[tokio::test]
async fn the_chat_alias_reads_logs_over_ssh() {
    let sshd = sshd::Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    catalog_for(&sshd, dir.path());
    let server = Server::start_with_config(dir.path(), &config(&sshd));
    let alice = server.token_for("alice");
    let log = log_file(5);

    let line = format!("logs web-1 lines=2 file={}", log.path().display());
    let out = server.cli_as(&alice, &["chat", "-c", &line]);
    assert!(out.status.success(), "{out:?}");
    let said = text(&out.stdout);
    assert!(said.contains("Reading the logs of web-1"), "{said}");
    assert!(said.contains("line 4") && said.contains("line 5"), "{said}");
    assert!(!said.contains("line 3"), "{said}");
}

#[path = "../../../switchboard-engine/tests/it/support/prometheus.rs"]
mod prometheus;

/// Width and height from a PNG's header.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (word(16), word(20))
}

#[tokio::test]
async fn a_graph_is_drawn_from_a_real_prometheus_saved_by_the_cli_and_posted_in_chat() {
    let prometheus = prometheus::Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    copy_catalog(&sample_catalog(), dir.path());
    // A graph of what a Prometheus scraping itself has: its own requests.
    let (address, port) = prometheus.address.split_once(':').unwrap();
    std::fs::write(
        dir.path().join("inventory.toml"),
        format!("[[hosts]]\nname = \"prom-1\"\naddress = \"{address}\"\nvars = {{ metrics_port = \"{port}\" }}\n"),
    )
    .unwrap();
    let mut graphs = std::fs::read_to_string(dir.path().join("graphs.toml")).unwrap();
    graphs.push_str(
        "\n[graphs.requests]\ntitle = \"Requests to {{ host }}\"\n\
         query = 'prometheus_http_requests_total{instance=\"{{ address }}:{{ vars.metrics_port }}\"}'\n\
         unit = \"requests\"\nlegend = \"{{ handler }}\"\n",
    );
    std::fs::write(dir.path().join("graphs.toml"), graphs).unwrap();
    std::fs::write(
        dir.path().join("actions/graph/requests.toml"),
        std::fs::read_to_string(dir.path().join("actions/graph/cpu.toml"))
            .unwrap()
            .replace("graph.cpu", "graph.requests")
            .replace("\"cpu\"", "\"requests\"")
            .replace("graph cpu for", "graph requests for"),
    )
    .unwrap();
    let config = format!(
        "{TEAM}\n[prometheus]\nurl = \"{}\"\n",
        prometheus.settings.url
    );
    let server = Server::start_with_config(dir.path(), &config);
    let alice = server.token_for("alice");

    let saved = dir.path().join("requests.png");
    let out = server.cli_as(
        &alice,
        &[
            "run",
            "graph.requests",
            "host=prom-1",
            "range=2m",
            "--save",
            saved.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let png = std::fs::read(&saved).unwrap();
    assert_eq!(png_size(&png), (800, 400));

    // The same file is the execution's artifact.
    let api = Api::with_token(server.url.clone(), &alice);
    let (_, list) = api.get("/executions?action=graph.requests").await;
    let id = list["executions"][0]["id"].as_i64().unwrap();
    let (_, shown) = api.get(&format!("/executions/{id}")).await;
    assert_eq!(shown["artifacts"][0]["name"], "requests.png", "{shown}");
    assert_eq!(shown["artifacts"][0]["media_type"], "image/png");
    // Drawn from data, not the "no data" chart.
    assert!(shown["result"]["series"].as_u64().unwrap() >= 1, "{shown}");
    assert!(shown["result"]["points"].as_u64().unwrap() >= 3, "{shown}");
    let resp = api
        .http
        .get(api.api(&format!("/executions/{id}/artifacts/requests.png")))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), png.as_slice());
    let (status, _) = api
        .get(&format!("/executions/{id}/artifacts/other.png"))
        .await;
    assert_eq!(status, 404);

    // In chat, the chart is uploaded into the thread.
    let out = server.cli_as(
        &alice,
        &[
            "chat",
            "-o",
            "json",
            "-c",
            "graph requests for prom-1 over 2m",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let events: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let files: Vec<&serde_json::Value> = events.iter().filter(|e| e["event"] == "file").collect();
    assert_eq!(files.len(), 1, "{events:?}");
    assert_eq!(files[0]["filename"], "requests.png");
    assert_eq!(files[0]["content_type"], "image/png");
}
