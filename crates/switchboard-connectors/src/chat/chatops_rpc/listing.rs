//! The listing (`GET /_chatops`): one method per alias of each action of
//! the catalog, its regex made from the alias format so that Hubot matches
//! what a person types in chat, with one named group per parameter.
//!
//! The regex of `logs [{file}] [lines={lines}]` is
//! `logs(?:\s+(?<file>\S+))?(?:\s+lines=(?<lines>\S+))?`: words are
//! separated by whitespace, literal text is escaped, a capture takes one
//! word (up to the literal text that follows it in the same word), an
//! optional group becomes an optional non-capturing group, and a final
//! `string` capture outside optional groups takes the rest of the line, as
//! in chat. Hubot anchors the regex, puts its prefix before it and matches
//! without regard to case; it also accepts `--name value` after any
//! command, which arrives as one more parameter.
//!
//! Method names: the action's name for its first alias, `<action>~<n>` for
//! the n-th (`~` is never part of an action's name, and needs no escaping
//! in a URL); the method's path is its name.
//!
//! Besides the catalog, three built-in methods steer a run already asked
//! for, as the same words do in chat ([`Steer`]): `~approve`, `~reject`
//! and `~cancel`, each with the run's number (`approve 12 looks right`).
//! The buttons of an answer say them.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use switchboard_core::alias::{AliasFormat, Part, Piece};
use switchboard_core::catalog::{Action, Catalog};
use switchboard_core::command::{text_capture, unknown_param};

use super::VERSION;
use super::wire::{ErrorCode, RpcError};

/// The answer to `GET /_chatops`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listing {
    pub namespace: String,
    pub help: String,
    pub version: u32,
    pub methods: BTreeMap<String, Method>,
}

/// One method of the listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Method {
    pub regex: String,
    /// The parameters the regex captures, in order.
    pub params: Vec<String>,
    /// Relative to the listing's URL.
    pub path: String,
    /// `<alias format> - <description>`.
    pub help: String,
}

/// Every alias of every action of `catalog`, as methods.
pub fn listing(catalog: &Catalog, namespace: &str) -> Listing {
    let mut methods = BTreeMap::new();
    for action in catalog.actions() {
        for (index, alias) in action.aliases.iter().enumerate() {
            let name = method_name(action, index);
            let description = alias
                .description
                .as_deref()
                .filter(|d| !d.trim().is_empty())
                .unwrap_or(&action.description);
            methods.insert(
                name.clone(),
                Method {
                    regex: method_regex(action, &alias.format),
                    params: alias
                        .format
                        .captures()
                        .into_iter()
                        .map(|c| c.name)
                        .collect(),
                    path: name,
                    help: format!("{} - {description}", alias.format.text),
                },
            );
        }
    }
    for steer in Steer::ALL {
        methods.insert(
            steer.method(),
            Method {
                regex: steer.regex(),
                params: steer.params().iter().map(|p| (*p).to_owned()).collect(),
                path: steer.method(),
                help: steer.help().to_owned(),
            },
        );
    }
    Listing {
        namespace: namespace.to_owned(),
        help:
            "Switchboard: the catalog's commands. Whether you may run one is decided when you do."
                .to_owned(),
        version: VERSION,
        methods,
    }
}

/// What a person does to a run already asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steer {
    Approve,
    Reject,
    Cancel,
}

impl Steer {
    pub const ALL: [Steer; 3] = [Steer::Approve, Steer::Reject, Steer::Cancel];

    /// The word said in chat, which the engine knows the command by.
    pub fn verb(self) -> &'static str {
        match self {
            Steer::Approve => "approve",
            Steer::Reject => "reject",
            Steer::Cancel => "cancel",
        }
    }

    /// Its method's name (and path): `~approve`.
    pub fn method(self) -> String {
        format!("~{}", self.verb())
    }

    /// The built-in a method name is, if it is one.
    pub fn from_method(name: &str) -> Option<Steer> {
        Steer::ALL.into_iter().find(|s| s.method() == name)
    }

    fn params(self) -> &'static [&'static str] {
        match self {
            Steer::Approve | Steer::Reject => &["id", "reason"],
            Steer::Cancel => &["id"],
        }
    }

    fn regex(self) -> String {
        let verb = self.verb();
        match self {
            Steer::Approve | Steer::Reject => {
                format!(r"{verb}\s+#?(?<id>\d+)(?:\s+(?<reason>.+))?")
            }
            Steer::Cancel => format!(r"{verb}\s+#?(?<id>\d+)"),
        }
    }

    fn help(self) -> &'static str {
        match self {
            Steer::Approve => "approve {id} [reason] - Approve a run that waits for approval",
            Steer::Reject => "reject {id} [reason] - Reject a run that waits for approval",
            Steer::Cancel => "cancel {id} - Cancel a run",
        }
    }

    /// The button that says this to run `id`.
    pub fn button(self, id: i64) -> super::wire::Button {
        let label = match self {
            Steer::Approve => "Approve",
            Steer::Reject => "Reject",
            Steer::Cancel => "Cancel",
        };
        super::wire::Button {
            label: label.to_owned(),
            command: format!("{} {id}", self.verb()),
        }
    }
}

/// The method of an action's alias (`index` from 0).
fn method_name(action: &Action, index: usize) -> String {
    match index {
        0 => action.name.to_string(),
        n => format!("{}~{}", action.name, n + 1),
    }
}

/// A method of the listing, found by name.
#[derive(Debug, Clone)]
pub struct ResolvedMethod {
    pub action: Arc<Action>,
    /// Which alias, from 0.
    pub alias: usize,
}

impl ResolvedMethod {
    /// Refuses parameters the action does not have, and secrets, which
    /// cannot be given in chat. Values are checked by the engine.
    pub fn check_params(&self, params: &BTreeMap<String, String>) -> Result<(), RpcError> {
        for name in params.keys() {
            match self.action.params.iter().find(|p| p.name == *name) {
                Some(p) if p.is_secret() => {
                    return Err(RpcError::new(
                        ErrorCode::InvalidParams,
                        format!("`{name}` is a secret and cannot be given in chat"),
                    ));
                }
                Some(_) => {}
                None => {
                    let name: String = name.chars().take(64).collect();
                    return Err(RpcError::new(
                        ErrorCode::InvalidParams,
                        format!(
                            "{} of {}",
                            unknown_param(&self.action, &name),
                            self.action.name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The action and alias behind a method name, when it is one.
pub fn resolve_method(catalog: &Catalog, name: &str) -> Option<ResolvedMethod> {
    let (action, alias) = match name.split_once('~') {
        None => (name, 0),
        Some((action, digits)) => {
            // `~1` is never listed (the first alias is the plain name), nor `~02`.
            let n: usize = digits.parse().ok()?;
            if n < 2 || n.to_string() != digits {
                return None;
            }
            (action, n - 1)
        }
    };
    let action = catalog.action(action)?;
    (alias < action.aliases.len()).then(|| ResolvedMethod {
        action: Arc::clone(action),
        alias,
    })
}

/// The regex Hubot matches a typed line with, for one alias of `action`.
pub fn method_regex(action: &Action, format: &AliasFormat) -> String {
    let rest_of_line = text_capture(action, format);
    let mut out = String::new();
    let mut first = true;
    write_parts(&format.parts, rest_of_line, &mut first, &mut out);
    out
}

fn write_parts(parts: &[Part], rest_of_line: Option<&str>, first: &mut bool, out: &mut String) {
    for (i, part) in parts.iter().enumerate() {
        match part {
            Part::Word(pieces) => {
                if !std::mem::take(first) {
                    out.push_str(r"\s+");
                }
                for (j, piece) in pieces.iter().enumerate() {
                    match piece {
                        Piece::Literal(text) => out.push_str(&escape(text)),
                        Piece::Capture(name) => {
                            let last = i + 1 == parts.len() && j + 1 == pieces.len();
                            let value = if last && rest_of_line == Some(name.as_str()) {
                                ".+"
                            } else if j + 1 < pieces.len() {
                                // Ends where the literal text after it first appears.
                                r"\S+?"
                            } else {
                                r"\S+"
                            };
                            out.push_str(&format!("(?<{name}>{value})"));
                        }
                    }
                }
            }
            Part::Optional(inner) => {
                out.push_str("(?:");
                // Only the format's first word, never optional, goes without
                // whitespace before it.
                write_parts(inner, None, first, out);
                out.push_str(")?");
            }
        }
    }
}

/// Escapes what is special in a regex, the same way for JavaScript (Hubot)
/// and Rust.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\^$.|?*+()[]{}/".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
