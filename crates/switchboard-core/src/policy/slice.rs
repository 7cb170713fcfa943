//! The policies a decision needs to evaluate: those whose scope could
//! match the principal and the verb. Cedar evaluates every policy of the
//! set it is given for every request; a policy whose principal or action
//! scope cannot match is never satisfied and never fails (the scope is
//! checked before the conditions), so leaving it out changes no decision.
//! Where many teams share one catalog, most policies are another team's,
//! and a decision evaluates a few instead of all of them.
//!
//! Slices are kept by what decides them — the verb, the groups the scopes
//! name that the principal is in, and the principal when a scope names it
//! — so principals alike share one.
//!
//! Not here: the decision itself (`Policies::decide`), conditions.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use cedar_policy::{ActionConstraint, EntityUid, Policy, PolicySet, PrincipalConstraint};

use super::{Identity, Verb};

/// Slices kept at most; when full, the cache starts over.
const MAX_SLICES: usize = 4096;

/// Whom a policy's principal scope can match.
#[derive(Debug)]
enum Principals {
    /// Anyone (no scope, or one on the entity type alone).
    Any,
    /// Members of the group.
    Group(String),
    /// That user alone.
    User(String),
}

#[derive(Debug)]
struct Scoped {
    policy: Policy,
    principals: Principals,
    /// The verbs its action scope allows; `None` for all.
    verbs: Option<BTreeSet<String>>,
}

/// What a slice depends on: the verb, the principal if a scope names it,
/// the groups scopes name that the principal is in.
type Key = (Verb, Option<String>, Vec<String>);

#[derive(Debug)]
pub(super) struct Slices {
    scoped: Vec<Scoped>,
    /// Users principal scopes name.
    users: BTreeSet<String>,
    /// Groups principal scopes name.
    groups: BTreeSet<String>,
    cache: Mutex<HashMap<Key, Arc<PolicySet>>>,
}

fn principals_of(uid: &EntityUid) -> Principals {
    let id = uid.id().unescaped().to_owned();
    match uid.type_name().to_string().as_str() {
        "Group" => Principals::Group(id),
        "User" => Principals::User(id),
        // No principal is of another type: it cannot match, but keeping
        // it is harmless.
        _ => Principals::Any,
    }
}

impl Slices {
    pub(super) fn new(set: &PolicySet) -> Self {
        let scoped: Vec<Scoped> = set
            .policies()
            .map(|policy| {
                let principals = match policy.principal_constraint() {
                    PrincipalConstraint::Any | PrincipalConstraint::Is(_) => Principals::Any,
                    PrincipalConstraint::In(uid)
                    | PrincipalConstraint::Eq(uid)
                    | PrincipalConstraint::IsIn(_, uid) => principals_of(&uid),
                };
                let verbs = match policy.action_constraint() {
                    ActionConstraint::Any => None,
                    ActionConstraint::Eq(uid) => {
                        Some(BTreeSet::from([uid.id().unescaped().to_owned()]))
                    }
                    ActionConstraint::In(uids) => Some(
                        uids.iter()
                            .map(|uid| uid.id().unescaped().to_owned())
                            .collect(),
                    ),
                };
                Scoped {
                    policy: policy.clone(),
                    principals,
                    verbs,
                }
            })
            .collect();
        let users = scoped
            .iter()
            .filter_map(|s| match &s.principals {
                Principals::User(u) => Some(u.clone()),
                _ => None,
            })
            .collect();
        let groups = scoped
            .iter()
            .filter_map(|s| match &s.principals {
                Principals::Group(g) => Some(g.clone()),
                _ => None,
            })
            .collect();
        Self {
            scoped,
            users,
            groups,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The policies that could let `who` `verb` something, or forbid it.
    pub(super) fn for_subject(&self, verb: Verb, who: &Identity) -> Result<Arc<PolicySet>, String> {
        let user = who.principal.as_str();
        let key: Key = (
            verb,
            self.users.contains(user).then(|| user.to_owned()),
            who.groups
                .iter()
                .filter(|g| self.groups.contains(*g))
                .cloned()
                .collect(),
        );
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slice) = cache.get(&key) {
            return Ok(slice.clone());
        }
        let relevant = self.scoped.iter().filter(|s| {
            let verb_matches = s.verbs.as_ref().is_none_or(|v| v.contains(verb.as_str()));
            let principal_matches = match &s.principals {
                Principals::Any => true,
                Principals::Group(g) => who.groups.contains(g),
                Principals::User(u) => u == user,
            };
            verb_matches && principal_matches
        });
        let slice = Arc::new(
            PolicySet::from_policies(relevant.map(|s| s.policy.clone()))
                .map_err(|e| e.to_string())?,
        );
        if cache.len() >= MAX_SLICES {
            cache.clear();
        }
        cache.insert(key, slice.clone());
        Ok(slice)
    }
}
