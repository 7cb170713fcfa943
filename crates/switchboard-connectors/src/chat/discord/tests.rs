//! Tests of the Discord adapter. Requests are signed here with an Ed25519
//! key made for the test, as Discord signs them; Discord's webhook API is
//! a local axum server that records what it was sent.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ed25519_dalek::{Signer, SigningKey};
use proptest::prelude::*;
use serde_json::{Value, json};
use switchboard_core::Timestamp;
use switchboard_core::chat::{ChatIdentity, Destination, OutletError, Reply};
use switchboard_core::execution::ExecutionStatus;

use super::render::message_body;
use super::*;
use crate::chat::testing::{alert_card, approval, execution, only_inbound, refused};
use crate::chat::{ChatAdapter, HookRequest};

// ---------------------------------------------------------------- helpers

const NOW_S: i64 = 1_764_000_000;
const NOW: Timestamp = Timestamp(NOW_S * 1_000_000);
const APP: &str = "1100000000000000001";
const GUILD: &str = "1200000000000000002";
const CHANNEL: &str = "1300000000000000003";
const ALICE: &str = "1400000000000000004";

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn config(api_base: &str) -> DiscordConfig {
    let mut c = DiscordConfig::new(APP, key().verifying_key());
    c.api_base = api_base.to_owned();
    c
}

fn adapter() -> DiscordAdapter {
    DiscordAdapter::new(config("http://127.0.0.1:9"))
}

/// `body` signed with `key` at `timestamp`, as Discord sends it.
fn signed_with(key: &SigningKey, timestamp: &str, body: &[u8]) -> HookRequest {
    let mut message = timestamp.as_bytes().to_vec();
    message.extend_from_slice(body);
    let signature = hex::encode(key.sign(&message).to_bytes());
    HookRequest {
        headers: BTreeMap::from([
            ("content-type".to_owned(), "application/json".to_owned()),
            ("x-signature-ed25519".to_owned(), signature),
            ("x-signature-timestamp".to_owned(), timestamp.to_owned()),
        ]),
        body: body.to_vec().into(),
    }
}

fn signed(body: &Value) -> HookRequest {
    signed_with(&key(), &NOW_S.to_string(), body.to_string().as_bytes())
}

/// A slash command in a guild's channel `#ops`, as Discord sends it.
fn slash(id: &str, data: Value) -> Value {
    json!({
        "type": 2,
        "id": id,
        "application_id": APP,
        "token": format!("token-of-{id}"),
        "version": 1,
        "guild_id": GUILD,
        "channel_id": CHANNEL,
        "channel": { "id": CHANNEL, "name": "ops", "type": 0 },
        "member": { "user": { "id": ALICE, "username": "alice", "global_name": "Alice" }, "roles": [] },
        "data": data,
    })
}

fn text_command(id: &str, text: &str) -> Value {
    slash(
        id,
        json!({ "id": "1", "name": "switchboard", "type": 1,
                "options": [{ "name": "text", "type": 3, "value": text }] }),
    )
}

fn press(id: &str, custom_id: &str) -> Value {
    let mut p = slash(id, json!({ "custom_id": custom_id, "component_type": 2 }));
    p["type"] = json!(3);
    p
}

// ------------------------------------------------------------ interactions

#[test]
fn a_ping_is_answered_with_a_pong() {
    let r = adapter().webhook(
        "interactions",
        &signed(&json!({ "type": 1, "id": "1" })),
        NOW,
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&r.body).unwrap(),
        json!({ "type": 1 })
    );
    assert!(r.inbound.is_empty() && r.rejection.is_none());
}

#[test]
fn a_slash_command_is_deferred_and_becomes_a_message_of_its_guild_member() {
    let r = adapter().webhook(
        "interactions",
        &signed(&text_command("9001", " host.logs web-1 ")),
        NOW,
    );
    assert_eq!(
        serde_json::from_str::<Value>(&r.body).unwrap(),
        json!({ "type": 5 })
    );
    let m = only_inbound(&r);
    assert_eq!(m.sender.to_string(), format!("discord:{GUILD}/{ALICE}"));
    assert_eq!(m.sender_name.as_deref(), Some("Alice"));
    assert_eq!(m.text, "host.logs web-1");
    assert!(m.mentioned && !m.sender_is_bot && !m.room.direct);
    assert_eq!(m.room.id, CHANNEL);
    assert_eq!(m.origin().unwrap().as_str(), "chat:discord:#ops");
    assert_eq!(m.delivery_id.as_deref(), Some("9001"));
    assert_eq!(
        m.reply_to().thread.as_deref(),
        Some("9001"),
        "replies go to the interaction"
    );
}

#[test]
fn a_command_in_a_direct_message_names_the_user_outside_any_guild() {
    let mut dm = text_command("9002", "whoami");
    let object = dm.as_object_mut().unwrap();
    object.remove("guild_id");
    object.remove("member");
    object.insert("user".into(), json!({ "id": ALICE, "username": "alice" }));
    object.insert("channel".into(), json!({ "id": CHANNEL, "type": 1 }));
    let r = adapter().webhook("interactions", &signed(&dm), NOW);
    let m = only_inbound(&r);
    assert_eq!(m.sender.to_string(), format!("discord:@me/{ALICE}"));
    assert!(m.room.direct);
    assert_eq!(m.sender_name.as_deref(), Some("alice"));
}

#[test]
fn other_commands_and_their_options_read_as_name_and_parameters() {
    let data = json!({ "name": "logs", "type": 1, "options": [
        { "name": "file", "type": 3, "value": "/var/log/syslog" },
        { "name": "lines", "type": 4, "value": 50 },
        { "name": "grep", "type": 3, "value": "out of memory" },
    ]});
    let r = adapter().webhook("interactions", &signed(&slash("9003", data)), NOW);
    assert_eq!(
        only_inbound(&r).text,
        "logs file=/var/log/syslog lines=50 grep=\"out of memory\""
    );
    let sub = json!({ "name": "switchboard", "type": 1, "options": [
        { "name": "status", "type": 1, "options": [{ "name": "text", "type": 3, "value": "42" }] },
    ]});
    let r = adapter().webhook("interactions", &signed(&slash("9004", sub)), NOW);
    assert_eq!(only_inbound(&r).text, "status 42");
}

#[test]
fn a_pressed_button_says_its_command_for_the_presser() {
    let a = adapter();
    for (custom_id, said) in [
        ("approve:42", "approve 42"),
        ("reject:42", "reject 42"),
        ("cmd:ack 0668fc525e22", "ack 0668fc525e22"),
    ] {
        let r = a.webhook("interactions", &signed(&press("9100", custom_id)), NOW);
        let m = only_inbound(&r);
        assert_eq!(m.text, said);
        assert_eq!(m.sender.to_string(), format!("discord:{GUILD}/{ALICE}"));
    }
    for foreign in ["approve:x", "launch:1", "", "cmd: ", "cmd:a\nb"] {
        refused(
            &a.webhook("interactions", &signed(&press("9101", foreign)), NOW),
            400,
            "not one of Switchboard's",
        );
    }
}

#[test]
fn unsigned_forged_and_altered_interactions_are_refused_with_401() {
    let a = adapter();
    let body = text_command("9200", "uptime").to_string();
    let good = signed_with(&key(), &NOW_S.to_string(), body.as_bytes());
    assert_eq!(a.webhook("interactions", &good, NOW).status, 200);

    let mut unsigned = good.clone();
    unsigned.headers.remove("x-signature-ed25519");
    refused(
        &a.webhook("interactions", &unsigned, NOW),
        401,
        "not signed",
    );
    let mut no_time = good.clone();
    no_time.headers.remove("x-signature-timestamp");
    refused(&a.webhook("interactions", &no_time, NOW), 401, "not signed");

    let mut not_hex = good.clone();
    not_hex
        .headers
        .insert("x-signature-ed25519".into(), "zz".repeat(64));
    refused(
        &a.webhook("interactions", &not_hex, NOW),
        401,
        "64 bytes of hex",
    );

    let other_key = SigningKey::from_bytes(&[8; 32]);
    let forged = signed_with(&other_key, &NOW_S.to_string(), body.as_bytes());
    refused(
        &a.webhook("interactions", &forged, NOW),
        401,
        "does not match",
    );

    let mut altered = good.clone();
    altered.body = body.replace("uptime", "reboot").into_bytes().into();
    refused(
        &a.webhook("interactions", &altered, NOW),
        401,
        "does not match",
    );

    let mut moved = good.clone();
    moved
        .headers
        .insert("x-signature-timestamp".into(), (NOW_S + 1).to_string());
    refused(
        &a.webhook("interactions", &moved, NOW),
        401,
        "does not match",
    );
}

#[test]
fn an_old_or_future_interaction_is_refused_as_a_replay() {
    let a = adapter();
    let body = text_command("9300", "uptime").to_string();
    for (at, ok) in [
        (NOW_S - 299, true),
        (NOW_S - 301, false),
        (NOW_S + 301, false),
    ] {
        let r = a.webhook(
            "interactions",
            &signed_with(&key(), &at.to_string(), body.as_bytes()),
            NOW,
        );
        if ok {
            assert_eq!(r.status, 200, "{}", r.body);
        } else {
            refused(&r, 401, "refused as a replay");
        }
    }
    let r = a.webhook(
        "interactions",
        &signed_with(&key(), "yesterday", body.as_bytes()),
        NOW,
    );
    refused(&r, 401, "not a number");
}

#[test]
fn malformed_interactions_are_answered_400_with_the_reason() {
    let a = adapter();
    let r = a.webhook(
        "interactions",
        &signed_with(&key(), &NOW_S.to_string(), b"{\"type\": "),
        NOW,
    );
    refused(&r, 400, "not the JSON expected");
    refused(
        &a.webhook(
            "interactions",
            &signed(&json!({ "type": 2, "id": "1" })),
            NOW,
        ),
        400,
        "no `data`",
    );
    refused(
        &a.webhook(
            "interactions",
            &signed(&json!({ "type": 4, "id": "1" })),
            NOW,
        ),
        400,
        "type 4",
    );
    let mut nobody = text_command("9400", "uptime");
    nobody.as_object_mut().unwrap().remove("member");
    refused(
        &a.webhook("interactions", &signed(&nobody), NOW),
        400,
        "names no user",
    );
    let mut nowhere = text_command("9401", "uptime");
    nowhere.as_object_mut().unwrap().remove("channel_id");
    nowhere.as_object_mut().unwrap().remove("channel");
    refused(
        &a.webhook("interactions", &signed(&nowhere), NOW),
        400,
        "names no channel",
    );
    refused(
        &a.webhook("events", &signed(&json!({ "type": 1 })), NOW),
        404,
        "`events`",
    );
}

proptest! {
    #[test]
    fn any_request_is_answered_without_panicking(
        endpoint in prop::sample::select(vec!["interactions", "", "other"]),
        signature in prop::option::of(prop_oneof!["[0-9a-f]{128}", ".{0,140}"]),
        timestamp in prop::option::of(prop_oneof![Just(NOW_S.to_string()), ".{0,20}"]),
        body in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut headers = BTreeMap::new();
        if let Some(s) = signature {
            headers.insert("x-signature-ed25519".to_owned(), s);
        }
        if let Some(t) = timestamp {
            headers.insert("x-signature-timestamp".to_owned(), t);
        }
        let r = adapter().webhook(endpoint, &HookRequest { headers, body: body.into() }, NOW);
        prop_assert!(matches!(r.status, 401 | 404), "{}", r.body);
    }

    #[test]
    fn any_signed_body_is_answered_and_any_changed_byte_is_refused(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            Just(text_command("9500", "uptime").to_string().into_bytes()),
        ],
        at in any::<prop::sample::Index>(),
        flip in 1..=255u8,
    ) {
        let a = adapter();
        let good = signed_with(&key(), &NOW_S.to_string(), &body);
        let r = a.webhook("interactions", &good, NOW);
        prop_assert!(matches!(r.status, 200 | 400), "{}", r.body);
        prop_assert_eq!(r.status == 200, r.rejection.is_none());
        if !body.is_empty() {
            let mut changed = body.clone();
            changed[at.index(body.len())] ^= flip;
            let mut bad = good.clone();
            bad.body = changed.into();
            prop_assert_eq!(a.webhook("interactions", &bad, NOW).status, 401);
        }
    }
}

// ------------------------------------------------------------ configuration

#[test]
fn the_section_compiles_and_every_error_names_its_key() {
    let public_key = hex::encode(key().verifying_key().to_bytes());
    let file: DiscordFile = toml::from_str(&format!(
        "application_id = \"{APP}\"\npublic_key = \"{public_key}\"\napi_base = \"http://127.0.0.1:1/api/\""
    ))
    .unwrap();
    let c = file.compile().unwrap();
    assert_eq!(c.command, "switchboard");
    assert_eq!(c.api_base, "http://127.0.0.1:1/api");
    assert_eq!(c.public_key, key().verifying_key());
    let default: DiscordFile = toml::from_str(&format!(
        "application_id = \"{APP}\"\npublic_key = \"{public_key}\""
    ))
    .unwrap();
    assert_eq!(default.compile().unwrap().api_base, DEFAULT_API_BASE);

    let bad: DiscordFile = toml::from_str(
        "application_id = \"my app\"\npublic_key = \"abc\"\ncommand = \"two words\"\napi_base = \"discord.com\"",
    )
    .unwrap();
    let errors = bad.compile().unwrap_err();
    for key in [
        "chat.discord.application_id:",
        "chat.discord.public_key: expected the application's public key, 64 hex digits",
        "chat.discord.command:",
        "chat.discord.api_base:",
    ] {
        assert!(errors.contains(key), "{key} missing from:\n{errors}");
    }
    let unknown =
        toml::from_str::<DiscordFile>("application_id = \"1\"\npublic_key = \"a\"\ntoken = \"x\"");
    assert!(
        unknown
            .unwrap_err()
            .to_string()
            .contains("unknown field `token`")
    );
}

// --------------------------------------------------------------- rendering

#[test]
fn rendered_messages() {
    insta::assert_json_snapshot!(
        "text",
        message_body(&Reply::Text {
            text: "Hello **there** @everyone".into()
        })
    );
    insta::assert_json_snapshot!("approval_with_buttons", message_body(&approval(42)));
    insta::assert_json_snapshot!(
        "finished",
        message_body(&Reply::Finished {
            execution: execution(42),
            status: ExecutionStatus::Failed,
            duration: Some(Duration::from_millis(12_340)),
            exit_code: Some(2),
            tail: "no such file".into(),
            partial: true,
            error: None,
        })
    );
    insta::assert_json_snapshot!(
        "alert_card",
        message_body(&Reply::Alert { card: alert_card() })
    );
}

#[test]
fn long_replies_are_cut_and_overlong_commands_are_written_out() {
    let long = message_body(&Reply::Text {
        text: "é".repeat(5000),
    });
    let content = long["content"].as_str().unwrap();
    assert_eq!(content.chars().count(), 2000);
    assert!(content.ends_with("(cut)"));

    let mut c = alert_card();
    c.buttons[1].command = format!("silence {} for 1h because busy", "x".repeat(100));
    let body = message_body(&Reply::Alert { card: c });
    assert_eq!(
        body["components"][0]["components"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(
        body["content"]
            .as_str()
            .unwrap()
            .contains("Say `ack 0668fc525e22`")
    );
}

// ---------------------------------------------------------- webhook outlet

/// What the fake Discord was sent: method, path (with query) and body.
type Calls = Arc<Mutex<Vec<(String, String, Value)>>>;

#[derive(Clone, Default)]
struct Fake {
    calls: Calls,
    /// The `Authorization` of each call, in order.
    auth: Arc<Mutex<Vec<Option<String>>>>,
    /// Answer 429 to this many calls first.
    limited: Arc<Mutex<usize>>,
}

async fn record(
    State(fake): State<Fake>,
    method: Method,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    headers: axum::http::HeaderMap,
    body: String,
) -> Response {
    {
        let mut limited = fake.limited.lock().unwrap();
        if *limited > 0 {
            *limited -= 1;
            return (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(json!({ "retry_after": 0.01 })),
            )
                .into_response();
        }
    }
    let mut calls = fake.calls.lock().unwrap();
    let full = match query {
        Some(q) => format!("/{path}?{q}"),
        None => format!("/{path}"),
    };
    if full.contains("bad-token") {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({ "message": "Invalid Webhook Token", "code": 50027 })),
        )
            .into_response();
    }
    calls.push((
        method.to_string(),
        full,
        serde_json::from_str(&body).unwrap_or(Value::Null),
    ));
    fake.auth.lock().unwrap().push(
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    );
    // Messages and channels are numbered, as Discord's ids are digits.
    let id = format!("90{}", calls.len());
    axum::Json(json!({ "id": id, "channel_id": CHANNEL })).into_response()
}

/// The fake Discord API, and its base URL.
async fn fake_discord() -> (Fake, String) {
    let fake = Fake::default();
    let app = Router::new()
        .route("/api/{*path}", post(record).patch(record))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (fake, format!("http://{addr}/api"))
}

async fn served() -> (Fake, DiscordAdapter) {
    let (fake, api) = fake_discord().await;
    (fake, DiscordAdapter::new(config(&api)))
}

fn calls(fake: &Fake) -> Vec<(String, String, Value)> {
    fake.calls.lock().unwrap().clone()
}

/// Alice's command `id`, delivered to `a`: where its replies go.
fn asked(a: &DiscordAdapter, id: &str) -> Destination {
    let r = a.webhook("interactions", &signed(&text_command(id, "uptime")), NOW);
    only_inbound(&r).reply_to()
}

#[tokio::test]
async fn the_first_reply_replaces_the_deferred_message_and_later_ones_follow_it() {
    let (fake, a) = served().await;
    let to = asked(&a, "7001");
    let outlet = a.outlet();
    let first = outlet
        .post(&to, &Reply::Text { text: "one".into() })
        .await
        .unwrap();
    let second = outlet.post(&first.thread(), &approval(42)).await.unwrap();
    outlet
        .update(
            &second,
            &Reply::Text {
                text: "approved".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(first.thread.as_deref(), Some("7001"));
    assert_eq!(second.thread.as_deref(), Some("7001"));
    assert_eq!(first.room, CHANNEL);
    let calls = calls(&fake);
    let routes: Vec<(&str, &str)> = calls
        .iter()
        .map(|(m, p, _)| (m.as_str(), p.as_str()))
        .collect();
    assert_eq!(
        routes,
        [
            (
                "PATCH",
                format!("/webhooks/{APP}/token-of-7001/messages/@original").as_str()
            ),
            (
                "POST",
                format!("/webhooks/{APP}/token-of-7001?wait=true").as_str()
            ),
            (
                "PATCH",
                format!("/webhooks/{APP}/token-of-7001/messages/902").as_str()
            ),
        ]
    );
    assert_eq!(calls[0].2["content"], "one");
    assert_eq!(
        calls[1].2["components"][0]["components"][0]["custom_id"],
        "approve:42"
    );
    assert_eq!(
        calls[2].2["components"],
        json!([]),
        "the edit removes the buttons"
    );
}

#[tokio::test]
async fn a_private_message_is_an_ephemeral_follow_up_after_the_public_answer() {
    let (fake, a) = served().await;
    let to = asked(&a, "7002");
    let alice = ChatIdentity::new(PLATFORM, GUILD, ALICE).unwrap();
    let outlet = a.outlet();
    outlet
        .direct(
            &alice,
            &Reply::Text {
                text: "code ABCD-EFGH".into(),
            },
        )
        .await
        .unwrap();
    outlet
        .post(
            &to,
            &Reply::Text {
                text: "sent".into(),
            },
        )
        .await
        .unwrap();
    let calls = calls(&fake);
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert!(calls[0].1.ends_with("/messages/@original"));
    assert!(
        !calls[0].2.to_string().contains("ABCD"),
        "the public message holds no code"
    );
    assert!(calls[1].1.ends_with("?wait=true"));
    assert_eq!(calls[1].2["flags"], 64);
    assert_eq!(calls[1].2["content"], "code ABCD-EFGH");
    assert!(
        calls[2].1.ends_with("?wait=true"),
        "the public answer follows"
    );
    assert!(calls[2].2.get("flags").is_none());

    let bob = ChatIdentity::new(PLATFORM, GUILD, "1500000000000000005").unwrap();
    let e = outlet
        .direct(&bob, &Reply::Text { text: "x".into() })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("last 15 minutes"), "{e}");
}

#[tokio::test]
async fn replies_to_an_unknown_or_expired_interaction_are_refused_saying_why() {
    let (fake, _) = served().await;
    let mut c = config("http://127.0.0.1:9");
    c.token_lifetime = Duration::ZERO;
    let a = DiscordAdapter::new(c);
    let to = asked(&a, "7003");
    let e = a
        .outlet()
        .post(
            &to,
            &Reply::Text {
                text: "late".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, OutletError::Refused(_)), "{e}");
    assert!(e.to_string().contains("older than 15 minutes"), "{e}");
    let nowhere = Destination {
        room: CHANNEL.into(),
        thread: None,
    };
    assert!(matches!(
        a.outlet()
            .post(&nowhere, &Reply::Text { text: "x".into() })
            .await,
        Err(OutletError::Unsupported(_))
    ));
    assert!(calls(&fake).is_empty());
}

#[tokio::test]
async fn with_a_bot_token_what_outlives_an_interaction_is_posted_by_the_bot() {
    let (fake, api) = fake_discord().await;
    let mut c = config(&api);
    c.token_lifetime = Duration::ZERO;
    c.bot_token = Some(switchboard_core::secret::Secret::new(
        "bot-s3cret".to_owned(),
    ));
    let a = DiscordAdapter::new(c);
    let outlet = a.outlet();

    // The interaction has expired: the result goes to its channel.
    let to = asked(&a, "7101");
    let posted = outlet
        .post(
            &to,
            &Reply::Text {
                text: "done at last".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (posted.room.as_str(), posted.thread.as_deref()),
        (CHANNEL, None)
    );
    // … and is edited there.
    outlet
        .update(
            &posted,
            &Reply::Text {
                text: "done, edited".into(),
            },
        )
        .await
        .unwrap();
    // An alert has no interaction at all.
    let room = Destination {
        room: CHANNEL.into(),
        thread: None,
    };
    outlet
        .post(
            &room,
            &Reply::Text {
                text: "an alert".into(),
            },
        )
        .await
        .unwrap();
    // A private message: a direct message channel, then the message.
    let alice = ChatIdentity::new("discord", GUILD, "1400000000000000001").unwrap();
    outlet
        .direct(
            &alice,
            &Reply::Text {
                text: "your code".into(),
            },
        )
        .await
        .unwrap();
    let calls: Vec<(String, String)> = calls(&fake).into_iter().map(|(m, p, _)| (m, p)).collect();
    let expected = [
        ("POST", format!("/channels/{CHANNEL}/messages")),
        (
            "PATCH",
            format!("/channels/{CHANNEL}/messages/{}", posted.id),
        ),
        ("POST", format!("/channels/{CHANNEL}/messages")),
        ("POST", "/users/@me/channels".to_owned()),
        ("POST", "/channels/904/messages".to_owned()),
    ];
    let expected: Vec<(String, String)> = expected
        .into_iter()
        .map(|(m, p)| (m.to_owned(), p))
        .collect();
    assert_eq!(calls, expected);
    assert!(
        fake.auth
            .lock()
            .unwrap()
            .iter()
            .all(|a| a.as_deref() == Some("Bot bot-s3cret"))
    );
    assert_eq!(
        self::calls(&fake)[3].2,
        json!({ "recipient_id": "1400000000000000001" })
    );
    // A room that is not a channel id goes into no URL.
    let odd = Destination {
        room: "../users/@me".into(),
        thread: None,
    };
    assert!(matches!(
        outlet.post(&odd, &Reply::Text { text: "x".into() }).await,
        Err(OutletError::Refused(_))
    ));
}

#[tokio::test]
async fn a_rate_limited_call_is_retried_and_a_refusal_names_discords_message() {
    let (fake, a) = served().await;
    *fake.limited.lock().unwrap() = 2;
    let to = asked(&a, "7004");
    a.outlet()
        .post(&to, &Reply::Text { text: "x".into() })
        .await
        .unwrap();
    assert_eq!(calls(&fake).len(), 1);

    let mut bad = text_command("7005", "uptime");
    bad["token"] = json!("bad-token");
    let to = only_inbound(&a.webhook("interactions", &signed(&bad), NOW)).reply_to();
    let e = a
        .outlet()
        .post(&to, &Reply::Text { text: "x".into() })
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("Invalid Webhook Token (HTTP 401)"),
        "{e}"
    );
}
