//! The auditor's report over a large directory: `Engine::report` with
//! 10,000 principals in the configuration, a catalog of 25 teams (four
//! actions each, one taking a host and needing approval) and their
//! policies, on SQLite — the whole report, and the question "who can do
//! what to one team's actions" (`--actions team7.*`).
//!
//! Run: `cargo bench -p switchboard-engine --bench report`
//! Knobs (environment): SB_BENCH_GROUP_SETS (distinct group sets the
//! principals share, as teams do; 0 for nearly one set each; default 200),
//! SB_BENCH_ROUNDS (reports made per case; default 3), SB_BENCH_WHOLE (0
//! to skip the whole report; default 1).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark fails loudly"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use switchboard_core::Catalog;
use switchboard_core::Principal;
use switchboard_core::directory::{Directory, PrincipalEntry, PrincipalKind};
use switchboard_core::report::Selection;
use switchboard_engine::report::ReportOptions;
use switchboard_engine::{Engine, EngineConfig};

const TEAMS: usize = 25;
const PRINCIPALS: usize = 10_000;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Per team: its members run and cancel its actions from the CLI, the API,
/// the web UI or its Slack room; its on-call approves them and runs them on
/// production hosts. A few guards and general rules on top.
fn write_catalog(root: &Path) {
    let actions = root.join("actions");
    let policies = root.join("policies");
    std::fs::create_dir_all(&actions).unwrap();
    std::fs::create_dir_all(&policies).unwrap();
    let mut cedar = String::from(
        r#"@id("everyone-views")
permit (principal, action == Action::"view", resource);
@id("everyone-reads")
permit (principal, action == Action::"run", resource) when { resource.tags.contains("read-only") };
@id("no-frozen")
forbid (principal, action == Action::"run", resource) when { resource.tags.contains("frozen") };
@id("no-unattended-disruption")
forbid (principal, action == Action::"run", resource)
when { resource.tags.contains("disruptive") && principal.kind == "service_account" };
@id("sre-silences")
permit (principal in Group::"sre", action == Action::"silence", resource);
"#,
    );
    for i in 0..TEAMS {
        cedar.push_str(&format!(
            r#"
@id("team{i}-runs-own")
permit (principal in Group::"team{i}", action in [Action::"run", Action::"cancel"], resource)
when {{
  resource.name like "team{i}.*" &&
  (context.door == "cli" || context.door == "api" || context.door == "web" ||
   (context has channel && context.channel == Channel::"slack:#team{i}"))
}};
@id("team{i}-oncall-approves")
permit (principal in Group::"team{i}-oncall", action == Action::"approve", resource)
when {{ resource.needs_approval && resource.name like "team{i}.*" }};
@id("team{i}-oncall-runs-on-prod")
permit (principal in Group::"team{i}-oncall", action == Action::"run", resource)
when {{ resource.name like "team{i}.*" && context has target && context.target in HostGroup::"prod" }};
"#
        ));
        for (name, extra) in [
            ("deploy", "tags = [\"deploy\"]\n"),
            ("logs", "tags = [\"read-only\"]\n"),
            ("legacy-sync", "tags = [\"frozen\"]\n"),
            (
                "restart",
                "tags = [\"disruptive\"]\napproval = { approvers = \"group:team0-oncall\", count = 1 }\n\
                 [params.host]\ntype = \"host\"\nrequired = true\n",
            ),
        ] {
            std::fs::write(
                actions.join(format!("team{i}-{name}.toml")),
                format!(
                    "name = \"team{i}.{name}\"\ndescription = \"{name}\"\ncommand = [\"true\"]\n{extra}"
                ),
            )
            .unwrap();
        }
    }
    std::fs::write(policies.join("teams.cedar"), cedar).unwrap();
}

/// 10,000 principals in 1–4 of the teams' 50 groups (a tenth service
/// accounts); `team{i}-oncall` is inside `team{i}`. With `sets` > 0 their
/// group sets are drawn from that many distinct ones.
fn directory(sets: usize) -> Directory {
    let groups: Vec<String> = (0..TEAMS)
        .flat_map(|i| [format!("team{i}"), format!("team{i}-oncall")])
        .chain(["sre".to_owned()])
        .collect();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        // xorshift64*: deterministic, no dependency.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut draw = move || {
        let count = 1 + (next() % 4) as usize;
        (0..count)
            .map(|_| groups[(next() % groups.len() as u64) as usize].clone())
            .collect::<BTreeSet<String>>()
    };
    let shared: Vec<BTreeSet<String>> = (0..sets).map(|_| draw()).collect();
    let entries = (0..PRINCIPALS)
        .map(|n| {
            let (name, kind) = if n % 10 == 9 {
                (format!("svc:bot{n:05}"), PrincipalKind::ServiceAccount)
            } else {
                (format!("user{n:05}"), PrincipalKind::User)
            };
            PrincipalEntry {
                name: Principal::new(name).unwrap(),
                kind,
                display_name: None,
                groups: if shared.is_empty() {
                    draw()
                } else {
                    shared[n % shared.len()].clone()
                },
            }
        })
        .collect();
    let parents: BTreeMap<String, BTreeSet<String>> = (0..TEAMS)
        .map(|i| {
            (
                format!("team{i}-oncall"),
                BTreeSet::from([format!("team{i}")]),
            )
        })
        .collect();
    Directory::new(entries, parents).unwrap()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[tokio::main]
async fn main() {
    let sets = env_num("SB_BENCH_GROUP_SETS", 200);
    let rounds = env_num("SB_BENCH_ROUNDS", 3).max(1);
    let whole = env_num("SB_BENCH_WHOLE", 1) != 0;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("catalog");
    write_catalog(&root);
    let catalog = Catalog::load(&root).unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = switchboard_store::open(&url).await.unwrap();
    let config = EngineConfig {
        node: "bench".into(),
        directory: directory(sets),
        ..EngineConfig::default()
    };
    let engine = Engine::start(store, catalog, config).await.unwrap();
    eprintln!(
        "{PRINCIPALS} principals, {} group sets, {} actions",
        if sets == 0 {
            "random".to_owned()
        } else {
            sets.to_string()
        },
        TEAMS * 4
    );
    for (case, actions, hosts) in [
        (
            "one team's actions (--actions team7.*)",
            vec!["team7.*"],
            vec![],
        ),
        (
            "one team's actions on two hosts (--actions team7.* --hosts web-1,db-1)",
            vec!["team7.*"],
            vec!["web-1", "db-1"],
        ),
        ("the whole report", vec![], vec![]),
    ] {
        if actions.is_empty() && !whole {
            continue;
        }
        let options = ReportOptions {
            selection: Selection {
                actions: actions.into_iter().map(str::to_owned).collect(),
                hosts: hosts.into_iter().map(str::to_owned).collect(),
            },
            ..ReportOptions::default()
        };
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..rounds {
            let t = Instant::now();
            let report = engine.report(&options).await.unwrap();
            times.push(t.elapsed());
            rows = report.access.len();
        }
        println!(
            "{case}: {rows} rights, median {:.2} s of {rounds}",
            median(times).as_secs_f64()
        );
    }
    engine.shutdown(Duration::from_secs(5)).await;
}
