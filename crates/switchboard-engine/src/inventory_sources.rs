//! Dynamic inventory sources at run time: reads each `[[sources]]` entry of
//! the catalog's `inventory.toml` on its `refresh` interval (a `file_sd`
//! glob of Prometheus JSON files, or an HTTP `GET` with an optional bearer
//! token), keeps each source's last good hosts, and serves the catalog's
//! inventory with them merged in ([`Engine::inventory`]), computed once per
//! change and cached.
//!
//! A refresh that fails — unreadable file, bad JSON, wrong shape, bad names,
//! HTTP error, timeout, an answer over [`MAX_SOURCE_BYTES`] — is logged and
//! recorded ([`Engine::inventory_sources`]) and the source keeps the hosts it
//! had: nothing already known is lost to a broken file or a flaky CMDB. A
//! source whose declaration changes at a catalog reload starts afresh; one
//! the catalog no longer declares is dropped.
//!
//! Not here: parsing, checking and merging (pure, in
//! `switchboard_core::inventory`, which documents how targets map to
//! hosts); and watching files for changes (sources are polled, so a
//! rewritten file is seen at the next refresh, not at once). HTTP sources
//! follow no redirect, so the bearer token goes only to the URL the catalog
//! names.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use switchboard_core::Timestamp;
use switchboard_core::inventory::{
    DiscoveredHost, Inventory, InventorySource, MAX_DISCOVERED_HOSTS, SourceKind, parse_file_sd,
};
use switchboard_core::secret::SecretRef;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Engine;

/// Largest file (each) or HTTP answer a source reads.
pub const MAX_SOURCE_BYTES: u64 = 16 * 1024 * 1024;
/// Longest an HTTP source's request may take (or its refresh, if shorter).
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// What a source has found and how its last refresh went.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SourceState {
    pub name: String,
    /// `file_sd` or `http`.
    pub kind: &'static str,
    /// The glob or the URL.
    pub location: String,
    /// Hosts it has now (its last good answer), before merging: a host
    /// declared in `inventory.toml` too counts here.
    pub hosts: usize,
    /// When it last refreshed successfully.
    pub last_refresh: Option<Timestamp>,
    /// Why its latest refresh failed, if it did (cleared by a success).
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
}

/// Each source's hosts and state, and the merged inventory last computed.
pub(crate) struct Sources {
    root: PathBuf,
    inner: Mutex<Inner>,
    /// The declared sources, for the supervisor.
    declared: watch::Sender<Vec<InventorySource>>,
}

#[derive(Default)]
struct Inner {
    records: BTreeMap<String, Record>,
    /// Bumped whenever some source's hosts change.
    generation: u64,
    cached: Option<Cached>,
}

struct Record {
    /// The declaration it was read with.
    source: InventorySource,
    hosts: Vec<DiscoveredHost>,
    distinct: usize,
    last_refresh: Option<Timestamp>,
    last_error: Option<String>,
    last_error_at: Option<Timestamp>,
}

struct Cached {
    base: Arc<Inventory>,
    generation: u64,
    merged: Arc<Inventory>,
}

impl Sources {
    /// The sources of a catalog rooted at `root`; nothing runs until
    /// [`Sources::start`].
    pub(crate) fn new(root: PathBuf, declared: &[InventorySource]) -> Arc<Self> {
        let (tx, _) = watch::channel(Vec::new());
        let sources = Arc::new(Self {
            root,
            inner: Mutex::new(Inner::default()),
            declared: tx,
        });
        sources.configure(declared);
        sources
    }

    /// Starts refreshing, in the background, until the engine is dropped.
    pub(crate) fn start(self: &Arc<Self>) {
        tokio::spawn(supervise(Arc::downgrade(self), self.declared.subscribe()));
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes the sources a (re)loaded catalog declares: unchanged ones keep
    /// their hosts, changed ones start afresh, undeclared ones are dropped.
    pub(crate) fn configure(&self, declared: &[InventorySource]) {
        {
            let mut inner = self.inner();
            let before = inner.records.len();
            inner
                .records
                .retain(|name, r| declared.iter().any(|s| s.name == *name && s == &r.source));
            let mut changed = inner.records.len() != before;
            for source in declared {
                if !inner.records.contains_key(&source.name) {
                    inner.records.insert(
                        source.name.clone(),
                        Record {
                            source: source.clone(),
                            hosts: Vec::new(),
                            distinct: 0,
                            last_refresh: None,
                            last_error: None,
                            last_error_at: None,
                        },
                    );
                    changed = true;
                }
            }
            if changed {
                inner.generation += 1;
            }
        }
        self.declared.send_replace(declared.to_vec());
    }

    /// `base` with what the sources found merged in; cached until a
    /// source's hosts change or `base` is another inventory.
    pub(crate) fn merged(&self, base: &Arc<Inventory>) -> Arc<Inventory> {
        if base.sources().is_empty() {
            return base.clone();
        }
        let mut inner = self.inner();
        if let Some(c) = &inner.cached
            && c.generation == inner.generation
            && Arc::ptr_eq(&c.base, base)
        {
            return c.merged.clone();
        }
        let discovered: BTreeMap<String, Vec<DiscoveredHost>> = inner
            .records
            .iter()
            .map(|(name, r)| (name.clone(), r.hosts.clone()))
            .collect();
        let merged = Arc::new(base.with_discovered(&discovered));
        inner.cached = Some(Cached {
            base: base.clone(),
            generation: inner.generation,
            merged: merged.clone(),
        });
        merged
    }

    /// Every declared source's state, in declaration order.
    pub(crate) fn states(&self) -> Vec<SourceState> {
        let declared = self.declared.borrow().clone();
        let inner = self.inner();
        declared
            .iter()
            .filter_map(|s| inner.records.get(&s.name))
            .map(|r| SourceState {
                name: r.source.name.clone(),
                kind: r.source.kind.as_str(),
                location: r.source.kind.location().to_owned(),
                hosts: r.distinct,
                last_refresh: r.last_refresh,
                last_error: r.last_error.clone(),
                last_error_at: r.last_error_at,
            })
            .collect()
    }

    /// Records one refresh of `source` (ignored if it has been redeclared since).
    fn record(&self, source: &InventorySource, outcome: Result<Vec<DiscoveredHost>, String>) {
        let mut inner = self.inner();
        let Some(record) = inner
            .records
            .get_mut(&source.name)
            .filter(|r| r.source == *source)
        else {
            return;
        };
        let now = Timestamp::now();
        let changed = match outcome {
            Ok(hosts) => {
                if record.last_error.take().is_some() {
                    tracing::info!(source = %source.name, hosts = hosts.len(), "inventory source recovered");
                }
                record.last_refresh = Some(now);
                record.last_error_at = None;
                let changed = record.hosts != hosts;
                record.distinct = hosts
                    .iter()
                    .map(|h| h.name.as_str())
                    .collect::<BTreeSet<_>>()
                    .len();
                record.hosts = hosts;
                changed
            }
            Err(e) => {
                if record.last_error.as_deref() != Some(e.as_str()) {
                    tracing::warn!(source = %source.name, error = %e, kept = record.distinct, "inventory source failed; keeping the hosts it had");
                }
                record.last_error = Some(e);
                record.last_error_at = Some(now);
                false
            }
        };
        if changed {
            inner.generation += 1;
        }
    }
}

impl Engine {
    /// The catalog's inventory with the hosts its sources found merged in
    /// (a host declared in `inventory.toml` wins). Cheap: recomputed only
    /// when a source's hosts change or the catalog is reloaded.
    pub fn inventory(&self) -> Arc<Inventory> {
        self.shared
            .inventory_sources
            .merged(&self.catalog().inventory)
    }

    /// Each inventory source: what it found and how its last refresh went.
    pub fn inventory_sources(&self) -> Vec<SourceState> {
        self.shared.inventory_sources.states()
    }
}

/// Keeps one refresh task per declared source, restarting those whose
/// declaration changes; ends (with its tasks) when the engine is gone.
async fn supervise(sources: Weak<Sources>, mut declared: watch::Receiver<Vec<InventorySource>>) {
    let mut tasks: BTreeMap<String, (InventorySource, JoinHandle<()>)> = BTreeMap::new();
    loop {
        let now = declared.borrow_and_update().clone();
        tasks.retain(|name, (source, task)| {
            let keep = now.iter().any(|s| s.name == *name && s == source);
            if !keep {
                task.abort();
            }
            keep
        });
        let Some(root) = sources.upgrade().map(|s| s.root.clone()) else {
            break;
        };
        for source in now {
            if !tasks.contains_key(&source.name) {
                let task =
                    tokio::spawn(refresh_loop(sources.clone(), source.clone(), root.clone()));
                tasks.insert(source.name.clone(), (source, task));
            }
        }
        if declared.changed().await.is_err() {
            break;
        }
    }
    for (_, (_, task)) in tasks {
        task.abort();
    }
}

async fn refresh_loop(sources: Weak<Sources>, source: InventorySource, root: PathBuf) {
    let client = match &source.kind {
        SourceKind::Http { .. } => Some(
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(source.refresh.min(HTTP_TIMEOUT))
                .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
                .build(),
        ),
        SourceKind::FileSd { .. } => None,
    };
    loop {
        let outcome = match (&source.kind, &client) {
            (SourceKind::FileSd { pattern }, _) => read_file_sd(&root, pattern).await,
            (SourceKind::Http { url, bearer }, Some(Ok(client))) => {
                read_http(client, url, bearer.as_ref()).await
            }
            (SourceKind::Http { .. }, Some(Err(e))) => {
                Err(format!("cannot set up the HTTP client: {e}"))
            }
            (SourceKind::Http { .. }, None) => Err("no HTTP client".to_owned()),
        };
        let Some(s) = sources.upgrade() else { return };
        s.record(&source, outcome);
        drop(s);
        tokio::time::sleep(source.refresh).await;
    }
}

/// Reads and parses every file the glob matches (relative to the catalog
/// root unless absolute), all or nothing.
async fn read_file_sd(root: &Path, pattern: &str) -> Result<Vec<DiscoveredHost>, String> {
    let full = if Path::new(pattern).is_absolute() {
        PathBuf::from(pattern)
    } else {
        root.join(pattern)
    };
    let root = root.to_path_buf();
    let read = tokio::task::spawn_blocking(move || {
        let text = full
            .to_str()
            .ok_or_else(|| format!("`{}` is not UTF-8", full.display()))?;
        let paths = glob::glob(text).map_err(|e| format!("`{pattern}`: {e}", pattern = text))?;
        let mut hosts = Vec::new();
        for entry in paths {
            let path = entry.map_err(|e| e.to_string())?;
            if !path.is_file() {
                continue;
            }
            let shown = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .display()
                .to_string();
            let bytes = read_capped(&path).map_err(|e| format!("{shown}: {e}"))?;
            let mut found = parse_file_sd(&bytes).map_err(|e| format!("{shown}: {e}"))?;
            hosts.append(&mut found);
            if hosts.len() > MAX_DISCOVERED_HOSTS {
                return Err(format!("more than {MAX_DISCOVERED_HOSTS} hosts"));
            }
        }
        Ok(hosts)
    });
    read.await
        .unwrap_or_else(|e| Err(format!("reading the files failed: {e}")))
}

fn read_capped(path: &Path) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_SOURCE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_SOURCE_BYTES {
        return Err(format!("larger than {MAX_SOURCE_BYTES} bytes"));
    }
    Ok(bytes)
}

/// `GET`s the URL (with the bearer token, resolved now so a rotated one is
/// used) and parses the answer.
async fn read_http(
    client: &reqwest::Client,
    url: &str,
    bearer: Option<&SecretRef>,
) -> Result<Vec<DiscoveredHost>, String> {
    let mut request = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json");
    if let Some(bearer) = bearer {
        let token = bearer.resolve().map_err(|e| format!("bearer: {e}"))?;
        request = request.bearer_auth(token.expose());
    }
    let mut response = request
        .send()
        .await
        .map_err(crate::runner::describe_request_error)?;
    let status = response.status();
    if !status.is_success() {
        let reason = status.canonical_reason().unwrap_or_default();
        let more = if status.is_redirection() {
            " (redirects are not followed)"
        } else {
            ""
        };
        return Err(format!("HTTP {} {reason}{more}", status.as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(crate::runner::describe_request_error)?
    {
        body.extend_from_slice(&chunk);
        if body.len() as u64 > MAX_SOURCE_BYTES {
            return Err(format!(
                "the answer is larger than {MAX_SOURCE_BYTES} bytes"
            ));
        }
    }
    parse_file_sd(&body)
}
