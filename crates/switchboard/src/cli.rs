//! The command line: every subcommand and flag, and where each goes.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::{chat, client, config, daemon, offline, storage, workflows};

/// Switchboard: run your operations automation from the command line, an
/// HTTP API, chat, schedules and alerts — one service, one audit trail.
#[derive(Debug, Parser)]
#[command(
    name = "switchboard",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Where a client command finds the server, and how it prints.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// The Switchboard server to talk to.
    #[arg(
        long,
        env = "SWITCHBOARD_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub server: String,
    /// How to print listings and results.
    #[arg(long, short = 'o', value_enum, default_value = "text", global = true)]
    pub output: OutputFormat,
    /// The API token to sign in with (better from the environment than a flag,
    /// which other users of the machine can see).
    #[arg(long, env = "SWITCHBOARD_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Switchboard daemon (API and execution engine).
    Serve(config::ServeArgs),
    /// Start a demo server on 127.0.0.1 with the sample catalog and embedded SQLite.
    Demo(daemon::DemoArgs),
    /// List the catalog's actions, or show one with its parameters.
    Actions {
        /// Show only this action, in detail.
        name: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Run an action: `switchboard run host.disk path=/ warn_above=80`.
    Run(RunArgs),
    /// List executions, newest first.
    Executions(ExecutionsArgs),
    /// Show an execution's output; `--follow` streams it until it ends.
    Logs {
        /// Execution id.
        id: String,
        /// Keep printing new output until the execution ends.
        #[arg(long, short)]
        follow: bool,
        /// Prefix each line with its time.
        #[arg(long, short)]
        timestamps: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Cancel a queued or running execution (its whole process group is stopped).
    Cancel {
        /// Execution id.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show a workflow's steps: each one's status, attempts and answers.
    Steps {
        /// Workflow execution id.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Answer the question a workflow waits on: `yes`, `no`, a choice or text.
    Answer {
        /// Workflow execution id.
        id: String,
        /// The answer.
        answer: String,
        /// The inquiry's step, when more than one waits.
        #[arg(long)]
        step: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Pause a workflow: running steps finish, no new step starts.
    Pause {
        /// Workflow execution id.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Resume a paused workflow.
    Resume {
        /// Workflow execution id.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Run an ended workflow again from a step (by default the first that
    /// failed); the steps before it keep their results.
    Rerun {
        /// Workflow execution id.
        id: String,
        /// The step to start from.
        #[arg(long)]
        from: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Approve an execution that waits for approval (never your own).
    Approve(Answer),
    /// Reject an execution that waits for approval; it is cancelled.
    Reject(Answer),
    /// List the executions waiting for your approval.
    Approvals {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the catalog's cron schedules: next run, last run and its execution.
    Schedules {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Check or reload a catalog.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Verify or export the tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Apply the storage's migrations, as the server does when it starts,
    /// and print its schema version; running it again changes nothing.
    ///
    /// Run it with a new version's binary, the old server stopped, to update
    /// the schema ahead of the start (which then has nothing left to do),
    /// or to see which version a database is at.
    Migrate {
        /// The database: `sqlite:///var/lib/switchboard/switchboard.db` or
        /// `postgres://switchboard@db.example.com/switchboard`.
        #[arg(long, env = "SWITCHBOARD_STORAGE", hide_env_values = true)]
        storage: String,
        /// How to print the schema version.
        #[arg(long, short = 'o', value_enum, default_value = "text")]
        output: OutputFormat,
    },
    /// Work on the stored data: copy it to another database.
    #[command(subcommand)]
    Store(StoreCommand),
    /// List the inventory's hosts, or those a selector names: `web-1`,
    /// `group:prod`, `tag:db`, `web-*`, combined with `,` (or), `&` (and)
    /// and `!` (not), e.g. `group:prod,&tag:db,!db-3`.
    Hosts {
        /// Which hosts; default: all.
        #[arg(conflicts_with = "attention")]
        selector: Option<String>,
        /// Instead: the hosts that need attention, worst first (those whose
        /// latest run of some action did not succeed).
        #[arg(long)]
        attention: bool,
        /// With `--attention`: how far back to look (`24h`, `7d`).
        #[arg(long, default_value = "24h", requires = "attention")]
        within: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Silence alerts (as `amtool silence`): add, list, expire.
    #[command(subcommand)]
    Silence(SilenceCommand),
    /// Acknowledge a firing alert (by fingerprint) or group (by id), or a
    /// unique prefix of either: someone is on it.
    Ack {
        /// The alert's fingerprint or the group's id (from `alerts`).
        id: String,
        /// What to say with it.
        #[arg(long, default_value = "")]
        comment: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the alerts received: firing ones, or all with `--all`.
    Alerts {
        /// Resolved alerts too.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Chat with the server from the terminal, as you would in Slack: `help`,
    /// `uptime`, `logs lines=50`. Each line runs at once; replies print as
    /// they come.
    Chat {
        /// Say just this and exit when everything it started is reported.
        #[arg(long, short = 'c')]
        command: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Link the chat account that received CODE (say `link` to the bot) to
    /// the principal you are signed in as.
    Link {
        /// The code from the bot's direct message, e.g. `ABCD-EFGH`.
        code: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the chat accounts linked to you.
    Links {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Remove a chat account's link (`slack:T01ABC/U123`).
    Unlink {
        /// The chat account, as `links` shows it.
        identity: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show who your credential speaks for: principal, scopes, groups.
    Whoami {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Create, list and revoke API tokens (needs the `admin` scope).
    #[command(subcommand)]
    Token(TokenCommand),
    /// The auditor's report: who may do what, through which doors (needs `admin`)
    ///
    /// Who may run, approve and cancel each action (and silence,
    /// administer), through which doors and policies; the doors and how
    /// each knows the caller; the principals, API tokens and linked chat
    /// accounts; the automation; the audit chain verified and what happened
    /// by door.
    ///
    /// `switchboard report diff OLD.json NEW.json` lists who gained or lost
    /// which right between two reports (exit 1 when anything changed).
    Report(ReportCommand),
    /// List who may do something, by principal and group, with doors and policies.
    ///
    /// Every known principal (configuration, LDAP, the built-in admin) and
    /// every group is checked against the policies, through every door.
    #[command(name = "who-can")]
    WhoCan {
        #[command(flatten)]
        question: Question,
        /// Only through this door (`api`, `cli`, `web`, `chat`,
        /// `chat:slack:#ops`, `schedule`, `alert`, `webhook`); default: every door.
        #[arg(long)]
        door: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show whether a principal may do something, and why.
    ///
    /// Prints the decision and the policies behind it. Exits 0 when
    /// permitted, 1 when denied.
    Explain {
        /// The principal, e.g. `alice`.
        principal: String,
        #[command(flatten)]
        question: Question,
        /// The door asked through (default `api`).
        #[arg(long)]
        door: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the authorization policies in force (needs `admin`).
    Policies {
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// An approver's answer to a request for approval.
#[derive(Debug, clap::Args)]
pub struct Answer {
    /// Execution id.
    pub id: String,
    /// Why, shown to the requester and kept in the audit log.
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// A question about authorization: a verb, an action, perhaps a target.
#[derive(Debug, clap::Args)]
pub struct Question {
    /// `view`, `run`, `approve`, `cancel`, `silence` or `admin`.
    pub verb: String,
    /// The action (not for `silence` and `admin`), e.g. `host.reboot`.
    pub action: Option<String>,
    /// The targeted host.
    #[arg(long)]
    pub target: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SilenceCommand {
    /// Mute the alerts that match, for a while, saying why.
    Add {
        /// Matchers, as Alertmanager writes them: `alertname=DiskFull`
        /// `instance=~"db-.*"` (one or more).
        #[arg(required = true)]
        matchers: Vec<String>,
        /// How long, e.g. `2h`.
        #[arg(long = "for", value_name = "DURATION", default_value = "1h")]
        duration: String,
        /// Why (required).
        #[arg(long)]
        comment: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List current silences (`--all`: expired ones too).
    List {
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// End a silence now.
    Expire {
        /// Its id, from `silence list`.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a token; it is printed once and only its hash is kept.
    Create {
        /// The principal it speaks for, e.g. `alice` or `svc:deploy`.
        #[arg(long)]
        user: String,
        /// What it may do: `read`, `run`, `admin`, comma-separated.
        #[arg(long, default_value = "read,run")]
        scope: String,
        /// How long it lives, e.g. `30d` (default: until revoked).
        #[arg(long)]
        expires: Option<String>,
        /// What it is for.
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List tokens (never their secrets).
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke a token at once.
    Revoke {
        /// Token id, from `token list`.
        id: i64,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Where the audit commands read: the server, or the database itself.
#[derive(Debug, Args)]
pub struct AuditSource {
    /// Read the database directly (e.g. `sqlite:///var/lib/switchboard/switchboard.db`)
    /// instead of asking the server: for auditors, and when the server is down.
    #[arg(long, env = "SWITCHBOARD_STORAGE")]
    pub storage: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ReportCommand {
    #[command(subcommand)]
    pub diff: Option<ReportDiff>,
    #[command(flatten)]
    pub args: ReportArgs,
}

#[derive(Debug, Subcommand)]
pub enum ReportDiff {
    /// What changed in access from one JSON report to another.
    Diff {
        /// The earlier report (`report --format json`).
        old: PathBuf,
        /// The later one.
        new: PathBuf,
    },
}

/// The report's formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// For reading and for wikis.
    Markdown,
    /// One self-contained page, to print or archive.
    Html,
    /// Everything, to keep and to compare with `report diff`.
    Json,
    /// The access matrix, one row per holder of a right, for a spreadsheet.
    Csv,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[arg(long, value_enum, default_value = "markdown")]
    pub format: ReportFormat,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Count the evidence from then on: RFC 3339 or an age (`30d`).
    #[arg(long)]
    pub since: Option<String>,
    /// Only these actions (comma-separated; `db.*` names a prefix).
    #[arg(long)]
    pub actions: Option<String>,
    /// For actions that take a host, ask about each of these hosts
    /// (comma-separated).
    #[arg(long)]
    pub hosts: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the whole hash chain; exit 0 when intact, 1 naming the first broken record.
    Verify(AuditSource),
    /// Upload the records of offline runs (`run --local`) into the audit log,
    /// then empty the spool. Pushing twice adds nothing twice.
    Push {
        /// The spool file (default: where `run --local` writes it).
        #[arg(long, env = "SWITCHBOARD_SPOOL")]
        spool: Option<PathBuf>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print audit records as JSON lines, in chain order.
    Export {
        /// Only records at or after this time: RFC 3339 or an age (`24h`, `7d`).
        #[arg(long)]
        since: Option<String>,
        #[command(flatten)]
        source: AuditSource,
    },
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy everything from one database into an empty one (SQLite to
    /// PostgreSQL, or back), then compare the row counts and the audit chain.
    ///
    /// Stop the server first: what it writes during the copy is not copied.
    /// The target is migrated and must hold no data; ids are kept. Progress
    /// goes to standard error, the report to standard output. Exits 0 when
    /// every table's count and the audit chain's head match, 1 when not.
    Copy {
        /// The database to read, e.g. `sqlite:///var/lib/switchboard/switchboard.db`.
        #[arg(long)]
        from: String,
        /// The empty database to fill, e.g.
        /// `postgres://switchboard@db.example.com/switchboard`.
        #[arg(long)]
        to: String,
        /// How to print the report.
        #[arg(long, short = 'o', value_enum, default_value = "text")]
        output: OutputFormat,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The action, e.g. `host.disk`.
    pub action: String,
    /// Parameters as `key=value` (lists as `a,b,c`).
    pub params: Vec<String>,
    /// Stream the output and exit with the execution's outcome.
    #[arg(long, short)]
    pub follow: bool,
    /// Prefix each output line with its time.
    #[arg(long, short)]
    pub timestamps: bool,
    /// Run right here from a catalog folder, with no server or database.
    #[arg(long, requires = "catalog")]
    pub local: bool,
    /// The catalog folder, with `--local`.
    #[arg(long, env = "SWITCHBOARD_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// Where `--local` appends its record, for upload once the server is back.
    #[arg(long, env = "SWITCHBOARD_SPOOL")]
    pub spool: Option<PathBuf>,
    /// With `--local`: the configuration file whose `[ssh]` and
    /// `[prometheus]` settings the run uses.
    #[arg(long, env = "SWITCHBOARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Save the file the run produced (a graph) here; with several, `FILE`
    /// is a folder. Implies waiting for the end.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct ExecutionsArgs {
    /// Only this status (queued, running, succeeded, failed, timed_out, cancelled, lost).
    #[arg(long)]
    pub status: Option<String>,
    /// Only this action.
    #[arg(long)]
    pub action: Option<String>,
    /// Only this requester.
    #[arg(long)]
    pub requester: Option<String>,
    /// Only this origin (cli, api, …).
    #[arg(long)]
    pub origin: Option<String>,
    /// Only executions created at or after this time: RFC 3339
    /// (`2026-11-24T08:00:00Z`) or an age (`90m`, `2h`, `7d`).
    #[arg(long)]
    pub since: Option<String>,
    /// How many to show.
    #[arg(long, short = 'n', default_value_t = 20)]
    pub limit: u32,
    /// Only ids below this one (paging).
    #[arg(long)]
    pub before: Option<i64>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Validate a catalog folder and report every error with file, line and key.
    Check {
        /// The catalog folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
        #[arg(long, short = 'o', value_enum, default_value = "text")]
        output: OutputFormat,
    },
    /// Ask the server to reload its catalog (as SIGHUP does).
    Reload {
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Runs the command; returns the process exit status.
pub async fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Serve(args) => daemon::serve(args).await,
        Command::Demo(args) => daemon::demo(args).await,
        Command::Actions { name, client } => client::actions(&client, name.as_deref()).await,
        Command::Run(args) if args.local => offline::run(args).await,
        Command::Run(args) => client::run(args).await,
        Command::Executions(args) => client::executions(args).await,
        Command::Logs {
            id,
            follow,
            timestamps,
            client,
        } => client::logs(&client, &id, follow, timestamps).await,
        Command::Cancel { id, client } => client::cancel(&client, &id).await,
        Command::Steps { id, client } => workflows::steps(&client, &id).await,
        Command::Answer {
            id,
            answer,
            step,
            client,
        } => workflows::answer(&client, &id, &answer, step.as_deref()).await,
        Command::Pause { id, client } => workflows::steer(&client, &id, true).await,
        Command::Resume { id, client } => workflows::steer(&client, &id, false).await,
        Command::Rerun { id, from, client } => {
            workflows::rerun(&client, &id, from.as_deref()).await
        }
        Command::Approve(a) => client::answer(&a, true).await,
        Command::Reject(a) => client::answer(&a, false).await,
        Command::Approvals { client } => client::approvals(&client).await,
        Command::Schedules { client } => client::schedules(&client).await,
        Command::Catalog(CatalogCommand::Check { dir, output }) => offline::check(&dir, output),
        Command::Catalog(CatalogCommand::Reload { client }) => client::reload(&client).await,
        Command::Token(TokenCommand::Create {
            user,
            scope,
            expires,
            description,
            client,
        }) => client::token_create(&client, &user, &scope, expires.as_deref(), &description).await,
        Command::Whoami { client } => client::whoami(&client).await,
        Command::Hosts {
            attention: true,
            within,
            client,
            ..
        } => client::attention(&client, &within).await,
        Command::Hosts {
            selector, client, ..
        } => client::hosts(&client, selector.as_deref()).await,
        Command::Alerts { all, client } => client::alerts(&client, all).await,
        Command::Chat { command, client } => chat::shell(&client, command.as_deref()).await,
        Command::Link { code, client } => chat::link(&client, &code).await,
        Command::Links { client } => chat::links(&client).await,
        Command::Unlink { identity, client } => chat::unlink(&client, &identity).await,
        Command::WhoCan {
            question,
            door,
            client,
        } => client::who_can(&client, &question, door.as_deref()).await,
        Command::Explain {
            principal,
            question,
            door,
            client,
        } => client::explain(&client, &principal, &question, door.as_deref()).await,
        Command::Policies { client } => client::policies(&client).await,
        Command::Token(TokenCommand::List { client }) => client::token_list(&client).await,
        Command::Silence(SilenceCommand::Add {
            matchers,
            duration,
            comment,
            client,
        }) => client::silence_add(&client, &matchers.join(", "), &duration, &comment).await,
        Command::Silence(SilenceCommand::List { all, client }) => {
            client::silence_list(&client, all).await
        }
        Command::Silence(SilenceCommand::Expire { id, client }) => {
            client::silence_expire(&client, &id).await
        }
        Command::Ack {
            id,
            comment,
            client,
        } => client::ack(&client, &id, &comment).await,
        Command::Token(TokenCommand::Revoke { id, client }) => {
            client::token_revoke(&client, id).await
        }
        Command::Audit(AuditCommand::Push { spool, client }) => {
            client::audit_push(&client, &spool.unwrap_or_else(offline::default_spool)).await
        }
        Command::Migrate { storage, output } => storage::migrate(&storage, output).await,
        Command::Store(StoreCommand::Copy { from, to, output }) => {
            storage::copy(&from, &to, output).await
        }
        Command::Audit(AuditCommand::Verify(source)) => client::audit_verify(&source).await,
        Command::Report(ReportCommand {
            diff: Some(ReportDiff::Diff { old, new }),
            ..
        }) => client::report_diff(&old, &new),
        Command::Report(ReportCommand { diff: None, args }) => client::report(&args).await,
        Command::Audit(AuditCommand::Export { since, source }) => {
            client::audit_export(&source, since.as_deref()).await
        }
    }
}
