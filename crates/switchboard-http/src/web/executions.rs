//! Executions: the list (filters, pages by id), one execution (live output,
//! result, files, cancel, run again), and the approvals queue with its
//! answers.

use switchboard_core::workflow::state::StepStatus;

use super::*;

pub(super) async fn execution(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
) -> Response {
    let Some(id) = parse_id(&id) else {
        return no_such_execution(&user);
    };
    let e = match state
        .engine
        .get_visible(user.caller.identity(), &user.caller.origin, id)
        .await
    {
        Ok(e) => e,
        Err(e) => return refusal(&user, e),
    };
    // The output so far; the page's script follows the rest live.
    let mut output = String::new();
    let mut last_seq = 0;
    if let Ok(chunks) = state.engine.store().output(id, 0, 5000).await {
        // One chunk a line, kept without its line end.
        for c in chunks {
            output.push_str(&c.text);
            output.push('\n');
            last_seq = c.seq;
        }
    }
    let files: Vec<Value> = state
        .engine
        .artifacts(id)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|f| {
            context! {
                url => format!("/api/v1/executions/{id}/artifacts/{}", f.name),
                image => f.media_type.starts_with("image/"),
                name => f.name,
            }
        })
        .collect();
    let duration = match (e.started_at, e.finished_at) {
        (Some(s), Some(f)) => Some(switchboard_core::chat::short_duration(
            std::time::Duration::from_micros(u64::try_from(f.micros() - s.micros()).unwrap_or(0)),
        )),
        _ => None,
    };
    let params = param_pairs(&e);
    let rerun = serde_urlencoded::to_string(&params).unwrap_or_default();
    let workflow = state
        .engine
        .workflow_view(id)
        .await
        .ok()
        .flatten()
        .map(|w| {
            let failed = w.steps.iter().any(|s| {
                matches!(
                    s.status,
                    StepStatus::Failed | StepStatus::TimedOut | StepStatus::Cancelled
                )
            });
            context! {
                paused => w.paused,
                runs_as => w.runs_as.to_string(),
                failed,
                steps => w.steps.iter().map(step_view).collect::<Vec<_>>(),
            }
        });
    page(
        StatusCode::OK,
        "execution.html",
        context! {
            user => user_view(&user),
            id => id.0,
            action => e.action.to_string(),
            status => e.status.as_str(),
            finished => e.status.is_terminal(),
            requester => e.requester.to_string(),
            origin => e.origin.to_string(),
            created_at => e.created_at.to_string(),
            started_at => e.started_at.map(|t| t.to_string()),
            finished_at => e.finished_at.map(|t| t.to_string()),
            duration,
            exit_code => e.exit_code,
            error => e.error.clone(),
            params,
            result => e.result.as_ref().and_then(|r| serde_json::to_string_pretty(r).ok()),
            output,
            last_seq,
            files,
            rerun,
            workflow,
            parent => e.parent.map(|p| p.0),
            step => e.step.clone(),
        },
    )
}

/// One step of a workflow as its execution page shows it.
fn step_view(s: &switchboard_engine::StepView) -> Value {
    let answer = match &s.answer {
        Some(serde_json::Value::Bool(true)) => Some("yes".to_owned()),
        Some(serde_json::Value::Bool(false)) => Some("no".to_owned()),
        Some(serde_json::Value::String(t)) => Some(t.clone()),
        Some(other) => Some(other.to_string()),
        None => None,
    };
    let runs: Vec<Value> = s
        .units
        .iter()
        .map(|u| {
            context! {
                item => (!u.item.is_null()).then(|| u.item.to_string()),
                status => u.status.as_str(),
                executions => u.executions.iter().map(|e| e.0).collect::<Vec<_>>(),
            }
        })
        .collect();
    context! {
        name => s.name.clone(),
        status => s.status.as_str(),
        what => s.action.clone().unwrap_or_else(|| "question".to_owned()),
        reason => s.reason.clone(),
        prompt => s.prompt.clone(),
        waiting => s.status == StepStatus::Waiting,
        answer,
        answered_by => s.answered_by.as_ref().map(ToString::to_string),
        runs,
    }
}

#[derive(Deserialize)]
pub(super) struct WorkflowForm {
    csrf: String,
    /// `answer`, `pause`, `resume` or `rerun`.
    r#do: String,
    #[serde(default)]
    answer: String,
    #[serde(default)]
    step: String,
}

/// Steers a workflow from its page: answers its question, pauses, resumes,
/// or runs it again from its first failed step.
pub(super) async fn workflow(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<WorkflowForm>,
) -> Response {
    if !user.csrf_ok(&form.csrf) {
        return forged(&user);
    }
    let Some(id) = parse_id(&id) else {
        return no_such_execution(&user);
    };
    let (who, origin) = (user.caller.identity(), &user.caller.origin);
    let step = Some(form.step.as_str()).filter(|s| !s.is_empty());
    let done = match form.r#do.as_str() {
        "answer" => state
            .engine
            .answer(id, step, who, origin, &form.answer)
            .await
            .map(|_| id),
        "pause" => state.engine.pause(id, who, origin).await.map(|()| id),
        "resume" => state.engine.resume(id, who, origin).await.map(|()| id),
        "rerun" => state
            .engine
            .rerun(id, step, who, origin)
            .await
            .map(|e| e.id),
        other => {
            return message(
                Some(&user),
                StatusCode::BAD_REQUEST,
                "Refused",
                &format!("`{other}` is not answer, pause, resume or rerun."),
            );
        }
    };
    match done {
        Ok(shown) => Redirect::to(&format!("/ui/executions/{shown}")).into_response(),
        Err(e) => refusal(&user, e),
    }
}

pub(super) async fn cancel(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !user.csrf_ok(&form.csrf) {
        return forged(&user);
    }
    let Some(id) = parse_id(&id) else {
        return no_such_execution(&user);
    };
    match state
        .engine
        .cancel(id, user.caller.identity(), &user.caller.origin)
        .await
    {
        Ok(_) => Redirect::to(&format!("/ui/executions/{id}")).into_response(),
        Err(e) => refusal(&user, e),
    }
}

/// One execution as a list shows it.
fn execution_row(e: &switchboard_core::Execution) -> Value {
    context! {
        id => e.id.0,
        action => e.action.to_string(),
        status => e.status.as_str(),
        requester => e.requester.to_string(),
        origin => e.origin.to_string(),
        created_at => e.created_at.to_string(),
    }
}

/// The executions the user may view, newest first, a page at a time, with
/// the API's filters (empty fields of the form mean "any").
pub(super) async fn executions(
    State(state): State<AppState>,
    user: WebUser,
    Query(form): Query<BTreeMap<String, String>>,
) -> Response {
    let given = filled(form);
    let query = serde_urlencoded::to_string(&given)
        .ok()
        .and_then(|q| serde_urlencoded::from_str::<crate::routes::executions::ListQuery>(&q).ok());
    let filter = match query.map(crate::routes::executions::ListQuery::into_filter) {
        Some(Ok(f)) => f,
        Some(Err(e)) => {
            let text = api_error_text(e);
            return message(
                Some(&user),
                StatusCode::BAD_REQUEST,
                "Filters refused",
                &text,
            );
        }
        None => {
            return message(
                Some(&user),
                StatusCode::BAD_REQUEST,
                "Filters refused",
                "The filters are not ones this page knows.",
            );
        }
    };
    let limit = filter.limit as usize;
    let list = match state
        .engine
        .list_visible(user.caller.identity(), &user.caller.origin, filter)
        .await
    {
        Ok(l) => l,
        Err(e) => return refusal(&user, e),
    };
    let older = (list.len() == limit)
        .then(|| list.last().map(|e| e.id.0))
        .flatten()
        .map(|before| {
            let mut next = given.clone();
            next.insert("before".to_owned(), before.to_string());
            serde_urlencoded::to_string(&next).unwrap_or_default()
        });
    let rows: Vec<Value> = list.iter().map(execution_row).collect();
    page(
        StatusCode::OK,
        "executions.html",
        context! {
            user => user_view(&user),
            rows,
            older,
            statuses => switchboard_core::ExecutionStatus::ALL.map(switchboard_core::ExecutionStatus::as_str),
            f => given,
        },
    )
}

/// What the user may approve or reject now.
pub(super) async fn approvals(State(state): State<AppState>, user: WebUser) -> Response {
    let waiting = match state
        .engine
        .approval_queue(user.caller.identity(), &user.caller.origin)
        .await
    {
        Ok(w) => w,
        Err(e) => return refusal(&user, e),
    };
    let rows: Vec<Value> = waiting
        .iter()
        .map(|e| {
            let params = param_pairs(e);
            context! {
                id => e.id.0,
                action => e.action.to_string(),
                requester => e.requester.to_string(),
                origin => e.origin.to_string(),
                created_at => e.created_at.to_string(),
                approvers => e.approval_rule.as_ref().map(switchboard_core::catalog::ApprovalRule::approvers_text),
                expires_at => e.approval_expires_at.map(|t| t.to_string()),
                params,
            }
        })
        .collect();
    page(
        StatusCode::OK,
        "approvals.html",
        context! { user => user_view(&user), rows },
    )
}

#[derive(Deserialize)]
pub(super) struct AnswerForm {
    csrf: String,
    /// `approve` or `reject`.
    decision: String,
    #[serde(default)]
    reason: String,
}

/// Approves or rejects an execution awaiting approval.
pub(super) async fn answer(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<AnswerForm>,
) -> Response {
    if !user.csrf_ok(&form.csrf) {
        return forged(&user);
    }
    let Some(id) = parse_id(&id) else {
        return no_such_execution(&user);
    };
    let reason = Some(form.reason.trim().to_owned()).filter(|r| !r.is_empty());
    let (who, origin) = (user.caller.identity(), &user.caller.origin);
    let done = match form.decision.as_str() {
        "approve" => state
            .engine
            .approve(id, who, origin, reason)
            .await
            .map(|_| ()),
        "reject" => state
            .engine
            .reject(id, who, origin, reason)
            .await
            .map(|_| ()),
        other => {
            return message(
                Some(&user),
                StatusCode::BAD_REQUEST,
                "Refused",
                &format!("`{other}` is not approve or reject."),
            );
        }
    };
    match done {
        Ok(()) => Redirect::to(&format!("/ui/executions/{id}")).into_response(),
        Err(e) => refusal(&user, e),
    }
}
