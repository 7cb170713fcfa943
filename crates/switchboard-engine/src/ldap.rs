//! Principals and groups from an LDAP directory (OpenLDAP, Active
//! Directory): who a user is, whether it is a service account, and which
//! groups it belongs to, nested groups followed (group names, not DNs); and
//! every user at once, for "who can …" listings. Answers are cached for
//! `cache_ttl`, "no such user" included; failures never are.
//!
//! Failure mode: when the directory is unreachable, does not answer within
//! `timeout` or refuses the bind, [`LdapDirectory::user`] and
//! [`LdapDirectory::all_users`] return an error, never an empty answer, and
//! the caller must DENY the request (never allow it, never fall back to "no
//! groups"). Only `Ok(None)` means the directory said there is no such user.
//!
//! Each operation opens its own connection (ldap://, ldaps:// or ldapi://),
//! binds with the configured account (or anonymously), searches and
//! unbinds. The bind password is a secret reference, read at every bind and
//! never printed.
//!
//! It deliberately does not authenticate users (no bind as the user, no
//! password check: sign-in is the doors' business), never writes to the
//! directory, does not follow referrals, does not do StartTLS (use
//! ldaps://), and does not do Active Directory's ranged retrieval of large
//! `member` lists (with Active Directory, use `membership = "member_of"`).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::time::{Duration, Instant};

use ldap3::adapters::PagedResults;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry, ldap_escape};
use serde::Deserialize;
use switchboard_core::Principal;
use switchboard_core::directory::{PrincipalEntry, PrincipalKind};
use switchboard_core::secret::{SecretError, SecretRef};

/// Entries asked for per page of a search (Active Directory answers at most
/// 1000 without paging).
const PAGE_SIZE: i32 = 500;
/// Member DNs per `(|(member=…)…)` filter when walking up nested groups.
const MEMBERS_PER_FILTER: usize = 50;
/// Cached answers kept before expired ones are swept out.
const CACHE_SWEEP_AT: usize = 10_000;
/// The attributes of a group that list its members.
const MEMBER_ATTRIBUTES: [&str; 2] = ["member", "uniqueMember"];
/// The attribute listing the groups an entry is in (Active Directory, or the
/// OpenLDAP `memberof` overlay).
const MEMBER_OF: &str = "memberOf";
/// Asks a search for no attributes at all (RFC 4511 §4.5.1.8).
const NO_ATTRIBUTES: &str = "1.1";
/// LDAP result code `noSuchObject`.
const NO_SUCH_OBJECT: u32 = 32;

/// How a user's groups are found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Membership {
    /// Search `group_base` for groups whose `member` (or `uniqueMember`) is
    /// the user's DN, then for groups that have those groups as members, and
    /// so on (nested groups).
    #[default]
    Member,
    /// Read the user's `memberOf` attribute (Active Directory, or OpenLDAP
    /// with the `memberof` overlay), then each group's own `memberOf`
    /// (nested groups).
    MemberOf,
}

/// Where the directory is and how users and groups are found in it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    /// `ldap://host:port`, `ldaps://host:port` or `ldapi://`.
    pub url: String,
    /// The DN to bind as; `None` binds anonymously.
    pub bind_dn: Option<String>,
    /// Its password, as a secret reference (`env:NAME` or `file:PATH`).
    pub bind_password: Option<SecretRef>,
    /// Where users live, e.g. `ou=people,dc=example,dc=org`.
    pub user_base: String,
    /// Finds one user; `{name}` is replaced by the principal's name, escaped
    /// as a filter value (RFC 4515). Listing every user replaces it by `*`.
    #[serde(default = "default_user_filter")]
    pub user_filter: String,
    /// The attribute holding the principal's name.
    #[serde(default = "default_name_attribute")]
    pub name_attribute: String,
    #[serde(default = "default_display_name_attribute")]
    pub display_name_attribute: String,
    /// Where groups live, e.g. `ou=groups,dc=example,dc=org`. With
    /// `membership = "member"` no groups are found without it; with
    /// `member_of` it restricts which groups count (none: all of them).
    pub group_base: Option<String>,
    /// What a group is.
    #[serde(default = "default_group_filter")]
    pub group_filter: String,
    /// The attribute holding a group's name.
    #[serde(default = "default_group_name_attribute")]
    pub group_name_attribute: String,
    #[serde(default)]
    pub membership: Membership,
    /// How long answers are kept (`0s`: not at all).
    #[serde(
        default = "default_cache_ttl",
        deserialize_with = "human_duration::deserialize"
    )]
    pub cache_ttl: Duration,
    /// How long each step (connecting, binding, each search) may take.
    #[serde(
        default = "default_timeout",
        deserialize_with = "human_duration::deserialize"
    )]
    pub timeout: Duration,
    /// Users matching this filter are service accounts.
    #[serde(default)]
    pub service_account_filter: Option<String>,
}

fn default_user_filter() -> String {
    "(&(objectClass=inetOrgPerson)(uid={name}))".to_owned()
}

fn default_name_attribute() -> String {
    "uid".to_owned()
}

fn default_display_name_attribute() -> String {
    "cn".to_owned()
}

fn default_group_filter() -> String {
    "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))".to_owned()
}

fn default_group_name_attribute() -> String {
    "cn".to_owned()
}

fn default_cache_ttl() -> Duration {
    Duration::from_secs(300)
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

/// Durations in the configuration are humantime text (`"5s"`, `"2m"`).
mod human_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map_err(|e| serde::de::Error::custom(format!("`{text}`: {e}")))
    }
}

impl LdapConfig {
    /// Checks what can be checked without the directory: the URL's scheme,
    /// the bind settings and that every filter parses.
    pub fn validate(&self) -> Result<(), LdapError> {
        let fail = |reason: String| {
            Err(LdapError::Config {
                url: self.url.clone(),
                reason,
            })
        };
        if !["ldap://", "ldaps://", "ldapi://"]
            .iter()
            .any(|scheme| self.url.starts_with(scheme))
        {
            return fail("the URL must start with ldap://, ldaps:// or ldapi://".to_owned());
        }
        if let Err(reason) = self.bind_settings() {
            return fail(reason);
        }
        if !self.user_filter.contains("{name}") {
            return fail("`user_filter` must contain `{name}`".to_owned());
        }
        let filters = [
            ("user_filter", self.user_filter_for("x")),
            ("group_filter", parenthesized(&self.group_filter)),
        ]
        .into_iter()
        .chain(
            self.service_account_filter
                .as_deref()
                .map(|f| ("service_account_filter", parenthesized(f))),
        );
        for (key, filter) in filters {
            if ldap3::parse_filter(&filter).is_err() {
                return fail(format!("`{key}` is not a valid LDAP filter: {filter}"));
            }
        }
        Ok(())
    }

    /// The bind DN and password reference, both or neither.
    fn bind_settings(&self) -> Result<Option<(&str, &SecretRef)>, String> {
        match (&self.bind_dn, &self.bind_password) {
            (Some(dn), Some(password)) => Ok(Some((dn, password))),
            (None, None) => Ok(None),
            (Some(_), None) => Err("`bind_dn` is set without `bind_password`".to_owned()),
            (None, Some(_)) => Err("`bind_password` is set without `bind_dn`".to_owned()),
        }
    }

    /// The filter that finds the user `name`, escaped so that no name can
    /// widen the search.
    fn user_filter_for(&self, name: &str) -> String {
        parenthesized(&self.user_filter.replace("{name}", &ldap_escape(name)))
    }

    /// The filter that finds every user: `{name}` becomes `*`, so
    /// `(uid={name})` asks for any entry with a `uid`.
    fn any_user_filter(&self) -> String {
        parenthesized(&self.user_filter.replace("{name}", "*"))
    }
}

/// Why the directory gave no answer. Messages name the directory and the
/// cause, never the password.
#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    #[error("LDAP directory {url}: {reason}")]
    Config { url: String, reason: String },
    #[error("LDAP directory {url}: cannot read the bind password: {source}")]
    Password { url: String, source: SecretError },
    #[error("LDAP directory {url} is unreachable: {source}")]
    Connect {
        url: String,
        source: Box<ldap3::LdapError>,
    },
    #[error("LDAP directory {url} did not complete the {step} within {}", humantime::format_duration(*.timeout))]
    Timeout {
        url: String,
        step: &'static str,
        timeout: Duration,
    },
    #[error("LDAP directory {url} refused the bind as `{bind_dn}`: {source}")]
    Bind {
        url: String,
        bind_dn: String,
        source: Box<ldap3::LdapError>,
    },
    #[error("LDAP directory {url}: search under `{base}` failed: {source}")]
    Search {
        url: String,
        base: String,
        source: Box<ldap3::LdapError>,
    },
    #[error("LDAP directory {url}: {count} entries match user `{name}`; refusing to pick one")]
    Ambiguous {
        url: String,
        name: Principal,
        count: usize,
    },
}

struct Cached<T> {
    at: Instant,
    value: T,
}

/// Looks principals up in an LDAP directory, with a cache.
pub struct LdapDirectory {
    config: LdapConfig,
    users: tokio::sync::Mutex<HashMap<Principal, Cached<Option<PrincipalEntry>>>>,
    everyone: tokio::sync::Mutex<Option<Cached<Vec<PrincipalEntry>>>>,
}

impl fmt::Debug for LdapDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LdapDirectory")
            .field("url", &self.config.url)
            .finish_non_exhaustive()
    }
}

impl LdapDirectory {
    pub fn new(config: LdapConfig) -> Self {
        Self {
            config,
            users: tokio::sync::Mutex::new(HashMap::new()),
            everyone: tokio::sync::Mutex::new(None),
        }
    }

    pub fn config(&self) -> &LdapConfig {
        &self.config
    }

    /// One user and its groups (nested groups expanded, group names not
    /// DNs); `Ok(None)` if there is no such user. Answers are cached for
    /// `cache_ttl`, negative ones too; errors are not cached, and on an
    /// error the caller must deny.
    ///
    /// The entry's name is its `name_attribute` as the directory spells it
    /// (LDAP usually matches names regardless of case).
    pub async fn user(&self, name: &Principal) -> Result<Option<PrincipalEntry>, LdapError> {
        let ttl = self.config.cache_ttl;
        if let Some(hit) = self.users.lock().await.get(name)
            && hit.at.elapsed() < ttl
        {
            return Ok(hit.value.clone());
        }
        let at = Instant::now();
        let mut session = Session::open(&self.config).await?;
        let found = session.user(name).await;
        session.close().await;
        let found = found?;
        if !ttl.is_zero() {
            let mut users = self.users.lock().await;
            if users.len() >= CACHE_SWEEP_AT {
                users.retain(|_, c| c.at.elapsed() < ttl);
                if users.len() >= CACHE_SWEEP_AT {
                    users.clear();
                }
            }
            users.insert(
                name.clone(),
                Cached {
                    at,
                    value: found.clone(),
                },
            );
        }
        Ok(found)
    }

    /// Every user under `user_base` with its groups, sorted by name, for
    /// "who can …" listings. Cached for `cache_ttl` as one snapshot.
    pub async fn all_users(&self) -> Result<Vec<PrincipalEntry>, LdapError> {
        let ttl = self.config.cache_ttl;
        if let Some(hit) = self.everyone.lock().await.as_ref()
            && hit.at.elapsed() < ttl
        {
            return Ok(hit.value.clone());
        }
        let at = Instant::now();
        let mut session = Session::open(&self.config).await?;
        let found = session.all_users().await;
        session.close().await;
        let found = found?;
        if !ttl.is_zero() {
            *self.everyone.lock().await = Some(Cached {
                at,
                value: found.clone(),
            });
        }
        Ok(found)
    }
}

/// One bound connection to the directory.
struct Session<'c> {
    config: &'c LdapConfig,
    ldap: Ldap,
}

impl<'c> Session<'c> {
    async fn open(config: &'c LdapConfig) -> Result<Self, LdapError> {
        let url = || config.url.clone();
        let bind = config
            .bind_settings()
            .map_err(|reason| LdapError::Config { url: url(), reason })?;
        // The secret is read before connecting: no point in a connection
        // that cannot bind.
        let bind = bind
            .map(|(dn, reference)| {
                reference
                    .resolve()
                    .map(|password| (dn, password))
                    .map_err(|source| LdapError::Password { url: url(), source })
            })
            .transpose()?;
        let settings = LdapConnSettings::new().set_conn_timeout(config.timeout);
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &config.url)
            .await
            .map_err(|source| match source {
                ldap3::LdapError::Timeout { .. } => LdapError::Timeout {
                    url: url(),
                    step: "connection",
                    timeout: config.timeout,
                },
                source => LdapError::Connect {
                    url: url(),
                    source: Box::new(source),
                },
            })?;
        ldap3::drive!(conn);
        if let Some((dn, password)) = bind {
            let bound =
                tokio::time::timeout(config.timeout, ldap.simple_bind(dn, password.expose()))
                    .await
                    .map_err(|_| LdapError::Timeout {
                        url: url(),
                        step: "bind",
                        timeout: config.timeout,
                    })?
                    .and_then(ldap3::LdapResult::success);
            if let Err(source) = bound {
                let _ = tokio::time::timeout(config.timeout, ldap.unbind()).await;
                return Err(match source {
                    // The directory answered, and said no.
                    ldap3::LdapError::LdapResult { .. } => LdapError::Bind {
                        url: url(),
                        bind_dn: dn.to_owned(),
                        source: Box::new(source),
                    },
                    source => LdapError::Connect {
                        url: url(),
                        source: Box::new(source),
                    },
                });
            }
        }
        Ok(Self { config, ldap })
    }

    async fn close(mut self) {
        let _ = tokio::time::timeout(self.config.timeout, self.ldap.unbind()).await;
    }

    /// Searches, a page at a time. With `missing_ok`, a base that does not
    /// exist gives no entries rather than an error.
    async fn search(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attributes: &[&str],
        missing_ok: bool,
    ) -> Result<Vec<SearchEntry>, LdapError> {
        let attributes: Vec<String> = attributes.iter().map(|a| (*a).to_owned()).collect();
        let ldap = &mut self.ldap;
        let run = async move {
            let mut stream = ldap
                .streaming_search_with(
                    PagedResults::new(PAGE_SIZE),
                    base,
                    scope,
                    filter,
                    attributes,
                )
                .await?;
            let mut entries = Vec::new();
            while let Some(entry) = stream.next().await? {
                if !entry.is_ref() && !entry.is_intermediate() {
                    entries.push(SearchEntry::construct(entry));
                }
            }
            let result = stream.finish().await;
            if missing_ok && result.rc == NO_SUCH_OBJECT {
                return Ok(Vec::new());
            }
            result.success()?;
            Ok(entries)
        };
        match tokio::time::timeout(self.config.timeout, run).await {
            Err(_) => Err(LdapError::Timeout {
                url: self.config.url.clone(),
                step: "search",
                timeout: self.config.timeout,
            }),
            Ok(Err(ldap3::LdapError::Timeout { .. })) => Err(LdapError::Timeout {
                url: self.config.url.clone(),
                step: "search",
                timeout: self.config.timeout,
            }),
            Ok(Err(source)) => Err(LdapError::Search {
                url: self.config.url.clone(),
                base: base.to_owned(),
                source: Box::new(source),
            }),
            Ok(Ok(entries)) => Ok(entries),
        }
    }

    fn user_attributes(&self) -> Vec<&'c str> {
        let c = self.config;
        let mut attributes = vec![c.name_attribute.as_str(), c.display_name_attribute.as_str()];
        if c.membership == Membership::MemberOf {
            attributes.push(MEMBER_OF);
        }
        attributes
    }

    async fn user(&mut self, name: &Principal) -> Result<Option<PrincipalEntry>, LdapError> {
        let c = self.config;
        let filter = c.user_filter_for(name.as_str());
        let attributes = self.user_attributes();
        let mut found = self
            .search(&c.user_base, Scope::Subtree, &filter, &attributes, false)
            .await?;
        if found.len() > 1 {
            return Err(LdapError::Ambiguous {
                url: c.url.clone(),
                name: name.clone(),
                count: found.len(),
            });
        }
        let Some(entry) = found.pop() else {
            return Ok(None);
        };
        let Some(principal) = principal_of(c, &entry) else {
            return Ok(None);
        };
        let groups = match c.membership {
            Membership::Member => self.groups_with_member(&entry.dn).await?,
            Membership::MemberOf => {
                let mut graph = GroupGraph::default();
                let direct = values(&entry, MEMBER_OF).cloned().collect::<Vec<_>>();
                graph.set_parents(&entry.dn, &direct);
                self.read_groups(&mut graph, direct).await?;
                graph.expand(&entry.dn)
            }
        };
        let kind = match &c.service_account_filter {
            Some(f) => {
                let matched = self
                    .search(
                        &entry.dn,
                        Scope::Base,
                        &parenthesized(f),
                        &[NO_ATTRIBUTES],
                        true,
                    )
                    .await?;
                if matched.is_empty() {
                    PrincipalKind::User
                } else {
                    PrincipalKind::ServiceAccount
                }
            }
            None => PrincipalKind::User,
        };
        Ok(Some(PrincipalEntry {
            name: principal,
            kind,
            display_name: first(&entry, &c.display_name_attribute).map(str::to_owned),
            groups,
        }))
    }

    /// The names of the groups `dn` is a member of, directly or through
    /// other groups, found by searching `member` values level by level.
    async fn groups_with_member(&mut self, dn: &str) -> Result<BTreeSet<String>, LdapError> {
        let c = self.config;
        let Some(base) = &c.group_base else {
            return Ok(BTreeSet::new());
        };
        let mut names = BTreeSet::new();
        let mut seen = HashSet::from([normalize_dn(dn)]);
        let mut level = vec![dn.to_owned()];
        while !level.is_empty() {
            let mut next = Vec::new();
            for members in level.chunks(MEMBERS_PER_FILTER) {
                let filter = and(&c.group_filter, &any_member_filter(members));
                let groups = self
                    .search(
                        base,
                        Scope::Subtree,
                        &filter,
                        &[c.group_name_attribute.as_str()],
                        false,
                    )
                    .await?;
                for group in groups {
                    if seen.insert(normalize_dn(&group.dn)) {
                        names.extend(group_name(c, &group));
                        next.push(group.dn);
                    }
                }
            }
            level = next;
        }
        Ok(names)
    }

    /// Reads the groups `dns` (and the groups they are in, and so on) that
    /// the graph does not know yet, one entry at a time.
    async fn read_groups(
        &mut self,
        graph: &mut GroupGraph,
        mut dns: Vec<String>,
    ) -> Result<(), LdapError> {
        let c = self.config;
        let base = c.group_base.as_deref().map(normalize_dn);
        let filter = parenthesized(&c.group_filter);
        while let Some(dn) = dns.pop() {
            let key = normalize_dn(&dn);
            if graph.visited.contains(&key) {
                continue;
            }
            graph.visited.insert(key.clone());
            if base.as_deref().is_some_and(|base| !is_under(&key, base)) {
                continue;
            }
            let mut found = self
                .search(
                    &dn,
                    Scope::Base,
                    &filter,
                    &[c.group_name_attribute.as_str(), MEMBER_OF],
                    true,
                )
                .await?;
            let Some(group) = found.pop() else {
                continue;
            };
            let parents = values(&group, MEMBER_OF).cloned().collect::<Vec<_>>();
            graph.set_parents(&dn, &parents);
            if let Some(name) = group_name(c, &group) {
                graph.names.insert(key, name);
            }
            dns.extend(parents);
        }
        Ok(())
    }

    async fn all_users(&mut self) -> Result<Vec<PrincipalEntry>, LdapError> {
        let c = self.config;
        let any_user = c.any_user_filter();
        let attributes = self.user_attributes();
        let users = self
            .search(&c.user_base, Scope::Subtree, &any_user, &attributes, false)
            .await?;
        let service_accounts: HashSet<String> = match &c.service_account_filter {
            Some(f) => self
                .search(
                    &c.user_base,
                    Scope::Subtree,
                    &and(&any_user, f),
                    &[NO_ATTRIBUTES],
                    false,
                )
                .await?
                .iter()
                .map(|e| normalize_dn(&e.dn))
                .collect(),
            None => HashSet::new(),
        };
        let mut graph = GroupGraph::default();
        match (c.membership, &c.group_base) {
            (Membership::Member, None) => {}
            (Membership::Member, Some(base)) => {
                let mut attributes = vec![c.group_name_attribute.as_str()];
                attributes.extend(MEMBER_ATTRIBUTES);
                let groups = self
                    .search(
                        base,
                        Scope::Subtree,
                        &parenthesized(&c.group_filter),
                        &attributes,
                        false,
                    )
                    .await?;
                for group in &groups {
                    warn_if_ranged(group);
                    let key = normalize_dn(&group.dn);
                    for member in MEMBER_ATTRIBUTES.iter().flat_map(|a| values(group, a)) {
                        graph
                            .parents
                            .entry(normalize_dn(member))
                            .or_default()
                            .push(key.clone());
                    }
                    if let Some(name) = group_name(c, group) {
                        graph.names.insert(key, name);
                    }
                }
            }
            (Membership::MemberOf, Some(base)) => {
                // Every group at once; those not found here do not count.
                let groups = self
                    .search(
                        base,
                        Scope::Subtree,
                        &parenthesized(&c.group_filter),
                        &[c.group_name_attribute.as_str(), MEMBER_OF],
                        false,
                    )
                    .await?;
                for group in &groups {
                    let parents = values(group, MEMBER_OF).cloned().collect::<Vec<_>>();
                    graph.set_parents(&group.dn, &parents);
                    if let Some(name) = group_name(c, group) {
                        graph.names.insert(normalize_dn(&group.dn), name);
                    }
                }
                for user in &users {
                    let direct = values(user, MEMBER_OF).cloned().collect::<Vec<_>>();
                    graph.set_parents(&user.dn, &direct);
                }
            }
            (Membership::MemberOf, None) => {
                let mut direct_all = Vec::new();
                for user in &users {
                    let direct = values(user, MEMBER_OF).cloned().collect::<Vec<_>>();
                    graph.set_parents(&user.dn, &direct);
                    direct_all.extend(direct);
                }
                self.read_groups(&mut graph, direct_all).await?;
            }
        }
        let mut out: Vec<PrincipalEntry> = Vec::with_capacity(users.len());
        for user in &users {
            let Some(name) = principal_of(c, user) else {
                continue;
            };
            let key = normalize_dn(&user.dn);
            out.push(PrincipalEntry {
                name,
                kind: if service_accounts.contains(&key) {
                    PrincipalKind::ServiceAccount
                } else {
                    PrincipalKind::User
                },
                display_name: first(user, &c.display_name_attribute).map(str::to_owned),
                groups: graph.expand(&user.dn),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out.dedup_by(|later, kept| {
            let twice = later.name == kept.name;
            if twice {
                tracing::warn!(name = %later.name, directory = %c.url, "two LDAP entries have the same name; the second is skipped");
            }
            twice
        });
        Ok(out)
    }
}

/// Which groups are in which, keyed by normalized DN.
#[derive(Default)]
struct GroupGraph {
    /// Group → its name.
    names: HashMap<String, String>,
    /// User or group → the groups it is directly a member of.
    parents: HashMap<String, Vec<String>>,
    /// Groups already read (or refused) by [`Session::read_groups`].
    visited: HashSet<String>,
}

impl GroupGraph {
    fn set_parents(&mut self, dn: &str, parents: &[String]) {
        self.parents.insert(
            normalize_dn(dn),
            parents.iter().map(|p| normalize_dn(p)).collect(),
        );
    }

    /// The names of every group `dn` is in, directly or through other
    /// groups. Entries that are not known groups are neither named nor
    /// followed; cycles end.
    fn expand(&self, dn: &str) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        let mut seen = HashSet::new();
        let mut todo: Vec<&String> = self
            .parents
            .get(&normalize_dn(dn))
            .into_iter()
            .flatten()
            .collect();
        while let Some(group) = todo.pop() {
            if !seen.insert(group) {
                continue;
            }
            if let Some(name) = self.names.get(group) {
                names.insert(name.clone());
                todo.extend(self.parents.get(group).into_iter().flatten());
            }
        }
        names
    }
}

/// The values of an attribute, whatever case the server spelled it in.
fn values<'e>(entry: &'e SearchEntry, attribute: &'e str) -> impl Iterator<Item = &'e String> {
    entry
        .attrs
        .iter()
        .filter(move |(k, _)| k.eq_ignore_ascii_case(attribute))
        .flat_map(|(_, v)| v.iter())
}

fn first<'e>(entry: &'e SearchEntry, attribute: &'e str) -> Option<&'e str> {
    values(entry, attribute)
        .map(String::as_str)
        .find(|v| !v.is_empty())
}

/// The principal an entry names, if its name is a valid one.
fn principal_of(config: &LdapConfig, entry: &SearchEntry) -> Option<Principal> {
    let Some(value) = first(entry, &config.name_attribute) else {
        tracing::warn!(dn = %entry.dn, attribute = %config.name_attribute, directory = %config.url, "LDAP entry has no name attribute; skipped");
        return None;
    };
    match Principal::new(value) {
        Ok(p) => Some(p),
        Err(error) => {
            tracing::warn!(dn = %entry.dn, %error, directory = %config.url, "LDAP entry's name is not a valid principal; skipped");
            None
        }
    }
}

fn group_name(config: &LdapConfig, group: &SearchEntry) -> Option<String> {
    let name = first(group, &config.group_name_attribute).map(str::to_owned);
    if name.is_none() {
        tracing::warn!(dn = %group.dn, attribute = %config.group_name_attribute, directory = %config.url, "LDAP group has no name attribute; skipped");
    }
    name
}

/// Active Directory sends `member;range=0-1499` for large groups; the rest
/// would need more requests, which are not made.
fn warn_if_ranged(group: &SearchEntry) {
    if group.attrs.keys().any(|k| {
        k.split_once(';').is_some_and(|(attr, _)| {
            MEMBER_ATTRIBUTES
                .iter()
                .any(|m| m.eq_ignore_ascii_case(attr))
        })
    }) {
        tracing::warn!(dn = %group.dn, "LDAP group's members come in ranges, which are not followed: its membership is incomplete; use `membership = \"member_of\"`");
    }
}

/// A filter wrapped in parentheses if it is not already.
fn parenthesized(filter: &str) -> String {
    let f = filter.trim();
    if f.starts_with('(') {
        f.to_owned()
    } else {
        format!("({f})")
    }
}

fn and(a: &str, b: &str) -> String {
    format!("(&{}{})", parenthesized(a), parenthesized(b))
}

/// `(|(member=dn1)(uniqueMember=dn1)(member=dn2)…)`, values escaped.
fn any_member_filter(dns: &[String]) -> String {
    let mut filter = String::from("(|");
    for dn in dns {
        let value = ldap_escape(dn.as_str());
        for attribute in MEMBER_ATTRIBUTES {
            filter.push_str(&format!("({attribute}={value})"));
        }
    }
    filter.push(')');
    filter
}

/// A DN in a form that compares equal for the usual spellings of the same
/// name: attribute types and values lowercased, spaces around `,`, `+` and
/// `=` removed. (Not full RFC 4517 matching, which needs the schema.)
fn normalize_dn(dn: &str) -> String {
    fn push_rdn_part(out: &mut String, part: &str) {
        let part = part.trim_start();
        let trimmed = part.trim_end();
        // Keep a trailing space that is escaped (`\ `).
        let part = if trimmed.ends_with('\\') && trimmed.len() < part.len() {
            &part[..=trimmed.len()]
        } else {
            trimmed
        };
        out.push_str(&part.to_lowercase());
    }
    let mut out = String::with_capacity(dn.len());
    let mut part = String::new();
    let mut escaped = false;
    for ch in dn.chars() {
        if escaped {
            escaped = false;
            part.push(ch);
        } else if ch == '\\' {
            escaped = true;
            part.push(ch);
        } else if matches!(ch, ',' | '+' | '=') {
            push_rdn_part(&mut out, &part);
            part.clear();
            out.push(ch);
        } else {
            part.push(ch);
        }
    }
    push_rdn_part(&mut out, &part);
    out
}

/// Whether normalized `dn` is `base` or below it.
fn is_under(dn: &str, base: &str) -> bool {
    dn == base
        || dn
            .strip_suffix(base)
            .is_some_and(|head| head.ends_with(','))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> LdapConfig {
        serde_json::from_value(serde_json::json!({
            "url": "ldap://127.0.0.1:389",
            "user_base": "ou=people,dc=example,dc=org",
        }))
        .unwrap()
    }

    #[test]
    fn defaults() {
        let c = config();
        assert_eq!(c.bind_dn, None);
        assert_eq!(c.bind_password, None);
        assert_eq!(c.user_filter, "(&(objectClass=inetOrgPerson)(uid={name}))");
        assert_eq!(c.name_attribute, "uid");
        assert_eq!(c.display_name_attribute, "cn");
        assert_eq!(c.group_base, None);
        assert_eq!(
            c.group_filter,
            "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))"
        );
        assert_eq!(c.group_name_attribute, "cn");
        assert_eq!(c.membership, Membership::Member);
        assert_eq!(c.cache_ttl, Duration::from_secs(300));
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert_eq!(c.service_account_filter, None);
        c.validate().unwrap();
    }

    #[test]
    fn every_key_parses() {
        let c: LdapConfig = serde_json::from_value(serde_json::json!({
            "url": "ldaps://ldap.example.org",
            "bind_dn": "cn=switchboard,ou=services,dc=example,dc=org",
            "bind_password": "env:LDAP_PASSWORD",
            "user_base": "dc=example,dc=org",
            "user_filter": "(sAMAccountName={name})",
            "name_attribute": "sAMAccountName",
            "display_name_attribute": "displayName",
            "group_base": "ou=groups,dc=example,dc=org",
            "group_filter": "objectClass=group",
            "group_name_attribute": "name",
            "membership": "member_of",
            "cache_ttl": "1m 30s",
            "timeout": "500ms",
            "service_account_filter": "(employeeType=service)",
        }))
        .unwrap();
        assert_eq!(
            c.bind_password,
            Some(SecretRef::Env("LDAP_PASSWORD".into()))
        );
        assert_eq!(c.membership, Membership::MemberOf);
        assert_eq!(c.cache_ttl, Duration::from_secs(90));
        assert_eq!(c.timeout, Duration::from_millis(500));
        c.validate().unwrap();
    }

    #[test]
    fn bad_configurations_are_refused() {
        let parse = |extra: serde_json::Value| {
            let mut v = serde_json::json!({"url": "ldap://h", "user_base": "dc=x"});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            serde_json::from_value::<LdapConfig>(v)
        };
        let inline = parse(serde_json::json!({"bind_password": "hunter2"})).unwrap_err();
        assert!(inline.to_string().contains("never the secret itself"));
        assert!(!inline.to_string().contains("hunter2"), "{inline}");
        assert!(parse(serde_json::json!({"cache_tll": "1m"})).is_err());
        assert!(parse(serde_json::json!({"timeout": "soon"})).is_err());
        assert!(parse(serde_json::json!({"membership": "memberof"})).is_err());

        let invalid = |extra| parse(extra).unwrap().validate().unwrap_err().to_string();
        assert!(invalid(serde_json::json!({"url": "http://h"})).contains("ldap://"));
        assert!(invalid(serde_json::json!({"bind_dn": "cn=a"})).contains("bind_password"));
        assert!(invalid(serde_json::json!({"bind_password": "env:X"})).contains("bind_dn"));
        assert!(invalid(serde_json::json!({"user_filter": "(uid=alice)"})).contains("{name}"));
        assert!(invalid(serde_json::json!({"group_filter": "(cn=a"})).contains("group_filter"));
        assert!(
            invalid(serde_json::json!({"service_account_filter": "(&(a=b)"}))
                .contains("service_account_filter")
        );
    }

    #[test]
    fn names_cannot_widen_the_user_filter() {
        // A valid principal (visible characters, no spaces) that would
        // match every user if it were pasted into the filter as is.
        let name = "a*)(uid=*";
        assert!(Principal::new(name).is_ok());
        let c = config();
        let filter = c.user_filter_for(name);
        assert_eq!(
            filter,
            r"(&(objectClass=inetOrgPerson)(uid=a\2a\29\28uid=\2a))"
        );
        assert!(ldap3::parse_filter(&filter).is_ok());
        assert_eq!(
            c.user_filter_for(r"back\slash"),
            r"(&(objectClass=inetOrgPerson)(uid=back\5cslash))"
        );
        assert_eq!(c.any_user_filter(), "(&(objectClass=inetOrgPerson)(uid=*))");
        assert_eq!(
            any_member_filter(&["cn=a(b),dc=x".to_owned()]),
            r"(|(member=cn=a\28b\29,dc=x)(uniqueMember=cn=a\28b\29,dc=x))"
        );
    }

    #[test]
    fn filters_compose() {
        assert_eq!(parenthesized(" objectClass=group "), "(objectClass=group)");
        assert_eq!(and("(a=1)", "b=2"), "(&(a=1)(b=2))");
    }

    #[test]
    fn dns_normalize() {
        assert_eq!(
            normalize_dn("CN=SRE, OU=Groups ,dc=Example,DC=org"),
            "cn=sre,ou=groups,dc=example,dc=org"
        );
        assert_eq!(
            normalize_dn(r"cn=Smith\, John + uid=js,dc=x"),
            r"cn=smith\, john+uid=js,dc=x"
        );
        assert_eq!(normalize_dn(r"cn=trailing\ ,dc=x"), r"cn=trailing\ ,dc=x");
        assert!(is_under("cn=a,ou=g,dc=x", "ou=g,dc=x"));
        assert!(is_under("ou=g,dc=x", "ou=g,dc=x"));
        assert!(!is_under("cn=a,ou=xg,dc=x", "ou=g,dc=x"));
    }

    #[test]
    fn nested_groups_expand_and_cycles_end() {
        let mut g = GroupGraph::default();
        g.set_parents("uid=alice,dc=x", &["cn=sre,dc=x".into()]);
        g.set_parents(
            "cn=sre,dc=x",
            &["cn=ops,dc=x".into(), "cn=gone,dc=x".into()],
        );
        g.set_parents("cn=ops,dc=x", &["cn=sre,dc=x".into()]);
        g.names.insert("cn=sre,dc=x".into(), "sre".into());
        g.names.insert("cn=ops,dc=x".into(), "ops".into());
        assert_eq!(
            g.expand("UID=alice, dc=x"),
            BTreeSet::from(["ops".to_owned(), "sre".to_owned()])
        );
        assert_eq!(g.expand("uid=bob,dc=x"), BTreeSet::new());
    }
}
