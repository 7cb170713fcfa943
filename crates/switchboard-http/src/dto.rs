//! The API's wire types, kept apart from the domain types so that the
//! contract changes only on purpose, plus the JSON body extractor that turns
//! malformed bodies into field-naming 4xx errors.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use switchboard_core::{Action, Execution, OutputChunk, ParamSpec, Timestamp};
use utoipa::ToSchema;

use crate::error::{ApiError, FieldError};

/// A parameter of an action.
#[derive(Debug, Serialize, ToSchema)]
pub struct ParamDto {
    pub name: String,
    /// One of `string integer number boolean enum duration list secret host`.
    #[serde(rename = "type")]
    pub ty: String,
    pub required: bool,
    #[schema(value_type = Option<Object>)]
    pub default: Option<serde_json::Value>,
    pub description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

impl From<&ParamSpec> for ParamDto {
    fn from(p: &ParamSpec) -> Self {
        Self {
            name: p.name.clone(),
            ty: p.ty.as_str().to_owned(),
            required: p.required,
            default: p
                .default
                .as_ref()
                .map(switchboard_core::ParamValue::to_json),
            description: p.description.clone(),
            choices: p.choices.clone(),
            pattern: p.pattern.as_ref().map(|re| {
                let s = re.as_str();
                s.strip_prefix("^(?:")
                    .and_then(|s| s.strip_suffix(")$"))
                    .unwrap_or(s)
                    .to_owned()
            }),
            min: p.min,
            max: p.max,
        }
    }
}

/// A chat alias of an action.
#[derive(Debug, Serialize, ToSchema)]
pub struct AliasDto {
    pub format: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// An action of the catalog.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionDto {
    pub name: String,
    pub description: String,
    pub runner: String,
    /// The command template, as written in the catalog.
    pub command: Vec<String>,
    /// Seconds before the run is stopped.
    pub timeout_seconds: f64,
    pub tags: Vec<String>,
    pub params: Vec<ParamDto>,
    pub aliases: Vec<AliasDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    pub idempotent: bool,
    /// The two-person rule, when runs need approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalRuleDto>,
    /// The catalog file it is declared in.
    pub file: String,
}

/// Who must approve a run, how many, and how long a request waits.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalRuleDto {
    /// `group:NAME` or `user:NAME`.
    pub approvers: Vec<String>,
    pub count: u32,
    /// How long a request waits, e.g. `30m`.
    pub expires: String,
}

/// An approver's answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApprovalDto {
    pub approver: String,
    /// `approved` or `rejected`.
    pub decision: String,
    pub reason: Option<String>,
    pub origin: String,
    pub at: String,
}

impl From<&switchboard_core::Approval> for ApprovalDto {
    fn from(a: &switchboard_core::Approval) -> Self {
        Self {
            approver: a.approver.to_string(),
            decision: if a.approved { "approved" } else { "rejected" }.to_owned(),
            reason: a.reason.clone(),
            origin: a.origin.to_string(),
            at: a.at.to_string(),
        }
    }
}

impl From<&Action> for ActionDto {
    fn from(a: &Action) -> Self {
        Self {
            name: a.name.to_string(),
            description: a.description.clone(),
            runner: a.runner.as_str().to_owned(),
            command: a.command.clone(),
            timeout_seconds: a.timeout.as_secs_f64(),
            tags: a.tags.clone(),
            params: a.params.iter().map(ParamDto::from).collect(),
            aliases: a
                .aliases
                .iter()
                .map(|al| AliasDto {
                    format: al.format.text.clone(),
                    ack: al.ack.clone(),
                    description: al.description.clone(),
                })
                .collect(),
            concurrency: a.concurrency,
            idempotent: a.idempotent,
            approval: a.approval.as_ref().map(|r| ApprovalRuleDto {
                approvers: r.approvers.iter().map(ToString::to_string).collect(),
                count: r.count,
                expires: humantime::format_duration(r.expires).to_string(),
            }),
            file: a.file.display().to_string(),
        }
    }
}

/// One run of an action.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExecutionDto {
    pub id: i64,
    pub action: String,
    /// Validated parameters; secrets shown as `****`.
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    pub requester: String,
    /// `cli`, `api`, `web`, `schedule`, `alert` or `chat:<platform>:<room>`.
    pub origin: String,
    /// `awaiting_approval queued running succeeded failed timed_out cancelled lost`.
    pub status: String,
    pub node: Option<String>,
    pub exit_code: Option<i32>,
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
    pub output_bytes: i64,
    pub output_truncated: bool,
    /// RFC 3339 times.
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Milliseconds from start to end (or to now while running).
    pub duration_ms: Option<u64>,
    /// While awaiting approval: when the request lapses (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_expires_at: Option<String>,
    /// The approvers' answers (when showing one execution of an action that
    /// needs approval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<Vec<ApprovalDto>>,
    /// Files it produced (on the single-execution answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<Vec<ArtifactDto>>,
    /// The workflow execution this is a step of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<i64>,
    /// Which step of that workflow: `restart#2` (step, then attempt),
    /// `each[0]#1` (a `for_each` item).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

impl From<&Execution> for ExecutionDto {
    fn from(e: &Execution) -> Self {
        Self {
            id: e.id.0,
            action: e.action.to_string(),
            params: e.params.clone(),
            requester: e.requester.to_string(),
            origin: e.origin.to_string(),
            status: e.status.as_str().to_owned(),
            node: e.node.clone(),
            exit_code: e.exit_code,
            result: e.result.clone(),
            error: e.error.clone(),
            output_bytes: e.output_bytes,
            output_truncated: e.output_truncated,
            created_at: e.created_at.to_string(),
            started_at: e.started_at.map(|t| t.to_string()),
            finished_at: e.finished_at.map(|t| t.to_string()),
            duration_ms: e
                .duration(Timestamp::now())
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            approval_expires_at: e.approval_expires_at.map(|t| t.to_string()),
            approvals: None,
            artifacts: None,
            parent: e.parent.map(|p| p.0),
            step: e.step.clone(),
        }
    }
}

/// A page of executions, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExecutionPage {
    pub executions: Vec<ExecutionDto>,
    /// Pass as `before` to get the next page; absent on the last page.
    pub next_before: Option<i64>,
}

/// A request to run an action.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitBody {
    /// The action's name, e.g. `host.disk`.
    pub action: String,
    /// Parameter values by name; text is accepted for every type.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: BTreeMap<String, serde_json::Value>,
}

/// A piece of output.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutputChunkDto {
    pub seq: i64,
    pub ts: String,
    /// `stdout`, `stderr` or `system`.
    pub stream: String,
    pub text: String,
}

impl From<&OutputChunk> for OutputChunkDto {
    fn from(c: &OutputChunk) -> Self {
        Self {
            seq: c.seq,
            ts: c.ts.to_string(),
            stream: c.stream.as_str().to_owned(),
            text: c.text.clone(),
        }
    }
}

/// The output of an execution so far.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutputDto {
    pub chunks: Vec<OutputChunkDto>,
    /// Whether the execution has ended (so no more output will come).
    pub complete: bool,
}

/// The catalog being served.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogDto {
    pub root: String,
    /// Content hash of the catalog's files.
    pub version: String,
    pub git_commit: Option<String>,
    pub actions: usize,
    /// Why the last reload failed; the catalog above still serves.
    pub last_reload_error: Option<String>,
}

/// The result of a successful reload.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReloadDto {
    pub version: String,
    pub git_commit: Option<String>,
    pub actions: usize,
    /// Whether anything differs from the catalog served before.
    pub changed: bool,
}

/// A JSON body, size-limited, whose errors name the offending field.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        parse_body(&read_body(req, state).await?).map(JsonBody)
    }
}

/// A body read whole, size-limited, for formats read by their own parsers.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        read_body(req, state).await.map(RawBody)
    }
}

/// An empty body is `None`: for requests whose body is optional.
impl<T: DeserializeOwned, S: Send + Sync> axum::extract::OptionalFromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        parse_body(&bytes).map(|b| Some(JsonBody(b)))
    }
}

async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Ok(Bytes::from_request(req, state).await?)
}

fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let message = if inner.is_syntax() || inner.is_eof() {
            format!("request body is not valid JSON: {inner}")
        } else {
            format!("invalid request body: {inner}")
        };
        let mut err = ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", message.clone());
        if field != "." {
            err.details.push(FieldError { field, message });
        }
        err
    })
}

/// A single path segment as text; a malformed one (bad percent-encoding,
/// invalid UTF-8) is a 400 with a JSON error like every other.
pub struct PathText(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PathText {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(text)| PathText(text))
            .map_err(|rejection| {
                ApiError::bad_request(format!("invalid path: {}", rejection.body_text()))
            })
    }
}

/// A query parameter that is wrong: 400 naming it.
pub fn field_error(field: &str, message: String) -> ApiError {
    let mut err = ApiError::bad_request(format!("`{field}`: {message}"));
    err.details.push(FieldError {
        field: field.to_owned(),
        message,
    });
    err
}

/// An optional RFC 3339 time from a query parameter.
pub fn query_time(
    field: &str,
    value: Option<String>,
) -> Result<Option<switchboard_core::Timestamp>, ApiError> {
    value
        .map(|t| {
            switchboard_core::Timestamp::parse_rfc3339(&t)
                .ok_or_else(|| field_error(field, format!("`{t}` is not an RFC 3339 time")))
        })
        .transpose()
}

/// A page size from a query parameter, `default` when absent.
pub fn page_limit(value: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    let limit = value.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(field_error("limit", format!("must be between 1 and {max}")))
    }
}

/// A file an execution produced.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ArtifactDto {
    pub name: String,
    pub media_type: String,
    pub size: i64,
    /// Where to fetch it, relative to the API root.
    pub path: String,
}

impl ArtifactDto {
    pub fn new(id: switchboard_core::ExecutionId, info: switchboard_store::ArtifactInfo) -> Self {
        Self {
            path: format!("/executions/{id}/artifacts/{}", info.name),
            name: info.name,
            media_type: info.media_type,
            size: info.size,
        }
    }
}

/// A schedule of the catalog, with its next and last run.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ScheduleDto {
    pub name: String,
    pub description: String,
    pub action: String,
    /// The cron pattern as written (`30 2 * * *`, `@hourly`, or 6 fields
    /// with seconds first).
    pub cron: String,
    /// The IANA time zone the pattern is read in.
    pub timezone: String,
    pub run_as: String,
    /// What a restart does with ticks missed while down: `run_once` or `skip`.
    pub missed: String,
    pub enabled: bool,
    /// The next tick (RFC 3339, UTC); absent when disabled.
    pub next_run: Option<String>,
    /// The same on the schedule's wall clock: `2026-11-27 02:30:00 CET`.
    pub next_run_local: Option<String>,
    pub last_run: Option<LastRunDto>,
}

/// The newest tick a schedule fired or let go.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LastRunDto {
    /// RFC 3339, UTC.
    pub tick: String,
    pub tick_local: String,
    /// `submitted`, `skipped` (missed while down), `refused` (denied or
    /// invalid), `failed`, or `claimed` while being submitted.
    pub outcome: String,
    /// The node that fired it.
    pub node: String,
    pub execution_id: Option<i64>,
    /// That execution's status now.
    pub status: Option<String>,
    pub reason: Option<String>,
}

impl From<&switchboard_engine::schedules::ScheduleView> for ScheduleDto {
    fn from(s: &switchboard_engine::schedules::ScheduleView) -> Self {
        Self {
            name: s.name.clone(),
            description: s.description.clone(),
            action: s.action.clone(),
            cron: s.cron.clone(),
            timezone: s.timezone.clone(),
            run_as: s.run_as.clone(),
            missed: s.missed.to_owned(),
            enabled: s.enabled,
            next_run: s.next_run.map(|t| t.to_string()),
            next_run_local: s.next_run_local.clone(),
            last_run: s.last_run.as_ref().map(|l| LastRunDto {
                tick: l.tick.to_string(),
                tick_local: l.tick_local.clone(),
                outcome: l.outcome.clone(),
                node: l.node.clone(),
                execution_id: l.execution_id.map(|e| e.0),
                status: l.status.map(|s| s.as_str().to_owned()),
                reason: l.reason.clone(),
            }),
        }
    }
}

/// A webhook call accepted: the execution it queued.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HookAcceptedDto {
    pub execution_id: i64,
    /// `queued`, or `awaiting_approval` when the action needs approval.
    pub status: String,
    /// Where to follow it: `/api/v1/executions/{id}` (needs a token).
    pub url: String,
}
