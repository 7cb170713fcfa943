use proptest::prelude::*;

use super::ls;
use crate::alerts::{Fingerprint, LabelSet, fingerprint};

/// `alertmanager-fingerprints.json`: label sets with the fingerprints
/// Alertmanager computes for them (from its template tests).
const VECTORS: [(&[(&str, &str)], &str); 3] = [
    (
        &[("job", "foo"), ("severity", "warning")],
        "9266ef3da838ad95",
    ),
    (
        &[("job", "foo"), ("severity", "critical")],
        "3b15fd163d36582e",
    ),
    (
        &[("job", "bar"), ("severity", "critical")],
        "c7e68cb08e3e67f9",
    ),
];

#[test]
fn fingerprints_are_alertmanagers() {
    for (labels, expected) in VECTORS {
        let set = ls(labels);
        assert_eq!(fingerprint(&set).to_string(), expected, "{set}");
        assert_eq!(set.fingerprint(), expected.parse::<Fingerprint>().unwrap());
    }
}

#[test]
fn fingerprints_of_the_webhook_sample_alerts() {
    let base = [
        ("alertname", "DiskFull"),
        ("job", "node"),
        ("severity", "critical"),
        ("team", "db"),
    ];
    for (instance, expected) in [
        ("db-1:9100", "a59c05c9f1b19735"),
        ("db-2:9100", "ea211390b08df8e6"),
    ] {
        let mut set = ls(&base);
        set.insert("instance", instance).unwrap();
        assert_eq!(set.fingerprint().to_string(), expected);
    }
}

#[test]
fn insertion_order_does_not_change_the_fingerprint() {
    let a = ls(&[("severity", "warning"), ("job", "foo")]);
    let b = ls(&[("job", "foo"), ("severity", "warning")]);
    assert_eq!(a.fingerprint(), b.fingerprint());
}

#[test]
fn empty_set_is_the_fnv_offset_and_prints_16_digits() {
    assert_eq!(
        LabelSet::new().fingerprint().to_string(),
        "cbf29ce484222325"
    );
    assert_eq!(Fingerprint(0xab).to_string(), "00000000000000ab");
    assert_eq!("ab".parse::<Fingerprint>().unwrap(), Fingerprint(0xab));
    for bad in ["", "xyz", "00000000000000000", "-1"] {
        assert!(bad.parse::<Fingerprint>().is_err(), "{bad}");
    }
}

#[test]
fn label_names_are_prometheus_names() {
    let mut set = LabelSet::new();
    for ok in ["a", "_", "alertname", "__name__", "A9_z"] {
        assert!(set.insert(ok, "v").is_ok(), "{ok}");
    }
    for bad in ["", "9a", "a-b", "a.b", "a b", "é", "a:b"] {
        assert!(set.insert(bad, "v").is_err(), "{bad}");
    }
    let refused: Result<LabelSet, _> = serde_json::from_str(r#"{"bad-name": "x"}"#);
    assert!(refused.is_err());
}

#[test]
fn missing_labels_read_as_empty() {
    let set = ls(&[("job", "node")]);
    assert_eq!(set.value("job"), "node");
    assert_eq!(set.value("instance"), "");
    assert_eq!(set.get("instance"), None);
}

#[test]
fn prints_like_alertmanager() {
    let set = ls(&[("job", "prometheus24"), ("alertname", "Test")]);
    assert_eq!(set.to_string(), r#"{alertname="Test", job="prometheus24"}"#);
    assert_eq!(LabelSet::new().to_string(), "{}");
    let odd = ls(&[("a", "q\"b\\s\nt\tc\u{1}d\u{7f}é\u{a0}z\u{200b}")]);
    assert_eq!(
        odd.to_string(),
        r#"{a="q\"b\\s\nt\tc\x01d\x7fé\u00a0z\u200b"}"#
    );
}

#[test]
fn serializes_as_a_map() {
    let set = ls(&[("job", "node")]);
    assert_eq!(serde_json::to_string(&set).unwrap(), r#"{"job":"node"}"#);
    let back: LabelSet = serde_json::from_str(r#"{"job":"node"}"#).unwrap();
    assert_eq!(back, set);
    assert_eq!(
        serde_json::to_string(&set.fingerprint()).unwrap(),
        format!("\"{}\"", set.fingerprint())
    );
}

proptest! {
    #[test]
    fn fingerprint_text_round_trips(n in any::<u64>()) {
        let f = Fingerprint(n);
        prop_assert_eq!(f.to_string().parse::<Fingerprint>().unwrap(), f);
    }
}
