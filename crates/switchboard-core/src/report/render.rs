//! The report for people: Markdown ([`markdown`]), one self-contained
//! HTML page that reads well printed ([`html`]: its style inline, no
//! script, nothing fetched), and the access matrix as CSV for a
//! spreadsheet ([`access_csv`]: one row per holder of a right).
//!
//! Text comes from the configuration and the directory, so every value is
//! escaped for its format: HTML by the template engine's autoescape,
//! Markdown table cells by [`cell`], and CSV cells that a spreadsheet would
//! read as a formula (`=`, `+`, `-`, `@`) are prefixed with `'`.
//!
//! Not here: what the report says (`mod.rs`, built by the engine).

use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, Value, context};
use serde::Serialize;

use super::{Access, Holder, Report};

const MARKDOWN: &str = include_str!("report.md.j2");
const HTML: &str = include_str!("report.html.j2");

/// A Markdown table cell: no line breaks; `|` and `<` escaped, so that a
/// name can neither end a cell nor start HTML.
fn cell(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
        .replace('|', "\\|")
        .replace('<', "&lt;")
}

/// `alice (api, chat:slack:#ops; sre-runs)`: who, through which doors, by
/// which policies.
fn holder_text(h: &Holder) -> String {
    format!(
        "{} ({}; {})",
        h.who,
        h.doors.join(", "),
        h.policies.join(", ")
    )
}

/// One row of the access matrix as the templates show it.
#[derive(Serialize)]
struct Row<'a> {
    access: &'a Access,
    holders: Vec<String>,
}

fn render(template: &'static str, html: bool, report: &Report) -> String {
    let mut env = Environment::new();
    env.set_auto_escape_callback(move |_| {
        if html {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.add_filter("cell", |s: String| cell(&s));
    let rows: Vec<Row<'_>> = report
        .access
        .iter()
        .map(|access| Row {
            access,
            holders: holders(access).iter().map(holder_text).collect(),
        })
        .collect();
    env.add_template("report", template)
        .and_then(|()| env.get_template("report"))
        .and_then(|t| {
            t.render(context! {
                r => Value::from(Serde(report)),
                rows => Value::from(Serde(&rows)),
            })
        })
        .unwrap_or_else(|e| format!("the report could not be rendered: {e}"))
}

/// Every holder of a right: principals, then groups, then everyone.
fn holders(a: &Access) -> Vec<Holder> {
    a.principals
        .iter()
        .chain(&a.groups)
        .chain(&a.everyone)
        .cloned()
        .collect()
}

/// The report in Markdown.
pub fn markdown(report: &Report) -> String {
    render(MARKDOWN, false, report)
}

/// The report as one HTML page.
pub fn html(report: &Report) -> String {
    render(HTML, true, report)
}

/// A value a spreadsheet shows as it is.
fn inert(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// The access matrix as CSV: a header, then one row per holder of each
/// right; a right nobody holds is a row with an empty holder.
pub fn access_csv(report: &Report) -> String {
    let mut out = csv::Writer::from_writer(Vec::new());
    let header = [
        "action", "verb", "host", "approval", "holder", "kind", "doors", "policies",
    ];
    // Writing to memory cannot fail.
    let _ = out.write_record(header);
    for a in &report.access {
        let host = a.host.clone().unwrap_or_default();
        let approval = a.approval.clone().unwrap_or_default();
        let all = holders(a);
        let rows: Vec<Option<&Holder>> = if all.is_empty() {
            vec![None]
        } else {
            all.iter().map(Some).collect()
        };
        for h in rows {
            let (who, kind, doors, policies) = match h {
                Some(h) => (
                    h.who.clone(),
                    h.kind.clone(),
                    h.doors.join(" "),
                    h.policies.join(" "),
                ),
                None => Default::default(),
            };
            let record = [
                &a.action, &a.verb, &host, &approval, &who, &kind, &doors, &policies,
            ];
            let _ = out.write_record(record.map(|v| inert(v)));
        }
    }
    String::from_utf8(out.into_inner().unwrap_or_default()).unwrap_or_default()
}
