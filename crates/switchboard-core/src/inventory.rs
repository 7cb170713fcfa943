//! The inventory: the hosts actions can reach and the groups and tags they
//! are known by, from the catalog's `inventory.toml`, and target selectors
//! (`web-1`, `group:prod`, `tag:db`, `web-*`, combined with `,`, `&` and
//! `!`) resolved against it.
//!
//! Dynamic sources (`[[sources]]`) are declared and checked here, and what
//! they return is parsed ([`parse_file_sd`]) and merged into the inventory
//! here ([`Inventory::with_discovered`]), all pure. Both kinds of source
//! answer in the Prometheus `file_sd` JSON shape,
//! `[{"targets": ["host:port", …], "labels": {"k": "v", …}}, …]`, mapped so:
//!
//! * the host's name (and address) is the target without its port; an IPv6
//!   target (`[2001:db8::1]:9100`) is named by its address, `2001:db8::1`;
//! * the target's port is the exporter's, not SSH's: it is kept as the
//!   variable `target_port`, and the SSH port is `[defaults] port` (or 22);
//! * labels become variables, except labels starting with `__` (Prometheus'
//!   own, such as `__meta_*` and `__address__`), which are dropped, and
//!   `group`/`groups` (comma-separated groups the host joins) and `tags`
//!   (comma-separated tags);
//! * every host of a source also joins the source's `groups`; groups nest
//!   and carry variables as the file declares them, and `[defaults]` apply;
//! * a host found several times (two targets, two sources) is one host:
//!   its groups and tags are the union, and for a variable the first value
//!   found wins (sources in file order);
//! * a host also declared in `[[hosts]]` is the declared one: the static
//!   declaration wins whole, nothing of what a source says is merged in.
//!
//! Input a source returns is taken whole or not at all: one bad entry makes
//! [`parse_file_sd`] fail and the caller keeps the hosts it had.
//!
//! Not here: reading the files and URLs on a timer, keeping each source's
//! last good hosts and serving the merged inventory (the engine's
//! `inventory_sources`); and connecting to hosts (the runners).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::catalog::CatalogError;
use crate::secret::SecretRef;

/// The file, relative to the catalog root.
pub const FILE: &str = "inventory.toml";

/// One host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Host {
    pub name: String,
    /// Where to connect: an address or DNS name (default: the name).
    pub address: String,
    pub port: u16,
    pub user: Option<String>,
    pub tags: BTreeSet<String>,
    /// Every group the host is in, nested groups included.
    pub groups: BTreeSet<String>,
    /// Variables: the host's own over its groups' (sorted by name) over the defaults.
    pub vars: BTreeMap<String, String>,
}

/// The hosts and groups of a catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    hosts: BTreeMap<String, Host>,
    groups: BTreeSet<String>,
    /// What discovered hosts are built with: the file's defaults, its
    /// groups' variables and nesting, and its sources.
    defaults: Defaults,
    group_vars: BTreeMap<String, BTreeMap<String, String>>,
    parents: BTreeMap<String, Vec<String>>,
    sources: Vec<InventorySource>,
}

/// How often a source is read unless it says.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(60);
/// The shortest and longest `refresh` accepted.
pub const MIN_REFRESH: Duration = Duration::from_secs(1);
pub const MAX_REFRESH: Duration = Duration::from_secs(24 * 3600);

/// A dynamic source of hosts, from `[[sources]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventorySource {
    pub name: String,
    pub kind: SourceKind,
    /// How often it is read again.
    pub refresh: Duration,
    /// Groups every host it finds joins.
    pub groups: BTreeSet<String>,
}

/// Where a source reads its hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// Prometheus `file_sd` JSON files: a glob, relative to the catalog
    /// root unless absolute.
    FileSd { pattern: String },
    /// An HTTP(S) URL answering the same JSON to a `GET`, with an optional
    /// bearer token.
    Http {
        url: String,
        bearer: Option<SecretRef>,
    },
}

impl SourceKind {
    /// `file_sd` or `http`, as written in the file.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::FileSd { .. } => "file_sd",
            Self::Http { .. } => "http",
        }
    }

    /// The glob or the URL.
    pub fn location(&self) -> &str {
        match self {
            Self::FileSd { pattern } => pattern,
            Self::Http { url, .. } => url,
        }
    }
}

/// A host a source found, before it is merged into an inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredHost {
    /// Also its address.
    pub name: String,
    pub groups: BTreeSet<String>,
    pub tags: BTreeSet<String>,
    pub vars: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InventoryFile {
    #[serde(default)]
    defaults: Defaults,
    #[serde(default)]
    hosts: Vec<HostEntry>,
    #[serde(default)]
    groups: BTreeMap<String, GroupEntry>,
    #[serde(default)]
    sources: Vec<SourceEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceEntry {
    name: Spanned<String>,
    file_sd: Option<Spanned<String>>,
    http: Option<Spanned<String>>,
    refresh: Option<Spanned<String>>,
    groups: Option<Spanned<BTreeSet<String>>>,
    bearer: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Defaults {
    port: Option<u16>,
    user: Option<String>,
    #[serde(default)]
    vars: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostEntry {
    name: String,
    address: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    #[serde(default)]
    tags: BTreeSet<String>,
    #[serde(default)]
    groups: BTreeSet<String>,
    #[serde(default)]
    vars: BTreeMap<String, String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupEntry {
    #[serde(default)]
    #[allow(
        dead_code,
        reason = "documentation for people; read so that it is allowed"
    )]
    description: String,
    /// Groups whose hosts are also in this one.
    #[serde(default)]
    children: BTreeSet<String>,
    #[serde(default)]
    vars: BTreeMap<String, String>,
}

/// Names of hosts, groups and tags: what a selector can spell unambiguously.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

impl Inventory {
    /// Reads `inventory.toml` in the catalog `root`; no file is an empty
    /// inventory. Problems are added to `errors` with file and line.
    pub(crate) fn load(root: &Path, errors: &mut Vec<CatalogError>) -> Self {
        crate::catalog::load_optional(root, FILE, errors, Self::parse)
    }

    /// An inventory from the text of an `inventory.toml`.
    pub fn parse(text: &str) -> Result<Self, Vec<CatalogError>> {
        let file: InventoryFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| crate::catalog::line_at(text, s.start));
            vec![error(line, e.message().to_owned())]
        })?;
        let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).map(|i| i + 1);
        let mut problems = Vec::new();
        // Groups: declared ones, and those hosts and sources name.
        let mut groups: BTreeSet<String> = file.groups.keys().cloned().collect();
        for h in &file.hosts {
            groups.extend(h.groups.iter().cloned());
        }
        for (name, g) in &file.groups {
            groups.extend(g.children.iter().cloned());
            if g.children.contains(name) {
                problems.push(error(
                    line_of(&format!("[groups.{name}]")),
                    format!("group `{name}` cannot contain itself"),
                ));
            }
        }
        let sources = read_sources(text, file.sources, &mut problems);
        for source in &sources {
            groups.extend(source.groups.iter().cloned());
        }
        for g in &groups {
            if !valid_name(g) {
                problems.push(error(
                    line_of(g),
                    format!("`{g}` is not a valid group name (letters, digits, `.`, `-`, `_`)"),
                ));
            }
        }
        let parents = parents_of(&file.groups);
        let group_vars: BTreeMap<String, BTreeMap<String, String>> = file
            .groups
            .into_iter()
            .filter(|(_, g)| !g.vars.is_empty())
            .map(|(name, g)| (name, g.vars))
            .collect();
        let mut hosts = BTreeMap::new();
        for h in file.hosts {
            let line = line_of(&format!("\"{}\"", h.name));
            if !valid_name(&h.name) {
                problems.push(error(
                    line,
                    format!(
                        "`{}` is not a valid host name (letters, digits, `.`, `-`, `_`)",
                        h.name
                    ),
                ));
                continue;
            }
            if let Some(bad) = h.tags.iter().find(|t| !valid_name(t)) {
                problems.push(error(
                    line,
                    format!("host `{}`: `{bad}` is not a valid tag", h.name),
                ));
            }
            let mut all_groups = BTreeSet::new();
            for g in &h.groups {
                ancestors(g, &parents, &mut all_groups);
            }
            let mut vars = file.defaults.vars.clone();
            for g in &all_groups {
                if let Some(v) = group_vars.get(g) {
                    vars.extend(v.clone());
                }
            }
            vars.extend(h.vars);
            let host = Host {
                address: h.address.unwrap_or_else(|| h.name.clone()),
                port: h.port.or(file.defaults.port).unwrap_or(22),
                user: h.user.or_else(|| file.defaults.user.clone()),
                tags: h.tags,
                groups: all_groups,
                vars,
                name: h.name,
            };
            if hosts.insert(host.name.clone(), host).is_some() {
                problems.push(error(line, "this host is listed twice".to_owned()));
            }
        }
        if problems.is_empty() {
            Ok(Self {
                hosts,
                groups,
                defaults: file.defaults,
                group_vars,
                parents,
                sources,
            })
        } else {
            Err(problems)
        }
    }

    /// The dynamic sources `[[sources]]` declares, in file order.
    pub fn sources(&self) -> &[InventorySource] {
        &self.sources
    }

    /// This inventory with the hosts sources found merged in (by source
    /// name; hosts of a source this inventory does not declare are
    /// ignored). A host declared in `[[hosts]]` is kept as declared; see
    /// the module's documentation for how the rest is mapped.
    pub fn with_discovered(&self, discovered: &BTreeMap<String, Vec<DiscoveredHost>>) -> Inventory {
        let mut found: BTreeMap<&str, DiscoveredHost> = BTreeMap::new();
        for source in &self.sources {
            for d in discovered.get(&source.name).into_iter().flatten() {
                if self.hosts.contains_key(&d.name) {
                    continue;
                }
                let entry = found
                    .entry(d.name.as_str())
                    .or_insert_with(|| DiscoveredHost {
                        name: d.name.clone(),
                        groups: BTreeSet::new(),
                        tags: BTreeSet::new(),
                        vars: BTreeMap::new(),
                    });
                merge_into(entry, d);
                entry.groups.extend(source.groups.iter().cloned());
            }
        }
        let mut merged = self.clone();
        for (name, d) in found {
            let mut all_groups = BTreeSet::new();
            for g in &d.groups {
                ancestors(g, &self.parents, &mut all_groups);
            }
            let mut vars = self.defaults.vars.clone();
            for g in &all_groups {
                if let Some(v) = self.group_vars.get(g) {
                    vars.extend(v.clone());
                }
            }
            vars.extend(d.vars);
            merged.groups.extend(all_groups.iter().cloned());
            let host = Host {
                name: name.to_owned(),
                address: name.to_owned(),
                port: self.defaults.port.unwrap_or(22),
                user: self.defaults.user.clone(),
                tags: d.tags,
                groups: all_groups,
                vars,
            };
            merged.hosts.insert(host.name.clone(), host);
        }
        merged
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.get(name)
    }

    /// Every host, by name.
    pub fn hosts(&self) -> impl Iterator<Item = &Host> {
        self.hosts.values()
    }

    /// The hosts a selector names, by name; or why it names none.
    ///
    /// A selector is terms separated by `,`: `web-1` (a host), `group:prod`,
    /// `tag:db`, or a glob over host names (`web-*`, `db-?`). Plain terms
    /// add hosts; a term starting with `&` keeps only hosts it also names;
    /// one starting with `!` removes the hosts it names:
    /// `group:prod,&tag:db,!db-3`.
    pub fn select(&self, selector: &str) -> Result<Vec<&Host>, String> {
        let mut chosen: BTreeSet<&str> = BTreeSet::new();
        let mut keep: Vec<BTreeSet<&str>> = Vec::new();
        let mut drop: BTreeSet<&str> = BTreeSet::new();
        let mut any_plain = false;
        for raw in selector.split(',').map(str::trim) {
            if raw.is_empty() {
                return Err(format!("empty term in the selector `{selector}`"));
            }
            let (mode, term) = match raw.as_bytes()[0] {
                b'&' => ('&', raw[1..].trim_start()),
                b'!' => ('!', raw[1..].trim_start()),
                _ => ('+', raw),
            };
            let names = self.term(term)?;
            match mode {
                '&' => keep.push(names),
                '!' => drop.extend(names),
                _ => {
                    any_plain = true;
                    chosen.extend(names);
                }
            }
        }
        if !any_plain {
            return Err(format!(
                "the selector `{selector}` only narrows (`&`, `!`): start with hosts, a group, a tag or a glob"
            ));
        }
        let chosen: Vec<&Host> = chosen
            .into_iter()
            .filter(|n| keep.iter().all(|k| k.contains(n)) && !drop.contains(n))
            .filter_map(|n| self.hosts.get(n))
            .collect();
        if chosen.is_empty() {
            return Err(format!("the selector `{selector}` leaves no host"));
        }
        Ok(chosen)
    }

    /// The host names one term names; a term that names none is an error.
    fn term(&self, term: &str) -> Result<BTreeSet<&str>, String> {
        let names: BTreeSet<&str> = if let Some(group) = term.strip_prefix("group:") {
            if !self.groups.contains(group) {
                let known: Vec<&str> = self.groups.iter().map(String::as_str).collect();
                return Err(unknown("group", group, &known));
            }
            self.hosts
                .values()
                .filter(|h| h.groups.contains(group))
                .map(|h| h.name.as_str())
                .collect()
        } else if let Some(tag) = term.strip_prefix("tag:") {
            self.hosts
                .values()
                .filter(|h| h.tags.contains(tag))
                .map(|h| h.name.as_str())
                .collect()
        } else if term.contains(['*', '?', '[']) {
            let pattern = glob::Pattern::new(term)
                .map_err(|e| format!("`{term}` is not a valid pattern: {e}"))?;
            self.hosts
                .keys()
                .filter(|n| pattern.matches(n))
                .map(String::as_str)
                .collect()
        } else {
            match self.hosts.get_key_value(term) {
                Some((name, _)) => BTreeSet::from([name.as_str()]),
                None => {
                    let known: Vec<&str> = self.hosts.keys().map(String::as_str).collect();
                    return Err(unknown("host", term, &known));
                }
            }
        };
        if names.is_empty() {
            return Err(format!("no host matches `{term}`"));
        }
        Ok(names)
    }
}

fn unknown(kind: &str, name: &str, known: &[&str]) -> String {
    match crate::params::closest(name, known) {
        Some(near) => format!("unknown {kind} `{name}` (did you mean `{near}`?)"),
        None => format!("unknown {kind} `{name}`"),
    }
}

fn error(line: Option<usize>, message: String) -> CatalogError {
    CatalogError {
        file: FILE.into(),
        line,
        key: None,
        message,
    }
}

/// For each group, the groups that list it among their children.
fn parents_of(groups: &BTreeMap<String, GroupEntry>) -> BTreeMap<String, Vec<String>> {
    let mut parents: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, g) in groups {
        for child in &g.children {
            parents.entry(child.clone()).or_default().push(name.clone());
        }
    }
    parents
}

/// `group` and every group above it (cycles are harmless: each is visited once).
fn ancestors(group: &str, parents: &BTreeMap<String, Vec<String>>, out: &mut BTreeSet<String>) {
    if !out.insert(group.to_owned()) {
        return;
    }
    for parent in parents.get(group).into_iter().flatten() {
        ancestors(parent, parents, out);
    }
}

/// Checks and converts `[[sources]]`, recording each problem with its line.
fn read_sources(
    text: &str,
    entries: Vec<SourceEntry>,
    problems: &mut Vec<CatalogError>,
) -> Vec<InventorySource> {
    let mut sources: Vec<InventorySource> = Vec::new();
    for entry in entries {
        let at = |s: &std::ops::Range<usize>| Some(crate::catalog::line_at(text, s.start));
        let name_line = at(&entry.name.span());
        let name = entry.name.into_inner();
        let before = problems.len();
        if !valid_name(&name) {
            problems.push(error(
                name_line,
                format!("`{name}` is not a valid source name (letters, digits, `.`, `-`, `_`)"),
            ));
        } else if sources.iter().any(|s| s.name == name) {
            problems.push(error(
                name_line,
                format!("source `{name}` is declared twice"),
            ));
        }
        let refresh = match &entry.refresh {
            None => DEFAULT_REFRESH,
            Some(r) => match crate::params::parse_duration(r.get_ref()) {
                Ok(d) if (MIN_REFRESH..=MAX_REFRESH).contains(&d) => d,
                Ok(_) => {
                    problems.push(error(
                        at(&r.span()),
                        format!("source `{name}`: refresh must be between 1s and 24h"),
                    ));
                    DEFAULT_REFRESH
                }
                Err(e) => {
                    problems.push(error(
                        at(&r.span()),
                        format!("source `{name}`: refresh: {e}"),
                    ));
                    DEFAULT_REFRESH
                }
            },
        };
        let groups = match entry.groups {
            None => BTreeSet::new(),
            Some(g) => {
                let line = at(&g.span());
                let groups = g.into_inner();
                if let Some(bad) = groups.iter().find(|g| !valid_name(g)) {
                    problems.push(error(
                        line,
                        format!("source `{name}`: `{bad}` is not a valid group name (letters, digits, `.`, `-`, `_`)"),
                    ));
                }
                groups
            }
        };
        let kind = match (entry.file_sd, entry.http) {
            (Some(_), Some(http)) => {
                problems.push(error(
                    at(&http.span()),
                    format!("source `{name}`: give either `file_sd` or `http`, not both"),
                ));
                None
            }
            (None, None) => {
                problems.push(error(
                    name_line,
                    format!("source `{name}`: say where hosts come from, with `file_sd = \"targets/*.json\"` or `http = \"https://…\"`"),
                ));
                None
            }
            (Some(pattern), None) => {
                if let Some(bearer) = &entry.bearer {
                    problems.push(error(
                        at(&bearer.span()),
                        format!("source `{name}`: `bearer` is for `http` sources only"),
                    ));
                }
                let line = at(&pattern.span());
                let pattern = pattern.into_inner();
                match glob::Pattern::new(&pattern) {
                    Ok(_) if !pattern.trim().is_empty() => Some(SourceKind::FileSd { pattern }),
                    Ok(_) => {
                        problems.push(error(line, format!("source `{name}`: file_sd is empty")));
                        None
                    }
                    Err(e) => {
                        problems.push(error(
                            line,
                            format!("source `{name}`: `{pattern}` is not a valid pattern: {e}"),
                        ));
                        None
                    }
                }
            }
            (None, Some(url)) => {
                let line = at(&url.span());
                let url = url.into_inner();
                if let Err(e) = crate::http_request::check_literal_url(&url) {
                    problems.push(error(line, format!("source `{name}`: http: {e}")));
                }
                let bearer = entry.bearer.and_then(|b| {
                    let line = at(&b.span());
                    SecretRef::parse(b.get_ref())
                        .map_err(|e| {
                            problems.push(error(line, format!("source `{name}`: bearer: {e}")))
                        })
                        .ok()
                });
                Some(SourceKind::Http { url, bearer })
            }
        };
        if let (Some(kind), true) = (kind, problems.len() == before) {
            sources.push(InventorySource {
                name,
                kind,
                refresh,
                groups,
            });
        }
    }
    sources
}

/// Adds what one more sighting of a host says: groups and tags join, and
/// variables it is the first to give.
fn merge_into(into: &mut DiscoveredHost, more: &DiscoveredHost) {
    into.groups.extend(more.groups.iter().cloned());
    into.tags.extend(more.tags.iter().cloned());
    for (k, v) in &more.vars {
        into.vars.entry(k.clone()).or_insert_with(|| v.clone());
    }
}

/// One entry of a `file_sd` document.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetGroup {
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Most hosts one source may return.
pub const MAX_DISCOVERED_HOSTS: usize = 100_000;

/// Parses a Prometheus `file_sd` JSON document into hosts (in name order),
/// mapped as the module's documentation says; all or nothing: the first
/// problem is the error.
pub fn parse_file_sd(bytes: &[u8]) -> Result<Vec<DiscoveredHost>, String> {
    let groups: Vec<TargetGroup> = serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "not a file_sd document (a list of {{\"targets\": [...], \"labels\": {{...}}}}): {e}"
        )
    })?;
    let mut hosts: BTreeMap<String, DiscoveredHost> = BTreeMap::new();
    for (i, group) in groups.iter().enumerate() {
        let at = |message: String| format!("entry {}: {message}", i + 1);
        let mut joins = BTreeSet::new();
        let mut tags = BTreeSet::new();
        let mut vars = BTreeMap::new();
        for (label, value) in &group.labels {
            if label.starts_with("__") {
                continue;
            }
            if !valid_label(label) {
                return Err(at(format!("`{label}` is not a valid label name")));
            }
            match label.as_str() {
                "group" | "groups" | "tags" => {
                    for item in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                        if !valid_name(item) {
                            return Err(at(format!(
                                "label `{label}`: `{item}` is not a valid name (letters, digits, `.`, `-`, `_`)"
                            )));
                        }
                        if label == "tags" {
                            tags.insert(item.to_owned());
                        } else {
                            joins.insert(item.to_owned());
                        }
                    }
                }
                _ => {
                    vars.insert(label.clone(), value.clone());
                }
            }
        }
        for target in &group.targets {
            let (name, port) = split_target(target).map_err(&at)?;
            let mut host_vars = vars.clone();
            if let Some(port) = port {
                host_vars.insert("target_port".to_owned(), port.to_string());
            }
            let found = DiscoveredHost {
                name: name.clone(),
                groups: joins.clone(),
                tags: tags.clone(),
                vars: host_vars,
            };
            match hosts.get_mut(&name) {
                Some(known) => merge_into(known, &found),
                None => {
                    if hosts.len() >= MAX_DISCOVERED_HOSTS {
                        return Err(format!("more than {MAX_DISCOVERED_HOSTS} hosts"));
                    }
                    hosts.insert(name, found);
                }
            }
        }
    }
    Ok(hosts.into_values().collect())
}

/// A target's host name and port: `host`, `host:port`, `[v6]`, `[v6]:port`
/// or a bare IPv6 address.
fn split_target(target: &str) -> Result<(String, Option<u16>), String> {
    let bad = || format!("target `{target}` is not `host` or `host:port`");
    let (host, port) = if let Some(rest) = target.strip_prefix('[') {
        let (addr, after) = rest.split_once(']').ok_or_else(bad)?;
        match after {
            "" => (addr, None),
            p => (addr, Some(p.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else if target.parse::<std::net::Ipv6Addr>().is_ok() {
        (target, None)
    } else {
        match target.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (target, None),
        }
    };
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| format!("target `{target}`: `{p}` is not a port"))
        })
        .transpose()?;
    let ipv6 = host.parse::<std::net::Ipv6Addr>().is_ok();
    if target.starts_with('[') && !ipv6 {
        return Err(format!(
            "target `{target}`: `{host}` is not an IPv6 address"
        ));
    }
    if !ipv6 && !valid_name(host) {
        return Err(format!(
            "target `{target}`: `{host}` is not a valid host name (letters, digits, `.`, `-`, `_`)"
        ));
    }
    Ok((host.to_owned(), port))
}

/// A Prometheus label name.
fn valid_label(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests;
