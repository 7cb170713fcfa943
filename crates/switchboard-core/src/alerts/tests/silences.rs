use super::{at, ls};
use crate::alerts::silences::silenced_by;
use crate::alerts::{Matchers, Silence, SilenceError, SilenceState};

fn silence(matchers: &str) -> Silence {
    Silence {
        id: "s-1".to_owned(),
        matchers: Matchers::parse(matchers).unwrap(),
        starts_at: at("2026-11-24T10:00:00Z"),
        ends_at: at("2026-11-24T12:00:00Z"),
        created_by: "alice".to_owned(),
        comment: "maintenance".to_owned(),
    }
}

#[test]
fn pending_active_expired() {
    let s = silence(r#"alertname="Disk""#);
    assert_eq!(s.state(at("2026-11-24T09:59:59Z")), SilenceState::Pending);
    assert_eq!(
        s.state(at("2026-11-24T10:00:00Z")),
        SilenceState::Active,
        "start included"
    );
    assert_eq!(s.state(at("2026-11-24T11:59:59Z")), SilenceState::Active);
    assert_eq!(
        s.state(at("2026-11-24T12:00:00Z")),
        SilenceState::Expired,
        "end excluded"
    );
    assert!(s.is_active(at("2026-11-24T11:00:00Z")));
}

#[test]
fn silences_matching_alerts_while_active() {
    let s = silence(r#"alertname="Disk", instance=~"db-.*""#);
    let now = at("2026-11-24T11:00:00Z");
    assert!(s.silences(&ls(&[("alertname", "Disk"), ("instance", "db-1")]), now));
    assert!(!s.silences(&ls(&[("alertname", "Disk"), ("instance", "web-1")]), now));
    assert!(
        !s.silences(&ls(&[("alertname", "Disk")]), now),
        "missing label is empty"
    );
    assert!(!s.silences(
        &ls(&[("alertname", "Disk"), ("instance", "db-1")]),
        at("2026-11-24T13:00:00Z")
    ));
    let all = [
        s.clone(),
        silence(r#"alertname="Other""#),
        silence(r#"instance="db-1""#),
    ];
    let found = silenced_by(
        &all,
        &ls(&[("alertname", "Disk"), ("instance", "db-1")]),
        now,
    );
    assert_eq!(found.len(), 2);
}

#[test]
fn validation_as_alertmanager() {
    assert_eq!(silence(r#"alertname="Disk""#).validate(), Ok(()));
    assert_eq!(silence("").validate(), Err(SilenceError::NoMatchers));
    for everything in [r#"job="""#, r#"job=~".*""#, r#"job=~"", instance=~"x|""#] {
        assert_eq!(
            silence(everything).validate(),
            Err(SilenceError::MatchesEverything),
            "{everything}"
        );
    }
    // Alertmanager counts only `=` and `=~` when judging "matches the empty
    // string", so these pass although they match unlabelled alerts.
    assert_eq!(silence(r#"job!="x""#).validate(), Ok(()));
    assert_eq!(silence(r#"job="", team="db""#).validate(), Ok(()));
    let mut s = silence(r#"a="1""#);
    s.ends_at = s.starts_at;
    assert!(matches!(
        s.validate(),
        Err(SilenceError::EndNotAfterStart { .. })
    ));
    let mut s = silence(r#"a="1""#);
    s.id = " ".to_owned();
    assert_eq!(s.validate(), Err(SilenceError::MissingId));
}
