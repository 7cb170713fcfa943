//! Starting and stopping real servers, and small helpers over the API.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
/// The bootstrap token every test server accepts for `admin`.
pub const ADMIN_TOKEN: &str = "sb_test_admin_token_0123456789abcdef";

/// The test catalog beside this file.
pub fn test_catalog() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/catalog")
}

/// The sample catalog of the repository.
pub fn sample_catalog() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/catalog")
}

/// A copy of a catalog in a temporary folder, to edit.
pub fn copy_catalog(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

/// A client of a running server's API, with the helpers tests share.
pub struct Api {
    pub url: String,
    pub http: reqwest::Client,
}

/// A running `switchboard serve`; derefs to its [`Api`].
pub struct Server {
    child: Option<Child>,
    api: Api,
    pub data: tempfile::TempDir,
    catalog: PathBuf,
    extra: Vec<String>,
    /// Where it stores (default: SQLite in `data`).
    storage: Option<String>,
    node: String,
}

impl std::ops::Deref for Server {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Server {
    pub fn start(catalog: &Path) -> Self {
        Self::start_with(catalog, &[])
    }

    /// A server that also reads `config` as its configuration file.
    pub fn start_with_config(catalog: &Path, config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchboard.toml");
        std::fs::write(&path, config).unwrap();
        let server = Self::start_with(catalog, &["--config", path.to_str().unwrap()]);
        std::mem::forget(dir);
        server
    }

    pub fn start_with(catalog: &Path, extra: &[&str]) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut s = Self {
            child: None,
            api: Api::new(String::new()),
            data,
            catalog: catalog.to_path_buf(),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            storage: None,
            node: "test-node".to_owned(),
        };
        s.spawn();
        s
    }

    /// One node of several sharing the database at `storage`.
    pub fn start_node(catalog: &Path, storage: &str, node: &str, extra: &[&str]) -> Self {
        let mut s = Self {
            child: None,
            api: Api::new(String::new()),
            data: tempfile::tempdir().unwrap(),
            catalog: catalog.to_path_buf(),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            storage: Some(storage.to_owned()),
            node: node.to_owned(),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let mut child = Command::new(BIN)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--node",
                &self.node,
                "--kill-grace",
                "500ms",
                "--drain-timeout",
                "2s",
            ])
            .arg("--catalog")
            .arg(&self.catalog)
            .arg("--storage")
            .arg(self.storage.clone().unwrap_or_else(|| {
                format!("sqlite://{}", self.data.path().join("db.sqlite").display())
            }))
            .args(&self.extra)
            .env("RUST_LOG", "info")
            .env("SWITCHBOARD_ADMIN_TOKEN", ADMIN_TOKEN)
            .env_remove("SWITCHBOARD_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the server did not say where it listens");
        self.api.url = line
            .strip_prefix("switchboard listening on ")
            .expect("unexpected first line")
            .to_owned();
        self.child = Some(child);
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.as_ref().unwrap().id()).unwrap()
    }

    /// Stops the server with SIGTERM and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let status = child.wait().unwrap();
            assert!(status.success(), "server exited with {status}");
        }
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Starts the server again on the same database.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn start_again(&mut self) {
        assert!(self.child.is_none());
        self.spawn();
    }

    /// Runs the CLI against this server as the bootstrap admin.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_as(ADMIN_TOKEN, args)
    }

    /// Runs the CLI against this server, signed in with `token`.
    pub fn cli_as(&self, token: &str, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("SWITCHBOARD_URL", &self.url)
            .env("SWITCHBOARD_TOKEN", token)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// A new token of `user` with the read and run scopes.
    pub fn token_for(&self, user: &str) -> String {
        let out = self.cli(&["token", "create", "--user", user]);
        assert!(out.status.success(), "{out:?}");
        text(&out.stdout).trim().to_owned()
    }
}

impl Api {
    /// What `/readyz` says (whether ready or not), if it answers JSON.
    pub async fn readiness(&self) -> Option<Value> {
        let resp = self
            .http
            .get(format!("{}/readyz", self.url))
            .send()
            .await
            .ok()?;
        resp.json().await.ok()
    }

    /// A client that signs in with `token`.
    pub fn with_token(url: String, token: &str) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        headers.insert(reqwest::header::AUTHORIZATION, value);
        Self {
            url,
            http: reqwest::Client::builder()
                .default_headers(headers)
                .build()
                .unwrap(),
        }
    }

    /// A client that signs in as the bootstrap `admin`.
    pub fn new(url: String) -> Self {
        Self::with_token(url, ADMIN_TOKEN)
    }

    /// A page outside the API, such as `/metrics`: its status and text.
    pub async fn page(&self, path: &str) -> (u16, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    pub fn api(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.url)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self.http.get(self.api(path)).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(self.api(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// DELETE; the status.
    pub async fn delete(&self, path: &str) -> u16 {
        let resp = self.http.delete(self.api(path)).send().await.unwrap();
        resp.status().as_u16()
    }

    /// Submits an execution and returns its id.
    pub async fn submit(&self, action: &str, params: Value) -> i64 {
        let (status, body) = self
            .post("/executions", json!({"action": action, "params": params}))
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_i64().unwrap()
    }

    /// Polls until the execution reaches a status that passes `done`.
    pub async fn wait_for(&self, id: i64, done: impl Fn(&str) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, e) = self.get(&format!("/executions/{id}")).await;
            if done(e["status"].as_str().unwrap_or_default()) {
                return e;
            }
            assert!(Instant::now() < deadline, "execution {id} stuck at {e}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_finished(&self, id: i64) -> Value {
        self.wait_for(id, |s| {
            matches!(
                s,
                "succeeded" | "failed" | "timed_out" | "cancelled" | "lost"
            )
        })
        .await
    }

    /// Opens the server-sent event stream of an execution's output.
    pub async fn output_events(&self, id: i64, last_event_id: Option<i64>) -> reqwest::Response {
        let mut req = self
            .http
            .get(self.api(&format!("/executions/{id}/output")))
            .header("accept", "text/event-stream");
        if let Some(last) = last_event_id {
            req = req.header("last-event-id", last.to_string());
        }
        req.send().await.unwrap()
    }

    pub async fn output_text(&self, id: i64) -> String {
        self.http
            .get(self.api(&format!("/executions/{id}/output")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// Whether a process exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => false,
    }
}

pub fn read_pids(path: &Path) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            let pids: Vec<i32> = text
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect();
            if !pids.is_empty() {
                return pids;
            }
        }
        assert!(Instant::now() < deadline, "no pids in {}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// The process id a test action wrote to `path` (scripts/sleep.sh does),
/// once it is there.
pub async fn wait_for_pid(path: &Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "{} never written",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
