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

mod chat_grammar {
    use std::time::Duration;

    use proptest::prelude::*;

    use crate::alerts::silences::parse_request;

    #[test]
    fn matchers_duration_and_reason() {
        let r = parse_request(
            r#"alertname=DiskFull instance=~"db-.*" for 2h because replacing the disks"#,
        )
        .unwrap();
        assert_eq!(
            r.matchers.to_string(),
            r#"{alertname="DiskFull",instance=~"db-.*"}"#
        );
        assert_eq!(r.duration, Duration::from_secs(7200));
        assert_eq!(r.comment, "replacing the disks");
        // Commas, quoted spaces and the word `for` inside quotes.
        let r = parse_request(r#"job="api for web", env=prod FOR 90m Because: deploy"#).unwrap();
        assert_eq!(r.matchers.to_string(), r#"{job="api for web",env="prod"}"#);
        assert_eq!(r.duration, Duration::from_secs(5400));
        assert_eq!(r.comment, "deploy");
    }

    #[test]
    fn every_mistake_is_named() {
        let e = |t: &str| parse_request(t).unwrap_err();
        assert!(e("alertname=Disk").contains("say how long"));
        assert!(e("for 2h because x").contains("say which alerts"));
        assert!(e("alertname=Disk for").contains("after `for`"));
        assert!(e("alertname=Disk for soon because x").contains("`soon` is not a duration"));
        assert!(e("alertname=Disk for 0s because x").contains("not a duration"));
        assert!(e("alertname=Disk for 2h").contains("say why"));
        assert!(e("alertname=Disk for 2h because").contains("say why"));
        assert!(e("alertname=Disk for 2h please").contains("expected `because"));
        assert!(e("alertname=~\"(\" for 2h because x").contains("matchers:"));
        assert!(e("job=\"open for 2h because x").contains("never closed"));
    }

    proptest! {
        #[test]
        fn any_text_is_read_or_refused_without_panic(text in "\\PC{0,80}") {
            let _ = parse_request(&text);
        }

        #[test]
        fn what_is_written_is_read_back(
            name in "[a-z_][a-z0-9_]{0,8}",
            value in "[a-zA-Z0-9 .-]{1,12}",
            hours in 1u64..100,
            why in "[a-z][a-z ]{0,20}[a-z]",
        ) {
            let text = format!("{name}=\"{value}\" for {hours}h because {why}");
            let r = parse_request(&text).unwrap();
            prop_assert_eq!(r.matchers.to_string(), format!("{{{name}=\"{value}\"}}"));
            prop_assert_eq!(r.duration, Duration::from_secs(hours * 3600));
            prop_assert_eq!(r.comment, why);
        }
    }
}
