//! The web UI in a real browser: Debian's Chromium, headless, driven
//! through chromedriver (WebDriver, with the `fantoccini` client) against
//! the real `switchboard` binary — signing in, finding an action, running it
//! from its form and watching its output arrive live, a refused value shown
//! beside its field, the executions listed, an approval given by a second
//! person, a silence made from the alerts page, and the chat console. Screenshots of the pages go to
//! `target/web-screenshots/` (named in the README) for a person to look at.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::authz::TEAM;
use crate::harness::{Server, sample_catalog};

/// How long any one thing may take to show in the browser.
const WITHIN: Duration = Duration::from_secs(30);

/// A chromedriver on a free loopback port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
    /// Chromium's profile folder.
    profile: tempfile::TempDir,
}

impl Driver {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver) is installed by scripts/test");
        let deadline = Instant::now() + WITHIN;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            profile: tempfile::tempdir().unwrap(),
        }
    }

    /// A new headless Chromium window.
    async fn browser(&self) -> Client {
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", self.profile.path().display()),
                ],
            },
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!()
        };
        ClientBuilder::rustls()
            .unwrap()
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the screenshots go: `target/web-screenshots/` of the workspace.
fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/web-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(b: &Client, name: &str) {
    let png = b.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

/// Waits until `probe` answers, failing with the page's text after [`WITHIN`].
async fn until<T>(b: &Client, what: &str, mut probe: impl AsyncFnMut(&Client) -> Option<T>) -> T {
    let deadline = Instant::now() + WITHIN;
    loop {
        if let Some(found) = probe(b).await {
            return found;
        }
        if Instant::now() > deadline {
            let body = match b.find(Locator::Css("body")).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(e) => e.to_string(),
            };
            panic!("{what}: not within {WITHIN:?}; the page says:\n{body}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Clicks the element `css` finds.
async fn click(b: &Client, css: &str) {
    b.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no `{css}`: {e}"))
        .click()
        .await
        .unwrap();
}

/// Replaces what the field `id` holds with `text`, as typed.
async fn type_into(b: &Client, id: &str, text: &str) {
    let field = b
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("no field `{id}`: {e}"));
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn path_of(b: &Client) -> String {
    b.current_url().await.unwrap().path().to_owned()
}

async fn text_of(b: &Client, css: &str) -> Option<String> {
    b.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_real_browser_a_user_signs_in_runs_an_action_and_watches_its_output_arrive() {
    let server = Server::start_with_config(&sample_catalog(), TEAM);
    let alice = server.token_for("alice");
    let driver = Driver::start();
    let b = driver.browser().await;
    let ui = |path: &str| format!("{}{path}", server.url);

    // Sent to sign in, and back to the catalog after.
    b.goto(&ui("/ui/actions")).await.unwrap();
    assert_eq!(path_of(&b).await, "/ui/sign-in");
    screenshot(&b, "sign-in").await;
    type_into(&b, "token", &alice).await;
    click(&b, "form button[type=submit]").await;
    until(&b, "the catalog after signing in", async |b| {
        (path_of(b).await == "/ui/actions").then_some(())
    })
    .await;
    let who = text_of(&b, ".who").await.unwrap_or_default();
    assert_eq!(who, "alice");
    screenshot(&b, "catalog").await;

    // Searching narrows the catalog.
    type_into(&b, "q", "slow").await;
    click(&b, "form.search button").await;
    // Looked for on the new page only, once the browser is there.
    until(&b, "the search's page", async |b| {
        let url = b.current_url().await.ok()?;
        (url.query() == Some("q=slow")).then_some(())
    })
    .await;
    let link = until(&b, "demo.slow in the search result", async |b| {
        b.find(Locator::Css("a[href='/ui/actions/demo.slow']"))
            .await
            .ok()
    })
    .await;
    assert!(
        b.find(Locator::Css("a[href='/ui/actions/host.disk']"))
            .await
            .is_err(),
        "the search leaves out what does not match"
    );
    link.click().await.unwrap();

    // Its form, from the parameters: four steps, then run.
    until(&b, "the action's page", async |b| {
        (path_of(b).await == "/ui/actions/demo.slow").then_some(())
    })
    .await;
    until(&b, "the run form", async |b| {
        b.find(Locator::Id("p-steps")).await.ok()
    })
    .await;
    screenshot(&b, "action").await;
    type_into(&b, "p-steps", "4").await;
    click(&b, "button.primary").await;
    let page = until(&b, "the execution page", async |b| {
        let path = path_of(b).await;
        path.starts_with("/ui/executions/").then_some(path)
    })
    .await;
    let id: i64 = page.rsplit('/').next().unwrap().parse().unwrap();

    // The output arrives while the page stays: a mark set on the page is
    // still there when a later step shows, so no reload brought it.
    b.execute("window.switchboardTestMark = 'still here';", vec![])
        .await
        .unwrap();
    until(&b, "step 3 of 4 arriving live", async |b| {
        text_of(b, "#output")
            .await
            .filter(|t| t.contains("step 3 of 4"))
    })
    .await;
    let mark = b
        .execute("return window.switchboardTestMark || null;", vec![])
        .await
        .unwrap();
    assert_eq!(
        mark,
        json!("still here"),
        "the output came without a reload"
    );
    // At the end the page shows the outcome.
    until(&b, "the execution succeeded", async |b| {
        (text_of(b, "#status").await.as_deref() == Some("succeeded")).then_some(())
    })
    .await;
    until(&b, "the result", async |b| text_of(b, "pre.result").await).await;
    let output = text_of(&b, "#output").await.unwrap_or_default();
    assert!(
        output.contains("step 3 of 4: 75%\nstep 4 of 4: 100%\ndone"),
        "{output:?}"
    );
    screenshot(&b, "execution").await;
    let e = server.wait_finished(id).await;
    assert_eq!(
        (e["requester"].as_str(), e["origin"].as_str()),
        (Some("alice"), Some("web"))
    );

    // A value the server refuses shows beside its field.
    b.goto(&ui("/ui/actions/host.disk")).await.unwrap();
    type_into(&b, "p-warn_above", "500").await;
    click(&b, "button.primary").await;
    let said = until(&b, "the error beside warn_above", async |b| {
        text_of(b, "#e-warn_above").await
    })
    .await;
    assert!(said.contains("100"), "{said}");
    screenshot(&b, "run-form-error").await;

    // The executions so far, listed.
    b.goto(&ui("/ui/executions")).await.unwrap();
    let listed = text_of(&b, "table.list").await.unwrap_or_default();
    assert!(
        listed.contains(&format!("#{id}")) && listed.contains("demo.slow"),
        "{listed}"
    );
    screenshot(&b, "executions").await;

    // alice asks for a failover, which needs someone in sre-leads; carol
    // signs in and approves it with a reason.
    let api = crate::harness::Api::with_token(server.url.clone(), &alice);
    let (status, asked) = api
        .post(
            "/executions",
            json!({"action": "db.failover", "params": {"host": "db-2"}}),
        )
        .await;
    assert_eq!(status, 201, "{asked}");
    let failover = asked["id"].as_i64().unwrap();
    click(&b, "form.signout button").await;
    until(&b, "signed out", async |b| {
        (path_of(b).await == "/ui/sign-in").then_some(())
    })
    .await;
    type_into(&b, "token", &server.token_for("carol")).await;
    click(&b, "form button[type=submit]").await;
    until(&b, "carol signed in", async |b| {
        (text_of(b, ".who").await.as_deref() == Some("carol")).then_some(())
    })
    .await;
    b.goto(&ui("/ui/approvals")).await.unwrap();
    type_into(&b, &format!("reason-{failover}"), "standby is healthy").await;
    screenshot(&b, "approvals").await;
    click(&b, "button[name=decision][value=approve]").await;
    until(&b, "the approved execution, run", async |b| {
        let here = path_of(b).await == format!("/ui/executions/{failover}");
        (here && text_of(b, "#status").await.as_deref() == Some("succeeded")).then_some(())
    })
    .await;
    let e = server.wait_finished(failover).await;
    assert_eq!(e["approvals"][0]["approver"], "carol", "{e}");
    assert_eq!(e["approvals"][0]["reason"], "standby is healthy", "{e}");

    // carol silences the disk alerts for two hours from the alerts page.
    b.goto(&ui("/ui/alerts")).await.unwrap();
    type_into(&b, "s-matchers", "alertname=\"DiskFull\"").await;
    type_into(&b, "s-duration", "2h").await;
    type_into(&b, "s-comment", "replacing the disks").await;
    click(&b, "form.silence-form button.primary").await;
    until(&b, "the silence listed", async |b| {
        text_of(b, "main")
            .await
            .filter(|t| t.contains("replacing the disks") && t.contains("carol"))
    })
    .await;
    screenshot(&b, "alerts").await;
    let (_, silences) = server.get("/silences").await;
    assert_eq!(silences[0]["created_by"], "carol", "{silences}");
    assert_eq!(
        silences[0]["matchers"], "{alertname=\"DiskFull\"}",
        "{silences}"
    );

    // The chat console: the same grammar, replies streamed into the page.
    b.goto(&ui("/ui/console")).await.unwrap();
    type_into(&b, "line", "whoami").await;
    click(&b, "#console-form button").await;
    until(&b, "the console's answer", async |b| {
        text_of(b, "#log")
            .await
            .filter(|t| t.contains("You are carol"))
    })
    .await;
    type_into(&b, "line", "echo hello from the browser").await;
    click(&b, "#console-form button").await;
    until(&b, "the echo's result in the console", async |b| {
        text_of(b, "#log")
            .await
            .filter(|t| t.contains("succeeded") && t.contains("hello from the browser"))
    })
    .await;
    screenshot(&b, "console").await;

    // Who can run the failover, and why.
    b.goto(&ui("/ui/who-can?verb=run&action=db.failover"))
        .await
        .unwrap();
    let answer = text_of(&b, "table.who-can").await.unwrap_or_default();
    assert!(
        answer.contains("alice") && answer.contains("carol"),
        "{answer}"
    );
    screenshot(&b, "who-can").await;

    // A phone-sized window still reads (one column, nothing cut off).
    b.set_window_size(390, 844).await.unwrap();
    b.goto(&ui("/ui/actions")).await.unwrap();
    let overflow = b
        .execute(
            "return document.documentElement.scrollWidth > window.innerWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(overflow, json!(false), "no sideways scrolling on a phone");
    screenshot(&b, "catalog-phone").await;
    b.close().await.unwrap();
}
