use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::*;

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/catalog")
}

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

#[test]
fn the_sample_catalog_loads() {
    let c = Catalog::load(&sample()).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = c.actions().map(|a| a.name.as_str()).collect();
    for expected in [
        "demo.echo",
        "demo.slow",
        "host.disk",
        "host.logs",
        "host.uptime",
        "service.restart",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    let logs = c.action("host.logs").unwrap();
    assert_eq!(logs.timeout, Duration::from_secs(30));
    assert_eq!(
        logs.param_names(),
        ["file", "lines", "grep"],
        "in file order"
    );
    assert_eq!(
        logs.aliases[0].format.text,
        "logs [{file}] [lines={lines}] [grep={grep}]"
    );
    assert_eq!(c.version.hash.len(), 16);
    assert_eq!(c.suggest("host.uptim"), Some("host.uptime"));
}

#[test]
fn reports_every_error_with_file_line_and_key() {
    let dir = catalog_with(&[
        (
            "actions/a.toml",
            r#"name = "Bad Name"
description = "x"
command = ["echo", "{{ mesage }}"]
timeout = "soon"
colour = "red"

[params.message]
type = "strin"

[params.n]
type = "integer"
default = "ten"

[[aliases]]
format = "say {nope}"
"#,
        ),
        (
            "actions/sub/b.toml",
            "name = \"b\"\ndescription = \"ok\"\ncommand = [\"scripts/missing.sh\"]\n",
        ),
        ("actions/c.toml", "name = \"c\"\n[broken\n"),
    ]);
    let errors = Catalog::load(dir.path()).unwrap_err().0;
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let expected = [
        "actions/a.toml:1: name: invalid action name `Bad Name`",
        "actions/a.toml:3: command[1]: `mesage` is not a parameter of this action",
        "actions/a.toml:4: timeout: expected a duration such as `30s` or `5m`, got `soon`",
        "actions/a.toml:5: colour: unknown key",
        "actions/a.toml:8: params.message.type: unknown type `strin` (did you mean `string`?",
        "actions/a.toml:12: params.n.default: default does not fit the type: expected a whole number, got `ten`",
        "actions/a.toml:15: aliases[0].format: `{nope}` is not a parameter of this action",
        "actions/c.toml:2: invalid TOML",
        "actions/sub/b.toml:3: command[0]: program `scripts/missing.sh` does not exist",
    ];
    for e in expected {
        assert!(
            shown.iter().any(|s| s.starts_with(e)),
            "no error starting with {e:?} in:\n{}",
            shown.join("\n")
        );
    }
}

#[test]
fn duplicate_names_and_bad_scripts_are_reported() {
    let dir = catalog_with(&[
        (
            "actions/a.toml",
            "name = \"x.y\"\ndescription = \"a\"\ncommand = [\"true\"]\n",
        ),
        (
            "actions/b.toml",
            "name = \"x.y\"\ndescription = \"b\"\ncommand = [\"true\"]\n",
        ),
        (
            "actions/c.toml",
            "name = \"c\"\ndescription = \"c\"\ncommand = [\"scripts/run.sh\"]\n",
        ),
        ("scripts/run.sh", "#!/bin/sh\n"),
    ]);
    let shown = Catalog::load(dir.path()).unwrap_err().to_string();
    assert!(shown.contains("not executable"), "{shown}");
    assert!(
        shown.contains("action `x.y` is already defined in actions/a.toml"),
        "{shown}"
    );
}

#[test]
fn program_cannot_be_a_parameter_and_secrets_have_no_default() {
    let dir = catalog_with(&[(
        "actions/a.toml",
        "name = \"a\"\ndescription = \"a\"\ncommand = [\"{{ p }}\"]\n[params.p]\ntype = \"secret\"\ndefault = \"x\"\n",
    )]);
    let shown = Catalog::load(dir.path()).unwrap_err().to_string();
    assert!(
        shown.contains("the program itself cannot be chosen by a parameter"),
        "{shown}"
    );
    assert!(shown.contains("cannot have a default"), "{shown}");
}

#[test]
fn each_runner_takes_only_its_own_keys() {
    let dir = catalog_with(&[
        (
            "actions/remote.toml",
            "name = \"remote\"\ndescription = \"r\"\nrunner = \"ssh\"\ncommand = [\"uptime\"]\n\
             env = { A = \"b\" }\n[params.host]\ntype = \"host\"\n",
        ),
        (
            "actions/twohosts.toml",
            "name = \"two\"\ndescription = \"t\"\nrunner = \"ssh\"\ncommand = [\"true\"]\n",
        ),
        (
            "actions/graph.toml",
            "name = \"graph.x\"\ndescription = \"g\"\nrunner = \"query\"\ngraph = \"cpu\"\n\
             [params.token]\ntype = \"secret\"\n[params.range]\ntype = \"string\"\n",
        ),
        (
            "actions/web.toml",
            "name = \"web\"\ndescription = \"w\"\nrunner = \"http\"\ncommand = [\"true\"]\n",
        ),
        (
            "graphs.toml",
            "[graphs.cpu]\ntitle = \"CPU\"\nquery = 'up'\nunit = \"\"\n",
        ),
    ]);
    let shown = Catalog::load(dir.path()).unwrap_err().to_string();
    for expected in [
        "only `local` actions have `env`; this one's runner is `ssh`",
        "the hosts of an `ssh` action must be given",
        "an `ssh` action needs exactly one parameter of type `host` (the hosts it runs on); it has 0",
        "a `query` action cannot take a secret",
        "the `range` of a `query` action is how far back to draw: it must be of type `duration`",
        "an action run by `http` has no command",
        "missing: an `http` action needs an `[http]` table",
    ] {
        assert!(
            shown.contains(expected),
            "{expected} missing from:\n{shown}"
        );
    }
}

#[test]
fn a_broken_graphs_file_is_reported_once() {
    let dir = catalog_with(&[
        (
            "actions/graph.toml",
            "name = \"graph.x\"\ndescription = \"g\"\nrunner = \"query\"\ngraph = \"cpu\"\n",
        ),
        ("graphs.toml", "[graphs.cpu]\ntitle = \"CPU\"\n"),
    ]);
    let errors = Catalog::load(dir.path()).unwrap_err().0;
    assert!(
        errors.iter().all(|e| e.file.ends_with("graphs.toml")),
        "{errors:?}"
    );
}

#[test]
fn alerts_toml_is_checked_with_the_catalog() {
    let action = (
        "actions/a.toml",
        "name = \"a\"\ndescription = \"a\"\ncommand = [\"true\"]\n",
    );
    let dir = catalog_with(&[
        action,
        (
            "alerts.toml",
            "[route]\nreceiver = \"ops\"\n[[receivers]]\nname = \"ops\"\n",
        ),
    ]);
    let catalog = Catalog::load(dir.path()).unwrap();
    assert_eq!(catalog.alerts.unwrap().receivers[0].name, "ops");

    // Automation rules name actions of the catalog, and their parameters.
    let dir = catalog_with(&[
        action,
        (
            "alerts.toml",
            "[route]\nreceiver = \"ops\"\n[[receivers]]\nname = \"ops\"\n\
             [[automations]]\nname = \"a\"\nmatchers = ['x=\"y\"']\naction = \"no.such\"\nrun_as = \"u\"\n\
             [[automations]]\nname = \"b\"\nmatchers = ['x=\"y\"']\naction = \"a\"\nrun_as = \"u\"\n\
             params = { nope = \"1\" }\n",
        ),
    ]);
    let shown = Catalog::load(dir.path()).unwrap_err().to_string();
    assert!(
        shown.contains("automations[0].action: unknown action `no.such`"),
        "{shown}"
    );
    assert!(shown.contains("automations[1].params.nope"), "{shown}");

    let dir = catalog_with(&[action, ("alerts.toml", "[route]\nreceiver = \"nobody\"\n")]);
    let shown = Catalog::load(dir.path()).unwrap_err().to_string();
    assert!(shown.contains("alerts.toml:2"), "{shown}");
    assert!(shown.contains("unknown receiver"), "{shown}");

    let dir = catalog_with(&[action]);
    assert!(Catalog::load(dir.path()).unwrap().alerts.is_none());
}

#[test]
fn a_missing_actions_folder_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let shown = Catalog::load(dir.path()).unwrap_err().to_string();
    assert!(shown.contains("no `actions` folder"), "{shown}");
}

#[test]
fn approval_rules_parse_and_explain_mistakes() {
    let good = catalog_with(&[(
        "actions/a.toml",
        "name = \"a\"\ndescription = \"a\"\ncommand = [\"true\"]\napproval = { approvers = [\"group:sre-leads\", \"user:carol\"], count = 2, expires = \"10m\" }\n",
    )]);
    let c = Catalog::load(good.path()).unwrap_or_else(|e| panic!("{e}"));
    let rule = c.action("a").unwrap().approval.clone().unwrap();
    assert_eq!(rule.count, 2);
    assert_eq!(rule.expires, Duration::from_secs(600));
    assert_eq!(
        rule.approvers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["group:sre-leads", "user:carol"]
    );

    let bad = catalog_with(&[(
        "actions/a.toml",
        "name = \"a\"\ndescription = \"a\"\ncommand = [\"true\"]\napproval = { approvers = \"sre\", count = 0, expires = \"soon\" }\n",
    )]);
    let shown = Catalog::load(bad.path()).unwrap_err().to_string();
    assert!(shown.contains("actions/a.toml:4"), "{shown}");
    assert!(
        shown.contains("must be `group:NAME` or `user:NAME`"),
        "{shown}"
    );
    assert!(shown.contains("approval.count"), "{shown}");
    assert!(shown.contains("approval.expires"), "{shown}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// Whatever an action file holds, loading it answers with a catalog or
    /// errors, never a panic.
    #[test]
    fn loader_never_panics(text in "(name|description|command|timeout|params|aliases|type|default|format|\\[|\\]|\\{|\\}|=|\"|\\.|\n| |[a-z0-9]|\\{\\{|\\}\\}){0,80}") {
        let dir = catalog_with(&[("actions/x.toml", &text)]);
        let _ = Catalog::load(dir.path());
    }

    #[test]
    fn loader_never_panics_on_any_text(text in "\\PC{0,200}") {
        let dir = catalog_with(&[("actions/x.toml", &text)]);
        let _ = Catalog::load(dir.path());
    }
}
