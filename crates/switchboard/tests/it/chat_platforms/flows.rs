//! Whole stories through a platform: linking a chat account (the code comes
//! by direct message through the platform's API, is confirmed with
//! `switchboard link`, and the next message runs as that user; refusals
//! claiming a linked user are audited), and the two-person rule answered
//! with the buttons of the approval request (or left to lapse).

use std::time::{Duration, Instant};

use super::fake::eventually;
use super::{Delivery, Msg, Platform, Rig, Room, execution_id};
use crate::harness::text;

const CODE_SENT: &str = "Your link code is ";

/// The link codes the bot sent `user` by direct message, oldest first.
fn codes_sent<P: Platform>(rig: &Rig<P>, user: &str) -> Vec<String> {
    let Some(dm) = rig.fake.direct_room(user) else {
        return Vec::new();
    };
    rig.fake
        .said()
        .into_iter()
        .filter(|s| s.room == dm && s.text.contains(CODE_SENT))
        .map(|s| {
            let start = s.text.find(CODE_SENT).unwrap() + CODE_SENT.len();
            let code: String = s.text[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            assert_eq!(code.len(), 9, "{}", s.text);
            assert!(
                s.text.contains(&format!("`switchboard link {code}`")),
                "{}",
                s.text
            );
            code
        })
        .collect()
}

/// `user` says `link` in `ops` (or, `privately`, in their direct
/// conversation with the bot) and receives a new code by direct message;
/// returns it.
async fn request_code<P: Platform>(rig: &Rig<P>, user: &'static str, privately: bool) -> String {
    let before = codes_sent(rig, user).len();
    let m: Msg = if privately {
        let (m, delivery) = rig.fake.direct(user, "link");
        rig.deliver(delivery).await;
        m
    } else {
        let m = rig.fake.msg(user, Room::Ops, "link", None);
        rig.deliver(rig.fake.hook(&m)).await;
        m
    };
    let answer = rig.reply(m.reply_thread(), "").await;
    let expected = if privately {
        "Code sent above."
    } else {
        "I sent you a link code in a direct message."
    };
    assert_eq!(answer.text, expected, "{}", rig.transcript());
    let code = eventually(
        || format!("a new code for {user}{}", rig.transcript()),
        || codes_sent(rig, user).get(before).cloned(),
    )
    .await;
    assert_ne!(
        rig.fake.direct_room(user).as_deref(),
        Some(rig.fake.room_id(Room::Ops).as_str())
    );
    // Never in a room.
    for room in [Room::Ops, Room::General] {
        assert!(
            rig.in_room(room).iter().all(|s| !s.text.contains(&code)),
            "{}",
            rig.transcript()
        );
    }
    code
}

/// Confirms `code` with the CLI, signed in as `user` with `token`.
fn confirm<P: Platform>(rig: &Rig<P>, user: &str, token: &str, code: &str) {
    let out = rig.server.cli_as(token, &["link", code]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        text(&out.stdout).trim(),
        format!("linked {} to {user}", rig.fake.identity(user))
    );
}

/// Confirming `code` fails, signed in with `token`.
fn refused<P: Platform>(rig: &Rig<P>, token: &str, code: &str) {
    let out = rig.server.cli_as(token, &["link", code]);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        text(&out.stderr).contains("unknown, already used or expired"),
        "{out:?}"
    );
}

/// `user` links their chat account through `ops`.
pub(crate) async fn link<P: Platform>(rig: &Rig<P>, user: &'static str, token: &str) {
    let code = request_code(rig, user, false).await;
    confirm(rig, user, token, &code);
}

pub async fn an_account_linked_through_chat_runs_as_its_user_until_unlinked<P: Platform>() {
    let rig = Rig::<P>::start();
    let alice = rig.server.token_for("alice");
    let bob = rig.server.token_for("bob");
    let identity = rig.fake.identity("alice");

    // Not linked yet: alice acts as `anonymous`, who may not restart
    // services, and is told how to link.
    let refused_run = rig
        .ask("alice", Room::Ops, "restart nginx", "Refused:")
        .await;
    assert!(
        refused_run
            .text
            .contains("no policy permits anonymous to run service.restart")
            && refused_run
                .text
                .contains("You are not linked to a Switchboard user: say `link`"),
        "{}",
        refused_run.text
    );
    let whoami = rig.ask("alice", Room::Ops, "whoami", "You are").await;
    assert!(
        whoami
            .text
            .contains(&format!("You are {identity}, not linked"))
            && whoami.text.contains("`anonymous`"),
        "{}",
        whoami.text
    );

    // Asking again replaces the code; a code works once, whoever tries it again.
    let first = request_code(&rig, "alice", false).await;
    let code = request_code(&rig, "alice", false).await;
    assert_ne!(first, code);
    refused(&rig, &alice, &first);
    confirm(&rig, "alice", &alice, &code);
    refused(&rig, &bob, &code);
    refused(&rig, &alice, &code);
    let out = rig.server.cli_as(&alice, &["links"]);
    assert!(text(&out.stdout).contains(&identity), "{out:?}");

    // The next message runs as alice, from the room, as policies allow her.
    let m = rig.fake.msg("alice", Room::Ops, "restart nginx", None);
    rig.deliver(rig.fake.hook(&m)).await;
    rig.reply(m.reply_thread(), "Restarting nginx…").await;
    let result = rig.reply(m.reply_thread(), "succeeded").await;
    let id = execution_id(&result.text, "service.restart");
    let e = rig.finished(id).await;
    assert_eq!(e["requester"], "alice");
    assert_eq!(e["origin"], rig.fake.origin(Room::Ops));
    assert_eq!(e["status"], "succeeded");
    let whoami = rig.ask("alice", Room::Ops, "whoami", "You are").await;
    assert!(
        whoami
            .text
            .contains(&format!("You are {identity}, linked to alice (groups sre)")),
        "{}",
        whoami.text
    );
    // The policies see the room: sre restarts services from ops only.
    let refused_run = rig
        .ask("alice", Room::General, "restart nginx", "Refused:")
        .await;
    assert!(
        refused_run
            .text
            .contains("no policy permits alice to run service.restart"),
        "{}",
        refused_run.text
    );
    assert!(!refused_run.text.contains("link"), "{}", refused_run.text);

    // Unlinked, alice is anonymous again.
    let answer = rig.ask("alice", Room::Ops, "unlink", "linked").await;
    assert_eq!(
        answer.text,
        format!("{identity} is no longer linked to alice.")
    );
    let refused_run = rig
        .ask("alice", Room::Ops, "restart nginx", "Refused:")
        .await;
    assert!(
        refused_run.text.contains("anonymous") && refused_run.text.contains("say `link`"),
        "{}",
        refused_run.text
    );
    assert_eq!(rig.executions().await.len(), 1);

    // Linked again, from the direct conversation with the bot.
    let code = request_code(&rig, "alice", true).await;
    confirm(&rig, "alice", &alice, &code);
    let (m, delivery) = rig.fake.direct("alice", "whoami");
    rig.deliver(delivery).await;
    let whoami = rig.reply(m.reply_thread(), "You are").await;
    assert!(whoami.text.contains("linked to alice"), "{}", whoami.text);

    // Each step is in the audit log.
    let subject = format!("chat:{identity}");
    let requested = rig.audit("chat.link.requested").await;
    assert_eq!(requested.len(), 3, "{requested:#?}");
    for r in &requested {
        assert_eq!(r["subject"], subject, "{r}");
        assert_eq!(r["outcome"], "sent", "{r}");
    }
    assert_eq!(requested[0]["origin"], rig.fake.origin(Room::Ops));
    let confirmed = rig.audit("chat.link.confirmed").await;
    assert_eq!(confirmed.len(), 2, "{confirmed:#?}");
    for r in &confirmed {
        assert_eq!(r["subject"], subject, "{r}");
        assert_eq!(r["actor"], "alice", "{r}");
    }
    let failed = rig.audit("chat.link.failed").await;
    let failed_by: Vec<&str> = failed
        .iter()
        .map(|r| r["actor"].as_str().unwrap())
        .collect();
    assert_eq!(failed_by, ["alice", "bob", "alice"], "{failed:#?}");
    let unlinked = rig.audit("chat.unlinked").await;
    assert_eq!(unlinked.len(), 1, "{unlinked:#?}");
    assert_eq!(unlinked[0]["subject"], subject);
    assert_eq!(unlinked[0]["actor"], "alice");
    assert_eq!(unlinked[0]["origin"], rig.fake.origin(Room::Ops));
}

/// The `chat.rejected` records, once there are more than `before`.
async fn rejections_beyond<P: Platform>(rig: &Rig<P>, before: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let records = rig.audit("chat.rejected").await;
        if records.len() > before {
            return records;
        }
        assert!(Instant::now() < deadline, "no new chat.rejected record");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub async fn refused_requests_that_claim_a_linked_user_are_audited<P: Platform>() {
    let rig = Rig::<P>::start();
    let alice = rig.server.token_for("alice");
    link(&rig, "alice", &alice).await;
    let subject = format!("chat:{}", rig.fake.identity("alice"));

    // Authentic requests (signature or token verified) that are refused
    // anyway are recorded against the linked user they come from.
    let long = rig.fake.msg(
        "alice",
        Room::Ops,
        &format!("echo {}", "x".repeat(5000)),
        None,
    );
    let authentic = [
        (
            "authentic but malformed",
            rig.fake.malformed_from("alice"),
            400,
        ),
        ("too long", rig.fake.hook(&long), 200),
    ];
    for (how, delivery, status) in authentic {
        let before = rig.audit("chat.rejected").await.len();
        let (answered, body) = rig.post(delivery).await;
        assert_eq!(answered, status, "{how}: {body}");
        let records = rejections_beyond(&rig, before).await;
        let r = &records[before];
        assert_eq!(r["actor"], "alice", "{how}: {r}");
        assert_eq!(r["subject"], subject, "{how}: {r}");
        assert_eq!(r["outcome"], "rejected", "{how}: {r}");
        assert!(r["detail"]["reason"].is_string(), "{how}: {r}");
    }

    // Forged and replayed requests are anyone's: they are refused and logged,
    // but never written to the audit log in alice's name. An authentic
    // refusal sent after them is the only new record.
    let m = rig.fake.msg("alice", Room::Ops, "uptime", None);
    let mut forged: Vec<(String, Delivery)> = rig
        .fake
        .forgeries(&m)
        .into_iter()
        .map(|(how, d)| (format!("forged: {how}"), d))
        .collect();
    forged.push(("replayed".to_owned(), rig.fake.stale(&m)));
    let before = rig.audit("chat.rejected").await.len();
    for (how, delivery) in forged {
        let (answered, body) = rig.post(delivery).await;
        assert_eq!(answered, 401, "{how}: {body}");
    }
    let (answered, body) = rig.post(rig.fake.malformed_from("alice")).await;
    assert_eq!(answered, 400, "{body}");
    let records = rejections_beyond(&rig, before).await;
    assert_eq!(records.len(), before + 1, "{records:#?}");
    assert!(rig.executions().await.is_empty());
}

pub async fn a_link_code_that_cannot_be_sent_is_not_made<P: Platform>() {
    let rig = Rig::<P>::start();
    let alice = rig.server.token_for("alice");
    let subject = format!("chat:{}", rig.fake.identity("alice"));
    // alice has a code, then asks again while the platform will not let the
    // bot open a direct conversation.
    let code = request_code(&rig, "alice", false).await;
    rig.fake.refuse_directs(true);
    let answer = rig.ask("alice", Room::Ops, "link", "Refused:").await;
    assert!(
        answer
            .text
            .contains("I could not send you a direct message")
            && answer.text.contains("no code was made"),
        "{}",
        answer.text
    );
    assert_eq!(codes_sent(&rig, "alice"), std::slice::from_ref(&code));

    // No code was made, so the one she has still works; and the audit log
    // says one code was sent, not two.
    let out = rig.server.cli_as(&alice, &["link", &code]);
    let sent: Vec<_> = rig
        .audit("chat.link.requested")
        .await
        .into_iter()
        .filter(|r| r["subject"] == subject && r["outcome"] == "sent")
        .collect();
    let mut wrong = Vec::new();
    if !out.status.success() {
        wrong.push(format!(
            "the code alice received no longer links: {}",
            text(&out.stderr).trim()
        ));
    }
    if sent.len() != 1 {
        wrong.push(format!(
            "the audit log records {} codes sent, one of them after the bot said none was made: {sent:#?}",
            sent.len()
        ));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

pub async fn an_approval_asked_in_the_thread_is_given_with_a_button_and_the_run_follows<
    P: Platform,
>() {
    let rig = Rig::<P>::start();
    let alice = rig.server.token_for("alice");
    let carol = rig.server.token_for("carol");
    link(&rig, "alice", &alice).await;
    link(&rig, "carol", &carol).await;

    // alice asks in a thread of ops.
    let root = rig.fake.root("alice", Room::Ops);
    let m = rig
        .fake
        .msg("alice", Room::Ops, "failover to db-2", Some(&root));
    rig.deliver(rig.fake.hook(&m)).await;
    let ack = rig
        .reply(&root, "Asking for approval to promote db-2…")
        .await;
    let id = execution_id(&ack.text, "db.failover");
    let request = rig.reply(&root, "Approval needed:").await;
    assert!(
        request.text.contains(
            "alice asked to run db.failover and it needs approval from 1 of group:sre-leads"
        ),
        "{}",
        request.text
    );
    assert_eq!(request.buttons, ["Approve", "Reject"], "{:?}", request.raw);
    let (_, e) = rig.server.get(&format!("/executions/{id}")).await;
    assert_eq!(e["status"], "awaiting_approval", "{e}");
    assert_eq!(e["requester"], "alice");
    assert_eq!(e["origin"], rig.fake.origin(Room::Ops));

    // A press nobody made is refused; alice may not approve her own
    // request, nor may someone who is not linked.
    let (status, body) = rig.post(rig.fake.forged_press(&request, "carol")).await;
    assert_eq!(status, 401, "{body}");
    rig.deliver(rig.fake.press(&request, "alice", true)).await;
    let refusal = rig.reply(&root, "Refused:").await;
    assert!(
        refusal.text.contains(&format!(
            "alice asked for execution {id}; someone else must approve or reject it"
        )),
        "{}",
        refusal.text
    );
    rig.deliver(rig.fake.press(&request, "mallory", true)).await;
    let refusal = rig
        .reply(&root, "anonymous is not an approver of db.failover")
        .await;
    assert!(refusal.text.contains("Refused:"), "{}", refusal.text);
    let (_, e) = rig.server.get(&format!("/executions/{id}")).await;
    assert_eq!(e["status"], "awaiting_approval", "{e}");

    // carol presses Approve: it runs, and the result comes in the thread.
    let press = rig.fake.press(&request, "carol", true);
    rig.deliver(press.clone()).await;
    rig.reply(
        &root,
        &format!("carol approved execution {id} (db.failover)"),
    )
    .await;
    let result = rig.reply(&root, "succeeded").await;
    assert_eq!(execution_id(&result.text, "db.failover"), id);
    assert!(
        result.text.contains("dry run: would run"),
        "{}",
        result.text
    );
    let e = rig.finished(id).await;
    assert_eq!(e["status"], "succeeded", "{e}");
    let approvals = e["approvals"].as_array().cloned().unwrap_or_default();
    assert_eq!(approvals.len(), 1, "{e}");
    assert_eq!(approvals[0]["approver"], "carol");
    assert_eq!(approvals[0]["decision"], "approved");
    assert_eq!(approvals[0]["origin"], rig.fake.origin(Room::Ops));
    // The same press delivered again changes nothing and says nothing more.
    let answers = rig.in_thread(&root).len();
    rig.deliver(press).await;
    rig.barrier().await;
    assert_eq!(rig.in_thread(&root).len(), answers, "{}", rig.transcript());
    // Everything about it stayed in the thread.
    let outside: Vec<_> = rig
        .in_room(Room::Ops)
        .into_iter()
        .filter(|s| s.thread.as_deref() != Some(root.as_str()) && s.text.contains("db.failover"))
        .collect();
    assert!(outside.is_empty(), "{outside:#?}");

    // Asked with a slash command and rejected with the other button: the
    // acknowledgement starts the thread, and all the rest is in it.
    let m = rig.fake.msg("alice", Room::Ops, "failover to db-1", None);
    let (status, body) = rig.post(rig.fake.slash(&m)).await;
    assert_eq!(status, 200, "{body}");
    let ops = rig.fake.room_id(Room::Ops);
    let ack = rig
        .said_in(&ops, "Asking for approval to promote db-1…")
        .await;
    assert_eq!(ack.thread, None);
    let second = execution_id(&ack.text, "db.failover");
    let request = rig.reply(&ack.id, "Approval needed:").await;
    let reject = rig
        .fake
        .press_over_socket(&request, "carol", false)
        .unwrap_or_else(|| rig.fake.press(&request, "carol", false));
    rig.deliver(reject).await;
    rig.reply(
        &ack.id,
        &format!("carol rejected execution {second} (db.failover); it will not run."),
    )
    .await;
    let result = rig.reply(&ack.id, "cancelled").await;
    assert_eq!(execution_id(&result.text, "db.failover"), second);
    let e = rig.finished(second).await;
    assert_eq!(e["status"], "cancelled", "{e}");
}

pub async fn a_lapsed_approval_request_is_reported_in_its_thread<P: Platform>() {
    let rig = Rig::<P>::start_with(|catalog| {
        let path = catalog.join("actions/db/failover.toml");
        let action = std::fs::read_to_string(&path).unwrap();
        assert!(action.contains("expires = \"30m\""), "{action}");
        std::fs::write(
            &path,
            action.replace("expires = \"30m\"", "expires = \"1s\""),
        )
        .unwrap();
    });
    let alice = rig.server.token_for("alice");
    let carol = rig.server.token_for("carol");
    link(&rig, "alice", &alice).await;
    link(&rig, "carol", &carol).await;

    let m = rig.fake.msg("alice", Room::Ops, "failover to db-2", None);
    rig.deliver(rig.fake.hook(&m)).await;
    let thread = m.reply_thread();
    let ack = rig.reply(thread, "Asking for approval").await;
    let id = execution_id(&ack.text, "db.failover");
    let request = rig.reply(thread, "Approval needed:").await;
    assert!(
        request.text.contains("The request lapses at"),
        "{}",
        request.text
    );
    let result = rig.reply(thread, "cancelled").await;
    assert_eq!(execution_id(&result.text, "db.failover"), id);
    let e = rig.finished(id).await;
    assert_eq!(e["status"], "cancelled", "{e}");
    // Too late now.
    rig.deliver(rig.fake.press(&request, "carol", true)).await;
    let refusal = rig.reply(thread, "Refused:").await;
    assert!(refusal.text.contains(&id.to_string()), "{}", refusal.text);
    assert_eq!(rig.finished(id).await["status"], "cancelled");
}
