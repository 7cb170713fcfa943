//! Client commands: talk to a running server over its HTTP API.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::cli::{AuditSource, ClientArgs, ExecutionsArgs, OutputFormat, RunArgs};
use crate::terminal::{self, LivePrinter, exit_code_for, format_ms, print_table};

/// An execution as the CLI shows it.
#[derive(Debug, Deserialize)]
pub struct ExecutionView {
    pub id: i64,
    pub action: String,
    pub status: String,
    pub requester: String,
    pub origin: String,
    pub created_at: String,
    pub duration_ms: Option<u64>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub result: Option<serde_json::Value>,
    pub output_truncated: bool,
}

#[derive(Debug, Deserialize)]
struct OutputChunkView {
    ts: String,
    stream: String,
    text: String,
}

#[derive(Debug, Deserialize)]
struct OutputView {
    chunks: Vec<OutputChunkView>,
}

#[derive(Debug, Deserialize)]
struct ErrorView {
    error: ErrorDetailView,
}

#[derive(Debug, Deserialize)]
struct ErrorDetailView {
    message: String,
    #[serde(default)]
    details: Vec<FieldErrorView>,
}

#[derive(Debug, Deserialize)]
struct FieldErrorView {
    field: String,
    message: String,
}

pub(crate) struct Api {
    base: String,
    token: Option<String>,
    pub(crate) http: reqwest::Client,
}

impl Api {
    pub(crate) fn new(args: &ClientArgs) -> anyhow::Result<Self> {
        let base = args.server.trim_end_matches('/').to_owned();
        anyhow::ensure!(
            base.starts_with("http://") || base.starts_with("https://"),
            "the server URL `{base}` must start with http:// or https://"
        );
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("switchboard-cli/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            base,
            token: args.token.clone(),
            http,
        })
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    pub(crate) async fn send(
        &self,
        req: reqwest::RequestBuilder,
    ) -> anyhow::Result<reqwest::Response> {
        let req = match &self.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        };
        let resp = req
            .header("x-switchboard-origin", "cli")
            .send()
            .await
            .with_context(|| format!("cannot reach Switchboard at {} (is `switchboard serve` running? set --server or SWITCHBOARD_URL)", self.base))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if status == reqwest::StatusCode::UNAUTHORIZED && self.token.is_none() {
            anyhow::bail!("the server wants a credential: set SWITCHBOARD_TOKEN (or pass --token)");
        }
        match serde_json::from_str::<ErrorView>(&text) {
            Ok(e) => {
                let mut msg = e.error.message.clone();
                for d in e
                    .error
                    .details
                    .iter()
                    .filter(|d| !e.error.message.contains(&d.message))
                {
                    msg.push_str(&format!("\n  {}: {}", d.field, d.message));
                }
                anyhow::bail!("{msg}")
            }
            Err(_) => anyhow::bail!("the server answered {status}"),
        }
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let resp = self
            .send(
                self.http
                    .get(self.url(path))
                    .timeout(Duration::from_secs(60)),
            )
            .await?;
        resp.json()
            .await
            .context("the server's answer is not what this client expects")
    }

    /// `get` with query parameters (those given).
    pub(crate) async fn get_with(
        &self,
        path: &str,
        query: &[(&str, Option<&str>)],
    ) -> anyhow::Result<serde_json::Value> {
        let mut url = reqwest::Url::parse(&self.url(path))?;
        for (key, value) in query {
            if let Some(value) = value {
                url.query_pairs_mut().append_pair(key, value);
            }
        }
        let resp = self
            .send(self.http.get(url).timeout(Duration::from_secs(60)))
            .await?;
        resp.json()
            .await
            .context("the server's answer is not what this client expects")
    }

    pub(crate) async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<T> {
        let resp = self
            .send(
                self.http
                    .post(self.url(path))
                    .json(body)
                    .timeout(Duration::from_secs(120)),
            )
            .await?;
        resp.json()
            .await
            .context("the server's answer is not what this client expects")
    }
}

pub(crate) fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

pub async fn actions(args: &ClientArgs, name: Option<&str>) -> anyhow::Result<u8> {
    let api = Api::new(args)?;
    let Some(name) = name else {
        let list: Vec<serde_json::Value> = api.get("/actions").await?;
        if args.output == OutputFormat::Json {
            print_json(&serde_json::Value::Array(list));
            return Ok(terminal::EXIT_OK);
        }
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|a| {
                let s = |k: &str| a[k].as_str().unwrap_or_default().to_owned();
                vec![s("name"), s("runner"), s("description")]
            })
            .collect();
        print_table(&["NAME", "RUNNER", "DESCRIPTION"], &rows);
        return Ok(terminal::EXIT_OK);
    };
    let a: serde_json::Value = api.get(&format!("/actions/{name}")).await?;
    if args.output == OutputFormat::Json {
        print_json(&a);
        return Ok(terminal::EXIT_OK);
    }
    println!(
        "{}: {}",
        a["name"].as_str().unwrap_or_default(),
        a["description"].as_str().unwrap_or_default()
    );
    println!(
        "  runner:  {}   timeout: {}s",
        a["runner"].as_str().unwrap_or_default(),
        a["timeout_seconds"]
    );
    println!("  command: {}", a["command"]);
    let params = a["params"].as_array().cloned().unwrap_or_default();
    if !params.is_empty() {
        println!("  parameters:");
        for p in params {
            let mut line = format!(
                "    {} ({})",
                p["name"].as_str().unwrap_or_default(),
                p["type"].as_str().unwrap_or_default()
            );
            if p["required"].as_bool() == Some(true) {
                line.push_str(" required");
            }
            if !p["default"].is_null() {
                line.push_str(&format!(" default={}", p["default"]));
            }
            if let Some(choices) = p["choices"].as_array() {
                let c: Vec<&str> = choices.iter().filter_map(|c| c.as_str()).collect();
                line.push_str(&format!(" one of: {}", c.join(", ")));
            }
            if let Some(d) = p["description"].as_str().filter(|d| !d.is_empty()) {
                line.push_str(&format!(" — {d}"));
            }
            println!("{line}");
        }
    }
    for alias in a["aliases"].as_array().cloned().unwrap_or_default() {
        println!(
            "  chat:    {}",
            alias["format"].as_str().unwrap_or_default()
        );
    }
    Ok(terminal::EXIT_OK)
}

/// Parses `key=value` words into raw parameters.
pub fn parse_params(words: &[String]) -> anyhow::Result<BTreeMap<String, serde_json::Value>> {
    let mut params = BTreeMap::new();
    for word in words {
        let (key, value) = word
            .split_once('=')
            .with_context(|| format!("`{word}` is not a parameter: write it as key=value"))?;
        anyhow::ensure!(!key.is_empty(), "`{word}` has no parameter name before `=`");
        anyhow::ensure!(
            params
                .insert(key.to_owned(), serde_json::Value::String(value.to_owned()))
                .is_none(),
            "parameter `{key}` is given twice"
        );
    }
    Ok(params)
}

pub async fn run(args: RunArgs) -> anyhow::Result<u8> {
    let api = Api::new(&args.client)?;
    let params = parse_params(&args.params)?;
    let body = serde_json::json!({ "action": args.action, "params": params });
    let raw: serde_json::Value = api.post("/executions", &body).await?;
    let execution: ExecutionView = serde_json::from_value(raw.clone())?;
    if !args.follow && args.save.is_none() {
        if args.client.output == OutputFormat::Json {
            print_json(&raw);
        } else {
            println!(
                "{} #{} {} (follow with `switchboard logs {} --follow`)",
                execution.action, execution.id, execution.status, execution.id
            );
        }
        return Ok(terminal::EXIT_OK);
    }
    if execution.status == "awaiting_approval" && args.client.output == OutputFormat::Text {
        eprintln!(
            "#{} {} waits for approval (`switchboard approve {}` by an approver)…",
            execution.id, execution.action, execution.id
        );
    }
    let code = follow(&api, &execution, args.timestamps, args.client.output).await?;
    if let Some(path) = &args.save {
        save_artifacts(&api, execution.id, path).await?;
    }
    Ok(code)
}

/// Downloads the files an execution produced into `path` (`--save`).
async fn save_artifacts(api: &Api, id: i64, path: &std::path::Path) -> anyhow::Result<()> {
    let shown: serde_json::Value = api.get(&format!("/executions/{id}")).await?;
    let mut files = Vec::new();
    for file in shown["artifacts"].as_array().into_iter().flatten() {
        let (Some(name), Some(at)) = (file["name"].as_str(), file["path"].as_str()) else {
            continue;
        };
        let resp = api.send(api.http.get(api.url(at))).await?;
        let bytes = resp
            .bytes()
            .await
            .with_context(|| format!("cannot download {name}"))?;
        files.push((name.to_owned(), bytes));
    }
    let files: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_ref()))
        .collect();
    terminal::save_artifacts(path, &files)
}

/// Streams an execution's output until it ends; returns the exit status
/// that reflects its outcome.
async fn follow(
    api: &Api,
    execution: &ExecutionView,
    timestamps: bool,
    output: OutputFormat,
) -> anyhow::Result<u8> {
    let label = format!("#{} {}", execution.id, execution.action);
    let printer = LivePrinter::new(&label, timestamps, output == OutputFormat::Text);
    let mut last_id = String::new();
    let mut failures = 0;
    let end = loop {
        let mut req = api
            .http
            .get(api.url(&format!("/executions/{}/output", execution.id)))
            .header("accept", "text/event-stream");
        if !last_id.is_empty() {
            req = req.header("last-event-id", &last_id);
        }
        let mut events = match api.send(req).await {
            Ok(resp) => resp.bytes_stream().eventsource(),
            Err(e) if failures < 5 => {
                failures += 1;
                tracing::debug!(error = %e, "reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => {
                printer.finish();
                return Err(e);
            }
        };
        let mut ended = None;
        loop {
            let next = tokio::select! {
                ev = events.next() => ev,
                _ = tokio::signal::ctrl_c() => {
                    printer.finish();
                    eprintln!("detached; #{id} goes on (stop it with `switchboard cancel {id}`)", id = execution.id);
                    return Ok(130);
                }
            };
            match next {
                Some(Ok(ev)) if ev.event == "output" => {
                    last_id = ev.id.clone();
                    failures = 0;
                    if let Ok(c) = serde_json::from_str::<OutputChunkView>(&ev.data) {
                        printer.line(&c.stream, &c.ts, &c.text);
                    }
                }
                Some(Ok(ev)) if ev.event == "end" => {
                    ended = Some(ev.data);
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            }
        }
        if let Some(data) = ended {
            break data;
        }
        failures += 1;
        if failures > 5 {
            printer.finish();
            anyhow::bail!(
                "lost the connection to the server while following #{}",
                execution.id
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    printer.finish();
    let raw: serde_json::Value = serde_json::from_str(&end)?;
    let done: ExecutionView = serde_json::from_value(raw.clone())?;
    if output == OutputFormat::Json {
        print_json(&raw);
    } else {
        print_summary(&done);
    }
    Ok(exit_code_for(&done.status))
}

fn print_summary(e: &ExecutionView) {
    let mut line = format!(
        "#{} {} {} in {}",
        e.id,
        e.action,
        e.status,
        format_ms(e.duration_ms)
    );
    if let Some(code) = e.exit_code {
        line.push_str(&format!(" (exit {code})"));
    }
    if let Some(err) = e.error.as_deref().filter(|_| e.status != "succeeded") {
        line.push_str(&format!(": {err}"));
    }
    if e.output_truncated {
        line.push_str(" [output truncated]");
    }
    eprintln!("{line}");
    if let Some(result) = &e.result {
        eprintln!("result: {result}");
    }
}

pub async fn logs(
    args: &ClientArgs,
    id: &str,
    follow_it: bool,
    timestamps: bool,
) -> anyhow::Result<u8> {
    let api = Api::new(args)?;
    let id = execution_id(id)?;
    let execution: ExecutionView = api.get(&format!("/executions/{id}")).await?;
    if follow_it {
        let code = follow(&api, &execution, timestamps, args.output).await?;
        if args.output != OutputFormat::Json
            && let Some(tree) = crate::workflows::tree(&api, id).await
        {
            print!("{tree}");
        }
        return Ok(code);
    }
    let resp = api
        .send(
            api.http
                .get(api.url(&format!("/executions/{id}/output")))
                .header("accept", "application/json"),
        )
        .await?;
    let output: OutputView = resp.json().await?;
    let printer = LivePrinter::new("", timestamps, false);
    for c in &output.chunks {
        printer.line(&c.stream, &c.ts, &c.text);
    }
    if let Some(tree) = crate::workflows::tree(&api, id).await {
        print!("{tree}");
    }
    Ok(terminal::EXIT_OK)
}

/// An RFC 3339 time as given, or an age such as `2h` as the time that long ago.
fn since_time(text: &str) -> anyhow::Result<String> {
    if humantime::parse_rfc3339_weak(text).is_ok() {
        return Ok(text.to_owned());
    }
    let age = humantime::parse_duration(text)
        .with_context(|| format!("`{text}` is neither an RFC 3339 time nor an age such as `2h`"))?;
    let then = std::time::SystemTime::now()
        .checked_sub(age)
        .context("that is too long ago")?;
    Ok(humantime::format_rfc3339_seconds(then).to_string())
}

/// `switchboard report`: the report from the server, rendered.
pub async fn report(args: &crate::cli::ReportArgs) -> anyhow::Result<u8> {
    use crate::cli::ReportFormat;
    use switchboard_core::report::{Report, render};
    let api = Api::new(&args.client)?;
    let mut query: Vec<(&str, String)> = Vec::new();
    if let Some(since) = &args.since {
        query.push(("since", since_time(since)?));
    }
    for (key, value) in [("actions", &args.actions), ("hosts", &args.hosts)] {
        if let Some(v) = value {
            query.push((key, v.clone()));
        }
    }
    let url = reqwest::Url::parse_with_params(&api.url("/report"), query)?;
    let report: Report = api.send(api.http.get(url)).await?.json().await?;
    let text = match args.format {
        ReportFormat::Markdown => render::markdown(&report),
        ReportFormat::Html => render::html(&report),
        ReportFormat::Csv => render::access_csv(&report),
        ReportFormat::Json => format!("{}\n", serde_json::to_string_pretty(&report)?),
    };
    match &args.out {
        Some(path) => {
            std::fs::write(path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("The report is in {}.", path.display());
        }
        None => print!("{text}"),
    }
    Ok(terminal::EXIT_OK)
}

/// `switchboard report diff OLD NEW`: exit 0 when access is the same, 1
/// when it changed (each change printed).
pub fn report_diff(old: &std::path::Path, new: &std::path::Path) -> anyhow::Result<u8> {
    use switchboard_core::report::{Report, diff};
    let read = |path: &std::path::Path| -> anyhow::Result<Report> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} is not a report written by `switchboard report --format json`",
                path.display()
            )
        })
    };
    let (before, after) = (read(old)?, read(new)?);
    let changes = diff::diff(&before, &after);
    if changes.is_empty() {
        println!(
            "No change in access from {} to {}.",
            before.generated_at, after.generated_at
        );
        return Ok(terminal::EXIT_OK);
    }
    println!(
        "Access changed from {} to {} ({} changes):",
        before.generated_at,
        after.generated_at,
        changes.len()
    );
    for change in changes {
        println!("{change}");
    }
    Ok(terminal::EXIT_FAILED)
}

pub async fn executions(args: ExecutionsArgs) -> anyhow::Result<u8> {
    let api = Api::new(&args.client)?;
    let since = args.since.as_deref().map(since_time).transpose()?;
    let mut query = vec![("limit", args.limit.to_string())];
    for (k, v) in [
        ("status", args.status),
        ("action", args.action),
        ("requester", args.requester),
        ("origin", args.origin),
        ("since", since),
    ] {
        if let Some(v) = v {
            query.push((k, v));
        }
    }
    if let Some(b) = args.before {
        query.push(("before", b.to_string()));
    }
    let url = reqwest::Url::parse_with_params(&api.url("/executions"), &query)?;
    let page: serde_json::Value = api.send(api.http.get(url)).await?.json().await?;
    if args.client.output == OutputFormat::Json {
        print_json(&page);
        return Ok(terminal::EXIT_OK);
    }
    let list: Vec<ExecutionView> = serde_json::from_value(page["executions"].clone())?;
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|e| {
            vec![
                e.id.to_string(),
                e.status.clone(),
                e.action.clone(),
                e.requester.clone(),
                e.origin.clone(),
                e.created_at
                    .chars()
                    .take(19)
                    .collect::<String>()
                    .replace('T', " "),
                format_ms(e.duration_ms),
            ]
        })
        .collect();
    print_table(
        &[
            "ID",
            "STATUS",
            "ACTION",
            "REQUESTER",
            "ORIGIN",
            "CREATED (UTC)",
            "DURATION",
        ],
        &rows,
    );
    if let Some(next) = page["next_before"].as_i64() {
        eprintln!("(more: --before {next})");
    }
    Ok(terminal::EXIT_OK)
}

pub(crate) fn execution_id(text: &str) -> anyhow::Result<i64> {
    text.trim_start_matches('#')
        .parse()
        .with_context(|| format!("`{text}` is not an execution id"))
}

/// Approves or rejects an execution awaiting approval.
pub async fn answer(answer: &crate::cli::Answer, approve: bool) -> anyhow::Result<u8> {
    let args = &answer.client;
    let reason = answer.reason.as_deref();
    let api = Api::new(args)?;
    let id = execution_id(&answer.id)?;
    let verb = if approve { "approve" } else { "reject" };
    let raw: serde_json::Value = api
        .post(
            &format!("/executions/{id}/{verb}"),
            &serde_json::json!({ "reason": reason }),
        )
        .await?;
    if args.output == OutputFormat::Json {
        print_json(&raw);
        return Ok(terminal::EXIT_OK);
    }
    if approve {
        let e: ExecutionView = serde_json::from_value(raw["execution"].clone())?;
        println!(
            "#{} {} approved ({} of {} needed): {}",
            e.id,
            e.action,
            raw["approvals"].as_u64().unwrap_or_default(),
            raw["needed"].as_u64().unwrap_or_default(),
            e.status
        );
    } else {
        let e: ExecutionView = serde_json::from_value(raw)?;
        println!(
            "#{} {} {}: {}",
            e.id,
            e.action,
            e.status,
            e.error.unwrap_or_default()
        );
    }
    Ok(terminal::EXIT_OK)
}

pub async fn approvals(args: &ClientArgs) -> anyhow::Result<u8> {
    let api = Api::new(args)?;
    let list: Vec<serde_json::Value> = api.get("/approvals").await?;
    if args.output == OutputFormat::Json {
        print_json(&serde_json::Value::Array(list));
        return Ok(terminal::EXIT_OK);
    }
    if list.is_empty() {
        println!("Nothing waits for your approval.");
        return Ok(terminal::EXIT_OK);
    }
    let time = |v: &serde_json::Value| {
        v.as_str().map_or("-".to_owned(), |t| {
            t.chars().take(19).collect::<String>().replace('T', " ")
        })
    };
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|e| {
            vec![
                e["id"].to_string(),
                e["action"].as_str().unwrap_or_default().to_owned(),
                e["requester"].as_str().unwrap_or_default().to_owned(),
                e["params"].to_string(),
                time(&e["created_at"]),
                time(&e["approval_expires_at"]),
            ]
        })
        .collect();
    terminal::print_table(
        &["ID", "ACTION", "REQUESTER", "PARAMS", "ASKED", "EXPIRES"],
        &rows,
    );
    Ok(terminal::EXIT_OK)
}

pub async fn schedules(args: &ClientArgs) -> anyhow::Result<u8> {
    let api = Api::new(args)?;
    let list: Vec<serde_json::Value> = api.get("/schedules").await?;
    if args.output == OutputFormat::Json {
        print_json(&serde_json::Value::Array(list));
        return Ok(terminal::EXIT_OK);
    }
    if list.is_empty() {
        println!("No schedules: the catalog has no schedules.toml (or none you may see).");
        return Ok(terminal::EXIT_OK);
    }
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_owned();
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            let next = if s["enabled"] == true {
                text(&s["next_run_local"])
            } else {
                "disabled".to_owned()
            };
            let last = &s["last_run"];
            let run = match (last["execution_id"].as_i64(), last["status"].as_str()) {
                (Some(id), Some(status)) => format!("{id} {status}"),
                (Some(id), None) => id.to_string(),
                _ => text(&last["outcome"]),
            };
            vec![
                text(&s["name"]),
                text(&s["action"]),
                text(&s["cron"]),
                text(&s["timezone"]),
                next,
                text(&s["next_run"]),
                text(&last["tick_local"]),
                run,
            ]
        })
        .collect();
    terminal::print_table(
        &[
            "NAME",
            "ACTION",
            "CRON",
            "TIMEZONE",
            "NEXT RUN",
            "NEXT RUN (UTC)",
            "LAST RUN",
            "EXECUTION",
        ],
        &rows,
    );
    Ok(terminal::EXIT_OK)
}

pub async fn cancel(args: &ClientArgs, id: &str) -> anyhow::Result<u8> {
    let api = Api::new(args)?;
    let id = execution_id(id)?;
    let raw: serde_json::Value = api
        .post(&format!("/executions/{id}/cancel"), &serde_json::json!({}))
        .await?;
    if args.output == OutputFormat::Json {
        print_json(&raw);
    } else {
        let e: ExecutionView = serde_json::from_value(raw)?;
        println!("#{} {} {}", e.id, e.action, e.status);
    }
    Ok(terminal::EXIT_OK)
}

pub async fn reload(args: &ClientArgs) -> anyhow::Result<u8> {
    let api = Api::new(args)?;
    let raw: serde_json::Value = api.post("/catalog/reload", &serde_json::json!({})).await?;
    if args.output == OutputFormat::Json {
        print_json(&raw);
    } else {
        let changed = if raw["changed"].as_bool() == Some(true) {
            "changed"
        } else {
            "unchanged"
        };
        println!(
            "catalog {} reloaded ({}, {} actions)",
            raw["version"].as_str().unwrap_or_default(),
            changed,
            raw["actions"]
        );
    }
    Ok(terminal::EXIT_OK)
}

pub async fn token_create(
    args: &ClientArgs,
    user: &str,
    scope: &str,
    expires: Option<&str>,
    description: &str,
) -> anyhow::Result<u8> {
    let api = Api::new(args)?;
    let scopes: Vec<&str> = scope
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let body = serde_json::json!({"principal": user, "scopes": scopes, "expires_in": expires, "description": description});
    let raw: serde_json::Value = api.post("/tokens", &body).await?;
    if args.output == OutputFormat::Json {
        print_json(&raw);
    } else {
        println!("{}", raw["token"].as_str().unwrap_or_default());
        eprintln!(
            "token #{} for {} ({}), expires {}; shown only now: keep it safe",
            raw["id"],
            raw["principal"].as_str().unwrap_or_default(),
            raw["scopes"]
                .as_array()
                .map(|s| s
                    .iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(","))
                .unwrap_or_default(),
            raw["expires_at"].as_str().unwrap_or("never")
        );
    }
    Ok(terminal::EXIT_OK)
}

pub async fn whoami(args: &ClientArgs) -> anyhow::Result<u8> {
    let api = Api::new(args)?;
    let me: serde_json::Value = api.get("/whoami").await?;
    if args.output == OutputFormat::Json {
        print_json(&me);
        return Ok(terminal::EXIT_OK);
    }
    println!(
        "principal: {}",
        me["principal"].as_str().unwrap_or_default()
    );
    println!("scopes:    {}", joined(&me["scopes"]));
    println!("groups:    {}", joined(&me["groups"]));
    Ok(terminal::EXIT_OK)
}

/// `switchboard hosts [SELECTOR]`.
/// `switchboard alerts [--all]`: the alerts received, firing first.
pub async fn alerts(args: &ClientArgs, all: bool) -> anyhow::Result<u8> {
    let api = Api::new(args)?;
    let state = if all { "all" } else { "firing" };
    let alerts = api.get_with("/alerts", &[("state", Some(state))]).await?;
    if args.output == OutputFormat::Json {
        print_json(&alerts);
        return Ok(terminal::EXIT_OK);
    }
    let rows: Vec<Vec<String>> = alerts
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            let labels: Vec<String> = a["labels"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| k.as_str() != "alertname")
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect();
            vec![
                a["fingerprint"].as_str().unwrap_or_default().to_owned(),
                a["status"].as_str().unwrap_or_default().to_owned(),
                a["labels"]["alertname"].as_str().unwrap_or("-").to_owned(),
                labels.join(" "),
                a["starts_at"].as_str().unwrap_or_default().to_owned(),
                a["annotations"]["summary"]
                    .as_str()
                    .unwrap_or("-")
                    .to_owned(),
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("{}", if all { "no alerts" } else { "no firing alerts" });
    } else {
        print_table(
            &[
                "FINGERPRINT",
                "STATUS",
                "ALERT",
                "LABELS",
                "SINCE",
                "SUMMARY",
            ],
            &rows,
        );
    }
    Ok(terminal::EXIT_OK)
}

/// `switchboard silence add`.
pub async fn silence_add(
    args: &ClientArgs,
    matchers: &str,
    duration: &str,
    comment: &str,
) -> anyhow::Result<u8> {
    let api = Api::new(args)?;
    let body = serde_json::json!({"matchers": matchers, "duration": duration, "comment": comment});
    let silence: serde_json::Value = api.post("/silences", &body).await?;
    if args.output == OutputFormat::Json {
        print_json(&silence);
    } else {
        println!(
            "silence {} ({}) until {}",
            silence["id"].as_str().unwrap_or_default(),
            silence["matchers"].as_str().unwrap_or_default(),
            silence["ends_at"].as_str().unwrap_or_default()
        );
    }
    Ok(terminal::EXIT_OK)
}

/// `switchboard silence list`.
pub async fn silence_list(args: &ClientArgs, all: bool) -> anyhow::Result<u8> {
    let api = Api::new(args)?;
    let state = if all { "all" } else { "current" };
    let list = api.get_with("/silences", &[("state", Some(state))]).await?;
    if args.output == OutputFormat::Json {
        print_json(&list);
        return Ok(terminal::EXIT_OK);
    }
    let field = |s: &serde_json::Value, k: &str| s[k].as_str().unwrap_or_default().to_owned();
    let rows: Vec<Vec<String>> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            [
                "id",
                "state",
                "matchers",
                "ends_at",
                "created_by",
                "comment",
            ]
            .iter()
            .map(|k| field(s, k))
            .collect()
        })
        .collect();
    if rows.is_empty() {
        println!("no silences");
    } else {
        print_table(&["ID", "STATE", "MATCHERS", "ENDS", "BY", "COMMENT"], &rows);
    }
    Ok(terminal::EXIT_OK)
}

/// `switchboard silence expire`.
pub async fn silence_expire(args: &ClientArgs, id: &str) -> anyhow::Result<u8> {
    let api = Api::new(args)?;
    api.send(api.http.delete(api.url(&format!("/silences/{id}"))))
        .await?;
    println!("silence {id} ended");
    Ok(terminal::EXIT_OK)
}

/// `switchboard ack`.
pub async fn ack(args: &ClientArgs, id: &str, comment: &str) -> anyhow::Result<u8> {
    let api = Api::new(args)?;
    let done: serde_json::Value = api
        .post(
            &format!("/alerts/{id}/ack"),
            &serde_json::json!({"comment": comment}),
        )
        .await?;
    if args.output == OutputFormat::Json {
        print_json(&done);
    } else {
        println!(
            "{} acknowledged {} {}",
            done["acked_by"].as_str().unwrap_or_default(),
            done["kind"].as_str().unwrap_or_default(),
            done["id"].as_str().unwrap_or_default()
        );
    }
    Ok(terminal::EXIT_OK)
}

/// `switchboard hosts --attention`: hosts whose latest run of some action
/// did not succeed, worst first.
pub async fn attention(args: &ClientArgs, within: &str) -> anyhow::Result<u8> {
    let api = Api::new(args)?;
    let hosts = api
        .get_with("/hosts/attention", &[("within", Some(within))])
        .await?;
    if args.output == OutputFormat::Json {
        print_json(&hosts);
        return Ok(terminal::EXIT_OK);
    }
    let rows: Vec<Vec<String>> = hosts
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            let failing = h["failing"].as_array().cloned().unwrap_or_default();
            let latest = failing.first().cloned().unwrap_or_default();
            let latest_run = if failing.is_empty() {
                "-".to_owned()
            } else {
                format!(
                    "#{} {} {}",
                    latest["execution"],
                    latest["status"].as_str().unwrap_or_default(),
                    latest["at"].as_str().unwrap_or_default()
                )
            };
            let names: Vec<&str> = failing
                .iter()
                .filter_map(|f| f["action"].as_str())
                .collect();
            let alerts: Vec<String> = h["alerts"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| match a["severity"].as_str() {
                    Some(severity) => {
                        format!("{} ({severity})", a["alertname"].as_str().unwrap_or("?"))
                    }
                    None => a["alertname"].as_str().unwrap_or("?").to_owned(),
                })
                .collect();
            vec![
                h["host"].as_str().unwrap_or_default().to_owned(),
                if alerts.is_empty() {
                    "-".to_owned()
                } else {
                    alerts.join(", ")
                },
                if names.is_empty() {
                    "-".to_owned()
                } else {
                    names.join(", ")
                },
                h["failures"].to_string(),
                latest_run,
                latest["error"].as_str().unwrap_or("-").to_owned(),
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("no host needs attention (no firing alert; runs of the last {within})");
    } else {
        print_table(
            &["HOST", "ALERTS", "FAILING", "FAILURES", "LATEST", "ERROR"],
            &rows,
        );
    }
    Ok(terminal::EXIT_OK)
}

pub async fn hosts(args: &ClientArgs, selector: Option<&str>) -> anyhow::Result<u8> {
    let api = Api::new(args)?;
    let hosts = api.get_with("/hosts", &[("selector", selector)]).await?;
    if args.output == OutputFormat::Json {
        print_json(&hosts);
        return Ok(terminal::EXIT_OK);
    }
    let rows: Vec<Vec<String>> = hosts
        .as_array()
        .map(|a| {
            a.iter()
                .map(|h| {
                    vec![
                        h["name"].as_str().unwrap_or_default().to_owned(),
                        format!(
                            "{}:{}",
                            h["address"].as_str().unwrap_or_default(),
                            h["port"]
                        ),
                        h["user"].as_str().unwrap_or("-").to_owned(),
                        joined(&h["groups"]),
                        joined(&h["tags"]),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    if rows.is_empty() {
        println!("no hosts: the catalog has no inventory.toml");
    } else {
        print_table(&["HOST", "ADDRESS", "USER", "GROUPS", "TAGS"], &rows);
    }
    Ok(terminal::EXIT_OK)
}

/// The query of an authorization question.
fn question_query(
    q: &crate::cli::Question,
    door: Option<&str>,
    principal: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut query = vec![("verb", q.verb.clone())];
    let optional = [
        ("action", q.action.as_deref()),
        ("target", q.target.as_deref()),
        ("door", door),
        ("principal", principal),
    ];
    for (key, value) in optional {
        if let Some(v) = value {
            query.push((key, v.to_owned()));
        }
    }
    query
}

/// `id (location)` of each policy, comma-separated.
fn policy_list(v: &serde_json::Value) -> String {
    v.as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    format!(
                        "{} ({})",
                        p["id"].as_str().unwrap_or_default(),
                        p["location"].as_str().unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn joined(v: &serde_json::Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

pub async fn who_can(
    args: &ClientArgs,
    q: &crate::cli::Question,
    door: Option<&str>,
) -> anyhow::Result<u8> {
    let api = Api::new(args)?;
    let url =
        reqwest::Url::parse_with_params(&api.url("/authz/who-can"), question_query(q, door, None))?;
    let answer: serde_json::Value = api.send(api.http.get(url)).await?.json().await?;
    if args.output == OutputFormat::Json {
        print_json(&answer);
        return Ok(terminal::EXIT_OK);
    }
    let mut asked = format!(
        "{} {}",
        q.verb,
        q.action.as_deref().unwrap_or("switchboard")
    );
    if let Some(t) = &q.target {
        asked.push_str(&format!(" on {t}"));
    }
    println!("Who can {asked} (doors: {})", joined(&answer["doors"]));
    let principals = answer["principals"].as_array().cloned().unwrap_or_default();
    if principals.is_empty() {
        println!("\nNo known principal.");
    } else {
        println!();
        let rows: Vec<Vec<String>> = principals
            .iter()
            .map(|g| {
                vec![
                    g["principal"].as_str().unwrap_or_default().to_owned(),
                    g["kind"].as_str().unwrap_or_default().to_owned(),
                    joined(&g["doors"]),
                    policy_list(&g["policies"]),
                ]
            })
            .collect();
        terminal::print_table(&["PRINCIPAL", "KIND", "DOORS", "POLICIES"], &rows);
    }
    if let Some(everyone) = answer["everyone"].as_object() {
        println!(
            "\nEvery signed-in principal may, through {}: {}",
            joined(&everyone["doors"]),
            policy_list(&everyone["policies"])
        );
    }
    let groups = answer["groups"].as_array().cloned().unwrap_or_default();
    if !groups.is_empty() {
        println!(
            "\nAny member of these groups may (members the directory does not list included):"
        );
        let rows: Vec<Vec<String>> = groups
            .iter()
            .map(|g| {
                vec![
                    g["group"].as_str().unwrap_or_default().to_owned(),
                    joined(&g["doors"]),
                    policy_list(&g["policies"]),
                ]
            })
            .collect();
        terminal::print_table(&["GROUP", "DOORS", "POLICIES"], &rows);
    }
    let examined = answer["examined"].as_u64().unwrap_or_default();
    println!(
        "\n{examined} known principal{} examined.",
        if examined == 1 { "" } else { "s" }
    );
    Ok(terminal::EXIT_OK)
}

pub async fn explain(
    args: &ClientArgs,
    principal: &str,
    q: &crate::cli::Question,
    door: Option<&str>,
) -> anyhow::Result<u8> {
    let api = Api::new(args)?;
    let url = reqwest::Url::parse_with_params(
        &api.url("/authz/explain"),
        question_query(q, door, Some(principal)),
    )?;
    let answer: serde_json::Value = api.send(api.http.get(url)).await?.json().await?;
    let allowed = answer["allowed"].as_bool().unwrap_or(false);
    if args.output == OutputFormat::Json {
        print_json(&answer);
    } else {
        let mut asked = format!(
            "{} {}",
            answer["verb"].as_str().unwrap_or_default(),
            answer["action"].as_str().unwrap_or("switchboard")
        );
        if let Some(t) = answer["target"].as_str() {
            asked.push_str(&format!(" on {t}"));
        }
        println!(
            "{} {} {asked} through {}",
            answer["principal"].as_str().unwrap_or_default(),
            if allowed { "MAY" } else { "may NOT" },
            answer["door"].as_str().unwrap_or_default()
        );
        println!("reason: {}", answer["reason"].as_str().unwrap_or_default());
        println!("kind:   {}", answer["kind"].as_str().unwrap_or_default());
        println!("groups: {}", joined(&answer["groups"]));
    }
    Ok(if allowed {
        terminal::EXIT_OK
    } else {
        terminal::EXIT_FAILED
    })
}

pub async fn policies(args: &ClientArgs) -> anyhow::Result<u8> {
    let api = Api::new(args)?;
    let list: serde_json::Value = api.get("/authz/policies").await?;
    if args.output == OutputFormat::Json {
        print_json(&list);
        return Ok(terminal::EXIT_OK);
    }
    let rows: Vec<Vec<String>> = list
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|p| {
            vec![
                p["id"].as_str().unwrap_or_default().to_owned(),
                p["effect"].as_str().unwrap_or_default().to_owned(),
                p["location"].as_str().unwrap_or_default().to_owned(),
                p["description"].as_str().unwrap_or("-").to_owned(),
            ]
        })
        .collect();
    terminal::print_table(&["ID", "EFFECT", "WHERE", "DESCRIPTION"], &rows);
    Ok(terminal::EXIT_OK)
}

pub async fn token_list(args: &ClientArgs) -> anyhow::Result<u8> {
    let api = Api::new(args)?;
    let list: Vec<serde_json::Value> = api.get("/tokens").await?;
    if args.output == OutputFormat::Json {
        print_json(&serde_json::Value::Array(list));
        return Ok(terminal::EXIT_OK);
    }
    let s = |v: &serde_json::Value| {
        v.as_str().map_or("-".to_owned(), |t| {
            t.chars().take(19).collect::<String>().replace('T', " ")
        })
    };
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|t| {
            let state = if t["revoked_at"].is_string() {
                "revoked"
            } else {
                "active"
            };
            vec![
                t["id"].to_string(),
                s(&t["principal"]),
                t["scopes"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str())
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default(),
                state.to_owned(),
                s(&t["expires_at"]),
                s(&t["last_used_at"]),
                t["description"].as_str().unwrap_or_default().to_owned(),
            ]
        })
        .collect();
    print_table(
        &[
            "ID",
            "PRINCIPAL",
            "SCOPES",
            "STATE",
            "EXPIRES",
            "LAST USED",
            "DESCRIPTION",
        ],
        &rows,
    );
    Ok(terminal::EXIT_OK)
}

pub async fn token_revoke(args: &ClientArgs, id: i64) -> anyhow::Result<u8> {
    let api = Api::new(args)?;
    api.send(api.http.delete(api.url(&format!("/tokens/{id}"))))
        .await?;
    println!("token #{id} revoked");
    Ok(terminal::EXIT_OK)
}

/// Pushes the spool's records, a batch at a time; empties the spool when
/// every record was taken and nothing was appended meanwhile.
pub async fn audit_push(args: &ClientArgs, spool: &std::path::Path) -> anyhow::Result<u8> {
    let api = Api::new(args)?;
    let text = match std::fs::read_to_string(spool) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("nothing to push: {} does not exist", spool.display());
            return Ok(terminal::EXIT_OK);
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", spool.display())),
    };
    let read_len = text.len() as u64;
    let mut runs = Vec::new();
    let mut bad = 0;
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(v) => runs.push(v),
            Err(e) => {
                bad += 1;
                eprintln!(
                    "{}:{}: not a record, kept in the spool: {e}",
                    spool.display(),
                    n + 1
                );
            }
        }
    }
    let (mut added, mut duplicates) = (0, 0);
    for batch in runs.chunks(1000) {
        let answer: serde_json::Value = api
            .post("/audit/offline", &serde_json::json!({"runs": batch}))
            .await?;
        added += answer["added"].as_u64().unwrap_or(0);
        duplicates += answer["duplicates"].as_u64().unwrap_or(0);
    }
    println!("{added} offline runs added to the audit log, {duplicates} already there");
    let unchanged = std::fs::metadata(spool)
        .map(|m| m.len() == read_len)
        .unwrap_or(false);
    if bad == 0 && unchanged {
        std::fs::write(spool, b"").with_context(|| format!("cannot empty {}", spool.display()))?;
    } else if bad == 0 {
        eprintln!(
            "{} grew while pushing; kept (push again: nothing is added twice)",
            spool.display()
        );
    }
    Ok(if bad == 0 {
        terminal::EXIT_OK
    } else {
        terminal::EXIT_FAILED
    })
}

#[derive(Debug, Deserialize)]
struct VerifyView {
    intact: bool,
    records: i64,
    head: String,
    broken_at: Option<i64>,
    reason: Option<String>,
}

pub async fn audit_verify(source: &AuditSource) -> anyhow::Result<u8> {
    let v = match &source.storage {
        Some(url) => {
            let store = switchboard_store::open(url)
                .await
                .context("cannot open the storage")?;
            let v = switchboard_engine::verify_audit(store.as_ref()).await?;
            VerifyView {
                intact: v.broken.is_none(),
                records: v.records,
                head: v.head,
                broken_at: v.broken.as_ref().map(|b| b.seq),
                reason: v.broken.map(|b| b.reason),
            }
        }
        None => Api::new(&source.client)?.get("/audit/verify").await?,
    };
    if source.client.output == OutputFormat::Json {
        let json = serde_json::json!({"intact": v.intact, "records": v.records, "head": v.head, "broken_at": v.broken_at, "reason": v.reason});
        print_json(&json);
    } else if v.intact {
        println!("audit chain intact: {} records, head {}", v.records, v.head);
    } else {
        println!(
            "audit chain BROKEN at record {}: {} ({} records before it verify)",
            v.broken_at.unwrap_or_default(),
            v.reason.as_deref().unwrap_or("unknown"),
            v.records
        );
    }
    Ok(if v.intact {
        terminal::EXIT_OK
    } else {
        terminal::EXIT_FAILED
    })
}

pub async fn audit_export(source: &AuditSource, since: Option<&str>) -> anyhow::Result<u8> {
    use std::io::Write;
    let since = since.map(since_time).transpose()?;
    let since_ts = since
        .as_deref()
        .map(|t| switchboard_core::Timestamp::parse_rfc3339(t).context("invalid time"))
        .transpose()?;
    enum Reader {
        Store(std::sync::Arc<dyn switchboard_store::Store>),
        Server(Api),
    }
    let reader = match &source.storage {
        Some(url) => Reader::Store(
            switchboard_store::open(url)
                .await
                .context("cannot open the storage")?,
        ),
        None => Reader::Server(Api::new(&source.client)?),
    };
    const PAGE: u32 = 5000;
    let mut out = std::io::stdout().lock();
    let mut after = 0;
    loop {
        let page: Vec<serde_json::Value> = match &reader {
            Reader::Store(store) => store
                .audit_records(after, since_ts, PAGE)
                .await?
                .into_iter()
                .map(|r| serde_json::to_value(r).unwrap_or_default())
                .collect(),
            Reader::Server(api) => {
                let mut query = vec![("after", after.to_string()), ("limit", PAGE.to_string())];
                if let Some(t) = &since {
                    query.push(("since", t.clone()));
                }
                let url = reqwest::Url::parse_with_params(&api.url("/audit"), &query)?;
                let page: serde_json::Value = api.send(api.http.get(url)).await?.json().await?;
                page["records"].as_array().cloned().unwrap_or_default()
            }
        };
        let Some(last) = page.last().and_then(|r| r["seq"].as_i64()) else {
            break;
        };
        after = last;
        for record in &page {
            writeln!(out, "{record}")?;
        }
        // A short page is the end. (Reading through the server is itself
        // recorded, so asking again would always find one more record.)
        if page.len() < PAGE as usize {
            break;
        }
    }
    Ok(terminal::EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_key_value_words() {
        let p = parse_params(&["a=1".into(), "b=x=y".into(), "c=".into()]).unwrap();
        assert_eq!(p["b"], "x=y");
        assert_eq!(p["c"], "");
        assert!(parse_params(&["novalue".into()]).is_err());
        assert!(parse_params(&["=x".into()]).is_err());
        assert!(
            parse_params(&["a=1".into(), "a=2".into()])
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
    }

    #[test]
    fn since_takes_a_time_or_an_age() {
        assert_eq!(
            since_time("2026-11-24T08:00:00Z").unwrap(),
            "2026-11-24T08:00:00Z"
        );
        let two_hours_ago = humantime::parse_rfc3339_weak(&since_time("2h").unwrap()).unwrap();
        let age = std::time::SystemTime::now()
            .duration_since(two_hours_ago)
            .unwrap();
        assert!((7199..=7201).contains(&age.as_secs()));
        assert!(since_time("yesterday").is_err());
    }
}
