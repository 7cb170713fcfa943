//! The directory of principals declared in the server's configuration:
//! users and service accounts with their groups, and groups that belong to
//! other groups. It answers "who is this, and which groups are they in
//! (directly or through other groups)?". Directories of other origins
//! (LDAP, Active Directory) will answer the same question.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::ids::Principal;

/// What kind of principal an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    User,
    ServiceAccount,
}

/// One declared principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrincipalEntry {
    pub name: Principal,
    pub kind: PrincipalKind,
    pub display_name: Option<String>,
    /// Groups it is directly a member of.
    pub groups: BTreeSet<String>,
}

/// Declared principals and groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    principals: BTreeMap<Principal, PrincipalEntry>,
    /// Group → the groups it is a member of.
    group_parents: BTreeMap<String, BTreeSet<String>>,
}

impl Directory {
    /// Builds a directory; names must be unique and group nesting acyclic.
    pub fn new(
        principals: Vec<PrincipalEntry>,
        group_parents: BTreeMap<String, BTreeSet<String>>,
    ) -> Result<Self, String> {
        let mut map = BTreeMap::new();
        for p in principals {
            if map.contains_key(&p.name) {
                return Err(format!("principal `{}` is declared twice", p.name));
            }
            map.insert(p.name.clone(), p);
        }
        let dir = Self {
            principals: map,
            group_parents,
        };
        for group in dir.group_parents.keys() {
            let mut path = vec![group.clone()];
            dir.check_acyclic(group, &mut path)?;
        }
        Ok(dir)
    }

    fn check_acyclic(&self, group: &str, path: &mut Vec<String>) -> Result<(), String> {
        for parent in self.group_parents.get(group).into_iter().flatten() {
            if path.contains(parent) {
                return Err(format!(
                    "groups form a cycle: {} → {parent}",
                    path.join(" → ")
                ));
            }
            path.push(parent.clone());
            self.check_acyclic(parent, path)?;
            path.pop();
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.principals.is_empty()
    }

    pub fn get(&self, name: &Principal) -> Option<&PrincipalEntry> {
        self.principals.get(name)
    }

    pub fn principals(&self) -> impl Iterator<Item = &PrincipalEntry> {
        self.principals.values()
    }

    /// Every group `direct` groups lead to, themselves included.
    pub fn expand_groups<'a>(
        &self,
        direct: impl IntoIterator<Item = &'a String>,
    ) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut todo: Vec<String> = direct.into_iter().cloned().collect();
        while let Some(g) = todo.pop() {
            if out.insert(g.clone()) {
                todo.extend(self.group_parents.get(&g).into_iter().flatten().cloned());
            }
        }
        out
    }

    /// The groups of a declared principal, nested ones included.
    pub fn groups_of(&self, name: &Principal) -> BTreeSet<String> {
        self.get(name)
            .map(|p| self.expand_groups(&p.groups))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, groups: &[&str]) -> PrincipalEntry {
        PrincipalEntry {
            name: Principal::new(name).unwrap(),
            kind: PrincipalKind::User,
            display_name: None,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        }
    }

    #[test]
    fn groups_expand_through_nesting() {
        let parents = BTreeMap::from([
            ("sre-leads".to_owned(), BTreeSet::from(["sre".to_owned()])),
            ("sre".to_owned(), BTreeSet::from(["ops".to_owned()])),
        ]);
        let d = Directory::new(
            vec![user("alice", &["sre-leads"]), user("bob", &["dev"])],
            parents,
        )
        .unwrap();
        let alice = d.groups_of(&Principal::new("alice").unwrap());
        assert_eq!(alice, ["ops", "sre", "sre-leads"].map(String::from).into());
        assert_eq!(
            d.groups_of(&Principal::new("carol").unwrap()),
            BTreeSet::new()
        );
    }

    #[test]
    fn duplicates_and_cycles_are_refused() {
        assert!(
            Directory::new(vec![user("a", &[]), user("a", &[])], BTreeMap::new())
                .unwrap_err()
                .contains("twice")
        );
        let cycle = BTreeMap::from([
            ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
            ("b".to_owned(), BTreeSet::from(["a".to_owned()])),
        ]);
        assert!(Directory::new(vec![], cycle).unwrap_err().contains("cycle"));
    }
}
