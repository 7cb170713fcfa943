//! XMPP end to end: a real XMPP server (Debian's `prosody`, started in a
//! temporary folder on a free loopback port, TLS from a certificate
//! authority made for the test, two multi-user chat services: one that
//! shows occupants' accounts and one that does not), the real
//! `switchboard` binary connected to it, and an independent client —
//! Python's slixmpp (`xmpp_person.py`) — speaking to the bot as a person
//! would.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{ChildStdin, ChildStdout};

use crate::chat_platforms::every_door::{Asked, Door, Heard, Overhears, doors};
use crate::chat_platforms::focused::link_code;
use crate::harness::{Server, copy_catalog, sample_catalog};
use crate::pg::free_port;
use crate::test_servers::{Process, make_certificates, run};

const DEADLINE: Duration = Duration::from_secs(30);
const OPS: &str = "ops@conference.localhost";
const LOBBY: &str = "lobby@anon.localhost";
const BOT: &str = "switchboard@localhost";

/// A running prosody for `localhost`, with accounts alice, mallory and
/// switchboard.
struct Prosody {
    dir: tempfile::TempDir,
    port: u16,
    process: Option<Process>,
}

impl Prosody {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        make_certificates(d, "localhost", "DNS:localhost");
        std::fs::create_dir(d.join("data")).unwrap();
        let port = free_port();
        std::fs::write(
            d.join("prosody.cfg.lua"),
            format!(
                "run_as_root = true\npidfile = \"{dir}/prosody.pid\"\ndata_path = \"{dir}/data\"\n\
                 log = {{ info = \"{dir}/prosody.log\" }}\ncertificates = \"{dir}\"\n\
                 c2s_ports = {{ {port} }}\nc2s_interfaces = {{ \"127.0.0.1\" }}\n\
                 c2s_direct_tls_ports = {{}}\ns2s_ports = {{}}\nhttp_ports = {{}}\nhttps_ports = {{}}\n\
                 modules_enabled = {{ \"roster\"; \"saslauth\"; \"tls\"; \"disco\"; \"ping\"; \"posix\" }}\n\
                 modules_disabled = {{ \"s2s\" }}\nc2s_require_encryption = true\n\
                 authentication = \"internal_hashed\"\nstorage = \"internal\"\n\
                 ssl = {{ certificate = \"{dir}/server.pem\"; key = \"{dir}/server.key\" }}\n\
                 VirtualHost \"localhost\"\n\
                 Component \"conference.localhost\" \"muc\"\n  muc_room_locking = false\n  \
                 muc_room_default_public_jids = true\n\
                 Component \"anon.localhost\" \"muc\"\n  muc_room_locking = false\n",
                dir = d.display(),
            ),
        )
        .unwrap();
        let config = d.join("prosody.cfg.lua");
        let config = config.to_str().unwrap();
        for (user, password) in [
            ("alice", "alice-pw"),
            ("mallory", "mallory-pw"),
            ("switchboard", "bot-pw"),
        ] {
            run(
                "prosodyctl",
                &["--config", config, "register", user, "localhost", password],
                d,
            );
        }
        let mut server = Self {
            dir,
            port,
            process: None,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let mut command = Command::new("prosody");
        command
            .arg("--config")
            .arg(self.dir.path().join("prosody.cfg.lua"))
            .arg("-F");
        self.process = Some(Process::start(command, self.port));
    }

    fn stop(&mut self) {
        self.process = None;
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

/// A person on XMPP: slixmpp, driven by JSON lines.
struct Person {
    name: String,
    child: tokio::process::Child,
    stdin: ChildStdin,
    events: Lines<BufReader<ChildStdout>>,
}

impl Person {
    async fn connect(server: &Prosody, name: &str, password: &str) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/xmpp_person.py");
        let mut child = tokio::process::Command::new("/usr/bin/python3")
            .arg(script)
            .arg(format!("{name}@localhost"))
            .arg(password)
            .arg(server.ca())
            .arg("127.0.0.1")
            .arg(server.port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 with slixmpp (Debian package python3-slixmpp)");
        let mut me = Self {
            name: name.to_owned(),
            stdin: child.stdin.take().unwrap(),
            events: BufReader::new(child.stdout.take().unwrap()).lines(),
            child,
        };
        me.expect("being online", |e| e["event"] == "online").await;
        me
    }

    async fn command(&mut self, command: Value) {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .unwrap();
    }

    async fn join(&mut self, room: &str) {
        self.command(json!({"join": room, "nick": self.name})).await;
        self.expect(&format!("joining {room}"), |e| {
            e["event"] == "joined" && e["room"] == room
        })
        .await;
    }

    async fn say_in(&mut self, room: &str, text: &str) {
        self.command(json!({"say": text, "to": room, "type": "groupchat"}))
            .await;
    }

    async fn say_to(&mut self, jid: &str, text: &str) {
        self.command(json!({"say": text, "to": jid, "type": "chat"}))
            .await;
    }

    /// Reads events until one passes `want`; returns it.
    async fn expect(&mut self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let line = tokio::time::timeout_at(deadline, self.events.next_line())
                .await
                .unwrap_or_else(|_| panic!("{} waited in vain for {what}", self.name))
                .unwrap()
                .unwrap_or_else(|| panic!("{}'s client ended before {what}", self.name));
            let event: Value = serde_json::from_str(&line).unwrap();
            assert_ne!(event["event"], "error", "{}: {event}", self.name);
            if want(&event) {
                return event;
            }
        }
    }

    /// Waits until `who` is in `room` (its presence, as the room tells).
    async fn sees_in(&mut self, room: &str, who: &str) {
        let from = format!("{room}/{who}");
        self.expect(&format!("{who} in {room}"), |e| {
            e["event"] == "presence" && e["from"] == from.as_str() && e["type"] == "available"
        })
        .await;
    }

    /// The messages `from` (a JID, or any session of an account) sends
    /// until one's body contains `last`.
    async fn replies(&mut self, from: &str, last: &str) -> Vec<Value> {
        let session = format!("{from}/");
        let mut said = Vec::new();
        loop {
            let m = self
                .expect(&format!("{from} saying {last:?}"), |e| {
                    let sender = e["from"].as_str().unwrap_or_default();
                    e["event"] == "message" && (sender == from || sender.starts_with(&session))
                })
                .await;
            let done = m["body"].as_str().unwrap_or_default().contains(last);
            said.push(m);
            if done {
                return said;
            }
        }
    }
}

impl Drop for Person {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn bodies(said: &[Value]) -> String {
    said.iter()
        .map(|m| m["body"].as_str().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The configuration of the bot on `prosody`, in `rooms`; its password
/// kept in `password`.
fn bot_config(prosody: &Prosody, password: &tempfile::NamedTempFile, rooms: &[&str]) -> String {
    std::fs::write(password.path(), "bot-pw\n").unwrap();
    let rooms: Vec<String> = rooms.iter().map(|r| format!("\"{r}\"")).collect();
    format!(
        "[chat.xmpp]\njid = \"{BOT}\"\npassword = \"file:{}\"\nserver = \"127.0.0.1\"\n\
         port = {}\nca_file = \"{}\"\nrooms = [{}]\n",
        password.path().display(),
        prosody.port,
        prosody.ca().display(),
        rooms.join(", ")
    )
}

#[tokio::test]
async fn the_bot_answers_in_rooms_and_directly_links_only_accounts_and_comes_back_after_kicks_and_restarts()
 {
    let mut prosody = Prosody::start();
    let mut alice = Person::connect(&prosody, "alice", "alice-pw").await;
    alice.join(OPS).await;
    alice.join(LOBBY).await;

    let catalog = tempfile::tempdir().unwrap();
    copy_catalog(&sample_catalog(), catalog.path());
    let password = tempfile::NamedTempFile::new().unwrap();
    let config = format!(
        "[chat]\npublic_url = \"http://sb.example\"\nprogress_after = \"300ms\"\n\
         progress_every = \"300ms\"\n\n{}",
        bot_config(&prosody, &password, &[OPS, LOBBY])
    );
    let server = Server::start_with_config(catalog.path(), &config);
    alice.sees_in(OPS, "switchboard").await;

    // Addressed in the room: runs, answered in the room.
    alice.say_in(OPS, "switchboard: echo hello from xmpp").await;
    let bot_in_ops = format!("{OPS}/switchboard");
    let said = alice.replies(&bot_in_ops, "succeeded").await;
    let all = bodies(&said);
    assert!(all.contains("demo.echo #"), "{all}");
    assert!(all.contains("http://sb.example/"), "{all}");
    let (_, runs) = server.get("/executions?action=demo.echo").await;
    let run = &runs["executions"][0];
    assert_eq!(
        (
            run["origin"].as_str(),
            run["requester"].as_str(),
            run["status"].as_str()
        ),
        (
            Some("chat:xmpp:ops@conference.localhost"),
            Some("anonymous"),
            Some("succeeded")
        ),
        "{run}"
    );

    // A long run: its progress corrects the acknowledgement in place
    // (XEP-0308), and the result follows.
    alice
        .say_in(OPS, "switchboard: slow steps=3 every 400ms")
        .await;
    let said = alice.replies(&bot_in_ops, "demo.slow #").await;
    let ack = said.last().unwrap()["id"].as_str().unwrap().to_owned();
    let said = alice.replies(&bot_in_ops, "succeeded").await;
    assert!(
        said.iter()
            .any(|m| m["replace"] == ack.as_str()
                && m["body"].as_str().unwrap().contains("running for")),
        "{said:?}"
    );

    // Directly: the account is who alice is, and it can be linked.
    alice.say_to(BOT, "whoami").await;
    let said = alice.replies(BOT, "xmpp:localhost/alice").await;
    assert_eq!(said.last().unwrap()["type"], "chat", "{said:?}");
    alice.say_to(BOT, "link").await;
    let said = alice.replies(BOT, "Your link code is ").await;
    let code = link_code(said.last().unwrap()["body"].as_str().unwrap());
    let out = server.cli_as(&server.token_for("alice"), &["link", &code]);
    assert!(out.status.success(), "{out:?}");

    // In the room that shows accounts, alice is now alice.
    alice.say_in(OPS, "switchboard: echo as alice").await;
    alice.replies(&bot_in_ops, "succeeded").await;
    let (_, runs) = server.get("/executions?action=demo.echo").await;
    assert_eq!(
        runs["executions"][0]["requester"].as_str(),
        Some("alice"),
        "{runs}"
    );

    // In a room that hides accounts she is only a nick: anonymous.
    alice.say_in(LOBBY, "switchboard: whoami").await;
    let said = alice
        .replies(&format!("{LOBBY}/switchboard"), "anonymous")
        .await;
    assert!(
        bodies(&said).contains("xmpp:lobby@anon.localhost/~alice"),
        "{said:?}"
    );
    // Chatter that does not address the bot is left alone.
    alice.say_in(OPS, "echo to nobody in particular").await;

    // Kicked (alice made the room, so she may), it comes back.
    alice
        .command(json!({"kick": "switchboard", "room": OPS}))
        .await;
    alice
        .expect("the bot leaving", |e| {
            e["event"] == "presence"
                && e["from"] == bot_in_ops.as_str()
                && e["type"] == "unavailable"
        })
        .await;
    alice.sees_in(OPS, "switchboard").await;

    // The server restarts: the bot reconnects and rejoins.
    drop(alice);
    prosody.stop();
    prosody.spawn();
    let mut alice = Person::connect(&prosody, "alice", "alice-pw").await;
    alice.join(OPS).await;
    alice.sees_in(OPS, "switchboard").await;
    alice
        .say_in(OPS, "switchboard: echo after the restart")
        .await;
    alice.replies(&bot_in_ops, "succeeded").await;
    let (_, runs) = server.get("/executions?action=demo.echo").await;
    let runs = runs["executions"].as_array().unwrap();
    // Three echoes: the chatter that did not address the bot ran nothing.
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert_eq!(runs[0]["requester"].as_str(), Some("alice"), "{runs:?}");
}

/// Prosody with the bot in the ops room, which shows occupants'
/// accounts, and people joining it as they first speak.
struct XmppDoor {
    prosody: Prosody,
    server: Server,
    people: std::collections::HashMap<&'static str, (Person, Heard)>,
    _files: (tempfile::TempDir, tempfile::NamedTempFile),
}

impl XmppDoor {
    /// `user`, in the ops room (joining it the first time).
    async fn person(&mut self, user: &'static str) -> &mut (Person, Heard) {
        if !self.people.contains_key(user) {
            let mut person = Person::connect(&self.prosody, user, &format!("{user}-pw")).await;
            person.join(OPS).await;
            self.people.insert(user, (person, Heard::default()));
        }
        self.people.get_mut(user).unwrap()
    }

    /// Reads `user`'s events until what the bot said in `place` (`ops`
    /// or `private`) contains `needle` after `mark`.
    async fn heard(&mut self, user: &'static str, mark: &str, place: &str, needle: &str) -> String {
        let (person, heard) = self.person(user).await;
        let in_ops = format!("{OPS}/switchboard");
        let privately = format!("{BOT}/");
        loop {
            if let Some(said) = heard.find(mark, place, needle) {
                return said;
            }
            let m = person
                .expect(&format!("the bot saying {needle:?} ({place})"), |e| {
                    let from = e["from"].as_str().unwrap_or_default();
                    e["event"] == "message" && (from == in_ops || from.starts_with(&privately))
                })
                .await;
            let place = if m["from"] == in_ops.as_str() {
                "ops"
            } else {
                "private"
            };
            heard.push(
                place.to_owned(),
                m["body"].as_str().unwrap_or_default().to_owned(),
            );
        }
    }
}

impl Door for XmppDoor {
    async fn open() -> Self {
        let prosody = Prosody::start();
        // Alice makes the room before the bot comes, and sees it come.
        let mut alice = Person::connect(&prosody, "alice", "alice-pw").await;
        alice.join(OPS).await;
        let catalog = tempfile::tempdir().unwrap();
        copy_catalog(&sample_catalog(), catalog.path());
        let password = tempfile::NamedTempFile::new().unwrap();
        let config = format!(
            "{}\n{}",
            crate::authz::TEAM,
            bot_config(&prosody, &password, &[OPS])
        );
        let server = Server::start_with_config(catalog.path(), &config);
        alice.sees_in(OPS, "switchboard").await;
        Self {
            prosody,
            server,
            people: [("alice", (alice, Heard::default()))].into(),
            _files: (catalog, password),
        }
    }

    fn server(&self) -> &Server {
        &self.server
    }

    fn origin(&self) -> String {
        format!("chat:xmpp:{OPS}")
    }

    async fn ask(&mut self, user: &'static str, text: &str) -> Asked {
        let (person, heard) = self.person(user).await;
        let handle = heard.mark();
        person.say_in(OPS, &format!("switchboard: {text}")).await;
        Asked { user, handle }
    }

    async fn answer(&mut self, asked: &Asked, needle: &str) -> String {
        self.heard(asked.user, &asked.handle, "ops", needle).await
    }

    async fn private(&mut self, user: &'static str, needle: &str) -> String {
        self.heard(user, "0", "private", needle).await
    }
}

impl Overhears for XmppDoor {
    async fn chatter(&mut self, user: &'static str, text: &str) {
        self.person(user).await.0.say_in(OPS, text).await;
    }
}

doors!(XmppDoor;
    asked_in_ops_it_runs_as_the_speaker_from_ops_and_is_answered_there,
    an_account_linked_through_chat_runs_as_its_user,
    what_is_refused_or_not_understood_is_told_and_nothing_runs,
    a_message_too_long_to_read_is_refused,
    only_what_addresses_the_bot_runs,
);
