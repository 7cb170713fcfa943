use proptest::prelude::*;

use super::*;

const FLEET: &str = r#"
[defaults]
user = "ops"
vars = { datacenter = "fra1" }

[[hosts]]
name = "web-1"
address = "10.0.0.11"
groups = ["web"]
tags = ["nginx"]

[[hosts]]
name = "web-2"
address = "10.0.0.12"
groups = ["web"]
tags = ["nginx", "canary"]

[[hosts]]
name = "db-1"
port = 2222
user = "postgres"
groups = ["db"]
tags = ["primary"]
vars = { datacenter = "ams3" }

[[hosts]]
name = "db-2"
groups = ["db"]

[[hosts]]
name = "build-1"
groups = ["ci"]

[groups.prod]
description = "Everything customers reach"
children = ["web", "db"]
vars = { env = "prod" }
"#;

fn fleet() -> Inventory {
    Inventory::parse(FLEET).unwrap()
}

fn names(hosts: Result<Vec<&Host>, String>) -> Vec<String> {
    hosts.unwrap().iter().map(|h| h.name.clone()).collect()
}

#[test]
fn hosts_take_defaults_and_their_groups_nest() {
    let inv = fleet();
    let db1 = inv.host("db-1").unwrap();
    assert_eq!((db1.address.as_str(), db1.port), ("db-1", 2222));
    assert_eq!(db1.user.as_deref(), Some("postgres"));
    assert_eq!(
        db1.groups,
        BTreeSet::from(["db".to_owned(), "prod".to_owned()])
    );
    // The host's own variables over its groups' over the defaults.
    assert_eq!(db1.vars["datacenter"], "ams3");
    assert_eq!(db1.vars["env"], "prod");
    let web1 = inv.host("web-1").unwrap();
    assert_eq!((web1.address.as_str(), web1.port), ("10.0.0.11", 22));
    assert_eq!(web1.user.as_deref(), Some("ops"));
    assert_eq!(web1.vars["datacenter"], "fra1");
    assert!(!inv.host("build-1").unwrap().groups.contains("prod"));
}

#[test]
fn selectors_name_hosts_groups_tags_and_globs_and_combine() {
    let inv = fleet();
    assert_eq!(names(inv.select("web-1")), ["web-1"]);
    assert_eq!(
        names(inv.select("group:prod")),
        ["db-1", "db-2", "web-1", "web-2"]
    );
    assert_eq!(names(inv.select("tag:nginx")), ["web-1", "web-2"]);
    assert_eq!(names(inv.select("db-*")), ["db-1", "db-2"]);
    assert_eq!(names(inv.select("web-1, build-1")), ["build-1", "web-1"]);
    assert_eq!(
        names(inv.select("group:prod,&tag:nginx,!tag:canary")),
        ["web-1"]
    );
    assert_eq!(names(inv.select("*,!group:prod")), ["build-1"]);
}

#[test]
fn selectors_that_name_nothing_say_why() {
    let inv = fleet();
    for (selector, why) in [
        ("web-3", "unknown host `web-3` (did you mean `web-1`?)"),
        ("group:prd", "unknown group `prd` (did you mean `prod`?)"),
        ("tag:redis", "no host matches `tag:redis`"),
        ("cache-*", "no host matches `cache-*`"),
        ("web-1,,web-2", "empty term in the selector `web-1,,web-2`"),
        ("!web-1", "only narrows"),
        ("web-1,!web-1", "leaves no host"),
        ("web-[", "not a valid pattern"),
    ] {
        let err = inv.select(selector).unwrap_err();
        assert!(err.contains(why), "{selector}: {err}");
    }
}

#[test]
fn mistakes_in_the_file_are_reported_with_their_line() {
    let err = |text: &str| {
        Inventory::parse(text)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let e = err("[[hosts]]\nname = \"a\"\nadress = \"x\"\n");
    assert!(
        e.starts_with("inventory.toml:3: unknown field `adress`"),
        "{e}"
    );
    let e = err("[[hosts]]\nname = \"a\"\n\n[[hosts]]\nname = \"a\"\n");
    assert!(
        e.contains("inventory.toml:2: this host is listed twice"),
        "{e}"
    );
    let e = err("[[hosts]]\nname = \"a b\"\n");
    assert!(
        e.contains("inventory.toml:2: `a b` is not a valid host name"),
        "{e}"
    );
    let e = err("[[hosts]]\nname = \"a\"\nport = 70000\n");
    assert!(e.contains("inventory.toml:3"), "{e}");
    let e = err("[groups.x]\nchildren = [\"x\"]\n");
    assert!(
        e.contains("inventory.toml:1: group `x` cannot contain itself"),
        "{e}"
    );
}

proptest! {
    #[test]
    fn selectors_never_panic(selector in "[a-z0-9*?\\[\\]!&:,. -]{0,40}") {
        let _ = fleet().select(&selector);
    }

    #[test]
    fn files_never_panic(text in "(\\[\\[hosts\\]\\]|\\[groups\\.[a-z]\\]|name|port|children|= |\"[a-z]\"|\\[|\\]|\n|[0-9]+){0,40}") {
        let _ = Inventory::parse(&text);
    }
}
