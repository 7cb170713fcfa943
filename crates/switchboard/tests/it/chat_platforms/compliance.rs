//! What every chat adapter must pass, written once over [`Platform`]: a
//! forged or replayed request is refused and runs nothing, a message
//! delivered again runs once, long output comes as a tail and a file in the
//! thread, a long run shows progress in its acknowledgement, replies keep to
//! their thread (slash commands start one), only what addresses the bot is
//! a command, a dropped connection comes back, and bad or oversized input is
//! refused clearly.

use std::io::Write;

use super::fake::eventually;
use super::{Platform, Rig, Room, execution_id};

/// Nothing ran, and the bot said nothing in `ops` (where every request of
/// these scenarios was made); the barrier's answer in `general` shows the
/// server has handled everything sent before it.
async fn nothing_ran_and_ops_heard_nothing<P: Platform>(rig: &Rig<P>) {
    rig.barrier().await;
    let ran = rig.executions().await;
    assert!(ran.is_empty(), "nothing may run: {ran:?}");
    let said = rig.in_room(Room::Ops);
    assert!(
        said.is_empty(),
        "nothing may be answered: {said:?}{}",
        rig.transcript()
    );
}

pub async fn a_forged_request_is_refused_and_nothing_runs<P: Platform>() {
    let rig = Rig::<P>::start();
    let m = rig.fake.msg("alice", Room::Ops, "uptime", None);
    for (how, forged) in rig.fake.forgeries(&m) {
        let (status, body) = rig.post(forged).await;
        assert_eq!(status, 401, "{how}: {body}");
        let reason: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(
            reason["error"]["message"].is_string(),
            "{how}: the refusal says why: {body}"
        );
    }
    nothing_ran_and_ops_heard_nothing(&rig).await;
}

pub async fn a_replayed_request_is_refused_and_nothing_runs<P: Platform>() {
    let rig = Rig::<P>::start();
    let m = rig.fake.msg("alice", Room::Ops, "uptime", None);
    let (status, body) = rig.post(rig.fake.stale(&m)).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("replay"), "the refusal says why: {body}");
    nothing_ran_and_ops_heard_nothing(&rig).await;
}

pub async fn the_same_message_delivered_again_runs_once_and_is_answered_once<P: Platform>() {
    let rig = Rig::<P>::start();
    let m = rig.fake.msg("mallory", Room::Ops, "uptime", None);
    for delivery in rig.fake.repeated(&m) {
        rig.deliver(delivery).await;
    }
    let thread = m.reply_thread();
    let result = rig.reply(thread, "succeeded").await;
    let id = execution_id(&result.text, "host.uptime");
    rig.barrier().await;

    let ran = rig.executions().await;
    assert_eq!(ran.len(), 1, "one run: {ran:?}");
    assert_eq!(ran[0]["id"], id);
    assert_eq!(ran[0]["origin"], rig.fake.origin(Room::Ops));
    // mallory is not linked: read-only actions are anyone's, as `anonymous`.
    assert_eq!(ran[0]["requester"], "anonymous");
    let answers: Vec<String> = rig.in_room(Room::Ops).into_iter().map(|s| s.text).collect();
    assert_eq!(
        answers.len(),
        2,
        "one acknowledgement and one result: {answers:#?}"
    );
    assert!(answers[0].contains("Running host.uptime"), "{answers:#?}");
    assert!(
        rig.in_room(Room::Ops)
            .iter()
            .all(|s| s.thread.as_deref() == Some(thread)),
        "{}",
        rig.transcript()
    );
}

pub async fn long_output_shows_its_tail_and_comes_whole_as_a_file_in_the_thread<P: Platform>() {
    let rig = Rig::<P>::start();
    let mut log = tempfile::Builder::new()
        .prefix("sb-chat-platforms")
        .suffix(".log")
        .tempfile_in("/tmp")
        .unwrap();
    let mut whole = String::new();
    for i in 1..=99 {
        whole.push_str(&format!("line {i}\n"));
    }
    // Output is shown as written, whatever the markup makes of it.
    let last = "line 100 <none> & *done*";
    whole.push_str(last);
    whole.push('\n');
    log.write_all(whole.as_bytes()).unwrap();
    log.flush().unwrap();
    let line = format!("logs {} lines=100", log.path().display());
    let root = rig.fake.root("mallory", Room::Ops);
    let m = rig.fake.msg("mallory", Room::Ops, &line, Some(&root));
    rig.deliver(rig.fake.hook(&m)).await;

    let thread = m.reply_thread();
    rig.reply(thread, &format!("Tailing {}", log.path().display()))
        .await;
    let result = rig.reply(thread, "succeeded").await;
    let id = execution_id(&result.text, "host.logs");
    // The default 15 lines: 86 to 100.
    assert!(
        result.text.contains(&rig.fake.markup(last)) && result.text.contains("line 86"),
        "{}",
        result.text
    );
    assert!(
        !result.text.contains("line 85"),
        "only the tail: {}",
        result.text
    );
    assert!(
        result.text.contains("the full output is attached"),
        "{}",
        result.text
    );

    let upload = eventually(
        || format!("the output as a file{}", rig.transcript()),
        || rig.fake.uploads().into_iter().next(),
    )
    .await;
    assert_eq!(upload.filename, format!("host.logs-{id}.log"));
    assert_eq!(String::from_utf8(upload.bytes).unwrap(), whole);
    assert_eq!(upload.room, rig.fake.room_id(Room::Ops));
    assert_eq!(
        upload.thread.as_deref(),
        Some(thread),
        "the file is in the thread"
    );
    assert!(
        upload.title.contains(&format!("host.logs #{id}")),
        "{}",
        upload.title
    );
    assert_eq!(rig.fake.uploads().len(), 1);

    // Lines longer than the platform takes in one message: the tail is cut
    // to fit, and the file still has everything.
    let mut long_lines = tempfile::Builder::new()
        .prefix("sb-chat-platforms")
        .suffix(".log")
        .tempfile_in("/tmp")
        .unwrap();
    let mut wide = String::new();
    for i in 1..=20 {
        wide.push_str(&format!("wide {i:02} {}\n", "y".repeat(3000)));
    }
    long_lines.write_all(wide.as_bytes()).unwrap();
    long_lines.flush().unwrap();
    let line = format!("logs {} lines=20", long_lines.path().display());
    let m = rig.fake.msg("mallory", Room::Ops, &line, None);
    rig.deliver(rig.fake.hook(&m)).await;
    let result = rig.reply(m.reply_thread(), "succeeded").await;
    assert!(result.text.contains("wide 06 yyy"), "{}", result.text);
    assert!(
        result.text.contains("cut)"),
        "marked as cut: {}",
        result.text
    );
    let upload = eventually(
        || format!("the second file{}", rig.transcript()),
        || rig.fake.uploads().into_iter().nth(1),
    )
    .await;
    assert_eq!(String::from_utf8(upload.bytes).unwrap(), wide);
    assert_eq!(upload.thread.as_deref(), Some(m.reply_thread()));

    // One line longer than a Slack section holds: the platform accepts the
    // result, and all of it shows.
    let long = "x".repeat(3900);
    let m = rig
        .fake
        .msg("mallory", Room::Ops, &format!("echo {long}"), None);
    rig.deliver(rig.fake.hook(&m)).await;
    let result = rig.reply(m.reply_thread(), "succeeded").await;
    assert_eq!(
        result.text.matches('x').count(),
        3900,
        "the whole line: {}",
        result.text
    );
}

pub async fn a_long_run_shows_its_progress_edited_into_the_acknowledgement<P: Platform>() {
    let rig = Rig::<P>::start();
    let m = rig
        .fake
        .msg("mallory", Room::Ops, "slow steps=4 every 400ms", None);
    rig.deliver(rig.fake.hook(&m)).await;
    let thread = m.reply_thread();
    let result = rig.reply(thread, "succeeded").await;
    assert!(result.text.contains("done"), "{}", result.text);

    let replies = rig.in_thread(thread);
    assert_eq!(replies.len(), 2, "the ack and the result: {replies:#?}");
    let ack = &replies[0];
    let posted = &ack.versions[0];
    assert!(posted.contains("Running demo.slow…"), "{posted}");
    let progress: Vec<&String> = ack
        .versions
        .iter()
        .filter(|v| v.contains("running for"))
        .collect();
    assert!(
        !progress.is_empty(),
        "edited with progress: {:#?}",
        ack.versions
    );
    assert!(
        progress.iter().any(|v| v.contains("step ")),
        "with the last lines: {progress:#?}"
    );
    // Once done, the acknowledgement no longer says it is running.
    assert_eq!(&ack.text, posted, "{:#?}", ack.versions);
}

pub async fn replies_stay_in_the_thread_of_the_request<P: Platform>() {
    let rig = Rig::<P>::start();
    // Asked inside a thread, over HTTP and over the long-lived connection.
    let over_http = rig.fake.root("mallory", Room::Ops);
    let m = rig.fake.msg(
        "mallory",
        Room::Ops,
        "echo asked over http",
        Some(&over_http),
    );
    rig.deliver(rig.fake.hook(&m)).await;
    let over_socket = rig.fake.root("mallory", Room::Ops);
    let n = rig.fake.msg(
        "mallory",
        Room::Ops,
        "echo asked over the connection",
        Some(&over_socket),
    );
    rig.deliver(rig.fake.socket(&n)).await;
    // Asked at the top of the room: the answers thread under the question.
    let top = rig
        .fake
        .msg("mallory", Room::Ops, "echo asked at the top", None);
    rig.deliver(rig.fake.hook(&top)).await;

    for (thread, said) in [
        (over_http.as_str(), "asked over http"),
        (over_socket.as_str(), "asked over the connection"),
        (top.id.as_str(), "asked at the top"),
    ] {
        let result = rig.reply(thread, "succeeded").await;
        assert!(result.text.contains(said), "{}", result.text);
        let replies = rig.in_thread(thread);
        assert_eq!(replies.len(), 2, "the ack and the result: {replies:#?}");
        assert!(
            replies[0].text.contains("Running demo.echo"),
            "{replies:#?}"
        );
    }
    // Nothing went to the top of the room.
    let outside: Vec<_> = rig
        .in_room(Room::Ops)
        .into_iter()
        .filter(|s| s.thread.is_none())
        .collect();
    assert!(outside.is_empty(), "{outside:#?}");
    for e in rig.executions().await {
        assert_eq!(e["origin"], rig.fake.origin(Room::Ops), "{e}");
    }
}

pub async fn a_slash_command_is_acknowledged_and_the_result_follows_in_that_thread<P: Platform>() {
    let rig = Rig::<P>::start();
    let m = rig
        .fake
        .msg("mallory", Room::Ops, "echo from a slash command", None);
    let (status, body) = rig.post(rig.fake.slash(&m)).await;
    assert_eq!(status, 200, "{body}");

    let ops = rig.fake.room_id(Room::Ops);
    let ack = rig.said_in(&ops, "Running demo.echo").await;
    assert_eq!(ack.thread, None, "a slash command's ack starts the thread");
    let result = rig.reply(&ack.id, "succeeded").await;
    assert!(
        result.text.contains("from a slash command"),
        "{}",
        result.text
    );
    let id = execution_id(&result.text, "demo.echo");
    let e = rig.finished(id).await;
    assert_eq!(e["origin"], rig.fake.origin(Room::Ops));
    assert_eq!(e["requester"], "anonymous");
    assert_eq!(rig.in_room(Room::Ops).len(), 2, "{}", rig.transcript());

    // The same over the long-lived connection, where the platform sends
    // slash commands that way.
    let m = rig
        .fake
        .msg("mallory", Room::Ops, "echo over the connection", None);
    if let Some(delivery) = rig.fake.slash_over_socket(&m) {
        rig.deliver(delivery).await;
        let ack = eventually(
            || format!("a second acknowledgement{}", rig.transcript()),
            || {
                rig.in_room(Room::Ops)
                    .into_iter()
                    .filter(|s| s.thread.is_none())
                    .nth(1)
            },
        )
        .await;
        let result = rig.reply(&ack.id, "succeeded").await;
        assert!(
            result.text.contains("over the connection"),
            "{}",
            result.text
        );
        let id = execution_id(&result.text, "demo.echo");
        assert_eq!(rig.finished(id).await["origin"], rig.fake.origin(Room::Ops));
    }
}

pub async fn a_prefixed_line_is_a_command_and_other_chatter_is_ignored<P: Platform>() {
    let rig = Rig::<P>::start();
    for text in [
        "echo nobody asked",
        "! echo a space after the prefix",
        "uptime is fine today",
    ] {
        let m = rig.fake.msg("mallory", Room::Ops, text, None);
        rig.deliver(rig.fake.chatter(&m)).await;
    }
    let m = rig
        .fake
        .msg("mallory", Room::Ops, "!echo asked with the prefix", None);
    rig.deliver(rig.fake.chatter(&m)).await;
    let result = rig.reply(m.reply_thread(), "succeeded").await;
    assert!(
        result.text.contains("asked with the prefix"),
        "{}",
        result.text
    );
    rig.barrier().await;
    assert_eq!(rig.executions().await.len(), 1);
    assert_eq!(
        rig.in_room(Room::Ops).len(),
        2,
        "only the command is answered{}",
        rig.transcript()
    );
}

pub async fn a_dropped_connection_is_opened_again_and_the_next_message_runs<P: Platform>() {
    let rig = Rig::<P>::start();
    let sockets = rig.fake.sockets();
    sockets.wait_connected(1).await;
    let before = rig
        .fake
        .msg("mallory", Room::Ops, "echo before the drop", None);
    rig.deliver(rig.fake.socket(&before)).await;
    rig.reply(before.reply_thread(), "succeeded").await;

    sockets.drop_all();
    sockets.wait_connected(2).await;
    let after = rig
        .fake
        .msg("mallory", Room::Ops, "echo after the drop", None);
    rig.deliver(rig.fake.socket(&after)).await;
    let result = rig.reply(after.reply_thread(), "succeeded").await;
    assert!(result.text.contains("after the drop"), "{}", result.text);

    // Asked politely for a new connection, where the platform does that.
    let mut runs = 2;
    if let Some(goodbye) = rig.fake.goodbye() {
        assert_eq!(sockets.push(&goodbye), 1);
        sockets.wait_connected(3).await;
        let next = rig
            .fake
            .msg("mallory", Room::Ops, "echo after the refresh", None);
        rig.deliver(rig.fake.socket(&next)).await;
        rig.reply(next.reply_thread(), "succeeded").await;
        runs += 1;
    }

    assert_eq!(rig.executions().await.len(), runs);
    eventually(
        || format!("the protocol kept: {:?}", rig.fake.socket_protocol_kept()),
        || rig.fake.socket_protocol_kept().ok(),
    )
    .await;
}

pub async fn bad_input_is_refused_clearly_and_nothing_runs<P: Platform>() {
    let rig = Rig::<P>::start();
    for (what, delivery) in rig.fake.malformed() {
        let (status, body) = rig.post(delivery).await;
        assert!((400..500).contains(&status), "{what}: {status} {body}");
        let answer: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{what}: the refusal is not JSON ({e}): {body}"));
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|e| !e.is_empty()),
            "{what}: says what is wrong: {body}"
        );
    }

    let huge = format!("echo {}", "x".repeat(5000));
    for (text, why) in [
        ("echo a\u{7}b", ""),
        (
            huge.as_str(),
            "longer than 4000 characters; nothing was run",
        ),
        ("restart nginx\u{200b}", "invisible character (U+200B)"),
        ("echo \u{202e}evil", "invisible character (U+202E)"),
        ("echo \"oops", "never closed"),
    ] {
        let m = rig.fake.msg("mallory", Room::Ops, text, None);
        rig.deliver(rig.fake.hook(&m)).await;
        let answer = rig.reply(m.reply_thread(), "Refused:").await;
        assert!(answer.text.contains(why), "{text:?}: {}", answer.text);
        assert_eq!(
            rig.in_thread(m.reply_thread()).len(),
            1,
            "{}",
            rig.transcript()
        );
    }
    rig.barrier().await;
    let ran = rig.executions().await;
    assert!(ran.is_empty(), "nothing may run: {ran:?}");
}

pub async fn an_oversized_request_is_refused_with_a_clear_answer<P: Platform>() {
    let rig = Rig::<P>::start();
    // Authentic, and larger than the 1 MiB Switchboard reads.
    let m = rig.fake.msg(
        "mallory",
        Room::Ops,
        &format!("echo {}", "x".repeat(1_500_000)),
        None,
    );
    let (status, body) = rig.post(rig.fake.hook(&m)).await;
    assert_eq!(status, 413, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| {
        panic!("client errors are JSON saying what is wrong ({e}), this one is: {body}")
    });
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|e| e.contains("larger than")),
        "{body}"
    );
    nothing_ran_and_ops_heard_nothing(&rig).await;
}
