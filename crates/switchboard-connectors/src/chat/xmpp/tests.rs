use proptest::prelude::*;
use switchboard_core::chat::ChatIdentity;
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::message::Message;
use tokio_xmpp::parsers::presence::Presence;

use super::config::XmppFile;
use super::stanzas::{self, RoomEvent, Rooms, identity, jid_of, occupant};

const ME: &str = "switchboard@example.org";
const ROOM: &str = "ops@conference.example.org";

fn bare(s: &str) -> BareJid {
    BareJid::new(s).unwrap()
}

fn element(xml: &str) -> Element {
    xml.parse().unwrap_or_else(|e| panic!("{xml}: {e}"))
}

fn message(xml: &str) -> Message {
    Message::try_from(element(xml)).unwrap()
}

fn presence(xml: &str) -> Presence {
    Presence::try_from(element(xml)).unwrap()
}

/// A room's presence for `nick`, showing `jid` when given; `statuses`
/// are MUC status codes.
fn occupant_presence(nick: &str, jid: Option<&str>, kind: &str, statuses: &[u16]) -> Presence {
    let jid = jid.map(|j| format!(" jid='{j}'")).unwrap_or_default();
    let kind = if kind.is_empty() {
        String::new()
    } else {
        format!(" type='{kind}'")
    };
    let statuses: String = statuses
        .iter()
        .map(|c| format!("<status code='{c}'/>"))
        .collect();
    presence(&format!(
        "<presence xmlns='jabber:client' from='{ROOM}/{nick}'{kind}>\
         <x xmlns='http://jabber.org/protocol/muc#user'>\
         <item affiliation='none' role='participant'{jid}/>{statuses}</x></presence>"
    ))
}

fn groupchat(nick: &str, id: &str, body: &str) -> Message {
    message(&format!(
        "<message xmlns='jabber:client' from='{ROOM}/{nick}' to='{ME}/sb' type='groupchat' id='{id}'>\
         <body>{body}</body></message>"
    ))
}

/// The bot in the room, with alice (whose account the room shows) and
/// mallory (whose it does not).
fn in_the_room() -> Rooms {
    let mut rooms = Rooms::new(&[bare(ROOM)], "switchboard");
    let joins = rooms.join_all();
    assert_eq!(joins.len(), 1);
    assert_eq!(
        rooms.on_presence(&occupant_presence(
            "alice",
            Some("alice@example.org/laptop"),
            "",
            &[]
        )),
        None
    );
    assert_eq!(
        rooms.on_presence(&occupant_presence("mallory", None, "", &[])),
        None
    );
    assert_eq!(
        rooms.on_presence(&occupant_presence("switchboard", None, "", &[110])),
        Some(RoomEvent::Joined(bare(ROOM)))
    );
    rooms
}

#[test]
fn accounts_are_identities_of_their_domain_and_nicks_are_nobody() {
    let alice = identity(&bare("alice@example.org")).unwrap();
    assert_eq!(alice.to_string(), "xmpp:example.org/alice");
    assert!(alice.is_verified());
    assert_eq!(jid_of(&alice), Some(bare("alice@example.org")));
    // A localpart outside ASCII is kept, encoded, and read back.
    let jorg = identity(&bare("jörg@example.org")).unwrap();
    assert_eq!(jorg.to_string(), "xmpp:example.org/j%C3%B6rg");
    assert_eq!(jid_of(&jorg), Some(bare("jörg@example.org")));
    // A service has no account.
    assert_eq!(identity(&bare("conference.example.org")), None);
    // A nick with a space is an identity, but never an account.
    let nick = occupant(&bare(ROOM), "Mal Lory").unwrap();
    assert_eq!(
        nick.to_string(),
        "xmpp:ops@conference.example.org/~Mal%20Lory"
    );
    assert!(!nick.is_verified());
    assert_eq!(jid_of(&nick), None);
    let other = ChatIdentity::new("matrix", "example.org", "alice").unwrap();
    assert_eq!(jid_of(&other), None);
}

#[test]
fn joining_asks_for_no_history() {
    let join = stanzas::join(&bare(ROOM), "switchboard").unwrap();
    let xml = String::from(&Element::from(join));
    assert!(
        xml.contains("to='ops@conference.example.org/switchboard'")
            && xml.contains(
                "<x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x>"
            ),
        "{xml}"
    );
}

#[test]
fn a_message_naming_the_bot_in_its_room_is_addressed_to_it() {
    let rooms = in_the_room();
    let me = bare(ME);
    let m = rooms
        .inbound(&groupchat("alice", "m1", "switchboard: echo hi"), &me)
        .unwrap();
    assert_eq!(
        (
            m.sender.to_string().as_str(),
            m.text.as_str(),
            m.mentioned,
            m.room.id.as_str(),
            m.room.direct,
            m.message_id.as_deref(),
            m.sender_name.as_deref(),
        ),
        (
            "xmpp:example.org/alice",
            "echo hi",
            true,
            ROOM,
            false,
            Some("m1"),
            Some("alice")
        )
    );
    assert_eq!(
        m.delivery_id.as_deref(),
        Some("ops@conference.example.org/alice#m1")
    );
    // Chatter is left to the prefix; an occupant whose account is not
    // shown is only a nick.
    let chatter = rooms
        .inbound(&groupchat("mallory", "m2", "echo hi"), &me)
        .unwrap();
    assert!(!chatter.mentioned);
    assert_eq!(
        chatter.sender.to_string(),
        "xmpp:ops@conference.example.org/~mallory"
    );
    assert!(!chatter.sender.is_verified());
}

#[test]
fn the_room_s_own_message_id_is_the_delivery_id() {
    let rooms = in_the_room();
    let m = message(&format!(
        "<message xmlns='jabber:client' from='{ROOM}/alice' type='groupchat' id='c1'>\
         <body>switchboard: uptime</body>\
         <stanza-id xmlns='urn:xmpp:sid:0' by='evil.example' id='forged'/>\
         <stanza-id xmlns='urn:xmpp:sid:0' by='{ROOM}' id='r-77'/></message>"
    ));
    let inbound = rooms.inbound(&m, &bare(ME)).unwrap();
    assert_eq!(
        inbound.delivery_id.as_deref(),
        Some("ops@conference.example.org#r-77")
    );
}

#[test]
fn history_offline_messages_corrections_and_the_bot_s_own_are_left_alone() {
    let rooms = in_the_room();
    let me = bare(ME);
    let ignored = [
        // The bot's own message, echoed by the room.
        format!(
            "<message xmlns='jabber:client' from='{ROOM}/switchboard' type='groupchat'><body>hi</body></message>"
        ),
        // Said before the bot came in.
        format!(
            "<message xmlns='jabber:client' from='{ROOM}/alice' type='groupchat'><body>switchboard: reboot</body>\
             <delay xmlns='urn:xmpp:delay' stamp='2026-01-01T00:00:00Z'/></message>"
        ),
        // An offline message, kept by the server while the bot was away.
        "<message xmlns='jabber:client' from='alice@example.org/phone' type='chat'><body>reboot</body>\
         <delay xmlns='urn:xmpp:delay' from='example.org' stamp='2026-01-01T00:00:00Z'/></message>"
            .to_owned(),
        // A correction: a command edited after the fact runs nothing.
        format!(
            "<message xmlns='jabber:client' from='{ROOM}/alice' type='groupchat'><body>switchboard: echo b</body>\
             <replace xmlns='urn:xmpp:message-correct:0' id='m1'/></message>"
        ),
        // A typing notification has no body.
        "<message xmlns='jabber:client' from='alice@example.org/phone' type='chat'>\
         <composing xmlns='http://jabber.org/protocol/chatstates'/></message>"
            .to_owned(),
        // Errors and headlines.
        "<message xmlns='jabber:client' from='alice@example.org/phone' type='error'><body>x</body></message>"
            .to_owned(),
        "<message xmlns='jabber:client' from='news.example.org' type='headline'><body>x</body></message>"
            .to_owned(),
        // A room the bot is not in.
        "<message xmlns='jabber:client' from='other@conference.example.org/alice' type='groupchat'>\
         <body>switchboard: echo</body></message>"
            .to_owned(),
        // Another session of the bot's own account.
        format!("<message xmlns='jabber:client' from='{ME}/other' type='chat'><body>echo</body></message>"),
        // The room itself (a subject, a status).
        format!("<message xmlns='jabber:client' from='{ROOM}' type='groupchat'><body>topic</body></message>"),
    ];
    for xml in ignored {
        assert!(rooms.inbound(&message(&xml), &me).is_none(), "{xml}");
    }
}

#[test]
fn direct_messages_come_from_the_account_and_private_ones_through_the_room_from_the_occupant() {
    let rooms = in_the_room();
    let me = bare(ME);
    let dm = rooms
        .inbound(
            &message(
                "<message xmlns='jabber:client' from='alice@example.org/phone' type='chat' id='d1'>\
                 <body> whoami </body><thread>t-1</thread></message>",
            ),
            &me,
        )
        .unwrap();
    assert_eq!(
        (
            dm.sender.to_string().as_str(),
            dm.room.id.as_str(),
            dm.room.direct,
            dm.mentioned,
            dm.text.as_str(),
            dm.thread.as_deref()
        ),
        (
            "xmpp:example.org/alice",
            "alice@example.org",
            true,
            true,
            "whoami",
            Some("t-1")
        )
    );
    let private = rooms
        .inbound(
            &message(&format!(
                "<message xmlns='jabber:client' from='{ROOM}/mallory' type='chat'><body>link</body></message>"
            )),
            &me,
        )
        .unwrap();
    assert_eq!(
        (
            private.sender.to_string().as_str(),
            private.room.id.as_str(),
            private.room.direct
        ),
        (
            "xmpp:ops@conference.example.org/~mallory",
            "ops@conference.example.org/mallory",
            true
        )
    );
}

#[test]
fn a_nick_change_keeps_the_account_and_leaving_forgets_it() {
    let mut rooms = in_the_room();
    let me = bare(ME);
    let renamed = presence(&format!(
        "<presence xmlns='jabber:client' from='{ROOM}/alice' type='unavailable'>\
         <x xmlns='http://jabber.org/protocol/muc#user'>\
         <item affiliation='none' role='participant' nick='alice2'/><status code='303'/></x></presence>"
    ));
    assert_eq!(rooms.on_presence(&renamed), None);
    let m = rooms
        .inbound(&groupchat("alice2", "m3", "switchboard: status"), &me)
        .unwrap();
    assert_eq!(m.sender.to_string(), "xmpp:example.org/alice");
    // Gone: someone else taking the nick is not alice.
    assert_eq!(
        rooms.on_presence(&occupant_presence("alice2", None, "unavailable", &[])),
        None
    );
    rooms.on_presence(&occupant_presence("alice2", None, "", &[]));
    let m = rooms
        .inbound(&groupchat("alice2", "m4", "switchboard: status"), &me)
        .unwrap();
    assert!(!m.sender.is_verified(), "{}", m.sender);
}

#[test]
fn a_kick_is_noticed_and_a_taken_nick_is_changed() {
    let mut rooms = in_the_room();
    assert_eq!(
        rooms.on_presence(&occupant_presence(
            "switchboard",
            None,
            "unavailable",
            &[110, 307]
        )),
        Some(RoomEvent::Removed {
            room: bare(ROOM),
            why: "kicked".to_owned()
        })
    );
    assert!(rooms.rejoin(&bare(ROOM)).is_some());

    let mut rooms = Rooms::new(&[bare(ROOM)], "switchboard");
    rooms.join_all();
    let conflict = presence(&format!(
        "<presence xmlns='jabber:client' from='{ROOM}/switchboard' type='error'>\
         <error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"
    ));
    let Some(RoomEvent::NickTaken(again)) = rooms.on_presence(&conflict) else {
        panic!("a taken nick is not retried");
    };
    assert_eq!(
        again.to,
        Some(Jid::new("ops@conference.example.org/switchboard_").unwrap())
    );
    // The room then knows the bot by its new nick: its echo is its own.
    rooms.on_presence(&occupant_presence("switchboard_", None, "", &[110]));
    assert!(
        rooms
            .inbound(&groupchat("switchboard_", "e", "x"), &bare(ME))
            .is_none()
    );
    let forbidden = presence(&format!(
        "<presence xmlns='jabber:client' from='{ROOM}/switchboard_' type='error'>\
         <error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"
    ));
    let mut rooms = Rooms::new(&[bare(ROOM)], "switchboard_");
    rooms.join_all();
    assert!(matches!(
        rooms.on_presence(&forbidden),
        Some(RoomEvent::Removed { .. })
    ));
}

#[test]
fn replies_are_groupchat_in_rooms_threaded_and_corrections_name_the_original() {
    let m = stanzas::message(
        Jid::new(ROOM).unwrap(),
        true,
        "sb-1",
        "done".to_owned(),
        Some("t-1"),
        Some("sb-0"),
    );
    let xml = String::from(&Element::from(m));
    for part in [
        "type='groupchat'",
        "id='sb-1'",
        "<body>done</body>",
        "<thread>t-1</thread>",
        "<replace xmlns='urn:xmpp:message-correct:0' id='sb-0'/>",
    ] {
        assert!(xml.contains(part), "{part} in {xml}");
    }
    let dm = stanzas::message(
        Jid::new("alice@example.org").unwrap(),
        false,
        "sb-2",
        "hi".to_owned(),
        None,
        None,
    );
    let xml = String::from(&Element::from(dm));
    assert!(
        xml.contains("type='chat'") && !xml.contains("thread") && !xml.contains("replace"),
        "{xml}"
    );
}

/// The section with a password kept in a file (which must outlive it).
fn section(password: &tempfile::NamedTempFile) -> XmppFile {
    std::fs::write(password.path(), "s3cret-pw\n").unwrap();
    toml::from_str(&format!(
        "jid = \"{ME}\"\npassword = \"file:{}\"\nrooms = [\"{ROOM}\"]\n",
        password.path().display()
    ))
    .unwrap()
}

#[test]
fn the_section_is_checked_and_every_problem_named() {
    let password = tempfile::NamedTempFile::new().unwrap();
    let config = section(&password).compile().unwrap();
    assert_eq!(config.password.expose(), "s3cret-pw");
    assert_eq!(
        (config.nick.as_str(), config.port, config.rooms.len()),
        ("switchboard", 5222, 1)
    );
    let errors = XmppFile {
        jid: "example.org".to_owned(),
        rooms: vec!["not a room".to_owned()],
        ca_file: Some("/nonexistent/ca.pem".into()),
        ..section(&password)
    }
    .compile()
    .unwrap_err();
    for key in ["chat.xmpp.jid", "chat.xmpp.rooms", "chat.xmpp.ca_file"] {
        assert!(errors.contains(key), "{key} in {errors}");
    }
    let unset: XmppFile = toml::from_str(&format!(
        "jid = \"{ME}\"\npassword = \"env:SWITCHBOARD_TEST_UNSET_XMPP\""
    ))
    .unwrap();
    let errors = unset.compile().unwrap_err();
    assert!(errors.contains("chat.xmpp.password"), "{errors}");
    assert!(!errors.contains("s3cret"), "{errors}");
    let a_ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(a_ca.path(), "not a certificate").unwrap();
    let errors = XmppFile {
        ca_file: Some(a_ca.path().to_owned()),
        ..section(&password)
    }
    .compile()
    .unwrap_err();
    assert!(errors.contains("holds no certificate"), "{errors}");
}

proptest! {
    #[test]
    fn any_text_is_one_identity_part_and_reads_back(s in "\\PC{0,40}") {
        let encoded = stanzas::encode(&s);
        prop_assert!(encoded.chars().all(|c| c.is_ascii_graphic() && c != '/' && c != ':'));
        prop_assert_eq!(stanzas::decode(&encoded), Some(s));
    }

    #[test]
    fn any_message_from_anyone_is_read_or_left_without_a_panic(
        from in "[a-z@./~%]{0,20}",
        kind in prop::sample::select(vec!["chat", "groupchat", "normal", "error", "headline"]),
        body in "\\PC{0,60}",
    ) {
        let rooms = in_the_room();
        let mut m = Message::new(None);
        m.from = Jid::new(&from).ok();
        m.type_ = kind.parse().unwrap();
        m.bodies.insert(Default::default(), body.clone());
        if let Some(inbound) = rooms.inbound(&m, &bare(ME)) {
            prop_assert_eq!(inbound.text.as_str(), inbound.text.trim());
            prop_assert!(body.contains(&inbound.text));
        }
    }
}
