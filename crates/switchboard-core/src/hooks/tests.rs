use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::json;

use super::signature::Piece;
use super::*;
use crate::ids::Timestamp;

const NOW_SECS: i64 = 1_790_000_000;
const NOW: Timestamp = Timestamp(NOW_SECS * 1_000_000);
const SECRET: &[u8] = b"it's a secret to everybody";

fn headers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned()))
        .collect()
}

fn one(text: &str) -> Hook {
    let hooks = Hooks::parse(text).unwrap_or_else(|e| panic!("{e:?}"));
    hooks.iter().next().unwrap().clone()
}

#[test]
fn a_hook_reads_with_github_defaults() {
    let hook = one(r#"
[[hooks]]
name = "deploy-on-push"
action = "app.deploy"
run_as = "svc:github"
secret = "env:GITHUB_SECRET"
[hooks.params]
ref = "{{ body.ref }}"
"#);
    assert_eq!(hook.name, "deploy-on-push");
    assert_eq!(hook.line, 2);
    assert_eq!(hook.secret, SecretRef::Env("GITHUB_SECRET".into()));
    assert_eq!(hook.signature, SignatureSpec::default());
    assert_eq!(hook.signature.header, "x-hub-signature-256");
    assert_eq!(hook.signature.prefix, "sha256=");
    assert_eq!(hook.signature.signed.to_string(), "{body}");
    assert_eq!(hook.params["ref"], "{{ body.ref }}");
}

#[test]
fn a_timestamp_header_signs_timestamp_dot_body_unless_told_otherwise() {
    let hook = one(r#"
[[hooks]]
name = "h"
action = "a"
run_as = "u"
secret = "file:/run/secrets/h"
[hooks.signature]
header = "X-Signature"
algorithm = "sha512"
encoding = "base64"
timestamp_header = "X-Timestamp"
replay_window = "30s"
delivery_header = "X-Delivery"
"#);
    let s = &hook.signature;
    assert_eq!(s.algorithm, Algorithm::Sha512);
    assert_eq!(s.prefix, "sha512=", "the prefix follows the algorithm");
    assert_eq!(s.encoding, Encoding::Base64);
    assert_eq!(s.signed.to_string(), "{timestamp}.{body}");
    assert_eq!(s.timestamp_header.as_deref(), Some("x-timestamp"));
    assert_eq!(s.delivery_header.as_deref(), Some("x-delivery"));
    assert_eq!(s.replay_window, Duration::from_secs(30));

    let slack = one(r#"
[[hooks]]
name = "h"
action = "a"
run_as = "u"
secret = "env:S"
signature = { header = "X-Slack-Signature", prefix = "v0=", timestamp_header = "X-Slack-Request-Timestamp", signed = "v0:{timestamp}:{body}" }
"#);
    assert_eq!(
        slack.signature.signed.0,
        [
            Piece::Text("v0:".into()),
            Piece::Timestamp,
            Piece::Text(":".into()),
            Piece::Body
        ]
    );
}

#[test]
fn every_problem_is_reported_with_its_line_and_key() {
    let text = r#"[[hooks]]
name = "a/b"
action = "x"
run_as = "u"
secret = "hunter2"
[hooks.signature]
algoritm = "sha256"
encoding = "b64"
header = "X Sig"
signed = "{body}{nonce}"
replay_window = "0s"

[[hooks]]
name = "c"
action = "x"
secret = "env:S"
params = { host = "{{ body.host ", other = "{{ labels.x }}" }
signature = { signed = "{timestamp}.{body}" }
"#;
    let errors = Hooks::parse(text).unwrap_err();
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let expect = [
        "hooks.toml:2: hooks[0].name: `a/b` must be 1 to 64",
        "hooks.toml:5: hooks[0].secret: a secret must be a reference",
        "hooks.toml:7: hooks[0].signature.algoritm: unknown key (did you mean `algorithm`?)",
        "hooks.toml:8: hooks[0].signature.encoding: must be one of hex, base64, not `b64`",
        "hooks.toml:9: hooks[0].signature.header: `X Sig` is not a header name",
        "hooks.toml:10: hooks[0].signature.signed: `{body}{nonce}`: only `{body}` and `{timestamp}`",
        "hooks.toml:11: hooks[0].signature.replay_window: must not be zero",
        "hooks.toml:13: hooks[1].run_as: missing",
        "hooks.toml:17: hooks[1].params.host: not a template",
        "hooks.toml:17: hooks[1].params.other: `labels` is unknown: a template reads `body` and `headers`",
        "hooks.toml:18: hooks[1].signature.signed: uses `{timestamp}`, so `timestamp_header` must name its header",
    ];
    for e in expect {
        assert!(
            shown.iter().any(|s| s.starts_with(e)),
            "missing `{e}` in:\n{}",
            shown.join("\n")
        );
    }
    assert!(!shown.iter().any(|s| s.contains("hunter2")), "{shown:?}");
}

#[test]
fn params_render_from_body_and_headers_and_name_a_missing_field() {
    let hook = one(r#"
[[hooks]]
name = "alerts"
action = "a"
run_as = "u"
secret = "env:S"
[hooks.params]
host = "{{ body.alerts[0].labels.instance }}"
who = "{{ headers['x-sender'] }}"
"#);
    let body = json!({"alerts": [{"labels": {"instance": "db-1"}}]});
    let params = hook
        .params_for(&body, &headers(&[("X-Sender", "am")]))
        .unwrap();
    assert_eq!(params["host"], "db-1");
    assert_eq!(params["who"], "am");

    let missing = hook
        .params_for(&json!({"alerts": []}), &headers(&[("X-Sender", "am")]))
        .unwrap_err();
    assert_eq!(missing.field, "params.host");
    assert!(
        missing
            .message
            .starts_with("`{{ body.alerts[0].labels.instance }}`: undefined"),
        "{missing}"
    );
}

fn spec(timestamp: bool, delivery: bool) -> SignatureSpec {
    let mut s = SignatureSpec::default();
    if timestamp {
        s.timestamp_header = Some("x-timestamp".into());
        s.signed = SignedText::parse("{timestamp}.{body}").unwrap();
    }
    if delivery {
        s.delivery_header = Some("x-delivery".into());
    }
    s
}

#[test]
fn github_signatures_verify_and_anything_else_is_refused() {
    let s = spec(false, false);
    let body = br#"{"ref":"refs/heads/main"}"#;
    let good = s.sign(SECRET, "", body);
    // The value GitHub's documentation gives for its example.
    let doc = SignatureSpec::default().sign(b"It's a Secret to Everybody", "", b"Hello, World!");
    assert_eq!(
        doc,
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    );
    assert!(
        s.verify(
            SECRET,
            &headers(&[("X-Hub-Signature-256", &good)]),
            body,
            NOW
        )
        .is_ok()
    );
    let refused = |h: BTreeMap<String, String>| s.verify(SECRET, &h, body, NOW).unwrap_err();
    assert_eq!(
        refused(headers(&[])),
        Rejection::MissingSignature("x-hub-signature-256".into())
    );
    assert_eq!(
        refused(headers(&[(
            "X-Hub-Signature-256",
            &good.replace("sha256=", "sha1=")
        )]))
        .kind(),
        "bad_signature"
    );
    assert!(matches!(
        refused(headers(&[("X-Hub-Signature-256", "sha256=zz")])),
        Rejection::MalformedSignature { .. }
    ));
    let other = s.sign(b"another secret", "", body);
    assert_eq!(
        refused(headers(&[("X-Hub-Signature-256", &other)])),
        Rejection::BadSignature
    );
    assert!(
        !refused(headers(&[("X-Hub-Signature-256", &other)]))
            .to_string()
            .contains(&other[7..]),
        "the message never shows the signature"
    );
}

#[test]
fn a_timestamp_outside_the_window_is_stale_and_a_delivery_id_is_read() {
    let s = spec(true, true);
    let body = b"{}";
    let ts = NOW_SECS.to_string();
    let sig = s.sign(SECRET, &ts, body);
    let ok = s
        .verify(
            SECRET,
            &headers(&[
                ("X-Hub-Signature-256", &sig),
                ("X-Timestamp", &ts),
                ("X-Delivery", "d-1"),
            ]),
            body,
            NOW,
        )
        .unwrap();
    assert_eq!(ok.delivery.as_deref(), Some("d-1"));

    let old = (NOW_SECS - 301).to_string();
    let old_sig = s.sign(SECRET, &old, body);
    let stale = s
        .verify(
            SECRET,
            &headers(&[
                ("X-Hub-Signature-256", &old_sig),
                ("X-Timestamp", &old),
                ("X-Delivery", "d-2"),
            ]),
            body,
            NOW,
        )
        .unwrap_err();
    assert_eq!(
        stale.to_string(),
        "stale request: its time is 301 s from now, outside the replay window of 5m"
    );
    assert_eq!(stale.kind(), "stale");
    // The timestamp is signed: changing it breaks the signature.
    let moved = s
        .verify(
            SECRET,
            &headers(&[
                ("X-Hub-Signature-256", &old_sig),
                ("X-Timestamp", &ts),
                ("X-Delivery", "d-3"),
            ]),
            body,
            NOW,
        )
        .unwrap_err();
    assert_eq!(moved, Rejection::BadSignature);
    let no_delivery = s
        .verify(
            SECRET,
            &headers(&[("X-Hub-Signature-256", &sig), ("X-Timestamp", &ts)]),
            body,
            NOW,
        )
        .unwrap_err();
    assert_eq!(no_delivery, Rejection::MissingDelivery("x-delivery".into()));
}

#[test]
fn sha1_sha512_and_base64_signatures_verify() {
    for (algorithm, encoding) in [
        (Algorithm::Sha1, Encoding::Hex),
        (Algorithm::Sha512, Encoding::Base64),
        (Algorithm::Sha256, Encoding::Base64),
    ] {
        let s = SignatureSpec {
            algorithm,
            encoding,
            prefix: String::new(),
            ..SignatureSpec::default()
        };
        let sig = s.sign(SECRET, "", b"body");
        assert!(!sig.is_empty());
        assert!(
            s.verify(
                SECRET,
                &headers(&[("X-Hub-Signature-256", &sig)]),
                b"body",
                NOW
            )
            .is_ok(),
            "{algorithm:?} {encoding:?}"
        );
    }
}

fn any_spec() -> impl Strategy<Value = SignatureSpec> {
    (0..3usize, any::<bool>(), any::<bool>(), "[a-z=]{0,4}").prop_map(|(a, b64, ts, prefix)| {
        let mut s = spec(ts, false);
        s.algorithm = [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512][a];
        s.encoding = if b64 { Encoding::Base64 } else { Encoding::Hex };
        s.prefix = prefix;
        s
    })
}

proptest! {
    #[test]
    fn arbitrary_headers_never_panic(
        s in any_spec(),
        sig in "\\PC{0,200}",
        ts in "\\PC{0,30}",
        body in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        let h = headers(&[("X-Hub-Signature-256", &sig), ("X-Timestamp", &ts)]);
        let _ = s.verify(SECRET, &h, &body, NOW);
        let _ = SignedText::parse(&sig);
    }

    #[test]
    fn a_correct_signature_always_verifies(
        s in any_spec(),
        secret in proptest::collection::vec(any::<u8>(), 1..80),
        body in proptest::collection::vec(any::<u8>(), 0..300),
        skew in -300i64..=300,
    ) {
        let ts = (NOW_SECS + skew).to_string();
        let sig = s.sign(&secret, &ts, &body);
        let h = headers(&[("X-Hub-Signature-256", &sig), ("X-Timestamp", &ts)]);
        prop_assert!(s.verify(&secret, &h, &body, NOW).is_ok());
    }

    #[test]
    fn any_bit_flip_in_the_body_or_the_signature_fails(
        s in any_spec(),
        body in proptest::collection::vec(any::<u8>(), 1..200),
        flip_body in any::<bool>(),
        at in any::<proptest::sample::Index>(),
        bit in 0u8..8,
    ) {
        let ts = NOW_SECS.to_string();
        let sig = s.sign(SECRET, &ts, &body);
        let (mut body2, mut sig2) = (body.clone(), sig.clone());
        if flip_body {
            let i = at.index(body2.len());
            body2[i] ^= 1 << bit;
        } else {
            // Flip a bit of the signature's bytes, then write them again.
            let encoded = &sig[s.prefix.len()..];
            let mut raw = match s.encoding {
                Encoding::Hex => hex::decode(encoded).unwrap(),
                Encoding::Base64 => {
                    use base64::Engine as _;
                    base64::engine::general_purpose::STANDARD.decode(encoded).unwrap()
                }
            };
            let i = at.index(raw.len());
            raw[i] ^= 1 << bit;
            let again = match s.encoding {
                Encoding::Hex => hex::encode(raw),
                Encoding::Base64 => {
                    use base64::Engine as _;
                    base64::engine::general_purpose::STANDARD.encode(raw)
                }
            };
            sig2 = format!("{}{again}", s.prefix);
        }
        let h = headers(&[("X-Hub-Signature-256", &sig2), ("X-Timestamp", &ts)]);
        prop_assert_eq!(s.verify(SECRET, &h, &body2, NOW), Err(Rejection::BadSignature));
    }
}
