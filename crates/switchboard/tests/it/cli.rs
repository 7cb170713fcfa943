//! The command line, against a real server and with no server at all.

use serde_json::Value;

use crate::harness::{Api, BIN, Server, copy_catalog, sample_catalog, test_catalog, text};

#[tokio::test]
async fn run_follow_streams_output_and_exits_with_the_outcome() {
    let server = Server::start(&sample_catalog());
    let out = server.cli(&["run", "demo.echo", "message=hello; $(id)", "--follow"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(text(&out.stdout), "hello; $(id)\n");
    assert!(
        text(&out.stderr).contains("demo.echo succeeded"),
        "{}",
        text(&out.stderr)
    );

    let out = server.cli(&["run", "host.disk", "warn_above=1", "--follow"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("is above 1%"));

    let out = server.cli(&[
        "run",
        "demo.login",
        "token=s3cr3t-value",
        "-f",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("s3cr3t-value"), "{stdout}");
    assert!(stdout.contains("logging in to example.org with token ****"));

    let out = server.cli(&["run", "demo.echo", "mesage=x"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr)
            .contains("parameter `mesage`: unknown parameter (did you mean `message`?)"),
        "{}",
        text(&out.stderr)
    );

    let out = server.cli(&["run", "demo.echo", "novalue"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("write it as key=value"));
}

#[tokio::test]
async fn listings_as_text_and_json() {
    let server = Server::start(&sample_catalog());
    let out = server.cli(&["actions"]);
    assert!(out.status.success());
    let listing = text(&out.stdout);
    assert!(listing.starts_with("NAME"));
    assert!(
        listing.contains("host.logs        local     Show the last lines of a log file"),
        "{listing}"
    );
    assert!(
        listing.contains("demo.rollout     workflow  Roll a change out host by host"),
        "{listing}"
    );

    let out = server.cli(&["actions", "--output", "json"]);
    let actions: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(actions.as_array().unwrap().len(), 14);

    let out = server.cli(&["run", "demo.echo", "message=one", "-o", "json"]);
    let e: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = e["id"].as_i64().unwrap();
    assert_eq!(e["origin"], "cli");
    server.wait_finished(id).await;

    let out = server.cli(&["executions", "-o", "json"]);
    let page: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["executions"][0]["id"], id);
    let out = server.cli(&["logs", &id.to_string()]);
    assert_eq!(text(&out.stdout), "one\n");
    let out = server.cli(&["logs", &id.to_string(), "--follow"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "one\n");
}

#[test]
fn run_local_needs_no_server_and_spools_a_record() {
    let state = tempfile::tempdir().unwrap();
    let spool = state.path().join("spool.jsonl");
    let run = |args: &[&str]| {
        std::process::Command::new(BIN)
            .args(args)
            .env("SWITCHBOARD_URL", "http://127.0.0.1:9")
            .env("SWITCHBOARD_SPOOL", &spool)
            .output()
            .unwrap()
    };
    let catalog = sample_catalog();
    let cat = catalog.to_str().unwrap();
    let out = run(&[
        "run",
        "--local",
        "--catalog",
        cat,
        "demo.login",
        "token=t0ps3cret",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(text(&out.stdout).contains("with token ****"));
    let out = run(&[
        "run",
        "--local",
        "--catalog",
        cat,
        "host.disk",
        "warn_above=1",
    ]);
    assert_eq!(out.status.code(), Some(1));

    let lines: Vec<Value> = std::fs::read_to_string(&spool)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["action"], "demo.login");
    assert_eq!(lines[0]["params"]["token"], "****");
    assert_eq!(lines[0]["origin"], "local");
    assert_eq!(lines[0]["status"], "succeeded");
    assert_eq!(lines[1]["status"], "failed");
    assert_eq!(lines[1]["exit_code"], 1);
    assert!(
        !std::fs::read_to_string(&spool)
            .unwrap()
            .contains("t0ps3cret")
    );

    // A relative catalog folder works as well as an absolute one.
    let out = std::process::Command::new(BIN)
        .current_dir(catalog.join("../.."))
        .args([
            "run",
            "--local",
            "--catalog",
            "examples/catalog",
            "demo.echo",
            "message=relative",
        ])
        .env("SWITCHBOARD_SPOOL", &spool)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(text(&out.stdout), "relative\n");

    let out = run(&["run", "--local", "--catalog", cat, "demo.ech"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("did you mean `demo.echo`?"));
}

#[test]
fn catalog_check_reports_every_error_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    copy_catalog(&test_catalog(), dir.path());
    std::fs::write(dir.path().join("actions/bad.toml"), "name = \"bad\"\ndescription = \"x\"\ncommand = [\"true\", \"{{ nope }}\"]\ntimeout = \"0s\"\n").unwrap();
    std::fs::write(
        dir.path().join("actions/worse.toml"),
        "name = \"worse\"\n[[aliases]]\nformat = \"{x} y\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args(["catalog", "check"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report = text(&out.stdout);
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(
        lines,
        [
            "actions/bad.toml:3: command[1]: `nope` is not a parameter of this action",
            "actions/bad.toml:4: timeout: must be longer than zero",
            "actions/worse.toml:1: description: missing (say in a sentence what the action does)",
            "actions/worse.toml:1: command: missing (the program and its arguments, e.g. `[\"scripts/uptime.sh\"]`)",
            "actions/worse.toml:3: aliases[0].format: format must start with a literal word, such as `reboot {host}`",
        ],
        "{report}"
    );
    assert!(text(&out.stderr).contains("5 errors"));

    let out = std::process::Command::new(BIN)
        .args(["catalog", "check"])
        .arg(sample_catalog())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn an_unreachable_server_is_a_clear_error() {
    let out = std::process::Command::new(BIN)
        .args(["actions", "--server", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("cannot reach Switchboard at http://127.0.0.1:9"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn the_demo_serves_the_built_in_sample_catalog() {
    use std::io::{BufRead, BufReader};
    let data = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(BIN)
        .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let url = loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the demo printed no address");
        if let Some(rest) = line.strip_prefix("Switchboard demo is running at ") {
            break rest.trim().to_owned();
        }
    };
    let mut hints = Vec::new();
    while let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(500)) {
        hints.push(line);
    }
    assert!(
        hints
            .iter()
            .any(|l| l.contains("switchboard run demo.slow --follow")),
        "{hints:?}"
    );

    let token = hints
        .iter()
        .find_map(|l| l.trim().strip_prefix("export SWITCHBOARD_TOKEN="))
        .expect("the demo prints a ready token")
        .to_owned();
    let api = Api::with_token(url, &token);
    let (_, actions) = api.get("/actions").await;
    assert_eq!(actions.as_array().unwrap().len(), 14);
    let id = api.submit("host.uptime", serde_json::json!({})).await;
    let done = api.wait_finished(id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(
        done["result"]["uptime_seconds"].as_i64().unwrap() > 0,
        "the sample script wrote its result: {done}"
    );
    assert!(data.path().join("catalog/scripts/uptime.sh").exists());
    assert!(data.path().join("switchboard.db").exists());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(data.path().join("admin-token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the demo's token file is private");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
}

/// The command line is an interface: a change to it shows up here.
#[test]
fn help_texts() {
    for (name, args) in [
        ("help", &["--help"][..]),
        ("help_run", &["run", "--help"]),
        ("help_serve", &["serve", "--help"]),
        ("help_executions", &["executions", "--help"]),
    ] {
        // A cleared environment: clap shows the values of `SWITCHBOARD_*`.
        let out = std::process::Command::new(BIN)
            .args(args)
            .env_clear()
            .env("COLUMNS", "100")
            .output()
            .unwrap();
        assert!(out.status.success());
        insta::assert_snapshot!(name, text(&out.stdout));
    }
}

#[tokio::test]
async fn hosts_lists_what_a_selector_names_and_explains_a_miss() {
    let server = Server::start(&crate::harness::sample_catalog());
    let out = server.cli(&["hosts", "group:prod,&tag:postgres,!db-2"]);
    assert!(out.status.success(), "{out:?}");
    let listed = text(&out.stdout);
    assert!(listed.contains("db-1"), "{listed}");
    assert!(listed.contains("10.0.2.21:22"), "{listed}");
    assert!(listed.contains("postgres"), "{listed}");
    assert!(
        !listed.contains("db-2") && !listed.contains("web-1"),
        "{listed}"
    );

    let out = server.cli(&["hosts", "-o", "json"]);
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 5);
    assert_eq!(all[1]["groups"], serde_json::json!(["db", "prod"]), "{all}");

    let out = server.cli(&["hosts", "web-3"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("unknown host `web-3` (did you mean `web-1`?)"),
        "{out:?}"
    );
}
