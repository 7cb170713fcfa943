//! The chat console page: a line answered as chat would answer it, the
//! replies streamed back.

use super::*;

pub(super) async fn console_page(user: WebUser) -> Response {
    page(
        StatusCode::OK,
        "console.html",
        context! { user => user_view(&user) },
    )
}

#[derive(Deserialize)]
pub(super) struct ConsoleLine {
    text: String,
}

/// One line of the console page, answered as chat would answer it, the
/// replies streamed back (server-sent events). The page sends its CSRF
/// token in `X-CSRF-Token`.
pub(super) async fn console_line(
    State(state): State<AppState>,
    user: WebUser,
    headers: axum::http::HeaderMap,
    axum::Json(line): axum::Json<ConsoleLine>,
) -> Response {
    let sent = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !user.csrf_ok(sent) {
        return forged(&user);
    }
    if let Err(e) = user
        .caller
        .require(
            &state.engine,
            switchboard_core::token::Scope::Run,
            "use the chat console",
        )
        .await
    {
        return e.into_response();
    }
    crate::routes::chat::console_replies(&state, &user.caller, "web", line.text)
        .unwrap_or_else(IntoResponse::into_response)
}
