use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::params::ValidatedParams;

/// Writes action files into a fresh catalog folder.
fn catalog_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("actions")).unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
    }
    dir
}

fn load(files: &[(&str, &str)]) -> Catalog {
    let dir = catalog_with(files);
    Catalog::load(dir.path()).unwrap_or_else(|e| panic!("{e}"))
}

const REBOOT: &str = r#"name = "host.reboot"
description = "Reboot a host"
command = ["true"]

[params.host]
type = "host"
required = true
description = "The host to reboot"

[[aliases]]
format = "reboot {host}"
ack = "Rebooting {host}…"
"#;

const LOGS: &str = r#"name = "host.logs"
description = "Show the last lines of a host's log"
command = ["true"]

[params.host]
type = "host"
required = true
description = "Where to read"

[params.lines]
type = "integer"
default = 10
min = 1
max = 10000
description = "How many lines to show"

[params.grep]
type = "string"
description = "Only lines containing this text"

[params.follow]
type = "boolean"
default = false

[[aliases]]
format = "logs {host} [lines={lines}] [grep={grep}]"
ack = "Tailing {host} ({lines} lines)…"
"#;

const DISK: &str = r#"name = "host.disk"
description = "Show disk usage"
command = ["true"]

[params.path]
type = "string"
default = "/"
pattern = "/.*"

[params.warn_above]
type = "integer"
default = 90
min = 1
max = 100

[[aliases]]
format = "disk [{path}] [above {warn_above}]"
"#;

const GRAPH: &str = r#"name = "metrics.graph"
description = "Draw a graph of a metric"
command = ["true"]

[params.metric]
type = "enum"
choices = ["cpu", "memory", "disk"]
required = true

[params.host]
type = "host"
required = true

[params.range]
type = "duration"
default = "1h"

[[aliases]]
format = "graph {metric} for {host} [over {range}]"
description = "Graph a metric of a host"
"#;

const ECHO: &str = r#"name = "demo.echo"
description = "Print a message back"
command = ["true"]

[params.message]
type = "string"
required = true

[params.upper]
type = "boolean"
default = false

[[aliases]]
format = "echo {message}"
"#;

const RESTART: &str = r#"name = "service.restart"
description = "Restart a service"
command = ["true"]

[params.service]
type = "string"
required = true
pattern = "[A-Za-z0-9@._-]+"

[params.dry_run]
type = "boolean"
default = true

[[aliases]]
format = "restart {service} [dry_run={dry_run}]"
ack = "Restarting {service}…"
"#;

const DEPLOY: &str = r#"name = "app.deploy"
description = "Deploy an application"
command = ["true"]

[params.app]
type = "string"
required = true
pattern = "[a-z][a-z0-9-]*"

[params.env]
type = "enum"
choices = ["staging", "production"]
required = true

[params.version]
type = "string"
required = true
description = "The version to deploy"

[params.token]
type = "secret"

[params.hosts]
type = "list"

[[aliases]]
format = "deploy {app} to {env}"
"#;

/// Two aliases of one action that accept the same text with the same
/// parameters: not ambiguous, not an overlap.
const PING: &str = r#"name = "host.ping"
description = "Ping a host"
command = ["true"]

[params.host]
type = "host"
required = true

[[aliases]]
format = "ping {host}"

[[aliases]]
format = "ping {host} [now]"
"#;

fn fixture_catalog() -> Catalog {
    load(&[
        ("actions/host/reboot.toml", REBOOT),
        ("actions/host/logs.toml", LOGS),
        ("actions/host/disk.toml", DISK),
        ("actions/host/ping.toml", PING),
        ("actions/metrics/graph.toml", GRAPH),
        ("actions/demo/echo.toml", ECHO),
        ("actions/service/restart.toml", RESTART),
        ("actions/app/deploy.toml", DEPLOY),
    ])
}

/// The commands of the small realistic catalog above.
fn commands() -> &'static CommandSet {
    static SET: OnceLock<CommandSet> = OnceLock::new();
    SET.get_or_init(|| CommandSet::new(fixture_catalog().actions()))
}

fn parse(text: &str) -> Command {
    commands()
        .parse(text)
        .unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn error(text: &str) -> CommandError {
    match commands().parse(text) {
        Ok(c) => panic!("{text:?} parsed as {c:?}"),
        Err(e) => e,
    }
}

fn raw(pairs: &[(&str, &str)]) -> RawParams {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect()
}

#[test]
fn tokenizes_words_quotes_and_named_values() {
    let cases: &[(&str, &[&str])] = &[
        ("  logs   web1\tlines=5 ", &["logs", "web1", "lines=5"]),
        (
            r#"echo "two words" 'and more'"#,
            &["echo", "two words", "and more"],
        ),
        (
            "echo “curly quotes” ‘too’",
            &["echo", "curly quotes", "too"],
        ),
        (r#"echo "say \"hi\" \\ \d""#, &["echo", r#"say "hi" \ \d"#]),
        (
            r#"logs web1 grep="out of memory""#,
            &["logs", "web1", "grep=out of memory"],
        ),
        ("echo don't won’t", &["echo", "don't", "won’t"]),
        (r#"echo "" x"#, &["echo", "", "x"]),
        ("echo \"a\"'b'c", &["echo", "abc"]),
        ("", &[]),
    ];
    for (text, words) in cases {
        assert_eq!(tokenize(text).unwrap(), *words, "{text:?}");
    }
}

#[test]
fn tokenizing_explains_unbalanced_quotes_and_control_characters() {
    assert_eq!(
        tokenize(r#"echo "hello"#).unwrap_err(),
        "the quote `\"` at column 6 is never closed"
    );
    assert_eq!(
        tokenize("echo ‘été").unwrap_err(),
        "the quote `‘` at column 6 is never closed"
    );
    assert_eq!(
        tokenize("reboot web1\u{7}").unwrap_err(),
        "control character U+0007 at column 12 is not allowed"
    );
    assert_eq!(
        tokenize(&"x".repeat(MAX_COMMAND_BYTES + 1)).unwrap_err(),
        "the command is longer than 65536 bytes"
    );
    assert_eq!(
        error(r#"echo "unclosed"#).to_string(),
        "the quote `\"` at column 6 is never closed"
    );
}

#[test]
fn quote_gives_back_one_plain_word() {
    for value in [
        "web1",
        "two words",
        "",
        "a=b",
        "say \"hi\"",
        "don't",
        "c:\\tmp",
        "“x”",
    ] {
        let quoted = quote(value);
        let tokens = lex(&quoted).unwrap();
        assert_eq!(tokens.len(), 1, "{value:?} → {quoted}");
        assert_eq!(tokens[0].text, value);
        assert!(tokens[0].key.is_none(), "{quoted} read as name=value");
    }
    assert_eq!(quote("web1"), "web1");
    assert_eq!(quote("a b"), "\"a b\"");
}

#[test]
fn parses_an_alias_with_ack_regardless_of_case() {
    let c = parse("Reboot web1");
    assert_eq!(c.action.as_str(), "host.reboot");
    assert_eq!(c.params, raw(&[("host", "web1")]));
    assert_eq!(c.format, "reboot {host}");
    assert_eq!(c.ack.as_deref(), Some("Rebooting web1…"));
    assert_eq!(parse("REBOOT host=web2").params, raw(&[("host", "web2")]));
}

#[test]
fn named_words_optional_groups_and_extras() {
    let c = parse("logs db1 LINES=50 grep=\"out of memory\" follow=yes");
    assert_eq!(c.action.as_str(), "host.logs");
    assert_eq!(
        c.params,
        raw(&[
            ("host", "db1"),
            ("lines", "50"),
            ("grep", "out of memory"),
            ("follow", "yes")
        ])
    );
    assert_eq!(c.ack.as_deref(), Some("Tailing db1 (50 lines)…"));
    // Given in another order, the same.
    assert_eq!(
        parse("logs db1 grep=oom lines=5").params,
        raw(&[("host", "db1"), ("lines", "5"), ("grep", "oom")])
    );
    // The ack falls back to the default of what was not typed.
    assert_eq!(
        parse("logs db1").ack.as_deref(),
        Some("Tailing db1 (10 lines)…")
    );
}

#[test]
fn optional_groups_are_used_when_they_fit_and_skipped_otherwise() {
    for (text, expected) in [
        ("disk", vec![]),
        ("disk /var", vec![("path", "/var")]),
        ("disk above 80", vec![("warn_above", "80")]),
        (
            "disk /var above 80",
            vec![("path", "/var"), ("warn_above", "80")],
        ),
        (
            "disk above 80 path=/home",
            vec![("path", "/home"), ("warn_above", "80")],
        ),
    ] {
        assert_eq!(parse(text).params, raw(&expected), "{text}");
    }
    assert_eq!(
        parse("graph cpu for web1 over 30m").params,
        raw(&[("metric", "cpu"), ("host", "web1"), ("range", "30m")])
    );
    assert_eq!(
        parse("graph memory for web1").params,
        raw(&[("metric", "memory"), ("host", "web1")])
    );
}

#[test]
fn a_final_text_capture_takes_the_rest_of_the_line() {
    assert_eq!(
        parse("echo hello   world").params,
        raw(&[("message", "hello world")])
    );
    assert_eq!(
        parse("echo hello world upper=yes").params,
        raw(&[("message", "hello world"), ("upper", "yes")])
    );
    assert_eq!(
        parse("echo a=b, as in x=1").params,
        raw(&[("message", "a=b, as in x=1")])
    );
    assert_eq!(
        parse("echo \"upper=yes\" \"two  spaces\"").params,
        raw(&[("message", "upper=yes two  spaces")])
    );
    assert_eq!(parse("echo message=hi").params, raw(&[("message", "hi")]));
}

#[test]
fn values_that_do_not_fit_their_type_say_what_is_wrong_and_show_the_usage() {
    let e = error("logs web1 lines=ten");
    assert_eq!(
        e.to_string(),
        "`lines`: expected a whole number, got `ten` (usage: `logs {host} [lines={lines}] [grep={grep}]`)"
    );
    assert!(matches!(&e, CommandError::Invalid { action, .. } if action.as_str() == "host.logs"));
    for (text, message) in [
        ("logs web1 lines=0", "`lines`: must be at least 1"),
        (
            "disk above eighty",
            "`warn_above`: expected a whole number, got `eighty`",
        ),
        ("disk /var above 200", "`warn_above`: must be at most 100"),
        (
            "graph load for web1",
            "`metric`: `load` is not one of: cpu, memory, disk",
        ),
        (
            "graph cpu for web1 over soon",
            "`range`: expected a duration such as `30s` or `5m`, got `soon`",
        ),
        ("graph cpu on web1", "expected `for`, got `on`"),
        ("graph cpu", "expected `for` after `cpu`"),
        (
            "reboot web_1/",
            "`host`: `web_1/` is not a host name, address or selector (`web-1`, `group:prod`, `tag:db`, `web-*`, combined with `,` `&` `!`)",
        ),
        (
            "restart nginx dry_run=maybe",
            "`dry_run`: expected true or false, got `maybe`",
        ),
        ("restart nginx now", "unexpected `now`"),
        (
            "deploy shop to qa version=1",
            "`env`: `qa` is not one of: staging, production",
        ),
    ] {
        match error(text) {
            CommandError::Invalid { message: m, .. } => assert_eq!(m, message, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn required_unknown_repeated_and_secret_parameters_are_explained() {
    for (text, message) in [
        ("reboot", "`host` is required"),
        ("restart dry_run=false", "`service` is required"),
        ("deploy shop to staging", "`version` is required"),
        (
            "logs web1 lnes=5",
            "unknown parameter `lnes` (did you mean `lines`?)",
        ),
        (
            "reboot hots=web1",
            "unknown parameter `hots` (did you mean `host`?)",
        ),
        (
            "logs web1 colour=red",
            "unknown parameter `colour` (parameters: host, lines, grep, follow)",
        ),
        ("logs web1 lines=5 lines=6", "`lines` is given twice"),
        (
            "deploy shop to staging version=1 token=abc",
            "`token` is a secret and cannot be typed in chat",
        ),
    ] {
        match error(text) {
            CommandError::Invalid { message: m, .. } => assert_eq!(m, message, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    assert_eq!(
        parse("deploy shop to staging version=1.2.3 hosts=web1,web2").params,
        raw(&[
            ("app", "shop"),
            ("env", "staging"),
            ("version", "1.2.3"),
            ("hosts", "web1,web2")
        ])
    );
}

#[test]
fn unknown_commands_get_a_suggestion_and_empty_text_is_empty() {
    let e = error("rebot web1");
    assert_eq!(
        e,
        CommandError::NoMatch {
            word: "rebot".into(),
            suggestion: Some("reboot".into())
        }
    );
    assert_eq!(
        e.to_string(),
        "unknown command `rebot` (did you mean `reboot`?)"
    );
    assert_eq!(
        error("frobnicate").to_string(),
        "unknown command `frobnicate`"
    );
    assert_eq!(error("  \t "), CommandError::Empty);
}

#[test]
fn two_actions_matching_the_same_text_are_ambiguous_never_guessed() {
    let other = load(&[(
        "actions/app.toml",
        "name = \"app.restart\"\ndescription = \"Restart an app\"\ncommand = [\"true\"]\n\
         [params.app]\ntype = \"string\"\nrequired = true\n[[aliases]]\nformat = \"restart {app}\"\n",
    )]);
    let mine = fixture_catalog();
    let set = CommandSet::new(mine.actions().chain(other.actions()));
    let e = set.parse("restart nginx").unwrap_err();
    assert_eq!(
        e,
        CommandError::Ambiguous {
            candidates: vec![
                "app.restart — restart {app}".into(),
                "service.restart — restart {service} [dry_run={dry_run}]".into()
            ]
        }
    );
    assert_eq!(
        e.to_string(),
        "that could mean several commands: app.restart — restart {app}; \
         service.restart — restart {service} [dry_run={dry_run}]; please be more specific"
    );
    // A value only one of them accepts is not ambiguous.
    assert_eq!(
        set.parse("restart \"my app\"").unwrap().action.as_str(),
        "app.restart"
    );
}

#[test]
fn one_action_through_two_aliases_with_different_parameters_is_ambiguous() {
    // The loader refuses such a catalog; built by hand here.
    let catalog = load(&[(
        "actions/a.toml",
        "name = \"host.logs\"\ndescription = \"Logs\"\ncommand = [\"true\"]\n\
         [params.host]\ntype = \"host\"\n[params.grep]\ntype = \"string\"\n",
    )]);
    let mut logs = (**catalog.action("host.logs").unwrap()).clone();
    logs.aliases = ["tail {host}", "tail {grep}"]
        .map(|f| crate::catalog::Alias {
            format: crate::alias::AliasFormat::parse(f).unwrap(),
            ack: None,
            description: None,
            line: 1,
        })
        .to_vec();
    let set = CommandSet::new([&Arc::new(logs)]);
    assert_eq!(
        set.parse("tail web1").unwrap_err(),
        CommandError::Ambiguous {
            candidates: vec![
                "host.logs — tail {host}".into(),
                "host.logs — tail {grep}".into()
            ]
        }
    );
    assert_eq!(
        set.parse("tail \"out of memory\"").unwrap().params,
        raw(&[("grep", "out of memory")])
    );
}

#[test]
fn one_action_through_two_aliases_with_the_same_parameters_is_not_ambiguous() {
    let c = parse("ping web1");
    assert_eq!(c.action.as_str(), "host.ping");
    assert_eq!(c.format, "ping {host}");
    assert_eq!(parse("ping web1 now").format, "ping {host} [now]");
}

#[test]
fn help_lists_every_alias_sorted_with_its_description() {
    let lines: Vec<String> = commands().help().iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "deploy {app} to {env} — Deploy an application",
            "disk [{path}] [above {warn_above}] — Show disk usage",
            "echo {message} — Print a message back",
            "graph {metric} for {host} [over {range}] — Graph a metric of a host",
            "logs {host} [lines={lines}] [grep={grep}] — Show the last lines of a host's log",
            "ping {host} — Ping a host",
            "ping {host} [now] — Ping a host",
            "reboot {host} — Reboot a host",
            "restart {service} [dry_run={dry_run}] — Restart a service",
        ]
    );
    assert!(commands().help().iter().all(|h| h.params.is_empty()));
}

#[test]
fn help_for_a_word_or_action_shows_its_parameters() {
    let by_word = commands().help_for("logs");
    assert_eq!(by_word, commands().help_for("host.logs"));
    assert_eq!(by_word, commands().help_for("LOGS"));
    let [entry] = by_word.as_slice() else {
        panic!("{by_word:?}")
    };
    assert_eq!(entry.usage, "logs {host} [lines={lines}] [grep={grep}]");
    let params: Vec<String> = entry.params.iter().map(ToString::to_string).collect();
    assert_eq!(
        params,
        [
            "host (host, required): Where to read",
            "lines (integer, at least 1, at most 10000, default 10): How many lines to show",
            "grep (string): Only lines containing this text",
            "follow (boolean, default false)",
        ]
    );
    let graph = commands().help_for("graph");
    assert_eq!(graph[0].params[0].choices, ["cpu", "memory", "disk"]);
    assert_eq!(graph[0].params[2].default.as_deref(), Some("1h"));
    // Secrets cannot be typed in chat, so help does not offer them.
    let deploy = commands().help_for("deploy");
    let names: Vec<&str> = deploy[0].params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["app", "env", "version", "hosts"]);

    assert!(commands().help_for("lgos").is_empty());
    assert_eq!(commands().suggest("lgos").as_deref(), Some("logs"));
    assert_eq!(commands().suggest("Grpah").as_deref(), Some("graph"));
    assert_eq!(commands().suggest("zzzzzz"), None);
}

#[test]
fn a_user_sees_only_the_commands_they_were_given() {
    let catalog = fixture_catalog();
    let set = CommandSet::new(catalog.action("host.reboot"));
    assert_eq!(
        set.parse("logs web1").unwrap_err(),
        CommandError::NoMatch {
            word: "logs".into(),
            suggestion: None
        }
    );
    assert_eq!(set.suggest("lgos"), None);
    assert!(set.help_for("host.logs").is_empty());
    assert_eq!(set.help().len(), 1);
}

/// Loads each file as its own catalog (where no overlap can be found) and
/// looks for overlaps between them.
fn overlap_between(files: &[&str]) -> Vec<String> {
    let catalogs: Vec<Catalog> = files
        .iter()
        .map(|text| load(&[("actions/a.toml", text)]))
        .collect();
    overlaps_among(catalogs.iter().flat_map(Catalog::actions))
        .iter()
        .map(|o| o.example.clone())
        .collect()
}

fn action(name: &str, params: &str, format: &str) -> String {
    format!(
        "name = \"{name}\"\ndescription = \"x\"\ncommand = [\"true\"]\n{params}\n[[aliases]]\nformat = \"{format}\"\n"
    )
}

#[test]
fn overlaps_are_found_word_by_word_with_an_example() {
    let host = "[params.host]\ntype = \"host\"\nrequired = true\n";
    let count = "[params.count]\ntype = \"integer\"\nrequired = true\n";
    let metric =
        "[params.metric]\ntype = \"enum\"\nchoices = [\"cpu\", \"list\"]\nrequired = true\n";
    let message = "[params.message]\ntype = \"string\"\nrequired = true\n";
    let service = "[params.service]\ntype = \"string\"\nrequired = true\n[params.force]\ntype = \"boolean\"\n";
    let cases: &[(&[String], &[&str])] = &[
        // A literal that is a valid value of the other's capture.
        (
            &[
                action("a", host, "reboot {host}"),
                action("b", "", "reboot all"),
            ],
            &["reboot all"],
        ),
        // A literal that is not.
        (
            &[
                action("a", count, "scale {count}"),
                action("b", "", "scale down"),
            ],
            &[],
        ),
        // Enum choices.
        (
            &[
                action("a", metric, "graph {metric}"),
                action("b", "", "graph list"),
            ],
            &["graph list"],
        ),
        (
            &[
                action("a", metric, "graph {metric}"),
                action("b", "", "graph all"),
            ],
            &[],
        ),
        // Two captures with a value in common.
        (
            &[
                action("a", host, "ping {host}"),
                action("b", count, "ping {count}"),
            ],
            &["ping 1"],
        ),
        // Distinct first words never overlap.
        (
            &[
                action("a", host, "reboot {host}"),
                action("b", host, "restart {host}"),
            ],
            &[],
        ),
        // A final text capture absorbs the other's remaining words.
        (
            &[
                action("a", message, "say {message}"),
                action("b", host, "say hello to {host}"),
            ],
            &["say hello to web1"],
        ),
        // Optional groups are expanded.
        (
            &[
                action(
                    "a",
                    "[params.host]\ntype = \"host\"\n[params.count]\ntype = \"integer\"\n",
                    "check [{host}] [times {count}]",
                ),
                action("b", count, "check times {count}"),
            ],
            &["check times 1"],
        ),
        // A named value that one alias spells out is an extra for the other.
        (
            &[
                action("a", service, "restart {service}"),
                action("b", service, "restart {service} force={force}"),
            ],
            &["restart web1 force=true"],
        ),
    ];
    for (files, expected) in cases {
        let texts: Vec<&str> = files.iter().map(String::as_str).collect();
        assert_eq!(overlap_between(&texts), *expected, "{:?}", files);
    }
}

#[test]
fn catalog_check_names_both_overlapping_aliases_and_a_shared_text() {
    let dir = catalog_with(&[
        (
            "actions/a.toml",
            "name = \"app.restart\"\ndescription = \"Restart an app\"\ncommand = [\"true\"]\n\n\
             [params.app]\ntype = \"string\"\nrequired = true\n\n[[aliases]]\nformat = \"restart {app}\"\n",
        ),
        (
            "actions/b.toml",
            "name = \"service.restart_all\"\ndescription = \"Restart every service\"\n\
             command = [\"true\"]\n\n[[aliases]]\nformat = \"Restart all\"\n",
        ),
    ]);
    let shown = Catalog::load(dir.path()).unwrap_err().to_string();
    assert!(
        shown.contains(
            "actions/a.toml:10: aliases[0].format: aliases `restart {app}` (actions/a.toml:10) \
             and `Restart all` (actions/b.toml:6) both match `restart all`"
        ),
        "{shown}"
    );
}

#[test]
fn two_aliases_of_one_action_overlap_only_when_their_parameters_differ() {
    let dir = catalog_with(&[(
        "actions/a.toml",
        "name = \"show\"\ndescription = \"Show\"\ncommand = [\"true\"]\n\
         [params.host]\ntype = \"host\"\n[params.service]\ntype = \"string\"\n\
         [[aliases]]\nformat = \"show {host}\"\n[[aliases]]\nformat = \"show {service}\"\n",
    )]);
    let shown = Catalog::load(dir.path()).unwrap_err().to_string();
    assert!(
        shown.contains("aliases `show {host}` (actions/a.toml:9) and `show {service}` (actions/a.toml:11) both match `show web1`"),
        "{shown}"
    );
    // The fixture's `ping {host}` and `ping {host} [now]` give the same
    // parameters for `ping web1`, so the catalog loaded.
    assert!(overlaps(&fixture_catalog()).is_empty());
}

#[test]
fn the_sample_catalog_has_no_overlaps_and_its_aliases_parse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/catalog");
    let catalog = Catalog::load(&root).unwrap_or_else(|e| panic!("{e}"));
    assert!(overlaps(&catalog).is_empty());
    let set = CommandSet::new(catalog.actions());
    for (text, action, params) in [
        ("uptime", "host.uptime", vec![]),
        (
            "echo hello there",
            "demo.echo",
            vec![("message", "hello there")],
        ),
        (
            "logs /var/log/syslog lines=5 grep=error",
            "host.logs",
            vec![
                ("file", "/var/log/syslog"),
                ("lines", "5"),
                ("grep", "error"),
            ],
        ),
        ("logs lines=5", "host.logs", vec![("lines", "5")]),
        (
            "disk /var above 80",
            "host.disk",
            vec![("path", "/var"), ("warn_above", "80")],
        ),
        ("slow every 2s", "demo.slow", vec![("interval", "2s")]),
        (
            "failover to db2 dry_run=false",
            "db.failover",
            vec![("host", "db2"), ("dry_run", "false")],
        ),
        (
            "restart nginx",
            "service.restart",
            vec![("service", "nginx")],
        ),
    ] {
        let c = set.parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(
            (c.action.as_str(), c.params),
            (action, raw(&params)),
            "{text}"
        );
    }
    assert_eq!(
        set.parse("logs /etc/passwd").unwrap_err().to_string(),
        "`file`: `/etc/passwd` does not match the pattern `^(?:/var/log/[^\\n]+|/tmp/[^\\n]+)$` \
         (usage: `logs [{file}] [lines={lines}] [grep={grep}]`)"
    );
}

/// The values of one generated command and the text that types them.
#[derive(Debug)]
struct Typed {
    text: String,
    expected: Vec<(&'static str, String)>,
    duration: Option<u64>,
    list: Option<Vec<String>>,
    integer: i64,
    number: f64,
}

const TYPES: &str = r#"name = "t.types"
description = "Every type"
command = ["true"]

[params.i]
type = "integer"
[params.n]
type = "number"
[params.b]
type = "boolean"
[params.e]
type = "enum"
choices = ["fast", "safe", "slow-mode"]
[params.d]
type = "duration"
[params.l]
type = "list"
[params.h]
type = "host"
[params.s]
type = "string"

[[aliases]]
format = "set {i} {n} {b} {e} [every {d}] [hosts={l}] on {h} say {s}"
"#;

fn typed() -> impl Strategy<Value = Typed> {
    (
        any::<i64>(),
        -1e12f64..1e12,
        prop::sample::select(vec!["true", "false", "yes", "no", "on", "off"]),
        prop::sample::select(vec!["fast", "safe", "slow-mode"]),
        prop::option::of(0u64..10_000_000),
        prop::option::of(prop::collection::vec("[a-z0-9][a-z0-9.-]{0,8}", 1..5)),
        "[a-z][a-z0-9-]{0,15}(\\.[a-z][a-z0-9-]{0,10}){0,3}",
        prop::collection::vec("[^\\s\\p{Cc}]{1,12}", 1..6),
    )
        .prop_map(|(i, n, b, e, d, l, h, s)| {
            let mut text = format!("set {i} {n} {b} {e}");
            let mut expected = vec![
                ("i", i.to_string()),
                ("n", n.to_string()),
                ("b", b.to_owned()),
                ("e", e.to_owned()),
            ];
            if let Some(secs) = d {
                let shown = humantime::format_duration(Duration::from_secs(secs)).to_string();
                text += &format!(" every {}", quote(&shown));
                expected.push(("d", shown));
            }
            if let Some(items) = &l {
                let joined = items.join(",");
                text += &format!(" hosts={}", quote(&joined));
                expected.push(("l", joined));
            }
            let words: Vec<String> = s.iter().map(|w| quote(w)).collect();
            text += &format!(" on {h} say {}", words.join(" "));
            expected.push(("h", h));
            expected.push(("s", s.join(" ")));
            Typed {
                text,
                expected,
                duration: d,
                list: l,
                integer: i,
                number: n,
            }
        })
}

fn types_set() -> &'static (CommandSet, Arc<Action>) {
    static SET: OnceLock<(CommandSet, Arc<Action>)> = OnceLock::new();
    SET.get_or_init(|| {
        let catalog = load(&[("actions/t.toml", TYPES)]);
        let action = Arc::clone(catalog.action("t.types").unwrap());
        (CommandSet::new([&action]), action)
    })
}

/// Words and characters that chat commands are made of, and some that
/// break them.
fn chat_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("logs".to_owned()),
            Just("disk".to_owned()),
            Just("echo".to_owned()),
            Just("graph".to_owned()),
            Just("for".to_owned()),
            Just("above".to_owned()),
            Just("lines=".to_owned()),
            Just("grep=".to_owned()),
            Just("web1".to_owned()),
            Just("/var".to_owned()),
            Just("80".to_owned()),
            Just(" ".to_owned()),
            Just("=".to_owned()),
            Just("\"".to_owned()),
            Just("'".to_owned()),
            Just("“".to_owned()),
            Just("’".to_owned()),
            Just("\\".to_owned()),
            Just("{".to_owned()),
            Just("}".to_owned()),
            Just("[".to_owned()),
            Just("]".to_owned()),
            Just("\u{7}".to_owned()),
            Just("é".to_owned()),
            Just("İ".to_owned()),
            any::<char>().prop_map(String::from),
        ],
        0..400,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn tokenize_and_parse_never_panic_on_any_text(
        chars in prop::collection::vec(any::<char>(), 0..3000)
    ) {
        let text: String = chars.into_iter().collect();
        let _ = tokenize(&text);
        let _ = commands().parse(&text);
        let _ = commands().help_for(&text);
        let _ = commands().suggest(&text);
    }

    #[test]
    fn tokenize_and_parse_never_panic_on_command_like_text(text in chat_text()) {
        let _ = tokenize(&text);
        let _ = commands().parse(&text);
    }

    #[test]
    fn quoted_words_come_back_as_they_were(words in prop::collection::vec("[^\\p{Cc}]{0,12}", 0..8)) {
        let text: Vec<String> = words.iter().map(|w| quote(w)).collect();
        prop_assert_eq!(tokenize(&text.join(" ")).unwrap(), words);
    }

    /// A text typed from generated values of every type parses back to
    /// those values.
    #[test]
    fn typed_values_round_trip(t in typed()) {
        let (set, action) = types_set();
        let c = set.parse(&t.text).map_err(|e| TestCaseError::fail(format!("{}: {e}", t.text)))?;
        let expected: RawParams =
            t.expected.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
        prop_assert_eq!(&c.params, &expected, "{}", t.text);
        let values = ValidatedParams::validate(&action.params, &c.params)
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(values.get("i"), Some(&ParamValue::Integer(t.integer)));
        prop_assert_eq!(values.get("n"), Some(&ParamValue::Number(t.number)));
        let duration = t.duration.map(|s| ParamValue::Duration(Duration::from_secs(s)));
        prop_assert_eq!(values.get("d"), duration.as_ref());
        let list = t.list.map(ParamValue::List);
        prop_assert_eq!(values.get("l"), list.as_ref());
    }
}
