//! The query runner (`runner = "query"`): renders a catalog graph's PromQL
//! query for one request, asks Prometheus for its range (`/api/v1/query_range`),
//! sums each series up in the output, and draws the series as an 800×400 PNG,
//! which becomes the run's artifact.
//!
//! The Prometheus client is thin `reqwest` code over the documented HTTP API.
//! Not here: which graph, host and range a request means (the catalog and
//! the actions), where the PNG goes (the store, chat uploads), and any other
//! data source or chart kind. Values reach the query only through
//! [`GraphSpec::render`], which escapes them.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use switchboard_core::graphs::{GraphSpec, MAX_RANGE};
use switchboard_core::secret::Secret;
use switchboard_core::{Artifact, ExecutionStatus, Masker, Stream, Timestamp};
use tokio::sync::{mpsc, watch};

use super::output::Output;
use super::{RunEvent, RunLimits, RunOutcome};

mod chart;

pub use chart::{ChartData, ChartSeries, HEIGHT, WIDTH, render_png};

/// Most points a series has: the step is chosen to stay under it.
pub const MAX_POINTS: u64 = 250;
/// Most series drawn (and summed up); the rest are left out, saying so.
pub const MAX_SERIES: usize = 10;
/// Largest answer read from Prometheus.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;
/// Longest series label in the output and the legend.
const MAX_LABEL_CHARS: usize = 120;

/// Where Prometheus is and how to reach it.
#[derive(Debug, Clone)]
pub struct PrometheusSettings {
    /// The base URL (`http://prometheus:9090`, or with a path prefix).
    pub url: String,
    /// Longest wait for one answer.
    pub timeout: Duration,
    /// A bearer token sent with every request.
    pub bearer: Option<Secret<String>>,
}

impl Default for PrometheusSettings {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:9090".to_owned(),
            timeout: Duration::from_secs(10),
            bearer: None,
        }
    }
}

/// One series of a range query.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    /// `(unix seconds, value)`; values may be NaN or infinite.
    pub points: Vec<(f64, f64)>,
}

/// A range query's answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RangeAnswer {
    pub series: Vec<Series>,
    /// Prometheus' warnings and infos (`PromQL info: metric might not be a counter`).
    pub warnings: Vec<String>,
}

/// Everything the query runner needs for one run.
pub struct QueryRun<'a> {
    pub graph: &'a GraphSpec,
    /// What the graph's templates see: `host`, `address`, `vars`, parameters.
    pub context: serde_json::Value,
    /// How far back from now the chart goes.
    pub range: Duration,
    pub prometheus: &'a PrometheusSettings,
    /// The PNG's file name (`cpu.png`).
    pub artifact_name: String,
}

/// The step for a range: whole seconds, at least one, so that a series has
/// at most [`MAX_POINTS`] points (plus the one at the start).
pub fn choose_step(range: Duration) -> Duration {
    let secs = range.as_secs().max(1);
    Duration::from_secs(secs.div_ceil(MAX_POINTS).max(1))
}

/// Runs the graph's query and draws it. `cancel` turning `true` stops it.
pub async fn run(
    job: QueryRun<'_>,
    events: mpsc::Sender<RunEvent>,
    mut cancel: watch::Receiver<bool>,
) -> RunOutcome {
    let graph = job.graph;
    if job.range.is_zero() || job.range > MAX_RANGE {
        return RunOutcome::failed(format!(
            "the range must be longer than zero and at most {}",
            humanize(MAX_RANGE)
        ));
    }
    if !plain_file_name(&job.artifact_name) {
        return RunOutcome::failed(format!(
            "`{}` is not a plain file name for the chart",
            job.artifact_name
        ));
    }
    let rendered = match graph.render(&job.context) {
        Ok(r) => r,
        Err(e) => return RunOutcome::failed(e),
    };
    let Some(endpoint) = Endpoint::new(job.prometheus) else {
        return RunOutcome::failed("the Prometheus URL in the configuration is not a valid URL");
    };
    // Nothing secret reaches a query (graphs see no secret parameters).
    let mut out = Output::new(
        events,
        Masker::new(Vec::<String>::new()),
        &RunLimits::default(),
    );
    let _ = out.events.send(RunEvent::Started(Timestamp::now())).await;
    if *cancel.borrow() {
        return out.cancelled().await;
    }

    let step = choose_step(job.range);
    let end = unix_now();
    let start = end.saturating_sub(i64::try_from(job.range.as_secs()).unwrap_or(i64::MAX));
    out.system(format!(
        "querying Prometheus at {} for the last {} (step {})",
        endpoint.shown,
        humanize(job.range),
        humanize(step)
    ))
    .await;

    let fetched = tokio::select! {
        answer = fetch_range(&endpoint, job.prometheus, &rendered.query, start, end, step) => answer,
        () = super::stop_asked(&mut cancel) => return out.cancelled().await,
    };
    let answer = match fetched {
        Ok(a) => a,
        Err(e) => return out.failed(e),
    };
    for w in &answer.warnings {
        out.system(format!("Prometheus: {}", truncate(w, 500)))
            .await;
    }

    let total_series = answer.series.len();
    let total_points: usize = answer.series.iter().map(|s| s.points.len()).sum();
    let shown = pick_series(answer.series);
    if total_series > shown.len() {
        out.system(format!(
            "{} series; showing the {} with the highest peaks, {} left out",
            total_series,
            shown.len(),
            total_series - shown.len()
        ))
        .await;
    }
    let labels = legend_labels(&shown, graph.legend.is_none());
    let series: Vec<ChartSeries> = shown
        .into_iter()
        .zip(labels)
        .map(|(s, labels)| ChartSeries {
            label: truncate(
                &one_line(&graph.legend(&labels, &rendered.query)),
                MAX_LABEL_CHARS,
            ),
            points: s.points,
        })
        .collect();
    for s in &series {
        out.emit(Stream::Stdout, summary(s, &graph.unit)).await;
    }
    let no_data = !series
        .iter()
        .any(|s| s.points.iter().any(|(_, v)| v.is_finite()));
    if no_data {
        out.system("no data for this range".to_owned()).await;
    }

    let chart = ChartData {
        title: one_line(&rendered.title),
        unit: one_line(&graph.unit),
        start,
        end,
        step,
        series,
    };
    let drawn = tokio::select! {
        drawn = tokio::task::spawn_blocking(move || render_png(&chart)) => drawn,
        () = super::stop_asked(&mut cancel) => return out.cancelled().await,
    };
    let png = match drawn {
        Ok(Ok(png)) => png,
        Ok(Err(e)) => return out.failed(format!("cannot draw the chart: {e}")),
        Err(e) => return out.failed(format!("cannot draw the chart: {e}")),
    };

    let result = serde_json::json!({
        "graph": graph.name,
        "query": rendered.query,
        "range": humanize(job.range),
        "step": humanize(step),
        "series": total_series,
        "points": total_points,
        "artifact": job.artifact_name,
    });
    RunOutcome {
        status: ExecutionStatus::Succeeded,
        exit_code: None,
        result: Some(result),
        error: None,
        output_bytes: out.bytes,
        output_truncated: out.truncated,
        artifacts: vec![Artifact {
            name: job.artifact_name,
            media_type: "image/png".to_owned(),
            bytes: png,
        }],
    }
}

/// Asks Prometheus for `query` over `[start, end]` (unix seconds) at `step`.
pub async fn query_range(
    settings: &PrometheusSettings,
    query: &str,
    start: i64,
    end: i64,
    step: Duration,
) -> Result<Vec<Series>, String> {
    let endpoint = Endpoint::new(settings)
        .ok_or_else(|| "the Prometheus URL in the configuration is not a valid URL".to_owned())?;
    fetch_range(&endpoint, settings, query, start, end, step)
        .await
        .map(|a| a.series)
}

/// The query API's URL, and the base URL as it may be shown (no user,
/// password, query or fragment).
struct Endpoint {
    api: reqwest::Url,
    shown: String,
}

impl Endpoint {
    fn new(settings: &PrometheusSettings) -> Option<Self> {
        let base = reqwest::Url::parse(settings.url.trim()).ok()?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return None;
        }
        let mut shown = base.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        shown.set_query(None);
        shown.set_fragment(None);
        let mut api = base;
        let path = format!("{}/api/v1/query_range", api.path().trim_end_matches('/'));
        api.set_path(&path);
        api.set_query(None);
        api.set_fragment(None);
        Some(Self {
            api,
            shown: shown.as_str().trim_end_matches('/').to_owned(),
        })
    }
}

async fn fetch_range(
    endpoint: &Endpoint,
    settings: &PrometheusSettings,
    query: &str,
    start: i64,
    end: i64,
    step: Duration,
) -> Result<RangeAnswer, String> {
    let shown = &endpoint.shown;
    let client = reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .build()
        .map_err(|e| {
            format!(
                "cannot set up an HTTP client for Prometheus at {shown}: {}",
                root_cause(&e)
            )
        })?;
    let mut url = endpoint.api.clone();
    url.query_pairs_mut()
        .append_pair("query", query)
        .append_pair("start", &start.to_string())
        .append_pair("end", &end.to_string())
        .append_pair("step", &step.as_secs().max(1).to_string());
    let mut request = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json");
    if let Some(token) = &settings.bearer {
        request = request.bearer_auth(token.expose());
    }
    let mut response = request
        .send()
        .await
        .map_err(|e| http_error(&e, settings, shown))?;
    let status = response.status();
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(format!(
                        "Prometheus at {shown} answered with more than {} MiB; narrow the query",
                        MAX_ANSWER_BYTES / (1024 * 1024)
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return Err(http_error(&e, settings, shown)),
        }
    }
    parse_range_answer(&body, query).map_err(|e| match e {
        AnswerError::Refused(msg) => format!("Prometheus at {shown} {msg}"),
        AnswerError::Malformed(msg) if !status.is_success() => {
            format!("Prometheus at {shown} answered HTTP {status} to the query `{query}` ({msg})")
        }
        AnswerError::Malformed(msg) => {
            format!("Prometheus at {shown} answered the query `{query}` with {msg}")
        }
    })
}

/// A request that failed before an answer: never the URL with its query
/// string, never a header.
fn http_error(e: &reqwest::Error, settings: &PrometheusSettings, shown: &str) -> String {
    if e.is_timeout() {
        format!(
            "Prometheus at {shown} did not answer within {}",
            humanize(settings.timeout)
        )
    } else if e.is_connect() {
        format!("cannot connect to Prometheus at {shown}: {}", root_cause(e))
    } else {
        format!("cannot query Prometheus at {shown}: {}", root_cause(e))
    }
}

/// The innermost cause of an error (`Connection refused (os error 111)`).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Why an answer is not a range of series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerError {
    /// Prometheus said no (`status: error`): what it said, naming the query.
    Refused(String),
    /// The answer is not what the API documents.
    Malformed(String),
}

impl std::fmt::Display for AnswerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(m) | Self::Malformed(m) => f.write_str(m),
        }
    }
}

#[derive(Deserialize)]
struct ApiAnswer {
    status: String,
    #[serde(default)]
    data: Option<ApiData>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
    #[serde(default)]
    infos: Vec<String>,
}

#[derive(Deserialize)]
struct ApiData {
    #[serde(rename = "resultType")]
    result_type: String,
    #[serde(default)]
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct ApiSeries {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

/// Reads the body of a `query_range` answer (the documented JSON: a
/// `matrix` of series, or `status: error`). Values are Prometheus' float
/// texts, `NaN` and `±Inf` included.
pub fn parse_range_answer(body: &[u8], query: &str) -> Result<RangeAnswer, AnswerError> {
    let answer: ApiAnswer = serde_json::from_slice(body).map_err(|e| {
        AnswerError::Malformed(format!("an answer that is not the API's JSON: {e}"))
    })?;
    if answer.status != "success" {
        let kind = answer.error_type.as_deref().unwrap_or("error");
        let error = answer.error.as_deref().unwrap_or("no reason given");
        return Err(AnswerError::Refused(format!(
            "refused the query `{query}`: {}: {}",
            truncate(kind, 100),
            truncate(error, 1000)
        )));
    }
    let data = answer
        .data
        .ok_or_else(|| AnswerError::Malformed("a success without data".to_owned()))?;
    if data.result_type != "matrix" {
        return Err(AnswerError::Malformed(format!(
            "a `{}` where a range query gives a `matrix`",
            truncate(&data.result_type, 40)
        )));
    }
    let raw: Vec<ApiSeries> = serde_json::from_value(data.result)
        .map_err(|e| AnswerError::Malformed(format!("series that cannot be read: {e}")))?;
    let mut series = Vec::with_capacity(raw.len());
    for s in raw {
        let mut points = Vec::with_capacity(s.values.len());
        for (t, text) in s.values {
            let v = parse_sample(&text).ok_or_else(|| {
                AnswerError::Malformed(format!(
                    "a value that is not a number: `{}`",
                    truncate(&text, 40)
                ))
            })?;
            points.push((t, v));
        }
        series.push(Series {
            labels: s.metric,
            points,
        });
    }
    let mut warnings = answer.warnings;
    warnings.extend(answer.infos);
    Ok(RangeAnswer { series, warnings })
}

/// A Prometheus sample value: a float, `NaN`, `+Inf`, `-Inf`.
fn parse_sample(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        t => t.parse::<f64>().ok(),
    }
}

/// At most [`MAX_SERIES`] series: those with the highest peaks, in the
/// order of their labels.
fn pick_series(mut series: Vec<Series>) -> Vec<Series> {
    if series.len() > MAX_SERIES {
        let peak = |s: &Series| {
            s.points
                .iter()
                .map(|p| p.1)
                .filter(|v| v.is_finite())
                .fold(f64::NEG_INFINITY, f64::max)
        };
        series.sort_by(|a, b| peak(b).total_cmp(&peak(a)));
        series.truncate(MAX_SERIES);
    }
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    series
}

/// The labels each series' legend is made of. Without a legend template,
/// labels every series shares (`job="node"`) are left out when there is
/// more than one series: they tell the lines apart no better than nothing.
fn legend_labels(series: &[Series], by_default: bool) -> Vec<BTreeMap<String, String>> {
    if !by_default || series.len() < 2 {
        return series.iter().map(|s| s.labels.clone()).collect();
    }
    let first = &series[0].labels;
    let shared: Vec<&String> = first
        .iter()
        .filter(|(k, v)| series.iter().all(|s| s.labels.get(*k) == Some(*v)))
        .map(|(k, _)| k)
        .collect();
    series
        .iter()
        .map(|s| {
            let varying: BTreeMap<String, String> = s
                .labels
                .iter()
                .filter(|(k, _)| !shared.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if varying.is_empty() {
                s.labels.clone()
            } else {
                varying
            }
        })
        .collect()
}

/// `label: last 42 %, min 3 %, max 97.5 %` over the finite values.
fn summary(s: &ChartSeries, unit: &str) -> String {
    let finite: Vec<f64> = s
        .points
        .iter()
        .map(|p| p.1)
        .filter(|v| v.is_finite())
        .collect();
    let (Some(last), Some(min), Some(max)) = (
        finite.last().copied(),
        finite.iter().copied().reduce(f64::min),
        finite.iter().copied().reduce(f64::max),
    ) else {
        return format!("{}: no data", s.label);
    };
    let v = |x: f64| with_unit(&human(x), unit);
    format!(
        "{}: last {}, min {}, max {}",
        s.label,
        v(last),
        v(min),
        v(max)
    )
}

fn with_unit(number: &str, unit: &str) -> String {
    match unit {
        "" => number.to_owned(),
        "%" => format!("{number}%"),
        u => format!("{number} {u}"),
    }
}

/// A number for people: three significant digits, `k`/`M`/`G`/`T` for
/// large ones.
pub fn human(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    let a = v.abs();
    if a == 0.0 {
        return "0".to_owned();
    }
    if !(1e-3..1e15).contains(&a) {
        return format!("{v:.2e}");
    }
    for (scale, suffix) in [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")] {
        if a >= scale {
            return format!("{}{suffix}", significant(v / scale));
        }
    }
    significant(v)
}

/// Three significant digits, without trailing zeros.
fn significant(v: f64) -> String {
    let a = v.abs();
    let decimals = if a >= 100.0 {
        0
    } else if a >= 10.0 {
        1
    } else if a >= 1.0 {
        2
    } else {
        3
    };
    let text = format!("{v:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    };
    if text == "-0" { "0".to_owned() } else { text }
}

/// Text for one line of output or of the chart: control characters (a
/// newline in a label value) become spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_owned()
    } else {
        let mut t: String = text.chars().take(max_chars.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// At most `max_chars`, keeping the start and the end (where labels
/// usually differ): `instance=web-…org:9100`.
fn shorten_middle(text: &str, max_chars: usize) -> String {
    let count = text.chars().count();
    if count <= max_chars {
        return text.to_owned();
    }
    let head = max_chars.saturating_sub(1) / 2;
    let tail = max_chars.saturating_sub(1) - head;
    let mut t: String = text.chars().take(head).collect();
    t.push('…');
    t.extend(text.chars().skip(count - tail));
    t
}

fn plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && !name.chars().any(char::is_control)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn humanize(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

#[cfg(test)]
mod tests;
