use std::path::Path;

use proptest::prelude::*;

use super::*;
use std::collections::BTreeMap;

use crate::catalog::Catalog;
use crate::directory::Directory;

fn sample() -> Catalog {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/catalog");
    Catalog::load(&root).unwrap_or_else(|e| panic!("{e}"))
}

struct Who {
    name: &'static str,
    kind: PrincipalKind,
    groups: &'static [&'static str],
}

const ALICE: Who = Who {
    name: "alice",
    kind: PrincipalKind::User,
    groups: &["sre", "ops"],
};
const CAROL: Who = Who {
    name: "carol",
    kind: PrincipalKind::User,
    groups: &["sre-leads", "sre"],
};
const BOB: Who = Who {
    name: "bob",
    kind: PrincipalKind::User,
    groups: &["dev"],
};
const DEPLOY_BOT: Who = Who {
    name: "deploy-bot",
    kind: PrincipalKind::ServiceAccount,
    groups: &["sre"],
};
const ADMIN: Who = Who {
    name: "admin",
    kind: PrincipalKind::User,
    groups: &[],
};

fn decide(
    c: &Catalog,
    who: &Who,
    verb: Verb,
    action: &str,
    origin: &str,
    target: Option<&str>,
    requester: Option<&str>,
) -> Decision {
    let origin = Origin::new(origin).unwrap();
    let requester = requester.map(|r| Principal::new(r).unwrap());
    let action = (!verb.is_service_wide()).then(|| c.action(action).unwrap().as_ref());
    let mut q = Question::new(verb, action, &origin);
    q.target = target.map(|t| (t, &[][..]));
    q.requester = requester.as_ref();
    c.policies.decide(&identity(who), &q)
}

fn identity(who: &Who) -> Identity {
    Identity {
        principal: Principal::new(who.name).unwrap(),
        kind: who.kind,
        groups: who.groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

/// who, verb, action, door, target, requester, allowed, deciding policy.
type Row<'a> = (
    &'a Who,
    Verb,
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    bool,
    &'a str,
);

/// The sample policies over principal × verb × action × door × target: each
/// row is what the user would see, and which policy decided it.
#[test]
fn decision_matrix_of_the_sample_policies() {
    use Verb::*;
    let c = sample();
    #[rustfmt::skip]
    let rows: &[Row] = &[
        // who, verb, action, door, target, requester, allowed, deciding policy
        (&BOB, View, "service.restart", "api", None, None, true, "everyone-views-the-catalog"),
        (&BOB, Run, "host.uptime", "chat:slack:#random", None, None, true, "everyone-runs-read-only-and-demo"),
        (&BOB, Run, "demo.echo", "web", None, None, true, "everyone-runs-read-only-and-demo"),
        (&BOB, Run, "service.restart", "cli", None, None, false, ""),
        (&BOB, Approve, "db.failover", "cli", None, Some("alice"), false, ""),
        (&BOB, Cancel, "service.restart", "api", None, Some("bob"), true, "requesters-cancel-their-own"),
        (&BOB, Cancel, "service.restart", "api", None, Some("alice"), false, ""),
        (&ALICE, Run, "service.restart", "cli", None, None, true, "sre-runs-fleet-actions"),
        (&ALICE, Run, "service.restart", "chat:slack:#ops", None, None, true, "sre-runs-fleet-actions"),
        (&ALICE, Run, "service.restart", "chat:slack:#random", None, None, false, ""),
        (&ALICE, Run, "service.restart", "chat:mattermost:#ops", None, None, false, ""),
        (&ALICE, Run, "db.failover", "cli", Some("db-2"), None, true, "sre-runs-fleet-actions"),
        (&ALICE, Run, "db.failover", "schedule", Some("db-2"), None, false, "no-unattended-critical-runs"),
        (&ALICE, Approve, "db.failover", "cli", Some("db-2"), Some("bob"), false, ""),
        (&ALICE, Cancel, "db.failover", "api", None, Some("bob"), true, "sre-runs-fleet-actions"),
        (&CAROL, Approve, "db.failover", "web", Some("db-2"), Some("alice"), true, "sre-leads-approve"),
        (&CAROL, Approve, "service.restart", "web", None, Some("alice"), false, ""),
        (&DEPLOY_BOT, Run, "service.restart", "api", None, None, true, "sre-runs-fleet-actions"),
        (&DEPLOY_BOT, Run, "db.failover", "api", Some("db-2"), None, false, "no-unattended-critical-runs"),
        (&DEPLOY_BOT, Admin, "", "api", None, None, false, ""),
        (&ADMIN, Admin, "", "api", None, None, true, BUILTIN_ADMIN),
        (&ADMIN, Run, "service.restart", "chat:slack:#random", None, None, true, BUILTIN_ADMIN),
        (&ADMIN, Run, "db.failover", "alert", Some("db-2"), None, false, "no-unattended-critical-runs"),
    ];
    for (who, verb, action, origin, target, requester, allowed, policy) in rows {
        let d = decide(&c, who, *verb, action, origin, *target, *requester);
        let row = format!("{} {verb} {action} via {origin} → {d:?}", who.name);
        assert_eq!(d.allowed, *allowed, "{row}");
        let ids: Vec<&str> = d.policies.iter().map(|p| p.id.as_str()).collect();
        if policy.is_empty() {
            assert!(ids.is_empty(), "{row}");
            assert!(d.reason.starts_with("no policy permits"), "{row}");
        } else {
            assert!(ids.contains(policy), "{row}");
        }
        assert!(d.errors.is_empty(), "{row}");
    }
}

#[test]
fn reasons_name_the_policy_and_its_place() {
    let c = sample();
    let d = decide(
        &c,
        &ALICE,
        Verb::Run,
        "db.failover",
        "alert",
        Some("db-1"),
        None,
    );
    assert_eq!(
        d.reason,
        "forbidden by `no-unattended-critical-runs` (policies/guards.cedar:3)"
    );
    let d = decide(
        &c,
        &BOB,
        Verb::Run,
        "db.failover",
        "cli",
        Some("db-1"),
        None,
    );
    assert_eq!(d.reason, "no policy permits bob to run db.failover on db-1");
    let d = decide(&c, &ALICE, Verb::Run, "service.restart", "cli", None, None);
    assert_eq!(
        d.reason,
        "permitted by `sre-runs-fleet-actions` (policies/sre.cedar:3)"
    );
}

#[test]
fn targets_are_checked_against_host_groups() {
    let c = sample();
    let text = r#"
@id("prod-only")
permit (principal in Group::"sre", action == Action::"run", resource)
when { context has target && context.target in HostGroup::"prod" };
"#;
    let policies = Policies::new(&[PolicyFile {
        path: "policies/p.cedar".into(),
        text: text.to_owned(),
    }])
    .unwrap_or_else(|e| panic!("{e:?}"));
    let subject = &identity(&ALICE);
    let origin = Origin::cli();
    let action = c.action("db.failover").unwrap();
    let mut q = Question::new(Verb::Run, Some(action), &origin);
    let prod = ["prod".to_owned(), "db".to_owned()];
    q.target = Some(("db-1", &prod));
    assert!(policies.decide(subject, &q).allowed);
    let staging = ["staging".to_owned()];
    q.target = Some(("db-9", &staging));
    assert!(!policies.decide(subject, &q).allowed);
    q.target = None;
    assert!(!policies.decide(subject, &q).allowed);
}

#[test]
fn who_can_lists_principals_groups_and_doors() {
    let c = sample();
    let dir = Directory::new(
        Vec::new(),
        BTreeMap::from([("sre-leads".to_owned(), BTreeSet::from(["sre".to_owned()]))]),
    )
    .unwrap();
    let known: Vec<Identity> = [&ALICE, &BOB, &CAROL, &DEPLOY_BOT, &ADMIN]
        .map(identity)
        .to_vec();
    let restart = c.action("service.restart").unwrap();
    let w = c
        .policies
        .who_can(&known, &dir, Verb::Run, Some(restart), None, None)
        .unwrap();
    let names: Vec<&str> = w.principals.iter().map(|g| g.principal.as_str()).collect();
    assert_eq!(names, ["alice", "carol", "deploy-bot", "admin"]);
    assert_eq!(
        w.principals[0].doors,
        ["api", "cli", "web", "chat:slack:#ops"],
        "sre runs from the CLI, the API, the web and #ops only"
    );
    assert_eq!(w.principals[0].policies[0].id, "sre-runs-fleet-actions");
    assert!(w.everyone.is_none());
    let groups: Vec<&str> = w.groups.iter().map(|g| g.group.as_str()).collect();
    assert_eq!(groups, ["sre", "sre-leads"], "sre-leads are in sre");

    let failover = c.action("db.failover").unwrap();
    let w = c
        .policies
        .who_can(
            &known,
            &dir,
            Verb::Approve,
            Some(failover),
            Some(("db-1", &[][..])),
            Some("web"),
        )
        .unwrap();
    let names: Vec<&str> = w.principals.iter().map(|g| g.principal.as_str()).collect();
    assert_eq!(names, ["carol", "admin"]);

    let echo = c.action("demo.echo").unwrap();
    let w = c
        .policies
        .who_can(&known, &dir, Verb::Run, Some(echo), None, Some("chat"))
        .unwrap();
    assert_eq!(w.principals.len(), 5);
    assert_eq!(
        w.everyone.unwrap().policies[0].id,
        "everyone-runs-read-only-and-demo"
    );

    assert!(
        c.policies
            .who_can(&known, &dir, Verb::Run, Some(echo), None, Some("pigeon"))
            .unwrap_err()
            .contains("unknown door")
    );

    // Principals alike in kind and groups share one evaluation, unless a
    // policy names one of them.
    let policies = Policies::new(&[PolicyFile {
        path: "policies/p.cedar".into(),
        text: "permit (principal == User::\"dave\", action == Action::\"run\", resource);\n"
            .to_owned(),
    }])
    .unwrap();
    let twin = |name: &str| Identity {
        principal: Principal::new(name).unwrap(),
        kind: PrincipalKind::User,
        groups: BTreeSet::from(["dev".to_owned()]),
    };
    let known = [twin("erin"), twin("dave"), twin("frank")];
    let w = policies
        .who_can(&known, &dir, Verb::Run, Some(echo), None, Some("api"))
        .unwrap();
    let names: Vec<&str> = w.principals.iter().map(|g| g.principal.as_str()).collect();
    assert_eq!(names, ["dave"]);
}

#[test]
fn a_policy_can_demand_approval() {
    let c = sample();
    let text = r#"
@id("devs-restart-with-a-lead")
@approval("group:sre-leads, user:carol")
@approval_count("2")
@approval_expires("1h")
permit (principal in Group::"dev", action == Action::"run", resource)
when { resource.name == "service.restart" };
"#;
    let policies = Policies::new(&[PolicyFile {
        path: "policies/p.cedar".into(),
        text: text.to_owned(),
    }])
    .unwrap_or_else(|e| panic!("{e:?}"));
    let rule = policies
        .policy("devs-restart-with-a-lead")
        .unwrap()
        .approval
        .clone()
        .unwrap();
    assert_eq!(rule.count, 2);
    assert_eq!(rule.expires, std::time::Duration::from_secs(3600));
    let origin = Origin::cli();
    let q = Question::new(
        Verb::Run,
        Some(c.action("service.restart").unwrap()),
        &origin,
    );
    let d = policies.decide(&identity(&BOB), &q);
    assert!(d.allowed);
    assert_eq!(d.approval, Some(rule), "every permitting policy demands it");
    // The admin is also let through by the built-in policy, which demands nothing.
    let d = policies.decide(&identity(&ADMIN), &q);
    assert!(d.allowed);
    assert_eq!(d.approval, None);

    let shown = errors_of(
        "@approval(\"sre\")\n@approval_count(\"two\")\npermit (principal, action, resource);\n\n@approval(\"group:x\")\nforbid (principal, action, resource);\n\n@approval_expires(\"1h\")\npermit (principal, action, resource);\n",
    );
    assert!(shown.iter().any(|e| e.starts_with("policies/x.cedar:1: @approval: ") && e.contains("whole number")), "{shown:?}");
    assert!(
        shown
            .iter()
            .any(|e| e.starts_with("policies/x.cedar:5: ") && e.contains("only a `permit`")),
        "{shown:?}"
    );
    assert!(
        shown
            .iter()
            .any(|e| e.starts_with("policies/x.cedar:8: ") && e.contains("need `@approval")),
        "{shown:?}"
    );
    let shown = errors_of("@approval(\"sre\")\npermit (principal, action, resource);\n");
    assert!(
        shown
            .iter()
            .any(|e| e.contains("must be `group:NAME` or `user:NAME`")),
        "{shown:?}"
    );
}

fn errors_of(text: &str) -> Vec<String> {
    Policies::new(&[PolicyFile {
        path: "policies/x.cedar".into(),
        text: text.to_owned(),
    }])
    .unwrap_err()
    .iter()
    .map(ToString::to_string)
    .collect()
}

#[test]
fn mistakes_are_reported_with_file_and_line() {
    let shown = errors_of("permit (principal, action, resource)\nwhen { 1 + };\n");
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert!(shown[0].starts_with("policies/x.cedar:2: "), "{shown:?}");

    let shown = errors_of(
        "// two policies\npermit (principal, action == Action::\"run\", resource)\nwhen { resource.tagz.contains(\"x\") };\n\npermit (principal in Grop::\"x\", action == Action::\"reboot\", resource);\n",
    );
    assert!(
        shown.iter().any(|e| e.starts_with("policies/x.cedar:3: ")
            && e.contains("`tagz`")
            && e.contains("did you mean `tags`")),
        "{shown:?}"
    );
    assert!(
        shown
            .iter()
            .any(|e| e.starts_with("policies/x.cedar:5: ") && e.contains("`Grop`")),
        "{shown:?}"
    );

    let shown = errors_of(
        "@id(\"a\")\npermit (principal, action, resource);\n@id(\"a\")\nforbid (principal, action, resource);\n",
    );
    assert!(
        shown
            .iter()
            .any(|e| e.contains("x.cedar:3")
                && e.contains("`a` is already used at policies/x.cedar:1")),
        "{shown:?}"
    );

    let shown = errors_of("permit (principal == ?principal, action, resource);\n");
    assert!(shown.iter().any(|e| e.contains("templates")), "{shown:?}");
}

#[test]
fn the_builtin_admin_policy_is_listed_first() {
    let c = sample();
    let first = c.policies.policies().next().unwrap();
    assert_eq!(first.id, BUILTIN_ADMIN);
    assert_eq!(first.location, "built in");
    assert!(c.policies.policy("sre-leads-approve").is_some());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// Whatever a policy file holds, loading it answers or errors, never panics.
    #[test]
    fn policy_loading_never_panics(text in "(permit|forbid|principal|action|resource|when|unless|in|==|has|like|\\(|\\)|\\{|\\}|;|,|\\.|\"|::|Action|User|Group|@id|\n| |[a-z0-9*]){0,60}") {
        let _ = Policies::new(&[PolicyFile { path: "policies/p.cedar".into(), text }]);
    }

    #[test]
    fn policy_loading_never_panics_on_any_text(text in "\\PC{0,200}") {
        let _ = Policies::new(&[PolicyFile { path: "policies/p.cedar".into(), text }]);
    }
}

/// The sample's policies, and some whose scopes name a user, a group, a
/// type and several verbs, for the slicing's equivalence below.
fn policies_with_every_kind_of_scope() -> Policies {
    let mut files: Vec<PolicyFile> = ["everyone", "guards", "sre"]
        .iter()
        .map(|name| {
            let path = format!("policies/{name}.cedar");
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/catalog");
            PolicyFile {
                text: std::fs::read_to_string(root.join(&path)).unwrap(),
                path: path.into(),
            }
        })
        .collect();
    files.push(PolicyFile {
        path: "policies/scopes.cedar".into(),
        text: r#"
@id("carol-approves")
permit (principal == User::"carol", action == Action::"approve", resource);
@id("dev-runs-and-cancels-demo")
permit (principal in Group::"dev", action in [Action::"run", Action::"cancel"], resource)
when { resource.name like "demo.*" };
@id("ops-users-silence")
permit (principal is User in Group::"ops", action == Action::"silence", resource);
@id("users-view")
permit (principal is User, action == Action::"view", resource);
@id("no-bob-on-prod")
forbid (principal == User::"bob", action, resource)
when { context has target && context.target in HostGroup::"prod" };
@id("in-other-nothing-by-chat")
forbid (principal in Group::"other", action, resource) when { context.door == "chat" };
"#
        .to_owned(),
    });
    Policies::new(&files).unwrap_or_else(|e| panic!("{e:?}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    /// A decision made with the slice of policies whose scope could match
    /// is the decision of every policy: allowed or not, by the same
    /// policies, for the same reason, with the same approval.
    #[test]
    fn slicing_changes_no_decision(
        name in prop::sample::select(vec!["alice", "carol", "bob", "deploy-bot", "admin", "zed"]),
        service in any::<bool>(),
        groups in prop::sample::subsequence(vec!["sre", "sre-leads", "dev", "ops", "other", "prod"], 0..=4),
        verb in prop::sample::select(Verb::ALL.to_vec()),
        action in 0usize..100,
        door in prop::sample::select(vec!["api", "cli", "web", "chat:slack:#ops", "chat:irc:#dev", "schedule", "alert"]),
        target in prop::option::of(prop::sample::select(vec!["web-1", "db-1"])),
        requester in prop::option::of(prop::sample::select(vec!["alice", "zed"])),
    ) {
        let catalog = sample();
        let policies = policies_with_every_kind_of_scope();
        let actions: Vec<_> = catalog.actions().collect();
        let action = (!verb.is_service_wide()).then(|| actions[action % actions.len()].as_ref());
        let origin = Origin::new(door).unwrap();
        let requester = requester.map(|r| Principal::new(r).unwrap());
        let host_groups = [target.map_or("none", |t| if t.starts_with("db") { "prod" } else { "web" }).to_owned()];
        let mut q = Question::new(verb, action, &origin);
        q.target = target.map(|t| (t, &host_groups[..]));
        q.requester = requester.as_ref();
        let who = Identity {
            principal: Principal::new(name).unwrap(),
            kind: if service { PrincipalKind::ServiceAccount } else { PrincipalKind::User },
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        };
        let sliced = policies.try_decide(&who, &q).map(|d| format!("{d:?}"));
        let whole = policies.try_decide_in(&policies.set, &who, &q).map(|d| format!("{d:?}"));
        prop_assert_eq!(sliced, whole);
    }
}
