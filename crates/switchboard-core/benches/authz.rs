//! The cost of authorization: one `Policies::decide` with the sample
//! catalog's policies and with 100 generated ones in force, and
//! `Policies::who_can` over 10,000 principals, for one door and for all,
//! with random group sets and with 200 shared ones.
//!
//! Run: `cargo bench -p switchboard-core --bench authz`
//! (decisions only: `cargo bench -p switchboard-core --bench authz -- decide`)
//!
//! The generated policies are what a catalog shared by 25 teams looks like:
//! per team, `team{i}` runs and cancels `team{i}.*` through some doors or its
//! chat room, `team{i}-oncall` approves them and runs them on `prod` hosts;
//! ten `forbid`s on tags, kinds and doors; views, read-only runs and
//! silences. Principals are in 1–4 of the 50 team groups.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark fails loudly"
)]

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use cedar_policy::{
    Authorizer, Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicySet, Request,
    RestrictedExpression, Schema,
};
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use switchboard_core::directory::{Directory, PrincipalEntry, PrincipalKind};
use switchboard_core::policy::{Identity, Policies, PolicyFile, Question, SCHEMA, Verb};
use switchboard_core::{Action, Catalog, Origin, Principal};

const TEAMS: usize = 25;
const PRINCIPALS: usize = 10_000;

/// 100 policies: 3 per team (75), 10 forbids, 15 others.
fn generated_policies() -> String {
    let mut out = String::new();
    for i in 0..TEAMS {
        out.push_str(&format!(
            r#"
@id("team{i}-runs-own")
@description("team{i} runs and cancels its own actions from the CLI, the API, the web UI or its room.")
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
when {{
  resource.name like "team{i}.*" &&
  context has target && context.target in HostGroup::"prod" &&
  context.door != "webhook"
}};
"#
        ));
    }
    out.push_str(
        r#"
@id("no-unattended-critical-runs")
forbid (principal, action == Action::"run", resource)
when {
  resource.tags.contains("critical") &&
  (principal.kind == "service_account" || context.door == "schedule" || context.door == "alert")
};

@id("frozen-never-runs")
forbid (principal, action == Action::"run", resource)
when { resource.tags.contains("frozen") };

@id("decommissioned")
forbid (principal, action in [Action::"run", Action::"approve"], resource)
when { resource.tags.contains("decommissioned") };

@id("no-disruptive-webhooks")
forbid (principal, action == Action::"run", resource)
when { resource.tags.contains("disruptive") && context.door == "webhook" };

@id("prod-from-chat-needs-a-room")
forbid (principal, action == Action::"run", resource)
when {
  context has target && context.target in HostGroup::"prod" &&
  context.door == "chat" && !(context has channel)
};

@id("pci-only-team0")
forbid (principal, action == Action::"run", resource)
when { resource.tags.contains("pci") && !(principal in Group::"team0") };

@id("people-approve")
forbid (principal, action == Action::"approve", resource)
when { principal.kind == "service_account" };

@id("no-alerts-on-dr")
forbid (principal, action == Action::"run", resource)
when {
  resource.tags.contains("db") && context.door == "alert" &&
  context has target && context.target in HostGroup::"dr"
};

@id("schedules-do-not-cancel-critical")
forbid (principal, action == Action::"cancel", resource)
when { resource.tags.contains("critical") && context.door == "schedule" };

@id("no-silence-by-webhook")
forbid (principal, action == Action::"silence", resource)
when { context.door == "webhook" };

@id("everyone-views-the-catalog")
permit (principal, action == Action::"view", resource);

@id("everyone-runs-read-only")
permit (principal, action == Action::"run", resource)
when { resource.tags.contains("read-only") };

@id("requesters-cancel-their-own")
permit (principal, action == Action::"cancel", resource)
when { context has requester && context.requester == principal };
"#,
    );
    for i in 0..12 {
        out.push_str(&format!(
            r#"
@id("team{i}-oncall-silences")
permit (principal in Group::"team{i}-oncall", action == Action::"silence", resource)
when {{ context.door == "cli" || context.door == "web" }};
"#
        ));
    }
    out
}

/// A catalog folder with a few team actions (no policies: they are loaded
/// separately).
fn team_catalog(dir: &Path) -> Catalog {
    let actions = dir.join("actions");
    std::fs::create_dir_all(&actions).unwrap();
    let files = [
        (
            "team7-deploy.toml",
            "name = \"team7.deploy\"\ndescription = \"Deploy\"\ncommand = [\"true\"]\ntimeout = \"10m\"\ntags = [\"deploy\"]\n",
        ),
        (
            "team7-restart.toml",
            "name = \"team7.restart\"\ndescription = \"Restart\"\ncommand = [\"true\", \"{{ host }}\"]\ntimeout = \"2m\"\ntags = [\"service\", \"disruptive\"]\napproval = { approvers = \"group:team7-oncall\", count = 1, expires = \"30m\" }\n\n[params.host]\ntype = \"host\"\nrequired = true\ndescription = \"Where\"\n",
        ),
        (
            "team7-legacy-sync.toml",
            "name = \"team7.legacy-sync\"\ndescription = \"Frozen\"\ncommand = [\"true\"]\ntags = [\"sync\", \"frozen\"]\n",
        ),
        (
            "team20-deploy.toml",
            "name = \"team20.deploy\"\ndescription = \"Deploy\"\ncommand = [\"true\"]\ntags = [\"deploy\"]\n",
        ),
    ];
    for (file, text) in files {
        std::fs::write(actions.join(file), text).unwrap();
    }
    Catalog::load(dir).unwrap()
}

fn sample_catalog() -> Catalog {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/catalog");
    Catalog::load(&root).unwrap()
}

fn action(catalog: &Catalog, name: &str) -> Arc<Action> {
    catalog.action(name).unwrap().clone()
}

fn identity(name: &str, groups: &[&str]) -> Identity {
    Identity {
        principal: Principal::new(name).unwrap(),
        kind: PrincipalKind::User,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

fn group_names() -> Vec<String> {
    (0..TEAMS)
        .flat_map(|i| [format!("team{i}"), format!("team{i}-oncall")])
        .collect()
}

/// 10,000 principals in 1–4 direct groups each (a tenth service accounts);
/// `team{i}-oncall` is inside `team{i}`. With `shared_sets`, the group sets
/// are drawn from that many distinct ones, as in a directory where people
/// of a team share their groups; otherwise nearly every set is unique.
fn population(shared_sets: Option<usize>) -> (Vec<Identity>, Directory) {
    let groups = group_names();
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
    let sets: Vec<BTreeSet<String>> = (0..shared_sets.unwrap_or(0)).map(|_| draw()).collect();
    let entries: Vec<PrincipalEntry> = (0..PRINCIPALS)
        .map(|n| {
            let direct = if sets.is_empty() {
                draw()
            } else {
                sets[n % sets.len()].clone()
            };
            let (name, kind) = if n % 10 == 9 {
                (format!("svc:bot{n:05}"), PrincipalKind::ServiceAccount)
            } else {
                (format!("user{n:05}"), PrincipalKind::User)
            };
            PrincipalEntry {
                name: Principal::new(name).unwrap(),
                kind,
                display_name: None,
                groups: direct,
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
    let directory = Directory::new(entries, parents).unwrap();
    let known = directory
        .principals()
        .map(|p| Identity {
            principal: p.name.clone(),
            kind: p.kind,
            groups: directory.expand_groups(&p.groups),
        })
        .collect();
    (known, directory)
}

fn bench_load(c: &mut Criterion) {
    let text = generated_policies();
    let files = [PolicyFile {
        path: PathBuf::from("policies/teams.cedar"),
        text,
    }];
    let mut g = c.benchmark_group("load");
    g.sample_size(10);
    g.bench_function("policies_new/100", |b| {
        b.iter(|| Policies::new(black_box(&files)).unwrap());
    });
    g.finish();
}

fn bench_decide(c: &mut Criterion) {
    let api = Origin::api();
    let schedule = Origin::new("schedule").unwrap();
    let webhook = Origin::new("webhook").unwrap();
    let room = Origin::new("chat:slack:#team7").unwrap();
    let hosts = ["prod".to_owned(), "eu".to_owned()];

    // 100 generated policies + the built-in one.
    let dir = tempfile::tempdir().unwrap();
    let catalog = team_catalog(dir.path());
    let policies = Policies::new(&[PolicyFile {
        path: PathBuf::from("policies/teams.cedar"),
        text: generated_policies(),
    }])
    .unwrap();
    assert_eq!(policies.policies().count(), 101);
    let alice = identity(
        "alice",
        &["team7", "team7-oncall", "team3", "team12-oncall", "team19"],
    );
    let deploy = action(&catalog, "team7.deploy");
    let restart = action(&catalog, "team7.restart");
    let frozen = action(&catalog, "team7.legacy-sync");
    let other = action(&catalog, "team20.deploy");
    let mut on_prod = Question::new(Verb::Run, Some(&restart), &room);
    on_prod.target = Some(("db-7", &hosts[..]));
    let cases = [
        (
            "allowed",
            Question::new(Verb::Run, Some(&deploy), &api),
            true,
        ),
        (
            "denied",
            Question::new(Verb::Run, Some(&other), &api),
            false,
        ),
        (
            "forbidden",
            Question::new(Verb::Run, Some(&frozen), &api),
            false,
        ),
        ("allowed_chat_prod_target", on_prod, true),
    ];
    let mut g = c.benchmark_group("decide/101_policies");
    for (name, q, expect) in &cases {
        let d = policies.decide(&alice, q);
        assert_eq!(d.allowed, *expect, "{name}: {}", d.reason);
        if *name == "forbidden" {
            assert!(!d.policies.is_empty(), "{}", d.reason);
        }
        g.bench_function(*name, |b| {
            b.iter(|| policies.decide(black_box(&alice), black_box(q)));
        });
    }
    g.finish();

    // The sample catalog: 7 policies + the built-in one.
    let sample = sample_catalog();
    assert_eq!(sample.policies.policies().count(), 8);
    let bob = identity("bob", &["sre", "sre-leads", "ops", "oncall", "staff"]);
    let restart = action(&sample, "service.restart");
    let failover = action(&sample, "db.failover");
    let cases = [
        (
            "allowed",
            Question::new(Verb::Run, Some(&restart), &api),
            true,
        ),
        (
            "denied",
            Question::new(Verb::Run, Some(&restart), &webhook),
            false,
        ),
        (
            "forbidden",
            Question::new(Verb::Run, Some(&failover), &schedule),
            false,
        ),
    ];
    let mut g = c.benchmark_group("decide/7_policies");
    for (name, q, expect) in &cases {
        let d = sample.policies.decide(&bob, q);
        assert_eq!(d.allowed, *expect, "{name}: {}", d.reason);
        g.bench_function(*name, |b| {
            b.iter(|| sample.policies.decide(black_box(&bob), black_box(q)));
        });
    }
    g.finish();
}

/// What `decide` does, in parts, with Cedar directly: building the entities
/// and request (validated against the schema), then evaluating.
fn bench_parts(c: &mut Criterion) {
    let (schema, _) = Schema::from_cedarschema_str(SCHEMA).unwrap();
    let t = |n: &str| EntityTypeName::from_str(n).unwrap();
    let (user, group, automation, action_type) =
        (t("User"), t("Group"), t("Automation"), t("Action"));
    let uid = |ty: &EntityTypeName, id: &str| {
        EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
    };
    let builtin = "permit (principal == User::\"admin\", action, resource);\n";
    let set = PolicySet::from_str(&format!("{builtin}{}", generated_policies())).unwrap();
    assert_eq!(set.policies().count(), 101);
    let groups = ["team7", "team7-oncall", "team3", "team12-oncall", "team19"];
    let build = |schema: Option<&Schema>| {
        let parents: HashSet<EntityUid> = groups.iter().map(|g| uid(&group, g)).collect();
        let mut entities: Vec<Entity> = parents
            .iter()
            .map(|g| Entity::new_no_attrs(g.clone(), HashSet::new()))
            .collect();
        let principal = uid(&user, "alice");
        entities.push(
            Entity::new(
                principal.clone(),
                HashMap::from([(
                    "kind".to_owned(),
                    RestrictedExpression::new_string("user".to_owned()),
                )]),
                parents,
            )
            .unwrap(),
        );
        let resource = uid(&automation, "team7.deploy");
        entities.push(
            Entity::new(
                resource.clone(),
                HashMap::from([
                    (
                        "name".to_owned(),
                        RestrictedExpression::new_string("team7.deploy".to_owned()),
                    ),
                    (
                        "tags".to_owned(),
                        RestrictedExpression::new_set([RestrictedExpression::new_string(
                            "deploy".to_owned(),
                        )]),
                    ),
                    (
                        "runner".to_owned(),
                        RestrictedExpression::new_string("local".to_owned()),
                    ),
                    (
                        "needs_approval".to_owned(),
                        RestrictedExpression::new_bool(false),
                    ),
                ]),
                HashSet::new(),
            )
            .unwrap(),
        );
        let context = Context::from_pairs([(
            "door".to_owned(),
            RestrictedExpression::new_string("api".to_owned()),
        )])
        .unwrap();
        let entities = Entities::from_entities(entities, schema).unwrap();
        let request = Request::new(
            principal,
            uid(&action_type, "run"),
            resource,
            context,
            schema,
        )
        .unwrap();
        (entities, request)
    };
    let mut g = c.benchmark_group("decide_parts/101_policies");
    g.bench_function("entities_and_request_with_schema", |b| {
        b.iter(|| build(Some(black_box(&schema))));
    });
    g.bench_function("entities_and_request_without_schema", |b| {
        b.iter(|| build(None));
    });
    let (entities, request) = build(Some(&schema));
    let authorizer = Authorizer::new();
    let response = authorizer.is_authorized(&request, &set, &entities);
    assert_eq!(response.decision(), cedar_policy::Decision::Allow);
    g.bench_function("is_authorized", |b| {
        b.iter(|| authorizer.is_authorized(black_box(&request), black_box(&set), &entities));
    });
    g.finish();
}

fn bench_who_can(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let catalog = team_catalog(dir.path());
    let policies = Policies::new(&[PolicyFile {
        path: PathBuf::from("policies/teams.cedar"),
        text: generated_policies(),
    }])
    .unwrap();
    let deploy = action(&catalog, "team7.deploy");
    let (known, directory) = population(None);
    let (known_in_teams, directory_in_teams) = population(Some(200));
    let mut g = c.benchmark_group("who_can/10k_principals");
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.warm_up_time(Duration::from_secs(1));
    // One call takes about 0.8 s for one door and 27 s for all of them on
    // the 2-core machine of docs/benchmarks.md: one call per sample.
    for (name, shared, door, secs) in [
        ("door_api", false, Some("api"), 8),
        ("all_doors", false, None, 250),
        ("200_group_sets/door_api", true, Some("api"), 3),
        ("200_group_sets/all_doors", true, None, 8),
    ] {
        let (known, directory) = if shared {
            (&known_in_teams, &directory_in_teams)
        } else {
            (&known, &directory)
        };
        g.measurement_time(Duration::from_secs(secs));
        // Said once, when this benchmark is selected, so that a reader
        // sees what was answered.
        let mut said = false;
        g.bench_function(name, |b| {
            if !said {
                said = true;
                let w = policies
                    .who_can(known, directory, Verb::Run, Some(&deploy), None, door)
                    .unwrap();
                assert!(!w.principals.is_empty());
                eprintln!(
                    "\nwho_can {name}: {} doors, {} principals examined; {} principals and {} groups may",
                    w.doors.len(),
                    w.examined,
                    w.principals.len(),
                    w.groups.len()
                );
            }
            b.iter(|| {
                policies
                    .who_can(
                        black_box(known),
                        directory,
                        Verb::Run,
                        Some(&deploy),
                        None,
                        door,
                    )
                    .unwrap()
            });
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    bench_load,
    bench_decide,
    bench_parts,
    bench_who_can
);
criterion_main!(benches);
