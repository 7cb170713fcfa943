//! Who is calling, and through which door. The `authenticate` middleware
//! guards every `/api/v1` route: it checks the bearer token with the engine
//! (which audits failures) and leaves a [`Caller`] for the handler, which
//! then states the scope it needs. A read (`GET`, `HEAD`) without a token
//! may come from a page of the web UI, with its session cookie (the live
//! output of an execution page); writes always need the token, so a page of
//! another site cannot make one with the cookie. Health endpoints sit
//! outside it.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use switchboard_core::policy::Verb;
use switchboard_core::token::Scope;
use switchboard_core::{Origin, Principal};
use switchboard_engine::tokens::Authenticated;
use switchboard_engine::{Engine, Identity};

use crate::AppState;

use crate::error::ApiError;

/// Header a client sets to say which door it is (`cli` or `api`).
pub const ORIGIN_HEADER: &str = "x-switchboard-origin";

/// The authenticated principal and the door of a request.
#[derive(Clone)]
pub struct Caller {
    pub who: Authenticated,
    pub origin: Origin,
}

impl Caller {
    pub fn principal(&self) -> &Principal {
        self.who.principal()
    }

    pub fn identity(&self) -> &Identity {
        &self.who.identity
    }

    /// Refuses with 403 (audited) unless the token has `scope`; the `admin`
    /// scope also needs the policies to permit the `admin` verb.
    pub async fn require(&self, engine: &Engine, scope: Scope, what: &str) -> Result<(), ApiError> {
        engine
            .require_scope(&self.who, &self.origin, scope, what)
            .await?;
        if scope == Scope::Admin {
            engine
                .authorize(self.identity(), &self.origin, Verb::Admin, None, &[], None)
                .await?;
        }
        Ok(())
    }
}

/// Only doors that need no proof may be claimed by a client; the others
/// (chat, schedules, alerts) are set by Switchboard itself.
fn origin(parts: &Parts) -> Result<Origin, ApiError> {
    match parts
        .headers
        .get(ORIGIN_HEADER)
        .map(|v| v.to_str().unwrap_or(""))
    {
        None | Some("api") => Ok(Origin::api()),
        Some("cli") => Ok(Origin::cli()),
        Some(other) => Err(ApiError::bad_request(format!(
            "header `{ORIGIN_HEADER}` must be `cli` or `api`, not `{other}`"
        ))),
    }
}

fn unauthenticated(message: &str) -> Response {
    let mut resp =
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message).into_response();
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

/// The token of an `Authorization` header: `Bearer TOKEN`, or HTTP basic
/// authentication whose password is the token (the user name is not
/// used) — for senders such as Alertmanager configured with `basic_auth`.
fn credential(header: &str) -> Option<String> {
    use base64::Engine as _;
    let (scheme, rest) = header.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        return text
            .split_once(':')
            .map(|(_, password)| password.to_owned());
    }
    None
}

/// Middleware: authenticates the bearer token of every request it guards.
pub async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let engine = &state.engine;
    let (mut parts, body) = req.into_parts();
    let origin = match origin(&parts) {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    let token = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(credential)
        .filter(|t| !t.is_empty());
    let Some(token) = token.as_deref() else {
        let read =
            parts.method == axum::http::Method::GET || parts.method == axum::http::Method::HEAD;
        if read && let Some(caller) = crate::web::session::api_caller(&state, &mut parts).await {
            parts.extensions.insert(caller);
            return next.run(Request::from_parts(parts, body)).await;
        }
        return unauthenticated(
            "a credential is required: send `Authorization: Bearer <token>` (or basic authentication with the token as the password)",
        );
    };
    match engine.authenticate(token, &origin).await {
        Ok(who) => {
            parts.extensions.insert(Caller { who, origin });
            next.run(Request::from_parts(parts, body)).await
        }
        Err(switchboard_engine::EngineError::Unauthenticated(message)) => unauthenticated(&message),
        Err(e) => ApiError::from(e).into_response(),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // Present on every route behind `authenticate`; a route outside it
        // that asks for a caller is refused rather than served anonymously.
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "a credential is required",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::credential;

    #[test]
    fn bearer_and_basic_credentials_are_read() {
        assert_eq!(credential("Bearer sb_abc").as_deref(), Some("sb_abc"));
        assert_eq!(credential("bearer  sb_abc ").as_deref(), Some("sb_abc"));
        // `alertmanager:sb_abc`
        assert_eq!(
            credential("Basic YWxlcnRtYW5hZ2VyOnNiX2FiYw==").as_deref(),
            Some("sb_abc")
        );
        assert_eq!(credential("Basic not-base64!"), None);
        assert_eq!(credential("Basic bm8tY29sb24="), None, "no password");
        assert_eq!(credential("Digest x"), None);
        assert_eq!(credential("Bearer"), None);
    }

    proptest::proptest! {
        #[test]
        fn any_header_is_read_without_panic(header in "\\PC{0,80}") {
            let _ = credential(&header);
        }
    }
}
