//! Tests of the Mattermost adapter. Mattermost cannot run here, so the
//! server side is a local axum server that speaks the documented API v4
//! and websocket formats and records what it was sent.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use proptest::prelude::*;
use serde_json::{Value, json};
use switchboard_core::Timestamp;
use switchboard_core::chat::{
    AlertCard, Attachment, Button, ButtonStyle, ChatHandler, ChatIdentity, ChatOutlet, Destination,
    Inbound, OutletError, Posted, Reply,
};
use switchboard_core::execution::ExecutionStatus;
use switchboard_core::secret::Secret;
use tokio::sync::{mpsc, watch};

use super::hooks::is_direct_channel_name;
use super::render::{patch_body, post_body};
use super::websocket::{strip_mention, websocket_url};
use super::*;
use crate::chat::testing::{approval, execution, file_ref, only_inbound, refused};
use crate::chat::{ChatAdapter, HookRequest};

// ---------------------------------------------------------------- helpers

const NOW_MS: i64 = 1_764_000_000_000;
const NOW: Timestamp = Timestamp(NOW_MS * 1000);
const ALICE: &str = "aoa1agao6t8fmx3ikt1j9w5ybw";
const BOT: &str = "bot1agao6t8fmx3ikt1j9w5ybw";
const CHANNEL: &str = "jux16pkewjrkfj3ehep1psxyxc";
const ACTIONS_URL: &str = "https://sb.example/chat/mattermost/actions";

fn config(url: &str) -> MattermostConfig {
    let mut c = MattermostConfig::new(url, Secret::new("bot-token".into()), "chat.example.com");
    c.command_tokens = vec![Secret::new("cmd-one".into()), Secret::new("cmd-two".into())];
    c.webhook_tokens = vec![Secret::new("hook-token".into())];
    c.bot_user_id = Some(BOT.into());
    c.actions_url = Some(ACTIONS_URL.into());
    c.reconnect_min = Duration::from_millis(5);
    c.reconnect_max = Duration::from_millis(20);
    c.max_rate_limit_wait = Duration::from_millis(20);
    c
}

fn adapter() -> MattermostAdapter {
    MattermostAdapter::new(config("https://chat.example.com"))
}

fn form(pairs: &[(&str, &str)]) -> HookRequest {
    let body = serde_urlencoded::to_string(pairs).unwrap();
    HookRequest {
        headers: BTreeMap::from([(
            "content-type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        )]),
        body: body.into(),
    }
}

fn json_request(value: &Value) -> HookRequest {
    HookRequest {
        headers: BTreeMap::from([("content-type".to_owned(), "application/json".to_owned())]),
        body: value.to_string().into(),
    }
}

fn slash(token: &str, channel_name: &str) -> HookRequest {
    form(&[
        ("channel_id", CHANNEL),
        ("channel_name", channel_name),
        ("command", "/sb"),
        ("response_url", "https://chat.example.com/hooks/commands/x"),
        ("team_domain", "ops"),
        ("team_id", "carya1qs77bemjup96ff538snh"),
        ("text", " host.logs web-1 "),
        ("token", token),
        ("trigger_id", "trigger-1"),
        ("user_id", ALICE),
        ("user_name", "alice"),
    ])
}

fn outgoing_fields(token: &str, timestamp_ms: i64) -> Vec<(&'static str, String)> {
    vec![
        ("channel_id", CHANNEL.into()),
        ("channel_name", "town-square".into()),
        ("team_domain", "ops".into()),
        ("team_id", "kwoknj9nwpypzgzy78wkw516qe".into()),
        ("post_id", "axdygg1957njfe5pu38saikdho".into()),
        ("text", "!sb uptime web-1".into()),
        ("timestamp", timestamp_ms.to_string()),
        ("token", token.into()),
        ("trigger_word", "!sb".into()),
        ("user_id", ALICE.into()),
        ("user_name", "alice".into()),
        ("file_ids", String::new()),
    ]
}

fn outgoing_form(token: &str, timestamp_ms: i64) -> HookRequest {
    let fields = outgoing_fields(token, timestamp_ms);
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    form(&pairs)
}

fn outgoing_json(token: &str, timestamp_ms: i64) -> HookRequest {
    let mut object = serde_json::Map::new();
    for (k, v) in outgoing_fields(token, timestamp_ms) {
        object.insert(k.to_owned(), json!(v));
    }
    // Mattermost sends the timestamp as a number in JSON.
    object.insert("timestamp".into(), json!(timestamp_ms));
    json_request(&Value::Object(object))
}

/// The button press Mattermost would send for the `index`th button of a
/// rendered post.
fn press(rendered: &Value, index: usize, post_id: &str) -> Value {
    let context =
        rendered["props"]["attachments"][0]["actions"][index]["integration"]["context"].clone();
    assert!(context.is_object(), "no button {index} in {rendered}");
    json!({
        "user_id": ALICE,
        "user_name": "alice",
        "channel_id": CHANNEL,
        "channel_name": "town-square",
        "team_id": "kwoknj9nwpypzgzy78wkw516qe",
        "team_domain": "ops",
        "post_id": post_id,
        "trigger_id": "trigger-9",
        "type": "button",
        "data_source": "",
        "context": context,
    })
}

// ---------------------------------------------------------- slash commands

#[test]
fn a_slash_command_with_a_listed_token_becomes_a_mentioned_message() {
    let a = adapter();
    for token in ["cmd-one", "cmd-two"] {
        let r = a.webhook("commands", &slash(token, "town-square"), NOW);
        let m = only_inbound(&r);
        assert_eq!(
            m.sender.to_string(),
            format!("mattermost:chat.example.com/{ALICE}")
        );
        assert_eq!(m.sender_name.as_deref(), Some("alice"));
        assert_eq!(m.text, "host.logs web-1");
        assert!(m.mentioned);
        assert_eq!(m.room.id, CHANNEL);
        assert_eq!(m.room.name.as_deref(), Some("~town-square"));
        assert!(!m.room.direct);
        assert_eq!(m.delivery_id.as_deref(), Some("trigger-1"));
        assert_eq!(m.message_id, None);
        assert_eq!(m.origin().unwrap().as_str(), "chat:mattermost:~town-square");
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["response_type"], "ephemeral");
        assert_eq!(body["text"], "Received `/sb host.logs web-1`.");
        assert_eq!(r.content_type, "application/json");
    }
}

#[test]
fn a_slash_command_with_a_wrong_or_missing_token_is_refused() {
    let a = adapter();
    let r = a.webhook("commands", &slash("cmd-three", "town-square"), NOW);
    refused(&r, 401, "not one of `chat.mattermost.command_tokens`");
    assert_eq!(
        r.rejection.unwrap().claimed_sender,
        None,
        "a request without the right token is anyone's: its claim is not recorded"
    );
    refused(
        &a.webhook("commands", &slash("", "town-square"), NOW),
        401,
        "no token",
    );
    // A webhook token is not a slash command token.
    refused(
        &a.webhook("commands", &slash("hook-token", "x"), NOW),
        401,
        "token",
    );
}

#[test]
fn slash_commands_are_refused_when_no_command_token_is_configured() {
    let mut c = config("https://chat.example.com");
    c.command_tokens.clear();
    let a = MattermostAdapter::new(c);
    refused(
        &a.webhook("commands", &slash("cmd-one", "x"), NOW),
        401,
        "is empty",
    );
}

#[test]
fn the_token_may_come_in_the_authorization_header() {
    let mut req = slash("", "town-square");
    req.headers
        .insert("authorization".into(), "Token cmd-two".into());
    only_inbound(&adapter().webhook("commands", &req, NOW));
}

#[test]
fn a_slash_command_in_a_direct_channel_is_direct() {
    let dm = format!("{ALICE}__{BOT}");
    let r = adapter().webhook("commands", &slash("cmd-one", &dm), NOW);
    assert!(only_inbound(&r).room.direct);
}

#[test]
fn direct_channel_names_are_two_user_ids() {
    assert!(is_direct_channel_name(&format!("{ALICE}__{BOT}")));
    for name in [
        "town-square",
        "a__b",
        "",
        "__",
        // A group message's name is a 40-character hash.
        "2e5fe4f0aa0c4b3b8b1e3e2e1d3a3d2a5c4b3a2e",
        &format!("{ALICE}__{BOT}__x"),
        &format!("{}__{BOT}", ALICE.to_uppercase()),
    ] {
        assert!(!is_direct_channel_name(name), "{name}");
    }
}

// -------------------------------------------------------- outgoing webhooks

#[test]
fn outgoing_webhooks_in_form_and_json_give_the_same_message() {
    let a = adapter();
    let from_form = a.webhook("webhook", &outgoing_form("hook-token", NOW_MS - 2000), NOW);
    let from_json = a.webhook("webhook", &outgoing_json("hook-token", NOW_MS - 2000), NOW);
    let m = only_inbound(&from_form);
    assert_eq!(m, only_inbound(&from_json));
    assert_eq!(m.text, "uptime web-1", "the trigger word is removed");
    assert!(m.mentioned);
    assert!(!m.sender_is_bot);
    assert_eq!(m.delivery_id.as_deref(), Some("axdygg1957njfe5pu38saikdho"));
    assert_eq!(m.message_id.as_deref(), Some("axdygg1957njfe5pu38saikdho"));
    assert_eq!(
        m.reply_to().thread.as_deref(),
        Some("axdygg1957njfe5pu38saikdho")
    );
    assert_eq!(m.room.name.as_deref(), Some("~town-square"));
    assert_eq!(from_form.body, "", "replies go through the REST API");
}

#[test]
fn only_a_leading_trigger_word_is_removed() {
    let a = adapter();
    for (text, trigger, expected) in [
        ("!SB uptime", "!sb", "uptime"),
        ("uptime web-1", "", "uptime web-1"),
        ("deploy !sb now", "!sb", "deploy !sb now"),
        ("é", "!sb", "é"),
    ] {
        let mut fields = outgoing_fields("hook-token", NOW_MS);
        for (k, v) in &mut fields {
            match *k {
                "text" => *v = text.into(),
                "trigger_word" => *v = trigger.into(),
                _ => {}
            }
        }
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = a.webhook("webhook", &form(&pairs), NOW);
        assert_eq!(only_inbound(&r).text, expected);
    }
}

#[test]
fn an_outgoing_webhook_with_a_wrong_token_is_refused() {
    let a = adapter();
    refused(
        &a.webhook("webhook", &outgoing_form("cmd-one", NOW_MS), NOW),
        401,
        "`chat.mattermost.webhook_tokens`",
    );
    refused(
        &a.webhook("webhook", &outgoing_json("", NOW_MS), NOW),
        401,
        "no token",
    );
}

#[test]
fn an_old_outgoing_webhook_is_refused_as_a_replay() {
    let a = adapter();
    let six_minutes = 6 * 60 * 1000;
    refused(
        &a.webhook(
            "webhook",
            &outgoing_form("hook-token", NOW_MS - six_minutes),
            NOW,
        ),
        401,
        "replay",
    );
    refused(
        &a.webhook(
            "webhook",
            &outgoing_json("hook-token", NOW_MS + six_minutes),
            NOW,
        ),
        401,
        "replay",
    );
    // Within the window, and in seconds as an old documentation example shows.
    only_inbound(&a.webhook(
        "webhook",
        &outgoing_form("hook-token", NOW_MS - 60_000),
        NOW,
    ));
    only_inbound(&a.webhook(
        "webhook",
        &outgoing_form("hook-token", NOW_MS / 1000 - 60),
        NOW,
    ));
    let mut fields = outgoing_fields("hook-token", 0);
    fields.retain(|(k, _)| *k != "timestamp");
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    refused(&a.webhook("webhook", &form(&pairs), NOW), 400, "timestamp");
}

#[test]
fn the_bots_own_posts_by_outgoing_webhook_are_marked_as_a_bots() {
    let mut fields = outgoing_fields("hook-token", NOW_MS);
    for (k, v) in &mut fields {
        if *k == "user_id" {
            *v = BOT.into();
        }
    }
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = adapter().webhook("webhook", &form(&pairs), NOW);
    assert!(only_inbound(&r).sender_is_bot);
}

// ----------------------------------------------------------------- buttons

#[test]
fn a_pressed_approval_button_becomes_approve_or_reject_in_its_thread() {
    let a = adapter();
    let c = config("https://chat.example.com");
    let to = Destination {
        room: CHANNEL.into(),
        thread: Some("rootpost".into()),
    };
    let rendered = post_body(&c, &to, &approval(42));
    let r = a.webhook(
        "actions",
        &json_request(&press(&rendered, 0, "approvalpost")),
        NOW,
    );
    let m = only_inbound(&r);
    assert_eq!(m.text, "approve 42");
    assert!(m.mentioned);
    assert_eq!(m.thread.as_deref(), Some("rootpost"));
    assert_eq!(m.sender.user, ALICE);
    assert_eq!(m.delivery_id.as_deref(), Some("trigger-9"));
    assert_eq!(r.body, "{}");

    // At the top of a room, the answer threads under the approval post.
    let top = Destination {
        room: CHANNEL.into(),
        thread: None,
    };
    let rendered = post_body(&c, &top, &approval(7));
    let r = a.webhook(
        "actions",
        &json_request(&press(&rendered, 1, "approvalpost")),
        NOW,
    );
    let m = only_inbound(&r);
    assert_eq!(m.text, "reject 7");
    assert_eq!(m.thread.as_deref(), Some("approvalpost"));
}

#[test]
fn a_forged_button_press_is_refused() {
    let a = adapter();
    let c = config("https://chat.example.com");
    let to = Destination {
        room: CHANNEL.into(),
        thread: None,
    };
    let rendered = post_body(&c, &to, &approval(42));
    let genuine = press(&rendered, 1, "p");

    // Another execution, the other action, another thread: the signature no longer fits.
    for (key, value) in [
        ("execution", "43"),
        ("action", "approve"),
        ("root", "elsewhere"),
    ] {
        let mut forged = genuine.clone();
        forged["context"][key] = json!(value);
        refused(
            &a.webhook("actions", &json_request(&forged), NOW),
            401,
            "signature does not match",
        );
    }
    let mut unsigned = genuine.clone();
    unsigned["context"].as_object_mut().unwrap().remove("mac");
    refused(
        &a.webhook("actions", &json_request(&unsigned), NOW),
        401,
        "no signature",
    );

    // Signed with another key.
    let mut other = config("https://chat.example.com");
    other.action_secret = Secret::new("another-secret".into());
    let foreign = press(&post_body(&other, &to, &approval(42)), 0, "p");
    refused(
        &a.webhook("actions", &json_request(&foreign), NOW),
        401,
        "signature does not match",
    );
    only_inbound(&a.webhook("actions", &json_request(&genuine), NOW));
}

#[test]
fn an_alert_cards_buttons_say_their_commands_and_cannot_be_made_to_say_another() {
    let card = Reply::Alert {
        card: AlertCard {
            title: "[FIRING:1] DiskFull".into(),
            firing: true,
            group: "0668fc525e22".into(),
            alerts: Vec::new(),
            more: 0,
            acknowledged: None,
            links: Vec::new(),
            buttons: vec![Button {
                label: "Ack".into(),
                command: "ack 0668fc525e22".into(),
                style: ButtonStyle::Primary,
            }],
        },
    };
    let top = Destination {
        room: CHANNEL.into(),
        thread: None,
    };
    let a = adapter();
    let rendered = post_body(&config("https://chat.example.com"), &top, &card);
    assert!(
        !rendered["message"].as_str().unwrap().contains("Say `ack"),
        "{rendered}"
    );
    let genuine = press(&rendered, 0, "cardpost");
    let r = a.webhook("actions", &json_request(&genuine), NOW);
    let m = only_inbound(&r);
    assert_eq!(m.text, "ack 0668fc525e22");
    assert_eq!(m.thread.as_deref(), Some("cardpost"));

    let mut forged = genuine.clone();
    forged["context"]["command"] = json!("automate 0668fc525e22 wipe-disks");
    refused(
        &a.webhook("actions", &json_request(&forged), NOW),
        401,
        "signature does not match",
    );

    // Without a callback URL there are no buttons: the text says the commands.
    let mut plain = config("https://chat.example.com");
    plain.actions_url = None;
    let rendered = post_body(&plain, &top, &card);
    assert!(rendered.get("props").is_none(), "{rendered}");
    assert!(
        rendered["message"]
            .as_str()
            .unwrap()
            .ends_with("Say `ack 0668fc525e22`."),
        "{rendered}"
    );
}

// ------------------------------------------------------- malformed requests

#[test]
fn malformed_requests_are_answered_400_with_the_reason() {
    let a = adapter();
    let mut bad_json = outgoing_json("hook-token", NOW_MS);
    bad_json.body = "{\"token\": ".into();
    refused(
        &a.webhook("webhook", &bad_json, NOW),
        400,
        "not a JSON object",
    );

    let no_user = form(&[("token", "cmd-one"), ("channel_id", CHANNEL)]);
    refused(&a.webhook("commands", &no_user, NOW), 400, "no `user_id`");

    let bad_user = form(&[
        ("token", "cmd-one"),
        ("channel_id", CHANNEL),
        ("user_id", "a/b"),
    ]);
    refused(
        &a.webhook("commands", &bad_user, NOW),
        400,
        "not a Mattermost user id",
    );

    let not_json = HookRequest {
        headers: BTreeMap::new(),
        body: "action=approve".into(),
    };
    refused(
        &a.webhook("actions", &not_json, NOW),
        400,
        "not the JSON expected",
    );

    let mut xml = slash("cmd-one", "x");
    xml.headers.insert("content-type".into(), "text/xml".into());
    refused(&a.webhook("commands", &xml, NOW), 415, "text/xml");

    refused(
        &a.webhook("events", &slash("cmd-one", "x"), NOW),
        404,
        "`events`",
    );
}

proptest! {
    #[test]
    fn webhook_never_panics_on_any_request(
        endpoint in prop::sample::select(vec!["commands", "webhook", "actions", "", "other"]),
        content_type in prop::option::of(prop_oneof![
            Just("application/json".to_owned()),
            Just("application/x-www-form-urlencoded".to_owned()),
            Just("application/json; charset=utf-8".to_owned()),
            ".{0,40}",
        ]),
        authorization in prop::option::of(".{0,40}"),
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            "(token|user_id|channel_id|timestamp|text|trigger_word|post_id)=[^&]{0,30}(&(token|user_id|channel_id|timestamp|post_id)=[^&]{0,30}){0,6}"
                .prop_map(String::into_bytes),
            "\\{\"(user_id|context|channel_id|token)\": ?(\"[a-z0-9]{0,26}\"|\\{\\}|[0-9]{1,20}|null)\\}"
                .prop_map(String::into_bytes),
        ],
    ) {
        let mut headers = BTreeMap::new();
        if let Some(ct) = content_type {
            headers.insert("content-type".to_owned(), ct);
        }
        if let Some(auth) = authorization {
            headers.insert("authorization".to_owned(), auth);
        }
        let req = HookRequest { headers, body: body.into() };
        let r = adapter().webhook(endpoint, &req, NOW);
        prop_assert!(matches!(r.status, 200 | 400 | 401 | 404 | 415));
        prop_assert_eq!(r.status == 200, r.rejection.is_none());
    }
}

// ------------------------------------------------------------ configuration

#[test]
fn the_section_compiles_with_its_secrets_and_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
        url = "https://chat.example.com:8443/mm/"
        bot_token = "{}"
        command_tokens = ["{}", "{}"]
        webhook_tokens = ["{}"]
        callback_url = "https://sb.example/"
        "#,
        file_ref(&dir, "bot", "bot-secret"),
        file_ref(&dir, "c1", "c-one"),
        file_ref(&dir, "c2", "c-two"),
        file_ref(&dir, "w1", "w-one"),
    );
    let file: MattermostFile = toml::from_str(&text).unwrap();
    let c = file.compile().unwrap();
    assert_eq!(c.url, "https://chat.example.com:8443/mm");
    assert_eq!(c.team, "chat.example.com", "the host, without the port");
    assert_eq!(c.bot_token.expose(), "bot-secret");
    assert_eq!(
        c.action_secret.expose(),
        "bot-secret",
        "the bot token signs buttons by default"
    );
    assert_eq!(c.command_tokens.len(), 2);
    assert_eq!(c.webhook_tokens[0].expose(), "w-one");
    assert!(c.websocket);
    assert_eq!(
        c.actions_url.as_deref(),
        Some("https://sb.example/chat/mattermost/actions")
    );
    assert_eq!(
        websocket_url(&c.url),
        "wss://chat.example.com:8443/mm/api/v4/websocket"
    );
    assert_eq!(
        websocket_url("http://127.0.0.1:1"),
        "ws://127.0.0.1:1/api/v4/websocket"
    );
}

#[test]
fn every_error_of_the_section_names_its_key_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
        url = "chat.example.com"
        bot_token = "{}"
        command_tokens = ["{}", "env:SWITCHBOARD_TEST_SURELY_UNSET_MM"]
        team = "a/b"
        websocket = false
        callback_url = "ftp://x"
        "#,
        file_ref(&dir, "bot", "bot-secret"),
        file_ref(&dir, "c1", ""),
    );
    let file: MattermostFile = toml::from_str(&text).unwrap();
    let errors = file.compile().unwrap_err();
    for key in [
        "chat.mattermost.url:",
        "chat.mattermost.command_tokens[0]:",
        "chat.mattermost.command_tokens[1]: secret reference `env:SWITCHBOARD_TEST_SURELY_UNSET_MM`",
        "chat.mattermost.team:",
        "chat.mattermost.callback_url:",
    ] {
        assert!(errors.contains(key), "{key} missing from:\n{errors}");
    }
    assert!(!errors.contains("bot-secret"));

    let unknown = toml::from_str::<MattermostFile>(
        "url = \"https://x\"\nbot_token = \"env:X\"\ntoken = \"x\"",
    );
    assert!(
        unknown
            .unwrap_err()
            .to_string()
            .contains("unknown field `token`")
    );
    let inline = toml::from_str::<MattermostFile>("url = \"https://x\"\nbot_token = \"abc\"");
    assert!(
        inline
            .unwrap_err()
            .to_string()
            .contains("never the secret itself")
    );
}

#[test]
fn a_section_that_cannot_receive_anything_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "url = \"https://chat.example.com\"\nbot_token = \"{}\"\nwebsocket = false",
        file_ref(&dir, "bot", "t")
    );
    let file: MattermostFile = toml::from_str(&text).unwrap();
    assert!(
        file.compile()
            .unwrap_err()
            .contains("no way to receive messages")
    );
}

// --------------------------------------------------------------- rendering

#[test]
fn rendered_posts() {
    let c = config("https://chat.example.com");
    let in_thread = Destination {
        room: CHANNEL.into(),
        thread: Some("rootpost".into()),
    };
    insta::assert_json_snapshot!(
        "text_in_thread",
        post_body(
            &c,
            &in_thread,
            &Reply::Text {
                text: "Hello **there**".into()
            }
        )
    );
    insta::assert_json_snapshot!(
        "approval_with_buttons",
        post_body(&c, &in_thread, &approval(42))
    );
    let finished = Reply::Finished {
        execution: execution(42),
        status: ExecutionStatus::Failed,
        duration: Some(Duration::from_millis(12_340)),
        exit_code: Some(2),
        tail: "no such file".into(),
        partial: true,
        error: None,
    };
    let posted = Posted {
        room: CHANNEL.into(),
        id: "approvalpost".into(),
        thread: None,
    };
    insta::assert_json_snapshot!(
        "finished_replaces_approval",
        patch_body(&c, &posted, &finished)
    );

    let mut no_callback = c.clone();
    no_callback.actions_url = None;
    let plain = post_body(&no_callback, &in_thread, &approval(42));
    assert!(
        plain.get("props").is_none(),
        "no buttons without a callback URL"
    );
    assert!(plain["message"].as_str().unwrap().contains("`approve 42`"));
}

#[test]
fn long_replies_are_cut_to_what_a_post_holds() {
    let c = config("https://chat.example.com");
    let to = Destination {
        room: CHANNEL.into(),
        thread: None,
    };
    let body = post_body(
        &c,
        &to,
        &Reply::Text {
            text: "é".repeat(20_000),
        },
    );
    let message = body["message"].as_str().unwrap();
    assert_eq!(message.chars().count(), 16_383);
    assert!(message.ends_with("(cut)"));
}

#[test]
fn mentions_are_recognised_and_removed() {
    assert_eq!(
        strip_mention("@switchboard uptime", "switchboard"),
        (" uptime", true)
    );
    assert_eq!(
        strip_mention("@SwitchBoard: uptime", "switchboard"),
        (" uptime", true)
    );
    assert_eq!(strip_mention("@switchboard", "switchboard"), ("", true));
    assert!(!strip_mention("@switchboard2 uptime", "switchboard").1);
    assert!(!strip_mention("@switchboard.ops hi", "switchboard").1);
    assert!(!strip_mention("hi @switchboard", "switchboard").1);
    assert!(!strip_mention("@é", "switchboard").1);
}

// ------------------------------------------------ a local Mattermost server

/// One API call the server received.
#[derive(Debug, Clone)]
struct Call {
    method: &'static str,
    path: String,
    authorization: String,
    body: Value,
}

/// What the websocket does on one connection: send these events after
/// authentication, then hang up or stay.
#[derive(Clone)]
struct Connection {
    events: Vec<Value>,
    hang_up: bool,
}

/// An answer the server gives once to a call of `path`.
struct Scripted {
    path: &'static str,
    status: u16,
    retry_after: Option<&'static str>,
    body: Value,
}

#[derive(Default)]
struct Mock {
    calls: Mutex<Vec<Call>>,
    /// Answers to give before the normal ones.
    scripted: Mutex<VecDeque<Scripted>>,
    connections: Mutex<VecDeque<Connection>>,
    /// The first frame of each websocket connection, and its Authorization header.
    handshakes: Mutex<Vec<(String, String)>>,
}

type Shared = Arc<Mock>;

impl Mock {
    fn record(&self, method: &'static str, path: &str, headers: &HeaderMap, body: Value) {
        let authorization = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        self.calls.lock().unwrap().push(Call {
            method,
            path: path.to_owned(),
            authorization,
            body,
        });
    }

    fn scripted(&self, path: &str) -> Option<Response> {
        let mut scripted = self.scripted.lock().unwrap();
        let i = scripted.iter().position(|s| s.path == path)?;
        let Scripted {
            status,
            retry_after,
            body,
            ..
        } = scripted.remove(i)?;
        let mut response =
            (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert("retry-after", seconds.parse().unwrap());
        }
        Some(response)
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

async fn users_me(State(m): State<Shared>, headers: HeaderMap) -> Response {
    m.record("GET", "/api/v4/users/me", &headers, Value::Null);
    axum::Json(json!({ "id": BOT, "username": "switchboard", "is_bot": true })).into_response()
}

async fn create_post(
    State(m): State<Shared>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    m.record("POST", "/api/v4/posts", &headers, body.clone());
    if let Some(r) = m.scripted("/api/v4/posts") {
        return r;
    }
    if body["root_id"] == "replypost" {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({
                "id": "api.post.create_post.root_id.app_error",
                "message": "Invalid RootId parameter.",
                "status_code": 400,
            })),
        )
            .into_response();
    }
    let n = m.calls().len();
    axum::Json(json!({
        "id": format!("post{n}"),
        "channel_id": body["channel_id"],
        "root_id": body.get("root_id").cloned().unwrap_or(json!("")),
        "message": body["message"],
    }))
    .into_response()
}

async fn get_post(State(m): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    m.record("GET", &format!("/api/v4/posts/{id}"), &headers, Value::Null);
    axum::Json(json!({ "id": id, "root_id": "rootpost", "channel_id": CHANNEL })).into_response()
}

async fn patch_post(
    State(m): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let path = format!("/api/v4/posts/{id}/patch");
    m.record("PUT", &path, &headers, body);
    if let Some(r) = m.scripted(&path) {
        return r;
    }
    axum::Json(json!({ "id": id })).into_response()
}

async fn upload(State(m): State<Shared>, headers: HeaderMap, mut form: Multipart) -> Response {
    let mut fields = serde_json::Map::new();
    while let Ok(Some(field)) = form.next_field().await {
        let name = field.name().unwrap_or("").to_owned();
        let filename = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(str::to_owned);
        let bytes = field.bytes().await.unwrap();
        let value = match filename {
            Some(f) => {
                json!({ "filename": f, "content_type": content_type, "bytes": bytes.to_vec() })
            }
            None => json!(String::from_utf8_lossy(&bytes)),
        };
        fields.insert(name, value);
    }
    m.record("POST", "/api/v4/files", &headers, Value::Object(fields));
    axum::Json(json!({ "file_infos": [{ "id": "file1" }], "client_ids": [] })).into_response()
}

async fn direct(
    State(m): State<Shared>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    m.record("POST", "/api/v4/channels/direct", &headers, body);
    axum::Json(json!({ "id": "dmchannel", "type": "D" })).into_response()
}

async fn websocket(State(m): State<Shared>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    ws.on_upgrade(move |socket| converse(m, socket, authorization))
}

async fn converse(m: Shared, mut socket: WebSocket, authorization: String) {
    let Some(Ok(WsMessage::Text(first))) = socket.recv().await else {
        return;
    };
    m.handshakes
        .lock()
        .unwrap()
        .push((first.to_string(), authorization));
    let connection = m.connections.lock().unwrap().pop_front();
    let connection = connection.unwrap_or(Connection {
        events: Vec::new(),
        hang_up: false,
    });
    let mut frames = vec![
        json!({ "status": "OK", "seq_reply": 1 }),
        json!({ "event": "hello", "data": { "server_version": "10.0.0" }, "broadcast": {}, "seq": 0 }),
    ];
    frames.extend(connection.events);
    for frame in frames {
        if socket
            .send(WsMessage::Text(frame.to_string().into()))
            .await
            .is_err()
        {
            return;
        }
    }
    if connection.hang_up {
        return;
    }
    while let Some(Ok(_)) = socket.recv().await {}
}

async fn start_server() -> (Shared, SocketAddr) {
    let mock = Shared::default();
    let app = Router::new()
        .route("/api/v4/users/me", get(users_me))
        .route("/api/v4/posts", post(create_post))
        .route("/api/v4/posts/{id}", get(get_post))
        .route("/api/v4/posts/{id}/patch", put(patch_post))
        .route("/api/v4/files", post(upload))
        .route("/api/v4/channels/direct", post(direct))
        .route("/api/v4/websocket", get(websocket))
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (mock, addr)
}

async fn served_adapter() -> (Shared, MattermostAdapter) {
    let (mock, addr) = start_server().await;
    (
        mock,
        MattermostAdapter::new(config(&format!("http://{addr}"))),
    )
}

// ------------------------------------------------------------ REST outlet

#[tokio::test]
async fn a_reply_in_a_thread_is_posted_under_its_root_with_the_bot_token() {
    let (mock, a) = served_adapter().await;
    let to = Destination {
        room: CHANNEL.into(),
        thread: Some("rootpost".into()),
    };
    let posted = a
        .outlet()
        .post(
            &to,
            &Reply::Text {
                text: "**done**".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(posted.room, CHANNEL);
    assert_eq!(posted.thread.as_deref(), Some("rootpost"));
    let calls = mock.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].path, "/api/v4/posts");
    assert_eq!(calls[0].authorization, "Bearer bot-token");
    assert_eq!(calls[0].body["channel_id"], CHANNEL);
    assert_eq!(calls[0].body["root_id"], "rootpost");
    assert_eq!(calls[0].body["message"], "**done**");
    assert_eq!(posted.id, "post1");
}

#[tokio::test]
async fn a_reply_to_a_reply_goes_to_the_root_of_its_thread() {
    let (mock, a) = served_adapter().await;
    let to = Destination {
        room: CHANNEL.into(),
        thread: Some("replypost".into()),
    };
    let posted = a
        .outlet()
        .post(&to, &Reply::Text { text: "hi".into() })
        .await
        .unwrap();
    assert_eq!(posted.thread.as_deref(), Some("rootpost"));
    let calls = mock.calls();
    let paths: Vec<&str> = calls.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/api/v4/posts", "/api/v4/posts/replypost", "/api/v4/posts"]
    );
    assert_eq!(calls[2].body["root_id"], "rootpost");
}

#[tokio::test]
async fn an_update_patches_the_post_and_removes_its_buttons() {
    let (mock, a) = served_adapter().await;
    let posted = Posted {
        room: CHANNEL.into(),
        id: "approvalpost".into(),
        thread: Some("rootpost".into()),
    };
    a.outlet()
        .update(
            &posted,
            &Reply::Text {
                text: "Approved by bob".into(),
            },
        )
        .await
        .unwrap();
    let calls = mock.calls();
    assert_eq!(calls[0].method, "PUT");
    assert_eq!(calls[0].path, "/api/v4/posts/approvalpost/patch");
    assert_eq!(calls[0].body["message"], "Approved by bob");
    assert_eq!(calls[0].body["props"]["attachments"], json!([]));
    assert_eq!(calls[0].authorization, "Bearer bot-token");
}

#[tokio::test]
async fn a_file_is_uploaded_then_posted_in_the_thread() {
    let (mock, a) = served_adapter().await;
    let to = Destination {
        room: CHANNEL.into(),
        thread: Some("rootpost".into()),
    };
    let file = Attachment {
        filename: "output-42.txt".into(),
        content_type: "text/plain".into(),
        title: "Full output of #42".into(),
        bytes: b"line 1\nline 2\n\x00\xff".to_vec(),
    };
    a.outlet().upload(&to, &file).await.unwrap();
    let calls = mock.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].path, "/api/v4/files");
    assert_eq!(calls[0].authorization, "Bearer bot-token");
    assert_eq!(calls[0].body["channel_id"], CHANNEL);
    assert_eq!(calls[0].body["files"]["filename"], "output-42.txt");
    assert_eq!(calls[0].body["files"]["content_type"], "text/plain");
    assert_eq!(calls[0].body["files"]["bytes"], json!(file.bytes));
    assert_eq!(calls[1].path, "/api/v4/posts");
    assert_eq!(calls[1].body["file_ids"], json!(["file1"]));
    assert_eq!(calls[1].body["root_id"], "rootpost");
    assert_eq!(calls[1].body["message"], "Full output of #42");
}

#[tokio::test]
async fn a_direct_message_opens_the_direct_channel_first() {
    let (mock, addr) = start_server().await;
    // Without a configured bot user id, the outlet asks who it is.
    let mut c = config(&format!("http://{addr}"));
    c.bot_user_id = None;
    let a = MattermostAdapter::new(c);
    let user = ChatIdentity::new("mattermost", "chat.example.com", ALICE).unwrap();
    a.outlet()
        .direct(
            &user,
            &Reply::Text {
                text: "Your link code is 1234".into(),
            },
        )
        .await
        .unwrap();
    let calls = mock.calls();
    let paths: Vec<&str> = calls.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/api/v4/users/me",
            "/api/v4/channels/direct",
            "/api/v4/posts"
        ]
    );
    assert_eq!(calls[1].body, json!([BOT, ALICE]));
    assert_eq!(calls[2].body["channel_id"], "dmchannel");
    assert_eq!(calls[2].body["message"], "Your link code is 1234");

    let slack_user = ChatIdentity::new("slack", "T1", "U1").unwrap();
    let refused = a
        .outlet()
        .direct(&slack_user, &Reply::Text { text: "x".into() })
        .await;
    assert!(matches!(refused, Err(OutletError::Refused(_))));
}

#[tokio::test]
async fn a_refusal_names_mattermosts_message() {
    let (mock, a) = served_adapter().await;
    mock.scripted.lock().unwrap().push_back(Scripted {
        path: "/api/v4/posts",
        status: 403,
        retry_after: None,
        body: json!({
            "id": "api.context.permissions.app_error",
            "message": "You do not have the appropriate permissions.",
        }),
    });
    let to = Destination {
        room: CHANNEL.into(),
        thread: None,
    };
    let err = a
        .outlet()
        .post(&to, &Reply::Text { text: "x".into() })
        .await
        .unwrap_err();
    match err {
        OutletError::Refused(reason) => {
            assert!(
                reason.contains("You do not have the appropriate permissions."),
                "{reason}"
            );
            assert!(reason.contains("403"), "{reason}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_rate_limited_call_is_retried_after_the_wait_asked() {
    let (mock, a) = served_adapter().await;
    mock.scripted.lock().unwrap().push_back(Scripted {
        path: "/api/v4/posts/approvalpost/patch",
        status: 429,
        retry_after: Some("0"),
        body: json!({ "message": "too many requests" }),
    });
    let posted = Posted {
        room: CHANNEL.into(),
        id: "approvalpost".into(),
        thread: None,
    };
    a.outlet()
        .update(&posted, &Reply::Text { text: "x".into() })
        .await
        .unwrap();
    assert_eq!(mock.calls().len(), 2);

    // A server that keeps refusing is given up on.
    for _ in 0..10 {
        mock.scripted.lock().unwrap().push_back(Scripted {
            path: "/api/v4/posts/approvalpost/patch",
            status: 429,
            retry_after: Some("0"),
            body: json!({ "message": "too many requests" }),
        });
    }
    let err = a
        .outlet()
        .update(&posted, &Reply::Text { text: "x".into() })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("too many requests"), "{err}");
}

#[tokio::test]
async fn an_unreachable_server_is_reported_as_such() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let a = MattermostAdapter::new(config(&format!("http://{addr}")));
    let to = Destination {
        room: CHANNEL.into(),
        thread: None,
    };
    let err = a
        .outlet()
        .post(&to, &Reply::Text { text: "x".into() })
        .await
        .unwrap_err();
    assert!(matches!(err, OutletError::Unreachable(_)), "{err:?}");
}

#[tokio::test]
async fn learn_identity_asks_users_me() {
    let (mock, a) = served_adapter().await;
    let me = a.learn_identity().await.unwrap();
    assert_eq!(me.user_id.as_deref(), Some(BOT));
    assert_eq!(me.username.as_deref(), Some("switchboard"));
    assert_eq!(mock.calls()[0].authorization, "Bearer bot-token");
    assert!(a.outlet().capabilities().buttons);
    assert_eq!(a.platform(), "mattermost");
}

// --------------------------------------------------------------- websocket

struct Recorder(mpsc::UnboundedSender<Inbound>);

#[async_trait]
impl ChatHandler for Recorder {
    async fn handle(&self, inbound: Inbound, _outlet: Arc<dyn ChatOutlet>) {
        let _ = self.0.send(inbound);
    }
}

fn posted_event(id: &str, user_id: &str, message: &str, kind: &str, channel_type: &str) -> Value {
    let post = json!({
        "id": id,
        "create_at": NOW_MS,
        "user_id": user_id,
        "channel_id": CHANNEL,
        "root_id": if id == "threaded" { "rootpost" } else { "" },
        "message": message,
        "type": kind,
        "props": {},
    });
    json!({
        "event": "posted",
        "data": {
            "channel_display_name": "Town Square",
            "channel_name": if channel_type == "D" { format!("{ALICE}__{BOT}") } else { "town-square".to_owned() },
            "channel_type": channel_type,
            "post": post.to_string(),
            "sender_name": "@alice",
            "set_online": true,
            "team_id": "kwoknj9nwpypzgzy78wkw516qe",
        },
        "broadcast": { "omit_users": null, "user_id": "", "channel_id": CHANNEL, "team_id": "" },
        "seq": 3,
    })
}

/// Waits for the next message handed over (the timeout only keeps a
/// broken test from hanging).
async fn next(rx: &mut mpsc::UnboundedReceiver<Inbound>) -> Inbound {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("a message within 20 s")
        .expect("the handler is alive")
}

#[tokio::test]
async fn websocket_posts_become_messages_and_the_connection_comes_back() {
    let (mock, a) = served_adapter().await;
    mock.connections.lock().unwrap().extend([
        Connection {
            events: vec![
                posted_event("ownpost", BOT, "Running host.logs (#41)", "", "O"),
                posted_event(
                    "joinpost",
                    ALICE,
                    "alice joined the channel",
                    "system_join_channel",
                    "O",
                ),
                json!({ "event": "typing", "data": {}, "broadcast": {}, "seq": 4 }),
                posted_event("threaded", ALICE, "@switchboard: host.logs web-1", "", "O"),
            ],
            hang_up: true,
        },
        Connection {
            events: vec![posted_event("dmpost", ALICE, "uptime", "", "D")],
            hang_up: false,
        },
    ]);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (stop_tx, stop) = watch::channel(false);
    let a = Arc::new(a);
    let listening = {
        let a = a.clone();
        tokio::spawn(async move { a.connect(Arc::new(Recorder(tx)), stop).await })
    };

    let first = next(&mut rx).await;
    assert_eq!(
        first.delivery_id.as_deref(),
        Some("threaded"),
        "own and system posts are left out"
    );
    assert_eq!(first.message_id.as_deref(), Some("threaded"));
    assert_eq!(first.thread.as_deref(), Some("rootpost"));
    assert_eq!(first.text, "host.logs web-1");
    assert!(first.mentioned);
    assert_eq!(
        first.sender.to_string(),
        format!("mattermost:chat.example.com/{ALICE}")
    );
    assert_eq!(first.sender_name.as_deref(), Some("alice"));
    assert_eq!(first.room.name.as_deref(), Some("~town-square"));
    assert!(!first.room.direct);

    // The server hung up; the next post arrives over a new connection.
    let second = next(&mut rx).await;
    assert_eq!(second.delivery_id.as_deref(), Some("dmpost"));
    assert!(second.room.direct);
    assert!(!second.mentioned);
    assert_eq!(second.text, "uptime");

    let handshakes = mock.handshakes.lock().unwrap().clone();
    assert_eq!(handshakes.len(), 2);
    for (first_frame, authorization) in &handshakes {
        let challenge: Value = serde_json::from_str(first_frame).unwrap();
        assert_eq!(challenge["action"], "authentication_challenge");
        assert_eq!(challenge["seq"], 1);
        assert_eq!(challenge["data"]["token"], "bot-token");
        assert_eq!(authorization, "Bearer bot-token");
    }

    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(20), listening)
        .await
        .expect("connect returns once stopped")
        .unwrap();
    assert!(rx.try_recv().is_err(), "nothing else was handed over");
}

#[tokio::test]
async fn connect_returns_at_once_without_the_websocket_or_when_stopped() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let mut c = config("http://127.0.0.1:1");
    c.websocket = false;
    let (_stop_tx, stop) = watch::channel(false);
    MattermostAdapter::new(c)
        .connect(Arc::new(Recorder(tx.clone())), stop)
        .await;

    // A server that cannot be reached is retried until stopped.
    let (stop_tx, stop) = watch::channel(false);
    let a = Arc::new(MattermostAdapter::new(config("http://127.0.0.1:1")));
    let listening = {
        let a = a.clone();
        tokio::spawn(async move { a.connect(Arc::new(Recorder(tx)), stop).await })
    };
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(20), listening)
        .await
        .expect("connect returns once stopped")
        .unwrap();
}
