//! What the alert tests deliver to: an HTTP receiver on loopback that
//! records every request (path, authorization, whether Switchboard's
//! webhook signature verifies with [`SIGNING_KEY`], JSON body) and can
//! refuse the first one, a real SMTP server ([`SmtpSink`]), and catalogs
//! whose `alerts.toml` the test writes.

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

/// A real SMTP server (Python's aiosmtpd, from Debian) on a free loopback
/// port, delivering into a Maildir.
pub struct SmtpSink {
    child: std::process::Child,
    pub port: u16,
    maildir: tempfile::TempDir,
}

impl SmtpSink {
    pub fn start() -> Self {
        let maildir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.path().join("mail"))
            .spawn()
            .expect("python3-aiosmtpd is installed by scripts/test");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "aiosmtpd did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            port,
            maildir,
        }
    }

    /// The messages delivered so far, oldest first, their quoted-printable
    /// parts decoded.
    pub fn messages(&self) -> Vec<String> {
        let new = self.maildir.path().join("mail/new");
        let mut files: Vec<_> = std::fs::read_dir(&new)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files
            .iter()
            .map(|p| {
                let raw = std::fs::read(p).unwrap();
                let decoded =
                    quoted_printable::decode(&raw, quoted_printable::ParseMode::Robust).unwrap();
                String::from_utf8(decoded).unwrap()
            })
            .collect()
    }

    pub async fn wait_for(&self, count: usize) -> Vec<String> {
        for _ in 0..300 {
            let got = self.messages();
            if got.len() >= count {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{count} emails never came: {:?}", self.messages());
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The values of a message's header `name`.
pub fn header<'a>(message: &'a str, name: &str) -> Vec<&'a str> {
    message
        .lines()
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
        .collect()
}
