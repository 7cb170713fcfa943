//! The daemon: `serve` and `demo`. Wires storage, catalog, engine and HTTP
//! together, reloads the catalog on SIGHUP, and on SIGTERM/SIGINT stops
//! taking work, drains running executions and exits.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use include_dir::{Dir, include_dir};
use switchboard_core::Catalog;
use switchboard_engine::{Engine, EngineConfig, RunLimits};
use tokio::signal::unix::{SignalKind, signal};

use crate::config::{LogFormat, ServeArgs, ServeConfig};

/// The sample catalog, built in so that `demo` works from any folder.
static SAMPLE_CATALOG: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../examples/catalog");

/// How long open HTTP connections get to finish once executions are drained.
const HTTP_GRACE: Duration = Duration::from_secs(5);

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<u8> {
    let config = args.resolve()?;
    init_logging(config.log_format);
    if config.admin_token_hash.is_none() {
        tracing::warn!(
            "SWITCHBOARD_ADMIN_TOKEN is not set: only tokens already in the database can sign in"
        );
    }
    run(config, |addr| {
        println!("switchboard listening on http://{addr}")
    })
    .await
}

async fn run(config: ServeConfig, on_listening: impl FnOnce(SocketAddr)) -> anyhow::Result<u8> {
    let catalog = Catalog::load(&config.catalog)
        .map_err(|errors| anyhow::anyhow!("cannot serve {}: {errors}", config.catalog.display()))?;
    let store = switchboard_store::open(&config.storage)
        .await
        .context("cannot open the storage")?;
    let engine_config = EngineConfig {
        node: config.node.clone(),
        max_concurrency: config.max_concurrency,
        limits: RunLimits {
            max_output_bytes: config.max_output_bytes,
            kill_grace: config.kill_grace,
        },
        temp_dir: config.temp_dir.clone(),
        admin_token_hash: config.admin_token_hash.clone(),
        oidc: config.oidc.clone(),
        audit_forward: config.audit_forward.clone(),
        directory: config.directory.clone(),
        ldap: config.ldap.clone(),
        chat: config.chat.clone(),
        runners: config.runners.clone(),
        alerts: config.alerts.clone(),
        cluster: config.cluster.clone(),
        ..EngineConfig::default()
    };
    let engine = Engine::start(store, catalog, engine_config).await?;
    let (stop_chat, chat_stopped) = tokio::sync::watch::channel(false);
    let chat_adapters = start_chat(&config.chat_platforms, &engine, chat_stopped).await;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, node = %config.node, catalog = %config.catalog.display(), version = %engine.catalog().version, "switchboard serving");
    on_listening(addr);

    let mut hangup = signal(SignalKind::hangup())?;
    let reloader = engine.clone();
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the catalog");
            let by = switchboard_core::Principal::system();
            let _ = reloader
                .reload_catalog(&by, &switchboard_core::Origin::system())
                .await;
        }
    });

    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    if config.chatops_rpc.is_some() {
        tracing::info!("ChatOps-RPC configured: /_chatops");
    }
    let app = switchboard_http::router(
        engine.clone(),
        chat_adapters.clone(),
        config.chatops_rpc.clone(),
    )
    .map_err(anyhow::Error::msg)?;
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = http_stopped.await;
            })
            .await
    });

    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = interrupt.recv() => tracing::info!("SIGINT: shutting down"),
    }
    let _ = stop_chat.send(true);
    engine.shutdown(config.drain_timeout).await;
    let _ = stop_http.send(());
    match tokio::time::timeout(HTTP_GRACE, server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::error!(error = %e, "HTTP server failed"),
        Ok(Err(e)) => tracing::error!(error = %e, "HTTP server task failed"),
        Err(_) => tracing::warn!("open connections did not close in time; exiting anyway"),
    }
    tracing::info!("stopped");
    Ok(0)
}

/// Builds the configured chat adapters, learns each bot's own identity,
/// and keeps their long-lived connections (Slack Socket Mode, the
/// Mattermost websocket, the IRC connection, the Matrix `/sync` loop) until `stop` — on the leader only, so that with
/// several nodes one of them hears each event; the others serve the
/// platforms' HTTP requests and post replies.
async fn start_chat(
    platforms: &crate::config::ChatPlatforms,
    engine: &Engine,
    stop: tokio::sync::watch::Receiver<bool>,
) -> switchboard_http::ChatAdapters {
    use std::sync::Arc;
    use switchboard_connectors::chat::ChatAdapter;
    use switchboard_connectors::chat::discord::DiscordAdapter;
    use switchboard_connectors::chat::irc::IrcAdapter;
    use switchboard_connectors::chat::matrix::MatrixAdapter;
    use switchboard_connectors::chat::mattermost::MattermostAdapter;
    use switchboard_connectors::chat::slack::SlackAdapter;
    use switchboard_connectors::chat::teams::TeamsAdapter;
    use switchboard_connectors::chat::xmpp::XmppAdapter;

    let mut adapters = switchboard_http::ChatAdapters::new();
    if let Some(config) = &platforms.slack {
        let slack = Arc::new(SlackAdapter::new(config.clone()));
        // Without it mentions are still recognised from each event's
        // `authorizations`; replies work regardless.
        if let Err(e) = slack.learn_identity().await {
            tracing::warn!(error = %e, "Slack: cannot learn the bot's identity (auth.test)");
        }
        adapters.insert(slack.platform(), slack);
    }
    if let Some(config) = &platforms.mattermost {
        let mattermost = Arc::new(MattermostAdapter::new(config.clone()));
        if let Err(e) = mattermost.learn_identity().await {
            tracing::warn!(error = %e, "Mattermost: cannot learn the bot's identity (users/me)");
        }
        adapters.insert(mattermost.platform(), mattermost);
    }
    if let Some(config) = &platforms.irc {
        let irc = Arc::new(IrcAdapter::new(config.clone()));
        adapters.insert(irc.platform(), irc);
    }
    if let Some(config) = &platforms.matrix {
        let matrix = Arc::new(MatrixAdapter::new(config.clone()));
        adapters.insert(matrix.platform(), matrix);
    }
    if let Some(config) = &platforms.xmpp {
        let xmpp = Arc::new(XmppAdapter::new(config.clone()));
        adapters.insert(xmpp.platform(), xmpp);
    }
    if let Some(config) = &platforms.discord {
        let discord = Arc::new(DiscordAdapter::new(config.clone()));
        adapters.insert(discord.platform(), discord);
    }
    if let Some(config) = &platforms.teams {
        let teams = Arc::new(TeamsAdapter::new(config.clone()));
        adapters.insert(teams.platform(), teams);
    }
    let handler: Arc<dyn switchboard_core::chat::ChatHandler> =
        Arc::new(switchboard_engine::chat::Conversation::new(engine.clone()));
    for (platform, adapter) in &adapters {
        tracing::info!(%platform, "chat platform configured");
        // Alert receivers post to its rooms through it.
        engine.register_chat_outlet(platform, adapter.outlet());
        let adapter = adapter.clone();
        let handler = handler.clone();
        let stop = stop.clone();
        let engine = engine.clone();
        let duty = format!("{platform} connection");
        tokio::spawn(async move {
            engine
                .lead(&duty, stop, |told| adapter.connect(handler.clone(), told))
                .await;
        });
    }
    adapters
}

/// The demo's admin token: made once, kept (mode 0600) in the data folder.
fn demo_admin_token(data_dir: &Path) -> anyhow::Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join("admin-token");
    if let Ok(token) = std::fs::read_to_string(&path) {
        return Ok(token.trim().to_owned());
    }
    let token = switchboard_engine::tokens::generate()?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    writeln!(file, "{token}")?;
    Ok(token)
}

/// Flags of `switchboard demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the demo keeps its database and its copy of the sample catalog
    /// (default: `$XDG_DATA_HOME/switchboard/demo`).
    #[arg(long, env = "SWITCHBOARD_DEMO_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on; another free port is used if it is taken.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
}

fn default_demo_dir() -> PathBuf {
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("switchboard/demo")
}

/// Writes the built-in sample catalog to `dir` (scripts made executable).
fn write_sample_catalog(dir: &Path) -> anyhow::Result<()> {
    fn write(d: &Dir<'_>, root: &Path) -> anyhow::Result<()> {
        for file in d.files() {
            let path = root.join(file.path());
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, file.contents())?;
            if file.path().starts_with("scripts") {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
            }
        }
        for sub in d.dirs() {
            write(sub, root)?;
        }
        Ok(())
    }
    write(&SAMPLE_CATALOG, dir)
        .with_context(|| format!("cannot write the sample catalog to {}", dir.display()))
}

pub async fn demo(args: DemoArgs) -> anyhow::Result<u8> {
    init_logging(LogFormat::Text);
    let data_dir = args.data_dir.unwrap_or_else(default_demo_dir);
    let catalog = data_dir.join("catalog");
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    if !catalog.join("actions").is_dir() {
        write_sample_catalog(&catalog)?;
    }
    let admin_token = demo_admin_token(&data_dir)?;
    let listen = match std::net::TcpListener::bind(args.listen) {
        Ok(probe) => {
            drop(probe);
            args.listen
        }
        Err(_) => SocketAddr::new(args.listen.ip(), 0),
    };
    let config = ServeConfig {
        listen,
        storage: format!("sqlite://{}", data_dir.join("switchboard.db").display()),
        catalog: catalog.clone(),
        node: "demo".to_owned(),
        max_concurrency: 16,
        max_output_bytes: 1024 * 1024,
        kill_grace: Duration::from_secs(5),
        drain_timeout: Duration::from_secs(10),
        temp_dir: std::env::temp_dir(),
        log_format: LogFormat::Text,
        admin_token_hash: Some(switchboard_core::token::token_hash(&admin_token)),
        oidc: None,
        audit_forward: Vec::new(),
        directory: Default::default(),
        ldap: None,
        chat: Default::default(),
        chat_platforms: Default::default(),
        chatops_rpc: None,
        runners: Default::default(),
        alerts: Default::default(),
        cluster: Default::default(),
    };
    let data = data_dir.display().to_string();
    let cat = catalog.display().to_string();
    run(config, move |addr| {
        let url = format!("http://{addr}");
        println!(
            "\nSwitchboard demo is running at {url}\n\
             \n  web UI:   {url}/ui/  (sign in with the token below)\
             \n  data:     {data}\
             \n  catalog:  {cat}  (edit it, then `kill -HUP {pid}` or `switchboard catalog reload`)\
             \n\nTry, in another terminal:\
             \n  export SWITCHBOARD_URL={url}\
             \n  export SWITCHBOARD_TOKEN={admin_token}\
             \n  switchboard actions\
             \n  switchboard run demo.echo message='hello, world' --follow\
             \n  switchboard run demo.slow --follow            # live progress for ~10 s\
             \n  switchboard run host.disk path=/ warn_above=95 --follow\
             \n  switchboard run demo.login token=s3cr3t --follow   # the token is shown as ****\
             \n  switchboard executions\
             \n  switchboard chat                               # the chat console: try `help`, `uptime`\
             \n  curl {url}/api/v1/openapi.json\
             \n  switchboard run host.uptime --local --catalog {cat}   # no server needed\
             \n\n(`cargo run --release --` in place of `switchboard` from a source checkout.)\
             \nCtrl-C stops the demo.\n",
            pid = std::process::id()
        );
    })
    .await
}
