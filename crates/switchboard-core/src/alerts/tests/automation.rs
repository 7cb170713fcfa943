use std::collections::BTreeMap;
use std::time::Duration;

use super::ls;
use crate::alerts::AlertsConfig;

const BASE: &str = "[route]\nreceiver = \"r\"\n[[receivers]]\nname = \"r\"\n";

fn errors(extra: &str) -> String {
    AlertsConfig::parse(&format!("{BASE}{extra}"))
        .unwrap_err()
        .iter()
        .map(|e| format!("{} {}", e.key.as_deref().unwrap_or(""), e.message))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn rules_are_read_and_render_their_params_from_the_alert() {
    let c = AlertsConfig::parse(&format!(
        "{BASE}[[automations]]\nname = \"restart\"\nmatchers = ['alertname=\"ServiceDown\"']\n\
         action = \"service.restart\"\nparams = {{ service = \"{{{{ labels.service }}}}\", note = \"{{{{ annotations.summary | default('') }}}} #{{{{ fingerprint }}}}\" }}\n\
         delay = \"1m\"\nrun_as = \"svc:automation\"\n"
    ))
    .unwrap();
    let rule = &c.automations[0];
    assert_eq!(rule.delay, Duration::from_secs(60));
    assert_eq!(rule.rate_limit, Duration::from_secs(600), "the default");
    assert_eq!(rule.run_as, "svc:automation");
    let down = ls(&[("alertname", "ServiceDown"), ("service", "cron")]);
    assert!(rule.matches(&down));
    assert!(!rule.matches(&ls(&[("alertname", "DiskFull")])));
    let annotations = BTreeMap::from([("summary".to_owned(), "cron died".to_owned())]);
    let params = rule.params_for(&down, &annotations, "0123").unwrap();
    assert_eq!(params["service"], "cron");
    assert_eq!(params["note"], "cron died #0123");
    // A label the alert lacks is an error naming the parameter, not "".
    let e = rule
        .params_for(&ls(&[("alertname", "ServiceDown")]), &annotations, "0123")
        .unwrap_err();
    assert!(e.starts_with("params.service:"), "{e}");
}

#[test]
fn mistakes_in_rules_are_named() {
    let e = errors("[[automations]]\nname = \"x\"\n");
    for missing in ["action missing", "run_as missing", "matchers missing"] {
        assert!(e.contains(missing), "{missing}: {e}");
    }
    let e = errors(
        "[[automations]]\nname = \"x\"\nmatchers = ['a=\"b\"']\naction = \"a.b\"\nrun_as = \"u\"\n\
         params = { p = \"{{ labels.x \" }\n",
    );
    assert!(e.contains("automations[0].params.p not a template"), "{e}");
    let e = errors(
        "[[automations]]\nname = \"x\"\nmatchers = ['a=\"b\"']\naction = \"a.b\"\nrun_as = \"u\"\nwhen = 1\n",
    );
    assert!(e.contains("automations[0].when"), "{e}");
}
