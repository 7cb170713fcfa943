//! Which hosts a request targets: the values of its `host` parameters — a
//! name, or a selector such as `group:prod,&tag:db` — resolved against the
//! inventory when the request is made, so that authorization, the audit log
//! and the run all see the same hosts.
//!
//! - An `ssh` action runs on every host its selector names (fan-out).
//! - Any other action runs once: its selector must name exactly one host,
//!   and the command receives that host's name, never the selector.
//! - Without an inventory, plain host names pass as they are (and `ssh`
//!   actions cannot run: they need an address to connect to).
//!
//! Not here: what policies make of the hosts (authorization), connecting.

use switchboard_core::inventory::{Host, Inventory};
use switchboard_core::{Action, ParamError, ParamType, ParamValue, Runner, ValidatedParams};

/// The hosts of one request.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    /// Every host named by every `host` parameter: what policies decide on.
    pub names: Vec<String>,
    /// The hosts an `ssh` action connects to (empty for other runners).
    pub hosts: Vec<Host>,
}

/// Resolves the `host` parameters of a request; a host selector of a
/// single-host action is replaced by the host's name in `params`.
pub fn resolve(
    action: &Action,
    params: &mut ValidatedParams,
    inventory: &Inventory,
) -> Result<Targets, Vec<ParamError>> {
    let mut targets = Targets::default();
    let mut errors = Vec::new();
    for spec in action.params.iter().filter(|p| p.ty == ParamType::Host) {
        let Some(ParamValue::Text(value)) = params.get(&spec.name).cloned() else {
            continue;
        };
        let problem = |message: String| ParamError {
            param: spec.name.clone(),
            message,
        };
        if inventory.is_empty() {
            if action.runner == Runner::Ssh {
                errors.push(problem(
                    "an `ssh` action runs on hosts of the inventory, and the catalog has no inventory.toml".to_owned(),
                ));
            } else if value.contains([',', '&', '!', '*', '?'])
                || value.starts_with("group:")
                || value.starts_with("tag:")
            {
                errors.push(problem(format!(
                    "`{value}` is a selector, and selectors need an inventory (inventory.toml in the catalog)"
                )));
            } else {
                targets.names.push(value);
            }
            continue;
        }
        let hosts = match inventory.select(&value) {
            Ok(hosts) => hosts,
            Err(message) => {
                errors.push(problem(message));
                continue;
            }
        };
        targets.names.extend(hosts.iter().map(|h| h.name.clone()));
        if action.runner == Runner::Ssh {
            targets.hosts.extend(hosts.into_iter().cloned());
        } else if let [host] = hosts.as_slice() {
            if host.name != value {
                params.replace(&spec.name, ParamValue::Text(host.name.clone()));
            }
        } else {
            let shown: Vec<&str> = hosts.iter().take(5).map(|h| h.name.as_str()).collect();
            let more = if hosts.len() > 5 { ", …" } else { "" };
            errors.push(problem(format!(
                "`{}` runs for one host at a time, and `{value}` names {}: {}{more}",
                action.name,
                hosts.len(),
                shown.join(", ")
            )));
        }
    }
    if errors.is_empty() {
        Ok(targets)
    } else {
        Err(errors)
    }
}

/// The hosts an existing execution targets, from its parameters as stored,
/// resolved against today's inventory (a value that no longer resolves is
/// taken as it is).
pub fn stored_names(
    action: &Action,
    params: &serde_json::Value,
    inventory: &Inventory,
) -> Vec<String> {
    action
        .params
        .iter()
        .filter(|p| p.ty == ParamType::Host)
        .filter_map(|p| params.get(&p.name).and_then(|v| v.as_str()))
        .flat_map(|value| match inventory.select(value) {
            Ok(hosts) if !inventory.is_empty() => {
                hosts.into_iter().map(|h| h.name.clone()).collect()
            }
            _ => vec![value.to_owned()],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use switchboard_core::{ActionName, ParamSpec, RawParams};

    use super::*;

    fn inventory() -> Inventory {
        Inventory::parse(
            r#"
[[hosts]]
name = "web-1"
groups = ["web"]
[[hosts]]
name = "web-2"
groups = ["web"]
[[hosts]]
name = "db-1"
tags = ["db"]
"#,
        )
        .unwrap()
    }

    fn action(runner: Runner) -> Action {
        let mut host = ParamSpec::new("host", ParamType::Host);
        host.required = true;
        Action {
            name: ActionName::new("host.check").unwrap(),
            description: "check".into(),
            runner,
            command: vec!["true".into()],
            timeout: std::time::Duration::from_secs(5),
            tags: vec![],
            params: vec![host],
            aliases: vec![],
            concurrency: None,
            env: Default::default(),
            working_dir: None,
            idempotent: false,
            approval: None,
            http: None,
            graph: None,
            workflow: None,
            file: "actions/check.toml".into(),
        }
    }

    fn params(action: &Action, host: &str) -> ValidatedParams {
        let raw: RawParams = [("host".to_owned(), serde_json::json!(host))].into();
        ValidatedParams::validate(&action.params, &raw).unwrap()
    }

    #[test]
    fn ssh_actions_fan_out_over_a_selector() {
        let a = action(Runner::Ssh);
        let mut p = params(&a, "group:web");
        let t = resolve(&a, &mut p, &inventory()).unwrap();
        assert_eq!(t.names, ["web-1", "web-2"]);
        assert_eq!(t.hosts.len(), 2);
        // The selector stays what was asked.
        assert_eq!(p.get("host"), Some(&ParamValue::Text("group:web".into())));
    }

    #[test]
    fn other_actions_take_one_host_and_see_its_name() {
        let a = action(Runner::Local);
        let mut p = params(&a, "tag:db");
        let t = resolve(&a, &mut p, &inventory()).unwrap();
        assert_eq!(t.names, ["db-1"]);
        assert!(t.hosts.is_empty());
        assert_eq!(p.get("host"), Some(&ParamValue::Text("db-1".into())));

        let mut p = params(&a, "web-*");
        let e = resolve(&a, &mut p, &inventory()).unwrap_err();
        assert_eq!(
            e[0].message,
            "`host.check` runs for one host at a time, and `web-*` names 2: web-1, web-2"
        );
    }

    #[test]
    fn unknown_hosts_are_refused_with_a_suggestion() {
        let a = action(Runner::Ssh);
        let mut p = params(&a, "web-3");
        let e = resolve(&a, &mut p, &inventory()).unwrap_err();
        assert!(e[0].message.contains("web-3"), "{}", e[0].message);
        assert_eq!(e[0].param, "host");
    }

    #[test]
    fn without_an_inventory_plain_names_pass_and_selectors_do_not() {
        let empty = Inventory::default();
        let a = action(Runner::Local);
        let mut p = params(&a, "anything-1");
        assert_eq!(resolve(&a, &mut p, &empty).unwrap().names, ["anything-1"]);
        let mut p = params(&a, "group:web");
        assert!(
            resolve(&a, &mut p, &empty).unwrap_err()[0]
                .message
                .contains("need an inventory")
        );
        let a = action(Runner::Ssh);
        let mut p = params(&a, "web-1");
        assert!(
            resolve(&a, &mut p, &empty).unwrap_err()[0]
                .message
                .contains("no inventory.toml")
        );
    }

    #[test]
    fn stored_selectors_resolve_for_later_decisions() {
        let a = action(Runner::Ssh);
        let names = stored_names(&a, &serde_json::json!({"host": "group:web"}), &inventory());
        assert_eq!(names, ["web-1", "web-2"]);
        let names = stored_names(&a, &serde_json::json!({"host": "gone-1"}), &inventory());
        assert_eq!(names, ["gone-1"]);
    }
}
