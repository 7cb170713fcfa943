use std::time::Duration;

use super::at;
use crate::alerts::AlertsConfig;
use crate::alerts::escalation::{Position, Step};

const CONFIG: &str = r#"
[route]
receiver = "ops"
escalation = "oncall"

[[route.routes]]
matchers = ['team="web"']
receiver = "web"

[[receivers]]
name = "ops"
[[receivers]]
name = "web"
[[receivers]]
name = "primary"
[[receivers]]
name = "secondary"

[[escalations]]
name = "oncall"
repeat = 2
ack_timeout = "30m"
[[escalations.steps]]
notify = ["primary"]
[[escalations.steps]]
wait = "10m"
[[escalations.steps]]
notify = ["secondary", "primary"]
[[escalations.steps]]
wait = "5m"
"#;

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

#[test]
fn chains_are_read_and_inherited_by_routes() {
    let c = AlertsConfig::parse(CONFIG).unwrap();
    let chain = c.escalation("oncall").unwrap();
    assert_eq!(chain.repeat, 2);
    assert_eq!(chain.ack_timeout, s(1800));
    assert_eq!(
        chain.steps,
        [
            Step::Notify(vec!["primary".into()]),
            Step::Wait(s(600)),
            Step::Notify(vec!["secondary".into(), "primary".into()]),
            Step::Wait(s(300)),
        ]
    );
    let web = c.route.match_labels(&super::ls(&[("team", "web")]));
    assert_eq!(
        web[0].options.escalation.as_deref(),
        Some("oncall"),
        "inherited"
    );
}

#[test]
fn a_chain_notifies_waits_and_repeats_then_ends() {
    let c = AlertsConfig::parse(CONFIG).unwrap();
    let chain = c.escalation("oncall").unwrap();
    let t0 = at("2026-11-25T10:00:00Z");
    let a = chain.advance(Position::start(t0), t0);
    assert_eq!(a.notify, ["primary"]);
    let pos = a.position.unwrap();
    assert_eq!(pos.due, t0.after(s(600)));
    // Not due yet: nothing.
    let early = chain.advance(pos, t0.after(s(599)));
    assert!(early.notify.is_empty());
    assert_eq!(early.position, Some(pos));
    let b = chain.advance(pos, t0.after(s(600)));
    assert_eq!(b.notify, ["secondary", "primary"]);
    let pos = b.position.unwrap();
    // Round two starts after the last wait.
    let c2 = chain.advance(pos, pos.due);
    assert_eq!(c2.notify, ["primary"]);
    let pos = c2.position.unwrap();
    assert_eq!(pos.round, 1);
    let d = chain.advance(pos, pos.due);
    assert_eq!(d.notify, ["secondary", "primary"]);
    let pos = d.position.unwrap();
    let end = chain.advance(pos, pos.due);
    assert!(end.notify.is_empty());
    assert_eq!(end.position, None, "ran twice: done");
}

#[test]
fn mistakes_in_chains_are_named() {
    let errors = |extra: &str| {
        let text = format!("[route]\nreceiver = \"r\"\n[[receivers]]\nname = \"r\"\n{extra}");
        AlertsConfig::parse(&text)
            .unwrap_err()
            .iter()
            .map(|e| format!("{} {}", e.key.as_deref().unwrap_or(""), e.message))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let e = errors("[[escalations]]\nname = \"x\"\n[[escalations.steps]]\nnotify = [\"nobody\"]\n");
    assert!(
        e.contains("escalations[0].steps[0].notify[0] unknown receiver"),
        "{e}"
    );
    let e = errors(
        "[[escalations]]\nname = \"x\"\nrepeat = 3\n[[escalations.steps]]\nnotify = [\"r\"]\n",
    );
    assert!(e.contains("needs a `wait` step"), "{e}");
    let e = errors(
        "[[escalations]]\nname = \"x\"\n[[escalations.steps]]\nnotify = [\"r\"]\nwait = \"1m\"\n",
    );
    assert!(e.contains("either `notify"), "{e}");
    let e =
        errors("[[escalations]]\nname = \"x\"\nrepeat = 0\n[[escalations.steps]]\nwait = \"1m\"\n");
    assert!(e.contains("from 1 to 100"), "{e}");
    assert!(e.contains("no step notifies anyone"), "{e}");
    let e = errors("[[escalations]]\nname = \"x\"\n");
    assert!(e.contains("escalations[0].steps missing"), "{e}");
    let text = "[route]\nreceiver = \"r\"\nescalation = \"ghost\"\n[[receivers]]\nname = \"r\"\n";
    let e = AlertsConfig::parse(text).unwrap_err();
    assert!(e[0].message.contains("unknown escalation"), "{e:?}");
}
