use switchboard_core::chat::{Destination, Reply};

use super::*;
use switchboard_core::chat::ChatOutlet;

#[tokio::test]
async fn posts_and_updates_arrive_in_order_and_the_stream_ends_with_the_outlet() {
    let (outlet, mut rx) = ConsoleOutlet::new();
    let to = Destination {
        room: "console".into(),
        thread: None,
    };
    let posted = outlet
        .post(&to, &Reply::Text { text: "one".into() })
        .await
        .unwrap();
    outlet
        .update(&posted, &Reply::Text { text: "two".into() })
        .await
        .unwrap();
    drop(outlet);
    let mut seen = Vec::new();
    while let Some(e) = rx.recv().await {
        seen.push(e);
    }
    assert!(matches!(&seen[0], ConsoleEvent::Post { id, text, .. } if id == "1" && text == "one"));
    assert!(
        matches!(&seen[1], ConsoleEvent::Update { id, text, .. } if id == "1" && text == "two")
    );
    assert_eq!(seen.len(), 2);
}
