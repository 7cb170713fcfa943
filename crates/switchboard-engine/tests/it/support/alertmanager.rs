//! A real Alertmanager for tests: Debian's `prometheus-alertmanager` on a
//! free loopback port, in a temporary folder, without clustering; `start`
//! waits (with a deadline, never a fixed sleep) until it says it is ready.
//! Beside it, [`AlertingPrometheus`]: Debian's `prometheus` scraping given
//! targets and evaluating alerting rules every second, sending what fires to
//! an Alertmanager and resending it every second. Both are killed when
//! dropped. Self-contained, so that a test crate can include it alone.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Longest wait for a server to be ready (a loaded CI machine).
const READY_WITHIN: Duration = Duration::from_secs(90);

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The first of `names` found on the `PATH` (or in `/usr/bin`).
fn program(names: &[&str], package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/local/bin"].map(PathBuf::from))
        .collect();
    names
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{}` is not installed: the alert tests need a real server; \
                 install it with `apt-get install {package}` (scripts/test does)",
                names[0]
            )
        })
}

/// A child process writing to a log file, killed and reaped when dropped.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(program: &Path, args: &[String], log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        Self { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `ready` until it says yes, the process exits or the deadline
    /// passes; `ready` answers what it is still waiting for.
    async fn wait_until<F, Fut>(&mut self, what: &str, mut ready: F) -> Result<(), String>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(format!("{what} exited with {status}:\n{}", self.log()));
            }
            let last = match ready().await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if Instant::now() > deadline {
                return Err(format!(
                    "{what} not ready within {READY_WITHIN:?} (last: {last}):\n{}",
                    self.log()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// The JSON a GET answers with a 2xx, or why not.
async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    let resp = http.get(url).send().await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{url}: {status}: {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("{url}: {e}: {text}"))
}

/// Whether a GET answers with a 2xx.
async fn get_ok(http: &reqwest::Client, url: &str) -> Result<(), String> {
    let resp = http.get(url).send().await.map_err(|e| e.to_string())?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("{url}: {}", resp.status()))
    }
}

/// Tries `start` three times: a port found free may be taken before the
/// server binds it.
async fn with_retries<T, Fut>(what: &str, mut start: impl FnMut() -> Fut) -> T
where
    Fut: Future<Output = Result<T, String>>,
{
    let mut last = String::new();
    for _ in 0..3 {
        match start().await {
            Ok(server) => return server,
            Err(e) => last = e,
        }
    }
    panic!("{what} did not start: {last}");
}

/// A running Alertmanager, killed when dropped.
pub struct Alertmanager {
    process: Process,
    pub dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub address: String,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    http: reqwest::Client,
}

impl Alertmanager {
    /// Starts a server with `config` (its YAML) and waits until it is ready.
    pub async fn start(config: &str) -> Self {
        with_retries("Alertmanager", || Self::try_start(config)).await
    }

    async fn try_start(config: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().unwrap();
        let address = format!("127.0.0.1:{}", free_port());
        let config_file = dir.path().join("alertmanager.yml");
        std::fs::write(&config_file, config).unwrap();
        let args = vec![
            format!("--config.file={}", config_file.display()),
            format!("--storage.path={}", dir.path().join("data").display()),
            format!("--web.listen-address={address}"),
            // No high availability: no gossip port, and no wait for peers
            // before the first notification.
            "--cluster.listen-address=".to_owned(),
            "--log.level=debug".to_owned(),
        ];
        let process = Process::spawn(
            &program(
                &["prometheus-alertmanager", "alertmanager"],
                "prometheus-alertmanager",
            ),
            &args,
            dir.path().join("alertmanager.log"),
        );
        let mut server = Self {
            process,
            dir,
            url: format!("http://{address}"),
            address,
            http: client(),
        };
        let (http, ready) = (server.http.clone(), format!("{}/-/ready", server.url));
        server
            .process
            .wait_until("Alertmanager", || get_ok(&http, &ready))
            .await?;
        Ok(server)
    }

    pub fn log(&self) -> String {
        self.process.log()
    }

    /// The alerts it holds (`GET /api/v2/alerts`), or why not.
    pub async fn alerts(&self) -> Result<Value, String> {
        get_json(&self.http, &format!("{}/api/v2/alerts", self.url)).await
    }
}

/// A running Prometheus that evaluates alerting rules and sends what fires
/// to an Alertmanager; killed when dropped.
pub struct AlertingPrometheus {
    process: Process,
    pub dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub address: String,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    http: reqwest::Client,
}

impl AlertingPrometheus {
    /// Starts a server that scrapes `targets` (`host:port`, as job `job`)
    /// and evaluates `rules` (a rule file's YAML) every second, and sends
    /// alerts to the Alertmanager at `alertmanager` (`host:port`),
    /// resending those that still fire every second. Waits until the rules
    /// are loaded and the Alertmanager is known.
    pub async fn start(job: &str, targets: &[&str], rules: &str, alertmanager: &str) -> Self {
        with_retries("Prometheus", || {
            Self::try_start(job, targets, rules, alertmanager)
        })
        .await
    }

    async fn try_start(
        job: &str,
        targets: &[&str],
        rules: &str,
        alertmanager: &str,
    ) -> Result<Self, String> {
        let dir = tempfile::tempdir().unwrap();
        let address = format!("127.0.0.1:{}", free_port());
        let rule_file = dir.path().join("rules.yml");
        std::fs::write(&rule_file, rules).unwrap();
        let targets: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - \"{}\"\n\
                 alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [\"{alertmanager}\"]\n\
                 scrape_configs:\n  - job_name: \"{job}\"\n    static_configs:\n      - targets: [{}]\n",
                rule_file.display(),
                targets.join(", ")
            ),
        )
        .unwrap();
        let args = vec![
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address={address}"),
            // Firing alerts are sent again every second (not every minute),
            // and a resolved one at the evaluation that finds it gone.
            "--rules.alert.resend-delay=1s".to_owned(),
            "--log.level=info".to_owned(),
        ];
        let process = Process::spawn(
            &program(&["prometheus"], "prometheus"),
            &args,
            dir.path().join("prometheus.log"),
        );
        let mut server = Self {
            process,
            dir,
            url: format!("http://{address}"),
            address,
            http: client(),
        };
        let (http, url) = (server.http.clone(), server.url.clone());
        server
            .process
            .wait_until("Prometheus", || ready(&http, &url))
            .await?;
        Ok(server)
    }

    pub fn log(&self) -> String {
        self.process.log()
    }

    /// The answer to an instant query (`data.result`), or why not.
    pub async fn query(&self, promql: &str) -> Result<Value, String> {
        let encoded: String = promql
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        get_json(
            &self.http,
            &format!("{}/api/v1/query?query={encoded}", self.url),
        )
        .await
        .map(|v| v["data"]["result"].clone())
    }

    /// Its alerts (`GET /api/v1/alerts`), or why not.
    pub async fn alerts(&self) -> Result<Value, String> {
        get_json(&self.http, &format!("{}/api/v1/alerts", self.url))
            .await
            .map(|v| v["data"]["alerts"].clone())
    }
}

/// Whether a Prometheus is ready, has loaded its rules and knows an
/// Alertmanager to send to.
async fn ready(http: &reqwest::Client, url: &str) -> Result<(), String> {
    get_ok(http, &format!("{url}/-/ready")).await?;
    let rules = get_json(http, &format!("{url}/api/v1/rules")).await?;
    if rules["data"]["groups"].as_array().is_none_or(Vec::is_empty) {
        return Err(format!("no rules loaded yet: {rules}"));
    }
    let managers = get_json(http, &format!("{url}/api/v1/alertmanagers")).await?;
    if managers["data"]["activeAlertmanagers"]
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        return Err(format!("no Alertmanager known yet: {managers}"));
    }
    Ok(())
}
