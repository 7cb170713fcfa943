//! The auditor's pages: the audit log with its chain's verification (admins),
//! and "who can do what".

use super::*;

#[derive(Deserialize)]
pub(super) struct AuditForm {
    #[serde(default)]
    after: Option<i64>,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    actor: Option<String>,
}

/// The audit log in chain order, a page at a time (`after` the last record
/// shown), from a time on, narrowed to a kind of record or an actor; with
/// the chain's verification. Admins only, as in the API.
pub(super) async fn audit(
    State(state): State<AppState>,
    user: WebUser,
    Query(q): Query<AuditForm>,
) -> Response {
    const PAGE: u32 = 200;
    if let Err(e) = user
        .caller
        .require(
            &state.engine,
            switchboard_core::token::Scope::Admin,
            "read the audit log",
        )
        .await
    {
        return message(Some(&user), e.status, "Not allowed", &e.message);
    }
    let blank = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let (since, kind, actor) = (blank(q.since), blank(q.kind), blank(q.actor));
    let since_at = match since
        .as_deref()
        .map(switchboard_core::Timestamp::parse_rfc3339)
    {
        Some(None) => {
            return message(
                Some(&user),
                StatusCode::BAD_REQUEST,
                "Filters refused",
                "`since` is not an RFC 3339 time such as 2026-11-26T00:00:00Z.",
            );
        }
        Some(at) => at,
        None => None,
    };
    let verified = match state.engine.verify_audit().await {
        Ok(v) => v,
        Err(e) => return refusal(&user, e),
    };
    let records = match state
        .engine
        .audit_records(q.after.unwrap_or(0), since_at, PAGE)
        .await
    {
        Ok(r) => r,
        Err(e) => return refusal(&user, e),
    };
    let next = (records.len() == PAGE as usize)
        .then(|| records.last().map(|r| r.seq))
        .flatten()
        .map(|after| {
            let mut params = vec![("after", after.to_string())];
            for (k, v) in [("since", &since), ("kind", &kind), ("actor", &actor)] {
                if let Some(v) = v {
                    params.push((k, v.clone()));
                }
            }
            serde_urlencoded::to_string(params).unwrap_or_default()
        });
    let rows: Vec<Value> = records
        .iter()
        .filter(|r| kind.as_deref().is_none_or(|k| r.event.kind.starts_with(k)))
        .filter(|r| actor.as_deref().is_none_or(|a| r.event.actor.as_str() == a))
        .map(|r| {
            context! {
                seq => r.seq,
                ts => r.event.ts.to_string(),
                actor => r.event.actor.to_string(),
                origin => r.event.origin.to_string(),
                kind => r.event.kind.clone(),
                subject => r.event.subject.clone(),
                outcome => r.event.outcome.clone(),
                detail => r.event.detail.to_string(),
            }
        })
        .collect();
    page(
        StatusCode::OK,
        "audit.html",
        context! {
            user => user_view(&user),
            intact => verified.broken.is_none(),
            verified_records => verified.records,
            head => verified.head,
            broken_at => verified.broken.as_ref().map(|b| b.seq),
            broken_reason => verified.broken.as_ref().map(|b| b.reason.clone()),
            rows,
            next,
            f => context! { since, kind, actor },
        },
    )
}

/// "Who can VERB ACTION [on TARGET] [through DOOR]?": every principal and
/// group that may, with the doors and the policies that let them.
pub(super) async fn who_can(
    State(state): State<AppState>,
    user: WebUser,
    Query(form): Query<BTreeMap<String, String>>,
) -> Response {
    let mut given = filled(form);
    given.remove("principal");
    let actions: Vec<String> = state
        .engine
        .visible_actions(user.caller.identity(), &user.caller.origin)
        .iter()
        .map(|a| a.name.to_string())
        .collect();
    let mut answer = Value::from(());
    let mut error = Value::from(());
    if given.contains_key("verb") {
        let query = serde_urlencoded::to_string(&given)
            .ok()
            .and_then(|q| serde_urlencoded::from_str::<crate::routes::authz::AuthzQuery>(&q).ok());
        match query {
            None => error = Value::from("The question is not one this page knows."),
            Some(q) => match crate::routes::authz::who_can_answer(&state, &user.caller, q).await {
                Ok(w) => {
                    let refs = |p: &[switchboard_core::policy::PolicyRef]| -> Vec<String> {
                        p.iter().map(ToString::to_string).collect()
                    };
                    let principals: Vec<Value> = w
                        .principals
                        .iter()
                        .map(|g| {
                            context! {
                                name => g.principal.to_string(),
                                kind => format!("{:?}", g.kind).to_lowercase(),
                                doors => g.doors.join(", "),
                                policies => refs(&g.policies),
                            }
                        })
                        .collect();
                    let groups: Vec<Value> = w
                        .groups
                        .iter()
                        .chain(w.everyone.iter())
                        .map(|g| {
                            context! {
                                name => g.group.clone(),
                                doors => g.doors.join(", "),
                                policies => refs(&g.policies),
                            }
                        })
                        .collect();
                    answer = context! {
                        question => format!(
                            "Who can {} {}{}?",
                            w.verb,
                            w.action.clone().unwrap_or_else(|| "switchboard".to_owned()),
                            w.target.as_ref().map(|t| format!(" on {t}")).unwrap_or_default()
                        ),
                        principals,
                        groups,
                        everyone => w.everyone.is_some(),
                        examined => w.examined,
                        doors => w.doors.join(", "),
                    };
                }
                Err(e) => {
                    error = Value::from(api_error_text(e));
                }
            },
        }
    }
    page(
        StatusCode::OK,
        "who_can.html",
        context! {
            user => user_view(&user),
            verbs => ["run", "view", "approve", "cancel", "silence", "admin"],
            actions,
            f => given,
            answer,
            error,
        },
    )
}
