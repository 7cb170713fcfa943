use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::params::{ParamSpec, ParamType, RawParams};

fn spec(toml_text: &str) -> HttpSpec {
    toml::from_str(toml_text).unwrap()
}

fn specs() -> Vec<ParamSpec> {
    vec![
        ParamSpec::new("app", ParamType::String),
        ParamSpec::new("version", ParamType::String),
        ParamSpec::new("token", ParamType::Secret),
        ParamSpec::new("replicas", ParamType::Integer),
        ParamSpec::new("note", ParamType::String),
    ]
}

fn declared() -> Vec<String> {
    specs().into_iter().map(|s| s.name).collect()
}

fn params(pairs: &[(&str, serde_json::Value)]) -> ValidatedParams {
    let raw: RawParams = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    ValidatedParams::validate(&specs(), &raw).unwrap()
}

fn render(s: &HttpSpec, pairs: &[(&str, serde_json::Value)]) -> Result<HttpRequest, String> {
    let names = declared();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    s.render(&params(pairs), &names)
}

fn problems(s: &HttpSpec) -> Vec<String> {
    s.check(&declared())
        .into_iter()
        .map(|(k, m)| format!("{k}: {m}"))
        .collect()
}

const DEPLOY: &str = r#"
method = "post"
url = "https://deployer.internal/api/apps/{{ app }}/deploy?note={{ note }}#{{ app }}"
headers = { Authorization = "Bearer {{ token }}", "Content-Type" = "application/json" }
body = '{"version": {{ version | tojson }}, "replicas": {{ replicas | tojson }}}'
expect_status = [200, 201, 202]
"#;

#[test]
fn a_good_spec_has_no_problems_and_renders() {
    let s = spec(DEPLOY);
    assert_eq!(problems(&s), Vec::<String>::new());
    let req = render(
        &s,
        &[
            ("app", "web".into()),
            ("version", "1.2.3".into()),
            ("token", "t0k".into()),
            ("replicas", 3.into()),
            ("note", "first try".into()),
        ],
    )
    .unwrap();
    assert_eq!(req.method, "POST");
    assert_eq!(
        req.url,
        "https://deployer.internal/api/apps/web/deploy?note=first%20try#web"
    );
    assert_eq!(
        req.headers,
        [
            ("Authorization".to_owned(), "Bearer t0k".to_owned()),
            ("Content-Type".to_owned(), "application/json".to_owned())
        ]
    );
    let body: serde_json::Value = serde_json::from_slice(req.body.as_ref().unwrap()).unwrap();
    assert_eq!(body, json!({"version": "1.2.3", "replicas": 3}));
    // Debug shows no value.
    let shown = format!("{req:?}");
    assert!(!shown.contains("t0k") && !shown.contains("web"), "{shown}");
    assert!(s.expects(201) && !s.expects(204));
    assert_eq!(s.expected_text(), "200, 201, 202");
    let any = spec("url = \"http://x\"");
    assert_eq!(any.method, "GET");
    assert!(any.expects(204) && !any.expects(302));
    assert_eq!(any.expected_text(), "2xx");
}

#[test]
fn hostile_values_stay_inside_their_part_of_the_url() {
    let s = spec(r#"url = "https://api.internal/apps/{{ app }}/x?v={{ version }}&n=1#{{ note }}""#);
    for (hostile, encoded) in [
        ("../admin", "..%2Fadmin"),
        ("x?y=1", "x%3Fy%3D1"),
        ("a#b", "a%23b"),
        ("@evil.com", "%40evil.com"),
        ("a&b=c", "a%26b%3Dc"),
        ("%2e%2e", "%252e%252e"),
        ("a\\b", "a%5Cb"),
        ("x\r\nHost: evil", "x%0D%0AHost%3A%20evil"),
        ("{{ 7 * 7 }}", "%7B%7B%207%20%2A%207%20%7D%7D"),
    ] {
        let req = render(
            &s,
            &[
                ("app", hostile.into()),
                ("version", hostile.into()),
                ("note", hostile.into()),
            ],
        )
        .unwrap();
        assert_eq!(
            req.url,
            format!("https://api.internal/apps/{encoded}/x?v={encoded}&n=1#{encoded}"),
            "{hostile}"
        );
    }
    // Filters and `safe` do not get around the encoding.
    let s = spec(r#"url = "https://api.internal/{{ app | upper }}/{{ app | safe }}""#);
    let req = render(&s, &[("app", "a/b".into())]).unwrap();
    assert_eq!(req.url, "https://api.internal/A%2FB/a%2Fb");
    // A value that is a whole `.` or `..` segment would climb: refused.
    let s = spec(r#"url = "https://api.internal/apps/{{ app }}/deploy""#);
    for dots in ["..", "."] {
        let err = render(&s, &[("app", dots.into())]).unwrap_err();
        assert!(err.contains("`..` segment"), "{dots}: {err}");
    }
}

#[test]
fn header_values_cannot_break_lines_and_json_leaves_stay_strings() {
    let s = spec(
        r#"url = "https://h/x"
headers = { "X-Note" = "n={{ note }}" }"#,
    );
    for bad in ["a\r\nX-Admin: 1", "a\nb", "a\rb"] {
        let err = render(&s, &[("note", bad.into())]).unwrap_err();
        assert!(
            err.contains("header `X-Note`") && !err.contains("X-Admin"),
            "{err}"
        );
    }
    assert_eq!(
        render(&s, &[("note", "fine: yes".into())]).unwrap().headers,
        [("X-Note".to_owned(), "n=fine: yes".to_owned())]
    );

    let s = spec(
        r#"url = "https://h/x"
json = { version = "{{ version }}", nested = { list = ["{{ app }}", 7, true] }, fixed = 1 }"#,
    );
    assert_eq!(problems(&s), Vec::<String>::new());
    let hostile = r#"1", "admin": true, "x": ""#;
    let req = render(
        &s,
        &[("version", hostile.into()), ("app", "{\"a\":1}".into())],
    )
    .unwrap();
    let body: serde_json::Value = serde_json::from_slice(req.body.as_ref().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"version": hostile, "nested": {"list": ["{\"a\":1}", 7, true]}, "fixed": 1})
    );
    assert!(
        req.headers
            .contains(&("Content-Type".to_owned(), "application/json".to_owned()))
    );

    // In a raw body, `tojson` keeps a value one JSON string.
    let s = spec(
        r#"url = "https://h/x"
body = '{"version": {{ version | tojson }}}'"#,
    );
    let req = render(&s, &[("version", hostile.into())]).unwrap();
    let body: serde_json::Value = serde_json::from_slice(req.body.as_ref().unwrap()).unwrap();
    assert_eq!(body, json!({"version": hostile}));
}

#[test]
fn check_reports_each_problem_with_its_key() {
    let all = |text: &str| problems(&spec(text)).join("\n");
    let e = all(r#"url = "https://{{ app }}.internal/x""#);
    assert!(
        e.contains("url: the scheme and host cannot use parameters"),
        "{e}"
    );
    let e = all(r#"url = "{{ app }}/x""#);
    assert!(
        e.contains("url: the scheme and host cannot use parameters"),
        "{e}"
    );
    let e = all(r#"url = "https://api.internal:{{ replicas }}/x""#);
    assert!(
        e.contains("url: the scheme and host cannot use parameters"),
        "{e}"
    );
    let e = all(r#"url = "https://api{% if app %}.evil{% endif %}/x""#);
    assert!(
        e.contains("url: the scheme and host cannot use parameters"),
        "{e}"
    );
    let e = all(r#"url = "ftp://h/x""#);
    assert!(
        e.contains("url: the scheme must be `http` or `https`"),
        "{e}"
    );
    let e = all(r#"url = "/relative/{{ app }}""#);
    assert!(e.contains("url: must start with"), "{e}");
    let e = all(r#"url = "https:///x""#);
    assert!(e.contains("url: the URL has no host"), "{e}");
    let e = all(r#"url = "https://user:pw@h/x""#);
    assert!(
        e.contains("url: credentials do not belong in the URL"),
        "{e}"
    );
    let e = all(r#"url = "https://h:99999/x""#);
    assert!(e.contains("url: `99999` is not a valid port"), "{e}");
    let e = all(r#"url = "https://h/a b""#);
    assert!(e.contains("url: the URL contains a space"), "{e}");
    let e = all(r#"url = "https://h/{{ ap }}""#);
    assert!(
        e.contains("url: `ap` is not a parameter of this action (did you mean `app`?)"),
        "{e}"
    );
    let e = all(r#"url = "https://h/{{ app""#);
    assert!(e.contains("url: invalid template"), "{e}");
    assert_eq!(all(r#"url = "https://[::1]:8443/{{ app }}""#), "");

    let e = all(r#"url = "https://h/x"
method = "TRACE"
headers = { "Bad Name" = "x", Host = "h", "x-a" = "1", "X-A" = "2", "X-B" = "{{ nope }}" }
body = "{{ app }}"
json = { a = "{{ app }}", "{{ app }}" = 1 }
expect_status = [200, 99, 600]"#);
    for want in [
        "method: `TRACE` is not a supported method",
        "headers: `Bad Name` is not a valid header name",
        "headers: header `Host` is set by Switchboard",
        "headers: header `x-a` is given twice",
        "headers: header `X-B`: `nope` is not a parameter of this action",
        "json: `body` and `json` cannot both be given",
        "json: key `{{ app }}`: keys cannot use parameters",
        "expect_status: 99 is not an HTTP status",
        "expect_status: 600 is not an HTTP status",
    ] {
        assert!(e.contains(want), "missing {want:?} in\n{e}");
    }
}

#[test]
fn unknown_keys_are_refused_when_read() {
    let err = toml::from_str::<HttpSpec>("url = \"https://h\"\nexpect = [200]\n").unwrap_err();
    assert!(err.to_string().contains("unknown field `expect`"), "{err}");
}

#[test]
fn literal_urls_are_checked() {
    assert!(check_literal_url("https://cmdb.internal/targets?x=1").is_ok());
    assert!(check_literal_url("http://127.0.0.1:8080/t").is_ok());
    assert!(check_literal_url("cmdb.internal/targets").is_err());
    assert!(check_literal_url("https://{{ x }}/").is_err());
    assert!(check_literal_url("https://a@b/").is_err());
}

proptest! {
    /// Whatever a value is, the rendered URL keeps its host, its path
    /// segments and its query parameters.
    #[test]
    fn no_value_changes_the_shape_of_the_url(value in "\\PC{0,30}") {
        let s = spec(r#"url = "https://api.internal/apps/{{ app }}/x?v={{ version }}""#);
        match render(&s, &[("app", value.clone().into()), ("version", value.clone().into())]) {
            Ok(req) => {
                let rest = req.url.strip_prefix("https://api.internal/apps/").unwrap();
                let (path, query) = rest.split_once('?').unwrap();
                prop_assert_eq!(path.matches('/').count(), 1);
                prop_assert!(path.ends_with("/x"));
                prop_assert!(!query.contains(['&', '#', '?', '/']));
                prop_assert!(query.starts_with("v="));
            }
            Err(e) => prop_assert!(e.contains("segment"), "{}", e),
        }
    }

    #[test]
    fn checking_never_panics(url in "(https?://|\\{\\{ app \\}\\}|[a-z]|/|:|\\[|\\]|@|\\?|#|%|\\{%|[0-9]){0,30}") {
        let s = HttpSpec { url, ..spec("url = \"http://h\"") };
        let _ = s.check(&declared());
        let _ = render(&s, &[("app", "a".into())]);
    }
}
