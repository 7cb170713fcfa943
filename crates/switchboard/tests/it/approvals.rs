//! The two-person rule through the real server: requests that wait,
//! approvers who may and may not answer, approval, rejection, expiry, and a
//! request that survives a restart.

use serde_json::{Value, json};

use crate::authz::TEAM;
use crate::harness::{Api, Server, copy_catalog, sample_catalog, text};

async fn request_failover(alice: &Api) -> i64 {
    let (status, e) = alice
        .post(
            "/executions",
            json!({"action": "db.failover", "params": {"host": "db-2"}}),
        )
        .await;
    assert_eq!(status, 201, "{e}");
    assert_eq!(e["status"], "awaiting_approval");
    assert!(e["approval_expires_at"].is_string(), "{e}");
    e["id"].as_i64().unwrap()
}

#[tokio::test]
async fn a_second_person_approves_or_rejects_and_every_step_is_recorded() {
    let mut server = Server::start_with_config(&sample_catalog(), TEAM);
    let alice_token = server.token_for("alice");
    let carol_token = server.token_for("carol");
    let alice = Api::with_token(server.url.clone(), &alice_token);
    let bob = Api::with_token(server.url.clone(), &server.token_for("bob"));
    let carol = Api::with_token(server.url.clone(), &carol_token);

    let id = request_failover(&alice).await;
    // Nobody approves their own request; only the rule's approvers answer.
    let (status, body) = alice
        .post(&format!("/executions/{id}/approve"), json!({}))
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        body["error"]["message"],
        format!("alice asked for execution {id}; someone else must approve or reject it")
    );
    let (status, body) = bob
        .post(&format!("/executions/{id}/approve"), json!({}))
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        body["error"]["message"],
        "bob is not an approver of db.failover (approvers: group:sre-leads)"
    );
    let (_, queue) = bob.get("/approvals").await;
    assert_eq!(queue, json!([]));
    let (_, queue) = carol.get("/approvals").await;
    assert_eq!(queue[0]["id"], id, "{queue}");
    let out = server.cli_as(&carol_token, &["approvals"]);
    assert!(
        text(&out.stdout).contains("db.failover  alice"),
        "{}",
        text(&out.stdout)
    );
    // Still waiting: nothing ran.
    let (_, e) = alice.get(&format!("/executions/{id}")).await;
    assert_eq!(e["status"], "awaiting_approval");
    assert_eq!(e["approvals"], json!([]));

    // It survives a restart while it waits (the server comes back on a new port).
    server.restart();
    let alice = Api::with_token(server.url.clone(), &alice_token);
    let carol = Api::with_token(server.url.clone(), &carol_token);

    let out = server.cli_as(
        &carol_token,
        &[
            "approve",
            &id.to_string(),
            "--reason",
            "replica is caught up",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        text(&out.stdout).starts_with(&format!("#{id} db.failover approved (1 of 1 needed): ")),
        "{}",
        text(&out.stdout)
    );
    let done = alice.wait_finished(id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(
        alice
            .output_text(id)
            .await
            .contains("dry run: would run: ssh db-2 pg_ctl promote")
    );
    let (_, e) = alice.get(&format!("/executions/{id}")).await;
    assert_eq!(e["approvals"][0]["approver"], "carol");
    assert_eq!(e["approvals"][0]["decision"], "approved");
    assert_eq!(e["approvals"][0]["reason"], "replica is caught up");
    let (status, body) = carol
        .post(&format!("/executions/{id}/approve"), json!({}))
        .await;
    assert_eq!(status, 409, "{body}");

    // A rejection cancels, saying who and why.
    let second = request_failover(&alice).await;
    let (status, e) = carol
        .post(
            &format!("/executions/{second}/reject"),
            json!({"reason": "not during the freeze"}),
        )
        .await;
    assert_eq!(status, 200, "{e}");
    assert_eq!(e["status"], "cancelled");
    assert_eq!(e["error"], "rejected by carol: not during the freeze");

    // The requester may withdraw a request (cancel); bodies are checked.
    let third = request_failover(&alice).await;
    let (status, _) = carol
        .post(
            &format!("/executions/{third}/approve"),
            json!({"reason": 5}),
        )
        .await;
    assert_eq!(status, 400);
    let (status, e) = alice
        .post(&format!("/executions/{third}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200, "{e}");
    assert_eq!(e["status"], "cancelled");

    let (_, page) = server.get("/audit?limit=5000").await;
    let steps: Vec<String> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["subject"] == format!("execution:{id}")
                || r["subject"] == format!("execution:{second}")
        })
        .map(|r| {
            format!(
                "{} {} {}",
                r["kind"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
                r["actor"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            "execution.requested awaiting_approval alice",
            "authz.decision denied alice",
            "authz.decision denied bob",
            "approval.approved approved carol",
            "execution.finished succeeded alice",
            "execution.requested awaiting_approval alice",
            "approval.rejected cancelled carol",
        ]
    );
}

#[tokio::test]
async fn an_unanswered_request_lapses() {
    let dir = tempfile::tempdir().unwrap();
    copy_catalog(&sample_catalog(), dir.path());
    let file = dir.path().join("actions/db/failover.toml");
    let action = std::fs::read_to_string(&file)
        .unwrap()
        .replace("expires = \"30m\"", "expires = \"1s\"");
    std::fs::write(&file, action).unwrap();
    let server = Server::start_with_config(dir.path(), TEAM);
    let alice = Api::with_token(server.url.clone(), &server.token_for("alice"));
    let id = request_failover(&alice).await;
    let e: Value = alice.wait_finished(id).await;
    assert_eq!(e["status"], "cancelled");
    assert_eq!(e["error"], "no approval within 1s");
    let (_, page) = server.get("/audit?limit=5000").await;
    assert!(
        page["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["kind"] == "approval.expired" && r["subject"] == format!("execution:{id}")),
        "{page}"
    );
}

#[tokio::test]
async fn a_policy_can_let_someone_run_only_with_approval() {
    let dir = tempfile::tempdir().unwrap();
    copy_catalog(&sample_catalog(), dir.path());
    std::fs::write(
        dir.path().join("policies/dev.cedar"),
        "@id(\"devs-restart-with-a-lead\")\n@approval(\"group:sre-leads\")\n\
         permit (principal in Group::\"dev\", action == Action::\"run\", resource)\n\
         when { resource.name == \"service.restart\" };\n\n\
         permit (principal in Group::\"sre-leads\", action == Action::\"approve\", resource)\n\
         when { resource.name == \"service.restart\" };\n",
    )
    .unwrap();
    let server = Server::start_with_config(dir.path(), TEAM);
    let bob = Api::with_token(server.url.clone(), &server.token_for("bob"));
    let alice = Api::with_token(server.url.clone(), &server.token_for("alice"));
    let carol = Api::with_token(server.url.clone(), &server.token_for("carol"));

    // bob may restart, but only once a lead says yes; alice (sre) needs nobody.
    let (status, e) = bob
        .post(
            "/executions",
            json!({"action": "service.restart", "params": {"service": "cron"}}),
        )
        .await;
    assert_eq!(status, 201, "{e}");
    assert_eq!(e["status"], "awaiting_approval");
    let id = e["id"].as_i64().unwrap();
    let direct = alice
        .submit("service.restart", json!({"service": "cron"}))
        .await;
    assert_eq!(alice.wait_finished(direct).await["status"], "succeeded");

    // The rule came from the policy: alice is no sre-lead.
    let (status, body) = alice
        .post(&format!("/executions/{id}/approve"), json!({}))
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["error"]["message"],
        "alice is not an approver of service.restart (approvers: group:sre-leads)"
    );
    let (status, body) = carol
        .post(&format!("/executions/{id}/approve"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(bob.wait_finished(id).await["status"], "succeeded");
}
