//! Signing in: every API route but health needs a token; tokens are shown
//! once, scoped, expiring and revocable; every failure is answered clearly
//! and audited.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, Api, Server, test_catalog, text};

#[tokio::test]
async fn every_api_route_needs_a_credential_but_health_does_not() {
    let server = Server::start(&test_catalog());
    let anonymous = reqwest::Client::new();
    let (_, doc) = server.get("/openapi.json").await;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let url = format!(
                "{}{}",
                server.url,
                path.replace("{id}", "1").replace("{name}", "test.args")
            );
            let req = match method.as_str() {
                "get" => anonymous.get(&url),
                "post" => anonymous.post(&url).json(&json!({})),
                "delete" => anonymous.delete(&url),
                other => panic!("unexpected method {other}"),
            };
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            if matches!(path.as_str(), "/healthz" | "/readyz" | "/metrics") {
                assert_eq!(status, 200, "{method} {path} is open");
                continue;
            }
            if path == "/api/v1/hooks/{name}" {
                // A webhook's signature is its credential (see triggers.rs):
                // unsigned, it is refused, or there is no such hook.
                assert!(matches!(status, 401 | 404), "{method} {path}: {status}");
                continue;
            }
            assert_eq!(status, 401, "{method} {path} answered without a credential");
            assert_eq!(resp.headers()["www-authenticate"], "Bearer");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"]["code"], "unauthenticated", "{method} {path}");
        }
    }
}

#[tokio::test]
async fn bad_tokens_are_refused_and_audited() {
    let server = Server::start(&test_catalog());
    for bad in ["sb_nonsense", "", "Basic abc"] {
        let resp = reqwest::Client::new()
            .get(server.api("/actions"))
            .header(
                "authorization",
                if bad.starts_with("Basic") {
                    bad.to_owned()
                } else {
                    format!("Bearer {bad}")
                },
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{bad:?}");
    }
    let (_, page) = server.get("/audit").await;
    let failures: Vec<&Value> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "auth.failed")
        .collect();
    assert_eq!(failures.len(), 1, "one attempt presented a token: {page}");
    assert_eq!(failures[0]["actor"], "anonymous");
    assert_eq!(failures[0]["detail"]["reason"], "unknown token");
    assert!(
        !page.to_string().contains("sb_nonsense"),
        "the presented token is never recorded"
    );
}

#[tokio::test]
async fn tokens_are_shown_once_scoped_revocable_and_expire() {
    let server = Server::start(&test_catalog());
    let out = server.cli(&[
        "token",
        "create",
        "--user",
        "alice",
        "--scope",
        "read",
        "--description",
        "read-only",
    ]);
    assert!(out.status.success(), "{out:?}");
    let reader = text(&out.stdout).trim().to_owned();
    assert!(reader.starts_with("sb_") && reader.len() == 67, "{reader}");
    let out = server.cli(&["token", "create", "--user", "bob", "--expires", "1s"]);
    let short_lived = text(&out.stdout).trim().to_owned();

    let listing = text(&server.cli(&["token", "list", "-o", "json"]).stdout);
    assert!(
        !listing.contains(&reader) && !listing.contains(&short_lived),
        "secrets never listed"
    );
    let tokens: Vec<Value> = serde_json::from_str(&listing).unwrap();
    assert_eq!(tokens.len(), 2);

    // Read, but not run: 403, audited, and named.
    let alice = Api::with_token(server.url.clone(), &reader);
    let (status, _) = alice.get("/actions").await;
    assert_eq!(status, 200);
    let (status, body) = alice
        .post(
            "/executions",
            json!({"action": "test.args", "params": {"text": "x"}}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["error"]["message"],
        "this token lacks the `run` scope needed to run actions"
    );
    let (status, _) = alice.get("/audit").await;
    assert_eq!(status, 403);

    // The requester is the token's principal.
    let bob = Api::with_token(server.url.clone(), &short_lived);
    let id = bob.submit("test.args", json!({"text": "from bob"})).await;
    assert_eq!(bob.wait_finished(id).await["requester"], "bob");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = bob.get("/actions").await;
    assert_eq!(status, 401, "an expired token is refused: {body}");

    let alice_id = tokens.iter().find(|t| t["principal"] == "alice").unwrap()["id"]
        .as_i64()
        .unwrap();
    let out = server.cli(&["token", "revoke", &alice_id.to_string()]);
    assert!(out.status.success(), "{out:?}");
    let (status, _) = alice.get("/actions").await;
    assert_eq!(status, 401, "a revoked token is refused");

    let (_, page) = server.get("/audit").await;
    let kinds: Vec<String> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r["kind"].as_str().unwrap(),
                r["actor"].as_str().unwrap(),
                r["outcome"].as_str().unwrap()
            )
        })
        .filter(|k| k.starts_with("token.") || k.starts_with("auth."))
        .collect();
    assert_eq!(
        kinds,
        [
            "token.created admin ok",
            "token.created admin ok",
            "auth.denied alice denied",
            "auth.denied alice denied",
            "auth.failed anonymous denied",
            "token.revoked admin ok",
            "auth.failed anonymous denied",
        ]
    );
    assert!(!page.to_string().contains(ADMIN_TOKEN));
}

#[test]
fn the_cli_says_how_to_sign_in() {
    let server = Server::start(&test_catalog());
    let out = std::process::Command::new(crate::harness::BIN)
        .args(["actions", "--server", &server.url])
        .env_remove("SWITCHBOARD_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("the server wants a credential: set SWITCHBOARD_TOKEN"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn declared_principals_bring_their_groups_and_tokens_only_go_to_them() {
    let config = "[[users]]\nname = \"alice\"\ndisplay_name = \"Alice Example\"\ngroups = [\"sre-leads\"]\n\n\
                  [[service_accounts]]\nname = \"svc:deploy\"\ngroups = [\"deployers\"]\n\n\
                  [groups]\nsre-leads = [\"sre\"]\n";
    let server = Server::start_with_config(&test_catalog(), config);
    let out = server.cli(&["token", "create", "--user", "alice"]);
    assert!(out.status.success(), "{out:?}");
    let alice = Api::with_token(server.url.clone(), text(&out.stdout).trim());
    let (_, me) = alice.get("/whoami").await;
    assert_eq!(me["principal"], "alice");
    assert_eq!(
        me["groups"],
        json!(["sre", "sre-leads"]),
        "nested groups are expanded"
    );

    let out = std::process::Command::new(crate::harness::BIN)
        .args(["whoami", "--server", &server.url])
        .env(
            "SWITCHBOARD_TOKEN",
            text(&server.cli(&["token", "create", "--user", "alice"]).stdout).trim(),
        )
        .output()
        .unwrap();
    assert_eq!(
        text(&out.stdout),
        "principal: alice\nscopes:    read, run\ngroups:    sre, sre-leads\n"
    );

    let out = server.cli(&["token", "create", "--user", "mallory"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains(
            "unknown principal `mallory`: declare it under [[users]] or [[service_accounts]]"
        ),
        "{}",
        text(&out.stderr)
    );
    let out = server.cli(&["token", "create", "--user", "svc:deploy", "--scope", "run"]);
    assert!(out.status.success(), "{out:?}");
}
