use std::collections::BTreeSet;

use super::*;

/// A time written in RFC 3339.
fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap_or_else(|| panic!("not a time: {text}"))
}

fn one(cron: &str, zone: &str) -> Schedule {
    Schedule::new("s", "demo.echo", cron, zone, "svc").unwrap()
}

/// The ticks in `(from, to]`.
fn ticks(s: &Schedule, from: Timestamp, to: Timestamp) -> Vec<Timestamp> {
    let mut out = Vec::new();
    let mut t = from;
    while let Some(next) = s.next_after(t) {
        if next > to {
            break;
        }
        assert!(next > t, "time goes forward");
        out.push(next);
        t = next;
    }
    out
}

#[test]
fn a_full_file_reads_with_its_defaults() {
    let text = r#"
[[schedules]]
name = "nightly"
description = "Check the disks at night"
action = "host.disk"
cron = "30 2 * * *"
timezone = "Europe/Berlin"
params = { path = "/", warn_above = 80, hosts = ["a", "b"] }
run_as = "svc:scheduler"
missed = "run_once"

[[schedules]]
name = "every-second"
action = "demo.echo"
cron = "* * * * * *"
run_as = "admin"
enabled = false
"#;
    let s = Schedules::parse(text).unwrap_or_else(|e| panic!("{e:?}"));
    let nightly = s.get("nightly").unwrap();
    assert_eq!(nightly.timezone, "Europe/Berlin");
    assert_eq!(nightly.missed, Missed::RunOnce);
    assert!(nightly.enabled);
    assert_eq!(nightly.line, 2);
    assert_eq!(nightly.params["path"], serde_json::json!("/"));
    assert_eq!(nightly.params["warn_above"], serde_json::json!(80));
    assert_eq!(nightly.params["hosts"], serde_json::json!(["a", "b"]));
    let fast = s.get("every-second").unwrap();
    assert_eq!(fast.timezone, "UTC");
    assert_eq!(fast.missed, Missed::Skip, "skip is the default");
    assert!(!fast.enabled);
    assert_eq!(fast.line, 12);
    let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["nightly", "every-second"], "file order");
}

#[test]
fn every_problem_is_reported_with_its_line_and_key() {
    let text = r#"[[schedules]]
name = "a"
action = "demo.echo"
crno = "* * * * *"
run_as = "u"

[[schedules]]
name = "b"
action = "demo.echo"
cron = "61 * * * *"
timezone = "Mars/Olympus"
run_as = "u"
missed = "run_one"

[[schedules]]
name = "has space"
action = "demo.echo"
cron = "* * *"
enabled = "yes"

[[schedules]]
name = "dup"
action = "demo.echo"
cron = "@daily"
run_as = "u"

[[schedules]]
name = "dup"
action = "demo.echo"
cron = "0 0 30 2 *"
run_as = "u"
params = 3
"#;
    let errors = Schedules::parse(text).unwrap_err();
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let expect = [
        "schedules.toml:4: schedules[0].crno: unknown key (did you mean `cron`?)",
        "schedules.toml:1: schedules[0].cron: missing",
        "schedules.toml:10: schedules[1].cron: `61 * * * *` is not a cron pattern",
        "schedules.toml:11: schedules[1].timezone: unknown time zone `Mars/Olympus`",
        "schedules.toml:13: schedules[1].missed: must be `run_once` or `skip`, not `run_one` (did you mean `run_once`?)",
        "schedules.toml:16: schedules[2].name: `has space` must be 1 to 64",
        "schedules.toml:15: schedules[2].run_as: missing",
        "schedules.toml:18: schedules[2].cron: `* * *` has 3 fields",
        "schedules.toml:19: schedules[2].enabled: must be true or false",
        "schedules.toml:28: schedules[4].name: schedule `dup` is declared twice",
        "schedules.toml:30: schedules[4].cron: `0 0 30 2 *` never fires",
        "schedules.toml:32: schedules[4].params: must be a table",
    ];
    for e in expect {
        assert!(
            shown.iter().any(|s| s.starts_with(e)),
            "missing `{e}` in:\n{}",
            shown.join("\n")
        );
    }
    assert!(
        errors.iter().all(|e| e.line.is_some() && e.key.is_some()),
        "{shown:?}"
    );
}

#[test]
fn unknown_top_level_keys_and_bad_toml_are_refused() {
    let errors = Schedules::parse("[[schedule]]\nname = \"x\"\n").unwrap_err();
    assert_eq!(
        errors[0].to_string(),
        "schedules.toml:1: schedule: unknown key (did you mean `schedules`?)"
    );
    let errors = Schedules::parse("[[schedules]\n").unwrap_err();
    assert!(errors[0].message.starts_with("invalid TOML"), "{errors:?}");
}

#[test]
fn five_fields_six_with_seconds_and_nicknames() {
    let t = at("2026-11-26T10:07:30Z");
    assert_eq!(
        one("*/15 * * * *", "UTC").next_after(t),
        Some(at("2026-11-26T10:15:00Z"))
    );
    assert_eq!(
        one("* * * * * *", "UTC").next_after(t),
        Some(at("2026-11-26T10:07:31Z"))
    );
    // A time between two seconds: the next whole one.
    assert_eq!(
        one("* * * * * *", "UTC").next_after(Timestamp(t.0 + 400_000)),
        Some(at("2026-11-26T10:07:31Z"))
    );
    assert_eq!(
        one("@hourly", "UTC").next_after(t),
        Some(at("2026-11-26T11:00:00Z"))
    );
    assert_eq!(
        one("@daily", "UTC").next_after(t),
        Some(at("2026-11-27T00:00:00Z"))
    );
    assert_eq!(
        one("0 9 * * MON", "UTC").next_after(t),
        Some(at("2026-11-30T09:00:00Z"))
    );
    // Exactly on a tick: the next one.
    assert_eq!(
        one("*/15 * * * *", "UTC").next_after(at("2026-11-26T10:15:00Z")),
        Some(at("2026-11-26T10:30:00Z"))
    );
}

#[test]
fn the_time_zone_decides_the_wall_clock() {
    let s = one("30 2 * * *", "Europe/Berlin");
    // 02:30 in Berlin in winter is 01:30 UTC.
    assert_eq!(
        s.next_after(at("2026-11-26T10:00:00Z")),
        Some(at("2026-11-27T01:30:00Z"))
    );
    assert_eq!(
        s.local_time(at("2026-11-27T01:30:00Z")),
        "2026-11-27 02:30:00 CET"
    );
    assert_eq!(
        s.latest_at_or_before(at("2026-11-27T01:30:00Z")),
        Some(at("2026-11-27T01:30:00Z")),
        "at a tick, that tick"
    );
    assert_eq!(
        s.latest_at_or_before(at("2026-11-27T01:29:59Z")),
        Some(at("2026-11-26T01:30:00Z"))
    );
}

/// The local dates the ticks fall on, each once.
fn local_dates(s: &Schedule, ticks: &[Timestamp]) -> Vec<String> {
    ticks
        .iter()
        .map(|t| s.local_time(*t)[..10].to_owned())
        .collect()
}

#[test]
fn a_daily_tick_in_the_spring_gap_fires_once_after_it() {
    // Berlin skips 02:00–03:00 on 2026-03-29.
    let s = one("30 2 * * *", "Europe/Berlin");
    let all = ticks(&s, at("2026-03-27T00:00:00Z"), at("2026-03-31T23:00:00Z"));
    assert_eq!(
        local_dates(&s, &all),
        [
            "2026-03-27",
            "2026-03-28",
            "2026-03-29",
            "2026-03-30",
            "2026-03-31"
        ],
        "one tick a day, none lost: {all:?}"
    );
    // At the instant the clock jumps over it.
    assert_eq!(s.local_time(all[2]), "2026-03-29 03:00:00 CEST");
}

#[test]
fn a_daily_tick_in_the_autumn_overlap_fires_once() {
    // Berlin repeats 02:00–03:00 on 2026-10-25.
    let s = one("30 2 * * *", "Europe/Berlin");
    let all = ticks(&s, at("2026-10-23T00:00:00Z"), at("2026-10-27T23:00:00Z"));
    assert_eq!(
        local_dates(&s, &all),
        [
            "2026-10-23",
            "2026-10-24",
            "2026-10-25",
            "2026-10-26",
            "2026-10-27"
        ],
        "one tick a day, never two: {all:?}"
    );
    let unique: BTreeSet<_> = all.iter().collect();
    assert_eq!(unique.len(), all.len());
}

#[test]
fn missed_ticks_are_counted_up_to_a_cap() {
    let s = one("*/10 * * * *", "UTC");
    let from = at("2026-11-26T10:00:00Z");
    assert_eq!(s.ticks_between(from, at("2026-11-26T10:35:00Z"), 100), 3);
    assert_eq!(s.ticks_between(from, at("2026-11-26T10:40:00Z"), 100), 4);
    assert_eq!(s.ticks_between(from, at("2026-11-26T10:09:59Z"), 100), 0);
    assert_eq!(s.ticks_between(from, at("2026-11-27T10:00:00Z"), 5), 5);
}

#[test]
fn trigger_names_are_url_and_origin_safe() {
    for ok in ["nightly", "deploy-on-push", "a.b_c-1"] {
        assert!(valid_trigger_name(ok), "{ok}");
    }
    for bad in ["", "a b", "a/b", "ü", &"x".repeat(65), "a:b"] {
        assert!(!valid_trigger_name(bad), "{bad}");
    }
}

/// A catalog folder with one action `demo.echo` (a required `message`,
/// an integer `times`) and these files.
fn catalog_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("actions")).unwrap();
    std::fs::write(
        dir.path().join("actions/echo.toml"),
        r#"name = "demo.echo"
description = "Echo"
command = ["echo", "{{ message }}"]
[params.message]
type = "string"
required = true
[params.times]
type = "integer"
"#,
    )
    .unwrap();
    for (path, text) in files {
        std::fs::write(dir.path().join(path), text).unwrap();
    }
    dir
}

#[test]
fn the_catalog_checks_the_actions_and_params_of_schedules_and_hooks() {
    let dir = catalog_with(&[
        (
            "schedules.toml",
            r#"[[schedules]]
name = "typo"
action = "demo.ehco"
cron = "@hourly"
run_as = "svc"

[[schedules]]
name = "bad-params"
action = "demo.echo"
cron = "@hourly"
run_as = "svc"
params = { message = "hi", times = "many", colour = "red" }

[[schedules]]
name = "no-message"
action = "demo.echo"
cron = "@hourly"
run_as = "svc"
params = { times = 2 }
"#,
        ),
        (
            "hooks.toml",
            r#"[[hooks]]
name = "h"
action = "demo.echo"
run_as = "svc"
secret = "env:H"
params = { mesage = "{{ body.text }}" }
"#,
        ),
    ]);
    let errors = crate::Catalog::load(dir.path()).unwrap_err();
    let shown: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    let expect = [
        "hooks.toml:1: hooks[0].params.mesage: `mesage` is not a parameter of `demo.echo` (did you mean `message`?)",
        "hooks.toml:1: hooks[0].params: `demo.echo` needs parameter `message`: map it from the request",
        "schedules.toml:1: schedules[0].action: unknown action `demo.ehco` (did you mean `demo.echo`?)",
        "schedules.toml:7: schedules[1].params.colour: `colour` is not a parameter of `demo.echo`",
        "schedules.toml:14: schedules[2].params.message: is required",
    ];
    for e in expect {
        assert!(
            shown.iter().any(|s| s.starts_with(e)),
            "missing `{e}` in:\n{}",
            shown.join("\n")
        );
    }

    // Fixed, both load; the sample of each reads back.
    let dir = catalog_with(&[
        (
            "schedules.toml",
            "[[schedules]]\nname = \"s\"\naction = \"demo.echo\"\ncron = \"@hourly\"\nrun_as = \"svc\"\nparams = { message = \"hi\", times = 2 }\n",
        ),
        (
            "hooks.toml",
            "[[hooks]]\nname = \"h\"\naction = \"demo.echo\"\nrun_as = \"svc\"\nsecret = \"env:H\"\nparams = { message = \"{{ body.text }}\" }\n",
        ),
    ]);
    let catalog = crate::Catalog::load(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        catalog.schedules.get("s").unwrap().params["times"],
        serde_json::json!(2)
    );
    assert!(catalog.hooks.get("h").is_some());
}
