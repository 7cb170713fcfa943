//! What the alert tests deliver to: an HTTP receiver on loopback that
//! records every request (path, authorization, whether Switchboard's
//! webhook signature verifies with [`SIGNING_KEY`], JSON body) and can
//! refuse the first one, and catalogs whose `alerts.toml` the test writes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::harness::{copy_catalog, sample_catalog};

/// The key webhooks are signed with (`signing_key_file`).
pub const SIGNING_KEY: &str = "webhook-signing-key";

/// One request received.
#[derive(Debug, Clone)]
pub struct Request {
    /// Path and query.
    pub path: String,
    pub authorization: String,
    /// Whether `X-Switchboard-Signature` verifies with [`SIGNING_KEY`].
    pub signed: bool,
    /// Whether it was answered with success.
    pub accepted: bool,
    pub body: Value,
}

/// A recording receiver; its base URL (no trailing slash).
pub struct Sink {
    pub url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Sink {
    /// Answers 503 to the first request when `refuse_first`.
    pub async fn start(refuse_first: bool) -> Self {
        let requests = Arc::new(Mutex::new(Vec::<Request>::new()));
        let state = requests.clone();
        let app = axum::Router::new().fallback(axum::routing::post(
            move |uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move {
                    let header = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    let mut mac =
                        <Hmac<Sha256> as KeyInit>::new_from_slice(SIGNING_KEY.as_bytes()).unwrap();
                    mac.update(format!("{}.", header("x-switchboard-timestamp")).as_bytes());
                    mac.update(&body);
                    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
                    let mut all = state.lock().unwrap();
                    let accepted = !(refuse_first && all.is_empty());
                    all.push(Request {
                        path: uri.to_string(),
                        authorization: header("authorization"),
                        signed: header("x-switchboard-signature") == expected,
                        accepted,
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                    });
                    if accepted {
                        StatusCode::ACCEPTED
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                }
            },
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, requests }
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// The bodies of the accepted requests to `path`, in order.
    pub fn bodies(&self, path: &str) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r.accepted && r.path == path)
            .map(|r| r.body)
            .collect()
    }

    /// Waits (up to 30 s) until `path` has taken `count` requests.
    pub async fn wait_for(&self, path: &str, count: usize) -> Vec<Value> {
        for _ in 0..300 {
            let got = self.bodies(path);
            if got.len() >= count {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{count} requests to {path} never came: {:?}",
            self.requests()
        );
    }
}

/// A copy of the sample catalog in `dir` with this `alerts.toml`.
pub fn alerts_catalog(dir: &Path, alerts_toml: &str) -> PathBuf {
    let catalog = dir.join("catalog");
    copy_catalog(&sample_catalog(), &catalog);
    std::fs::write(catalog.join("alerts.toml"), alerts_toml).unwrap();
    catalog
}

/// A copy of the sample catalog in `dir` whose `alerts.toml` sends every
/// alert, grouped by `alertname` (1 s wait, 2 s interval), to `sink`'s
/// `/hook`, signed with [`SIGNING_KEY`].
pub fn signed_hook_catalog(dir: &Path, sink: &Sink) -> PathBuf {
    let key = signing_key_file(dir);
    alerts_catalog(
        dir,
        &format!(
            r#"
[route]
receiver = "hook"
group_by = ["alertname"]
group_wait = "1s"
group_interval = "2s"
repeat_interval = "1h"

[[receivers]]
name = "hook"
[[receivers.webhook_configs]]
url = "{}/hook"
hmac_secret = "file:{}"
"#,
            sink.url,
            key.display()
        ),
    )
}

/// A file in `dir` holding [`SIGNING_KEY`], for `hmac_secret = "file:…"`.
pub fn signing_key_file(dir: &Path) -> PathBuf {
    let path = dir.join("hook.key");
    std::fs::write(&path, format!("{SIGNING_KEY}\n")).unwrap();
    path
}
