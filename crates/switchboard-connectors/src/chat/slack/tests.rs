//! The Slack adapter against Slack's published signing example, hand-made
//! payloads in Slack's documented shapes, and a local server that speaks
//! the Web API and Socket Mode as Slack documents them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hmac::{Hmac, KeyInit, Mac};
use proptest::prelude::*;
use serde_json::{Value, json};
use sha2::Sha256;
use switchboard_core::chat::{
    AlertCard, Attachment, Button, ButtonStyle, ChatHandler, ChatIdentity, ChatOutlet, Destination,
    ExecutionRef, Inbound, OutletError, Posted, Reply,
};
use switchboard_core::secret::Secret;
use switchboard_core::{ActionName, ExecutionId, ExecutionStatus, Principal, Timestamp};
use tokio::sync::{mpsc, watch};

use super::inbound::plain_text;
use super::render::{SECTION_MAX, render};
use super::*;
use crate::chat::{ChatAdapter, HookRequest, HookResponse};

// ---------------------------------------------------------------- helpers

const SECRET: &str = "test-signing-secret";
/// 2023-11-14T22:13:20Z.
const NOW: i64 = 1_700_000_000;

fn now() -> Timestamp {
    Timestamp(NOW * 1_000_000)
}

fn config() -> SlackConfig {
    SlackConfig {
        signing_secret: Some(Secret::new(SECRET.to_owned())),
        team_id: Some("T1".to_owned()),
        bot_user_id: Some("UBOT".to_owned()),
        ..SlackConfig::new(Secret::new("xoxb-test".to_owned()))
    }
}

fn adapter() -> SlackAdapter {
    SlackAdapter::new(config())
}

fn signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

fn signed_at(body: impl Into<Bytes>, at: i64) -> HookRequest {
    let body = body.into();
    let timestamp = at.to_string();
    let mut headers = BTreeMap::new();
    headers.insert(
        "x-slack-signature".to_owned(),
        signature(SECRET, &timestamp, &body),
    );
    headers.insert("x-slack-request-timestamp".to_owned(), timestamp);
    HookRequest { headers, body }
}

fn signed(body: impl Into<Bytes>) -> HookRequest {
    signed_at(body, NOW - 5)
}

fn event(event: Value) -> String {
    json!({
        "token": "ignored",
        "team_id": "T1",
        "api_app_id": "A1",
        "type": "event_callback",
        "event_id": "Ev1",
        "event_time": NOW,
        "event": event,
    })
    .to_string()
}

fn post_event(event_json: Value) -> HookResponse {
    adapter().webhook("events", &signed(event(event_json)), now())
}

fn only(response: HookResponse) -> Inbound {
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.inbound.len(), 1, "{:?}", response.inbound);
    response.inbound.into_iter().next().unwrap()
}

fn nothing(response: HookResponse) {
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(response.inbound.is_empty(), "{:?}", response.inbound);
}

fn refused(response: HookResponse, status: u16, reason: &str) {
    assert_eq!(response.status, status, "{}", response.body);
    assert!(response.inbound.is_empty());
    let got = response.rejection.expect("a rejection").reason;
    assert!(got.contains(reason), "`{got}` does not say `{reason}`");
}

fn form(fields: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(fields).unwrap()
}

// ------------------------------------------------------------- signatures

/// Slack's published request-signing example (Slack API docs, "Verifying
/// requests from Slack"), also kept in the project's shared fixtures as
/// `slack-signature.json`.
mod published {
    pub const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    pub const TIMESTAMP: &str = "1531420618";
    pub const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    pub const SIGNATURE: &str =
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
}

fn published_request() -> HookRequest {
    let mut headers = BTreeMap::new();
    headers.insert(
        "x-slack-request-timestamp".to_owned(),
        published::TIMESTAMP.to_owned(),
    );
    headers.insert(
        "x-slack-signature".to_owned(),
        published::SIGNATURE.to_owned(),
    );
    HookRequest {
        headers,
        body: Bytes::from_static(published::BODY.as_bytes()),
    }
}

fn published_adapter(secret: &str) -> SlackAdapter {
    SlackAdapter::new(SlackConfig {
        signing_secret: Some(Secret::new(secret.to_owned())),
        ..SlackConfig::new(Secret::new("xoxb-test".to_owned()))
    })
}

/// A moment shortly after Slack's example was signed.
fn published_now(offset: i64) -> Timestamp {
    let at: i64 = published::TIMESTAMP.parse().unwrap();
    Timestamp((at + offset) * 1_000_000)
}

#[test]
fn slacks_published_signing_example_verifies_and_reads_as_a_slash_command() {
    let adapter = published_adapter(published::SIGNING_SECRET);
    let m = only(adapter.webhook("commands", &published_request(), published_now(30)));
    assert_eq!(m.sender.to_string(), "slack:T1DC2JH3J/U2CERLKJA");
    assert_eq!(m.sender_name.as_deref(), Some("roadrunner"));
    assert_eq!(m.room.id, "G8PSS9T3V");
    assert_eq!(m.room.name.as_deref(), Some("#foobar"));
    assert_eq!(
        m.delivery_id.as_deref(),
        Some("398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
    );
    assert!(m.mentioned);
    assert_eq!(m.text, "");
    // The example's own signature, computed here, is the published one.
    assert_eq!(
        signature(
            published::SIGNING_SECRET,
            published::TIMESTAMP,
            published::BODY.as_bytes()
        ),
        published::SIGNATURE
    );
}

#[test]
fn a_flipped_byte_another_secret_or_a_mangled_signature_is_refused() {
    let adapter = published_adapter(published::SIGNING_SECRET);
    let mut flipped = published_request();
    let mut body = flipped.body.to_vec();
    body[10] ^= 1;
    flipped.body = body.into();
    refused(
        adapter.webhook("commands", &flipped, published_now(30)),
        401,
        "does not match",
    );

    let other = published_adapter("another-secret");
    refused(
        other.webhook("commands", &published_request(), published_now(30)),
        401,
        "does not match",
    );

    let mut digit = published_request();
    let sig = published::SIGNATURE.replace("v0=a", "v0=b");
    digit.headers.insert("x-slack-signature".into(), sig);
    refused(
        adapter.webhook("commands", &digit, published_now(30)),
        401,
        "does not match",
    );

    for bad in ["v1=a2114d57", "v0=xyz", "a2114d57b48eac39", "v0="] {
        let mut req = published_request();
        req.headers.insert("x-slack-signature".into(), bad.into());
        refused(
            adapter.webhook("commands", &req, published_now(30)),
            401,
            "malformed `X-Slack-Signature`",
        );
    }
}

#[test]
fn requests_outside_the_replay_window_are_refused_either_way() {
    let adapter = published_adapter(published::SIGNING_SECRET);
    let req = published_request();
    assert_eq!(
        adapter.webhook("commands", &req, published_now(300)).status,
        200
    );
    assert_eq!(
        adapter
            .webhook("commands", &req, published_now(-300))
            .status,
        200
    );
    refused(
        adapter.webhook("commands", &req, published_now(301)),
        401,
        "301 s old, outside the 300 s window",
    );
    refused(
        adapter.webhook("commands", &req, published_now(-301)),
        401,
        "301 s in the future",
    );
}

#[test]
fn missing_or_malformed_headers_are_refused_by_name() {
    let adapter = published_adapter(published::SIGNING_SECRET);
    let at = published_now(30);
    let mut req = published_request();
    req.headers.remove("x-slack-request-timestamp");
    refused(
        adapter.webhook("commands", &req, at),
        401,
        "missing `X-Slack-Request-Timestamp` header",
    );
    let mut req = published_request();
    req.headers.remove("x-slack-signature");
    refused(
        adapter.webhook("commands", &req, at),
        401,
        "missing `X-Slack-Signature` header",
    );
    let mut req = published_request();
    req.headers
        .insert("x-slack-request-timestamp".into(), "yesterday".into());
    refused(
        adapter.webhook("commands", &req, at),
        401,
        "malformed `X-Slack-Request-Timestamp`",
    );
}

#[test]
fn nothing_is_read_before_the_signature_is_checked() {
    // An unsigned body that would be a valid event is refused as unsigned,
    // and a signed body that is garbage is refused as garbage.
    let mut req = signed(event(
        json!({"type": "app_mention", "user": "U1", "text": "hi", "channel": "C1", "ts": "1.1"}),
    ));
    req.headers.remove("x-slack-signature");
    refused(adapter().webhook("events", &req, now()), 401, "missing");
    refused(
        adapter().webhook("events", &signed("{not json"), now()),
        400,
        "malformed JSON body",
    );
}

#[test]
fn endpoints_size_and_missing_secret_are_refused() {
    refused(
        adapter().webhook("actions", &signed("{}"), now()),
        404,
        "no Slack endpoint `actions`",
    );
    let huge = vec![b'a'; 1024 * 1024 + 1];
    refused(
        adapter().webhook("events", &signed(huge), now()),
        413,
        "larger than",
    );
    let socket_only = SlackAdapter::new(SlackConfig {
        app_token: Some(Secret::new("xapp-test".to_owned())),
        ..SlackConfig::new(Secret::new("xoxb-test".to_owned()))
    });
    refused(
        socket_only.webhook("events", &signed("{}"), now()),
        404,
        "`chat.slack.signing_secret` is not set",
    );
    assert_eq!(socket_only.platform(), "slack");
}

// ----------------------------------------------------------------- events

#[test]
fn url_verification_answers_the_challenge() {
    let body = json!({"token": "t", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"});
    let r = adapter().webhook("events", &signed(body.to_string()), now());
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "application/json");
    let answer: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        answer,
        json!({"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})
    );
    assert!(r.inbound.is_empty());
}

#[test]
fn an_app_mention_arrives_without_the_mention_in_its_thread() {
    let m = only(post_event(json!({
        "type": "app_mention",
        "user": "U1",
        "text": "<@UBOT> restart <http://nginx.example.com|nginx.example.com>",
        "ts": "1700000000.000200",
        "thread_ts": "1700000000.000100",
        "channel": "C1",
        "event_ts": "1700000000.000200",
    })));
    assert_eq!(
        m,
        Inbound {
            delivery_id: Some("Ev1".into()),
            sender: ChatIdentity::new("slack", "T1", "U1").unwrap(),
            sender_name: None,
            sender_is_bot: false,
            authenticated: None,
            room: switchboard_core::chat::Room {
                id: "C1".into(),
                name: None,
                direct: false,
            },
            thread: Some("1700000000.000100".into()),
            message_id: Some("1700000000.000200".into()),
            text: "restart nginx.example.com".into(),
            mentioned: true,
        }
    );
}

#[test]
fn a_direct_message_is_direct_and_a_leading_mention_is_dropped() {
    let m = only(post_event(json!({
        "type": "message", "channel_type": "im", "user": "U1",
        "text": "uptime", "channel": "D1", "ts": "1.1",
    })));
    assert!(m.room.direct);
    assert!(!m.mentioned);
    assert_eq!(m.text, "uptime");
    assert_eq!(m.thread, None);
    let m = only(post_event(json!({
        "type": "message", "channel_type": "im", "user": "U1",
        "text": "<@UBOT>: help logs", "channel": "D1", "ts": "1.2",
    })));
    assert!(m.mentioned);
    assert_eq!(m.text, "help logs");
}

#[test]
fn a_room_message_without_mention_is_passed_on_and_one_with_mention_comes_as_app_mention() {
    let m = only(post_event(json!({
        "type": "message", "channel_type": "channel", "user": "U1",
        "text": "!uptime", "channel": "C1", "ts": "1.1",
    })));
    assert!(!m.mentioned);
    assert!(!m.room.direct);
    assert_eq!(m.text, "!uptime");
    // Slack sends the same message again as `app_mention`; that one is answered.
    nothing(post_event(json!({
        "type": "message", "channel_type": "channel", "user": "U1",
        "text": "<@UBOT> uptime", "channel": "C1", "ts": "1.2",
    })));
}

#[test]
fn bot_messages_are_marked_as_such() {
    for event in [
        json!({"type": "message", "subtype": "bot_message", "bot_id": "B9", "text": "hi", "channel": "C1", "ts": "1.1"}),
        json!({"type": "message", "user": "U7", "bot_id": "B7", "text": "hi", "channel": "C1", "ts": "1.1"}),
        json!({"type": "message", "user": "UBOT", "text": "hi", "channel": "C1", "ts": "1.1"}),
    ] {
        assert!(only(post_event(event.clone())).sender_is_bot, "{event}");
    }
    assert!(
        !only(post_event(
            json!({"type": "message", "user": "U1", "text": "hi", "channel": "C1", "ts": "1.1"})
        ))
        .sender_is_bot
    );
}

#[test]
fn edits_deletions_joins_and_unknown_events_carry_nothing() {
    for subtype in [
        "message_changed",
        "message_deleted",
        "channel_join",
        "channel_leave",
        "message_replied",
    ] {
        nothing(post_event(json!({
            "type": "message", "subtype": subtype, "channel": "C1", "ts": "1.1",
            "message": {"user": "U1", "text": "<@UBOT> uptime"},
        })));
    }
    nothing(post_event(
        json!({"type": "reaction_added", "user": "U1", "reaction": "+1"}),
    ));
    let rate_limited = json!({"token": "t", "type": "app_rate_limited", "team_id": "T1", "minute_rate_limited": 1518467820, "api_app_id": "A1"});
    nothing(adapter().webhook("events", &signed(rate_limited.to_string()), now()));
}

#[test]
fn slack_escaping_and_autolinks_are_undone() {
    let m = only(post_event(json!({
        "type": "app_mention", "user": "U1", "channel": "C1", "ts": "1.1",
        "text": "<@UBOT> run <http://nginx.example.com|nginx.example.com> &amp;&amp; echo &lt;ok&gt; &amp;lt; to <mailto:ops@example.com|ops@example.com> in <#C2|ops> <!here> <https://example.com/a?b=1&amp;c=2>",
    })));
    assert_eq!(
        m.text,
        "run nginx.example.com && echo <ok> &lt; to ops@example.com in #ops @here https://example.com/a?b=1&c=2"
    );
    assert_eq!(plain_text("a < b"), "a < b");
    assert_eq!(plain_text("<@U1> and <@U2|bob>"), "@U1 and @bob");
}

#[test]
fn redeliveries_are_answered_and_keep_their_event_id() {
    let mut req = signed(event(
        json!({"type": "app_mention", "user": "U1", "text": "<@UBOT> uptime", "channel": "C1", "ts": "1.1"}),
    ));
    req.headers.insert("x-slack-retry-num".into(), "1".into());
    req.headers
        .insert("x-slack-retry-reason".into(), "http_timeout".into());
    let m = only(adapter().webhook("events", &req, now()));
    assert_eq!(m.delivery_id.as_deref(), Some("Ev1"));
}

#[test]
fn the_workspace_comes_from_the_payload_else_from_configuration() {
    let mut body = json!({
        "type": "event_callback", "team_id": "T2", "event_id": "Ev2",
        "event": {"type": "app_mention", "user": "U1", "text": "<@UBOT> hi", "channel": "C1", "ts": "1.1"},
    });
    let m = only(adapter().webhook("events", &signed(body.to_string()), now()));
    assert_eq!(m.sender.to_string(), "slack:T2/U1");
    body.as_object_mut().unwrap().remove("team_id");
    let body = body.to_string();
    let m = only(adapter().webhook("events", &signed(body.clone()), now()));
    assert_eq!(m.sender.to_string(), "slack:T1/U1");
    let unconfigured = SlackAdapter::new(SlackConfig {
        team_id: None,
        ..config()
    });
    refused(
        unconfigured.webhook("events", &signed(body), now()),
        400,
        "names no workspace (`team_id`)",
    );
}

#[test]
fn the_bot_is_recognised_from_the_events_authorizations_when_not_configured() {
    let adapter = SlackAdapter::new(SlackConfig {
        bot_user_id: None,
        ..config()
    });
    let body = json!({
        "type": "event_callback", "team_id": "T1", "event_id": "Ev3",
        "authorizations": [{"enterprise_id": null, "team_id": "T1", "user_id": "UBOT", "is_bot": true}],
        "event": {"type": "message", "channel_type": "im", "user": "U1", "text": "<@UBOT> uptime", "channel": "D1", "ts": "1.1"},
    });
    let m = only(adapter.webhook("events", &signed(body.to_string()), now()));
    assert_eq!(m.text, "uptime");
    assert!(m.mentioned);
}

// --------------------------------------------------- commands and buttons

#[test]
fn a_slash_command_is_addressed_to_the_bot() {
    let body = form(&[
        ("token", "x"),
        ("team_id", "T1"),
        ("channel_id", "C1"),
        ("channel_name", "ops"),
        ("user_id", "U1"),
        ("user_name", "alice"),
        ("command", "/sb"),
        ("text", "logs web-1 lines=&lt;50&gt;"),
        ("response_url", "https://hooks.slack.com/commands/T1/1/x"),
        ("trigger_id", "13345224609.738474920.8088930838d88f008e0"),
    ]);
    let r = adapter().webhook("commands", &signed(body), now());
    assert_eq!(r.body, "", "slash commands are answered with an empty 200");
    let m = only(r);
    assert_eq!(m.text, "logs web-1 lines=<50>");
    assert_eq!(m.room.name.as_deref(), Some("#ops"));
    assert!(m.mentioned && !m.room.direct && !m.sender_is_bot);
    assert_eq!(m.message_id, None);
    assert_eq!(
        m.delivery_id.as_deref(),
        Some("13345224609.738474920.8088930838d88f008e0")
    );
    let dm = form(&[
        ("team_id", "T1"),
        ("channel_id", "D1"),
        ("channel_name", "directmessage"),
        ("user_id", "U1"),
        ("text", "whoami"),
    ]);
    let m = only(adapter().webhook("commands", &signed(dm), now()));
    assert!(m.room.direct);
    assert_eq!(m.room.name, None);
}

fn block_actions(action_id: &str, value: &str, thread_ts: Option<&str>) -> Value {
    let mut message =
        json!({"type": "message", "ts": "1700000000.000300", "text": "Approval needed"});
    if let Some(t) = thread_ts {
        message["thread_ts"] = json!(t);
    }
    json!({
        "type": "block_actions",
        "user": {"id": "U2", "username": "bob", "name": "bob", "team_id": "T1"},
        "api_app_id": "A1",
        "token": "x",
        "container": {"type": "message", "message_ts": "1700000000.000300", "channel_id": "C1", "is_ephemeral": false},
        "trigger_id": "1.2.3",
        "team": {"id": "T1", "domain": "example"},
        "channel": {"id": "C1", "name": "ops"},
        "message": message,
        "response_url": "https://hooks.slack.com/actions/T1/1/x",
        "actions": [{
            "action_id": action_id, "block_id": "approval",
            "text": {"type": "plain_text", "text": "Approve"},
            "value": value, "style": "primary", "type": "button",
            "action_ts": "1700000001.123456",
        }],
    })
}

fn press(payload: &Value) -> HookResponse {
    press_on(&adapter(), payload)
}

fn press_on(adapter: &SlackAdapter, payload: &Value) -> HookResponse {
    let body = form(&[("payload", &payload.to_string())]);
    adapter.webhook("interactive", &signed(body), now())
}

#[test]
fn approval_buttons_become_approve_and_reject_in_the_requests_thread() {
    let m = only(press(&block_actions(
        "approve",
        "42",
        Some("1700000000.000100"),
    )));
    assert_eq!(m.text, "approve 42");
    assert_eq!(m.sender.to_string(), "slack:T1/U2");
    assert_eq!(m.sender_name.as_deref(), Some("bob"));
    assert_eq!(m.room.id, "C1");
    assert_eq!(m.thread.as_deref(), Some("1700000000.000100"));
    assert_eq!(m.delivery_id.as_deref(), Some("1700000001.123456:U2"));
    assert!(m.mentioned);

    let m = only(press(&block_actions("reject", "42", None)));
    assert_eq!(m.text, "reject 42");
    assert_eq!(m.thread.as_deref(), Some("1700000000.000300"));
}

#[test]
fn other_interactions_carry_nothing_and_odd_button_values_are_refused() {
    nothing(press(&block_actions("something_else", "42", None)));
    nothing(press(
        &json!({"type": "view_submission", "user": {"id": "U2"}, "view": {}}),
    ));
    nothing(press(&json!({"type": "shortcut", "callback_id": "x"})));
    refused(
        press(&block_actions("approve", "42; rm -rf /", None)),
        400,
        "not an execution id",
    );
}

#[test]
fn an_alert_cards_buttons_say_commands_and_its_links_open() {
    let card = AlertCard {
        title: "[FIRING:1] Disk <full>".into(),
        firing: true,
        group: "0668fc525e22".into(),
        alerts: Vec::new(),
        more: 0,
        acknowledged: None,
        links: vec![("Runbook".into(), "https://runbooks.example.com/disk".into())],
        buttons: vec![
            Button {
                label: "Ack".into(),
                command: "ack 0668fc525e22".into(),
                style: ButtonStyle::Primary,
            },
            Button {
                label: "Silence 1h".into(),
                command: "silence alertname=\"Disk\" for 1h because busy".into(),
                style: ButtonStyle::Plain,
            },
        ],
    };
    let rendered = render(&Reply::Alert { card });
    let text = rendered.blocks[0]["text"]["text"].as_str().unwrap();
    assert!(text.starts_with("*[FIRING:1] Disk &lt;full&gt;*"), "{text}");
    assert!(!text.contains("Say `ack"), "the buttons say it: {text}");
    let elements = rendered.blocks[1]["elements"].as_array().unwrap();
    let ids: Vec<&str> = elements
        .iter()
        .map(|e| e["action_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["command-0", "command-1", "open-0"]);
    assert_eq!(elements[0]["value"], "ack 0668fc525e22");
    assert_eq!(elements[0]["style"], "primary");
    assert!(elements[1].get("style").is_none());
    assert_eq!(elements[2]["url"], "https://runbooks.example.com/disk");

    // Pressed: the presser says the command, in the message's thread.
    let m = only(press(&block_actions(
        "command-1",
        "silence alertname=\"Disk\" for 1h because busy",
        None,
    )));
    assert_eq!(m.text, "silence alertname=\"Disk\" for 1h because busy");
    assert_eq!(m.thread.as_deref(), Some("1700000000.000300"));
    // A link's press, or a command button without a command, says nothing.
    nothing(press(&block_actions("open-0", "", None)));
    nothing(press(&block_actions("commander", "ack 1", None)));
    refused(
        press(&block_actions("command-0", "", None)),
        400,
        "not a command",
    );
    refused(
        press(&block_actions("command-0", "ack 1\nrm", None)),
        400,
        "not a command",
    );
}

// -------------------------------------------------------- malformed input

#[test]
fn malformed_payloads_are_refused_naming_what_is_wrong() {
    let a = adapter();
    let cases: Vec<(&str, String, &str)> = vec![
        ("events", "[1,2]".into(), "malformed Events API body"),
        (
            "events",
            json!({"event": {}}).to_string(),
            "missing field `type`",
        ),
        (
            "events",
            json!({"type": "url_verification"}).to_string(),
            "missing field `challenge`",
        ),
        (
            "events",
            event(json!({"type": "message", "user": "U1", "ts": "1.1"})),
            "missing field `channel`",
        ),
        (
            "events",
            event(json!({"type": "message", "user": "U1", "channel": "C1", "ts": 5})),
            "malformed `message` event",
        ),
        (
            "events",
            event(json!({"type": "message", "channel": "C1", "ts": "1.1"})),
            "`message` event without `user`",
        ),
        (
            "events",
            event(json!({"type": "message", "user": "U 1", "channel": "C1", "ts": "1.1"})),
            "invalid chat identity",
        ),
        (
            "commands",
            form(&[("team_id", "T1"), ("channel_id", "C1")]),
            "missing field `user_id`",
        ),
        (
            "commands",
            "user_id=U1&user_id=U2&channel_id=C1".into(),
            "malformed slash command form: duplicate field `user_id`",
        ),
        (
            "interactive",
            form(&[("other", "x")]),
            "missing field `payload`",
        ),
        (
            "interactive",
            form(&[("payload", "{nope")]),
            "malformed JSON in the `payload` field",
        ),
        (
            "interactive",
            form(&[("payload", r#"{"type":"block_actions","actions":[]}"#)]),
            "missing field `user`",
        ),
    ];
    for (endpoint, body, reason) in cases {
        refused(a.webhook(endpoint, &signed(body), now()), 400, reason);
    }
}

/// The sender a refusal recorded, as text.
fn claimed(response: HookResponse) -> Option<String> {
    assert_ne!(response.status, 200, "{}", response.body);
    response
        .rejection
        .expect("a rejection")
        .claimed_sender
        .map(|s| s.to_string())
}

#[test]
fn a_signed_but_refused_payload_records_the_sender_it_names() {
    let a = adapter();
    let cases: Vec<(&str, String, Option<&str>)> = vec![
        // Events: the event's user, in the body's workspace or ours.
        (
            "events",
            event(json!({"type": "message", "user": "U1", "channel": "C1", "ts": 5})),
            Some("slack:T1/U1"),
        ),
        (
            "events",
            json!({"type": "event_callback", "team_id": "T2", "event": {"type": "app_mention", "user": "U3", "text": 7, "ts": "1.1"}})
                .to_string(),
            Some("slack:T2/U3"),
        ),
        (
            "events",
            json!({"type": "event_callback", "event": {"type": "message", "user": "U4", "ts": "1.1"}})
                .to_string(),
            Some("slack:T1/U4"),
        ),
        // Slash commands: `team_id` and `user_id` of the form.
        (
            "commands",
            form(&[("team_id", "T1"), ("user_id", "U1"), ("text", "x")]),
            Some("slack:T1/U1"),
        ),
        // Buttons: the presser.
        (
            "interactive",
            form(&[(
                "payload",
                &block_actions("approve", "42; rm -rf /", None).to_string(),
            )]),
            Some("slack:T1/U2"),
        ),
        (
            "interactive",
            form(&[(
                "payload",
                &json!({"type": "block_actions", "user": {"id": "U5", "team_id": "T3"}, "actions": [{"action_id": "approve", "value": "x"}], "channel": {"id": "C1"}})
                    .to_string(),
            )]),
            Some("slack:T3/U5"),
        ),
        // Nobody, or nobody for sure.
        ("events", "{not json".into(), None),
        ("events", json!({"type": "url_verification"}).to_string(), None),
        (
            "events",
            event(json!({"type": "message", "channel": "C1", "ts": "1.1"})),
            None,
        ),
        (
            "events",
            event(json!({"type": "message", "user": "U 1", "channel": "C1", "ts": "1.1"})),
            None,
        ),
        (
            "events",
            event(json!({"type": "message", "user": "U\u{7}", "channel": "C1", "ts": "1.1"})),
            None,
        ),
        (
            "events",
            event(json!({"type": "message", "user": {"id": "U1"}, "channel": "C1", "ts": "1.1"})),
            None,
        ),
        (
            "commands",
            "user_id=U1&user_id=U2&channel_id=C1".into(),
            None,
        ),
        ("commands", form(&[("team_id", "T1"), ("channel_id", "C1")]), None),
        ("interactive", form(&[("payload", "{nope")]), None),
        (
            "interactive",
            form(&[("payload", r#"{"type":"block_actions","actions":[]}"#)]),
            None,
        ),
    ];
    for (endpoint, body, sender) in cases {
        let r = a.webhook(endpoint, &signed(body.clone()), now());
        assert_eq!(r.status, 400, "{endpoint} {body}: {}", r.body);
        assert_eq!(claimed(r).as_deref(), sender, "{endpoint} {body}");
    }

    // Without a workspace in the body or configured, nobody is named.
    let unconfigured = SlackAdapter::new(SlackConfig {
        team_id: None,
        ..config()
    });
    let body =
        json!({"type": "event_callback", "event": {"type": "message", "user": "U4", "ts": "1.1"}});
    let r = unconfigured.webhook("events", &signed(body.to_string()), now());
    assert_eq!(claimed(r), None);
}

#[test]
fn a_refused_signature_records_no_sender_whatever_the_body_says() {
    let body = event(
        json!({"type": "app_mention", "user": "U1", "text": "hi", "channel": "C1", "ts": "1.1"}),
    );
    let mut unsigned = signed(body.clone());
    unsigned.headers.remove("x-slack-signature");
    let mut forged = signed(body.clone());
    forged.headers.insert(
        "x-slack-signature".into(),
        signature("another-secret", &(NOW - 5).to_string(), body.as_bytes()),
    );
    let stale = signed_at(body.clone(), NOW - 3600);
    for req in [unsigned, forged, stale] {
        let r = adapter().webhook("events", &req, now());
        assert_eq!(r.status, 401, "{}", r.body);
        assert_eq!(claimed(r), None);
    }
    let big = format!("{body}{}", " ".repeat(1024 * 1024));
    let r = adapter().webhook("events", &signed(big), now());
    assert_eq!(r.status, 413);
    assert_eq!(claimed(r), None);
}

#[test]
fn control_characters_and_huge_text_pass_through_unharmed() {
    let text = format!("<@UBOT> echo \u{0}\u{7}\u{1b}[31m{}", "x".repeat(200_000));
    let m = only(post_event(
        json!({"type": "app_mention", "user": "U1", "text": text, "channel": "C1", "ts": "1.1"}),
    ));
    assert!(m.text.starts_with("echo \u{0}\u{7}\u{1b}[31m"));
    assert_eq!(m.text.len(), 5 + 3 + 4 + 200_000);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn webhook_never_panics_on_arbitrary_requests(
        endpoint in prop::sample::select(vec!["events", "commands", "interactive", "other"]),
        body in prop::collection::vec(any::<u8>(), 0..512),
        extra in prop::collection::btree_map("x-[a-z-]{1,16}", "\\PC{0,40}", 0..4),
        timestamp in prop::option::of("\\PC{0,12}"),
        sig in prop::option::of("\\PC{0,70}"),
        sign in any::<bool>(),
        skew in -400i64..400,
    ) {
        let mut req = if sign {
            signed_at(body, NOW + skew)
        } else {
            HookRequest { headers: BTreeMap::new(), body: body.into() }
        };
        req.headers.extend(extra);
        if !sign {
            if let Some(t) = timestamp { req.headers.insert("x-slack-request-timestamp".into(), t); }
            if let Some(s) = sig { req.headers.insert("x-slack-signature".into(), s); }
        }
        let r = adapter().webhook(endpoint, &req, now());
        prop_assert!(matches!(r.status, 200 | 400 | 401 | 404 | 413));
        if r.status != 200 {
            prop_assert!(r.inbound.is_empty() && r.rejection.is_some());
        }
        if r.status != 400 {
            // Only a verified body is read for a sender.
            prop_assert!(r.rejection.is_none_or(|j| j.claimed_sender.is_none()));
        }
    }

    #[test]
    fn signed_events_with_arbitrary_fields_never_panic(
        kind in prop::sample::select(vec!["message", "app_mention", "other"]),
        subtype in prop::option::of(prop::sample::select(vec!["bot_message", "message_changed", "file_share"])),
        user in "\\PC{0,12}",
        text in "(<[@#!]?[A-Za-z0-9|:/.&;^]{0,12}>?|&(amp|lt|gt);?|\\PC){0,40}",
        channel_type in prop::option::of(prop::sample::select(vec!["im", "channel", "group"])),
        thread in prop::option::of("[0-9.]{1,12}"),
    ) {
        let body = event(json!({
            "type": kind, "subtype": subtype, "user": user, "text": text,
            "channel": "C1", "channel_type": channel_type, "ts": "1.1", "thread_ts": thread,
        }));
        let r = adapter().webhook("events", &signed(body), now());
        prop_assert!(matches!(r.status, 200 | 400), "{}", r.body);
        for m in r.inbound {
            prop_assert_eq!(&m.sender.user, &user);
            prop_assert!(!m.text.starts_with(char::is_whitespace));
        }
    }

    #[test]
    fn signed_commands_and_button_presses_with_arbitrary_fields_never_panic(
        text in "\\PC{0,80}",
        user in "\\PC{0,12}",
        channel_name in "\\PC{0,12}",
        value in "\\PC{0,12}",
    ) {
        let body = form(&[("team_id", "T1"), ("channel_id", "C1"), ("channel_name", &channel_name), ("user_id", &user), ("text", &text)]);
        let r = adapter().webhook("commands", &signed(body), now());
        prop_assert!(matches!(r.status, 200 | 400), "{}", r.body);
        let r = press(&block_actions("approve", &value, None));
        prop_assert!(matches!(r.status, 200 | 400), "{}", r.body);
        if r.status == 200 {
            prop_assert_eq!(&r.inbound[0].text, &format!("approve {value}"));
        }
    }

    #[test]
    fn text_without_slack_markup_arrives_unchanged(text in "[^<>&]{0,80}") {
        prop_assert_eq!(plain_text(&text), text);
    }
}

// --------------------------------------------------------------- config

#[test]
fn the_file_section_compiles_with_secrets_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, value: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{value}\n")).unwrap();
        format!("file:{}", path.display())
    };
    let file: SlackFile = serde_json::from_value(json!({
        "signing_secret": write("signing", "s3cret"),
        "bot_token": write("bot", "xoxb-1"),
        "app_token": write("app", "xapp-1"),
        "api_base": "http://127.0.0.1:9/api/",
        "team_id": "T1",
        "max_retry_after": "10s",
    }))
    .unwrap();
    let c = file.compile().unwrap();
    assert_eq!(c.signing_secret.unwrap().expose(), "s3cret");
    assert_eq!(c.bot_token.expose(), "xoxb-1");
    assert_eq!(c.app_token.unwrap().expose(), "xapp-1");
    assert_eq!(c.api_base, "http://127.0.0.1:9/api");
    assert_eq!(c.team_id.as_deref(), Some("T1"));
    assert_eq!(c.bot_user_id, None);
    assert_eq!(c.max_retry_after, Duration::from_secs(10));

    let minimal: SlackFile = serde_json::from_value(json!({
        "signing_secret": write("signing", "s3cret"),
        "bot_token": write("bot", "xoxb-1"),
    }))
    .unwrap();
    let c = minimal.compile().unwrap();
    assert_eq!(c.api_base, DEFAULT_API_BASE);
    assert_eq!(c.max_retry_after, Duration::from_secs(30));
    assert!(format!("{c:?}").contains("****") && !format!("{c:?}").contains("xoxb-1"));
}

#[test]
fn every_problem_in_the_section_is_reported_by_key_without_secret_values() {
    let dir = tempfile::tempdir().unwrap();
    let swapped = dir.path().join("bot");
    std::fs::write(&swapped, "xapp-do-not-print").unwrap();
    let file: SlackFile = serde_json::from_value(json!({
        "bot_token": format!("file:{}", swapped.display()),
        "api_base": "slack.com/api",
        "team_id": "T 1",
        "max_retry_after": "soon",
    }))
    .unwrap();
    let errors = file.compile().unwrap_err();
    for expected in [
        "`chat.slack.bot_token`",
        "`chat.slack`: set `signing_secret`",
        "`chat.slack.api_base`",
        "`chat.slack.team_id`",
        "`chat.slack.max_retry_after`",
    ] {
        assert!(
            errors.contains(expected),
            "{expected} missing from:\n{errors}"
        );
    }
    assert!(!errors.contains("do-not-print"), "{errors}");

    let missing: SlackFile = serde_json::from_value(json!({
        "bot_token": "env:SWITCHBOARD_TEST_SURELY_UNSET_SLACK_BOT",
        "app_token": "env:SWITCHBOARD_TEST_SURELY_UNSET_SLACK_APP",
    }))
    .unwrap();
    let errors = missing.compile().unwrap_err();
    assert!(
        errors.contains(
            "`chat.slack.bot_token`: secret reference `env:SWITCHBOARD_TEST_SURELY_UNSET_SLACK_BOT`"
        ),
        "{errors}"
    );
    assert!(errors.contains("`chat.slack.app_token`"), "{errors}");

    let unknown = serde_json::from_value::<SlackFile>(json!({"bot_token": "env:X", "token": "x"}));
    assert!(
        unknown
            .unwrap_err()
            .to_string()
            .contains("unknown field `token`")
    );
    let inline = serde_json::from_value::<SlackFile>(json!({"bot_token": "xoxb-inline"}));
    assert!(
        inline
            .unwrap_err()
            .to_string()
            .contains("never the secret itself")
    );
}

// ------------------------------------------------------------- rendering

fn execution(id: i64) -> ExecutionRef {
    ExecutionRef {
        id: ExecutionId(id),
        action: ActionName::new("host.restart").unwrap(),
        link: Some(format!("https://sb.example.com/executions/{id}")),
    }
}

#[test]
fn replies_render_as_blocks() {
    insta::assert_json_snapshot!(
        "text",
        render(&Reply::Text {
            text: "Linked: you are *alice*.".into()
        })
    );
    insta::assert_json_snapshot!(
        "finished_with_output",
        render(&Reply::Finished {
            execution: execution(42),
            status: ExecutionStatus::Failed,
            duration: Some(Duration::from_millis(12_340)),
            exit_code: Some(2),
            tail: "IMAGE   TAG\nnginx   <none>\na && b > c".into(),
            partial: true,
            error: None,
        })
    );
    insta::assert_json_snapshot!(
        "approval_request",
        render(&Reply::ApprovalRequest {
            execution: execution(7),
            requester: Principal::new("alice").unwrap(),
            approvers: "1 of group:sre-leads".into(),
            expires_at: None,
        })
    );
    insta::assert_json_snapshot!(
        "refused",
        render(&Reply::Refused {
            reason: "you may not run `db.failover` from <#ops>".into()
        })
    );
}

/// The mrkdwn texts of a rendering's sections.
fn section_texts(rendered: &super::render::Rendered) -> Vec<String> {
    rendered
        .blocks
        .iter()
        .filter(|b| b["type"] == "section")
        .map(|b| b["text"]["text"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn long_output_is_split_into_sections_with_each_code_block_closed() {
    let code: String = (0..400)
        .map(|i| format!("line {i:04} {}\n", "=".repeat(40)))
        .collect();
    let rendered = render(&Reply::Code {
        title: "Output".into(),
        code: code.clone(),
    });
    let sections = section_texts(&rendered);
    assert!(sections.len() >= 7, "{}", sections.len());
    for s in &sections {
        assert!(s.encode_utf16().count() <= SECTION_MAX);
        assert_eq!(
            s.lines().filter(|l| l.starts_with("```")).count() % 2,
            0,
            "{s}"
        );
    }
    // Nothing is lost: every line of output is in some section, in order.
    let joined = sections.join("\n");
    let mut at = 0;
    for i in 0..400 {
        let line = format!("line {i:04} ");
        at += joined[at..]
            .find(&line)
            .unwrap_or_else(|| panic!("{line} missing"));
    }
    assert!(rendered.text.encode_utf16().count() <= SECTION_MAX);

    let one_line = "é".repeat(10_000);
    let rendered = render(&Reply::Text { text: one_line });
    let sections = section_texts(&rendered);
    assert_eq!(sections.concat().chars().count(), 10_000);
    assert!(
        sections
            .iter()
            .all(|s| s.encode_utf16().count() <= SECTION_MAX)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_section_fits_and_keeps_its_code_fences_balanced(
        lines in prop::collection::vec("\\PC{0,400}", 0..200),
        title in "\\PC{0,40}",
    ) {
        let rendered = render(&Reply::Code { title, code: lines.join("\n") });
        prop_assert!(rendered.blocks.len() <= 50);
        for s in section_texts(&rendered) {
            prop_assert!(s.encode_utf16().count() <= SECTION_MAX);
            prop_assert!(!s.trim().is_empty());
            let fences = s.lines().filter(|l| l.trim_start().starts_with("```")).count();
            prop_assert_eq!(fences % 2, 0, "{}", s);
        }
    }
}

// ---------------------------------------------- a local Slack (Web API)

/// One call to the fake Web API.
#[derive(Debug, Clone)]
struct Call {
    method: String,
    auth: Option<String>,
    /// JSON bodies as sent; form bodies as an object of strings.
    body: Value,
}

/// Bytes sent to an upload URL.
#[derive(Debug, Clone)]
struct Upload {
    file_id: String,
    auth: Option<String>,
    bytes: Vec<u8>,
}

#[derive(Debug, Clone)]
enum Step {
    Send(Value),
    /// Send, then read until the client goes away.
    SendThenAwaitClose(Value),
    /// Send a ping; the pong is reported as `pong`.
    Ping,
    /// Close the connection.
    Drop,
    /// Keep the connection open without ever reading it again.
    Silent,
}

#[derive(Clone)]
struct FakeSlack {
    base: String,
    calls: Arc<Mutex<Vec<Call>>>,
    uploads: Arc<Mutex<Vec<Upload>>>,
    /// How many of the next calls are answered 429, and with which `Retry-After`.
    limited: Arc<Mutex<(u32, u64)>>,
    /// An error `chat.postMessage` answers with.
    refuse: Arc<Mutex<Option<String>>>,
    /// `conversations.info`'s answer per channel id; `channel_not_found`
    /// for the others.
    channels: Arc<Mutex<BTreeMap<String, Value>>>,
    opens: Arc<AtomicU32>,
    /// How many of the next `apps.connections.open` calls are refused.
    refuse_opens: Arc<AtomicU32>,
    script: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Step>>>,
    /// Envelope ids acknowledged, and `pong` for each pong.
    heard: mpsc::UnboundedSender<String>,
}

struct Server {
    slack: FakeSlack,
    script: mpsc::UnboundedSender<Step>,
    heard: mpsc::UnboundedReceiver<String>,
}

impl Server {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (script_tx, script_rx) = mpsc::unbounded_channel();
        let (heard_tx, heard_rx) = mpsc::unbounded_channel();
        let slack = FakeSlack {
            base,
            calls: Arc::default(),
            uploads: Arc::default(),
            limited: Arc::default(),
            refuse: Arc::default(),
            channels: Arc::default(),
            opens: Arc::default(),
            refuse_opens: Arc::default(),
            script: Arc::new(tokio::sync::Mutex::new(script_rx)),
            heard: heard_tx,
        };
        let app = Router::new()
            .route("/api/{method}", post(api))
            .route("/upload/{id}", post(upload))
            .route("/socket", axum::routing::get(socket))
            .with_state(slack.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            slack,
            script: script_tx,
            heard: heard_rx,
        }
    }

    fn config(&self) -> SlackConfig {
        SlackConfig {
            api_base: format!("{}/api", self.slack.base),
            app_token: Some(Secret::new("xapp-test".to_owned())),
            reconnect_first: Duration::from_millis(10),
            reconnect_max: Duration::from_millis(40),
            ..config()
        }
    }

    fn calls(&self, method: &str) -> Vec<Call> {
        let calls = self.slack.calls.lock().unwrap();
        calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    fn all_methods(&self) -> Vec<String> {
        let calls = self.slack.calls.lock().unwrap();
        calls.iter().map(|c| c.method.clone()).collect()
    }

    /// `conversations.info` answers that `id` is a channel called `name`.
    fn channel(&self, id: &str, name: &str) {
        self.answer_info(
            id,
            json!({"ok": true, "channel": {
                "id": id, "name": name, "is_channel": true, "is_group": false,
                "is_im": false, "is_mpim": false, "is_private": false, "is_archived": false,
            }}),
        );
    }

    /// `conversations.info` answers this for `id`.
    fn answer_info(&self, id: &str, answer: Value) {
        self.slack
            .channels
            .lock()
            .unwrap()
            .insert(id.to_owned(), answer);
    }

    fn play(&self, step: Step) {
        self.script.send(step).unwrap();
    }

    async fn next_heard(&mut self) -> String {
        within(self.heard.recv()).await.unwrap()
    }
}

/// Guards a test from hanging; no timing is asserted.
async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("the test hung")
}

async fn api(
    State(slack): State<FakeSlack>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    {
        let mut limited = slack.limited.lock().unwrap();
        if limited.0 > 0 {
            limited.0 -= 1;
            let wait = limited.1.to_string();
            return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", wait)], "").into_response();
        }
    }
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let body: Value = match text("content-type").as_deref() {
        Some(t) if t.starts_with("application/json") => serde_json::from_slice(&body).unwrap(),
        Some(t) if t.starts_with("application/x-www-form-urlencoded") => {
            let fields: BTreeMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap();
            json!(fields)
        }
        _ => Value::Null,
    };
    slack.calls.lock().unwrap().push(Call {
        method: method.clone(),
        auth: text("authorization"),
        body: body.clone(),
    });
    let answer = match method.as_str() {
        "chat.postMessage" => match slack.refuse.lock().unwrap().clone() {
            Some(error) => json!({"ok": false, "error": error}),
            None => {
                json!({"ok": true, "channel": body["channel"], "ts": "1700000000.000500", "message": {}})
            }
        },
        "chat.update" => {
            json!({"ok": true, "channel": body["channel"], "ts": body["ts"], "text": body["text"]})
        }
        "files.getUploadURLExternal" => {
            json!({"ok": true, "upload_url": format!("{}/upload/F1", slack.base), "file_id": "F1"})
        }
        "files.completeUploadExternal" => json!({"ok": true, "files": [{"id": "F1"}]}),
        "conversations.open" => json!({"ok": true, "channel": {"id": "D9"}}),
        "conversations.info" => {
            let channels = slack.channels.lock().unwrap();
            let id = body["channel"].as_str().unwrap_or_default();
            channels
                .get(id)
                .cloned()
                .unwrap_or_else(|| json!({"ok": false, "error": "channel_not_found"}))
        }
        "auth.test" => {
            json!({"ok": true, "url": "https://example.slack.com/", "team": "Example", "user": "switchboard", "team_id": "T7", "user_id": "UB7", "bot_id": "B7"})
        }
        "apps.connections.open" => {
            let n = slack.opens.fetch_add(1, Ordering::SeqCst) + 1;
            let refuse = slack.refuse_opens.load(Ordering::SeqCst);
            if refuse > 0 {
                slack.refuse_opens.store(refuse - 1, Ordering::SeqCst);
                return axum::Json(json!({"ok": false, "error": "invalid_auth"})).into_response();
            }
            let ws = slack.base.replace("http://", "ws://");
            json!({"ok": true, "url": format!("{ws}/socket?ticket={n}")})
        }
        _ => json!({"ok": false, "error": "unknown_method"}),
    };
    axum::Json(answer).into_response()
}

async fn upload(
    State(slack): State<FakeSlack>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> &'static str {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    slack.uploads.lock().unwrap().push(Upload {
        file_id: id,
        auth,
        bytes: body.to_vec(),
    });
    "OK - 11"
}

#[tokio::test]
async fn replies_are_posted_in_their_thread_and_updated_in_place() {
    let server = Server::start().await;
    let adapter = SlackAdapter::new(server.config());
    let outlet = adapter.outlet();
    assert!(
        outlet.capabilities().buttons && outlet.capabilities().edits && outlet.capabilities().files
    );
    let to = Destination {
        room: "C1".into(),
        thread: Some("1700000000.000100".into()),
    };
    let posted = outlet
        .post(
            &to,
            &Reply::Accepted {
                execution: execution(5),
                ack: "Restarting".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        posted,
        Posted {
            room: "C1".into(),
            id: "1700000000.000500".into(),
            thread: Some("1700000000.000100".into())
        }
    );
    outlet
        .update(
            &posted,
            &Reply::Text {
                text: "done".into(),
            },
        )
        .await
        .unwrap();

    let post = &server.calls("chat.postMessage")[0];
    assert_eq!(post.auth.as_deref(), Some("Bearer xoxb-test"));
    assert_eq!(post.body["channel"], "C1");
    assert_eq!(post.body["thread_ts"], "1700000000.000100");
    assert_eq!(
        post.body["text"],
        "Restarting (host.restart #5 (https://sb.example.com/executions/5))"
    );
    assert_eq!(post.body["blocks"][0]["type"], "section");
    let update = &server.calls("chat.update")[0];
    assert_eq!(update.body["channel"], "C1");
    assert_eq!(update.body["ts"], "1700000000.000500");
    assert_eq!(update.body["blocks"][0]["text"]["text"], "done");
    assert_eq!(update.body.get("thread_ts"), None);
}

#[tokio::test]
async fn a_file_is_uploaded_in_three_steps_into_the_thread() {
    let server = Server::start().await;
    let outlet = SlackAdapter::new(server.config()).outlet();
    let to = Destination {
        room: "C1".into(),
        thread: Some("1700000000.000100".into()),
    };
    let file = Attachment {
        filename: "output-42.txt".into(),
        content_type: "text/plain".into(),
        title: "Output of #42".into(),
        bytes: b"line 1\nline 2\n".to_vec(),
    };
    outlet.upload(&to, &file).await.unwrap();

    assert_eq!(
        server.all_methods(),
        ["files.getUploadURLExternal", "files.completeUploadExternal"]
    );
    let get = &server.calls("files.getUploadURLExternal")[0];
    assert_eq!(
        get.body,
        json!({"filename": "output-42.txt", "length": "14"})
    );
    let uploads = server.slack.uploads.lock().unwrap().clone();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].file_id, "F1");
    assert_eq!(uploads[0].auth, None, "the bot token stays with the API");
    assert_eq!(uploads[0].bytes, file.bytes);
    let complete = &server.calls("files.completeUploadExternal")[0];
    assert_eq!(complete.body["channel_id"], "C1");
    assert_eq!(complete.body["thread_ts"], "1700000000.000100");
    let files: Value = serde_json::from_str(complete.body["files"].as_str().unwrap()).unwrap();
    assert_eq!(files, json!([{"id": "F1", "title": "Output of #42"}]));
}

#[tokio::test]
async fn a_direct_message_opens_the_conversation_first() {
    let server = Server::start().await;
    let outlet = SlackAdapter::new(server.config()).outlet();
    let user = ChatIdentity::new("slack", "T1", "U9").unwrap();
    outlet
        .direct(
            &user,
            &Reply::Text {
                text: "Your link code is 123456".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        server.all_methods(),
        ["conversations.open", "chat.postMessage"]
    );
    assert_eq!(
        server.calls("conversations.open")[0].body,
        json!({"users": "U9"})
    );
    let post = &server.calls("chat.postMessage")[0];
    assert_eq!(post.body["channel"], "D9");
    assert_eq!(post.body.get("thread_ts"), None);

    let elsewhere = ChatIdentity::new("mattermost", "chat.example.com", "u9").unwrap();
    assert!(matches!(
        outlet
            .direct(&elsewhere, &Reply::Text { text: "x".into() })
            .await,
        Err(OutletError::Unsupported(_))
    ));
}

#[tokio::test]
async fn slacks_refusal_is_reported_with_its_error() {
    let server = Server::start().await;
    *server.slack.refuse.lock().unwrap() = Some("not_in_channel".into());
    let outlet = SlackAdapter::new(server.config()).outlet();
    let to = Destination {
        room: "C1".into(),
        thread: None,
    };
    match outlet.post(&to, &Reply::Text { text: "hi".into() }).await {
        Err(OutletError::Refused(error)) => assert_eq!(error, "not_in_channel"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_rate_limited_reply_waits_as_told_and_is_delivered_once() {
    let server = Server::start().await;
    *server.slack.limited.lock().unwrap() = (1, 1);
    let outlet = SlackAdapter::new(server.config()).outlet();
    let to = Destination {
        room: "C1".into(),
        thread: None,
    };
    let started = Instant::now();
    outlet
        .post(&to, &Reply::Text { text: "hi".into() })
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );
    assert_eq!(server.calls("chat.postMessage").len(), 1);
}

#[tokio::test]
async fn a_rate_limit_longer_than_allowed_fails_the_delivery_at_once() {
    let server = Server::start().await;
    *server.slack.limited.lock().unwrap() = (1, 3600);
    let outlet = SlackAdapter::new(server.config()).outlet();
    let to = Destination {
        room: "C1".into(),
        thread: None,
    };
    match outlet.post(&to, &Reply::Text { text: "hi".into() }).await {
        Err(OutletError::Unreachable(e)) => assert!(e.contains("rate limited"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(server.calls("chat.postMessage").is_empty());
}

#[tokio::test]
async fn the_bots_identity_is_learned_from_auth_test() {
    let server = Server::start().await;
    let adapter = SlackAdapter::new(SlackConfig {
        bot_user_id: None,
        team_id: None,
        ..server.config()
    });
    assert_eq!(adapter.bot_user_id(), None);
    adapter.learn_identity().await.unwrap();
    assert_eq!(adapter.bot_user_id(), Some("UB7"));
    assert_eq!(adapter.team_id(), Some("T7"));
    assert_eq!(
        server.calls("auth.test")[0].auth.as_deref(),
        Some("Bearer xoxb-test")
    );
    // Now its mention is recognised in direct messages.
    let body = json!({
        "type": "event_callback", "event_id": "Ev9",
        "event": {"type": "message", "channel_type": "im", "user": "U1", "text": "<@UB7> uptime", "channel": "D1", "ts": "1.1"},
    });
    let m = only(adapter.webhook("events", &signed(body.to_string()), now()));
    assert_eq!((m.text.as_str(), m.mentioned), ("uptime", true));
    assert_eq!(m.sender.to_string(), "slack:T7/U1");
}

// ------------------------------------------------------------ room names

/// What `adapter` makes of an event, as the http route hands it on:
/// translated, then completed.
async fn heard_via(adapter: &SlackAdapter, event_json: Value) -> Inbound {
    let m = only(adapter.webhook("events", &signed(event(event_json)), now()));
    adapter.complete(m).await
}

fn mention_in(channel: &str) -> Value {
    json!({"type": "app_mention", "user": "U1", "text": "<@UBOT> uptime", "channel": channel, "ts": "1.1"})
}

fn message_in(channel: &str) -> Value {
    json!({"type": "message", "channel_type": "channel", "user": "U1", "text": "!uptime", "channel": channel, "ts": "1.2"})
}

#[tokio::test]
async fn an_events_room_is_named_by_conversations_info_once_per_channel() {
    let server = Server::start().await;
    server.channel("C1", "ops");
    server.channel("C2", "deploys");
    let adapter = SlackAdapter::new(server.config());

    let first = only(adapter.webhook("events", &signed(event(mention_in("C1"))), now()));
    assert_eq!(first.room.name, None, "the event itself names no room");
    assert_eq!(first.origin().unwrap().as_str(), "chat:slack:C1");
    let first = adapter.complete(first).await;
    assert_eq!(first.room.name.as_deref(), Some("#ops"));
    assert_eq!(first.room.id, "C1", "replies still go to the channel id");
    assert!(!first.room.direct);
    assert_eq!(first.origin().unwrap().as_str(), "chat:slack:#ops");
    let calls = server.calls("conversations.info");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].body, json!({"channel": "C1"}));
    assert_eq!(calls[0].auth.as_deref(), Some("Bearer xoxb-test"));

    // The next message in that channel is named from memory…
    let second = heard_via(&adapter, message_in("C1")).await;
    assert_eq!(second.origin().unwrap().as_str(), "chat:slack:#ops");
    assert_eq!(server.calls("conversations.info").len(), 1);
    // …and another channel is asked about once.
    for _ in 0..2 {
        let m = heard_via(&adapter, mention_in("C2")).await;
        assert_eq!(m.room.name.as_deref(), Some("#deploys"));
    }
    assert_eq!(server.calls("conversations.info").len(), 2);
}

#[tokio::test]
async fn rooms_that_are_named_or_direct_already_are_not_looked_up() {
    let server = Server::start().await;
    server.channel("C1", "ops");
    let adapter = SlackAdapter::new(server.config());
    let dm = heard_via(
        &adapter,
        json!({"type": "message", "channel_type": "im", "user": "U1", "text": "uptime", "channel": "D1", "ts": "1.1"}),
    )
    .await;
    assert!(dm.room.direct);
    assert_eq!(dm.room.name, None);
    let command = form(&[
        ("team_id", "T1"),
        ("channel_id", "C1"),
        ("channel_name", "ops"),
        ("user_id", "U1"),
        ("text", "uptime"),
    ]);
    let m = only(adapter.webhook("commands", &signed(command), now()));
    let m = adapter.complete(m).await;
    assert_eq!(m.room.name.as_deref(), Some("#ops"));
    let m = only(press_on(&adapter, &block_actions("approve", "42", None)));
    assert_eq!(adapter.complete(m).await.room.name.as_deref(), Some("#ops"));
    assert!(server.calls("conversations.info").is_empty());

    // A private channel that a slash command calls `privategroup` is named
    // by Slack instead.
    server.channel("G1", "secret-ops");
    let command = form(&[
        ("team_id", "T1"),
        ("channel_id", "G1"),
        ("channel_name", "privategroup"),
        ("user_id", "U1"),
        ("text", "uptime"),
    ]);
    let m = only(adapter.webhook("commands", &signed(command), now()));
    assert_eq!(m.room.name, None);
    let m = adapter.complete(m).await;
    assert_eq!(m.origin().unwrap().as_str(), "chat:slack:#secret-ops");
}

#[tokio::test]
async fn a_direct_conversation_found_by_lookup_is_marked_direct() {
    let server = Server::start().await;
    server.answer_info(
        "D5",
        json!({"ok": true, "channel": {"id": "D5", "created": 1, "is_im": true, "is_org_shared": false, "user": "U1", "is_user_deleted": false, "priority": 0}}),
    );
    let adapter = SlackAdapter::new(server.config());
    // A `message` event without `channel_type`: nothing says it is direct.
    let m = heard_via(
        &adapter,
        json!({"type": "message", "user": "U1", "text": "uptime", "channel": "D5", "ts": "1.1"}),
    )
    .await;
    assert!(m.room.direct);
    assert_eq!(m.room.name, None);
    assert_eq!(m.origin().unwrap().as_str(), "chat:slack:D5");
}

#[tokio::test]
async fn a_failing_lookup_leaves_the_room_unnamed_and_never_fails_the_message() {
    let server = Server::start().await;
    server.answer_info(
        "C7",
        json!({"ok": false, "error": "missing_scope", "needed": "channels:read", "provided": "chat:write"}),
    );
    server.answer_info(
        "C8",
        json!({"ok": true, "channel": {"id": "C8", "name": "ops room", "is_im": false}}),
    );
    server.answer_info("C9", json!({"ok": true}));
    let adapter = SlackAdapter::new(server.config());
    for channel in ["C6", "C7", "C8", "C9"] {
        // C6: `channel_not_found`; C7: `missing_scope`; C8: a name that is
        // not one; C9: an answer without the channel.
        let m = heard_via(&adapter, mention_in(channel)).await;
        assert_eq!(m.room.name, None, "{channel}");
        assert!(!m.room.direct, "{channel}");
        assert_eq!(m.text, "uptime");
        assert_eq!(
            m.origin().unwrap().as_str(),
            format!("chat:slack:{channel}")
        );
    }
    assert_eq!(server.calls("conversations.info").len(), 4);
    // Slack's refusals are remembered for a while: no second call.
    for channel in ["C6", "C7", "C8"] {
        assert_eq!(
            heard_via(&adapter, mention_in(channel)).await.room.name,
            None
        );
    }
    assert_eq!(server.calls("conversations.info").len(), 4);

    // Slack out of reach: unnamed, at once.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}/api", listener.local_addr().unwrap());
    drop(listener);
    let unreachable = SlackAdapter::new(SlackConfig {
        api_base: closed,
        ..config()
    });
    let m = heard_via(&unreachable, mention_in("C1")).await;
    assert_eq!(m.room.name, None);
    assert_eq!(m.origin().unwrap().as_str(), "chat:slack:C1");
}

#[tokio::test]
async fn a_rate_limited_lookup_is_not_waited_for_and_is_tried_again_next_time() {
    let server = Server::start().await;
    server.channel("C1", "ops");
    *server.slack.limited.lock().unwrap() = (1, 20);
    let adapter = SlackAdapter::new(server.config());
    let started = Instant::now();
    let m = heard_via(&adapter, mention_in("C1")).await;
    assert_eq!(m.room.name, None);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the message waited for the rate limit"
    );
    let m = heard_via(&adapter, mention_in("C1")).await;
    assert_eq!(m.room.name.as_deref(), Some("#ops"));
}

#[tokio::test]
async fn names_are_asked_again_after_a_while_and_memory_is_bounded() {
    let server = Server::start().await;
    server.channel("C1", "ops");
    let adapter = SlackAdapter::new(SlackConfig {
        room_name_ttl: Duration::from_millis(50),
        ..server.config()
    });
    assert_eq!(
        heard_via(&adapter, mention_in("C1"))
            .await
            .room
            .name
            .as_deref(),
        Some("#ops")
    );
    server.channel("C1", "ops-old");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        heard_via(&adapter, mention_in("C1"))
            .await
            .room
            .name
            .as_deref(),
        Some("#ops-old")
    );
    assert_eq!(server.calls("conversations.info").len(), 2);

    let rooms = adapter.rooms();
    rooms.fill(super::rooms::MAX_REMEMBERED - rooms.remembered());
    assert_eq!(rooms.remembered(), super::rooms::MAX_REMEMBERED);
    server.channel("C2", "deploys");
    let m = heard_via(&adapter, mention_in("C2")).await;
    assert_eq!(m.room.name.as_deref(), Some("#deploys"));
    assert_eq!(rooms.remembered(), 1, "full memory is forgotten at once");
}

// ---------------------------------------------------------- Socket Mode

async fn socket(ws: WebSocketUpgrade, State(slack): State<FakeSlack>) -> Response {
    ws.on_upgrade(move |socket| serve_socket(socket, slack))
}

/// Plays the script to one connection; steps after a `Drop` go to the next.
async fn serve_socket(mut socket: WebSocket, slack: FakeSlack) {
    let hello = json!({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A1"}});
    if socket
        .send(WsMessage::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let mut script = slack.script.lock().await;
    loop {
        tokio::select! {
            step = script.recv() => match step {
                None | Some(Step::Drop) => return,
                Some(Step::Send(v)) => {
                    let _ = socket.send(WsMessage::Text(v.to_string().into())).await;
                }
                Some(Step::SendThenAwaitClose(v)) => {
                    let _ = socket.send(WsMessage::Text(v.to_string().into())).await;
                    while let Some(Ok(m)) = socket.recv().await {
                        hear(&slack, m);
                    }
                    return;
                }
                Some(Step::Ping) => {
                    let _ = socket.send(WsMessage::Ping(Bytes::from_static(b"are you there"))).await;
                }
                Some(Step::Silent) => {
                    drop(script);
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    return;
                }
            },
            message = socket.recv() => match message {
                Some(Ok(m)) => hear(&slack, m),
                _ => return,
            },
        }
    }
}

fn hear(slack: &FakeSlack, message: WsMessage) {
    match message {
        WsMessage::Text(text) => {
            let ack: Value = serde_json::from_str(text.as_str()).unwrap();
            let _ = slack
                .heard
                .send(ack["envelope_id"].as_str().unwrap().to_owned());
        }
        WsMessage::Pong(data) if &data[..] == b"are you there" => {
            let _ = slack.heard.send("pong".to_owned());
        }
        _ => {}
    }
}

/// A handler that passes what it is given to the test.
struct Recorder(mpsc::UnboundedSender<Inbound>);

#[async_trait]
impl ChatHandler for Recorder {
    async fn handle(&self, inbound: Inbound, _outlet: Arc<dyn ChatOutlet>) {
        let _ = self.0.send(inbound);
    }
}

struct Connected {
    inbound: mpsc::UnboundedReceiver<Inbound>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Connected {
    fn start(config: SlackConfig) -> Self {
        let (tx, inbound) = mpsc::unbounded_channel();
        let (stop, stop_rx) = watch::channel(false);
        let adapter = Arc::new(SlackAdapter::new(config));
        let handler: Arc<dyn ChatHandler> = Arc::new(Recorder(tx));
        let task = tokio::spawn(async move { adapter.connect(handler, stop_rx).await });
        Self {
            inbound,
            stop,
            task,
        }
    }

    async fn next(&mut self) -> Inbound {
        within(self.inbound.recv()).await.unwrap()
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        within(self.task).await.unwrap();
    }
}

fn events_envelope(id: &str, text: &str) -> Value {
    json!({
        "envelope_id": id,
        "type": "events_api",
        "accepts_response_payload": false,
        "retry_attempt": 0,
        "retry_reason": "",
        "payload": {
            "token": "x", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
            "event_id": format!("Ev-{id}"), "event_time": NOW,
            "event": {"type": "app_mention", "user": "U1", "text": format!("<@UBOT> {text}"), "channel": "C1", "ts": "1.1"},
        },
    })
}

#[tokio::test]
async fn socket_mode_acknowledges_envelopes_and_hands_their_messages_on() {
    let mut server = Server::start().await;
    let mut connected = Connected::start(server.config());
    server.play(Step::Send(events_envelope("e1", "uptime")));
    server.play(Step::Send(json!({
        "envelope_id": "e2", "type": "slash_commands", "accepts_response_payload": true,
        "payload": {
            "token": "x", "team_id": "T1", "team_domain": "example", "channel_id": "C1",
            "channel_name": "ops", "user_id": "U1", "user_name": "alice", "command": "/sb",
            "text": "status 42", "api_app_id": "A1", "is_enterprise_install": "false",
            "response_url": "https://hooks.slack.com/commands/1", "trigger_id": "1.2.3",
        },
    })));
    server.play(Step::Send(json!({
        "envelope_id": "e3", "type": "interactive", "accepts_response_payload": false,
        "payload": block_actions("approve", "42", None),
    })));
    server.play(Step::Ping);

    let mut heard = Vec::new();
    for _ in 0..4 {
        heard.push(server.next_heard().await);
    }
    heard.sort();
    assert_eq!(heard, ["e1", "e2", "e3", "pong"]);
    let mut texts = Vec::new();
    for _ in 0..3 {
        let m = connected.next().await;
        assert_eq!(
            m.sender.to_string(),
            if m.text == "approve 42" {
                "slack:T1/U2"
            } else {
                "slack:T1/U1"
            }
        );
        texts.push(m.text);
    }
    texts.sort();
    assert_eq!(texts, ["approve 42", "status 42", "uptime"]);
    assert_eq!(
        server.calls("apps.connections.open")[0].auth.as_deref(),
        Some("Bearer xapp-test")
    );
    connected.stop().await;
}

#[tokio::test]
async fn socket_mode_messages_arrive_with_their_room_named() {
    let server = Server::start().await;
    server.channel("C1", "ops");
    let mut connected = Connected::start(server.config());
    server.play(Step::Send(events_envelope("e1", "uptime")));
    let m = connected.next().await;
    assert_eq!(m.text, "uptime");
    assert_eq!(m.room.name.as_deref(), Some("#ops"));
    assert_eq!(m.origin().unwrap().as_str(), "chat:slack:#ops");
    server.play(Step::Send(events_envelope("e2", "again")));
    assert_eq!(connected.next().await.room.name.as_deref(), Some("#ops"));
    assert_eq!(server.calls("conversations.info").len(), 1);
    connected.stop().await;
}

#[tokio::test]
async fn a_dropped_connection_is_opened_again_and_the_next_envelope_arrives() {
    let mut server = Server::start().await;
    let mut connected = Connected::start(server.config());
    server.play(Step::Send(events_envelope("e1", "one")));
    assert_eq!(connected.next().await.text, "one");
    assert_eq!(server.next_heard().await, "e1");
    server.play(Step::Drop);
    server.play(Step::Send(events_envelope("e2", "two")));
    assert_eq!(connected.next().await.text, "two");
    assert_eq!(server.next_heard().await, "e2");
    assert_eq!(server.slack.opens.load(Ordering::SeqCst), 2);
    connected.stop().await;
}

#[tokio::test]
async fn slacks_disconnect_opens_a_new_connection() {
    let server = Server::start().await;
    let mut connected = Connected::start(server.config());
    server.play(Step::SendThenAwaitClose(json!({
        "type": "disconnect", "reason": "refresh_requested", "debug_info": {"host": "applink-1"},
    })));
    server.play(Step::Send(events_envelope("e1", "after refresh")));
    assert_eq!(connected.next().await.text, "after refresh");
    assert_eq!(server.slack.opens.load(Ordering::SeqCst), 2);
    connected.stop().await;
}

#[tokio::test]
async fn a_connection_that_stops_answering_is_given_up_and_opened_again() {
    let server = Server::start().await;
    let mut connected = Connected::start(SlackConfig {
        keepalive: Duration::from_millis(50),
        ..server.config()
    });
    server.play(Step::Silent);
    server.play(Step::Send(events_envelope("e1", "still here")));
    assert_eq!(connected.next().await.text, "still here");
    assert!(server.slack.opens.load(Ordering::SeqCst) >= 2);
    connected.stop().await;
}

#[tokio::test]
async fn socket_mode_keeps_asking_while_slack_refuses_to_open_a_connection() {
    let server = Server::start().await;
    server.slack.refuse_opens.store(2, Ordering::SeqCst);
    let mut connected = Connected::start(server.config());
    server.play(Step::Send(events_envelope("e1", "at last")));
    assert_eq!(connected.next().await.text, "at last");
    assert_eq!(server.slack.opens.load(Ordering::SeqCst), 3);
    connected.stop().await;
}

#[tokio::test]
async fn without_an_app_token_connect_returns_at_once() {
    let handler: Arc<dyn ChatHandler> = Arc::new(Recorder(mpsc::unbounded_channel().0));
    let (_stop, stop_rx) = watch::channel(false);
    within(adapter().connect(handler, stop_rx)).await;
}
