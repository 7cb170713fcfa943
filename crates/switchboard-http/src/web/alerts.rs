//! The alerts page: the hosts that need attention, groups and firing alerts
//! with acknowledgements, silences made and ended.

use super::*;

/// The hosts that need attention, the alert groups, the firing alerts and
/// the silences, with forms to acknowledge and to silence.
pub(super) async fn alerts(State(state): State<AppState>, user: WebUser) -> Response {
    alerts_page(&state, &user, None, StatusCode::OK).await
}

pub(super) async fn alerts_page(
    state: &AppState,
    user: &WebUser,
    form_error: Option<String>,
    status: StatusCode,
) -> Response {
    const SHOWN: u32 = 200;
    let since =
        switchboard_core::Timestamp::now().before(std::time::Duration::from_secs(24 * 3600));
    let (who, origin) = (user.caller.identity(), &user.caller.origin);
    let attention = match state.engine.attention(who, origin, since).await {
        Ok(a) => a,
        Err(e) => return refusal(user, e),
    };
    let firing = match state.engine.alerts(true, SHOWN).await {
        Ok(a) => a,
        Err(e) => return refusal(user, e),
    };
    let silences = match state.engine.silences(false).await {
        Ok(s) => s,
        Err(e) => return refusal(user, e),
    };
    let hosts: Vec<Value> = attention
        .iter()
        .map(|h| {
            let alerts: Vec<String> = h
                .alerts
                .iter()
                .map(|a| match &a.severity {
                    Some(s) => format!("{} ({s})", a.alertname),
                    None => a.alertname.clone(),
                })
                .collect();
            let failing: Vec<Value> = h
                .failing
                .iter()
                .map(|f| context! { action => f.action.clone(), id => f.execution.0, status => f.status.as_str() })
                .collect();
            context! { host => h.host.clone(), alerts, failing }
        })
        .collect();
    let groups: Vec<Value> = state
        .engine
        .alert_groups()
        .into_iter()
        .map(|g| {
            let labels: Vec<String> = g.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            context! {
                id => g.id,
                labels => labels.join(", "),
                receiver => g.receiver,
                alerts => g.alerts,
                acked => g.acked.map(|(by, at)| format!("{by} at {at}")),
            }
        })
        .collect();
    let alerts: Vec<Value> = firing
        .iter()
        .map(|a| {
            let ack = state
                .engine
                .alert_acked_by(&a.fingerprint)
                .map(|(by, _)| by);
            let labels: Vec<String> = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            context! {
                fingerprint => a.fingerprint.clone(),
                name => a.labels.get("alertname").cloned().unwrap_or_default(),
                severity => a.labels.get("severity").cloned(),
                summary => a.annotations.get("summary").cloned(),
                labels => labels.join(", "),
                since => a.starts_at.to_string(),
                ack,
            }
        })
        .collect();
    let silences: Vec<Value> = silences
        .iter()
        .map(|s| {
            context! {
                id => s.id.clone(),
                matchers => s.matchers.clone(),
                ends_at => s.ends_at.to_string(),
                created_by => s.created_by.clone(),
                comment => s.comment.clone(),
                state => s.state,
            }
        })
        .collect();
    page(
        status,
        "alerts.html",
        context! { user => user_view(user), hosts, groups, alerts, silences, form_error },
    )
}

#[derive(Deserialize)]
pub(super) struct AckForm {
    csrf: String,
    /// A fingerprint or a group's id.
    target: String,
    #[serde(default)]
    comment: String,
}

pub(super) async fn ack(
    State(state): State<AppState>,
    user: WebUser,
    Form(form): Form<AckForm>,
) -> Response {
    if !user.csrf_ok(&form.csrf) {
        return forged(&user);
    }
    match state
        .engine
        .acknowledge(
            user.caller.identity(),
            &user.caller.origin,
            &form.target,
            &form.comment,
        )
        .await
    {
        Ok(_) => Redirect::to("/ui/alerts").into_response(),
        Err(e @ (EngineError::Forbidden(_) | EngineError::UnknownAlert(_))) => {
            alerts_page(&state, &user, Some(e.to_string()), StatusCode::FORBIDDEN).await
        }
        Err(e) => refusal(&user, e),
    }
}

#[derive(Deserialize)]
pub(super) struct SilenceForm {
    csrf: String,
    matchers: String,
    duration: String,
    comment: String,
}

pub(super) async fn silence(
    State(state): State<AppState>,
    user: WebUser,
    Form(form): Form<SilenceForm>,
) -> Response {
    if !user.csrf_ok(&form.csrf) {
        return forged(&user);
    }
    let duration = match humantime::parse_duration(form.duration.trim()) {
        Ok(d) if !d.is_zero() => d,
        _ => {
            let text = format!(
                "`{}` is not a duration like `2h` or `30m`",
                form.duration.trim()
            );
            return alerts_page(&state, &user, Some(text), StatusCode::UNPROCESSABLE_ENTITY).await;
        }
    };
    let new = switchboard_engine::alerts::silences::NewSilence {
        matchers: form.matchers.trim().to_owned(),
        starts_at: None,
        ends_at: None,
        duration: Some(duration),
        comment: form.comment.trim().to_owned(),
    };
    match state
        .engine
        .create_silence(user.caller.identity(), &user.caller.origin, new)
        .await
    {
        Ok(_) => Redirect::to("/ui/alerts").into_response(),
        Err(e @ (EngineError::Forbidden(_) | EngineError::Invalid(_))) => {
            let status = if matches!(e, EngineError::Forbidden(_)) {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            alerts_page(&state, &user, Some(e.to_string()), status).await
        }
        Err(e) => refusal(&user, e),
    }
}

pub(super) async fn unsilence(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !user.csrf_ok(&form.csrf) {
        return forged(&user);
    }
    match state
        .engine
        .expire_silence(user.caller.identity(), &user.caller.origin, &id)
        .await
    {
        Ok(_) => Redirect::to("/ui/alerts").into_response(),
        Err(e) => refusal(&user, e),
    }
}
