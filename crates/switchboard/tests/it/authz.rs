//! Authorization through the real server with the sample catalog's
//! policies: decisions at the doors, view filtering, denials with reasons in
//! the audit log, and the auditor's questions over the CLI and the API.

use serde_json::{Value, json};

use crate::harness::{Api, Server, copy_catalog, sample_catalog, text};

/// alice is in sre, carol leads it, bob is a developer, svc:deploy is a
/// machine in sre.
pub const TEAM: &str = "[[users]]\nname = \"alice\"\ngroups = [\"sre\"]\n\n\
    [[users]]\nname = \"carol\"\ngroups = [\"sre-leads\"]\n\n\
    [[users]]\nname = \"bob\"\ngroups = [\"dev\"]\n\n\
    [[service_accounts]]\nname = \"svc:deploy\"\ngroups = [\"sre\"]\n\n\
    [groups]\nsre-leads = [\"sre\"]\n";

async fn audit_kinds(server: &Server, kind: &str) -> Vec<Value> {
    let (_, page) = server.get("/audit?limit=5000").await;
    page["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == kind)
        .cloned()
        .collect()
}

#[tokio::test]
async fn every_door_gets_the_policies_answer_and_denials_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    copy_catalog(&sample_catalog(), dir.path());
    // Developers do not even see critical actions.
    std::fs::write(
        dir.path().join("policies/hide.cedar"),
        "@id(\"dev-does-not-see-critical\")\nforbid (principal in Group::\"dev\", action == Action::\"view\", resource)\nwhen { resource.tags.contains(\"critical\") };\n",
    )
    .unwrap();
    let server = Server::start_with_config(dir.path(), TEAM);
    let alice = Api::with_token(server.url.clone(), &server.token_for("alice"));
    let bob = Api::with_token(server.url.clone(), &server.token_for("bob"));
    let deploy = Api::with_token(server.url.clone(), &server.token_for("svc:deploy"));

    // Permitted: sre runs fleet actions through the API.
    let id = alice
        .submit("service.restart", json!({"service": "cron"}))
        .await;
    assert_eq!(alice.wait_finished(id).await["status"], "succeeded");

    // Not permitted: the reason reaches the caller.
    let (status, body) = bob
        .post(
            "/executions",
            json!({"action": "service.restart", "params": {"service": "cron"}}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["error"]["message"],
        "no policy permits bob to run service.restart"
    );
    let (status, body) = deploy
        .post(
            "/executions",
            json!({"action": "db.failover", "params": {"host": "db-2"}}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["error"]["message"],
        "forbidden by `no-unattended-critical-runs` (policies/guards.cedar:3)"
    );
    // Someone else's execution is not bob's to cancel.
    let (status, body) = bob
        .post(&format!("/executions/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 403, "{body}");

    // What bob may not view, he does not see.
    let (_, actions) = bob.get("/actions").await;
    let names: Vec<&str> = actions
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"db.failover"), "{names:?}");
    assert!(names.contains(&"host.uptime"), "{names:?}");
    let (status, _) = bob.get("/actions/db.failover").await;
    assert_eq!(status, 404);
    let (_, actions) = alice.get("/actions").await;
    assert_eq!(actions.as_array().unwrap().len(), 14);

    // Each denial is in the audit log with its reason; allowed runs too.
    let decisions = audit_kinds(&server, "authz.decision").await;
    let denied: Vec<(String, String)> = decisions
        .iter()
        .filter(|r| r["outcome"] == "denied")
        .map(|r| {
            (
                r["actor"].as_str().unwrap().to_owned(),
                r["detail"]["verb"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        denied,
        [
            ("bob".to_owned(), "run".to_owned()),
            ("svc:deploy".to_owned(), "run".to_owned()),
            ("bob".to_owned(), "cancel".to_owned()),
            ("bob".to_owned(), "view".to_owned()),
        ]
    );
    let allowed_run = decisions
        .iter()
        .find(|r| r["actor"] == "alice" && r["outcome"] == "allowed")
        .unwrap();
    assert_eq!(allowed_run["subject"], "action:service.restart");
    assert_eq!(
        allowed_run["detail"]["policies"][0]["id"],
        "sre-runs-fleet-actions"
    );
    assert_eq!(allowed_run["detail"]["groups"], json!(["sre"]));
}

#[tokio::test]
async fn who_can_and_explain_answer_the_auditor() {
    let server = Server::start_with_config(&sample_catalog(), TEAM);

    let out = server.cli(&["who-can", "run", "service.restart"]);
    assert!(out.status.success(), "{out:?}");
    let shown = text(&out.stdout);
    assert!(
        shown.starts_with("Who can run service.restart (doors: api, cli, web, chat:*:*, schedule, alert, webhook, chat:slack:#ops)"),
        "{shown}"
    );
    let lines: Vec<&str> = shown.lines().collect();
    let row = |name: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("{name} ")))
            .copied()
    };
    let alice = row("alice").unwrap_or_else(|| panic!("{shown}"));
    assert!(alice.contains("api, cli, web, chat:slack:#ops"), "{alice}");
    assert!(
        alice.contains("sre-runs-fleet-actions (policies/sre.cedar:3)"),
        "{alice}"
    );
    assert!(
        row("carol").is_some() && row("svc:deploy").is_some(),
        "{shown}"
    );
    assert!(row("admin").unwrap().contains("builtin:admin"), "{shown}");
    assert!(row("bob").is_none(), "{shown}");
    assert!(
        shown.contains("\nsre "),
        "the group itself is listed: {shown}"
    );
    assert!(shown.contains("5 known principals examined."), "{shown}");

    // The two-person rule's approvers, as JSON.
    let out = server.cli(&[
        "who-can",
        "approve",
        "db.failover",
        "--target",
        "db-1",
        "--door",
        "web",
        "-o",
        "json",
    ]);
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = answer["principals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["principal"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["carol", "admin"]);

    // Explain: exit 0 when permitted, 1 when not, with the policy.
    let out = server.cli(&["explain", "bob", "run", "service.restart"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        text(&out.stdout),
        "bob may NOT run service.restart through api\nreason: no policy permits bob to run service.restart\nkind:   user\ngroups: dev\n"
    );
    let out = server.cli(&[
        "explain",
        "alice",
        "run",
        "db.failover",
        "--target",
        "db-1",
        "--door",
        "schedule",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("reason: forbidden by `no-unattended-critical-runs`"),
        "{}",
        text(&out.stdout)
    );
    let out = server.cli(&["explain", "carol", "approve", "db.failover"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    // Over the API, with clear errors for bad questions.
    let (status, body) = server
        .get("/authz/explain?principal=alice&verb=run&action=host.disk")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["allowed"], true);
    assert_eq!(
        body["policies"][0]["id"],
        "everyone-runs-read-only-and-demo"
    );
    let (status, body) = server
        .get("/authz/who-can?verb=reboot&action=host.disk")
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown verb `reboot`"),
        "{body}"
    );
    let (status, body) = server.get("/authz/who-can?verb=run&action=host.disc").await;
    assert_eq!(status, 404);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `host.disk`"),
        "{body}"
    );
    let (status, _) = server
        .get("/authz/who-can?verb=run&action=host.disk&door=carrier-pigeon")
        .await;
    assert_eq!(status, 400);
    let (status, policies) = server.get("/authz/policies").await;
    assert_eq!(status, 200);
    assert_eq!(policies[0]["id"], "builtin:admin");

    // Listing the policies is for admins; bob may ask about what he can see.
    let bob = server.token_for("bob");
    let out = server.cli_as(&bob, &["policies"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let out = server.cli_as(&bob, &["explain", "bob", "run", "host.uptime"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[tokio::test]
async fn policies_see_the_inventory_groups_of_the_hosts_a_request_targets() {
    let dir = tempfile::tempdir().unwrap();
    copy_catalog(&sample_catalog(), dir.path());
    std::fs::write(
        dir.path().join("policies/prod.cedar"),
        "@id(\"only-leads-touch-prod\")\nforbid (principal, action == Action::\"run\", resource)\nwhen { context has target && context.target in HostGroup::\"prod\" && !(principal in Group::\"sre-leads\") };\n",
    )
    .unwrap();
    let server = Server::start_with_config(dir.path(), TEAM);
    let alice = Api::with_token(server.url.clone(), &server.token_for("alice"));

    // db-1 is in `db`, which `prod` contains: the nested group counts.
    let out = server.cli(&[
        "explain",
        "alice",
        "run",
        "db.failover",
        "--target",
        "db-1",
        "--door",
        "cli",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stdout).contains("forbidden by `only-leads-touch-prod`"),
        "{out:?}"
    );
    let out = server.cli(&[
        "explain",
        "alice",
        "run",
        "db.failover",
        "--target",
        "build-1",
        "--door",
        "cli",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    let (status, body) = alice
        .post(
            "/executions",
            json!({"action": "db.failover", "params": {"host": "db-1"}}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("only-leads-touch-prod"),
        "{body}"
    );
    let (status, body) = alice
        .post(
            "/executions",
            json!({"action": "db.failover", "params": {"host": "build-1"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    let (_, who) = server
        .get("/authz/who-can?verb=run&action=db.failover&target=db-2&door=cli")
        .await;
    let names: Vec<&str> = who["principals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["principal"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"carol") && !names.contains(&"alice"),
        "{who}"
    );
}
