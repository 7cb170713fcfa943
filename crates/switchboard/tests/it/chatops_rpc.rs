//! The ChatOps-RPC door end to end, driven as Hubot's `hubot-chatops-rpc`
//! drives it: fetch the signed listing, match a typed line against its
//! regexes (anchored, after the prefix, without regard to case, `--name
//! value` arguments allowed at the end), post the named groups, signed
//! with an RSA key, and show the answer. Hubot's users are Slack users,
//! linked through Switchboard's own Slack door.

use std::time::Duration;

use base64::Engine as _;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::{Value, json};

use crate::chat_platforms::slack::Slack;
use crate::chat_platforms::{Platform, Rig, flows};
use crate::harness::{Api, Server, sample_catalog};

/// What Hubot believes Switchboard's URL is: behind a proxy, not the
/// address the test reaches it at. Signatures cover it.
const BASE_URL: &str = "https://switchboard.example.com";

/// Hubot's prefix for this endpoint.
const PREFIX: &str = "sb";

fn key_pair() -> (SigningKey<Sha256>, String) {
    let mut rng = rsa::rand_core::UnwrapErr(getrandom::SysRng);
    let private = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
    let pem = private
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    (SigningKey::<Sha256>::new(private), pem)
}

/// The `[chatops_rpc]` section with these keys, written to `dir`.
fn config(dir: &std::path::Path, primary: &str, alternate: &str, extra: &str) -> String {
    std::fs::write(dir.join("hubot.pub"), primary).unwrap();
    std::fs::write(dir.join("hubot-next.pub"), alternate).unwrap();
    format!(
        "[chatops_rpc]\npublic_key = \"file:{}\"\nalternate_public_key = \"file:{}\"\nbase_url = \"{BASE_URL}\"\n{extra}\n",
        dir.join("hubot.pub").display(),
        dir.join("hubot-next.pub").display()
    )
}

/// A Hubot with `hubot-chatops-rpc` and its private key.
struct Hubot {
    http: reqwest::Client,
    /// Where the server really is.
    url: String,
    key: SigningKey<Sha256>,
}

/// A request as Hubot sends it, before it is sent.
struct Signed {
    nonce: String,
    timestamp: String,
    signature: String,
}

impl Hubot {
    fn new(server: &Api, key: SigningKey<Sha256>) -> Self {
        Self {
            http: reqwest::Client::new(),
            url: server.url.clone(),
            key,
        }
    }

    /// Signs `base + path` with a fresh nonce and the current time.
    fn sign(&self, base: &str, path: &str, body: &str) -> Signed {
        let mut nonce = [0u8; 32];
        getrandom::fill(&mut nonce).unwrap();
        let nonce = base64::engine::general_purpose::STANDARD.encode(nonce);
        let timestamp = jiff_free_now();
        self.sign_as(base, path, body, &nonce, &timestamp)
    }

    fn sign_as(&self, base: &str, path: &str, body: &str, nonce: &str, timestamp: &str) -> Signed {
        let text = format!("{base}{path}\n{nonce}\n{timestamp}\n{body}");
        let signature = base64::engine::general_purpose::STANDARD
            .encode(self.key.sign(text.as_bytes()).to_vec());
        Signed {
            nonce: nonce.to_owned(),
            timestamp: timestamp.to_owned(),
            signature: format!("Signature keyid=hubotkey,signature={signature}"),
        }
    }

    /// Sends a signed request (a `GET` when `body` is `None`).
    async fn send(&self, path: &str, body: Option<&str>, signed: &Signed) -> (u16, Value) {
        let request = match body {
            None => self.http.get(format!("{}{path}", self.url)),
            Some(b) => self
                .http
                .post(format!("{}{path}", self.url))
                .header("content-type", "application/json")
                .body(b.to_owned()),
        };
        let response = request
            .header("Chatops-Nonce", &signed.nonce)
            .header("Chatops-Timestamp", &signed.timestamp)
            .header("Chatops-Signature", &signed.signature)
            .header("Accept", "application/json")
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    async fn listing(&self) -> (u16, Value) {
        let signed = self.sign(BASE_URL, "/_chatops", "");
        self.send("/_chatops", None, &signed).await
    }

    /// `user` (with Slack id `slug`) says `line` in `room`: matched against
    /// the listing as Hubot does, and posted to the method that matches.
    async fn say(
        &self,
        listing: &Value,
        user: &str,
        slug: &str,
        room: &str,
        line: &str,
    ) -> (u16, Value) {
        let (method, params) = hubot_match(listing, line)
            .unwrap_or_else(|| panic!("no method of the listing matches `{line}`"));
        let body = json!({
            "user": user, "mention_slug": slug, "room_id": room,
            "method": method, "params": params,
        })
        .to_string();
        let path = format!(
            "/_chatops/{}",
            listing["methods"][&method]["path"].as_str().unwrap()
        );
        let signed = self.sign(BASE_URL, &path, &body);
        self.send(&path, Some(&body), &signed).await
    }
}

/// Now, as Hubot writes it (`new Date().toISOString()`).
fn jiff_free_now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// The method whose regex matches `line` (after the prefix), and its
/// parameters: the named groups, plus trailing `--name value` arguments.
fn hubot_match(listing: &Value, line: &str) -> Option<(String, serde_json::Map<String, Value>)> {
    let (mut text, mut params) = (line.to_owned(), serde_json::Map::new());
    while let Some(at) = text.rfind(" --") {
        let arg = text[at + 3..].to_owned();
        let (k, v) = arg.split_once(' ').unwrap_or((&arg, "true"));
        params.insert(k.to_owned(), json!(v));
        text.truncate(at);
    }
    for (name, method) in listing["methods"].as_object()? {
        let source = format!("(?i)^{PREFIX} {}$", method["regex"].as_str()?);
        let re = regex::Regex::new(&source).unwrap();
        if let Some(caps) = re.captures(&text) {
            for group in re.capture_names().flatten() {
                if let Some(m) = caps.name(group) {
                    params.insert(group.to_owned(), json!(m.as_str()));
                }
            }
            return Some((name.clone(), params));
        }
    }
    None
}

fn slack_id(rig: &Rig<Slack>, user: &str) -> String {
    rig.fake
        .identity(user)
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned()
}

/// The `result` of a successful answer.
fn result_of((status, answer): (u16, Value)) -> String {
    assert_eq!(status, 200, "{answer}");
    answer["result"].as_str().unwrap().to_owned()
}

/// The message of an error answer with this HTTP status and code.
fn error_of((status, answer): (u16, Value), http: u16, code: i64) -> String {
    assert_eq!(
        (status, answer["error"]["code"].as_i64()),
        (http, Some(code)),
        "{answer}"
    );
    answer["error"]["message"].as_str().unwrap().to_owned()
}

/// The execution an answer names (`demo.echo #12 succeeded…`).
async fn execution_of(server: &Server, text: &str) -> Value {
    let id: i64 = text
        .split_once('#')
        .and_then(|(_, rest)| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no execution in `{text}`"));
    server.get(&format!("/executions/{id}")).await.1
}

/// Switchboard's Slack door and its ChatOps-RPC door (sre may restart
/// services and fail databases over from #ops through Hubot; a demo that
/// fails), with alice linked through Slack; and Hubot with its key.
async fn hubot_on_slack() -> (Rig<Slack>, Hubot) {
    let (key, primary) = key_pair();
    let (_, alternate) = key_pair();
    let keys = tempfile::tempdir().unwrap();
    let section = config(
        keys.path(),
        &primary,
        &alternate,
        "platform = \"slack\"\nworkspace = \"T0TEST\"\nuser_field = \"mention_slug\"\nwait = \"3s\"",
    );
    let rig = Rig::<Slack>::start_configured(&section, |_, catalog| {
        std::fs::write(
            catalog.join("policies/hubot.cedar"),
            "@id(\"sre-restarts-through-hubot\")\npermit (principal in Group::\"sre\", action == Action::\"run\", resource)\nwhen { (resource.name like \"service.*\" || resource.name like \"db.*\") && context has channel && context.channel == Channel::\"chatops-rpc:#ops\" };\n",
        )
        .unwrap();
        std::fs::write(
            catalog.join("actions/demo/broken.toml"),
            "name = \"demo.broken\"\ndescription = \"Fail\"\ncommand = [\"sh\", \"-c\", \"echo it broke; exit 3\"]\ntags = [\"demo\"]\n[[aliases]]\nformat = \"break\"\n",
        )
        .unwrap();
    });
    let alice_token = rig.server.token_for("alice");
    flows::link(&rig, "alice", &alice_token).await;
    let hubot = Hubot::new(&rig.server, key);
    (rig, hubot)
}

#[tokio::test]
async fn hubot_lists_matches_and_runs_commands_as_the_linked_user_or_anonymous() {
    let (rig, hubot) = hubot_on_slack().await;
    let server = &rig.server;
    let (alice, bob) = (slack_id(&rig, "alice"), slack_id(&rig, "bob"));

    // The listing: one method per alias, regexes with named groups.
    let (status, listing) = hubot.listing().await;
    assert_eq!(status, 200, "{listing}");
    assert_eq!(listing["namespace"], "switchboard");
    assert_eq!(listing["version"], 3);
    assert_eq!(
        listing["methods"]["service.restart"],
        json!({
            "regex": r"restart\s+(?<service>\S+)(?:\s+dry_run=(?<dry_run>\S+))?",
            "params": ["service", "dry_run"],
            "path": "service.restart",
            "help": "restart {service} [dry_run={dry_run}] - Restart a systemd service (a dry run unless dry_run=false)",
        })
    );
    assert_eq!(
        listing["methods"]["demo.echo"]["regex"],
        r"echo\s+(?<message>.+)"
    );

    // alice is linked through Slack: the run is hers, from the Hubot room.
    let result = result_of(
        hubot
            .say(
                &listing,
                "alice",
                &alice,
                "#ops",
                "sb echo hello   Hubot world",
            )
            .await,
    );
    assert!(
        result.contains("succeeded") && result.contains("(run as alice)"),
        "{result}"
    );
    assert!(result.ends_with("hello   Hubot world"), "{result}");
    let run = execution_of(server, &result).await;
    assert_eq!(run["requester"], "alice");
    assert_eq!(run["origin"], "chat:chatops-rpc:#ops");

    // Policies see the Hubot room: alice restarts from #ops, not #general.
    let said = |user, slug, room, line| hubot.say(&listing, user, slug, room, line);
    let result = result_of(said("alice", &alice, "#ops", "sb Restart nginx --dry_run true").await);
    assert!(result.contains("service.restart"), "{result}");
    error_of(
        said("alice", &alice, "#general", "sb restart nginx").await,
        403,
        -32001,
    );

    // bob is not linked: anonymous may run demos, nothing else; the denial
    // is answered and audited.
    let result = result_of(said("bob", &bob, "#ops", "sb echo hi").await);
    assert!(result.contains("(run as anonymous)"), "{result}");
    let message = error_of(
        said("bob", &bob, "#ops", "sb restart nginx").await,
        403,
        -32001,
    );
    assert!(
        message.contains("no policy permits anonymous to run service.restart")
            && message.contains(&format!("slack:T0TEST/{bob} is not linked")),
        "{message}"
    );
    let (_, audit) = server.get("/audit?limit=5000").await;
    let denial = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["kind"] == "authz.decision" && r["outcome"] == "denied" && r["actor"] == "anonymous"
        })
        .unwrap_or_else(|| panic!("no denial audited: {audit}"));
    assert_eq!(denial["subject"], "action:service.restart");
    assert_eq!(denial["origin"], "chat:chatops-rpc:#ops");
    // The auditor's report names bob's chat account among those linked to
    // no one who asked to run something, and the door heard Hubot.
    let (_, report) = server.get("/report?actions=demo.echo").await;
    let unlinked = &report["identity"]["unlinked"];
    assert_eq!(unlinked.as_array().unwrap().len(), 1, "{unlinked}");
    assert_eq!(unlinked[0]["identity"], format!("slack:T0TEST/{bob}"));
    assert_eq!(
        (&unlinked[0]["attempts"], &unlinked[0]["refused"]),
        (&json!(2), &json!(1)),
        "{unlinked}"
    );
    assert_eq!(
        unlinked[0]["actions"],
        json!(["demo.echo", "service.restart"])
    );

    // A failed run is an error with its output; a bad value, invalid params.
    let message = error_of(said("bob", &bob, "#ops", "sb break").await, 200, -32000);
    for part in ["demo.broken", "failed", "exit code 3", "it broke"] {
        assert!(message.contains(part), "{message}");
    }
    let message = error_of(
        said("alice", &alice, "#ops", "sb restart nginx dry_run=maybe").await,
        422,
        -32602,
    );
    assert!(message.contains("dry_run"), "{message}");

    // A run longer than `wait` is answered with where to follow it.
    let result = result_of(said("bob", &bob, "#ops", "sb slow steps=20 every 1s").await);
    assert!(
        result.contains("is still running after 3s") && result.contains("it goes on"),
        "{result}"
    );
    assert_eq!(execution_of(server, &result).await["status"], "running");

    // A method that is not listed.
    let body =
        json!({"user": "alice", "room_id": "#ops", "method": "nope", "params": {}}).to_string();
    let signed = hubot.sign(BASE_URL, "/_chatops/nope", &body);
    let (status, answer) = hubot.send("/_chatops/nope", Some(&body), &signed).await;
    assert_eq!(
        (status, answer["error"]["code"].clone()),
        (404, json!(-32601)),
        "{answer}"
    );
}

#[tokio::test]
async fn hubot_buttons_approve_reject_and_cancel_runs_as_chat_does() {
    let (rig, hubot) = hubot_on_slack().await;
    let server = &rig.server;
    let carol_token = server.token_for("carol");
    flows::link(&rig, "carol", &carol_token).await;
    let (status, listing) = hubot.listing().await;
    assert_eq!(status, 200, "{listing}");
    let (alice, bob, carol) = (
        slack_id(&rig, "alice"),
        slack_id(&rig, "bob"),
        slack_id(&rig, "carol"),
    );
    // A button says its command, after the prefix, as a person would.
    let press = |answer: &Value, label: &str| {
        let button = answer["buttons"]
            .as_array()
            .and_then(|b| b.iter().find(|b| b["label"] == label))
            .unwrap_or_else(|| panic!("no {label} button: {answer}"));
        format!("{PREFIX} {}", button["command"].as_str().unwrap())
    };

    // A failover waits for a lead: Approve and Reject buttons.
    let (status, asked) = hubot
        .say(&listing, "alice", &alice, "#ops", "sb failover to db-2")
        .await;
    assert_eq!(status, 200, "{asked}");
    let run = execution_of(server, asked["result"].as_str().unwrap()).await;
    let id = run["id"].as_i64().unwrap();
    assert_eq!(run["status"], "awaiting_approval", "{run}");
    assert_eq!(
        asked["buttons"],
        json!([
            {"label": "Approve", "command": format!("approve {id}")},
            {"label": "Reject", "command": format!("reject {id}")},
        ])
    );
    // alice may not approve her own; bob (anonymous) may not approve.
    let own = error_of(
        hubot
            .say(&listing, "alice", &alice, "#ops", &press(&asked, "Approve"))
            .await,
        403,
        -32001,
    );
    assert!(own.contains("someone else must approve"), "{own}");
    error_of(
        hubot
            .say(&listing, "bob", &bob, "#ops", &press(&asked, "Approve"))
            .await,
        403,
        -32001,
    );
    // carol, a lead, may: it runs.
    let approved = result_of(
        hubot
            .say(
                &listing,
                "carol",
                &carol,
                "#ops",
                &format!("sb approve {id} checked the lag"),
            )
            .await,
    );
    assert!(
        approved.contains(&format!("carol approved execution {id}")),
        "{approved}"
    );
    let e = server.wait_finished(id).await;
    assert_eq!(
        (e["status"].as_str(), e["approvals"][0]["approver"].as_str()),
        (Some("succeeded"), Some("carol")),
        "{e}"
    );

    // Another is rejected with its button.
    let (_, asked) = hubot
        .say(&listing, "alice", &alice, "#ops", "sb failover to db-1")
        .await;
    let rejected = result_of(
        hubot
            .say(&listing, "carol", &carol, "#ops", &press(&asked, "Reject"))
            .await,
    );
    assert!(rejected.contains("rejected"), "{rejected}");
    let id = execution_of(server, asked["result"].as_str().unwrap()).await["id"].clone();
    let e = server.wait_finished(id.as_i64().unwrap()).await;
    assert_eq!(
        (e["status"].as_str(), e["error"].as_str()),
        (Some("cancelled"), Some("rejected by carol")),
        "{e}"
    );

    // A run still going has a Cancel button; its requester presses it.
    let (_, slow) = hubot
        .say(
            &listing,
            "alice",
            &alice,
            "#ops",
            "sb slow steps=20 every 1s",
        )
        .await;
    let cancelled = result_of(
        hubot
            .say(&listing, "alice", &alice, "#ops", &press(&slow, "Cancel"))
            .await,
    );
    let id = execution_of(server, slow["result"].as_str().unwrap()).await["id"].clone();
    assert!(
        cancelled.contains(&format!("Execution {id}")),
        "{cancelled}"
    );
    let e = server.wait_finished(id.as_i64().unwrap()).await;
    assert_eq!(e["status"], "cancelled", "{e}");

    // The audit log names the door and who pressed.
    let (_, audit) = server.get("/audit?limit=5000").await;
    assert!(
        audit["records"].as_array().unwrap().iter().any(|r| {
            r["actor"] == "carol"
                && r["origin"] == "chat:chatops-rpc:#ops"
                && r["kind"].as_str().is_some_and(|k| k.contains("approv"))
        }),
        "{audit}"
    );
}

#[tokio::test]
async fn requests_not_signed_by_hubots_keys_or_replayed_or_stale_are_refused() {
    let (primary_key, primary) = key_pair();
    let (alternate_key, alternate) = key_pair();
    let (stranger_key, _) = key_pair();
    let keys = tempfile::tempdir().unwrap();
    let server = Server::start_with_config(
        &sample_catalog(),
        &config(keys.path(), &primary, &alternate, ""),
    );
    let hubot = Hubot::new(&server, primary_key);
    let refused = |answer: (u16, Value), _why: &str| error_of(answer, 401, -32002);

    // Both keys are accepted (rotation); another is not.
    assert_eq!(hubot.listing().await.0, 200);
    assert_eq!(Hubot::new(&server, alternate_key).listing().await.0, 200);
    let message = refused(
        Hubot::new(&server, stranger_key).listing().await,
        "unknown key",
    );
    assert!(message.contains("does not verify"), "{message}");

    // Signed over the address Hubot does not use: refused.
    let signed = hubot.sign(&server.url, "/_chatops", "");
    refused(hubot.send("/_chatops", None, &signed).await, "wrong URL");

    // The same request twice: the second is a replay.
    let signed = hubot.sign(BASE_URL, "/_chatops", "");
    assert_eq!(hubot.send("/_chatops", None, &signed).await.0, 200);
    let message = refused(hubot.send("/_chatops", None, &signed).await, "replay");
    assert!(message.contains("replayed"), "{message}");

    // Six minutes old, or from the future.
    for offset in [-360i64, 360] {
        let when = std::time::SystemTime::now()
            .checked_add(Duration::from_secs(360))
            .filter(|_| offset > 0)
            .unwrap_or_else(|| std::time::SystemTime::now() - Duration::from_secs(360));
        let stamp = humantime::format_rfc3339_seconds(when).to_string();
        let signed = hubot.sign_as(BASE_URL, "/_chatops", "", &format!("n{offset}"), &stamp);
        let message = refused(hubot.send("/_chatops", None, &signed).await, "stale");
        assert!(message.contains("away from the server's time"), "{message}");
    }

    // No signature at all.
    let response = reqwest::get(format!("{}/_chatops", server.url))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);

    // A changed body no longer matches its signature.
    let body = r##"{"user":"bob","room_id":"#ops","params":{"message":"hi"}}"##;
    let signed = hubot.sign(BASE_URL, "/_chatops/demo.echo", body);
    let changed = body.replace("hi", "ho");
    refused(
        hubot
            .send("/_chatops/demo.echo", Some(&changed), &signed)
            .await,
        "changed body",
    );

    // Signed, but not JSON, or too large: a clear error, nothing runs.
    let signed = hubot.sign(BASE_URL, "/_chatops/demo.echo", "{not json");
    let (status, answer) = hubot
        .send("/_chatops/demo.echo", Some("{not json"), &signed)
        .await;
    assert_eq!(
        (status, answer["error"]["code"].clone()),
        (400, json!(-32700)),
        "{answer}"
    );
    let huge = format!(
        r#"{{"user":"bob","room_id":"x","params":{{"message":"{}"}}}}"#,
        "a".repeat(2 << 20)
    );
    let signed = hubot.sign(BASE_URL, "/_chatops/demo.echo", &huge);
    let (status, answer) = hubot
        .send("/_chatops/demo.echo", Some(&huge), &signed)
        .await;
    assert_eq!(status, 413, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("larger than"),
        "{answer}"
    );
    let (_, runs) = server.get("/executions").await;
    assert_eq!(
        runs["executions"].as_array().map(Vec::len),
        Some(0),
        "{runs}"
    );
}
