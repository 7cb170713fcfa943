//! Chat from the terminal: `switchboard chat`, an interactive chat with a
//! running server (like Hubot's shell adapter, for trying commands), and
//! `switchboard link CODE` / `links` / `unlink`, which tie chat accounts to
//! the signed-in principal.
//!
//! The shell sends each line to the console endpoint and prints the
//! replies as they stream back; lines run concurrently, so a long run does
//! not block the next command. It holds no chat logic: the server's
//! conversation engine answers exactly as it does on Slack.

use std::io::IsTerminal;

use anyhow::Context;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use switchboard_connectors::chat::console::ConsoleEvent;
use tokio::io::AsyncBufReadExt;

use crate::cli::{ClientArgs, OutputFormat};
use crate::client::{Api, print_json};
use crate::terminal;

/// Sends one line and prints what comes back until the server is done.
async fn say(api: &Api, line: &str, raw: bool) -> anyhow::Result<()> {
    let req = api
        .http
        .post(api.url("/chat"))
        .header("accept", "text/event-stream")
        .json(&serde_json::json!({"text": line, "client": "shell"}));
    let mut events = api.send(req).await?.bytes_stream().eventsource();
    let mut last_update: Option<(String, String)> = None;
    while let Some(event) = events.next().await {
        let event = event.context("the reply stream broke off")?;
        if raw {
            println!("{}", event.data);
            continue;
        }
        match serde_json::from_str::<ConsoleEvent>(&event.data) {
            Ok(ConsoleEvent::Post { text, .. }) => println!("{}", indent(&text)),
            Ok(ConsoleEvent::Update { id, text, .. }) => {
                // Progress edits: print only what changed.
                if last_update.as_ref() != Some(&(id.clone(), text.clone())) {
                    println!("{}", indent(&text));
                    last_update = Some((id, text));
                }
            }
            Ok(ConsoleEvent::File {
                filename,
                size,
                title,
                ..
            }) => println!(
                "  [{title}: {filename}, {size} bytes attached; `switchboard logs` shows it]"
            ),
            Err(_) => {}
        }
    }
    Ok(())
}

fn indent(text: &str) -> String {
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                format!("» {l}")
            } else {
                format!("  {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `switchboard chat`: one command with `--command`, else every line of
/// standard input (a prompt when it is a terminal) until end of input.
pub async fn shell(args: &ClientArgs, command: Option<&str>) -> anyhow::Result<u8> {
    let api = std::sync::Arc::new(Api::new(args)?);
    let raw = args.output == OutputFormat::Json;
    if let Some(line) = command {
        say(&api, line, raw).await?;
        return Ok(terminal::EXIT_OK);
    }
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        eprintln!(
            "Chatting with {} — try `help`; Ctrl-D to leave.",
            args.server
        );
    }
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut replies = tokio::task::JoinSet::new();
    loop {
        if interactive {
            eprint!("you> ");
        }
        let line = tokio::select! {
            line = lines.next_line() => line?,
            _ = tokio::signal::ctrl_c() => None,
        };
        let Some(line) = line else { break };
        let line = line.trim().to_owned();
        if line.is_empty() {
            continue;
        }
        if line == "exit" || line == "quit" {
            break;
        }
        let api = api.clone();
        replies.spawn(async move {
            if let Err(e) = say(&api, &line, raw).await {
                eprintln!("error: {e:#}");
            }
        });
    }
    // Runs already asked for are reported before leaving.
    while replies.join_next().await.is_some() {}
    Ok(terminal::EXIT_OK)
}

/// `switchboard link CODE`: confirms a code the bot sent in chat.
pub async fn link(args: &ClientArgs, code: &str) -> anyhow::Result<u8> {
    let api = Api::new(args)?;
    let linked: serde_json::Value = api
        .post("/chat/links", &serde_json::json!({"code": code}))
        .await?;
    if args.output == OutputFormat::Json {
        print_json(&linked);
    } else {
        println!(
            "linked {} to {}",
            linked["chat_identity"].as_str().unwrap_or_default(),
            linked["principal"].as_str().unwrap_or_default()
        );
    }
    Ok(terminal::EXIT_OK)
}

/// `switchboard links`: the chat accounts linked to the caller.
pub async fn links(args: &ClientArgs) -> anyhow::Result<u8> {
    let api = Api::new(args)?;
    let links: serde_json::Value = api.get("/chat/links").await?;
    if args.output == OutputFormat::Json {
        print_json(&links);
        return Ok(terminal::EXIT_OK);
    }
    let rows: Vec<Vec<String>> = links
        .as_array()
        .map(|a| {
            a.iter()
                .map(|l| {
                    vec![
                        l["chat_identity"].as_str().unwrap_or_default().to_owned(),
                        l["linked_at"].as_str().unwrap_or_default().to_owned(),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    if rows.is_empty() {
        println!("no chat accounts are linked to you; say `link` to the bot in chat");
    } else {
        terminal::print_table(&["CHAT ACCOUNT", "LINKED"], &rows);
    }
    Ok(terminal::EXIT_OK)
}

/// `switchboard unlink IDENTITY`.
pub async fn unlink(args: &ClientArgs, identity: &str) -> anyhow::Result<u8> {
    let api = Api::new(args)?;
    let mut url = reqwest::Url::parse(&api.url("/chat/links"))?;
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("the server URL cannot take a path"))?
        .push(identity);
    api.send(api.http.delete(url)).await?;
    println!("unlinked {identity}");
    Ok(terminal::EXIT_OK)
}
