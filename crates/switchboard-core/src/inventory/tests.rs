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

const WITH_SOURCES: &str = r#"
[defaults]
user = "ops"
vars = { datacenter = "fra1" }

[[hosts]]
name = "web-1"
address = "10.0.0.11"
groups = ["web"]

[groups.monitored]
children = ["discovered"]
vars = { scraped = "yes" }

[[sources]]
name = "node-exporters"
file_sd = "targets/*.json"
refresh = "30s"
groups = ["discovered"]

[[sources]]
name = "cmdb"
http = "https://cmdb.internal/switchboard/targets"
refresh = "1m"
bearer = "env:CMDB_TOKEN"
"#;

fn with_sources() -> Inventory {
    Inventory::parse(WITH_SOURCES).unwrap()
}

#[test]
fn sources_are_read_with_their_settings() {
    let inv = with_sources();
    let sources = inv.sources();
    assert_eq!(sources.len(), 2);
    assert_eq!(sources[0].name, "node-exporters");
    assert_eq!(
        sources[0].kind,
        SourceKind::FileSd {
            pattern: "targets/*.json".into()
        }
    );
    assert_eq!(sources[0].refresh, Duration::from_secs(30));
    assert_eq!(sources[0].groups, BTreeSet::from(["discovered".to_owned()]));
    assert_eq!(
        sources[1].kind,
        SourceKind::Http {
            url: "https://cmdb.internal/switchboard/targets".into(),
            bearer: Some(SecretRef::Env("CMDB_TOKEN".into()))
        }
    );
    assert_eq!(sources[1].kind.as_str(), "http");
    assert_eq!(sources[1].refresh, Duration::from_secs(60));
    // A source's group is known before it finds anything.
    let err = inv.select("group:discovered").unwrap_err();
    assert_eq!(err, "no host matches `group:discovered`");
}

#[test]
fn mistakes_in_sources_are_reported_with_their_line() {
    let err = |text: &str| {
        Inventory::parse(text)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let e = err("[[sources]]\nname = \"a\"\nfile_sd = \"x\"\nrefrsh = \"1m\"\n");
    assert!(
        e.starts_with("inventory.toml:4: unknown field `refrsh`"),
        "{e}"
    );
    let e = err("[[sources]]\nname = \"a\"\nfile_sd = \"x\"\nhttp = \"https://h/\"\n");
    assert!(
        e.contains("inventory.toml:4: source `a`: give either `file_sd` or `http`, not both"),
        "{e}"
    );
    let e = err("[[sources]]\nname = \"a\"\n");
    assert!(
        e.contains("inventory.toml:2: source `a`: say where hosts come from"),
        "{e}"
    );
    let e = err("[[sources]]\nname = \"a\"\nfile_sd = \"x\"\nrefresh = \"soon\"\n");
    assert!(
        e.contains("inventory.toml:4: source `a`: refresh: expected a duration"),
        "{e}"
    );
    let e = err("[[sources]]\nname = \"a\"\nfile_sd = \"x\"\nrefresh = \"10ms\"\n");
    assert!(
        e.contains("inventory.toml:4: source `a`: refresh must be between"),
        "{e}"
    );
    let e = err("[[sources]]\nname = \"a\"\nhttp = \"https://h/\"\nbearer = \"hunter2\"\n");
    assert!(
        e.contains("inventory.toml:4: source `a`: bearer: a secret must be a reference"),
        "{e}"
    );
    let e = err("[[sources]]\nname = \"a\"\nfile_sd = \"x\"\nbearer = \"env:X\"\n");
    assert!(
        e.contains("inventory.toml:4: source `a`: `bearer` is for `http` sources only"),
        "{e}"
    );
    let e = err("[[sources]]\nname = \"a\"\nhttp = \"cmdb/targets\"\n");
    assert!(
        e.contains("inventory.toml:3: source `a`: http: must start with"),
        "{e}"
    );
    let e = err("[[sources]]\nname = \"a\"\nfile_sd = \"t/[\"\n");
    assert!(
        e.contains("inventory.toml:3: source `a`: `t/[` is not a valid pattern"),
        "{e}"
    );
    let e = err("[[sources]]\nname = \"a b\"\nfile_sd = \"x\"\n");
    assert!(
        e.contains("inventory.toml:2: `a b` is not a valid source name"),
        "{e}"
    );
    let e = err("[[sources]]\nname = \"a\"\nfile_sd = \"x\"\ngroups = [\"b c\"]\n");
    assert!(
        e.contains("inventory.toml:4: source `a`: `b c` is not a valid group name"),
        "{e}"
    );
    let e = err(
        "[[sources]]\nname = \"a\"\nfile_sd = \"x\"\n\n[[sources]]\nname = \"a\"\nfile_sd = \"y\"\n",
    );
    assert!(
        e.contains("inventory.toml:6: source `a` is declared twice"),
        "{e}"
    );
}

#[test]
fn file_sd_targets_map_to_hosts() {
    let json = br#"[
        {"targets": ["node-1:9100", "node-2:9100", "[2001:db8::1]:9100", "bare"],
         "labels": {"job": "node", "env": "prod", "__meta_consul_dc": "x", "__address__": "y",
                    "groups": "linux, edge", "tags": "exporter,metal"}},
        {"targets": ["node-1:9256"], "labels": {"group": "proc", "job": "process", "rack": "r1"}},
        {"targets": ["::1"]}
    ]"#;
    let hosts = parse_file_sd(json).unwrap();
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["2001:db8::1", "::1", "bare", "node-1", "node-2"]);
    let node1 = &hosts[3];
    assert_eq!(
        node1.groups,
        ["edge", "linux", "proc"].map(String::from).into()
    );
    assert_eq!(node1.tags, ["exporter", "metal"].map(String::from).into());
    // The first sighting's variables win; later ones add what is new.
    assert_eq!(
        node1.vars,
        [
            ("env", "prod"),
            ("job", "node"),
            ("rack", "r1"),
            ("target_port", "9100")
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into()
    );
    assert_eq!(hosts[0].vars["target_port"], "9100");
    assert!(!hosts[2].vars.contains_key("target_port"));
    assert!(hosts[1].vars.is_empty());
    assert_eq!(parse_file_sd(b"[]").unwrap(), vec![]);
}

#[test]
fn bad_file_sd_input_is_an_error_not_a_panic() {
    for (input, why) in [
        (&b"not json"[..], "not a file_sd document"),
        (b"{\"targets\": []}", "not a file_sd document"),
        (
            b"[{\"targets\": [\"a\"], \"labls\": {}}]",
            "unknown field `labls`",
        ),
        (b"[{\"labels\": {}}]", "missing field `targets`"),
        (b"[{\"targets\": [1]}]", "not a file_sd document"),
        (
            b"[{\"targets\": [\"a b:1\"]}]",
            "entry 1: target `a b:1`: `a b` is not a valid host name",
        ),
        (b"[{\"targets\": [\"a:http\"]}]", "`http` is not a port"),
        (b"[{\"targets\": [\"a:70000\"]}]", "`70000` is not a port"),
        (
            b"[{\"targets\": [\"[zz]:1\"]}]",
            "`zz` is not an IPv6 address",
        ),
        (
            b"[{\"targets\": [\"[::1\"]}]",
            "is not `host` or `host:port`",
        ),
        (b"[{\"targets\": [\"\"]}]", "is not a valid host name"),
        (b"[{\"targets\": [\"http://a:1/x\"]}]", "is not a port"),
        (
            b"[{\"targets\": [\"a\"]}, {\"targets\": [\"b\"], \"labels\": {\"group\": \"x y\"}}]",
            "entry 2: label `group`: `x y` is not a valid name",
        ),
        (
            b"[{\"targets\": [\"a\"], \"labels\": {\"bad-label\": \"1\"}}]",
            "`bad-label` is not a valid label name",
        ),
    ] {
        let err = parse_file_sd(input).unwrap_err();
        assert!(
            err.contains(why),
            "{}: {err}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn discovered_hosts_merge_under_the_declared_ones() {
    let inv = with_sources();
    let discovered = BTreeMap::from([
        (
            "node-exporters".to_owned(),
            parse_file_sd(
                br#"[{"targets": ["web-1:9100", "node-1:9100"], "labels": {"group": "linux", "datacenter": "ams3", "tags": "metal"}}]"#,
            )
            .unwrap(),
        ),
        (
            "cmdb".to_owned(),
            parse_file_sd(br#"[{"targets": ["node-1", "node-2"], "labels": {"datacenter": "lon1", "owner": "sre", "group": "cmdb"}}]"#)
                .unwrap(),
        ),
        (
            "gone".to_owned(),
            parse_file_sd(br#"[{"targets": ["ghost"]}]"#).unwrap(),
        ),
    ]);
    let merged = inv.with_discovered(&discovered);
    // The declared web-1 wins whole.
    assert_eq!(merged.host("web-1"), inv.host("web-1"));
    assert!(
        !merged
            .host("web-1")
            .unwrap()
            .vars
            .contains_key("target_port")
    );
    // A source the inventory does not declare is ignored.
    assert!(merged.host("ghost").is_none());
    let node1 = merged.host("node-1").unwrap();
    assert_eq!((node1.address.as_str(), node1.port), ("node-1", 22));
    assert_eq!(node1.user.as_deref(), Some("ops"));
    assert_eq!(
        node1.groups,
        ["cmdb", "discovered", "linux", "monitored"]
            .map(String::from)
            .into()
    );
    // Labels over group variables over the defaults; the first source's value first.
    assert_eq!(node1.vars["datacenter"], "ams3");
    assert_eq!(node1.vars["owner"], "sre");
    assert_eq!(node1.vars["scraped"], "yes");
    assert_eq!(node1.vars["target_port"], "9100");
    let node2 = merged.host("node-2").unwrap();
    assert_eq!(node2.vars["datacenter"], "lon1");
    assert!(!node2.groups.contains("discovered"));
    // Selectors reach discovered hosts and their groups.
    assert_eq!(names(merged.select("group:monitored")), ["node-1"]);
    assert_eq!(names(merged.select("group:cmdb,&tag:metal")), ["node-1"]);
    assert_eq!(names(merged.select("node-*")), ["node-1", "node-2"]);
    assert_eq!(names(merged.select("*,!web-*")), ["node-1", "node-2"]);
    // Nothing discovered: the same inventory.
    assert_eq!(inv.with_discovered(&BTreeMap::new()), inv);
}

proptest! {
    #[test]
    fn file_sd_parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_file_sd(&bytes);
    }

    #[test]
    fn file_sd_shaped_input_never_panics(
        text in "\\[(\\{\"targets\": \\[(\"[a-z0-9:\\[\\]._ -]{0,12}\",?){0,3}\\](, \"labels\": \\{(\"[a-z_]{0,6}\": \"[a-z, ]{0,6}\",?){0,3}\\})?\\},?){0,3}\\]"
    ) {
        if let Ok(hosts) = parse_file_sd(text.as_bytes()) {
            for h in hosts {
                prop_assert!(!h.name.is_empty());
            }
        }
    }

    #[test]
    fn source_sections_never_panic(text in "(\\[\\[sources\\]\\]|name|file_sd|http|refresh|bearer|groups|= |\"[a-z:/.*]{0,8}\"|\\[|\\]|\n){0,30}") {
        let _ = Inventory::parse(&text);
    }
}
