//! The catalog: a folder of plain files that declares the automation. This
//! module finds and loads `actions/**/*.toml`, validates every action (types,
//! parameters, command templates, scripts, alias formats) and reports **all**
//! problems at once, each with file, line and key.
//!
//! It does not watch files or decide when to reload (the daemon does), and it
//! does not run anything.

mod action_file;
mod workflow_file;
/// Every automation rule names an action of the catalog, and only its
/// parameters.
fn check_automation_actions(
    config: &crate::alerts::AlertsConfig,
    actions: &BTreeMap<ActionName, Arc<Action>>,
    errors: &mut Vec<CatalogError>,
) {
    for (i, rule) in config.automations.iter().enumerate() {
        let error = |key: String, message: String| CatalogError {
            file: PathBuf::from(crate::alerts::FILE),
            line: Some(rule.line),
            key: Some(key),
            message,
        };
        let Some(action) = actions.values().find(|a| a.name.as_str() == rule.action) else {
            errors.push(error(
                format!("automations[{i}].action"),
                format!("unknown action `{}`", rule.action),
            ));
            continue;
        };
        for name in rule.params.keys() {
            if !action.params.iter().any(|p| p.name == *name) {
                errors.push(error(
                    format!("automations[{i}].params.{name}"),
                    format!("`{name}` is not a parameter of `{}`", rule.action),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::alias::AliasFormat;
use crate::ids::ActionName;
use crate::params::ParamSpec;

/// Largest catalog file read, in bytes.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Which runner executes an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Runner {
    /// A process on the node that runs it.
    Local,
    /// The command on one or many hosts over SSH.
    Ssh,
    /// An HTTP request.
    Http,
    /// A Prometheus query drawn as a chart.
    Query,
    /// The steps of a workflow (`workflows/*.toml`).
    Workflow,
}

impl Runner {
    /// The runners, as written in action files.
    pub const NAMES: &str = "local, ssh, http, query, workflow";

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Ssh => "ssh",
            Self::Http => "http",
            Self::Query => "query",
            Self::Workflow => "workflow",
        }
    }
}

/// A chat alias of an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub format: AliasFormat,
    /// Text the bot answers before running, e.g. `Rebooting {host}…`.
    pub ack: Option<String>,
    pub description: Option<String>,
    /// The line of its `format` in the action's file (`Action::file`), for
    /// errors that name the alias, such as overlapping aliases.
    pub line: usize,
}

/// Who may approve: a group, or one named principal. Shown and serialized
/// as `group:NAME` or `user:NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approver {
    Group(String),
    User(crate::ids::Principal),
}

impl Approver {
    /// `group:NAME` or `user:NAME`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(g) = text.strip_prefix("group:").filter(|g| !g.is_empty()) {
            Ok(Self::Group(g.to_owned()))
        } else if let Some(u) = text.strip_prefix("user:") {
            crate::ids::Principal::new(u)
                .map(Self::User)
                .map_err(|e| e.to_string())
        } else {
            Err(format!(
                "approver `{text}` must be `group:NAME` or `user:NAME`"
            ))
        }
    }
}

impl fmt::Display for Approver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Group(g) => write!(f, "group:{g}"),
            Self::User(u) => write!(f, "user:{u}"),
        }
    }
}

impl Serialize for Approver {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An action's two-person rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalRule {
    /// Anyone matching one of these may approve (never the requester).
    pub approvers: Vec<Approver>,
    /// Distinct approvals needed.
    pub count: u32,
    /// How long a request waits before it is cancelled (`"30m"` when shown).
    #[serde(serialize_with = "duration_text")]
    pub expires: Duration,
}

impl ApprovalRule {
    /// Who may approve, as people read it: `1 of group:sre-leads`.
    pub fn approvers_text(&self) -> String {
        let who: Vec<String> = self.approvers.iter().map(ToString::to_string).collect();
        format!("{} of {}", self.count, who.join(", "))
    }
}

fn duration_text<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_duration(*d))
}

impl ApprovalRule {
    /// How long a request waits when the rule does not say.
    pub const DEFAULT_EXPIRES: Duration = Duration::from_secs(30 * 60);

    /// A rule from its written parts (`approvers` as `group:NAME` or
    /// `user:NAME`, `count` at least 1, `expires` a duration above zero);
    /// each problem names its part.
    pub fn from_parts(
        approvers: &[String],
        count: Option<u32>,
        expires: Option<&str>,
    ) -> Result<Self, Vec<(&'static str, String)>> {
        let mut problems = Vec::new();
        let mut parsed = Vec::new();
        for text in approvers {
            match Approver::parse(text.trim()) {
                Ok(a) => parsed.push(a),
                Err(e) => problems.push(("approvers", e)),
            }
        }
        if approvers.is_empty() {
            problems.push((
                "approvers",
                "name at least one approver (`group:NAME` or `user:NAME`)".to_owned(),
            ));
        }
        let count = count.unwrap_or(1);
        if count == 0 {
            problems.push(("count", "must be at least 1".to_owned()));
        }
        let expires = match expires.map(crate::params::parse_duration) {
            None => Self::DEFAULT_EXPIRES,
            Some(Ok(d)) if !d.is_zero() => d,
            Some(Ok(_)) => {
                problems.push(("expires", "must be longer than zero".to_owned()));
                Duration::ZERO
            }
            Some(Err(e)) => {
                problems.push(("expires", e));
                Duration::ZERO
            }
        };
        if problems.is_empty() {
            Ok(Self {
                approvers: parsed,
                count,
                expires,
            })
        } else {
            Err(problems)
        }
    }
}

impl<'de> serde::Deserialize<'de> for ApprovalRule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        struct Written {
            approvers: Vec<String>,
            count: u32,
            expires: String,
        }
        let w = Written::deserialize(d)?;
        Self::from_parts(&w.approvers, Some(w.count), Some(&w.expires)).map_err(|problems| {
            let shown: Vec<String> = problems
                .into_iter()
                .map(|(part, message)| format!("{part}: {message}"))
                .collect();
            serde::de::Error::custom(shown.join("; "))
        })
    }
}

/// A validated action.
#[derive(Debug, Clone)]
pub struct Action {
    pub name: ActionName,
    pub description: String,
    pub runner: Runner,
    /// Argv templates; the first element is the program and is never templated.
    pub command: Vec<String>,
    pub timeout: Duration,
    pub tags: Vec<String>,
    pub params: Vec<ParamSpec>,
    pub aliases: Vec<Alias>,
    /// Most executions of this action running at once on one node.
    pub concurrency: Option<usize>,
    /// Extra environment for the command.
    pub env: BTreeMap<String, String>,
    /// Working folder, relative to the catalog root.
    pub working_dir: Option<PathBuf>,
    /// Whether running it twice is harmless (lets a lost run be retried).
    pub idempotent: bool,
    /// Who must approve a run before it starts (two-person rule), if anyone.
    pub approval: Option<ApprovalRule>,
    /// The request an `http` action makes.
    pub http: Option<crate::http_request::HttpSpec>,
    /// The `graphs.toml` entry a `query` action draws.
    pub graph: Option<String>,
    /// The steps of a workflow.
    pub workflow: Option<Arc<crate::workflow::Workflow>>,
    /// The file it came from, relative to the catalog root.
    pub file: PathBuf,
}

impl Action {
    pub fn param_names(&self) -> Vec<&str> {
        self.params.iter().map(|p| p.name.as_str()).collect()
    }
}

/// What identifies one loaded state of a catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogVersion {
    /// SHA-256 over every file's path and content (first 16 hex digits).
    pub hash: String,
    /// The git commit checked out in the catalog folder, when it is a repository.
    pub git_commit: Option<String>,
}

impl fmt::Display for CatalogVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.git_commit {
            Some(c) => write!(f, "{} (git {})", self.hash, &c[..c.len().min(12)]),
            None => f.write_str(&self.hash),
        }
    }
}

/// A loaded, fully validated catalog.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub root: PathBuf,
    pub version: CatalogVersion,
    actions: BTreeMap<ActionName, Arc<Action>>,
    /// The authorization policies of `policies/`, validated.
    pub policies: crate::policy::Policies,
    /// The hosts of `inventory.toml` (empty without one).
    pub inventory: Arc<crate::inventory::Inventory>,
    /// The named queries of `graphs.toml` (empty without one).
    pub graphs: Arc<crate::graphs::Graphs>,
    /// Alert routing, receivers, inhibitions and time intervals of
    /// `alerts.toml`, if the catalog has one.
    pub alerts: Option<Arc<crate::alerts::AlertsConfig>>,
    /// The cron schedules of `schedules.toml` (empty without one).
    pub schedules: Arc<crate::schedules::Schedules>,
    /// The inbound webhooks of `hooks.toml` (empty without one).
    pub hooks: Arc<crate::hooks::Hooks>,
}

/// Every `query` action names a graph of `graphs.toml`, and that graph's
/// templates use only the action's parameters and what the inventory says
/// of its host (`address`, `vars`).
fn check_graph_actions(
    actions: &BTreeMap<ActionName, Arc<Action>>,
    graphs: &crate::graphs::Graphs,
    errors: &mut Vec<CatalogError>,
) {
    for action in actions.values() {
        let Some(name) = &action.graph else { continue };
        let problem = |message: String| CatalogError {
            file: action.file.clone(),
            line: None,
            key: Some("graph".to_owned()),
            message,
        };
        let Some(graph) = graphs.get(name) else {
            let known: Vec<&str> = graphs.iter().map(|g| g.name.as_str()).collect();
            let hint = crate::params::closest(name, &known)
                .map(|n| format!(" (did you mean `{n}`?)"))
                .unwrap_or_default();
            errors.push(problem(format!(
                "graph `{name}` is not in {}{hint}",
                crate::graphs::FILE
            )));
            continue;
        };
        for var in graph.variables() {
            if var != "address" && var != "vars" && !action.params.iter().any(|p| p.name == var) {
                errors.push(problem(format!(
                    "graph `{name}` uses `{{{{ {var} }}}}`, which is not a parameter of this action (nor `address` or `vars` of its host)"
                )));
            }
        }
    }
}

impl Catalog {
    /// Loads and validates the catalog in `root`.
    /// The root is made absolute, so that programs and working folders
    /// resolve the same whatever the current folder of the caller.
    pub fn load(root: &Path) -> Result<Self, CatalogErrors> {
        let mut errors = Vec::new();
        let root = match std::fs::canonicalize(root) {
            Ok(r) if r.is_dir() => r,
            _ => {
                return Err(CatalogErrors(vec![CatalogError::file(
                    root,
                    format!("`{}` is not a folder", root.display()),
                )]));
            }
        };
        let root = root.as_path();
        let mut files = Vec::new();
        collect_toml(root, &root.join("actions"), &mut files, &mut errors);
        let workflows = root.join(crate::workflow::FOLDER);
        if workflows.is_dir() {
            collect_toml(root, &workflows, &mut files, &mut errors);
        }
        files.sort();
        let mut actions: BTreeMap<ActionName, Arc<Action>> = BTreeMap::new();
        let mut origin_of: BTreeMap<ActionName, PathBuf> = BTreeMap::new();
        for rel in &files {
            let text = match read_limited(&root.join(rel)) {
                Ok(t) => t,
                Err(e) => {
                    errors.push(CatalogError::file(rel, e));
                    continue;
                }
            };
            let kind = if rel.starts_with(crate::workflow::FOLDER) {
                action_file::Kind::Workflow
            } else {
                action_file::Kind::Action
            };
            if let Some(action) = action_file::load(root, rel, &text, kind, &mut errors) {
                if let Some(first) = origin_of.get(&action.name) {
                    errors.push(CatalogError {
                        file: rel.clone(),
                        line: Some(1),
                        key: Some("name".to_owned()),
                        message: format!(
                            "action `{}` is already defined in {}",
                            action.name,
                            first.display()
                        ),
                    });
                    continue;
                }
                origin_of.insert(action.name.clone(), rel.clone());
                actions.insert(action.name.clone(), Arc::new(action));
            }
        }
        // Two aliases that accept the same chat text would make that text
        // ambiguous: `catalog check` names both and a text they share.
        for overlap in crate::command::overlaps_among(actions.values()) {
            errors.push(CatalogError {
                file: overlap.first.file.clone(),
                line: Some(overlap.first.line),
                key: Some(format!("aliases[{}].format", overlap.first.index)),
                message: overlap.to_string(),
            });
        }
        crate::workflow::check_all(&actions, &mut errors);
        let inventory = crate::inventory::Inventory::load(root, &mut errors);
        let alerts = load_optional(root, crate::alerts::FILE, &mut errors, |text| {
            crate::alerts::AlertsConfig::parse(text).map(|config| Some(Arc::new(config)))
        });
        if let Some(config) = &alerts {
            check_automation_actions(config, &actions, &mut errors);
        }
        let schedules = load_optional(root, crate::schedules::FILE, &mut errors, |text| {
            crate::schedules::Schedules::parse(text)
        });
        crate::schedules::check_actions(&schedules, &actions, &mut errors);
        let hooks = load_optional(root, crate::hooks::FILE, &mut errors, |text| {
            crate::hooks::Hooks::parse(text)
        });
        crate::hooks::check_actions(&hooks, &actions, &mut errors);
        let before = errors.len();
        let graphs = crate::graphs::Graphs::load(root, &mut errors);
        // A broken graphs.toml reads as empty: its own errors say why,
        // without every `query` action repeating that its graph is missing.
        if errors.len() == before {
            check_graph_actions(&actions, &graphs, &mut errors);
        }
        let policies = match crate::policy::Policies::load(root) {
            Ok(p) => Some(p),
            Err(mut more) => {
                errors.append(&mut more);
                None
            }
        };
        let (Some(policies), true) = (policies, errors.is_empty()) else {
            errors.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
            return Err(CatalogErrors(errors));
        };
        let version = CatalogVersion {
            hash: content_hash(root),
            git_commit: git_commit(root),
        };
        Ok(Self {
            root: root.to_path_buf(),
            version,
            actions,
            policies,
            inventory: Arc::new(inventory),
            graphs: Arc::new(graphs),
            alerts,
            schedules: Arc::new(schedules),
            hooks: Arc::new(hooks),
        })
    }

    pub fn action(&self, name: &str) -> Option<&Arc<Action>> {
        ActionName::new(name)
            .ok()
            .and_then(|n| self.actions.get(&n))
    }

    pub fn actions(&self) -> impl Iterator<Item = &Arc<Action>> {
        self.actions.values()
    }

    pub fn len(&self) -> usize {
        self.actions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// The known action nearest to a misspelt name.
    pub fn suggest(&self, name: &str) -> Option<&str> {
        let names: Vec<&str> = self.actions.keys().map(ActionName::as_str).collect();
        crate::params::closest(name, &names)
    }
}

/// Reads and parses an optional file of the catalog (`inventory.toml`,
/// `graphs.toml`): no file is `T::default()`; problems are added to
/// `errors`, and then the default stands in.
pub(crate) fn load_optional<T: Default>(
    root: &Path,
    file: &str,
    errors: &mut Vec<CatalogError>,
    parse: impl FnOnce(&str) -> Result<T, Vec<CatalogError>>,
) -> T {
    let path = root.join(file);
    if !path.exists() {
        return T::default();
    }
    let parsed = read_limited(&path)
        .map_err(|e| vec![CatalogError::file(Path::new(file), e)])
        .and_then(|text| parse(&text));
    match parsed {
        Ok(value) => value,
        Err(mut problems) => {
            errors.append(&mut problems);
            T::default()
        }
    }
}

/// The 1-based line of a byte offset in a file's text, for errors that
/// name their line.
pub(crate) fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

pub(crate) fn read_limited(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!("file is larger than {MAX_FILE_BYTES} bytes"));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    String::from_utf8(bytes).map_err(|_| "file is not valid UTF-8".to_owned())
}

fn collect_toml(root: &Path, dir: &Path, out: &mut Vec<PathBuf>, errors: &mut Vec<CatalogError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && dir == root.join("actions") => {
            errors.push(CatalogError::file(
                Path::new("actions"),
                "the catalog has no `actions` folder".to_owned(),
            ));
            return;
        }
        Err(e) => {
            errors.push(CatalogError::file(
                dir.strip_prefix(root).unwrap_or(dir),
                format!("cannot list folder: {e}"),
            ));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            collect_toml(root, &path, out, errors);
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
        }
    }
}

/// SHA-256 over the relative path and content of every file in the catalog
/// (`.git` excluded), so that any change gives a new version.
fn content_hash(root: &Path) -> String {
    fn walk(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name() == ".git" {
                continue;
            }
            match entry.file_type() {
                Ok(t) if t.is_dir() => walk(root, &path, files),
                Ok(t) if t.is_file() => {
                    files.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf())
                }
                _ => {}
            }
        }
    }
    let mut files = Vec::new();
    walk(root, root, &mut files);
    files.sort();
    let mut hasher = Sha256::new();
    for rel in files {
        hasher.update(rel.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(std::fs::read(root.join(&rel)).unwrap_or_default());
        hasher.update([0]);
    }
    hasher
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The commit checked out in `root/.git`, read from the files git keeps (so
/// no git binary is needed).
fn git_commit(root: &Path) -> Option<String> {
    let git = root.join(".git");
    let head = std::fs::read_to_string(git.join("HEAD")).ok()?;
    let head = head.trim();
    let Some(reference) = head.strip_prefix("ref: ") else {
        return Some(head.to_owned());
    };
    if let Ok(commit) = std::fs::read_to_string(git.join(reference)) {
        return Some(commit.trim().to_owned());
    }
    let packed = std::fs::read_to_string(git.join("packed-refs")).ok()?;
    packed.lines().find_map(|line| {
        let (commit, name) = line.split_once(' ')?;
        (name == reference).then(|| commit.to_owned())
    })
}

/// One problem found in a catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct CatalogError {
    /// The file, relative to the catalog root.
    pub file: PathBuf,
    pub line: Option<usize>,
    /// The key in dotted form, e.g. `params.host.type`.
    pub key: Option<String>,
    pub message: String,
}

impl CatalogError {
    fn file(file: &Path, message: String) -> Self {
        Self {
            file: file.to_path_buf(),
            line: None,
            key: None,
            message,
        }
    }
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in a catalog, sorted by file and line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct CatalogErrors(pub Vec<CatalogError>);

impl fmt::Display for CatalogErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "{n} error{} in the catalog",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}
