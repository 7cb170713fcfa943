use proptest::prelude::*;

use super::ls;
use crate::alerts::{MatchOp, Matcher, Matchers};

fn m(text: &str) -> Matchers {
    Matchers::parse(text).unwrap()
}

fn position(text: &str) -> usize {
    Matchers::parse(text).unwrap_err().position
}

#[test]
fn braced_and_bare_lists() {
    let braced = m(r#"{alertname="Disk", severity=~"crit|page"}"#);
    let bare = m(r#"alertname=Disk,severity=~"crit|page""#);
    assert_eq!(braced, bare);
    let parts: Vec<_> = braced
        .iter()
        .map(|x| (x.name(), x.op(), x.value()))
        .collect();
    assert_eq!(
        parts,
        [
            ("alertname", MatchOp::Eq, "Disk"),
            ("severity", MatchOp::Re, "crit|page")
        ]
    );
    assert_eq!(m(" { a = \"1\" , b != 2 , } ").len(), 2);
    assert_eq!(m("a!~x").iter().next().unwrap().op(), MatchOp::NotRe);
    assert!(m("{}").is_empty());
    assert!(m("").is_empty());
    assert!(m("  ").is_empty());
}

#[test]
fn quoted_values_and_escapes() {
    let parsed = m(r#"a="x, y", b="q\"uote", c="back\\slash", d="new\nline", e=~"\d+""#);
    let values: Vec<_> = parsed.iter().map(Matcher::value).collect();
    assert_eq!(
        values,
        ["x, y", "q\"uote", "back\\slash", "new\nline", "\\d+"]
    );
    assert_eq!(m(r#"a="""#).iter().next().unwrap().value(), "");
}

#[test]
fn errors_name_the_column() {
    assert_eq!(position("alertname"), 9);
    assert_eq!(position(r#"{a="b""#), 0);
    assert_eq!(position(r#"a="b"#), 2);
    assert_eq!(position("1a=b"), 0);
    assert_eq!(position("a=b c"), 4);
    assert_eq!(position("a=b,,c=d"), 4);
    assert_eq!(position("a="), 2);
    assert_eq!(position(r#"a=~"(""#), 3);
    assert_eq!(position(r#"{a="b"} x"#), 8);
    assert_eq!(position("a=b=c"), 3);
    let e = Matchers::parse("a=b c").unwrap_err();
    assert!(e.to_string().starts_with("column 5: "), "{e}");
    assert!(e.message.contains("quote"), "{e}");
}

#[test]
fn regexes_are_fully_anchored() {
    let re = m(r#"severity=~"crit|page""#);
    assert!(re.matches(&ls(&[("severity", "page")])));
    assert!(re.matches(&ls(&[("severity", "crit")])));
    assert!(!re.matches(&ls(&[("severity", "pager")])));
    assert!(!re.matches(&ls(&[("severity", "xcrit")])));
    let not = m(r#"severity!~"crit|page""#);
    assert!(not.matches(&ls(&[("severity", "pager")])));
    assert!(!not.matches(&ls(&[("severity", "page")])));
    // A value that would leave the anchors is refused.
    assert!(Matchers::parse(r#"a=~"x)|(y""#).is_err());
}

#[test]
fn a_missing_label_is_the_empty_string() {
    let none = ls(&[("job", "node")]);
    assert!(m(r#"instance="""#).matches(&none));
    assert!(!m(r#"instance!="""#).matches(&none));
    assert!(m(r#"instance=~".*""#).matches(&none));
    assert!(!m(r#"instance=~".+""#).matches(&none));
    assert!(m(r#"instance!~"db-.*""#).matches(&none));
    assert!(!m(r#"instance="db-1""#).matches(&none));
    assert!(m("").matches(&none));
}

#[test]
fn prints_like_alertmanager() {
    let parsed = m(r#"b=~"x|y", a="1", c="q\"\\\n""#);
    assert_eq!(parsed.to_string(), r#"{b=~"x|y",a="1",c="q\"\\\n"}"#);
    assert_eq!(
        parsed.clone().sorted().to_string(),
        r#"{a="1",b=~"x|y",c="q\"\\\n"}"#
    );
    assert_eq!(Matchers::default().to_string(), "{}");
}

#[test]
fn sorted_by_name_then_value_then_operator() {
    let sorted = m(r#"b="2", a!="1", a="1", a="0""#).sorted();
    assert_eq!(sorted.to_string(), r#"{a="0",a="1",a!="1",b="2"}"#);
}

#[test]
fn one_matcher_from_str() {
    let one: Matcher = r#"job="node""#.parse().unwrap();
    assert_eq!(one.to_string(), r#"job="node""#);
    assert!("a=1,b=2".parse::<Matcher>().is_err());
    assert!("".parse::<Matcher>().is_err());
    assert!(Matcher::new("bad-name", MatchOp::Eq, "x").is_err());
    assert!(Matcher::new("a", MatchOp::Re, "(").is_err());
}

fn matcher_strategy() -> impl Strategy<Value = Matcher> {
    let name = "[a-zA-Z_][a-zA-Z0-9_]{0,8}";
    let plain = prop_oneof![Just(MatchOp::Eq), Just(MatchOp::NotEq)];
    let regex = prop_oneof![Just(MatchOp::Re), Just(MatchOp::NotRe)];
    prop_oneof![
        (name, plain, any::<String>()).prop_map(|(n, o, v)| Matcher::new(n, o, v).unwrap()),
        (name, regex.clone(), any::<String>()).prop_map(|(n, o, v)| Matcher::new(
            n,
            o,
            regex::escape(&v)
        )
        .unwrap()),
        (name, regex, "[a-z|.*+?()\\[\\]]{0,12}")
            .prop_filter_map("valid regex", |(n, o, v)| Matcher::new(n, o, v).ok()),
    ]
}

proptest! {
    #[test]
    fn parser_never_panics(text in any::<String>()) {
        let _ = Matchers::parse(&text);
    }

    #[test]
    fn parser_never_panics_on_matcher_like_text(text in r#"[{}a-c=!~,"\\ \n|.*()]{0,30}"#) {
        let _ = Matchers::parse(&text);
    }

    #[test]
    fn display_then_parse_round_trips(list in proptest::collection::vec(matcher_strategy(), 0..5)) {
        let matchers = Matchers::new(list);
        let text = matchers.to_string();
        prop_assert_eq!(Matchers::parse(&text).unwrap(), matchers.clone());
        // The bare form reads the same.
        let bare = text.trim_start_matches('{').trim_end_matches('}');
        prop_assert_eq!(Matchers::parse(bare).unwrap(), matchers);
    }
}
