//! Authorization with Cedar: the catalog's `policies/**/*.cedar`, validated
//! against Switchboard's schema ([`SCHEMA`]), and the one decision function
//! every door's request goes through ([`Policies::decide`]). A decision
//! names the policies that made it, so a denial can say why and an auditor
//! can see which rule grants what.
//!
//! It decides; it does not authenticate, look principals up in a directory,
//! or write audit records (the engine does those around each decision).
//!
//! Deny by default: with no policy that permits, the answer is no. The
//! built-in `admin` principal is permitted everything by a built-in policy
//! (`builtin:admin`), which `forbid` policies still override and which
//! listings show like any other.

mod slice;
#[cfg(test)]
mod tests;
mod who_can;

pub use who_can::{Grant, GroupGrant, WhoCan, door_origin};

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicyId,
    PolicySet, Request, RestrictedExpression, Schema, ValidationMode, Validator,
};
use miette::Diagnostic;
use serde::{Deserialize, Serialize};

use crate::catalog::{Action, ApprovalRule, CatalogError};
use crate::directory::PrincipalKind;
use crate::ids::{Origin, Principal};

/// The Cedar schema policies are written against.
pub const SCHEMA: &str = include_str!("schema.cedarschema");

/// The id of the built-in policy that lets `admin` do everything.
pub const BUILTIN_ADMIN: &str = "builtin:admin";

/// What a principal wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verb {
    View,
    Run,
    Approve,
    Cancel,
    Silence,
    Admin,
}

impl Verb {
    pub const ALL: [Self; 6] = [
        Self::View,
        Self::Run,
        Self::Approve,
        Self::Cancel,
        Self::Silence,
        Self::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::View => "view",
            Self::Run => "run",
            Self::Approve => "approve",
            Self::Cancel => "cancel",
            Self::Silence => "silence",
            Self::Admin => "admin",
        }
    }

    /// Whether the verb is about the service as a whole rather than one action.
    pub fn is_service_wide(self) -> bool {
        matches!(self, Self::Silence | Self::Admin)
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Verb {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                format!("unknown verb `{s}`: expected view, run, approve, cancel, silence or admin")
            })
    }
}

/// The front doors a request can come through, as policies see them
/// (`context.door`).
pub const DOORS: [&str; 7] = ["api", "cli", "web", "chat", "schedule", "alert", "webhook"];

/// Who is asking: a principal with every group it is in (nested ones
/// expanded by the caller).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    pub principal: Principal,
    pub kind: PrincipalKind,
    pub groups: BTreeSet<String>,
}

/// What is asked: a verb on an action (or the service), through a door,
/// perhaps against a host.
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    pub verb: Verb,
    /// The action; `None` for service-wide verbs.
    pub action: Option<&'a Action>,
    /// `api`, `cli`, `web`, `chat`, …
    pub door: &'a str,
    /// `platform:room` for chat.
    pub channel: Option<&'a str>,
    /// The targeted host, with the host groups it is in.
    pub target: Option<(&'a str, &'a [String])>,
    /// Who asked for the execution being approved or cancelled.
    pub requester: Option<&'a Principal>,
}

impl<'a> Question<'a> {
    /// A question with the door and channel read from a request's origin
    /// (`chat:slack:#ops` is door `chat`, channel `slack:#ops`).
    pub fn new(verb: Verb, action: Option<&'a Action>, origin: &'a Origin) -> Self {
        let (door, channel) = match origin.as_str().strip_prefix("chat:") {
            Some(channel) => ("chat", Some(channel)),
            None => (origin.door(), None),
        };
        Self {
            verb,
            action,
            door,
            channel,
            target: None,
            requester: None,
        }
    }

    /// What the question is about, for messages: `run host.reboot on db-1`.
    pub fn describe(&self) -> String {
        let mut s = self.verb.to_string();
        match self.action {
            Some(a) => s.push_str(&format!(" {}", a.name)),
            None => s.push_str(" switchboard"),
        }
        if let Some((host, _)) = self.target {
            s.push_str(&format!(" on {host}"));
        }
        s
    }
}

/// Whether a policy permits or forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Permit,
    Forbid,
}

/// Where a policy came from and what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyInfo {
    /// Its `@id("…")` annotation, or `file:line`.
    pub id: String,
    /// `policies/ops.cedar:12`, or `built in`.
    pub location: String,
    pub effect: Effect,
    /// Its `@description("…")` annotation, if any.
    pub description: Option<String>,
    /// What it permits needs approval first: its `@approval("group:…")`,
    /// `@approval_count("2")` and `@approval_expires("30m")` annotations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalRule>,
    /// The policy's text as written.
    pub text: String,
}

/// A policy that decided a question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyRef {
    pub id: String,
    pub location: String,
    pub effect: Effect,
}

impl fmt::Display for PolicyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.id == self.location {
            write!(f, "`{}`", self.id)
        } else {
            write!(f, "`{}` ({})", self.id, self.location)
        }
    }
}

/// The answer to one question, with the policies that gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    /// The permitting policies when allowed; the forbidding ones when denied
    /// by a `forbid`; empty when denied because nothing permits.
    pub policies: Vec<PolicyRef>,
    /// Why: one sentence fit to show the caller.
    pub reason: String,
    /// Policies that failed to evaluate (they are skipped, as Cedar does).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Allowed, but only once approved: set when every permitting policy
    /// demands approval (the first one's rule, by id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalRule>,
}

/// The catalog's policies, validated, ready to decide.
#[derive(Debug, Clone)]
pub struct Policies {
    set: PolicySet,
    /// The policies each decision evaluates, by scope.
    slices: std::sync::Arc<slice::Slices>,
    schema: Schema,
    info: BTreeMap<String, PolicyInfo>,
    types: EntityTypes,
}

#[derive(Debug, Clone)]
struct EntityTypes {
    user: EntityTypeName,
    group: EntityTypeName,
    automation: EntityTypeName,
    service: EntityTypeName,
    host: EntityTypeName,
    host_group: EntityTypeName,
    channel: EntityTypeName,
    action: EntityTypeName,
}

impl EntityTypes {
    fn new() -> Result<Self, String> {
        let t = |name: &str| {
            EntityTypeName::from_str(name).map_err(|e| format!("entity type `{name}`: {e}"))
        };
        Ok(Self {
            user: t("User")?,
            group: t("Group")?,
            automation: t("Automation")?,
            service: t("Service")?,
            host: t("Host")?,
            host_group: t("HostGroup")?,
            channel: t("Channel")?,
            action: t("Action")?,
        })
    }
}

fn uid(kind: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(kind.clone(), EntityId::new(id))
}

/// One `policies/` file's text, as read.
#[derive(Debug, Clone)]
pub struct PolicyFile {
    /// Relative to the catalog root.
    pub path: PathBuf,
    pub text: String,
}

impl Policies {
    /// Parses and validates policy files; reports every problem with file and
    /// line. With no files, only the built-in admin policy is in force.
    pub fn new(files: &[PolicyFile]) -> Result<Self, Vec<CatalogError>> {
        let internal = |message: String| {
            vec![CatalogError {
                file: PathBuf::from("policies"),
                line: None,
                key: None,
                message,
            }]
        };
        let (schema, _warnings) = Schema::from_cedarschema_str(SCHEMA)
            .map_err(|e| internal(format!("the built-in schema is invalid: {e}")))?;
        let types = EntityTypes::new().map_err(internal)?;
        let mut errors = Vec::new();
        let mut set = PolicySet::new();
        let mut info = BTreeMap::new();
        // Which file each policy id came from, to place validation errors.
        let mut source_of: HashMap<String, (PathBuf, String)> = HashMap::new();
        let builtin = format!(
            "@id(\"{BUILTIN_ADMIN}\")\npermit (principal == User::\"{}\", action, resource);",
            Principal::admin()
        );
        let mut all_files = vec![(PathBuf::from("built in"), builtin, true)];
        all_files.extend(
            files
                .iter()
                .map(|f| (f.path.clone(), f.text.clone(), false)),
        );
        for (path, text, is_builtin) in &all_files {
            let parsed = match PolicySet::from_str(text) {
                Ok(p) => p,
                Err(e) => {
                    for err in e.iter() {
                        errors.push(located(path, text, err, None));
                    }
                    continue;
                }
            };
            if parsed.templates().next().is_some() {
                errors.push(CatalogError {
                    file: path.clone(),
                    line: None,
                    key: None,
                    message: "policy templates (with `?principal` or `?resource`) are not supported; write static policies".to_owned(),
                });
            }
            // Cedar numbers the policies of one text `policy0`, `policy1`, …
            // in the order they are written.
            let mut policies: Vec<_> = parsed.policies().collect();
            policies.sort_by_key(|p| {
                p.id()
                    .to_string()
                    .trim_start_matches("policy")
                    .parse::<usize>()
                    .unwrap_or(usize::MAX)
            });
            let mut search_from = 0;
            for policy in policies {
                let written = policy.to_cedar().unwrap_or_default();
                let offset = text[search_from..]
                    .find(written.as_str())
                    .map_or(search_from, |o| o + search_from);
                search_from = offset + written.len();
                let line = crate::catalog::line_at(text, offset);
                let location = if *is_builtin {
                    "built in".to_owned()
                } else {
                    format!("{}:{line}", path.display())
                };
                let id = policy
                    .annotation("id")
                    .map_or_else(|| location.clone(), str::to_owned);
                if let Some(first) = info.get(&id) {
                    let first: &PolicyInfo = first;
                    errors.push(CatalogError {
                        file: path.clone(),
                        line: Some(line),
                        key: Some("@id".to_owned()),
                        message: format!("policy id `{id}` is already used at {}", first.location),
                    });
                    continue;
                }
                let effect = match policy.effect() {
                    cedar_policy::Effect::Permit => Effect::Permit,
                    cedar_policy::Effect::Forbid => Effect::Forbid,
                };
                let approval = match approval_of(policy, effect) {
                    Ok(rule) => rule,
                    Err(problems) => {
                        for message in problems {
                            errors.push(CatalogError {
                                file: path.clone(),
                                line: Some(line),
                                key: Some("@approval".to_owned()),
                                message,
                            });
                        }
                        None
                    }
                };
                info.insert(
                    id.clone(),
                    PolicyInfo {
                        id: id.clone(),
                        location,
                        effect,
                        description: policy.annotation("description").map(str::to_owned),
                        approval,
                        text: written,
                    },
                );
                source_of.insert(id.clone(), (path.clone(), text.clone()));
                if let Err(e) = set.add(policy.new_id(PolicyId::new(&id))) {
                    errors.push(CatalogError {
                        file: path.clone(),
                        line: Some(line),
                        key: None,
                        message: e.to_string(),
                    });
                }
            }
        }
        if errors.is_empty() {
            let result = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
            for e in result.validation_errors() {
                let id = e.policy_id().to_string();
                let (path, text) = source_of
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| (PathBuf::from("policies"), String::new()));
                errors.push(located(&path, &text, e, Some(&id)));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            slices: std::sync::Arc::new(slice::Slices::new(&set)),
            set,
            schema,
            info,
            types,
        })
    }

    /// Reads and validates `root/policies/**/*.cedar`. A catalog without a
    /// `policies` folder has only the built-in admin policy.
    pub fn load(root: &Path) -> Result<Self, Vec<CatalogError>> {
        let mut paths = Vec::new();
        let mut errors = Vec::new();
        collect_cedar(root, &root.join("policies"), &mut paths, &mut errors);
        paths.sort();
        let mut files = Vec::new();
        for rel in paths {
            match crate::catalog::read_limited(&root.join(&rel)) {
                Ok(text) => files.push(PolicyFile { path: rel, text }),
                Err(message) => errors.push(CatalogError {
                    file: rel,
                    line: None,
                    key: None,
                    message,
                }),
            }
        }
        match (Self::new(&files), errors.is_empty()) {
            (Ok(p), true) => Ok(p),
            (Ok(_), false) => Err(errors),
            (Err(mut more), _) => {
                errors.append(&mut more);
                Err(errors)
            }
        }
    }

    /// Every policy in force, the built-in one first.
    pub fn policies(&self) -> impl Iterator<Item = &PolicyInfo> {
        let builtin = self.info.get(BUILTIN_ADMIN);
        builtin
            .into_iter()
            .chain(self.info.values().filter(|p| p.id != BUILTIN_ADMIN))
    }

    /// The ids of every entity of `kind` (`Group`, `Channel`, `Host`, …)
    /// that some policy names.
    pub fn named(&self, kind: &str) -> BTreeSet<String> {
        self.set
            .policies()
            .flat_map(cedar_policy::Policy::entity_literals)
            .filter(|uid| uid.type_name().to_string() == kind)
            .map(|uid| uid.id().unescaped().to_owned())
            .collect()
    }

    pub fn policy(&self, id: &str) -> Option<&PolicyInfo> {
        self.info.get(id)
    }

    /// Answers one question. Never fails: a request Cedar cannot even form
    /// is denied, saying why.
    pub fn decide(&self, subject: &Identity, q: &Question<'_>) -> Decision {
        match self.try_decide(subject, q) {
            Ok(d) => d,
            Err(why) => Decision {
                allowed: false,
                policies: Vec::new(),
                reason: format!("denied: the request could not be evaluated ({why})"),
                errors: vec![why],
                approval: None,
            },
        }
    }

    fn try_decide(&self, subject: &Identity, q: &Question<'_>) -> Result<Decision, String> {
        let slice = self.slices.for_subject(q.verb, subject)?;
        self.try_decide_in(&slice, subject, q)
    }

    /// The decision of the policies of `set` (all of them, or the slice
    /// that could apply).
    fn try_decide_in(
        &self,
        set: &PolicySet,
        subject: &Identity,
        q: &Question<'_>,
    ) -> Result<Decision, String> {
        let t = &self.types;
        let mut entities = Vec::new();
        let principal = uid(&t.user, subject.principal.as_str());
        let kind = match subject.kind {
            PrincipalKind::User => "user",
            PrincipalKind::ServiceAccount => "service_account",
        };
        let groups: HashSet<EntityUid> = subject.groups.iter().map(|g| uid(&t.group, g)).collect();
        for g in &groups {
            entities.push(Entity::new_no_attrs(g.clone(), HashSet::new()));
        }
        entities.push(
            Entity::new(
                principal.clone(),
                HashMap::from([(
                    "kind".to_owned(),
                    RestrictedExpression::new_string(kind.to_owned()),
                )]),
                groups,
            )
            .map_err(|e| e.to_string())?,
        );
        let resource = match (q.verb.is_service_wide(), q.action) {
            (true, _) => {
                let service = uid(&t.service, "switchboard");
                entities.push(Entity::new_no_attrs(service.clone(), HashSet::new()));
                service
            }
            (false, Some(action)) => {
                let automation = uid(&t.automation, action.name.as_str());
                let tags = action
                    .tags
                    .iter()
                    .map(|tag| RestrictedExpression::new_string(tag.clone()));
                entities.push(
                    Entity::new(
                        automation.clone(),
                        HashMap::from([
                            (
                                "name".to_owned(),
                                RestrictedExpression::new_string(action.name.to_string()),
                            ),
                            ("tags".to_owned(), RestrictedExpression::new_set(tags)),
                            (
                                "runner".to_owned(),
                                RestrictedExpression::new_string(action.runner.as_str().to_owned()),
                            ),
                            (
                                "needs_approval".to_owned(),
                                RestrictedExpression::new_bool(action.approval.is_some()),
                            ),
                        ]),
                        HashSet::new(),
                    )
                    .map_err(|e| e.to_string())?,
                );
                automation
            }
            (false, None) => return Err(format!("`{}` needs an action", q.verb)),
        };
        let mut context = vec![(
            "door".to_owned(),
            RestrictedExpression::new_string(q.door.to_owned()),
        )];
        if let Some(channel) = q.channel {
            let id = uid(&t.channel, channel);
            let platform = channel.split_once(':').map_or(channel, |(p, _)| p);
            entities.push(
                Entity::new(
                    id.clone(),
                    HashMap::from([(
                        "platform".to_owned(),
                        RestrictedExpression::new_string(platform.to_owned()),
                    )]),
                    HashSet::new(),
                )
                .map_err(|e| e.to_string())?,
            );
            context.push((
                "channel".to_owned(),
                RestrictedExpression::new_entity_uid(id),
            ));
        }
        if let Some((host, host_groups)) = q.target {
            let id = uid(&t.host, host);
            let parents: HashSet<EntityUid> =
                host_groups.iter().map(|g| uid(&t.host_group, g)).collect();
            for g in &parents {
                entities.push(Entity::new_no_attrs(g.clone(), HashSet::new()));
            }
            entities.push(Entity::new_no_attrs(id.clone(), parents));
            context.push((
                "target".to_owned(),
                RestrictedExpression::new_entity_uid(id),
            ));
        }
        // Only who the requester is: compare it with `principal`. Its kind
        // and groups are not looked up, so no entity is made up for it.
        if let Some(requester) = q.requester {
            context.push((
                "requester".to_owned(),
                RestrictedExpression::new_entity_uid(uid(&t.user, requester.as_str())),
            ));
        }
        let context = Context::from_pairs(context).map_err(|e| e.to_string())?;
        let entities =
            Entities::from_entities(entities, Some(&self.schema)).map_err(|e| e.to_string())?;
        let request = Request::new(
            principal,
            uid(&t.action, q.verb.as_str()),
            resource,
            context,
            Some(&self.schema),
        )
        .map_err(|e| e.to_string())?;
        let response = Authorizer::new().is_authorized(&request, set, &entities);
        let allowed = response.decision() == cedar_policy::Decision::Allow;
        let mut policies: Vec<PolicyRef> = response
            .diagnostics()
            .reason()
            .filter_map(|id| self.info.get(&id.to_string()))
            .map(|p| PolicyRef {
                id: p.id.clone(),
                location: p.location.clone(),
                effect: p.effect,
            })
            .collect();
        policies.sort_by(|a, b| a.id.cmp(&b.id));
        let errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(ToString::to_string)
            .collect();
        let list = |ps: &[PolicyRef]| {
            ps.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let reason = match (allowed, policies.is_empty()) {
            (true, _) => format!("permitted by {}", list(&policies)),
            (false, false) => format!("forbidden by {}", list(&policies)),
            (false, true) => format!(
                "no policy permits {} to {}",
                subject.principal,
                q.describe()
            ),
        };
        // Approval is needed only when no permitting policy lets it through
        // without one.
        let approval = if allowed {
            let rules: Vec<Option<&ApprovalRule>> = policies
                .iter()
                .map(|p| self.info.get(&p.id).and_then(|i| i.approval.as_ref()))
                .collect();
            if rules.iter().all(Option::is_some) {
                rules.into_iter().flatten().next().cloned()
            } else {
                None
            }
        } else {
            None
        };
        Ok(Decision {
            allowed,
            policies,
            reason,
            errors,
            approval,
        })
    }
}

/// The approval a policy demands, from its annotations.
fn approval_of(
    policy: &cedar_policy::Policy,
    effect: Effect,
) -> Result<Option<ApprovalRule>, Vec<String>> {
    let approvers = policy.annotation("approval");
    let count = policy.annotation("approval_count");
    let expires = policy.annotation("approval_expires");
    let Some(approvers) = approvers else {
        return if count.is_some() || expires.is_some() {
            Err(vec![
                "`@approval_count` and `@approval_expires` need `@approval(\"group:NAME\")`"
                    .to_owned(),
            ])
        } else {
            Ok(None)
        };
    };
    if effect == Effect::Forbid {
        return Err(vec![
            "only a `permit` can demand approval (a `forbid` refuses outright)".to_owned(),
        ]);
    }
    let count = match count.map(|c| c.trim().parse::<u32>()) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => return Err(vec!["`@approval_count` must be a whole number".to_owned()]),
    };
    let texts: Vec<String> = approvers
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    ApprovalRule::from_parts(&texts, count, expires)
        .map(Some)
        .map_err(|problems| {
            problems
                .into_iter()
                .map(|(part, message)| format!("approval {part}: {message}"))
                .collect()
        })
}

/// A Cedar diagnostic as a catalog error at its first labelled place.
fn located(path: &Path, text: &str, err: &dyn Diagnostic, policy: Option<&str>) -> CatalogError {
    let offset = err
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|l| l.offset());
    let mut message = err.to_string();
    if let Some(help) = err.help() {
        message.push_str(&format!(" ({help})"));
    }
    if offset.is_none()
        && let Some(id) = policy
    {
        message = format!("policy `{id}`: {message}");
    }
    CatalogError {
        file: path.to_path_buf(),
        line: offset.map(|o| crate::catalog::line_at(text, o)),
        key: None,
        message,
    }
}

fn collect_cedar(root: &Path, dir: &Path, out: &mut Vec<PathBuf>, errors: &mut Vec<CatalogError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            errors.push(CatalogError {
                file: dir.strip_prefix(root).unwrap_or(dir).to_path_buf(),
                line: None,
                key: None,
                message: format!("cannot list folder: {e}"),
            });
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => collect_cedar(root, &path, out, errors),
            Ok(_) if path.extension().is_some_and(|e| e == "cedar") => {
                out.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
            }
            _ => {}
        }
    }
}
