//! The HTTP runner (`runner = "http"`): renders an action's `[http]` table
//! with the execution's parameters (see `switchboard_core::http_request`
//! for where a value may land and how it is escaped), sends the one
//! request, and reports the answer: the status line and the body as output
//! lines, and as the result `{"status", "headers", "body"}`.
//!
//! Secrets: every output line, the result and every error pass through a
//! [`Masker`] of the `secret` parameters' values, also in their
//! percent-encoded and JSON-escaped forms, so a secret the URL carries or
//! the server echoes back is shown as `****`.
//!
//! Deliberately not done: redirects are never followed (a `3xx` is the
//! answer, and fails unless `expect_status` lists it), so a request and its
//! credentials go to the host the catalog names and nowhere else; no retries
//! (an action that is safe to repeat says so with `idempotent`); no client
//! certificates or custom CAs yet. The whole exchange, connecting included,
//! is bounded by the action's `timeout`.

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use switchboard_core::http_request::{HttpRequest, HttpSpec, encode_component};
use switchboard_core::{Action, ExecutionStatus, Masker, Stream, Timestamp, ValidatedParams};
use tokio::sync::{mpsc, watch};

use super::output::{LineSplitter, Output};
use super::{RunEvent, RunLimits, RunOutcome};

/// Largest body kept for the result (parsed as JSON when it is JSON).
pub const MAX_RESULT_BODY: usize = 1024 * 1024;

/// The response headers the result keeps.
const RESULT_HEADERS: [&str; 8] = [
    "content-type",
    "content-length",
    "location",
    "etag",
    "last-modified",
    "retry-after",
    "x-request-id",
    "www-authenticate",
];

/// Everything the HTTP runner needs for one run.
pub struct HttpRun<'a> {
    pub action: &'a Action,
    pub spec: &'a HttpSpec,
    pub params: &'a ValidatedParams,
    pub limits: &'a RunLimits,
}

/// What came back.
struct Answer {
    status: reqwest::StatusCode,
    headers: serde_json::Map<String, serde_json::Value>,
    content_type: Option<String>,
    /// The first [`MAX_RESULT_BODY`] bytes.
    body: Vec<u8>,
    /// The whole body's size.
    body_bytes: u64,
}

enum End {
    Answered(Result<Answer, String>),
    TimedOut,
    Cancelled,
}

/// Sends the action's request and reports the answer. `cancel` turning
/// `true` abandons it.
pub async fn run(
    job: HttpRun<'_>,
    events: mpsc::Sender<RunEvent>,
    mut cancel: watch::Receiver<bool>,
) -> RunOutcome {
    let mut out = Output::new(events, masker(job.params.secret_values()), job.limits);
    let request = match job.spec.render(job.params, &job.action.param_names()) {
        Ok(r) => r,
        Err(e) => return outcome(&out, ExecutionStatus::Failed, None, Some(e)),
    };
    let url = match reqwest::Url::parse(&request.url) {
        Ok(u) => u,
        Err(e) => {
            let e = format!("the URL is not valid: {e}");
            return outcome(&out, ExecutionStatus::Failed, None, Some(e));
        }
    };
    let target = format!(
        "{}:{}",
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or_default()
    );
    let built = client().and_then(|client| build(&client, &request, url, &out.masker));
    let builder = match built {
        Ok(b) => b,
        Err(e) => return outcome(&out, ExecutionStatus::Failed, None, Some(e)),
    };
    let _ = out.events.send(RunEvent::Started(Timestamp::now())).await;
    out.system(format!("{} {}", request.method, request.url))
        .await;

    let end = {
        let exchange = exchange(builder, &mut out, &target);
        tokio::pin!(exchange);
        tokio::select! {
            answer = &mut exchange => End::Answered(answer),
            () = tokio::time::sleep(job.action.timeout) => End::TimedOut,
            () = super::stop_asked(&mut cancel) => End::Cancelled,
        }
    };
    match end {
        End::TimedOut => {
            let took = humanize(job.action.timeout);
            out.system(format!("timed out after {took}; the request was abandoned"))
                .await;
            let e = format!("timed out after {took}");
            outcome(&out, ExecutionStatus::TimedOut, None, Some(e))
        }
        End::Cancelled => {
            out.system("cancelled; the request was abandoned".to_owned())
                .await;
            outcome(
                &out,
                ExecutionStatus::Cancelled,
                None,
                Some("cancelled".to_owned()),
            )
        }
        End::Answered(Err(e)) => outcome(&out, ExecutionStatus::Failed, None, Some(e)),
        End::Answered(Ok(answer)) => {
            let code = answer.status.as_u16();
            let result = Some(out.masker.mask_json(result_of(&answer)));
            if job.spec.expects(code) {
                outcome(&out, ExecutionStatus::Succeeded, result, None)
            } else {
                let e = format!(
                    "{} (expected {})",
                    status_line(answer.status),
                    job.spec.expected_text()
                );
                outcome(&out, ExecutionStatus::Failed, result, Some(e))
            }
        }
    }
}

/// A masker of the secret values as they are, percent-encoded (as in a URL)
/// and JSON-escaped (as a server may echo them).
fn masker(secrets: &[String]) -> Masker {
    let mut all = Vec::with_capacity(secrets.len() * 3);
    for s in secrets {
        all.push(s.clone());
        all.push(encode_component(s));
        if let Ok(quoted) = serde_json::to_string(s)
            && let Some(inner) = quoted.strip_prefix('"').and_then(|q| q.strip_suffix('"'))
        {
            all.push(inner.to_owned());
        }
    }
    Masker::new(all)
}

fn outcome(
    out: &Output,
    status: ExecutionStatus,
    result: Option<serde_json::Value>,
    error: Option<String>,
) -> RunOutcome {
    RunOutcome {
        status,
        exit_code: None,
        result,
        error: error.map(|e| out.masker.mask(&e)),
        output_bytes: out.bytes,
        output_truncated: out.truncated,
        artifacts: Vec::new(),
    }
}

/// A client that follows no redirect. One per run: a run is one request,
/// and a client shared across runtimes would keep connections of a runtime
/// that is gone.
fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot set up the HTTP client: {e}"))
}

fn build(
    client: &reqwest::Client,
    request: &HttpRequest,
    url: reqwest::Url,
    masker: &Masker,
) -> Result<reqwest::RequestBuilder, String> {
    let method = reqwest::Method::from_bytes(request.method.as_bytes())
        .map_err(|_| format!("`{}` is not a valid method", request.method))?;
    let mut builder = client.request(method, url);
    for (name, value) in &request.headers {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("`{name}` is not a valid header name"))?;
        let mut v = HeaderValue::from_bytes(value.as_bytes())
            .map_err(|_| format!("header `{name}`: the value cannot be sent in a header"))?;
        // Not indexed by HTTP/2 header compression, and hidden from `Debug`.
        if masker.mask(value) != *value {
            v.set_sensitive(true);
        }
        builder = builder.header(header, v);
    }
    if let Some(body) = &request.body {
        builder = builder.body(body.clone());
    }
    Ok(builder)
}

/// Sends the request and reads the answer, reporting its status line and
/// body lines as they come.
async fn exchange(
    builder: reqwest::RequestBuilder,
    out: &mut Output,
    target: &str,
) -> Result<Answer, String> {
    let mut response = builder.send().await.map_err(|e| {
        format!(
            "the request to {target} failed: {}",
            super::describe_request_error(e)
        )
    })?;
    let status = response.status();
    out.system(status_line(status)).await;
    let mut headers = serde_json::Map::new();
    for name in RESULT_HEADERS {
        if let Some(v) = response.headers().get(name) {
            let text = String::from_utf8_lossy(v.as_bytes()).into_owned();
            headers.insert(name.to_owned(), text.into());
        }
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    let binary = content_type.as_deref().is_some_and(is_binary);
    let mut answer = Answer {
        status,
        headers,
        content_type,
        body: Vec::new(),
        body_bytes: 0,
    };
    let mut lines = LineSplitter::default();
    loop {
        let chunk = response.chunk().await.map_err(|e| {
            format!(
                "{}, but reading the body failed: {}",
                status_line(status),
                super::describe_request_error(e)
            )
        })?;
        let Some(chunk) = chunk else { break };
        answer.body_bytes = answer.body_bytes.saturating_add(chunk.len() as u64);
        let room = MAX_RESULT_BODY.saturating_sub(answer.body.len());
        answer
            .body
            .extend_from_slice(&chunk[..room.min(chunk.len())]);
        if !binary {
            for line in lines.push(&chunk) {
                out.emit(Stream::Stdout, line).await;
            }
        }
    }
    if let Some(rest) = lines.finish() {
        out.emit(Stream::Stdout, rest).await;
    }
    if binary {
        out.system(format!(
            "[binary body not shown: {} bytes of {}]",
            answer.body_bytes,
            answer.content_type.as_deref().unwrap_or_default()
        ))
        .await;
    }
    Ok(answer)
}

/// `{"status", "headers", "body"}`: the body parsed when it is JSON of at
/// most [`MAX_RESULT_BODY`] bytes, else its text (cut there, saying so),
/// `null` when empty or binary.
fn result_of(answer: &Answer) -> serde_json::Value {
    let whole = answer.body_bytes <= answer.body.len() as u64;
    let ct = answer.content_type.as_deref().unwrap_or_default();
    let json_type = ct.starts_with("application/json")
        || ct
            .split(';')
            .next()
            .is_some_and(|t| t.trim().ends_with("+json"));
    let body = if answer.body.is_empty() || is_binary(ct) {
        serde_json::Value::Null
    } else if let Some(parsed) = (json_type && whole)
        .then(|| serde_json::from_slice::<serde_json::Value>(&answer.body).ok())
        .flatten()
    {
        parsed
    } else {
        String::from_utf8_lossy(&answer.body).into_owned().into()
    };
    let mut result = serde_json::json!({
        "status": answer.status.as_u16(),
        "headers": answer.headers,
        "body": body,
    });
    if !whole && let Some(map) = result.as_object_mut() {
        map.insert("body_truncated".to_owned(), true.into());
    }
    result
}

fn status_line(status: reqwest::StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("HTTP {} {reason}", status.as_u16()),
        None => format!("HTTP {}", status.as_u16()),
    }
}

/// Content that is not text to show line by line.
fn is_binary(content_type: &str) -> bool {
    let t = content_type.split(';').next().unwrap_or_default().trim();
    t.starts_with("image/")
        || t.starts_with("audio/")
        || t.starts_with("video/")
        || t.starts_with("font/")
        || matches!(
            t,
            "application/octet-stream"
                | "application/zip"
                | "application/gzip"
                | "application/pdf"
                | "application/x-tar"
        )
}

fn humanize(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

#[cfg(test)]
mod tests;
