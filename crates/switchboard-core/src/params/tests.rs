use super::*;
use proptest::prelude::*;
use serde_json::json;

fn spec(name: &str, ty: ParamType) -> ParamSpec {
    ParamSpec::new(name, ty)
}

fn raw(pairs: &[(&str, serde_json::Value)]) -> RawParams {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

#[test]
fn coerces_text_from_the_cli_into_every_type() {
    let mut e = spec("mode", ParamType::Enum);
    e.choices = vec!["fast".into(), "safe".into()];
    let specs = vec![
        spec("n", ParamType::Integer),
        spec("x", ParamType::Number),
        spec("b", ParamType::Boolean),
        spec("d", ParamType::Duration),
        spec("l", ParamType::List),
        spec("h", ParamType::Host),
        e,
    ];
    let p = ValidatedParams::validate(
        &specs,
        &raw(&[
            ("n", json!("42")),
            ("x", json!("1.5")),
            ("b", json!("yes")),
            ("d", json!("1m 30s")),
            ("l", json!("a, b,c")),
            ("h", json!("web-1.example.org")),
            ("mode", json!("safe")),
        ]),
    )
    .unwrap();
    assert_eq!(p.get("n"), Some(&ParamValue::Integer(42)));
    assert_eq!(p.get("x"), Some(&ParamValue::Number(1.5)));
    assert_eq!(p.get("b"), Some(&ParamValue::Boolean(true)));
    assert_eq!(p.get("d").unwrap().render(), "90");
    assert_eq!(
        p.get("l"),
        Some(&ParamValue::List(vec!["a".into(), "b".into(), "c".into()]))
    );
    assert_eq!(p.get("mode").unwrap().render(), "safe");
}

#[test]
fn reports_every_problem_with_its_parameter() {
    let mut lines = spec("lines", ParamType::Integer);
    lines.max = Some(1000.0);
    let mut host = spec("host", ParamType::Host);
    host.required = true;
    let errors = ValidatedParams::validate(
        &[lines, host],
        &raw(&[("lines", json!("5000")), ("line", json!(3))]),
    )
    .unwrap_err();
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "parameter `line`: unknown parameter (did you mean `lines`?)",
            "parameter `lines`: must be at most 1000",
            "parameter `host`: is required",
        ]
    );
}

#[test]
fn rejects_bad_types_and_dangerous_text() {
    let s = spec("s", ParamType::String);
    assert!(s.coerce(&json!("a\0b")).unwrap_err().contains("NUL"));
    assert!(s.coerce(&json!({"a": 1})).is_err());
    let h = spec("h", ParamType::Host);
    assert!(h.coerce(&json!("-oProxyCommand=x")).is_err());
    assert!(h.coerce(&json!("a;b")).is_err());
    let n = spec("n", ParamType::Integer);
    assert!(n.coerce(&json!("1e3")).is_err());
    assert!(n.coerce(&json!(1.5)).is_err());
    let x = spec("x", ParamType::Number);
    assert!(x.coerce(&json!("NaN")).is_err());
}

#[test]
fn defaults_fill_in_and_secrets_are_masked() {
    let mut token = spec("token", ParamType::Secret);
    token.required = true;
    let mut lines = spec("lines", ParamType::Integer);
    lines.default = Some(ParamValue::Integer(10));
    let specs = vec![token, lines];
    let p = ValidatedParams::validate(&specs, &raw(&[("token", json!("hunter2"))])).unwrap();
    assert_eq!(p.secret_values(), ["hunter2"]);
    assert_eq!(
        p.to_masked_json(&specs),
        json!({"token": "****", "lines": 10})
    );
}

#[test]
fn suggestions_only_for_near_misses() {
    assert_eq!(closest("hots", &["host", "lines"]), Some("host"));
    assert_eq!(closest("zzzzzz", &["host", "lines"]), None);
}

proptest! {
    #[test]
    fn validation_never_panics(
        key in ".{0,12}",
        text in ".{0,64}",
        n in any::<i64>(),
        x in any::<f64>(),
        b in any::<bool>(),
    ) {
        let mut e = spec("e", ParamType::Enum);
        e.choices = vec!["a".into()];
        let specs: Vec<ParamSpec> = ParamType::ALL.iter().map(|t| spec(t.as_str(), *t)).chain([e]).collect();
        for value in [json!(text), json!(n), json!(x), json!(b), json!([text.clone(), n]), json!(null), json!({"k": text.clone()})] {
            for s in &specs {
                let mut r = RawParams::new();
                r.insert(s.name.clone(), value.clone());
                r.insert(key.clone(), value.clone());
                let _ = ValidatedParams::validate(&specs, &r);
            }
        }
    }

    #[test]
    fn accepted_text_never_carries_nul(text in "\\PC{0,40}") {
        let s = spec("s", ParamType::String);
        if let Ok(v) = s.coerce(&json!(text)) {
            prop_assert!(!v.render().contains('\0'));
        }
    }
}
