use proptest::prelude::*;

use super::state::{AttemptEnd, Move, RunState, StepStatus, Unit};
use super::*;
use crate::catalog::Catalog;
use crate::execution::ExecutionStatus;
use crate::ids::{ExecutionId, Timestamp};
use crate::policy::Identity;

const ECHO: &str = r#"name = "t.echo"
description = "Echo"
command = ["echo", "{{ msg }}"]
[params.msg]
type = "string"
required = true
[params.count]
type = "integer"
"#;

fn catalog(workflow: &str) -> Result<Catalog, crate::CatalogErrors> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("actions")).unwrap();
    std::fs::create_dir_all(dir.path().join("workflows")).unwrap();
    std::fs::write(dir.path().join("actions/echo.toml"), ECHO).unwrap();
    std::fs::write(dir.path().join("workflows/w.toml"), workflow).unwrap();
    let c = Catalog::load(dir.path());
    drop(dir);
    c
}

fn errors(workflow: &str) -> Vec<String> {
    match catalog(workflow) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

const ROLLING: &str = r#"name = "t.rolling"
description = "Drain, check, restart, verify, undrain"
timeout = "1h"
[params.host]
type = "string"
required = true
[params.hosts]
type = "list"

[[steps]]
name = "drain"
action = "t.echo"
params = { msg = "drain {{ input.host }}" }
publish = { drained = "{{ steps.drain.result }}" }

[[steps]]
name = "confirm"
inquiry = { prompt = "Restart {{ input.host }}?", approvers = ["group:sre"], timeout = "30m", on_timeout = "undrain" }

[[steps]]
name = "restart"
action = "t.echo"
params = { msg = "restart", count = 3 }
retry = { count = 2, delay = "1s", backoff = 2.0 }
timeout = "5m"
on_failure = "undrain"

[[steps]]
name = "each"
action = "t.echo"
for_each = "input.hosts"
concurrency = 2
params = { msg = "{{ item }}" }
when = "input.hosts | length > 0"

[[steps]]
name = "undrain"
action = "t.echo"
params = { msg = "undrain" }

[output]
host = "{{ input.host }}"
"#;

#[test]
fn a_workflow_file_is_an_action_with_steps_in_order() {
    let c = catalog(ROLLING).unwrap_or_else(|e| panic!("{e}"));
    let a = c.action("t.rolling").unwrap();
    assert_eq!(a.runner, crate::Runner::Workflow);
    assert_eq!(a.timeout, Duration::from_secs(3600));
    let w = a.workflow.as_ref().unwrap();
    let needs: Vec<(&str, Vec<String>)> = w
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.needs.clone()))
        .collect();
    assert_eq!(
        needs,
        [
            ("drain", vec![]),
            ("confirm", vec!["drain".to_owned()]),
            ("restart", vec!["confirm".to_owned()]),
            ("each", vec!["restart".to_owned()]),
            // A failure branch runs only when called.
            ("undrain", vec![]),
        ]
    );
    assert_eq!(w.branch_steps(), BTreeSet::from(["undrain"]));
    let restart = w.step("restart").unwrap();
    assert_eq!(restart.retry.count, 2);
    assert_eq!(restart.retry.delay_before(2), Duration::from_secs(1));
    assert_eq!(restart.retry.delay_before(3), Duration::from_secs(2));
    match &w.step("confirm").unwrap().kind {
        StepKind::Inquiry(q) => {
            assert_eq!(q.answer, AnswerKind::YesNo);
            assert_eq!(q.timeout, Duration::from_secs(1800));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn catalog_check_reports_every_workflow_problem_with_file_and_line() {
    let text = r#"name = "t.bad"
description = "Broken in many ways"
[params.host]
type = "string"

[[steps]]
name = "a"
action = "t.ecko"

[[steps]]
name = "b"
action = "t.echo"
params = { msg = "{{ steps.zz.result }}", count = "three", colour = "red" }
needs = ["c"]

[[steps]]
name = "c"
action = "t.echo"
params = { msg = "{{ input.hots }} {{ item }}" }
needs = ["b"]
when = "vars.nope"
on_failure = "d"

[[steps]]
name = "d"
action = "t.echo"
needs = ["a"]
"#;
    let found = errors(text);
    let expect = [
        "workflows/w.toml:6: steps[0].action: unknown action `t.ecko` (did you mean `t.echo`?)",
        "workflows/w.toml:10: steps[1].params.msg: `steps.zz`: no step `zz` in this workflow",
        "workflows/w.toml:10: steps[1].params.count: does not fit `count` of `t.echo`",
        "workflows/w.toml:10: steps[1].params.colour: `colour` is not a parameter of `t.echo`",
        "workflows/w.toml:16: steps[2].params.msg: `input.hots`: `hots` is not a parameter of this workflow",
        "workflows/w.toml:16: steps[2].params.msg: `item` exists only in a step with `for_each`",
        "workflows/w.toml:16: steps[2].when: `vars.nope`: no step publishes `nope`",
        "workflows/w.toml:24: steps[3].needs: step `d` runs when `c` fails or times out, so it cannot also wait for other steps",
        "workflows/w.toml:24: steps[3].params.msg: `t.echo` needs `msg` (required, no default)",
        "steps: the steps wait for each other in a cycle: b → c → b",
    ];
    for e in expect {
        assert!(
            found.iter().any(|f| f.contains(e)),
            "missing `{e}` in:\n{}",
            found.join("\n")
        );
    }
}

#[test]
fn a_parameter_fed_from_an_input_of_another_type_is_a_type_error() {
    let text = r#"name = "t.types"
description = "Types"
[params.n]
type = "boolean"
[[steps]]
name = "a"
action = "t.echo"
params = { msg = "x", count = "{{ input.n }}" }
"#;
    let found = errors(text);
    assert!(
        found.iter().any(|f| f.contains(
            "steps[0].params.count: `input.n` is a `boolean`, but `count` of `t.echo` takes a `integer`"
        )),
        "{found:?}"
    );
}

#[test]
fn a_workflow_file_refuses_what_only_actions_have_and_unknown_keys() {
    let text = r#"name = "t.w"
description = "x"
runner = "local"
command = ["true"]
[[steps]]
name = "a"
action = "t.echo"
params = { msg = "x" }
retries = 3
"#;
    let found = errors(text);
    assert!(
        found
            .iter()
            .any(|f| f.contains("runner: a file in `workflows/` is a workflow")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|f| f.contains("steps[0].retries: unknown key")),
        "{found:?}"
    );
}

fn rolling() -> Workflow {
    catalog(ROLLING)
        .unwrap()
        .action("t.rolling")
        .unwrap()
        .workflow
        .as_deref()
        .unwrap()
        .clone()
}

fn fresh(w: &Workflow) -> RunState {
    let who = Identity {
        principal: crate::ids::Principal::new("alice").unwrap(),
        kind: crate::directory::PrincipalKind::User,
        groups: BTreeSet::new(),
    };
    let input = serde_json::json!({"host": "web-1", "hosts": ["a", "b", "c"]});
    RunState::new(
        w,
        who,
        input.as_object().unwrap().clone(),
        Timestamp(10_000_000),
    )
}

fn end(status: ExecutionStatus) -> AttemptEnd {
    AttemptEnd {
        status,
        result: Some(serde_json::json!({"ok": status == ExecutionStatus::Succeeded})),
        exit_code: Some(i32::from(status != ExecutionStatus::Succeeded)),
        error: None,
        final_: false,
    }
}

fn start_unit(st: &mut RunState, step: &str, item: serde_json::Value, id: i64) {
    let s = st.step_mut(step).unwrap();
    s.status = StepStatus::Running;
    let mut u = Unit::new(item);
    u.status = StepStatus::Running;
    u.attempt = 1;
    u.executions.push(ExecutionId(id));
    s.units.push(u);
}

#[test]
fn steps_start_in_order_and_a_failure_calls_its_branch_and_fails_the_run() {
    let w = rolling();
    let mut st = fresh(&w);
    let now = Timestamp(1_000_000);
    assert_eq!(st.moves(&w), [Move::Start("drain".into())]);
    start_unit(&mut st, "drain", serde_json::Value::Null, 1);
    assert_eq!(st.moves(&w), [], "nothing else starts while drain runs");
    assert_eq!(
        st.end_attempt(&w, "drain", 0, end(ExecutionStatus::Succeeded), now),
        Some((StepStatus::Succeeded, None))
    );
    assert_eq!(st.moves(&w), [Move::Start("confirm".into())]);
    // The inquiry is answered yes.
    st.end_step(&w, "confirm", StepStatus::Succeeded, None, now);
    assert_eq!(st.moves(&w), [Move::Start("restart".into())]);
    start_unit(&mut st, "restart", serde_json::Value::Null, 2);
    // Two retries: the first two failures wait, 1 s then 2 s.
    assert_eq!(
        st.end_attempt(&w, "restart", 0, end(ExecutionStatus::Failed), now),
        None
    );
    let u = &st.step("restart").unwrap().units[0];
    assert_eq!(
        (u.status, u.due_at),
        (StepStatus::Pending, Some(now.after(Duration::from_secs(1))))
    );
    for (attempt, wait) in [(2, 2), (3, 0)] {
        let u = &mut st.step_mut("restart").unwrap().units[0];
        u.status = StepStatus::Running;
        u.attempt = attempt;
        let ended = st.end_attempt(&w, "restart", 0, end(ExecutionStatus::Failed), now);
        if wait > 0 {
            assert_eq!(ended, None);
            assert_eq!(
                st.step("restart").unwrap().units[0].due_at,
                Some(now.after(Duration::from_secs(wait)))
            );
        } else {
            assert_eq!(
                ended,
                Some((StepStatus::Failed, Some("exit code 1".into())))
            );
        }
    }
    assert!(st.step("undrain").unwrap().triggered);
    let mut moves = st.moves(&w);
    moves.sort_by_key(|m| format!("{m:?}"));
    assert_eq!(
        moves,
        [
            Move::Start("undrain".into()),
            Move::Unreach("each".into(), "`restart` failed".into()),
        ]
    );
    st.step_mut("each").unwrap().status = StepStatus::Unreached;
    start_unit(&mut st, "undrain", serde_json::Value::Null, 5);
    assert_eq!(st.outcome(&w), None, "still running");
    st.end_attempt(&w, "undrain", 0, end(ExecutionStatus::Succeeded), now);
    assert_eq!(
        st.outcome(&w),
        Some((
            ExecutionStatus::Failed,
            Some("step `restart` failed: exit code 1".into())
        ))
    );
}

#[test]
fn an_untriggered_branch_is_not_reached_and_the_run_succeeds() {
    let w = rolling();
    let mut st = fresh(&w);
    let now = Timestamp(1);
    for name in ["drain", "confirm", "restart"] {
        st.end_step(&w, name, StepStatus::Succeeded, None, now);
    }
    st.end_step(
        &w,
        "each",
        StepStatus::Skipped,
        Some("when was false".into()),
        now,
    );
    assert_eq!(
        st.moves(&w),
        [Move::Unreach(
            "undrain".into(),
            "its failure branch was not needed".into()
        )]
    );
    st.end_step(&w, "undrain", StepStatus::Unreached, None, now);
    assert_eq!(st.outcome(&w), Some((ExecutionStatus::Succeeded, None)));
}

#[test]
fn for_each_ends_when_every_item_ended_and_names_a_failed_item() {
    let w = rolling();
    let mut st = fresh(&w);
    let now = Timestamp(1);
    for (i, item) in ["a", "b", "c"].iter().enumerate() {
        start_unit(&mut st, "each", serde_json::json!(item), 10 + i as i64);
    }
    assert_eq!(
        st.end_attempt(&w, "each", 0, end(ExecutionStatus::Succeeded), now),
        None
    );
    assert_eq!(
        st.end_attempt(&w, "each", 2, end(ExecutionStatus::Failed), now),
        None
    );
    assert_eq!(
        st.end_attempt(&w, "each", 1, end(ExecutionStatus::Succeeded), now),
        Some((
            StepStatus::Failed,
            Some("1 of 3 items failed; item \"c\": exit code 1".into())
        ))
    );
    let ctx = st.context(&w, ExecutionId(7));
    assert_eq!(
        ctx["steps"]["each"]["result"][0],
        serde_json::json!({"ok": true})
    );
    assert_eq!(ctx["workflow"]["id"], 7);
}

#[test]
fn an_inquiry_timeout_takes_its_timeout_path() {
    let w = rolling();
    let mut st = fresh(&w);
    st.end_step(&w, "drain", StepStatus::Succeeded, None, Timestamp(1));
    st.end_step(
        &w,
        "confirm",
        StepStatus::TimedOut,
        Some("no answer".into()),
        Timestamp(2),
    );
    assert!(st.step("undrain").unwrap().triggered);
}

#[test]
fn a_restart_from_a_step_keeps_what_came_before_it() {
    let w = rolling();
    let mut st = fresh(&w);
    let now = Timestamp(1);
    st.end_step(&w, "drain", StepStatus::Succeeded, None, now);
    st.vars.insert("drained".into(), serde_json::json!(true));
    st.end_step(&w, "confirm", StepStatus::Succeeded, None, now);
    st.end_step(&w, "restart", StepStatus::Failed, Some("boom".into()), now);
    let again = st.restart_from(&w, "restart", Timestamp(99));
    assert_eq!(again.step("drain").unwrap().status, StepStatus::Succeeded);
    assert_eq!(again.step("confirm").unwrap().status, StepStatus::Succeeded);
    assert_eq!(again.step("restart").unwrap().status, StepStatus::Pending);
    assert_eq!(again.vars["drained"], true);
    assert_eq!(again.moves(&w), [Move::Start("restart".into())]);
}

#[test]
fn expressions_keep_types_and_name_what_is_missing() {
    let ctx = serde_json::json!({"input": {"hosts": ["a", "b"], "n": 2}, "steps": {}});
    assert_eq!(
        expr::render_text("{{ input.hosts }}", &ctx).unwrap(),
        serde_json::json!(["a", "b"])
    );
    assert_eq!(expr::render_text("n={{ input.n }}", &ctx).unwrap(), "n=2");
    assert_eq!(expr::render_text("plain", &ctx).unwrap(), "plain");
    assert!(expr::holds("input.n > 1", &ctx).unwrap());
    assert!(!expr::holds("{{ input.hosts | length > 5 }}", &ctx).unwrap());
    assert_eq!(expr::list("input.hosts", &ctx).unwrap().len(), 2);
    assert!(
        expr::list("input.n", &ctx)
            .unwrap_err()
            .contains("gave a number")
    );
    let missing = expr::render_text("{{ input.nope }}", &ctx).unwrap_err();
    assert!(missing.contains("undefined"), "{missing}");
}

#[test]
fn answers_are_read_by_their_kind() {
    assert_eq!(AnswerKind::YesNo.read(" Yes ").unwrap(), true);
    assert_eq!(AnswerKind::YesNo.read("no").unwrap(), false);
    assert!(AnswerKind::YesNo.read("maybe").is_err());
    let c = AnswerKind::Choice(vec!["blue".into(), "green".into()]);
    assert_eq!(c.read("GREEN").unwrap(), "green");
    assert!(c.read("red").unwrap_err().contains("blue, green"));
    assert!(AnswerKind::Text.read("  ").is_err());
}

proptest! {
    /// Whatever text a workflow file holds, loading it reports errors and
    /// never panics.
    #[test]
    fn any_step_table_loads_or_fails_cleanly(name in "[a-z_-]{0,8}", action in "[a-z.]{0,10}", when in ".{0,20}", each in ".{0,20}") {
        let text = format!(
            "name = \"t.p\"\ndescription = \"p\"\n[[steps]]\nname = {name:?}\naction = {action:?}\nwhen = {when:?}\nfor_each = {each:?}\nparams = {{ msg = {when:?} }}\n"
        );
        let _ = catalog(&text);
    }

    /// Rendering any template against a context never panics.
    #[test]
    fn any_template_renders_or_fails_cleanly(t in ".{0,40}") {
        let ctx = serde_json::json!({"input": {"a": 1}});
        let _ = expr::render_text(&t, &ctx);
        let _ = expr::holds(&t, &ctx);
    }
}

#[test]
fn a_stored_state_fits_a_workflow_changed_since() {
    let w = rolling();
    let mut st = fresh(&w);
    st.end_step(&w, "drain", StepStatus::Succeeded, None, Timestamp(1));
    let mut changed = w.clone();
    changed.steps.retain(|s| s.name != "each");
    let mut extra = changed.steps[0].clone();
    extra.name = "notify".into();
    extra.needs = vec!["drain".into()];
    changed.steps.push(extra);
    st.fit(&changed);
    assert!(st.step("each").is_none());
    assert_eq!(st.step("notify").unwrap().status, StepStatus::Pending);
    assert_eq!(st.step("drain").unwrap().status, StepStatus::Succeeded);
    // Nothing it reads is missing any more.
    let _ = st.context(&changed, ExecutionId(1));
    assert_eq!(st.outcome(&changed), None);
}
