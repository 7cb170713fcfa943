use irc::proto::{Command, Message};
use proptest::prelude::*;
use switchboard_core::secret::Secret;

use super::config::{IrcFile, Sasl};
use super::session::{LINE_BYTES, Registration, RegistrationError, fold, inbound, sender};

fn msg(line: &str) -> Message {
    line.parse().unwrap()
}

/// The lines the negotiation sends on each of `server`'s lines, in order.
fn negotiate(sasl: Option<&Sasl>, server: &[&str]) -> Result<Vec<String>, RegistrationError> {
    let (mut r, first) = Registration::start(sasl);
    let mut sent: Vec<String> = first.into_iter().map(|c| text(&c)).collect();
    for line in server {
        sent.extend(r.on(&msg(line))?.iter().map(text));
    }
    Ok(sent)
}

fn text(c: &Command) -> String {
    Message::from(c.clone()).to_string().trim_end().to_owned()
}

fn plain() -> Sasl {
    Sasl::Plain {
        username: "switchboard".to_owned(),
        password: Secret::new("s3cret".to_owned()),
    }
}

#[test]
fn a_server_without_the_capabilities_wanted_ends_the_negotiation_at_once() {
    let sent = negotiate(None, &[":irc.test CAP * LS :multi-prefix"]).unwrap();
    assert_eq!(sent, ["CAP LS 302", "CAP END"]);
    // One that does not know CAP at all just welcomes us.
    let sent = negotiate(None, &[":irc.test 001 switchboard :Welcome"]).unwrap();
    assert_eq!(sent, ["CAP LS 302"]);
}

#[test]
fn the_sender_account_is_asked_for_over_an_offer_of_several_lines() {
    let sent = negotiate(
        None,
        &[
            ":irc.test CAP * LS * :multi-prefix sasl=PLAIN,EXTERNAL",
            ":irc.test CAP * LS :account-tag message-tags server-time",
            ":irc.test CAP switchboard ACK :account-tag message-tags",
        ],
    )
    .unwrap();
    assert_eq!(
        sent,
        ["CAP LS 302", "CAP REQ :account-tag message-tags", "CAP END"]
    );
}

#[test]
fn sasl_plain_logs_in_before_the_negotiation_ends() {
    let sasl = plain();
    let sent = negotiate(
        Some(&sasl),
        &[
            ":irc.test CAP * LS :sasl account-tag",
            ":irc.test CAP switchboard ACK :account-tag sasl",
            "AUTHENTICATE +",
            ":irc.test 900 switchboard switchboard!sb@host switchboard :You are now logged in",
            ":irc.test 903 switchboard :SASL authentication successful",
        ],
    )
    .unwrap();
    assert_eq!(
        sent,
        [
            "CAP LS 302",
            "CAP REQ :account-tag sasl",
            "AUTHENTICATE PLAIN",
            // base64("\0switchboard\0s3cret")
            "AUTHENTICATE AHN3aXRjaGJvYXJkAHMzY3JldA==",
            "CAP END",
        ]
    );
}

#[test]
fn sasl_refused_or_not_offered_stops_the_connection_with_the_reason() {
    let sasl = plain();
    let refused = negotiate(
        Some(&sasl),
        &[
            ":irc.test CAP * LS :sasl",
            ":irc.test CAP switchboard ACK :sasl",
            "AUTHENTICATE +",
            ":irc.test 904 switchboard :SASL authentication failed",
        ],
    );
    assert_eq!(
        refused.unwrap_err().to_string(),
        "the server refused the SASL login: SASL authentication failed"
    );
    let absent = negotiate(Some(&sasl), &[":irc.test CAP * LS :multi-prefix"]);
    assert_eq!(absent.unwrap_err(), RegistrationError::SaslUnavailable);
    let nak = negotiate(
        Some(&sasl),
        &[
            ":irc.test CAP * LS :sasl",
            ":irc.test CAP switchboard NAK :sasl",
        ],
    );
    assert_eq!(nak.unwrap_err(), RegistrationError::SaslUnavailable);
}

#[test]
fn sasl_external_sends_an_empty_answer() {
    let sasl = Sasl::External {
        cert_file: "/dev/null".into(),
        key: Secret::new(String::new()),
    };
    let sent = negotiate(
        Some(&sasl),
        &[
            ":irc.test CAP * LS :sasl",
            ":irc.test CAP sb ACK :sasl",
            "AUTHENTICATE +",
        ],
    )
    .unwrap();
    assert_eq!(&sent[2..], ["AUTHENTICATE EXTERNAL", "AUTHENTICATE +"]);
}

#[test]
fn only_an_account_the_server_vouches_for_names_the_sender() {
    let tagged = msg("@account=alice;msgid=m1 :al!a@host PRIVMSG #ops :switchboard: uptime");
    let (identity, nick) = sender(&tagged, "libera").unwrap();
    assert_eq!(identity.to_string(), "irc:libera/alice");
    assert_eq!(nick, "al");
    let bare = msg(":alice!a@host PRIVMSG #ops :switchboard: uptime");
    let (identity, _) = sender(&bare, "libera").unwrap();
    assert_eq!(identity.to_string(), "irc:libera/~alice");
    assert!(!identity.is_verified());
    // `account=*` is how servers say "not logged in".
    let star = msg("@account=* :alice!a@host PRIVMSG #ops :hi");
    assert_eq!(sender(&star, "libera").unwrap().0.user, "~alice");
}

#[test]
fn messages_addressed_to_the_bot_are_read_and_others_are_left_to_the_prefix() {
    let m = inbound(
        &msg("@account=alice;msgid=m1 :al!a@host PRIVMSG #ops :Switchboard, uptime now"),
        "switchboard",
        "libera",
    )
    .unwrap();
    assert_eq!(
        (
            m.text.as_str(),
            m.mentioned,
            m.room.id.as_str(),
            m.room.direct
        ),
        ("uptime now", true, "#ops", false)
    );
    assert_eq!(m.delivery_id.as_deref(), Some("m1"));
    assert_eq!(m.origin().unwrap().to_string(), "chat:irc:#ops");

    let chatter = inbound(
        &msg(":al!a@host PRIVMSG #ops :switchboards are great"),
        "switchboard",
        "libera",
    )
    .unwrap();
    assert!(!chatter.mentioned);
    assert_eq!(chatter.text, "switchboards are great");

    let private = inbound(
        &msg(":al!a@host PRIVMSG switchboard :whoami"),
        "switchboard",
        "libera",
    )
    .unwrap();
    assert_eq!(
        (
            private.room.id.as_str(),
            private.room.direct,
            private.mentioned
        ),
        ("al", true, true)
    );

    for ignored in [
        ":al!a@host PRIVMSG switchboard :\u{1}VERSION\u{1}",
        ":switchboard!s@host PRIVMSG #ops :my own line",
        ":al!a@host NOTICE #ops :a notice",
        ":irc.test PRIVMSG #ops :from a server",
    ] {
        assert!(
            inbound(&msg(ignored), "switchboard", "libera").is_none(),
            "{ignored}"
        );
    }
}

#[test]
fn long_replies_are_folded_to_their_first_lines_and_a_link() {
    let text: String = (1..=10).map(|i| format!("line {i}\n")).collect();
    let lines = fold(&text, Some("https://sb.example.com/ui/executions/7"), 4);
    assert_eq!(
        lines,
        [
            "line 1",
            "line 2",
            "line 3",
            "… 7 more lines: https://sb.example.com/ui/executions/7"
        ]
    );
    assert_eq!(fold("a\n\n  \nb", None, 4), ["a", "b"]);
    let wide = "é".repeat(300);
    let cut = fold(&wide, None, 10);
    assert_eq!(
        cut.concat(),
        wide,
        "cut on character boundaries, nothing lost"
    );
    assert!(cut.iter().all(|l| l.len() <= LINE_BYTES));
}

#[test]
fn the_section_is_checked_and_every_problem_named() {
    let file: IrcFile = toml::from_str(
        "server = \"irc.test\"\nnick = \"#bad\"\nchannels = [\"ops\"]\ntls = false\n\
         lines_per_burst = 0\n[sasl]\nmechanism = \"external\"\ncert_file = \"/nonexistent.pem\"\n\
         key_file = \"/nonexistent.key\"\n",
    )
    .unwrap();
    let errors = file.compile().unwrap_err();
    for expected in [
        "chat.irc.nick",
        "chat.irc.channels: `ops`",
        "needs `tls = true`",
        "chat.irc.sasl.key_file",
        "chat.irc.lines_per_burst",
    ] {
        assert!(errors.contains(expected), "{expected} in {errors}");
    }
    let good: IrcFile =
        toml::from_str("server = \"irc.test\"\nnick = \"sb\"\nchannels = [\"#ops\"]\n").unwrap();
    let config = good.compile().unwrap();
    assert_eq!(
        (
            config.port,
            config.network.as_str(),
            config.alt_nicks.clone()
        ),
        (6697, "irc.test", vec!["sb_".to_owned(), "sb__".to_owned()])
    );
}

proptest! {
    #[test]
    fn any_line_from_the_server_is_read_without_panicking(line in "\\PC{0,600}") {
        if let Ok(m) = line.parse::<Message>() {
            let _ = inbound(&m, "switchboard", "net");
            let sasl = plain();
            let (mut r, _) = Registration::start(Some(&sasl));
            let _ = r.on(&m);
        }
    }

    #[test]
    fn folding_keeps_every_line_within_bounds(text in "\\PC{0,3000}", max in 2usize..12) {
        let lines = fold(&text, Some("https://x"), max);
        prop_assert!(lines.len() <= max);
        prop_assert!(lines.iter().all(|l| l.len() <= LINE_BYTES + 40));
        prop_assert!(lines.iter().all(|l| !l.contains('\n') && !l.contains('\r')));
    }
}
