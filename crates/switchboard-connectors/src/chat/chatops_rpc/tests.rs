use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use proptest::prelude::*;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding, Signer};
use switchboard_core::Timestamp;
use switchboard_core::catalog::Catalog;

use super::*;

/// GitHub's published example (chatops-controller's protocol description).
#[derive(serde::Deserialize)]
struct Vector {
    client_public_key_pem: String,
    signing_string: String,
    signature_base64: String,
}

fn vector() -> &'static Vector {
    static V: OnceLock<Vector> = OnceLock::new();
    V.get_or_init(|| {
        serde_json::from_str(include_str!("testdata/chatops-rpc-signature.json")).unwrap()
    })
}

fn published() -> (Verifier, Vec<u8>, Vec<u8>) {
    let v = vector();
    let verifier = Verifier::from_pem(&v.client_public_key_pem, None).unwrap();
    let signature = base64::engine::general_purpose::STANDARD
        .decode(&v.signature_base64)
        .unwrap();
    (verifier, v.signing_string.clone().into_bytes(), signature)
}

/// The published request as headers: url, nonce, timestamp, body.
fn published_request() -> (String, BTreeMap<String, String>, Timestamp) {
    let text = &vector().signing_string;
    let parts: Vec<&str> = text.split('\n').collect();
    assert_eq!(parts.len(), 4, "url, nonce, timestamp and an empty body");
    let headers = BTreeMap::from([
        ("chatops-nonce".to_owned(), parts[1].to_owned()),
        ("chatops-timestamp".to_owned(), parts[2].to_owned()),
        (
            "chatops-signature".to_owned(),
            format!(
                "Signature keyid=rsakey1,signature={}",
                vector().signature_base64
            ),
        ),
    ]);
    let at = Timestamp::parse_rfc3339(parts[2]).unwrap();
    (parts[0].to_owned(), headers, at)
}

#[test]
fn the_published_vector_verifies() {
    let (verifier, message, signature) = published();
    assert_eq!(
        verifier.verify_message(&message, &signature),
        Some("primary")
    );
    let (url, headers, at) = published_request();
    assert_eq!(url, "http://test.host/_chatops");
    let ok = verifier.verify(&url, &headers, b"", at).unwrap();
    assert_eq!(ok.nonce, "889c9543c22695bc031f723ef2fd28ef1fbed6b0");
    assert_eq!(ok.key, "primary");
    assert_eq!(
        signing_string(&url, &ok.nonce, "2017-06-28T22:51:41Z", b""),
        message
    );
}

#[test]
fn every_changed_byte_of_the_signed_string_or_signature_fails() {
    let (verifier, message, signature) = published();
    for i in 0..message.len() {
        let mut m = message.clone();
        m[i] ^= 0x01;
        assert_eq!(verifier.verify_message(&m, &signature), None, "byte {i}");
    }
    for i in 0..signature.len() {
        let mut s = signature.clone();
        s[i] ^= 0x80;
        assert_eq!(verifier.verify_message(&message, &s), None, "byte {i}");
    }
    // A body where there was none.
    let mut longer = message.clone();
    longer.push(b' ');
    assert_eq!(verifier.verify_message(&longer, &signature), None);
    let (url, headers, at) = published_request();
    assert_eq!(
        verifier.verify(&url, &headers, b"{}", at),
        Err(Refusal::BadSignature)
    );
    assert_eq!(
        verifier.verify("https://test.host/_chatops", &headers, b"", at),
        Err(Refusal::BadSignature)
    );
}

#[test]
fn timestamps_more_than_five_minutes_off_are_refused() {
    let (verifier, _, _) = published();
    let (url, headers, at) = published_request();
    for ok in [Duration::ZERO, MAX_SKEW] {
        assert!(verifier.verify(&url, &headers, b"", at.after(ok)).is_ok());
        assert!(verifier.verify(&url, &headers, b"", at.before(ok)).is_ok());
    }
    let off = MAX_SKEW + Duration::from_secs(1);
    for now in [at.after(off), at.before(off)] {
        let err = verifier.verify(&url, &headers, b"", now).unwrap_err();
        assert_eq!(err.kind(), "stale", "{err}");
    }
}

#[test]
fn missing_or_malformed_headers_are_refused_by_name() {
    let (verifier, _, _) = published();
    let (url, headers, at) = published_request();
    for (name, shown) in [
        ("chatops-nonce", "Chatops-Nonce"),
        ("chatops-timestamp", "Chatops-Timestamp"),
        ("chatops-signature", "Chatops-Signature"),
    ] {
        let mut h = headers.clone();
        h.remove(name);
        let err = verifier.verify(&url, &h, b"", at).unwrap_err();
        assert!(err.to_string().contains(shown), "{err}");
    }
    for bad in [
        "keyid=a,signature=AAAA",
        "Signature",
        "Signature keyid=a",
        "Signature signature=***",
        "Signaturekeyid=a,signature=AAAA",
    ] {
        let mut h = headers.clone();
        h.insert("chatops-signature".into(), bad.into());
        let err = verifier.verify(&url, &h, b"", at).unwrap_err();
        assert_eq!(err.kind(), "malformed", "{bad}: {err}");
    }
    let mut h = headers.clone();
    h.insert("chatops-timestamp".into(), "yesterday".into());
    assert_eq!(
        verifier.verify(&url, &h, b"", at).unwrap_err().kind(),
        "malformed"
    );
}

#[test]
fn the_signature_header_takes_keys_in_any_order() {
    let h = parse_signature_header("Signature signature=AAEC,keyid=hubotkey").unwrap();
    assert_eq!(h.keyid.as_deref(), Some("hubotkey"));
    assert_eq!(h.signature, vec![0, 1, 2]);
}

/// A fresh key pair (1024 bits: fast, and only for tests).
fn key_pair() -> (SigningKey<Sha256>, String) {
    let mut rng = rsa::rand_core::UnwrapErr(getrandom::SysRng);
    let private = rsa::RsaPrivateKey::new(&mut rng, 1024).unwrap();
    let pem = private
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    (SigningKey::<Sha256>::new(private), pem)
}

#[test]
fn the_alternate_key_verifies_and_an_unknown_key_does_not() {
    let (primary, primary_pem) = key_pair();
    let (alternate, alternate_pem) = key_pair();
    let (stranger, _) = key_pair();
    let verifier = Verifier::from_pem(&primary_pem, Some(&alternate_pem)).unwrap();
    let message = signing_string(
        "https://sb.example.com/_chatops/host.uptime",
        "n1",
        "2026-01-01T00:00:00Z",
        b"{}",
    );
    let sign = |k: &SigningKey<Sha256>| k.sign(&message).to_vec();
    assert_eq!(
        verifier.verify_message(&message, &sign(&primary)),
        Some("primary")
    );
    assert_eq!(
        verifier.verify_message(&message, &sign(&alternate)),
        Some("alternate")
    );
    assert_eq!(verifier.verify_message(&message, &sign(&stranger)), None);
    let only_primary = Verifier::from_pem(&primary_pem, None).unwrap();
    assert_eq!(
        only_primary.verify_message(&message, &sign(&alternate)),
        None
    );
    assert!(
        Verifier::from_pem("not a key", None)
            .unwrap_err()
            .contains("PEM")
    );
}

fn example_catalog() -> Catalog {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/catalog");
    Catalog::load(&dir).unwrap_or_else(|e| panic!("{e}"))
}

fn catalog_with(action: &str) -> Catalog {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("actions")).unwrap();
    std::fs::write(dir.path().join("actions/a.toml"), action).unwrap();
    Catalog::load(dir.path()).unwrap_or_else(|e| panic!("{e}"))
}

/// Matches as Hubot does: anchored, without regard to case.
fn hubot_match(regex: &str, line: &str) -> Option<BTreeMap<String, String>> {
    let re = regex::Regex::new(&format!("(?i)^{regex}$")).unwrap();
    let caps = re.captures(line)?;
    Some(
        re.capture_names()
            .flatten()
            .filter_map(|n| caps.name(n).map(|m| (n.to_owned(), m.as_str().to_owned())))
            .collect(),
    )
}

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const LOGS: &str = r#"name = "host.logs"
description = "Show a log"
command = ["true"]

[params.file]
type = "string"
description = "The file"

[params.lines]
type = "integer"
description = "How many lines"

[params.grep]
type = "string"
description = "Only lines containing this"

[params.token]
type = "secret"
description = "A secret"

[[aliases]]
format = "logs [{file}] [lines={lines}]"

[[aliases]]
format = "grep (a+b) {grep}"
description = "Search a log"

[[aliases]]
format = "scale {file}:{lines}x"
"#;

#[test]
fn each_alias_is_a_method_whose_regex_matches_what_people_type() {
    let catalog = catalog_with(LOGS);
    let listing = listing(&catalog, "switchboard");
    assert_eq!(listing.version, 3);
    let names: Vec<&str> = listing.methods.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "host.logs",
            "host.logs~2",
            "host.logs~3",
            "~approve",
            "~cancel",
            "~reject"
        ]
    );
    let logs = &listing.methods["host.logs"];
    assert_eq!(
        logs.regex,
        r"logs(?:\s+(?<file>\S+))?(?:\s+lines=(?<lines>\S+))?"
    );
    assert_eq!(logs.params, ["file", "lines"]);
    assert_eq!(logs.path, "host.logs");
    assert_eq!(logs.help, "logs [{file}] [lines={lines}] - Show a log");
    assert_eq!(hubot_match(&logs.regex, "logs"), Some(params(&[])));
    assert_eq!(
        hubot_match(&logs.regex, "LOGS /var/log/syslog lines=50"),
        Some(params(&[("file", "/var/log/syslog"), ("lines", "50")]))
    );
    assert_eq!(
        hubot_match(&logs.regex, "logs lines=5"),
        Some(params(&[("file", "lines=5")]))
    );
    assert_eq!(hubot_match(&logs.regex, "logs a b"), None);
    assert_eq!(hubot_match(&logs.regex, "tail logs"), None);

    // Literal text is escaped; a final string capture takes the rest.
    let grep = &listing.methods["host.logs~2"];
    assert_eq!(grep.regex, r"grep\s+\(a\+b\)\s+(?<grep>.+)");
    assert_eq!(grep.help, "grep (a+b) {grep} - Search a log");
    assert_eq!(
        hubot_match(&grep.regex, "grep (a+b) disk full"),
        Some(params(&[("grep", "disk full")]))
    );
    assert_eq!(hubot_match(&grep.regex, "grep aab disk"), None);
}

#[test]
fn a_capture_followed_by_text_in_one_word_ends_where_the_text_first_appears() {
    let m = &listing(&catalog_with(LOGS), "sb").methods["host.logs~3"];
    assert_eq!(m.regex, r"scale\s+(?<file>\S+?):(?<lines>\S+?)x");
    assert_eq!(
        hubot_match(&m.regex, "scale web:3x"),
        Some(params(&[("file", "web"), ("lines", "3")]))
    );
}

#[test]
fn methods_resolve_to_their_alias_and_nothing_else() {
    let catalog = catalog_with(LOGS);
    let m = resolve_method(&catalog, "host.logs~2").unwrap();
    assert_eq!((m.action.name.as_str(), m.alias), ("host.logs", 1));
    assert_eq!(resolve_method(&catalog, "host.logs").unwrap().alias, 0);
    for bad in [
        "host.logs~1",
        "host.logs~02",
        "host.logs~4",
        "nope",
        "",
        "~2",
        "host.logs~",
    ] {
        assert!(resolve_method(&catalog, bad).is_none(), "{bad}");
    }
    assert!(
        m.check_params(&params(&[("grep", "x"), ("lines", "5")]))
            .is_ok()
    );
    let err = m.check_params(&params(&[("token", "x")])).unwrap_err();
    assert_eq!((err.code, err.status), (ErrorCode::InvalidParams, 400));
    assert!(err.message.contains("secret"), "{}", err.message);
    let err = m.check_params(&params(&[("colour", "x")])).unwrap_err();
    assert!(err.message.contains("file, lines, grep"), "{}", err.message);
    let err = m.check_params(&params(&[("line", "x")])).unwrap_err();
    assert!(
        err.message.contains("did you mean `lines`"),
        "{}",
        err.message
    );
}

#[test]
fn every_example_alias_gives_a_regex_that_compiles_and_matches_its_words() {
    let catalog = example_catalog();
    let listing = listing(&catalog, "switchboard");
    let aliases: usize = catalog.actions().map(|a| a.aliases.len()).sum();
    assert!(aliases > 10);
    assert_eq!(listing.methods.len(), aliases + Steer::ALL.len());
    for action in catalog.actions() {
        for (index, alias) in action.aliases.iter().enumerate() {
            let regex = method_regex(action, &alias.format);
            // The format with every group present and each capture `v<i>`.
            let words = alias.format.variants().into_iter().next().unwrap();
            let mut expected = BTreeMap::new();
            let line: Vec<String> = words
                .iter()
                .map(|pieces| {
                    pieces
                        .iter()
                        .map(|p| match p {
                            switchboard_core::alias::Piece::Literal(l) => l.clone(),
                            switchboard_core::alias::Piece::Capture(c) => {
                                let v = format!("v{}", expected.len());
                                expected.insert(c.clone(), v.clone());
                                v
                            }
                        })
                        .collect()
                })
                .collect();
            let line = line.join(" ");
            assert_eq!(
                hubot_match(&regex, &line),
                Some(expected),
                "{} alias {index}: `{line}` against `{regex}`",
                action.name
            );
        }
    }
}

#[test]
fn the_built_in_methods_take_a_run_s_number_and_their_buttons_say_them() {
    let listing = listing(&catalog_with(LOGS), "switchboard");
    let approve = &listing.methods["~approve"];
    assert_eq!(approve.path, "~approve");
    assert_eq!(approve.params, ["id", "reason"]);
    assert_eq!(
        hubot_match(&approve.regex, "approve #12 looks right to me"),
        Some(params(&[("id", "12"), ("reason", "looks right to me")]))
    );
    assert_eq!(
        hubot_match(&approve.regex, "Approve 12"),
        Some(params(&[("id", "12")]))
    );
    assert_eq!(hubot_match(&approve.regex, "approve twelve"), None);
    let cancel = &listing.methods["~cancel"];
    assert_eq!(hubot_match(&cancel.regex, "cancel 7 now"), None);
    for steer in Steer::ALL {
        assert_eq!(Steer::from_method(&steer.method()), Some(steer));
        let button = steer.button(41);
        let method = &listing.methods[&steer.method()];
        assert_eq!(
            hubot_match(&method.regex, &button.command),
            Some(params(&[("id", "41")])),
            "{button:?}"
        );
    }
    assert_eq!(Steer::from_method("approve"), None);
}

#[test]
fn invocations_are_read_strictly_and_explained() {
    let ok = parse_invocation(
        "host.logs",
        br##"{"user":"bob","room_id":"#ops","method":"host.logs","params":{"file":"/var/log/x","lines":5,"grep":"","x":null},"mention_slug":"U1","extra":1}"##,
    )
    .unwrap();
    assert_eq!(ok.user, "bob");
    assert_eq!(ok.room_id, "#ops");
    assert_eq!(ok.mention_slug.as_deref(), Some("U1"));
    assert_eq!(ok.params, params(&[("file", "/var/log/x"), ("lines", "5")]));
    for (body, code) in [
        (&b"{"[..], ErrorCode::Parse),
        (b"[]", ErrorCode::InvalidRequest),
        (br##"{"room_id":"#ops"}"##, ErrorCode::InvalidRequest),
        (
            br##"{"user":"","room_id":"#ops"}"##,
            ErrorCode::InvalidRequest,
        ),
        (
            br##"{"user":"a b","room_id":"#ops"}"##,
            ErrorCode::InvalidRequest,
        ),
        (
            br##"{"user":"bob","room_id":"#ops","method":"other"}"##,
            ErrorCode::InvalidRequest,
        ),
        (
            br##"{"user":"bob","room_id":"#ops","params":{"a":[1]}}"##,
            ErrorCode::InvalidParams,
        ),
    ] {
        let err = parse_invocation("host.logs", body).unwrap_err();
        assert_eq!(
            err.code,
            code,
            "{}: {}",
            String::from_utf8_lossy(body),
            err.message
        );
    }
    assert_eq!(
        RpcError::new(ErrorCode::MethodNotFound, "no").body(),
        serde_json::json!({"error": {"code": -32601, "message": "no"}})
    );
}

fn any_headers() -> impl Strategy<Value = BTreeMap<String, String>> {
    proptest::collection::btree_map(
        prop_oneof![
            Just("chatops-nonce".to_owned()),
            Just("chatops-timestamp".to_owned()),
            Just("chatops-signature".to_owned()),
            "[a-z-]{1,12}",
        ],
        prop_oneof![
            ".{0,80}",
            "Signature [a-z]{0,6}=[A-Za-z0-9+/=,]{0,60}",
            Just("2017-06-28T22:51:41Z".to_owned()),
        ],
        0..5,
    )
}

proptest! {
    #[test]
    fn arbitrary_requests_never_panic(
        headers in any_headers(),
        body in proptest::collection::vec(any::<u8>(), 0..200),
        method in ".{0,20}",
    ) {
        let (verifier, _, _) = published();
        let (_, _, at) = published_request();
        let _ = verifier.verify("http://test.host/_chatops", &headers, &body, at);
        let _ = parse_invocation(&method, &body);
        let _ = resolve_method(example_catalog_cached(), &method);
    }

    #[test]
    fn any_changed_byte_fails(index in any::<usize>(), flip in 1u8..=255) {
        let (verifier, mut message, signature) = published();
        let i = index % message.len();
        message[i] ^= flip;
        prop_assert_eq!(verifier.verify_message(&message, &signature), None);
    }

    #[test]
    fn arbitrary_signature_headers_never_panic(value in ".{0,120}") {
        let _ = parse_signature_header(&value);
    }
}

fn example_catalog_cached() -> &'static Catalog {
    static C: OnceLock<Catalog> = OnceLock::new();
    C.get_or_init(example_catalog)
}
