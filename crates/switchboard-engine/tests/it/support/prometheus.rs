//! A real Prometheus for tests: Debian's `prometheus` on a free loopback
//! port, in a temporary folder, scraping itself every second; `start` waits
//! (with a deadline, never a fixed sleep) until its own metrics have points.
//! Killed when dropped.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use switchboard_engine::runner::query::{self, PrometheusSettings};

/// Longest wait for the server to answer with points (a loaded CI machine).
const READY_WITHIN: Duration = Duration::from_secs(90);

fn prometheus_program() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/local/bin"].map(PathBuf::from))
        .map(|dir| dir.join("prometheus"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`prometheus` is not installed: the graph tests need a real server; \
                 install it with `apt-get install prometheus` (scripts/test does)"
            )
        })
}

pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn unix_now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// A running Prometheus, killed when dropped.
pub struct Server {
    child: Child,
    pub dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`, also its own scrape target's `instance`.
    pub address: String,
    pub settings: PrometheusSettings,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts a server and waits until its own request counters have points.
    pub async fn start() -> Self {
        // A port found free may be taken before the server binds it: retry.
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start().await {
                Ok(server) => return server,
                Err(e) => last = e,
            }
        }
        panic!("Prometheus did not start: {last}");
    }

    async fn try_start() -> Result<Self, String> {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: [\"{address}\"]\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(prometheus_program())
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut server = Self {
            child,
            dir,
            settings: PrometheusSettings {
                url: format!("http://{address}"),
                timeout: Duration::from_secs(30),
                bearer: None,
            },
            address,
        };
        server.wait_for_points().await?;
        Ok(server)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    async fn wait_for_points(&mut self) -> Result<(), String> {
        let query = format!(
            "prometheus_http_requests_total{{job=\"prometheus\", instance=\"{}\"}}",
            self.address
        );
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(format!("exited with {status}:\n{}", self.log()));
            }
            let end = unix_now();
            let last = match query::query_range(
                &self.settings,
                &query,
                end - 120,
                end,
                Duration::from_secs(1),
            )
            .await
            {
                // A few points, so that the lines have length.
                Ok(series) if series.iter().any(|s| s.points.len() >= 3) => return Ok(()),
                Ok(series) => format!("{} series, too few points yet", series.len()),
                Err(e) => e,
            };
            if Instant::now() > deadline {
                return Err(format!(
                    "no points within {READY_WITHIN:?} (last: {last}):\n{}",
                    self.log()
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}
