//! Who is calling, and through which door: the one extractor every handler
//! that acts takes. Until sign-in exists every caller is the `local`
//! principal; authentication will replace the body of this extractor, and
//! no handler will change.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use switchboard_core::{Origin, Principal};

use crate::error::ApiError;

/// Header a client sets to say which door it is (`cli` or `api`).
pub const ORIGIN_HEADER: &str = "x-switchboard-origin";

/// The principal and door of a request.
pub struct Caller {
    pub principal: Principal,
    pub origin: Origin,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // Only doors that need no proof may be claimed by a client; the
        // others (chat, schedules, alerts) are set by Switchboard itself.
        let origin = match parts
            .headers
            .get(ORIGIN_HEADER)
            .map(|v| v.to_str().unwrap_or(""))
        {
            None | Some("api") => Origin::api(),
            Some("cli") => Origin::cli(),
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "header `{ORIGIN_HEADER}` must be `cli` or `api`, not `{other}`"
                )));
            }
        };
        Ok(Self {
            principal: Principal::local(),
            origin,
        })
    }
}
