#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on the unexpected"
)]
//! A webhook's delivery id through the engine: a replay is refused, and a
//! call that failed on this side (here: the engine shutting down) does
//! not use the id up, so the sender's retry gets through.

use std::collections::BTreeMap;
use std::time::Duration;

use switchboard_core::Catalog;
use switchboard_engine::{Engine, EngineConfig, EngineError, HookError};

#[tokio::test]
async fn a_replay_is_refused_but_a_retry_after_our_failure_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("catalog");
    std::fs::create_dir_all(root.join("actions")).unwrap();
    std::fs::create_dir_all(root.join("policies")).unwrap();
    std::fs::write(
        root.join("actions/t.toml"),
        "name = \"t.t\"\ndescription = \"test\"\ncommand = [\"true\"]\n",
    )
    .unwrap();
    std::fs::write(
        root.join("policies/all.cedar"),
        "permit (principal, action, resource);\n",
    )
    .unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    std::fs::write(
        root.join("hooks.toml"),
        format!(
            "[[hooks]]\nname = \"h\"\naction = \"t.t\"\nrun_as = \"svc:hook\"\nsecret = \"file:{}\"\nsignature = {{ delivery_header = \"X-Delivery\" }}\n",
            secret.display()
        ),
    )
    .unwrap();
    let catalog = Catalog::load(&root).unwrap();
    let spec = catalog.hooks.get("h").unwrap().signature.clone();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let store = switchboard_store::open(&url).await.unwrap();
    let config = EngineConfig {
        temp_dir: dir.path().to_path_buf(),
        ..EngineConfig::default()
    };
    let engine = Engine::start(store, catalog, config).await.unwrap();
    let body = b"{}";
    let headers = |delivery: &str| {
        BTreeMap::from([
            (
                "x-hub-signature-256".to_owned(),
                spec.sign(b"s3cret", "", body),
            ),
            ("x-delivery".to_owned(), delivery.to_owned()),
        ])
    };

    let e = engine
        .receive_hook("h", &headers("d-1"), body)
        .await
        .unwrap();
    assert_eq!(e.requester.as_str(), "svc:hook");
    assert_eq!(e.origin.as_str(), "webhook:h");
    assert!(matches!(
        engine.receive_hook("h", &headers("d-1"), body).await,
        Err(HookError::Replay(_))
    ));

    engine.shutdown(Duration::from_secs(5)).await;
    assert!(matches!(
        engine.receive_hook("h", &headers("d-2"), body).await,
        Err(HookError::Engine(EngineError::ShuttingDown))
    ));
    let now = switchboard_core::Timestamp::now();
    assert!(
        engine
            .store()
            .record_hook_delivery("h", "d-2", now, now.before(Duration::from_secs(300)))
            .await
            .unwrap(),
        "the failed delivery's id was forgotten, so its retry is not a replay"
    );
}
