use proptest::prelude::*;

use super::diff::{Change, diff};
use super::render::{access_csv, html, markdown};
use super::*;

fn holder(who: &str, kind: &str, doors: &[&str], policies: &[&str]) -> Holder {
    Holder {
        who: who.to_owned(),
        kind: kind.to_owned(),
        doors: doors.iter().map(|d| (*d).to_owned()).collect(),
        policies: policies.iter().map(|p| (*p).to_owned()).collect(),
    }
}

fn sample() -> Report {
    Report {
        generated_at: "2026-11-26T10:00:00Z".to_owned(),
        node: "node-1".to_owned(),
        version: "0.1.0".to_owned(),
        catalog_version: "0f1e2d3c4b5a6978".to_owned(),
        catalog_commit: Some("1234abcd1234abcd1234abcd1234abcd1234abcd".to_owned()),
        selection: Selection::default(),
        doors: vec![DoorRow {
            door: "chat:irc".to_owned(),
            reaches: "IRC irc.example.net:6697 (TLS) as switchboard, channels #ops".to_owned(),
            authentication: "senders by their services account".to_owned(),
            state: "connected on node-1 since 2026-11-26T09:00:01Z (irc.example.net:6697 as switchboard)".to_owned(),
            last_event: Some("2026-11-26T09:59:00Z".to_owned()),
        }],
        access: vec![
            Access {
                action: "db.failover".to_owned(),
                verb: "run".to_owned(),
                host: None,
                approval: Some("1 of group:sre-leads, not the requester".to_owned()),
                principals: vec![holder("alice", "user", &["api", "web"], &["sre-runs"])],
                groups: vec![holder("group:sre", "group", &["api", "web"], &["sre-runs"])],
                everyone: None,
            },
            Access {
                action: "db.failover".to_owned(),
                verb: "approve".to_owned(),
                host: None,
                approval: None,
                principals: vec![holder("carol", "user", &["api"], &["sre-leads-approve"])],
                groups: vec![],
                everyone: None,
            },
            Access {
                action: "demo.echo".to_owned(),
                verb: "run".to_owned(),
                host: None,
                approval: None,
                principals: vec![],
                groups: vec![],
                everyone: Some(holder("everyone", "everyone", &["api"], &["everyone-runs"])),
            },
            Access {
                action: "fleet.reboot".to_owned(),
                verb: "cancel".to_owned(),
                host: None,
                approval: None,
                principals: vec![],
                groups: vec![],
                everyone: None,
            },
        ],
        identity: IdentitySection {
            principals: vec![PrincipalRow {
                name: "alice".to_owned(),
                kind: "user".to_owned(),
                source: "ldap".to_owned(),
                groups: vec!["sre".to_owned()],
            }],
            groups: vec![
                GroupRow {
                    name: "sre".to_owned(),
                    sources: vec!["ldap".to_owned(), "oidc".to_owned()],
                    members: 2,
                },
                GroupRow {
                    name: "sre-leads".to_owned(),
                    sources: vec!["policies".to_owned()],
                    members: 0,
                },
            ],
            tokens: vec![TokenRow {
                id: 3,
                owner: "alice".to_owned(),
                scopes: vec!["read".to_owned(), "run".to_owned()],
                description: "laptop".to_owned(),
                created_by: "admin".to_owned(),
                created_at: "2026-11-01T00:00:00Z".to_owned(),
                expires_at: None,
                last_used_at: Some("2026-11-25T08:00:00Z".to_owned()),
                state: "active".to_owned(),
            }],
            chat_links: vec![ChatLinkRow {
                identity: "slack:T0/U1".to_owned(),
                principal: "alice".to_owned(),
            }],
            unlinked: vec![UnlinkedRow {
                identity: "slack:T0/U9".to_owned(),
                name: Some("mallory".to_owned()),
                attempts: 3,
                refused: 2,
                actions: vec!["db.failover".to_owned(), "demo.echo".to_owned()],
                last_at: "2026-11-26T08:00:00Z".to_owned(),
                linked_now: None,
            }],
        },
        automation: AutomationSection {
            runners: vec![RunnerRow {
                runner: "ssh".to_owned(),
                actions: vec!["fleet.reboot".to_owned()],
            }],
            ssh: SshRow {
                hosts: 4,
                user: "ops".to_owned(),
                host_key_policy: "strict".to_owned(),
                known_hosts: Some("/etc/switchboard/known_hosts".to_owned()),
            },
            workflows: vec![WorkflowRow {
                name: "db.rollover".to_owned(),
                steps: 3,
                actions: vec!["db.failover".to_owned(), "host.disk".to_owned()],
                inquiries: vec!["confirm: group:sre-leads".to_owned()],
                run_as: None,
            }],
            schedules: vec![ScheduleRow {
                name: "nightly".to_owned(),
                action: "host.disk".to_owned(),
                cron: "0 3 * * *".to_owned(),
                timezone: "Europe/Berlin".to_owned(),
                run_as: "svc:cron".to_owned(),
                enabled: true,
                next_run: Some("2026-11-27T02:00:00Z".to_owned()),
            }],
            webhooks: vec![],
            alert_routes: vec![AlertRouteRow {
                route: "route".to_owned(),
                matchers: "{}".to_owned(),
                receiver: "ops".to_owned(),
                outlets: vec!["chat slack:#ops".to_owned()],
                escalation: None,
            }],
            escalations: vec![],
            alert_automations: vec![],
        },
        cluster: ClusterSection {
            storage: "sqlite".to_owned(),
            shared: false,
            node: "node-1".to_owned(),
            leader: Some("node-1".to_owned()),
            leader_since: Some("2026-11-26T09:00:00Z".to_owned()),
            leader_for: Some("1h".to_owned()),
            lease_expires: Some("2026-11-26T10:00:15Z".to_owned()),
            nodes: vec![
                NodeRow {
                    node: "node-1".to_owned(),
                    alive: true,
                    last_seen: "2026-11-26T10:00:00Z".to_owned(),
                    leader: true,
                },
                NodeRow {
                    node: "node-2".to_owned(),
                    alive: false,
                    last_seen: "2026-11-25T18:00:00Z".to_owned(),
                    leader: false,
                },
            ],
        },
        evidence: Evidence {
            since: None,
            audit_records: 42,
            audit_intact: true,
            audit_break: None,
            by_door: vec![DoorCounts {
                door: "chat".to_owned(),
                executions: 5,
                denials: 2,
                approvals: 1,
            }],
        },
    }
}

#[test]
fn markdown_has_one_table_row_per_right_and_names_who_and_why() {
    let md = markdown(&sample());
    assert!(md.contains(
        "| db.failover | run |  | 1 of group:sre-leads, not the requester | alice (api, web; sre-runs)<br>group:sre (api, web; sre-runs) |"
    ), "{md}");
    assert!(
        md.contains("| fleet.reboot | cancel |  |  | nobody |"),
        "{md}"
    );
    assert!(
        md.contains("| 3 | alice | read, run | laptop | admin |"),
        "{md}"
    );
    assert!(md.contains("intact, 42 records verified"), "{md}");
    assert!(
        md.contains(
            "catalog `0f1e2d3c4b5a6978` (git commit `1234abcd1234abcd1234abcd1234abcd1234abcd`)"
        ),
        "{md}"
    );
    assert!(md.contains("| chat | 5 | 2 | 1 |"), "{md}");
    assert!(md.contains("- `ssh`: fleet.reboot"), "{md}");
    assert!(md.contains("| chat:irc | IRC irc.example.net:6697 (TLS) as switchboard, channels #ops | senders by their services account | connected on node-1 since 2026-11-26T09:00:01Z (irc.example.net:6697 as switchboard) | 2026-11-26T09:59:00Z |"), "{md}");
    assert!(
        md.contains(
            "| slack:T0/U9 | mallory | 3 | 2 | db.failover, demo.echo | 2026-11-26T08:00:00Z |  |"
        ),
        "{md}"
    );
    assert!(
        md.contains("| node-1 | alive, leader | 2026-11-26T10:00:00Z |"),
        "{md}"
    );
    assert!(md.contains("| sre | ldap, oidc | 2 |"), "{md}");
    assert!(
        md.contains("| db.rollover | 3 | db.failover, host.disk | confirm: group:sre-leads | the requester |"),
        "{md}"
    );
    assert!(md.contains("| sre-leads | policies | 0 |"), "{md}");
    assert!(
        md.contains("| node-2 | stopped | 2026-11-25T18:00:00Z |"),
        "{md}"
    );
    assert!(md.contains("host keys checked strictly (an unknown key is refused) against `/etc/switchboard/known_hosts`"), "{md}");
    assert!(
        md.contains(
            "| nightly | host.disk | `0 3 * * *` Europe/Berlin | svc:cron | 2026-11-27T02:00:00Z |"
        ),
        "{md}"
    );
    assert!(
        md.contains("| route | {} | ops | chat slack:#ops |  |"),
        "{md}"
    );
    assert!(
        md.contains("Leader: `node-1` since 2026-11-26T09:00:00Z, for 1h"),
        "{md}"
    );
}

#[test]
fn html_is_one_page_that_escapes_what_it_shows() {
    let mut r = sample();
    r.identity.principals[0].name = "<script>alert(1)</script>".to_owned();
    let page = html(&r);
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(!page.contains("<script>"), "{page}");
    assert!(page.contains("&lt;script&gt;"));
    // Self-contained: nothing to fetch.
    for outside in ["src=", "href=", "@import", "url("] {
        assert!(!page.contains(outside), "{outside} in {page}");
    }
    assert!(page.contains("@media print"));
}

#[test]
fn the_csv_matrix_reads_back_one_row_per_holder_and_no_cell_is_a_formula() {
    let mut r = sample();
    r.access[0].principals[0].who = "=HYPERLINK(\"http://x\")".to_owned();
    let text = access_csv(&r);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header,
        [
            "action", "verb", "host", "approval", "holder", "kind", "doors", "policies"
        ]
    );
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    // alice and group:sre, carol, everyone, and the right nobody holds.
    assert_eq!(rows.len(), 5, "{text}");
    assert_eq!(rows[0][4], "'=HYPERLINK(\"http://x\")");
    assert_eq!(rows[1][4..6], ["group:sre", "group"]);
    assert_eq!(rows[4][..2], ["fleet.reboot", "cancel"]);
    assert_eq!(rows[4][4], "");
}

#[test]
fn a_diff_names_who_gained_and_lost_which_right() {
    let old = sample();
    let mut new = sample();
    // carol may no longer approve; bob may; alice now only through the API;
    // the failover needs two approvals.
    new.access[1].principals = vec![holder("bob", "user", &["web"], &["new-leads"])];
    new.access[0].principals[0].doors = vec!["api".to_owned()];
    new.access[0].approval = Some("2 of group:sre-leads".to_owned());
    let changes = diff(&old, &new);
    let text: Vec<String> = changes.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "- carol may no longer approve db.failover",
            "+ bob may now approve db.failover (through web; by new-leads)",
            "~ alice may run db.failover through api (was api, web)",
            "~ db.failover needs approval: 2 of group:sre-leads (was 1 of group:sre-leads, not the requester)",
        ]
    );
    assert!(diff(&old, &old).is_empty());
    // A new action is all gains; a removed one all losses.
    let mut fewer = sample();
    fewer.access.remove(2);
    assert_eq!(
        diff(&fewer, &old),
        [Change::Gained {
            right: "run demo.echo".to_owned(),
            who: "everyone".to_owned(),
            doors: vec!["api".to_owned()],
            policies: vec!["everyone-runs".to_owned()],
        }]
    );
}

#[test]
fn a_report_reads_back_from_its_json() {
    let r = sample();
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), r);
}

proptest! {
    /// Whatever names the directory holds, each access row stays one
    /// table row of five cells.
    #[test]
    fn any_name_stays_in_its_markdown_cell(who in "\\PC{0,30}", action in "[a-z.]{1,12}") {
        let mut r = sample();
        r.access.truncate(1);
        r.access[0].action = action;
        r.access[0].principals[0].who = who;
        let md = markdown(&r);
        let row = md.lines().find(|l| l.starts_with("| ") && l.contains("run |")).unwrap();
        let cells = row.replace("\\|", "").matches('|').count();
        prop_assert_eq!(cells, 6, "{}", row);
    }
}
