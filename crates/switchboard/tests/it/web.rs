//! The web UI over HTTP, as a browser speaks it (a client that keeps
//! cookies and follows no redirect): signing in with a token, the session
//! cookie's attributes, CSRF on every form, the catalog filtered by what the
//! user may see, the run form and the server's errors beside their fields,
//! the execution page and its live output read with the session cookie, and
//! signing out.

use serde_json::json;

use crate::authz::TEAM;
use crate::harness::{Server, sample_catalog};

/// A browser-like client of `server`: keeps cookies, follows no redirect.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value of the hidden field `name` of the first form in `html`.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no hidden `{name}` in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

async fn get(b: &reqwest::Client, url: &str) -> (u16, String, reqwest::header::HeaderMap) {
    let r = b.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, r.text().await.unwrap(), headers)
}

async fn post(b: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> (u16, String, String) {
    let r = b.post(url).form(form).send().await.unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, r.text().await.unwrap(), location)
}

#[tokio::test]
async fn a_user_signs_in_runs_an_action_from_its_form_and_watches_it() {
    let server = Server::start_with_config(&sample_catalog(), TEAM);
    let alice = server.token_for("alice");
    let b = browser();
    let ui = |path: &str| format!("{}{path}", server.url);

    // Not signed in: every page sends to the sign-in page, and back after.
    let (status, _, headers) = get(&b, &ui("/ui/actions?q=disk")).await;
    assert_eq!(status, 303);
    assert_eq!(
        headers["location"],
        "/ui/sign-in?next=%2Fui%2Factions%3Fq%3Ddisk"
    );
    let (status, page, _) = get(&b, &ui("/ui/sign-in?next=%2Fui%2Factions%3Fq%3Ddisk")).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<label for=\"token\">API token</label>"),
        "{page}"
    );
    let csrf = hidden(&page, "csrf");

    // A wrong token, or a form without its CSRF value, signs nobody in.
    let (status, page, _) = post(
        &b,
        &ui("/ui/sign-in"),
        &[
            ("token", "sb_not_a_token"),
            ("csrf", &csrf),
            ("next", "/ui/actions"),
        ],
    )
    .await;
    assert_eq!(status, 401, "{page}");
    assert!(page.contains("role=\"alert\""), "{page}");
    let csrf = hidden(&page, "csrf");
    let (status, _, _) = post(
        &b,
        &ui("/ui/sign-in"),
        &[
            ("token", &alice),
            ("csrf", "forged"),
            ("next", "/ui/actions"),
        ],
    )
    .await;
    assert_eq!(status, 403);

    // The right token: a session cookie, HttpOnly and SameSite=Strict, and
    // back to the page asked for — never to another site.
    let r = b
        .post(ui("/ui/sign-in"))
        .form(&[
            ("token", alice.as_str()),
            ("csrf", &csrf),
            ("next", "https://evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/ui/actions");
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("sb_session="))
        .expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains(&alice),
        "the token is not readable in the cookie: {cookie}"
    );

    // The catalog: what alice may see, grouped, searchable.
    let (status, page, _) = get(&b, &ui("/ui/actions")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("href=\"/ui/actions/host.disk\""), "{page}");
    assert!(page.contains("<h2 id=\"g-db\">db</h2>"), "{page}");
    let (_, found, _) = get(&b, &ui("/ui/actions?q=disk")).await;
    assert!(
        found.contains("host.disk") && !found.contains("host.uptime"),
        "{found}"
    );

    // The action's page: its form from the parameters.
    let (status, page, _) = get(&b, &ui("/ui/actions/host.disk")).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("id=\"p-warn_above\" name=\"warn_above\" type=\"number\" value=\"90\""),
        "{page}"
    );
    assert!(
        page.contains("min=\"1\"") && page.contains("max=\"100\""),
        "{page}"
    );
    assert!(
        page.contains("<code>disk [{path}] [above {warn_above}]</code>"),
        "{page}"
    );
    let csrf = hidden(&page, "csrf");

    // A value the server refuses comes back beside its field, as typed.
    let (status, page, _) = post(
        &b,
        &ui("/ui/actions/host.disk"),
        &[("csrf", &csrf), ("path", "/"), ("warn_above", "500")],
    )
    .await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("id=\"e-warn_above\""), "{page}");
    assert!(page.contains("value=\"500\""), "{page}");
    // A form without this session's CSRF token is refused.
    let (status, page, _) = post(
        &b,
        &ui("/ui/actions/host.disk"),
        &[("csrf", "0000"), ("path", "/"), ("warn_above", "95")],
    )
    .await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("Form refused"), "{page}");

    // Run: to the execution's page, which follows it to its end.
    let (status, _, location) = post(
        &b,
        &ui("/ui/actions/host.disk"),
        &[("csrf", &csrf), ("path", "/"), ("warn_above", "100")],
    )
    .await;
    assert_eq!(status, 303);
    let id: i64 = location
        .strip_prefix("/ui/executions/")
        .unwrap_or_else(|| panic!("{location}"))
        .parse()
        .unwrap();
    let done = server.wait_finished(id).await;
    assert_eq!(done["requester"], "alice");
    assert_eq!(done["origin"], "web");
    let (status, page, _) = get(&b, &ui(&location)).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(&format!("#{id} host.disk")), "{page}");
    assert!(
        page.contains(&format!("status-{}", done["status"].as_str().unwrap())),
        "{page}"
    );
    assert!(page.contains("src=\"/ui/static/live.js\""), "{page}");

    // The live output is the API's, read with the session cookie; writes
    // to the API are not taken on the cookie.
    let r = b
        .get(ui(&format!("/api/v1/executions/{id}/output")))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let events = r.text().await.unwrap();
    assert!(events.contains("event: end"), "{events}");
    let r = b
        .post(ui("/api/v1/executions"))
        .json(&json!({"action": "demo.echo", "params": {"message": "hi"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // Signing out ends the session.
    let (_, page, _) = get(&b, &ui("/ui/actions")).await;
    let csrf = hidden(&page, "csrf");
    let (status, _, location) = post(&b, &ui("/ui/sign-out"), &[("csrf", &csrf)]).await;
    assert_eq!((status, location.as_str()), (303, "/ui/sign-in"));
    let (status, _, _) = get(&b, &ui("/ui/actions")).await;
    assert_eq!(status, 303);
}

#[tokio::test]
async fn pages_show_only_what_the_user_may_see() {
    let server = Server::start_with_config(&sample_catalog(), TEAM);
    let b = browser();
    let (_, page, _) = get(&b, &format!("{}/ui/sign-in", server.url)).await;
    let csrf = hidden(&page, "csrf");
    let bob = server.token_for("bob");
    let (status, _, _) = post(
        &b,
        &format!("{}/ui/sign-in", server.url),
        &[("token", &bob), ("csrf", &csrf), ("next", "/ui/actions")],
    )
    .await;
    assert_eq!(status, 303);
    // bob (dev) may see the catalog but not run the fleet's actions: the
    // form says why, from the policies, and nothing runs.
    let (_, page, _) = get(&b, &format!("{}/ui/actions/service.restart", server.url)).await;
    let csrf = hidden(&page, "csrf");
    let (status, page, _) = post(
        &b,
        &format!("{}/ui/actions/service.restart", server.url),
        &[("csrf", &csrf), ("service", "nginx"), ("dry_run", "true")],
    )
    .await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("id=\"form-error\""), "{page}");
    let (_, executions) = server.get("/executions").await;
    assert_eq!(executions["executions"], json!([]));
    // An execution that is not there, or an unknown action, is a page that says so.
    let (status, _, _) = get(&b, &format!("{}/ui/executions/999", server.url)).await;
    assert_eq!(status, 404);
    let (status, _, _) = get(&b, &format!("{}/ui/actions/no.such", server.url)).await;
    assert_eq!(status, 404);
}

/// Signs `token` in on a new browser-like client of `server`.
async fn signed_in(server: &Server, token: &str) -> reqwest::Client {
    let b = browser();
    let (_, page, _) = get(&b, &format!("{}/ui/sign-in", server.url)).await;
    let csrf = hidden(&page, "csrf");
    let (status, _, _) = post(
        &b,
        &format!("{}/ui/sign-in", server.url),
        &[("token", token), ("csrf", &csrf), ("next", "/ui/actions")],
    )
    .await;
    assert_eq!(status, 303);
    b
}

#[tokio::test]
async fn executions_are_listed_with_filters_and_pages_and_approvals_are_answered() {
    let server = Server::start_with_config(&sample_catalog(), TEAM);
    let alice_token = server.token_for("alice");
    let alice = crate::harness::Api::with_token(server.url.clone(), &alice_token);
    for message in ["one", "two", "three"] {
        let (status, e) = alice
            .post(
                "/executions",
                json!({"action": "demo.echo", "params": {"message": message}}),
            )
            .await;
        assert_eq!(status, 201, "{e}");
        server.wait_finished(e["id"].as_i64().unwrap()).await;
    }
    let (status, failover) = alice
        .post(
            "/executions",
            json!({"action": "db.failover", "params": {"host": "db-2"}}),
        )
        .await;
    assert_eq!(status, 201, "{failover}");
    let failover = failover["id"].as_i64().unwrap();

    // The list, newest first, filtered, a page at a time.
    let b = signed_in(&server, &alice_token).await;
    let url = |path: &str| format!("{}{path}", server.url);
    let (status, page, _) = get(&b, &url("/ui/executions")).await;
    assert_eq!(status, 200, "{page}");
    let rows = page.matches("<tr><td><a href=\"/ui/executions/").count();
    assert_eq!(rows, 4, "{page}");
    let (_, page, _) = get(
        &b,
        &url("/ui/executions?status=succeeded&action=&requester=alice"),
    )
    .await;
    assert_eq!(
        page.matches("status-succeeded\">succeeded").count(),
        3,
        "{page}"
    );
    assert!(!page.contains("db.failover</td>"), "{page}");
    let (_, first, _) = get(&b, &url("/ui/executions?status=succeeded&limit=2")).await;
    assert_eq!(first.matches("<tr><td>").count(), 2, "{first}");
    let older = first
        .split("href=\"/ui/executions?")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("an Older link in {first}"))
        .replace("&amp;", "&");
    assert!(
        older.contains("before=") && older.contains("status=succeeded"),
        "{older}"
    );
    let (_, second, _) = get(&b, &url(&format!("/ui/executions?{older}"))).await;
    assert_eq!(second.matches("<tr><td>").count(), 1, "{second}");
    let (status, refused, _) = get(&b, &url("/ui/executions?status=sleeping")).await;
    assert_eq!(status, 400);
    assert!(refused.contains("unknown status"), "{refused}");

    // alice may not answer her own request; carol sees it and approves it.
    let (_, queue, _) = get(&b, &url("/ui/approvals")).await;
    assert!(
        !queue.contains(&format!("#{failover} db.failover")),
        "{queue}"
    );
    let carol = signed_in(&server, &server.token_for("carol")).await;
    let (_, queue, _) = get(&carol, &url("/ui/approvals")).await;
    assert!(
        queue.contains(&format!("#{failover} db.failover")),
        "{queue}"
    );
    assert!(queue.contains("it needs 1 of group:sre-leads"), "{queue}");
    let csrf = hidden(&queue, "csrf");
    let (status, _, _) = post(
        &carol,
        &url(&format!("/ui/executions/{failover}/answer")),
        &[("csrf", "forged"), ("decision", "approve"), ("reason", "x")],
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, location) = post(
        &carol,
        &url(&format!("/ui/executions/{failover}/answer")),
        &[
            ("csrf", &csrf),
            ("decision", "approve"),
            ("reason", "standby is healthy"),
        ],
    )
    .await;
    assert_eq!(
        (status, location),
        (303, format!("/ui/executions/{failover}"))
    );
    let e = server.wait_finished(failover).await;
    assert_eq!(e["status"], "succeeded", "{e}");
    assert_eq!(e["approvals"][0]["approver"], "carol");
    assert_eq!(e["approvals"][0]["reason"], "standby is healthy");
    assert_eq!(e["approvals"][0]["origin"], "web");
    let (_, queue, _) = get(&carol, &url("/ui/approvals")).await;
    assert!(queue.contains("Nothing is waiting for you."), "{queue}");
}

#[tokio::test]
async fn alerts_are_shown_acknowledged_and_silenced_from_the_alerts_page() {
    let server = Server::start_with_config(&sample_catalog(), TEAM);
    let (status, body) = server
        .post(
            "/alerts",
            json!([{"labels": {"alertname": "DiskFull", "instance": "db-1", "severity": "critical"},
                    "annotations": {"summary": "/ is 97% full"}, "status": "firing"}]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, alerts) = server.get("/alerts").await;
    let fp = alerts[0]["fingerprint"].as_str().unwrap().to_owned();
    let url = |path: &str| format!("{}{path}", server.url);

    let alice = signed_in(&server, &server.token_for("alice")).await;
    let (status, page, _) = get(&alice, &url("/ui/alerts")).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("<strong>db-1</strong>"),
        "needs attention: {page}"
    );
    assert!(page.contains("DiskFull (critical)"), "{page}");
    assert!(page.contains("is 97% full") && page.contains(&fp), "{page}");
    let csrf = hidden(&page, "csrf");

    // bob (dev) may not acknowledge: the page says why.
    let bob = signed_in(&server, &server.token_for("bob")).await;
    let (_, bob_page, _) = get(&bob, &url("/ui/alerts")).await;
    let bob_csrf = hidden(&bob_page, "csrf");
    let (status, page, _) = post(
        &bob,
        &url("/ui/alerts/ack"),
        &[("csrf", &bob_csrf), ("target", &fp)],
    )
    .await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("id=\"form-error\""), "{page}");

    // alice acknowledges it.
    let (status, _, location) = post(
        &alice,
        &url("/ui/alerts/ack"),
        &[("csrf", &csrf), ("target", &fp)],
    )
    .await;
    assert_eq!((status, location.as_str()), (303, "/ui/alerts"));
    let (_, detail) = server.get(&format!("/alerts/{fp}")).await;
    assert_eq!(detail["ack"]["acked_by"], "alice", "{detail}");

    // A silence: a bad duration is refused with the reason; then made, listed, ended.
    let (status, page, _) = post(
        &alice,
        &url("/ui/silences"),
        &[
            ("csrf", &csrf),
            ("matchers", "alertname=\"DiskFull\""),
            ("duration", "soon"),
            ("comment", "disks"),
        ],
    )
    .await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("`soon` is not a duration"), "{page}");
    let (status, _, _) = post(
        &alice,
        &url("/ui/silences"),
        &[
            ("csrf", &csrf),
            ("matchers", "alertname=\"DiskFull\""),
            ("duration", "2h"),
            ("comment", "replacing disks"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let (_, silences) = server.get("/silences").await;
    assert_eq!(silences[0]["created_by"], "alice", "{silences}");
    assert_eq!(silences[0]["comment"], "replacing disks");
    let id = silences[0]["id"].as_str().unwrap().to_owned();
    let (_, page, _) = get(&alice, &url("/ui/alerts")).await;
    assert!(page.contains("replacing disks"), "{page}");
    let (status, _, _) = post(
        &alice,
        &url(&format!("/ui/silences/{id}/expire")),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(status, 303);
    let (_, silences) = server.get("/silences").await;
    assert_eq!(silences, json!([]));
}

#[tokio::test]
async fn the_console_page_answers_lines_as_chat_and_refuses_forged_ones() {
    let server = Server::start_with_config(&sample_catalog(), TEAM);
    let alice = signed_in(&server, &server.token_for("alice")).await;
    let url = format!("{}/ui/console", server.url);
    let (status, page, _) = get(&alice, &url).await;
    assert_eq!(status, 200);
    let csrf = page
        .split("data-csrf=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    let line = |token: &str| {
        alice
            .post(&url)
            .header("x-csrf-token", token)
            .json(&json!({"text": "whoami"}))
            .send()
    };
    let r = line("forged").await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = line(&csrf).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let events = r.text().await.unwrap();
    assert!(
        events.contains("event: post") && events.contains("You are alice"),
        "{events}"
    );
}

#[tokio::test]
async fn the_audit_log_verifies_and_who_can_names_principals_and_policies() {
    let server = Server::start_with_config(&sample_catalog(), TEAM);
    let url = |path: &str| format!("{}{path}", server.url);
    let admin = signed_in(&server, crate::harness::ADMIN_TOKEN).await;
    let alice = signed_in(&server, &server.token_for("alice")).await;

    let (status, page, _) = get(&admin, &url("/ui/audit")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("The chain verifies:"), "{page}");
    assert!(page.contains("<td>token.created</td>"), "{page}");
    let (_, page, _) = get(&admin, &url("/ui/audit?kind=token&actor=")).await;
    assert!(
        page.contains("token.created") && !page.contains("<td>catalog.loaded</td>"),
        "{page}"
    );
    // Not for everyone: the audit log is an admin's.
    let (status, page, _) = get(&alice, &url("/ui/audit")).await;
    assert_eq!(status, 403, "{page}");

    // Who can run db.failover? sre (alice, carol) through the CLI, API,
    // web and #ops, because of the sre policy; not bob.
    let (status, page, _) = get(
        &alice,
        &url("/ui/who-can?verb=run&action=db.failover&target=&door="),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Who can run db.failover?"), "{page}");
    assert!(
        page.contains("<strong>alice</strong>") && page.contains("<strong>carol</strong>"),
        "{page}"
    );
    assert!(!page.contains("<strong>bob</strong>"), "{page}");
    assert!(page.contains("sre-runs-fleet-actions"), "{page}");
    // A question that cannot be asked says why.
    let (_, page, _) = get(&alice, &url("/ui/who-can?verb=fly&action=db.failover")).await;
    assert!(page.contains("id=\"form-error\""), "{page}");
}

#[tokio::test]
async fn a_workflow_page_shows_its_steps_and_takes_the_answer_to_its_question() {
    let server = Server::start_with_config(&sample_catalog(), TEAM);
    let b = signed_in(&server, crate::harness::ADMIN_TOKEN).await;
    let ui = |path: &str| format!("{}{path}", server.url);
    let id = server
        .submit("demo.rollout", json!({"hosts": ["web-1"]}))
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let page = loop {
        let (status, page, _) = get(&b, &ui(&format!("/ui/executions/{id}"))).await;
        assert_eq!(status, 200);
        if page.contains("name=\"do\" value=\"answer\"") {
            break page;
        }
        assert!(std::time::Instant::now() < deadline, "never asked: {page}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(page.contains("<h2>Steps"), "{page}");
    assert!(
        page.contains("Answer to “Deployed to 1 hosts. Finish the rollout?”"),
        "{page}"
    );
    assert!(page.contains(">deploy</td>"), "{page}");
    // The answer, without its CSRF value, is refused; with it, it is taken.
    let (status, _, _) = post(
        &b,
        &ui(&format!("/ui/executions/{id}/workflow")),
        &[
            ("csrf", "forged"),
            ("do", "answer"),
            ("step", "confirm"),
            ("answer", "yes"),
        ],
    )
    .await;
    assert_eq!(status, 403);
    let csrf = hidden(&page, "csrf");
    let (status, _, location) = post(
        &b,
        &ui(&format!("/ui/executions/{id}/workflow")),
        &[
            ("csrf", &csrf),
            ("do", "answer"),
            ("step", "confirm"),
            ("answer", "yes"),
        ],
    )
    .await;
    assert_eq!((status, location), (303, format!("/ui/executions/{id}")));
    let done = server.wait_finished(id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let (_, page, _) = get(&b, &ui(&format!("/ui/executions/{id}"))).await;
    assert!(page.contains("admin answered yes"), "{page}");
    // A step's own page links back to its workflow.
    let (_, steps) = server.get(&format!("/executions?parent={id}")).await;
    let child = steps["executions"][0]["id"].as_i64().unwrap();
    let (_, page, _) = get(&b, &ui(&format!("/ui/executions/{child}"))).await;
    assert!(
        page.contains(&format!(
            "of workflow <a href=\"/ui/executions/{id}\">#{id}</a>"
        )),
        "{page}"
    );
}
