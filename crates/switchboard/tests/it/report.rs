//! The auditor's report through the real binary: `switchboard report` in
//! each format from a running server, `GET /api/v1/report` for admins
//! only, and `report diff` naming who gained a right after the
//! configuration changed.

use crate::authz::TEAM;
use crate::harness::{Api, Server, sample_catalog, text};

/// The JSON report of the service actions, written to `path` by the CLI.
fn json_report(server: &Server, path: &std::path::Path) -> serde_json::Value {
    let out = server.cli(&[
        "report",
        "--format",
        "json",
        "--actions",
        "service.*",
        "--out",
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[tokio::test]
async fn the_report_answers_who_may_do_what_and_its_diff_who_gained_a_right() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_config(&sample_catalog(), TEAM);

    // Admins only.
    let bob = Api::with_token(server.url.clone(), &server.token_for("bob"));
    let (status, body) = bob.get("/report").await;
    assert_eq!(status, 403, "{body}");

    let before = dir.path().join("before.json");
    let report = json_report(&server, &before);
    let doors: Vec<&str> = report["doors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["door"].as_str().unwrap())
        .collect();
    assert_eq!(doors, ["api", "web", "webhook", "schedule"], "{report}");
    assert_eq!(report["cluster"]["storage"], "sqlite");
    assert_eq!(report["cluster"]["leader"], "test-node");
    assert_eq!(
        report["automation"]["workflows"],
        serde_json::json!([{
            "name": "demo.rollout",
            "steps": 5,
            "actions": ["demo.echo", "demo.slow"],
            "inquiries": ["confirm: whoever may approve demo.rollout"],
        }])
    );
    let run = &report["access"][0];
    assert_eq!(
        (run["action"].as_str(), run["verb"].as_str()),
        (Some("service.restart"), Some("run"))
    );
    let who: Vec<&str> = run["principals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["who"].as_str().unwrap())
        .collect();
    // carol leads sre, and sre-leads are in sre.
    assert_eq!(who, ["alice", "carol", "svc:deploy", "admin"], "{run}");

    // The CSV matrix: a header and a row per holder.
    let out = server.cli(&["report", "--format", "csv", "--actions", "service.restart"]);
    assert!(out.status.success(), "{out:?}");
    let csv = text(&out.stdout);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("action,verb,host,approval,holder,kind,doors,policies")
    );
    assert!(
        csv.contains(
            "service.restart,run,,,alice,user,api cli web chat:slack:#ops,sre-runs-fleet-actions"
        ),
        "{csv}"
    );
    // Markdown and HTML.
    let out = server.cli(&["report"]);
    assert!(
        text(&out.stdout).contains("| service.restart | run |"),
        "{out:?}"
    );
    let page = dir.path().join("report.html");
    let out = server.cli(&[
        "report",
        "--format",
        "html",
        "--out",
        page.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        std::fs::read_to_string(&page)
            .unwrap()
            .starts_with("<!DOCTYPE html>")
    );

    // bob joins sre: the next report's diff says what he gained.
    drop(server);
    let server = Server::start_with_config(
        &sample_catalog(),
        &TEAM.replace(
            "name = \"bob\"\ngroups = [\"dev\"]",
            "name = \"bob\"\ngroups = [\"dev\", \"sre\"]",
        ),
    );
    let after = dir.path().join("after.json");
    json_report(&server, &after);
    let out = server.cli(&[
        "report",
        "diff",
        before.to_str().unwrap(),
        after.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let said = text(&out.stdout);
    assert!(
        said.contains("+ bob may now run service.restart (through api, cli, web, chat:slack:#ops; by sre-runs-fleet-actions)")
            && said.contains("+ bob may now cancel service.restart"),
        "{said}"
    );
    assert!(!said.contains("- "), "nobody lost anything: {said}");
    // The same report twice: no change, exit 0.
    let out = server.cli(&[
        "report",
        "diff",
        after.to_str().unwrap(),
        after.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // Not a report: said so.
    let out = server.cli(&[
        "report",
        "diff",
        page.to_str().unwrap(),
        after.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(text(&out.stderr).contains("is not a report"), "{out:?}");
}

/// A configuration full of secrets — in files, in the environment, in a
/// webhook URL's path — and not one of them in any format of the report.
#[tokio::test]
async fn no_format_of_the_report_holds_a_secret() {
    let catalog = tempfile::tempdir().unwrap();
    crate::harness::copy_catalog(&sample_catalog(), catalog.path());
    let secrets = tempfile::tempdir().unwrap();
    let secret = |name: &str, value: &str| {
        let path = secrets.path().join(name);
        std::fs::write(&path, value).unwrap();
        format!("file:{}", path.display())
    };
    let values = [
        "hmac-key-AAAA1111",
        "pagerduty-key-BBBB2222",
        "opsgenie-key-CCCC3333",
        "cXVpdGUtc2VjcmV0LXRlYW1zLXRva2Vu",
        "https://prod-00.westeurope.logic.azure.com/workflows/secret-sig-DDDD4444",
        "smtp-password-EEEE5555",
    ];
    let path_token = "T0000/B0000/XXXXsecretpathFFFF6666";
    std::fs::write(
        catalog.path().join("alerts.toml"),
        format!(
            "[route]\nreceiver = \"oncall\"\n\n[[receivers]]\nname = \"oncall\"\n\
             [[receivers.webhook_configs]]\nurl = \"https://hooks.example.com/services/{path_token}?token=q-GGGG7777\"\n\
             hmac_secret = \"{}\"\n\
             [[receivers.email_configs]]\nto = [\"oncall@example.com\"]\nfrom = \"sb@example.com\"\n\
             smarthost = \"smtp.example.com:587\"\nauth_username = \"sb\"\nauth_password = \"{}\"\n\
             [[receivers.pagerduty_configs]]\nrouting_key = \"{}\"\n\
             [[receivers.opsgenie_configs]]\napi_key = \"{}\"\n",
            secret("hmac", values[0]),
            secret("smtp", values[5]),
            secret("pagerduty", values[1]),
            secret("opsgenie", values[2]),
        ),
    )
    .unwrap();
    let config = format!(
        "{TEAM}\n[chat.teams]\nsecurity_tokens = [\"{}\"]\nwebhook_url = \"{}\"\n",
        secret("teams-token", values[3]),
        secret("teams-url", values[4]),
    );
    let server = Server::start_with_config(catalog.path(), &config);
    let token = server.token_for("alice");
    let dir = tempfile::tempdir().unwrap();
    let mut shown = String::new();
    for format in ["markdown", "html", "json", "csv"] {
        let out = dir.path().join(format);
        let done = server.cli(&["report", "--format", format, "--out", out.to_str().unwrap()]);
        assert!(done.status.success(), "{done:?}");
        shown.push_str(&std::fs::read_to_string(&out).unwrap());
    }
    // The report did say which doors are open, and where alerts go.
    assert!(
        shown.contains("| chat:teams | Microsoft Teams, channels (default workflow only) | outgoing webhooks signed with 1 security token(s)"),
        "{shown}"
    );
    assert!(
        shown.contains("webhook https://hooks.example.com"),
        "{shown}"
    );
    assert!(shown.contains("pagerduty") && shown.contains("email oncall@example.com"));
    for secret in values.iter().copied().chain([
        path_token,
        "q-GGGG7777",
        token.as_str(),
        crate::harness::ADMIN_TOKEN,
    ]) {
        assert!(
            !shown.contains(secret),
            "the report shows a secret: {secret}"
        );
    }
}

/// The catalog is a git repository: the report names its commit. A policy
/// grants by host group: asked about hosts, the report answers per host.
#[tokio::test]
async fn the_report_names_the_catalog_commit_and_answers_host_by_host() {
    let catalog = tempfile::tempdir().unwrap();
    crate::harness::copy_catalog(&sample_catalog(), catalog.path());
    std::fs::write(
        catalog.path().join("policies/web-reboots.cedar"),
        "@id(\"bob-reboots-web\")\npermit (principal == User::\"bob\", action == Action::\"run\", resource)\n\
         when { resource.name == \"fleet.reboot\" && context has target && context.target in HostGroup::\"web\" };\n",
    )
    .unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=ops", "-c", "user.email=ops@example.com"])
            .args(args)
            .current_dir(catalog.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        text(&out.stdout).trim().to_owned()
    };
    git(&["init", "--quiet"]);
    git(&["add", "."]);
    git(&["commit", "--quiet", "-m", "the catalog"]);
    let commit = git(&["rev-parse", "HEAD"]);
    let server = Server::start_with_config(catalog.path(), TEAM);

    let (status, report) = server
        .get("/report?actions=fleet.reboot&hosts=web-1,db-1")
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["catalog_commit"], commit.as_str(), "{report}");
    let run_on = |host: &str| -> Vec<String> {
        let row = report["access"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["verb"] == "run" && a["host"] == host)
            .unwrap_or_else(|| panic!("no run row for {host}: {report}"));
        row["principals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["who"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(run_on("web-1").contains(&"bob".to_owned()), "{report}");
    assert!(!run_on("db-1").contains(&"bob".to_owned()), "{report}");
    // The API door heard these requests (noted in the background).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, report) = server.get("/report?actions=none").await;
        assert_eq!(report["doors"][0]["door"], "api");
        if report["doors"][0]["last_event"].is_string() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{report}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let out = server.cli(&[
        "report",
        "--actions",
        "fleet.reboot",
        "--hosts",
        "web-1,db-1",
    ]);
    assert!(out.status.success(), "{out:?}");
    let md = text(&out.stdout);
    assert!(md.contains(&format!("(git commit `{commit}`)")), "{md}");
    assert!(md.contains("| fleet.reboot | run | web-1 |"), "{md}");
}
