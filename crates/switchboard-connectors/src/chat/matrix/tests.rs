use std::collections::HashSet;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::config::MatrixFile;
use super::sync::{identity, read, split_user_id, user_id};

const ME: &str = "@switchboard:example.org";

fn said(room: &str, event: Value) -> Value {
    json!({"next_batch": "s2", "rooms": {"join": {room: {"timeline": {"events": [event]}}}}})
}

fn text(sender: &str, id: &str, body: &str) -> Value {
    json!({"type": "m.room.message", "sender": sender, "event_id": id,
           "content": {"msgtype": "m.text", "body": body}})
}

#[test]
fn user_ids_are_identities_of_their_server() {
    assert_eq!(
        split_user_id("@alice:example.org"),
        Some(("alice", "example.org"))
    );
    for bad in ["alice", "@:example.org", "@alice:", "#room:example.org"] {
        assert_eq!(split_user_id(bad), None, "{bad}");
    }
    let id = identity("@alice:example.org").unwrap();
    assert_eq!(id.to_string(), "matrix:example.org/alice");
    assert!(id.is_verified());
    assert_eq!(user_id(&id), "@alice:example.org");
}

#[test]
fn a_message_naming_the_bot_is_addressed_to_it_and_others_are_left_to_the_prefix() {
    let batch = read(
        &said(
            "!r:example.org",
            text("@alice:example.org", "$e1", "Switchboard: echo hi"),
        ),
        ME,
        &HashSet::new(),
    )
    .unwrap();
    let m = &batch.messages[0];
    assert_eq!(
        (
            m.text.as_str(),
            m.mentioned,
            m.room.direct,
            m.delivery_id.as_deref(),
            m.message_id.as_deref()
        ),
        ("echo hi", true, false, Some("$e1"), Some("$e1"))
    );
    assert_eq!(m.sender.to_string(), "matrix:example.org/alice");
    assert_eq!(batch.next_batch, "s2");

    let chatter = read(
        &said("!r:x", text("@bob:x", "$e2", "echo hi")),
        ME,
        &HashSet::new(),
    )
    .unwrap();
    assert!(!chatter.messages[0].mentioned);
    // In a direct chat everything is for the bot.
    let direct: HashSet<String> = ["!r:x".to_owned()].into();
    let dm = read(&said("!r:x", text("@bob:x", "$e3", "uptime")), ME, &direct).unwrap();
    assert!(dm.messages[0].mentioned && dm.messages[0].room.direct);
    // A pill mention counts too.
    let mut pill = text("@bob:x", "$e4", "hey you, uptime");
    pill["content"]["m.mentions"] = json!({"user_ids": [ME]});
    assert!(
        read(&said("!r:x", pill), ME, &HashSet::new())
            .unwrap()
            .messages[0]
            .mentioned
    );
}

#[test]
fn threads_edits_notices_and_the_bots_own_lines() {
    let mut in_thread = text("@bob:x", "$e5", "switchboard: uptime");
    in_thread["content"]["m.relates_to"] = json!({"rel_type": "m.thread", "event_id": "$root"});
    let m = &read(&said("!r:x", in_thread), ME, &HashSet::new())
        .unwrap()
        .messages[0];
    assert_eq!(m.thread.as_deref(), Some("$root"));

    let mut edit = text("@bob:x", "$e6", "switchboard: uptime");
    edit["content"]["m.relates_to"] = json!({"rel_type": "m.replace", "event_id": "$e5"});
    let mut notice = text("@bob:x", "$e7", "switchboard: uptime");
    notice["content"]["msgtype"] = json!("m.notice");
    for ignored in [edit, notice, text(ME, "$e8", "switchboard: uptime")] {
        assert!(
            read(&said("!r:x", ignored), ME, &HashSet::new())
                .unwrap()
                .messages
                .is_empty()
        );
    }
}

#[test]
fn invitations_aliases_and_encrypted_rooms_are_noticed() {
    let body = json!({
        "next_batch": "s9",
        "rooms": {
            "invite": {"!dm:x": {"invite_state": {"events": [
                {"type": "m.room.member", "state_key": ME, "sender": "@bob:x",
                 "content": {"membership": "invite", "is_direct": true}}]}}},
            "join": {"!ops:x": {
                "state": {"events": [{"type": "m.room.canonical_alias", "content": {"alias": "#ops:x"}}]},
                "timeline": {"events": [{"type": "m.room.encrypted", "sender": "@bob:x", "event_id": "$c",
                                         "content": {"algorithm": "m.megolm.v1.aes-sha2"}}]}}}
        }
    });
    let batch = read(&body, ME, &HashSet::new()).unwrap();
    assert_eq!(
        batch.invites,
        [("!dm:x".to_owned(), Some("@bob:x".to_owned()), true)]
    );
    assert_eq!(batch.aliases, [("!ops:x".to_owned(), "#ops:x".to_owned())]);
    assert_eq!(batch.encrypted, ["!ops:x"]);
    assert!(read(&json!({"rooms": {}}), ME, &HashSet::new()).is_err());
}

#[test]
fn the_section_is_checked() {
    let file: MatrixFile = toml::from_str(
        "homeserver = \"ftp://x\"\naccess_token = \"env:SB_TEST_NO_SUCH_VAR\"\nuser_id = \"bot\"\n",
    )
    .unwrap();
    let errors = file.compile().unwrap_err();
    for key in [
        "chat.matrix.homeserver",
        "chat.matrix.user_id",
        "chat.matrix.access_token",
    ] {
        assert!(errors.contains(key), "{key} in {errors}");
    }
}

proptest! {
    #[test]
    fn any_sync_answer_is_read_without_panicking(body in "\\PC{0,400}", sender in "\\PC{0,30}") {
        if let Ok(v) = serde_json::from_str::<Value>(&body) {
            let _ = read(&v, ME, &HashSet::new());
        }
        let _ = read(&said("!r:x", text(&sender, "$e", &body)), ME, &HashSet::new());
    }
}
