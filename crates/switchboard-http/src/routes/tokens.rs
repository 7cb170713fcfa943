//! `GET/POST /tokens` and `DELETE /tokens/{id}`: API tokens, for admins.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use switchboard_core::Principal;
use switchboard_core::token::{Scope, TokenRecord};
use utoipa::ToSchema;

use crate::AppState;
use crate::caller::Caller;
use crate::dto::{JsonBody, PathText};
use crate::error::{ApiError, ErrorBody};

/// A request for a new token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenBody {
    /// The principal the token speaks for, e.g. `alice` or `svc:deploy`.
    pub principal: String,
    /// What it may do: any of `read`, `run`, `admin` (default `read`, `run`).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// How long it lives, e.g. `30d` (default: until revoked).
    pub expires_in: Option<String>,
}

/// A token as listed: never the secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenDto {
    pub id: i64,
    pub principal: String,
    pub scopes: Vec<String>,
    pub description: String,
    pub created_by: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
}

impl From<&TokenRecord> for TokenDto {
    fn from(t: &TokenRecord) -> Self {
        Self {
            id: t.id,
            principal: t.principal.to_string(),
            scopes: t.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            description: t.description.clone(),
            created_by: t.created_by.to_string(),
            created_at: t.created_at.to_string(),
            expires_at: t.expires_at.map(|x| x.to_string()),
            revoked_at: t.revoked_at.map(|x| x.to_string()),
            last_used_at: t.last_used_at.map(|x| x.to_string()),
        }
    }
}

/// A new token: `token` is shown this once and never again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedTokenDto {
    pub token: String,
    #[serde(flatten)]
    pub record: TokenDto,
}

/// Lists every token (never their secrets).
#[utoipa::path(get, path = "/tokens", tag = "tokens", responses((status = 200, body = Vec<TokenDto>), (status = 403, body = ErrorBody)))]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<TokenDto>>, ApiError> {
    caller
        .require(&state.engine, Scope::Admin, "list tokens")
        .await?;
    let tokens = state.engine.list_tokens().await?;
    Ok(Json(tokens.iter().map(TokenDto::from).collect()))
}

/// Issues a token; the answer is the only time the token is shown.
#[utoipa::path(
    post, path = "/tokens", tag = "tokens", request_body = CreateTokenBody,
    responses((status = 201, body = CreatedTokenDto), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody))
)]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateTokenBody>,
) -> Result<(StatusCode, Json<CreatedTokenDto>), ApiError> {
    caller
        .require(&state.engine, Scope::Admin, "create tokens")
        .await?;
    let principal = Principal::new(body.principal)
        .map_err(|e| ApiError::bad_request(format!("`principal`: {e}")))?;
    let scopes = if body.scopes.is_empty() {
        vec![Scope::Read, Scope::Run]
    } else {
        Scope::parse_list(&body.scopes.join(","))
            .map_err(|e| ApiError::bad_request(format!("`scopes`: {e}")))?
    };
    let valid_for = body
        .expires_in
        .map(|t| {
            switchboard_core::params::parse_duration(&t).map_err(|_| {
                ApiError::bad_request(format!(
                    "`expires_in`: `{t}` is not a duration such as `30d`"
                ))
            })
        })
        .transpose()?;
    let (token, record) = state
        .engine
        .create_token(
            caller.principal(),
            &caller.origin,
            principal,
            scopes,
            body.description,
            valid_for,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedTokenDto {
            token,
            record: TokenDto::from(&record),
        }),
    ))
}

/// Revokes a token at once.
#[utoipa::path(
    delete, path = "/tokens/{id}", tag = "tokens",
    params(("id" = i64, Path, description = "Token id")),
    responses((status = 204, description = "Revoked"), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody))
)]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    PathText(id): PathText,
) -> Result<StatusCode, ApiError> {
    caller
        .require(&state.engine, Scope::Admin, "revoke tokens")
        .await?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("`{id}` is not a token id")))?;
    state
        .engine
        .revoke_token(id, caller.principal(), &caller.origin)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who the presented credential speaks for.
#[derive(Debug, Serialize, ToSchema)]
pub struct WhoamiDto {
    pub principal: String,
    pub scopes: Vec<String>,
    /// Every group the principal is in: declared, from the directory, or
    /// asserted by the identity provider (nested groups included).
    pub groups: Vec<String>,
    /// The door of this request.
    pub origin: String,
}

/// Shows who the credential speaks for, with what scopes and groups.
#[utoipa::path(get, path = "/whoami", tag = "tokens", responses((status = 200, body = WhoamiDto), (status = 401, body = ErrorBody)))]
pub async fn whoami(caller: Caller) -> Json<WhoamiDto> {
    Json(WhoamiDto {
        principal: caller.principal().to_string(),
        scopes: caller
            .who
            .scopes
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
        groups: caller.identity().groups.iter().cloned().collect(),
        origin: caller.origin.to_string(),
    })
}
