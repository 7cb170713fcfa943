//! Tests of the Teams adapter. Requests are signed here as Teams signs
//! them (HMAC-SHA256 of the body, keyed with the base64-decoded security
//! token); the Workflows URLs are a local axum server that records what
//! it was sent.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use proptest::prelude::*;
use serde_json::{Value, json};
use sha2::Sha256;
use switchboard_core::Timestamp;
use switchboard_core::chat::{ChatIdentity, Destination, OutletError, Reply};
use switchboard_core::execution::ExecutionStatus;
use switchboard_core::secret::Secret;

use super::activity::strip_markup;
use super::render::message;
use super::*;
use crate::chat::testing::{alert_card, approval, execution, file_ref, only_inbound, refused};
use crate::chat::{ChatAdapter, HookRequest};

// ---------------------------------------------------------------- helpers

const NOW: &str = "2026-11-26T10:00:00.000Z";
/// A security token as Teams shows it: base64 of 32 random bytes.
const TOKEN: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const ALICE: &str = "a1b2c3d4-0000-4000-8000-000000000001";
const OPS: &str = "19:253b1f341670408fb6fe51050b6e5ceb@thread.tacv2";

fn now() -> Timestamp {
    Timestamp::parse_rfc3339(NOW).unwrap()
}

fn config(base: &str) -> TeamsConfig {
    let mut c = TeamsConfig {
        security_tokens: vec![
            Secret::new(b"another webhook".to_vec()),
            Secret::new(STANDARD.decode(TOKEN).unwrap()),
        ],
        webhook_url: Some(Secret::new(format!("{base}/default"))),
        rooms: BTreeMap::new(),
        direct_url: Some(Secret::new(format!("{base}/direct"))),
        tenant: None,
        replay_window: Duration::from_secs(5 * 60),
    };
    c.rooms.insert(
        OPS.into(),
        TeamsRoom {
            name: Some("ops".into()),
            webhook_url: Some(Secret::new(format!("{base}/ops"))),
        },
    );
    c
}

fn adapter() -> TeamsAdapter {
    TeamsAdapter::new(config("http://127.0.0.1:9"))
}

/// Teams' signature of `body` with `token` (base64).
fn signature(token: &str, body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(&STANDARD.decode(token).unwrap()).unwrap();
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

fn signed_bytes(body: &[u8]) -> HookRequest {
    HookRequest {
        headers: BTreeMap::from([
            ("content-type".to_owned(), "application/json".to_owned()),
            (
                "authorization".to_owned(),
                format!("HMAC {}", signature(TOKEN, body)),
            ),
        ]),
        body: body.to_vec().into(),
    }
}

fn signed(activity: &Value) -> HookRequest {
    signed_bytes(activity.to_string().as_bytes())
}

/// An outgoing webhook's activity, as Teams documents it.
fn activity(id: &str, text: &str) -> Value {
    json!({
        "type": "message",
        "id": id,
        "timestamp": NOW,
        "localTimestamp": "2026-11-26T11:00:00.000+01:00",
        "serviceUrl": "https://smba.trafficmanager.net/emea/",
        "channelId": "msteams",
        "from": { "id": "29:1BLjP9j3_PM4mubmQZsYPx7jDyLeLf3YVA9sVPV08KMd5S6tGwxYAZpEGyXRmVKSHpb0EqKHzb6EZh6Z7MSjOsA", "name": "Alice", "aadObjectId": ALICE },
        "conversation": { "isGroup": true, "id": format!("{OPS};messageid={id}"), "name": null },
        "recipient": null,
        "textFormat": "plain",
        "text": text,
        "attachments": [{ "contentType": "text/html", "content": "<div>…</div>" }],
        "entities": [{ "type": "clientInfo", "locale": "en-US" }],
        "channelData": {
            "teamsChannelId": OPS,
            "teamsTeamId": "19:712c61d0ef384e5fa681ba90ca943398@thread.tacv2",
            "channel": { "id": OPS },
            "team": { "id": "19:712c61d0ef384e5fa681ba90ca943398@thread.tacv2" },
            "tenant": { "id": TENANT }
        },
        "replyToId": null,
        "value": null,
        "locale": "en-US"
    })
}

// ------------------------------------------------------------ activities

#[test]
fn a_signed_activity_is_acknowledged_and_becomes_a_message_of_its_author() {
    let r = adapter().webhook(
        "ops",
        &signed(&activity(
            "1485983408511",
            "<at>Switchboard</at> host.logs&nbsp;web-1 ",
        )),
        now(),
    );
    let m = only_inbound(&r);
    assert_eq!(m.sender.to_string(), format!("teams:{TENANT}/{ALICE}"));
    assert_eq!(m.sender_name.as_deref(), Some("Alice"));
    assert_eq!(m.text, "host.logs web-1");
    assert!(m.mentioned && !m.room.direct && !m.sender_is_bot);
    assert_eq!(m.room.id, OPS);
    assert_eq!(m.origin().unwrap().as_str(), "chat:teams:#ops");
    assert_eq!(m.delivery_id.as_deref(), Some("1485983408511"));
    let answer: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        answer,
        json!({ "type": "message", "text": "Received `host.logs web-1`; replies follow in this channel." })
    );
}

#[test]
fn a_channel_without_a_reply_url_is_told_so_at_once() {
    let mut c = config("http://127.0.0.1:9");
    c.webhook_url = None;
    let mut elsewhere = activity("2", "<at>Switchboard</at> uptime");
    elsewhere["channelData"]["channel"]["id"] = json!("19:other@thread.tacv2");
    let r = TeamsAdapter::new(c).webhook("general", &signed(&elsewhere), now());
    let m = only_inbound(&r);
    assert_eq!(
        m.origin().unwrap().as_str(),
        "chat:teams:19:other@thread.tacv2"
    );
    assert!(r.body.contains("no reply can follow"), "{}", r.body);
}

#[test]
fn the_published_shape_of_the_signature_is_what_is_checked() {
    // HMAC-SHA256 with the decoded token, over the exact bytes, base64:
    // computed independently (`openssl dgst -sha256 -mac HMAC -macopt
    // hexkey:…`) for the body `{"type":"message"}`.
    assert_eq!(
        signature(TOKEN, b"{\"type\":\"message\"}"),
        "ebHMiD7ePz57dJt66eystp5gQY/Jvsaj1Qh6ZP6S8TA="
    );
}

#[test]
fn unsigned_forged_and_altered_activities_are_refused_with_401() {
    let a = adapter();
    let body = activity("3", "<at>Switchboard</at> uptime").to_string();
    let good = signed_bytes(body.as_bytes());
    assert_eq!(a.webhook("ops", &good, now()).status, 200);

    let mut unsigned = good.clone();
    unsigned.headers.remove("authorization");
    refused(
        &a.webhook("ops", &unsigned, now()),
        401,
        "no `Authorization: HMAC",
    );
    let mut bearer = good.clone();
    bearer
        .headers
        .insert("authorization".into(), "Bearer x".into());
    refused(
        &a.webhook("ops", &bearer, now()),
        401,
        "no `Authorization: HMAC",
    );
    let mut not_b64 = good.clone();
    not_b64
        .headers
        .insert("authorization".into(), "HMAC !!!".into());
    refused(&a.webhook("ops", &not_b64, now()), 401, "not base64");
    let mut other_token = good.clone();
    other_token.headers.insert(
        "authorization".into(),
        format!("HMAC {}", signature("c2VjcmV0", body.as_bytes())),
    );
    refused(
        &a.webhook("ops", &other_token, now()),
        401,
        "does not match",
    );
    let mut altered = good.clone();
    altered.body = body.replace("uptime", "reboot").into_bytes().into();
    refused(&a.webhook("ops", &altered, now()), 401, "does not match");
}

#[test]
fn an_old_activity_is_refused_as_a_replay() {
    let a = adapter();
    for (at, ok) in [
        ("2026-11-26T09:55:30Z", true),
        ("2026-11-26T09:54:59Z", false),
        ("2026-11-26T10:05:01Z", false),
    ] {
        let mut old = activity("4", "<at>Switchboard</at> uptime");
        old["timestamp"] = json!(at);
        let r = a.webhook("ops", &signed(&old), now());
        if ok {
            assert_eq!(r.status, 200, "{}", r.body);
        } else {
            refused(&r, 401, "refused as a replay");
            assert!(r.rejection.unwrap().claimed_sender.is_none());
        }
    }
}

#[test]
fn malformed_activities_are_answered_400_with_the_reason() {
    let a = adapter();
    refused(
        &a.webhook("ops", &signed_bytes(b"{\"type\":"), now()),
        400,
        "not the Teams activity expected",
    );
    let mut no_user = activity("5", "x");
    no_user["from"]
        .as_object_mut()
        .unwrap()
        .remove("aadObjectId");
    refused(
        &a.webhook("ops", &signed(&no_user), now()),
        400,
        "no `aadObjectId`",
    );
    let mut no_time = activity("6", "x");
    no_time.as_object_mut().unwrap().remove("timestamp");
    let r = a.webhook("ops", &signed(&no_time), now());
    refused(&r, 400, "no `timestamp`");
    assert_eq!(
        r.rejection.unwrap().claimed_sender.unwrap().to_string(),
        format!("teams:{TENANT}/{ALICE}"),
        "an authentic refusal names its sender"
    );
    let mut typing = activity("7", "x");
    typing["type"] = json!("typing");
    refused(&a.webhook("ops", &signed(&typing), now()), 400, "`typing`");
    let mut no_tenant = activity("8", "x");
    no_tenant["channelData"]
        .as_object_mut()
        .unwrap()
        .remove("tenant");
    refused(
        &a.webhook("ops", &signed(&no_tenant), now()),
        400,
        "no tenant",
    );
}

#[test]
fn mentions_and_tags_are_removed_from_the_text() {
    assert_eq!(strip_markup("<at>Switchboard</at> uptime"), "uptime");
    assert_eq!(
        strip_markup("<at>Switch Board</at>&nbsp;logs grep=&quot;a &amp; b&quot;"),
        "logs grep=\"a & b\""
    );
    assert_eq!(strip_markup("<p>echo <b>hi</b></p>\n"), "echo hi");
    assert_eq!(strip_markup("a < b"), "a < b");
    assert_eq!(strip_markup("<at>Switchboard"), "Switchboard");
}

proptest! {
    #[test]
    fn any_request_is_answered_without_panicking(
        authorization in prop::option::of(prop_oneof!["HMAC [A-Za-z0-9+/=]{0,60}", ".{0,60}"]),
        body in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut headers = BTreeMap::new();
        if let Some(a) = authorization {
            headers.insert("authorization".to_owned(), a);
        }
        let r = adapter().webhook("ops", &HookRequest { headers, body: body.into() }, now());
        prop_assert_eq!(r.status, 401, "{}", r.body);
    }

    #[test]
    fn any_signed_body_is_answered_and_any_changed_byte_is_refused(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            Just(activity("9", "<at>Switchboard</at> uptime").to_string().into_bytes()),
        ],
        at in any::<prop::sample::Index>(),
        flip in 1..=255u8,
    ) {
        let a = adapter();
        let good = signed_bytes(&body);
        let r = a.webhook("ops", &good, now());
        prop_assert!(matches!(r.status, 200 | 400), "{}", r.body);
        if !body.is_empty() {
            let mut changed = body.clone();
            changed[at.index(body.len())] ^= flip;
            let mut bad = good.clone();
            bad.body = changed.into();
            prop_assert_eq!(a.webhook("ops", &bad, now()).status, 401);
        }
    }

    #[test]
    fn stripping_markup_never_panics(text in ".{0,200}") {
        let _ = strip_markup(&text);
    }
}

// ------------------------------------------------------------ configuration

#[test]
fn the_section_compiles_and_every_error_names_its_key_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, value: &str| file_ref(&dir, name, value);
    let text = format!(
        "security_tokens = [\"{}\"]\nwebhook_url = \"{}\"\n[rooms.\"{OPS}\"]\nname = \"#ops\"\nwebhook_url = \"{}\"\n",
        write("token", TOKEN),
        write("default", "https://example.webhook.office.com/default"),
        write(
            "ops",
            "https://prod.westeurope.logic.azure.com/workflows/ops"
        ),
    );
    let c = toml::from_str::<TeamsFile>(&text)
        .unwrap()
        .compile()
        .unwrap();
    assert_eq!(
        c.security_tokens[0].expose(),
        &STANDARD.decode(TOKEN).unwrap()
    );
    assert_eq!(c.rooms[OPS].name.as_deref(), Some("ops"));
    assert!(c.direct_url.is_none());

    let text = format!(
        "security_tokens = [\"{}\", \"env:SWITCHBOARD_TEST_SURELY_UNSET_TEAMS\"]\nwebhook_url = \"{}\"\ntenant = \"a/b\"\n",
        write("bad-token", "not base64!"),
        write("bad-url", "ftp://secret-url"),
    );
    let errors = toml::from_str::<TeamsFile>(&text)
        .unwrap()
        .compile()
        .unwrap_err();
    for key in [
        "chat.teams.security_tokens[0]: the security token is not base64",
        "chat.teams.security_tokens[1]: secret reference `env:SWITCHBOARD_TEST_SURELY_UNSET_TEAMS`",
        "chat.teams.webhook_url: the URL must start with `https://`",
        "chat.teams.tenant:",
    ] {
        assert!(errors.contains(key), "{key} missing from:\n{errors}");
    }
    assert!(!errors.contains("secret-url"));
    let none = toml::from_str::<TeamsFile>("security_tokens = []")
        .unwrap()
        .compile()
        .unwrap_err();
    assert!(none.contains("at least one"), "{none}");
    let inline = toml::from_str::<TeamsFile>("security_tokens = [\"abc\"]");
    assert!(
        inline
            .unwrap_err()
            .to_string()
            .contains("never the secret itself")
    );
}

// --------------------------------------------------------------- rendering

#[test]
fn rendered_cards() {
    insta::assert_json_snapshot!(
        "text",
        message(&Reply::Text {
            text: "Hello **there**".into()
        })
    );
    insta::assert_json_snapshot!("approval", message(&approval(42)));
    insta::assert_json_snapshot!(
        "finished_with_output",
        message(&Reply::Finished {
            execution: execution(42),
            status: ExecutionStatus::Failed,
            duration: Some(Duration::from_millis(12_340)),
            exit_code: Some(2),
            tail: "no such file\nsecond line".into(),
            partial: true,
            error: None,
        })
    );
    insta::assert_json_snapshot!("alert_card", message(&Reply::Alert { card: alert_card() }));
}

// ---------------------------------------------------------- workflow outlet

type Posts = Arc<Mutex<Vec<(String, Value)>>>;

async fn record(
    State((posts, status)): State<(Posts, Arc<Mutex<Vec<u16>>>)>,
    Path(which): Path<String>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if let Some(code) = status.lock().unwrap().pop() {
        return (
            StatusCode::from_u16(code).unwrap(),
            [("retry-after", "0")],
            "Too many",
        )
            .into_response();
    }
    posts.lock().unwrap().push((which, body));
    StatusCode::ACCEPTED.into_response()
}

async fn served() -> (Posts, Arc<Mutex<Vec<u16>>>, TeamsAdapter) {
    let posts = Posts::default();
    let status = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route("/{which}", post(record))
        .with_state((posts.clone(), status.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (
        posts,
        status,
        TeamsAdapter::new(config(&format!("http://{addr}"))),
    )
}

#[tokio::test]
async fn replies_go_to_their_channels_workflow_or_the_default_one() {
    let (posts, _, a) = served().await;
    let to = only_inbound(&a.webhook("ops", &signed(&activity("10", "<at>S</at> uptime")), now()))
        .reply_to();
    let outlet = a.outlet();
    let posted = outlet
        .post(&to, &Reply::Text { text: "one".into() })
        .await
        .unwrap();
    assert_eq!(posted.room, OPS);
    let elsewhere = Destination {
        room: "19:other@thread.tacv2".into(),
        thread: None,
    };
    outlet
        .post(&elsewhere, &Reply::Text { text: "two".into() })
        .await
        .unwrap();
    let posts = posts.lock().unwrap().clone();
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0].0, "ops");
    assert_eq!(
        posts[0].1["attachments"][0]["content"]["body"][0]["text"],
        "one"
    );
    assert_eq!(posts[1].0, "default");
    assert!(!outlet.capabilities().edits && !outlet.capabilities().buttons);
    assert!(matches!(
        outlet
            .update(&posted, &Reply::Text { text: "x".into() })
            .await,
        Err(OutletError::Unsupported(_))
    ));
}

#[tokio::test]
async fn a_private_message_names_its_recipient_for_the_direct_workflow() {
    let (posts, _, a) = served().await;
    let alice = ChatIdentity::new(PLATFORM, TENANT, ALICE).unwrap();
    a.outlet()
        .direct(
            &alice,
            &Reply::Text {
                text: "code ABCD".into(),
            },
        )
        .await
        .unwrap();
    let posts = posts.lock().unwrap().clone();
    assert_eq!(posts[0].0, "direct");
    assert_eq!(
        posts[0].1["recipient"],
        json!({ "aadObjectId": ALICE, "tenantId": TENANT })
    );

    let mut c = config("http://127.0.0.1:9");
    c.direct_url = None;
    let e = TeamsAdapter::new(c)
        .outlet()
        .direct(&alice, &Reply::Text { text: "x".into() })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("chat.teams.direct_url"), "{e}");
}

#[tokio::test]
async fn a_rate_limited_post_is_retried_and_a_refusal_says_the_status_not_the_url() {
    let (posts, status, a) = served().await;
    status.lock().unwrap().extend([429, 429]);
    let to = Destination {
        room: OPS.into(),
        thread: None,
    };
    a.outlet()
        .post(&to, &Reply::Text { text: "x".into() })
        .await
        .unwrap();
    assert_eq!(posts.lock().unwrap().len(), 1);
    status.lock().unwrap().push(400);
    let e = a
        .outlet()
        .post(&to, &Reply::Text { text: "x".into() })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("HTTP 400"), "{e}");
    assert!(!e.to_string().contains("127.0.0.1"), "{e}");
}
