//! IRC end to end: a real IRC server (Debian's `ngircd`, started in a
//! temporary folder on free loopback ports, with TLS from a certificate
//! authority made for the test), the real `switchboard` binary connected
//! to it, and a second, independent client — plain lines over TCP, written
//! here — speaking to the bot as a person would.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::chat_platforms::every_door::{Asked, Door, Heard, Overhears, doors};
use crate::harness::{Server, copy_catalog, sample_catalog};
use crate::pg::free_port;
use crate::test_servers::{Process, make_certificates, run};

const DEADLINE: Duration = Duration::from_secs(20);

/// A running ngircd with a plain and a TLS port.
struct Ngircd {
    dir: tempfile::TempDir,
    port: u16,
    tls_port: u16,
    process: Option<Process>,
}

impl Ngircd {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // A certificate authority, and the server's certificate for
        // 127.0.0.1 signed by it.
        make_certificates(d, "127.0.0.1", "IP:127.0.0.1");
        // ngircd drops root for `nobody`, who must read its files.
        for f in ["server.pem", "server.key"] {
            run("chmod", &["a+r", f], d);
        }
        run("chmod", &["a+rx", "."], d);
        let (port, tls_port) = (free_port(), free_port());
        std::fs::write(
            d.join("ngircd.conf"),
            format!(
                "[Global]\nName = irc.test\nInfo = Switchboard test\nListen = 127.0.0.1\n\
                 Ports = {port}\nServerUID = 65534\nServerGID = 65534\n\
                 PidFile = {pid}\nMotdPhrase = \"Switchboard test\"\n\
                 [Limits]\nPingTimeout = 120\nPongTimeout = 20\nMaxNickLength = 30\n\
                 [Options]\nDNS = no\nIdent = no\nPAM = no\n\
                 [SSL]\nCertFile = {dir}/server.pem\nKeyFile = {dir}/server.key\nPorts = {tls_port}\n",
                pid = d.join("ngircd.pid").display(),
                dir = d.display(),
            ),
        )
        .unwrap();
        let mut server = Self {
            dir,
            port,
            tls_port,
            process: None,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let mut command = Command::new("ngircd");
        command
            .args(["--nodaemon", "--config"])
            .arg(self.dir.path().join("ngircd.conf"));
        self.process = Some(Process::start(command, self.tls_port));
    }

    fn stop(&mut self) {
        self.process = None;
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

/// A person on IRC: raw protocol lines over TCP.
struct Person {
    nick: String,
    lines: tokio::io::Lines<BufReader<OwnedReadHalf>>,
    out: OwnedWriteHalf,
}

impl Person {
    async fn connect(port: u16, nick: &str) -> Self {
        let (read, out) = TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap()
            .into_split();
        let mut me = Self {
            nick: nick.to_owned(),
            lines: BufReader::new(read).lines(),
            out,
        };
        me.send(&format!("NICK {nick}")).await;
        me.send(&format!("USER {nick} 0 * :{nick}")).await;
        me.expect(&format!("welcome of {nick}"), |l| l.contains(" 001 "))
            .await;
        me
    }

    async fn send(&mut self, line: &str) {
        self.out
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
    }

    async fn say(&mut self, to: &str, text: &str) {
        self.send(&format!("PRIVMSG {to} :{text}")).await;
    }

    /// Reads (answering pings) until a line passes `want`; returns it.
    async fn expect(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("{} waited in vain for {what}", self.nick))
                .unwrap()
                .unwrap_or_else(|| panic!("{}'s connection closed before {what}", self.nick));
            if let Some(token) = line.strip_prefix("PING ") {
                self.send(&format!("PONG {token}")).await;
                continue;
            }
            if want(&line) {
                return line;
            }
        }
    }

    /// Asks for the names in `channel` until `nick` is among them.
    async fn wait_in_channel(&mut self, channel: &str, nick: &str) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            self.send(&format!("NAMES {channel}")).await;
            let names = self.expect("the names", |l| l.contains(" 353 ")).await;
            let listed = names
                .rsplit(':')
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .any(|n| n.trim_start_matches(['@', '+']) == nick);
            if listed {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{nick} never came back to {channel}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The lines the bot says to `to` until one contains `last`.
    async fn replies(&mut self, bot: &str, to: &str, last: &str) -> Vec<String> {
        let head = format!(":{bot}!");
        let target = format!(" PRIVMSG {to} :");
        let mut said = Vec::new();
        loop {
            let line = self
                .expect(&format!("{bot} saying {last:?} to {to}"), |l| {
                    l.starts_with(&head) && l.contains(&target)
                })
                .await;
            let text = line.split_once(&target).unwrap().1.to_owned();
            let done = text.contains(last);
            said.push(text);
            if done {
                return said;
            }
        }
    }
}

#[tokio::test]
async fn the_bot_answers_in_its_channel_and_privately_and_comes_back_after_kicks_and_restarts() {
    let mut ircd = Ngircd::start();
    // The nick is taken: the bot uses its first alternative.
    let squatter = Person::connect(ircd.port, "switchboard").await;
    let mut alice = Person::connect(ircd.port, "alice").await;
    alice.send("JOIN #ops").await;
    alice.expect("alice in #ops", |l| l.contains(" 366 ")).await;

    let catalog = tempfile::tempdir().unwrap();
    copy_catalog(&sample_catalog(), catalog.path());
    std::fs::write(
        catalog.path().join("actions/demo/count.toml"),
        "name = \"demo.count\"\ndescription = \"Count\"\ncommand = [\"seq\", \"{{ n }}\"]\n\
         tags = [\"demo\"]\n[params.n]\ntype = \"integer\"\n[[aliases]]\nformat = \"count {n}\"\n",
    )
    .unwrap();
    let config = format!(
        "[chat]\npublic_url = \"http://sb.example\"\n\n[chat.irc]\nserver = \"127.0.0.1\"\n\
         port = {}\nca_file = \"{}\"\nnick = \"switchboard\"\nchannels = [\"#ops\"]\n\
         network = \"testnet\"\nlines_per_burst = 20\nburst_seconds = 1\nmax_lines = 3\n",
        ircd.tls_port,
        ircd.ca().display()
    );
    let server = Server::start_with_config(catalog.path(), &config);
    let bot = "switchboard_";
    alice
        .expect("the bot joining over TLS", |l| {
            l.starts_with(&format!(":{bot}!")) && l.contains(" JOIN ")
        })
        .await;

    // Addressed in the channel: runs, answered in the channel.
    alice
        .say("#ops", &format!("{bot}: echo hello from irc"))
        .await;
    let said = alice.replies(bot, "#ops", "succeeded").await;
    let all = said.join("\n");
    assert!(all.contains("Running demo.echo"), "{all}");
    let result = said.last().unwrap();
    assert!(
        result.contains("demo.echo #") && result.contains("(http://sb.example/"),
        "{result}"
    );
    alice
        .expect("the output", |l| {
            l.contains(" PRIVMSG #ops :hello from irc")
        })
        .await;
    let (_, runs) = server.get("/executions?action=demo.echo").await;
    let run = &runs["executions"][0];
    assert_eq!(
        (
            run["origin"].as_str(),
            run["requester"].as_str(),
            run["status"].as_str()
        ),
        (Some("chat:irc:#ops"), Some("anonymous"), Some("succeeded")),
        "{run}"
    );
    // The auditor's report: the door is connected, and heard alice.
    let door = irc_door_when(&server, |state| state.starts_with("connected on test-node")).await;
    assert!(
        door["state"]
            .as_str()
            .unwrap()
            .ends_with("as switchboard_)"),
        "{door}"
    );
    assert!(door["last_event"].is_string(), "{door}");

    // Long output: the first lines, and the rest on the web page.
    alice.say("#ops", &format!("{bot}: count 50")).await;
    let said = alice
        .replies(bot, "#ops", "more lines: http://sb.example/")
        .await;
    // The acknowledgement, then the result folded to max_lines = 3.
    assert_eq!(said.len(), 4, "{said:?}");
    assert!(
        said[1].contains("demo.count #") && said[1].contains("succeeded"),
        "{said:?}"
    );
    assert!(
        said[3].starts_with("… 15 more lines: http://sb.example/") && said[3].ends_with("/output"),
        "{said:?}"
    );

    // A bare nick is nobody: alice cannot link, and is told why.
    alice.say(bot, "whoami").await;
    let said = alice.replies(bot, "alice", "anonymous").await;
    assert!(
        said.concat().contains("irc:testnet/~alice")
            && said.concat().contains("not signed in to an account"),
        "{said:?}"
    );
    alice.say(bot, "link").await;
    let said = alice.replies(bot, "alice", "Refused").await;
    assert!(said.concat().contains("anyone can take a nick"), "{said:?}");
    // Chatter that does not address the bot is left alone.
    alice.say("#ops", "echo to nobody in particular").await;

    // Kicked, it comes back.
    alice.send(&format!("KICK #ops {bot} :out")).await;
    alice
        .expect("the bot rejoining", |l| {
            l.starts_with(&format!(":{bot}!")) && l.contains(" JOIN ")
        })
        .await;

    // The server restarts: the bot reconnects (with backoff) and rejoins;
    // the nick is free now.
    drop(squatter);
    ircd.stop();
    let door = irc_door_when(&server, |state| state.starts_with("not connected since")).await;
    assert!(
        door["state"].as_str().unwrap().ends_with("(test-node)"),
        "{door}"
    );
    ircd.spawn();
    let mut alice = Person::connect(ircd.port, "alice").await;
    alice.send("JOIN #ops").await;
    alice
        .expect("alice in #ops again", |l| l.contains(" 366 "))
        .await;
    // The bot may have come back before alice or after her.
    alice.wait_in_channel("#ops", "switchboard").await;
    alice
        .say("#ops", "switchboard: echo after the restart")
        .await;
    let said = alice.replies("switchboard", "#ops", "succeeded").await;
    assert!(said.last().unwrap().contains("demo.echo #"), "{said:?}");
    let (_, runs) = server.get("/executions?action=demo.echo").await;
    // Two echoes: the chatter that did not address the bot ran nothing.
    assert_eq!(runs["executions"].as_array().unwrap().len(), 2, "{runs}");
    let door = irc_door_when(&server, |state| state.starts_with("connected on")).await;
    assert!(
        door["state"].as_str().unwrap().ends_with("as switchboard)"),
        "{door}"
    );
}

/// The report's `chat:irc` door, once its state satisfies `wanted`.
async fn irc_door_when(server: &Server, wanted: impl Fn(&str) -> bool) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, report) = server.get("/report?actions=demo.echo").await;
        let door = report["doors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["door"] == "chat:irc")
            .cloned()
            .unwrap_or_else(|| panic!("no IRC door in {report}"));
        if wanted(door["state"].as_str().unwrap_or_default()) {
            return door;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the IRC door never got there: {door}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// An IRC network with the bot in `#ops`, and people joining as they
/// first speak; their nicks are all they are (ngircd has no services).
struct IrcDoor {
    ircd: Ngircd,
    server: Server,
    people: std::collections::HashMap<&'static str, (Person, Heard)>,
    _catalog: tempfile::TempDir,
}

impl IrcDoor {
    /// `user`, in `#ops` (joining it the first time).
    async fn person(&mut self, user: &'static str) -> &mut (Person, Heard) {
        if !self.people.contains_key(user) {
            let mut person = Person::connect(self.ircd.port, user).await;
            person.send("JOIN #ops").await;
            person.expect("joining #ops", |l| l.contains(" 366 ")).await;
            self.people.insert(user, (person, Heard::default()));
        }
        self.people.get_mut(user).unwrap()
    }

    /// Reads `user`'s lines until what the bot said to `place` contains
    /// `needle` after `mark`.
    async fn heard(&mut self, user: &'static str, mark: &str, place: &str, needle: &str) -> String {
        let (person, heard) = self.person(user).await;
        loop {
            if let Some(said) = heard.find(mark, place, needle) {
                return said;
            }
            let line = person
                .expect(&format!("the bot saying {needle:?} to {place}"), |l| {
                    l.starts_with(":switchboard!") && l.contains(" PRIVMSG ")
                })
                .await;
            let (head, text) = line.split_once(" :").unwrap();
            let target = head.rsplit(' ').next().unwrap().to_owned();
            heard.push(target, text.to_owned());
        }
    }
}

impl Door for IrcDoor {
    async fn open() -> Self {
        let ircd = Ngircd::start();
        let catalog = tempfile::tempdir().unwrap();
        copy_catalog(&sample_catalog(), catalog.path());
        let config = format!(
            "{}\n[chat.irc]\nserver = \"127.0.0.1\"\nport = {}\nca_file = \"{}\"\n\
             nick = \"switchboard\"\nchannels = [\"#ops\"]\nnetwork = \"testnet\"\n\
             lines_per_burst = 50\nburst_seconds = 1\n",
            crate::authz::TEAM,
            ircd.tls_port,
            ircd.ca().display()
        );
        let server = Server::start_with_config(catalog.path(), &config);
        let mut door = Self {
            ircd,
            server,
            people: std::collections::HashMap::new(),
            _catalog: catalog,
        };
        let (alice, _) = door.person("alice").await;
        alice.wait_in_channel("#ops", "switchboard").await;
        door
    }

    fn server(&self) -> &Server {
        &self.server
    }

    fn origin(&self) -> String {
        "chat:irc:#ops".to_owned()
    }

    async fn ask(&mut self, user: &'static str, text: &str) -> Asked {
        let (person, heard) = self.person(user).await;
        let handle = heard.mark();
        person.say("#ops", &format!("switchboard: {text}")).await;
        Asked { user, handle }
    }

    async fn answer(&mut self, asked: &Asked, needle: &str) -> String {
        self.heard(asked.user, &asked.handle, "#ops", needle).await
    }

    async fn private(&mut self, user: &'static str, needle: &str) -> String {
        self.heard(user, "0", user, needle).await
    }
}

impl Overhears for IrcDoor {
    async fn chatter(&mut self, user: &'static str, text: &str) {
        self.person(user).await.0.say("#ops", text).await;
    }
}

doors!(IrcDoor;
    asked_in_ops_it_runs_as_the_speaker_from_ops_and_is_answered_there,
    a_bare_nick_is_never_linked,
    what_is_refused_or_not_understood_is_told_and_nothing_runs,
    only_what_addresses_the_bot_runs,
);
