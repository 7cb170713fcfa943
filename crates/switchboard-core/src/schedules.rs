//! Schedules: the catalog's `schedules.toml`, cron patterns that run an
//! action (or a workflow, which the catalog lists as an action) at their
//! ticks, in a time zone.
//!
//! ```toml
//! [[schedules]]
//! name     = "nightly-disk-check"
//! action   = "host.disk"
//! cron     = "30 2 * * *"          # 5 fields; 6 with seconds first; or @hourly, @daily, …
//! timezone = "Europe/Berlin"       # IANA name (default UTC)
//! params   = { host = "db-1", path = "/" }
//! run_as   = "svc:scheduler"       # the principal the run is requested as
//! missed   = "run_once"            # after downtime: run the latest missed tick once, or "skip" (default)
//! ```
//!
//! Owns reading the file ([`Schedules::parse`], every problem with line and
//! key) and the ticks of a schedule ([`Schedule::next_after`],
//! [`Schedule::latest_at_or_before`]): cron matching and time zones come
//! from `croner` over `jiff`, whose tz database decides daylight saving
//! time — a wall-clock time skipped by a transition fires at the first
//! instant after it (when the clock jumps), a repeated one fires once. Not here: checking that
//! the action exists and takes these parameters (the catalog), and the
//! timer, claiming ticks and submitting runs (the engine).

use std::collections::BTreeMap;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::tz::TimeZone;
use toml::de::DeTable;

use crate::alerts::toml_reader::{Reader, join};
use crate::catalog::CatalogError;
use crate::ids::Timestamp;
use crate::params::{RawParams, closest};

/// The file, relative to the catalog root.
pub const FILE: &str = "schedules.toml";

const TOP_KEYS: [&str; 1] = ["schedules"];
const SCHEDULE_KEYS: [&str; 9] = [
    "name",
    "description",
    "action",
    "cron",
    "timezone",
    "params",
    "run_as",
    "missed",
    "enabled",
];

/// Longest name of a schedule or hook.
pub const MAX_NAME: usize = 64;

/// Whether `name` may name a schedule or a hook: it goes into an origin
/// (`schedule:NAME`) and a URL path (`/hooks/NAME`), so letters, digits,
/// `.`, `_` and `-` only.
pub fn valid_trigger_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// What a schedule does about ticks that passed while no Switchboard ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Missed {
    /// Run the latest missed tick once.
    RunOnce,
    /// Skip them (recorded in the audit log).
    #[default]
    Skip,
}

impl Missed {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RunOnce => "run_once",
            Self::Skip => "skip",
        }
    }
}

/// One schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    pub description: String,
    pub action: String,
    /// The pattern as written.
    pub cron: String,
    /// The IANA name of its time zone, as written (`UTC` by default).
    pub timezone: String,
    pub params: RawParams,
    pub run_as: String,
    pub missed: Missed,
    pub enabled: bool,
    /// The line of its `[[schedules]]` entry.
    pub line: usize,
    pattern: Cron,
    zone: TimeZone,
}

impl Schedule {
    /// A schedule from its parts, the cron pattern and time zone checked;
    /// the error says which part is wrong and why.
    pub fn new(
        name: &str,
        action: &str,
        cron: &str,
        timezone: &str,
        run_as: &str,
    ) -> Result<Self, (&'static str, String)> {
        let pattern = parse_cron(cron).map_err(|e| ("cron", e))?;
        let zone = parse_zone(timezone).map_err(|e| ("timezone", e))?;
        Ok(Self {
            name: name.to_owned(),
            description: String::new(),
            action: action.to_owned(),
            cron: cron.to_owned(),
            timezone: timezone.to_owned(),
            params: RawParams::new(),
            run_as: run_as.to_owned(),
            missed: Missed::Skip,
            enabled: true,
            line: 0,
            pattern,
            zone,
        })
    }

    /// The first tick strictly after `t`; `None` when the pattern never
    /// fires again.
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let start = self.zoned(t)?;
        let next = self.pattern.find_next_occurrence(&start, false).ok()?;
        Some(Timestamp(next.timestamp().as_microsecond()))
    }

    /// The last tick at or before `t`.
    pub fn latest_at_or_before(&self, t: Timestamp) -> Option<Timestamp> {
        let start = self.zoned(t)?;
        let previous = self.pattern.find_previous_occurrence(&start, true).ok()?;
        Some(Timestamp(previous.timestamp().as_microsecond()))
    }

    /// How many ticks fall in `(after, upto]`, counting no further than `cap`.
    pub fn ticks_between(&self, after: Timestamp, upto: Timestamp, cap: usize) -> usize {
        let mut n = 0;
        let mut t = after;
        while n < cap {
            match self.next_after(t) {
                Some(next) if next <= upto => {
                    n += 1;
                    t = next;
                }
                _ => break,
            }
        }
        n
    }

    /// `t` as the wall clock of the schedule's zone reads it:
    /// `2026-03-29 03:30:00 CEST`.
    pub fn local_time(&self, t: Timestamp) -> String {
        self.zoned(t).map_or_else(
            || t.to_string(),
            |z| z.strftime("%Y-%m-%d %H:%M:%S %Z").to_string(),
        )
    }

    /// `t`, cut to the whole second, in the schedule's zone (ticks fall on
    /// whole seconds).
    fn zoned(&self, t: Timestamp) -> Option<jiff::Zoned> {
        let seconds = t.0.div_euclid(1_000_000);
        jiff::Timestamp::from_second(seconds)
            .ok()
            .map(|ts| ts.to_zoned(self.zone.clone()))
    }
}

/// A 5-field pattern (minute hour day-of-month month day-of-week), a
/// 6-field one with seconds first, or a nickname (`@hourly`, `@daily`,
/// `@weekly`, `@monthly`, `@yearly`). A pattern that can never fire is
/// refused too.
fn parse_cron(text: &str) -> Result<Cron, String> {
    let fields = text.split_whitespace().count();
    if !text.trim_start().starts_with('@') && !(5..=6).contains(&fields) {
        return Err(format!(
            "`{text}` has {fields} fields: write 5 (minute hour day-of-month month day-of-week), or 6 with seconds first"
        ));
    }
    let cron = CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(text)
        .map_err(|e| format!("`{text}` is not a cron pattern: {e}"))?;
    let now = jiff::Timestamp::now().to_zoned(TimeZone::UTC);
    if cron.find_next_occurrence(&now, false).is_err() {
        return Err(format!("`{text}` never fires"));
    }
    Ok(cron)
}

fn parse_zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name).map_err(|_| {
        format!("unknown time zone `{name}`: use an IANA name such as `UTC` or `Europe/Berlin`")
    })
}

/// The schedules of a catalog, in file order.
#[derive(Debug, Clone, Default)]
pub struct Schedules {
    list: Vec<Schedule>,
}

impl Schedules {
    /// The schedules of the text of a `schedules.toml`, or every problem in it.
    pub fn parse(text: &str) -> Result<Self, Vec<CatalogError>> {
        let mut r = Reader {
            file: FILE,
            src: text,
            errors: Vec::new(),
        };
        let (doc, syntax) = DeTable::parse_recoverable(text);
        if !syntax.is_empty() {
            for e in syntax {
                let message = format!("invalid TOML: {}", e.message().trim());
                r.error(e.span().unwrap_or(0..0), "", message);
            }
            return Err(r.errors);
        }
        let plain: toml::Table = toml::from_str(text).unwrap_or_default();
        let top = r.fields(doc.get_ref(), "", &TOP_KEYS);
        let mut list: Vec<Schedule> = Vec::new();
        if let Some(v) = top.get("schedules") {
            for (i, it) in r
                .tables(v, "schedules", &SCHEDULE_KEYS)
                .into_iter()
                .enumerate()
            {
                let before = r.errors.len();
                let f = &it.fields;
                let name = r.item_name(&it);
                let name_span = f.get("name").map_or(it.entry.span(), |v| v.span());
                if let Some(n) = &name {
                    if !valid_trigger_name(n) {
                        r.error(
                            name_span.clone(),
                            &it.key("name"),
                            format!(
                                "`{n}` must be 1 to {MAX_NAME} letters, digits, `.`, `_` or `-`"
                            ),
                        );
                    } else if list.iter().any(|s| s.name == *n) {
                        r.error(
                            name_span.clone(),
                            &it.key("name"),
                            format!("schedule `{n}` is declared twice"),
                        );
                    }
                }
                let action = r.required(&it, "action");
                let run_as = r.required(&it, "run_as");
                let cron = r.required(&it, "cron").and_then(|c| {
                    parse_cron(&c)
                        .map_err(|e| r.error(f["cron"].span(), &it.key("cron"), e))
                        .ok()
                        .map(|p| (c, p))
                });
                let timezone = match f.get("timezone") {
                    Some(v) => r.name(v, &it.key("timezone")).and_then(|z| {
                        parse_zone(&z)
                            .map_err(|e| r.error(v.span(), &it.key("timezone"), e))
                            .ok()
                            .map(|tz| (z, tz))
                    }),
                    None => Some(("UTC".to_owned(), TimeZone::UTC)),
                };
                let missed = match f.get("missed") {
                    None => Some(Missed::Skip),
                    Some(v) => match r.string(v, &it.key("missed")).as_deref() {
                        Some("run_once") => Some(Missed::RunOnce),
                        Some("skip") => Some(Missed::Skip),
                        Some(other) => {
                            let hint = closest(other, &["run_once", "skip"])
                                .map(|n| format!(" (did you mean `{n}`?)"))
                                .unwrap_or_default();
                            r.error(
                                v.span(),
                                &it.key("missed"),
                                format!("must be `run_once` or `skip`, not `{other}`{hint}"),
                            );
                            None
                        }
                        None => None,
                    },
                };
                let enabled = match f.get("enabled") {
                    None => Some(true),
                    Some(v) => {
                        let b = v.get_ref().as_bool();
                        if b.is_none() {
                            r.error(v.span(), &it.key("enabled"), "must be true or false");
                        }
                        b
                    }
                };
                let description = f
                    .get("description")
                    .and_then(|v| r.string(v, &it.key("description")))
                    .unwrap_or_default();
                let params = match f.get("params") {
                    None => Some(RawParams::new()),
                    Some(v) => r.table(v, &it.key("params")).map(|_| params_of(&plain, i)),
                };
                if let (
                    Some(name),
                    Some(action),
                    Some(run_as),
                    Some((cron, pattern)),
                    Some((timezone, zone)),
                    Some(missed),
                    Some(enabled),
                    Some(params),
                ) = (
                    name, action, run_as, cron, timezone, missed, enabled, params,
                ) && r.errors.len() == before
                {
                    list.push(Schedule {
                        name,
                        description,
                        action,
                        cron,
                        timezone,
                        params,
                        run_as,
                        missed,
                        enabled,
                        line: r.line(it.entry.span().start),
                        pattern,
                        zone,
                    });
                }
            }
        }
        if r.errors.is_empty() {
            Ok(Self { list })
        } else {
            Err(r.errors)
        }
    }

    pub fn get(&self, name: &str) -> Option<&Schedule> {
        self.list.iter().find(|s| s.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Schedule> {
        self.list.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// The `params` table of the `i`th schedule, as request parameters.
fn params_of(plain: &toml::Table, i: usize) -> RawParams {
    plain
        .get("schedules")
        .and_then(|s| s.as_array())
        .and_then(|a| a.get(i))
        .and_then(|s| s.get("params"))
        .and_then(|p| p.as_table())
        .map(|t| t.iter().map(|(k, v)| (k.clone(), json_of(v))).collect())
        .unwrap_or_default()
}

/// A TOML value as the JSON value a request would carry (dates as text).
pub(crate) fn json_of(v: &toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(n) => J::from(*n),
        toml::Value::Float(x) => serde_json::Number::from_f64(*x).map_or(J::Null, J::Number),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => J::Array(a.iter().map(json_of).collect()),
        toml::Value::Table(t) => J::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), json_of(v)))
                .collect::<serde_json::Map<_, _>>(),
        ),
    }
}

/// Every schedule names an action of the catalog and gives it valid
/// parameters (types, required ones present).
pub(crate) fn check_actions(
    schedules: &Schedules,
    actions: &BTreeMap<crate::ids::ActionName, std::sync::Arc<crate::catalog::Action>>,
    errors: &mut Vec<CatalogError>,
) {
    for (i, s) in schedules.iter().enumerate() {
        let error = |key: String, message: String| CatalogError {
            file: FILE.into(),
            line: Some(s.line),
            key: Some(key),
            message,
        };
        let Some(action) = actions.values().find(|a| a.name.as_str() == s.action) else {
            let names: Vec<&str> = actions.keys().map(|n| n.as_str()).collect();
            let hint = closest(&s.action, &names)
                .map(|n| format!(" (did you mean `{n}`?)"))
                .unwrap_or_default();
            errors.push(error(
                format!("schedules[{i}].action"),
                format!("unknown action `{}`{hint}", s.action),
            ));
            continue;
        };
        let mut unknown = false;
        for name in s.params.keys() {
            if !action.params.iter().any(|p| p.name == *name) {
                unknown = true;
                errors.push(error(
                    join(&format!("schedules[{i}].params"), name),
                    format!("`{name}` is not a parameter of `{}`", s.action),
                ));
            }
        }
        if unknown {
            continue;
        }
        if let Err(problems) = crate::params::ValidatedParams::validate(&action.params, &s.params) {
            for p in problems {
                errors.push(error(
                    join(&format!("schedules[{i}].params"), &p.param),
                    p.message,
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests;
