use proptest::prelude::*;
use serde_json::json;

use super::*;

const SAMPLE: &str = r#"
[graphs.cpu]
title = "CPU busy on {{ host }}"
description = "Share of CPU time not idle"
query = '100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle", instance="{{ address }}:9100"}[5m])))'
unit = "%"
legend = "{{ instance }}"
range = "1h"

[graphs.load-avg]
title = "Load"
query = 'node_load1{region="{{ vars.region }}"}'
unit = ""
range = "30m"
"#;

fn sample() -> Graphs {
    Graphs::parse(SAMPLE).unwrap()
}

fn errors(text: &str) -> Vec<CatalogError> {
    Graphs::parse(text).unwrap_err()
}

/// Reads back the content of a PromQL double-quoted string (what the
/// Prometheus lexer and Go's `strconv.Unquote` accept), up to its closing
/// quote: the content and the rest after the quote.
fn unquote_promql(text: &str) -> Result<(String, &str), String> {
    let mut out = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &text[i + 1..])),
            '\n' => return Err("newline in a string".into()),
            '\\' => {
                let (_, e) = chars.next().ok_or("dangling backslash")?;
                match e {
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'a' => out.push('\u{7}'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'v' => out.push('\u{b}'),
                    'u' => {
                        let hex: String = (0..4)
                            .map(|_| chars.next().map(|(_, h)| h).ok_or("short \\u"))
                            .collect::<Result<_, _>>()?;
                        let n = u32::from_str_radix(&hex, 16).map_err(|e| e.to_string())?;
                        out.push(char::from_u32(n).ok_or("bad \\u")?);
                    }
                    other => return Err(format!("unknown escape \\{other}")),
                }
            }
            c => out.push(c),
        }
    }
    Err("unterminated string".into())
}

#[test]
fn parses_the_sample() {
    let g = sample();
    assert_eq!(g.len(), 2);
    assert!(!g.is_empty());
    let cpu = g.get("cpu").unwrap();
    assert_eq!(cpu.title, "CPU busy on {{ host }}");
    assert_eq!(cpu.description, "Share of CPU time not idle");
    assert_eq!(cpu.unit, "%");
    assert_eq!(cpu.legend.as_deref(), Some("{{ instance }}"));
    assert_eq!(cpu.range, Duration::from_secs(3600));
    assert_eq!(cpu.line, 2);
    let load = g.get("load-avg").unwrap();
    assert_eq!((load.unit.as_str(), load.legend.as_ref()), ("", None));
    assert_eq!(load.description, "");
    assert_eq!(load.range, Duration::from_secs(1800));
    assert_eq!(load.line, 10);
    assert_eq!(
        g.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["cpu", "load-avg"]
    );
    assert!(g.get("mem").is_none());
}

#[test]
fn range_defaults_to_an_hour() {
    let g = Graphs::parse("[graphs.up]\ntitle = \"Up\"\nquery = \"up\"\nunit = \"\"\n").unwrap();
    assert_eq!(g.get("up").unwrap().range, DEFAULT_RANGE);
    assert!(Graphs::parse("").unwrap().is_empty());
}

#[test]
fn renders_title_and_query() {
    let cpu = sample().get("cpu").cloned().unwrap();
    let r = cpu
        .render(&json!({"host": "web-1", "address": "10.0.0.5", "vars": {}}))
        .unwrap();
    assert_eq!(r.title, "CPU busy on web-1");
    assert_eq!(
        r.query,
        r#"100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle", instance="10.0.0.5:9100"}[5m])))"#
    );
    let load = sample().get("load-avg").cloned().unwrap();
    let r = load.render(&json!({"vars": {"region": "fra1"}})).unwrap();
    assert_eq!(r.query, r#"node_load1{region="fra1"}"#);
}

#[test]
fn a_missing_variable_is_an_error_naming_the_graph() {
    let cpu = sample().get("cpu").cloned().unwrap();
    let e = cpu.render(&json!({"host": "web-1"})).unwrap_err();
    assert!(e.contains("graph `cpu`: query"), "{e}");
    assert!(e.contains("undefined"), "{e}");
}

#[test]
fn hostile_values_stay_inside_their_label_matcher() {
    let cpu = sample().get("cpu").cloned().unwrap();
    for hostile in [
        r#"x"} or vector(1) or {a=""#,
        r#"\"} or vector(1) or {a="\"#,
        "10.0.0.5\"}\n or vector(1) # ",
        "a\\",
        "\u{0}\u{1b}[31m\r\t",
        r#"{{ 7 * 7 }}"#,
    ] {
        let r = cpu
            .render(&json!({"host": hostile, "address": hostile}))
            .unwrap();
        let (before, rest) = r.query.split_once("instance=\"").unwrap();
        assert!(before.ends_with("{mode=\"idle\", "));
        let (value, after) = unquote_promql(rest).unwrap();
        assert_eq!(value, format!("{hostile}:9100"));
        assert_eq!(after, "}[5m])))");
        assert!(!r.query.contains('\n'));
        // The title is plain text, unchanged.
        assert_eq!(r.title, format!("CPU busy on {hostile}"));
    }
}

#[test]
fn every_printed_value_is_escaped_whatever_its_type_or_filter() {
    let g = Graphs::parse(
        r#"
[graphs.t]
title = "t"
unit = ""
query = 'm{a="{{ v | safe }}", b="{{ n }}", c="{{ l }}", d="{{ v ~ "x" }}"}'
"#,
    )
    .unwrap();
    let r = g
        .get("t")
        .unwrap()
        .render(&json!({"v": "\"}", "n": 5, "l": ["\"", 1]}))
        .unwrap();
    assert_eq!(r.query, r#"m{a="\"}", b="5", c="['\"', 1]", d="\"}x"}"#);
}

#[test]
fn values_outside_double_quoted_strings_are_refused() {
    for query in [
        "rate(x[{{ window }}])",
        "up{job='{{ job }}'}",
        "up{job=`{{ job }}`}",
        "up # {{ job }}",
        r#"up{a="\"", b={{ x }}}"#,
        r#"up{a="x"} {{ y }}"#,
    ] {
        let text = format!("[graphs.t]\ntitle = \"t\"\nunit = \"\"\nquery = '''{query}'''\n");
        let e = errors(&text);
        assert_eq!(e.len(), 1, "{query}: {e:?}");
        assert!(
            e[0].message.contains("double-quoted string"),
            "{query}: {e:?}"
        );
        assert_eq!(e[0].line, Some(4));
        assert_eq!(e[0].key.as_deref(), Some("graphs.t.query"));
    }
    // Tags that print nothing may stand anywhere.
    let ok = r#"[graphs.t]
title = "t"
unit = ""
query = '''{# note #}up{% if job %}{job="{{ job }}", x="a\"{{ y }}"}{% endif %} # it's "fine"'''
"#;
    Graphs::parse(ok).unwrap();
}

#[test]
fn problems_are_reported_with_line_and_key() {
    let text = r#"
[graphs.Bad_Name]
title = "x"
query = "up"
unit = ""

[graphs.cpu]
title = "{{ unclosed"
query = "up"
unit = "%"
colour = "red"
range = "0s"

[graphs.mem]
title = "Memory"
query = 7
legend = "{% if %}"

[graphs.disk]
title = "Disk"
query = "up"
unit = "B"
range = "soon"

[graphs.net]
title = "Net"
query = "   "
unit = ""
range = "400d"

[dashboards]
x = 1
"#;
    let e = errors(text);
    let found: Vec<(Option<usize>, Option<&str>)> =
        e.iter().map(|e| (e.line, e.key.as_deref())).collect();
    assert_eq!(
        found,
        [
            (Some(2), Some("graphs.Bad_Name")),
            (Some(8), Some("graphs.cpu.title")),
            (Some(11), Some("graphs.cpu.colour")),
            (Some(12), Some("graphs.cpu.range")),
            (Some(14), Some("graphs.mem.unit")),
            (Some(16), Some("graphs.mem.query")),
            (Some(17), Some("graphs.mem.legend")),
            (Some(23), Some("graphs.disk.range")),
            (Some(27), Some("graphs.net.query")),
            (Some(29), Some("graphs.net.range")),
            (Some(31), Some("dashboards")),
        ],
        "{e:#?}"
    );
    assert!(e.iter().all(|e| e.file == Path::new(FILE)));
    let msg = |key: &str| {
        e.iter()
            .find(|e| e.key.as_deref() == Some(key))
            .map(|e| e.message.clone())
            .unwrap()
    };
    assert!(msg("graphs.Bad_Name").contains("not a valid graph name"));
    assert!(msg("graphs.cpu.colour").contains("unknown key"));
    assert!(msg("graphs.cpu.range").contains("longer than zero"));
    assert!(msg("graphs.mem.unit").contains("missing"));
    assert!(msg("graphs.mem.query").contains("must be a string"));
    assert!(msg("graphs.disk.range").contains("expected a duration"));
    assert!(msg("graphs.net.query").contains("must not be empty"));
    assert!(msg("graphs.net.range").contains("at most"));
}

#[test]
fn a_near_miss_key_gets_a_hint() {
    let e = errors("[graphs.up]\ntitle = \"Up\"\nquery = \"up\"\nunits = \"\"\n");
    let unknown = e.iter().find(|e| e.line == Some(4)).unwrap();
    assert!(unknown.message.contains("did you mean `unit`?"), "{e:?}");
    let e = errors("[graph.up]\ntitle = \"Up\"\n");
    assert!(e[0].message.contains("did you mean `graphs`?"), "{e:?}");
}

#[test]
fn invalid_toml_is_reported_with_its_line() {
    let e = errors("[graphs.up]\ntitle = \"Up\nquery = \"up\"\n");
    assert_eq!(e[0].line, Some(2));
    assert!(e[0].message.starts_with("invalid TOML"));
    let e = errors("graphs = 3\n");
    assert!(e[0].message.contains("must be a table"));
    let e = errors("[graphs]\nup = \"x\"\n");
    assert_eq!(
        (e[0].line, e[0].key.as_deref()),
        (Some(2), Some("graphs.up"))
    );
}

#[test]
fn lists_the_variables_of_title_and_query() {
    let g = sample();
    assert_eq!(
        g.get("cpu").unwrap().variables(),
        ["address", "host"].map(String::from).into()
    );
    assert_eq!(
        g.get("load-avg").unwrap().variables(),
        ["vars"].map(String::from).into()
    );
}

#[test]
fn legends() {
    let g = sample();
    let labels: BTreeMap<String, String> = [("instance", "10.0.0.5:9100"), ("job", "node")]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into();
    let cpu = g.get("cpu").unwrap();
    assert_eq!(cpu.legend(&labels, "q"), "10.0.0.5:9100");
    // A label the series lacks: the default label.
    assert_eq!(
        cpu.legend(&BTreeMap::from([("job".into(), "node".into())]), "q"),
        "job=node"
    );
    let load = g.get("load-avg").unwrap();
    assert_eq!(
        load.legend(&labels, "q"),
        "instance=10.0.0.5:9100, job=node"
    );
    assert_eq!(load.legend(&BTreeMap::new(), "sum(up)"), "sum(up)");
}

#[test]
fn load_reads_the_file_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut errors = Vec::new();
    assert!(Graphs::load(dir.path(), &mut errors).is_empty());
    assert!(errors.is_empty());
    std::fs::write(dir.path().join(FILE), SAMPLE).unwrap();
    assert_eq!(Graphs::load(dir.path(), &mut errors), sample());
    assert!(errors.is_empty());
    std::fs::write(dir.path().join(FILE), "[graphs.x]\nquery = 1\n").unwrap();
    assert!(Graphs::load(dir.path(), &mut errors).is_empty());
    assert!(!errors.is_empty());
    assert!(errors.iter().all(|e| e.file == Path::new(FILE)));
}

#[test]
fn escapes() {
    assert_eq!(escape_promql_string("plain 10.0.0.5"), "plain 10.0.0.5");
    assert_eq!(escape_promql_string(r#"a"b\c"#), r#"a\"b\\c"#);
    assert_eq!(escape_promql_string("l1\nl2\r\t"), r"l1\nl2\r\t");
    assert_eq!(
        escape_promql_string("\u{0}\u{7f}\u{85}"),
        r"\u0000\u007f\u0085"
    );
    assert_eq!(escape_promql_string("née ✓ 'x' `y`"), "née ✓ 'x' `y`");
}

proptest! {
    #[test]
    fn parse_never_panics(text in "\\PC{0,400}") {
        let _ = Graphs::parse(&text);
    }

    #[test]
    fn parse_never_panics_on_near_valid_files(
        name in "[a-zA-Z0-9_.-]{0,12}",
        title in "\\PC{0,30}",
        query in "\\PC{0,60}",
        range in "\\PC{0,8}",
    ) {
        let text = format!(
            "[graphs.{name}]\ntitle = {title:?}\nquery = {query:?}\nunit = \"\"\nrange = {range:?}\n"
        );
        if let Ok(g) = Graphs::parse(&text) {
            for spec in g.iter() {
                let _ = spec.render(&json!({}));
                let _ = spec.variables();
            }
        }
    }

    #[test]
    fn the_escaper_round_trips(value in "\\PC*|[\"\\\\\n\r\t\u{0}-\u{1f}a-z{}=]{0,40}") {
        let quoted = format!("{}\"tail", escape_promql_string(&value));
        let (back, rest) = unquote_promql(&quoted).unwrap();
        prop_assert_eq!(back, value);
        prop_assert_eq!(rest, "tail");
    }

    #[test]
    fn rendered_values_never_leave_their_string(value in "\\PC{0,40}|[\"\\\\\n{}=]{0,20}") {
        let cpu = sample().get("cpu").cloned().unwrap();
        let r = cpu.render(&json!({"host": "h", "address": value})).unwrap();
        let rest = r.query.split_once("instance=\"").unwrap().1;
        let (back, after) = unquote_promql(rest).unwrap();
        prop_assert_eq!(back, format!("{value}:9100"));
        prop_assert_eq!(after, "}[5m])))");
    }
}
