//! The inventory: the hosts actions can reach and the groups and tags they
//! are known by, from the catalog's `inventory.toml`, and target selectors
//! (`web-1`, `group:prod`, `tag:db`, `web-*`, combined with `,`, `&` and
//! `!`) resolved against it.
//!
//! Not here: dynamic sources (Prometheus `file_sd` files, HTTP) and their
//! refreshing, which need I/O on a timer and belong to the engine; and
//! connecting to hosts (the runners).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::catalog::CatalogError;

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
}

#[derive(Default, Deserialize)]
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
        let path = root.join(FILE);
        if !path.exists() {
            return Self::default();
        }
        let text = match crate::catalog::read_limited(&path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(error(None, e));
                return Self::default();
            }
        };
        match Self::parse(&text) {
            Ok(inventory) => inventory,
            Err(mut problems) => {
                errors.append(&mut problems);
                Self::default()
            }
        }
    }

    /// An inventory from the text of an `inventory.toml`.
    pub fn parse(text: &str) -> Result<Self, Vec<CatalogError>> {
        let file: InventoryFile = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            vec![error(line, e.message().to_owned())]
        })?;
        let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).map(|i| i + 1);
        let mut problems = Vec::new();
        // Groups: declared ones, and those hosts name.
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
        for g in &groups {
            if !valid_name(g) {
                problems.push(error(
                    line_of(g),
                    format!("`{g}` is not a valid group name (letters, digits, `.`, `-`, `_`)"),
                ));
            }
        }
        let parents = parents_of(&file.groups);
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
                if let Some(entry) = file.groups.get(g) {
                    vars.extend(entry.vars.clone());
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
            Ok(Self { hosts, groups })
        } else {
            Err(problems)
        }
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
fn parents_of(groups: &BTreeMap<String, GroupEntry>) -> BTreeMap<&str, Vec<&str>> {
    let mut parents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, g) in groups {
        for child in &g.children {
            parents
                .entry(child.as_str())
                .or_default()
                .push(name.as_str());
        }
    }
    parents
}

/// `group` and every group above it (cycles are harmless: each is visited once).
fn ancestors(group: &str, parents: &BTreeMap<&str, Vec<&str>>, out: &mut BTreeSet<String>) {
    if !out.insert(group.to_owned()) {
        return;
    }
    for parent in parents.get(group).into_iter().flatten() {
        ancestors(parent, parents, out);
    }
}

#[cfg(test)]
mod tests;
