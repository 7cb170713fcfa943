//! `GET /audit` (records, in chain order) and `GET /audit/verify`.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use switchboard_core::audit::AuditRecord;
use switchboard_core::offline::OfflineRun;
use switchboard_core::token::Scope;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::caller::Caller;
use crate::dto::{JsonBody, page_limit, query_time};
use crate::error::{ApiError, ErrorBody};

const MAX_PAGE: u32 = 5000;

/// Which audit records to read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only records after this sequence number (the `next_after` of the previous page).
    after: Option<i64>,
    /// Only records at or after this RFC 3339 time.
    since: Option<String>,
    /// Page size, 1 to 5000 (default 1000).
    limit: Option<u32>,
}

/// A page of audit records.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Records in chain order: `seq`, `ts`, `actor`, `origin`, `kind`,
    /// `subject`, `outcome`, `detail`, `prev_hash`, `hash`.
    #[schema(value_type = Vec<Object>)]
    pub records: Vec<AuditRecord>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<i64>,
}

/// Reads the audit log in chain order, a page at a time.
#[utoipa::path(
    get, path = "/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 400, body = ErrorBody))
)]
pub async fn list_audit(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    caller
        .require(&state.engine, Scope::Admin, "read the audit log")
        .await?;
    let Query(q) =
        query.map_err(|e| ApiError::bad_request(format!("invalid query: {}", e.body_text())))?;
    let limit = page_limit(q.limit, 1000, MAX_PAGE)?;
    let since = query_time("since", q.since)?;
    let records = state
        .engine
        .audit_records(q.after.unwrap_or(0), since, limit)
        .await?;
    let next_after = (records.len() == limit as usize)
        .then(|| records.last().map(|r| r.seq))
        .flatten();
    Ok(Json(AuditPage {
        records,
        next_after,
    }))
}

/// The result of verifying the chain.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyDto {
    /// Whether every record verifies.
    pub intact: bool,
    /// Records verified (up to the break).
    pub records: i64,
    /// Hash of the last verified record.
    pub head: String,
    /// The first broken record and why.
    pub broken_at: Option<i64>,
    pub reason: Option<String>,
}

/// Verifies the whole audit chain and names the first broken record.
#[utoipa::path(get, path = "/audit/verify", tag = "audit", responses((status = 200, body = VerifyDto)))]
pub async fn verify_audit(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<VerifyDto>, ApiError> {
    caller
        .require(&state.engine, Scope::Admin, "verify the audit log")
        .await?;
    let v = state.engine.verify_audit().await?;
    Ok(Json(VerifyDto {
        intact: v.broken.is_none(),
        records: v.records,
        head: v.head,
        broken_at: v.broken.as_ref().map(|b| b.seq),
        reason: v.broken.map(|b| b.reason),
    }))
}

/// Runs made offline with `switchboard run --local`, as the spool holds them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushBody {
    /// Spool records (see the CLI documentation for their fields).
    #[schema(value_type = Vec<Object>)]
    pub runs: Vec<OfflineRun>,
}

/// How a push went.
#[derive(Debug, Serialize, ToSchema)]
pub struct PushDto {
    /// Records added to the audit log.
    pub added: usize,
    /// Records already pushed before.
    pub duplicates: usize,
}

/// Joins offline runs to the audit log, each once.
#[utoipa::path(
    post, path = "/audit/offline", tag = "audit", request_body = PushBody,
    responses((status = 200, body = PushDto), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody))
)]
pub async fn push_offline(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<PushBody>,
) -> Result<Json<PushDto>, ApiError> {
    caller
        .require(&state.engine, Scope::Run, "push offline runs")
        .await?;
    if body.runs.len() > 10_000 {
        return Err(ApiError::bad_request("push at most 10000 runs at a time"));
    }
    for (i, run) in body.runs.iter().enumerate() {
        if let Some(problem) = run.problem() {
            return Err(ApiError::bad_request(format!(
                "`runs[{i}]` ({}): {problem}",
                run.id
            )));
        }
    }
    let total = body.runs.len();
    let added = state
        .engine
        .push_offline_runs(body.runs, caller.principal(), &caller.origin)
        .await?;
    Ok(Json(PushDto {
        added,
        duplicates: total - added,
    }))
}
