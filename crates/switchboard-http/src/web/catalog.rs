//! The catalog pages: the actions the user may see (grouped, searchable),
//! and an action with its run form generated from its parameters, whose
//! submission is validated by the engine (errors beside their fields).

use super::*;

#[derive(Deserialize)]
pub(super) struct SearchQuery {
    q: Option<String>,
}

/// The catalog the user may see, grouped by the first part of the names,
/// narrowed by a search of names, descriptions and tags.
pub(super) async fn actions(
    State(state): State<AppState>,
    user: WebUser,
    Query(search): Query<SearchQuery>,
) -> Response {
    let q = search.q.unwrap_or_default().trim().to_lowercase();
    let mut groups: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let visible = state
        .engine
        .visible_actions(user.caller.identity(), &user.caller.origin);
    let total = visible.len();
    for a in visible {
        let name = a.name.to_string();
        let hay = format!("{name} {} {}", a.description, a.tags.join(" ")).to_lowercase();
        if !q.is_empty() && !q.split_whitespace().all(|w| hay.contains(w)) {
            continue;
        }
        let group = name.split('.').next().unwrap_or(&name).to_owned();
        groups.entry(group).or_default().push(context! {
            name,
            description => a.description.clone(),
            tags => a.tags.clone(),
            approval => a.approval.is_some(),
        });
    }
    let shown: usize = groups.values().map(Vec::len).sum();
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(name, actions)| context! { name, actions })
        .collect();
    page(
        StatusCode::OK,
        "actions.html",
        context! { user => user_view(&user), groups, q, shown, total },
    )
}

/// A bound as a form attribute: `1`, not `1.0`.
fn bound(b: f64) -> String {
    if b.fract() == 0.0 && b.abs() < 1e15 {
        format!("{b:.0}")
    } else {
        b.to_string()
    }
}

/// One parameter as the run form shows it. (The parameter's pattern is not
/// given to the browser: its regular expressions are not the server's, and
/// the server's message says what is wrong.)
fn field(spec: &ParamSpec, value: Option<&str>, error: Option<&String>) -> Value {
    let kind = match spec.ty {
        ParamType::Integer | ParamType::Number => "number",
        ParamType::Boolean => "checkbox",
        ParamType::Enum => "select",
        ParamType::Secret => "password",
        ParamType::List => "textarea",
        ParamType::String | ParamType::Duration | ParamType::Host => "text",
    };
    let default = spec.default.as_ref().map(|d| match d.to_json() {
        serde_json::Value::String(s) => s,
        serde_json::Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    });
    // Secrets are never written back into a page.
    let value = if spec.ty == ParamType::Secret {
        String::new()
    } else {
        value
            .map(str::to_owned)
            .or(default.clone())
            .unwrap_or_default()
    };
    context! {
        name => spec.name.clone(),
        kind,
        ty => spec.ty.as_str(),
        required => spec.required,
        description => spec.description.clone(),
        choices => spec.choices.clone(),
        min => spec.min.map(bound),
        max => spec.max.map(bound),
        step => if spec.ty == ParamType::Integer { "1" } else { "any" },
        checked => value == "true",
        value,
        default,
        error => error.cloned(),
    }
}

fn action_page(
    user: &WebUser,
    action: &Action,
    values: &BTreeMap<String, String>,
    errors: &BTreeMap<String, String>,
    form_error: Option<String>,
    status: StatusCode,
) -> Response {
    let fields: Vec<Value> = action
        .params
        .iter()
        .map(|p| {
            field(
                p,
                values.get(&p.name).map(String::as_str),
                errors.get(&p.name),
            )
        })
        .collect();
    let aliases: Vec<String> = action
        .aliases
        .iter()
        .map(|a| a.format.text.clone())
        .collect();
    page(
        status,
        "action.html",
        context! {
            user => user_view(user),
            name => action.name.to_string(),
            description => action.description.clone(),
            tags => action.tags.clone(),
            runner => action.runner.as_str(),
            approval => action.approval.as_ref().map(switchboard_core::catalog::ApprovalRule::approvers_text),
            aliases,
            fields,
            form_error,
        },
    )
}

pub(super) async fn action(
    State(state): State<AppState>,
    user: WebUser,
    Path(name): Path<String>,
    Query(prefill): Query<BTreeMap<String, String>>,
) -> Response {
    match state
        .engine
        .visible_action(user.caller.identity(), &user.caller.origin, &name)
        .await
    {
        Ok(a) => action_page(&user, &a, &prefill, &BTreeMap::new(), None, StatusCode::OK),
        Err(e) => refusal(&user, e),
    }
}

/// The form's text values as parameters of `action`'s types: numbers as
/// numbers, a checkbox as a boolean, a list one item a line; empty fields
/// left out (so defaults apply and missing required ones are named).
fn params_of(action: &Action, form: &BTreeMap<String, String>) -> switchboard_core::RawParams {
    let mut params = switchboard_core::RawParams::new();
    for spec in &action.params {
        let text = form.get(&spec.name).map(|v| v.trim()).unwrap_or("");
        let value = match spec.ty {
            ParamType::Boolean => serde_json::Value::Bool(text == "true"),
            _ if text.is_empty() => continue,
            ParamType::Integer => text
                .parse::<i64>()
                .map_or_else(|_| text.into(), serde_json::Value::from),
            ParamType::Number => text
                .parse::<f64>()
                .map_or_else(|_| text.into(), serde_json::Value::from),
            ParamType::List => text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(serde_json::Value::from)
                .collect(),
            _ => text.into(),
        };
        params.insert(spec.name.clone(), value);
    }
    params
}

pub(super) async fn run(
    State(state): State<AppState>,
    user: WebUser,
    Path(name): Path<String>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !form.get("csrf").is_some_and(|c| user.csrf_ok(c)) {
        return forged(&user);
    }
    let action = match state
        .engine
        .visible_action(user.caller.identity(), &user.caller.origin, &name)
        .await
    {
        Ok(a) => a,
        Err(e) => return refusal(&user, e),
    };
    let request = SubmitRequest {
        action: name,
        params: params_of(&action, &form),
        requester: user.caller.identity().clone(),
        origin: user.caller.origin.clone(),
    };
    match state.engine.submit(request).await {
        Ok(e) => Redirect::to(&format!("/ui/executions/{}", e.id)).into_response(),
        Err(EngineError::InvalidParams(problems)) => {
            let errors: BTreeMap<String, String> =
                problems.into_iter().map(|p| (p.param, p.message)).collect();
            action_page(
                &user,
                &action,
                &form,
                &errors,
                Some("Some values are not right; see the fields marked below.".to_owned()),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        Err(e @ (EngineError::Forbidden(_) | EngineError::Invalid(_))) => action_page(
            &user,
            &action,
            &form,
            &BTreeMap::new(),
            Some(e.to_string()),
            StatusCode::FORBIDDEN,
        ),
        Err(e) => refusal(&user, e),
    }
}
