//! Switchboard's application service: the one place every front door calls.
//! It resolves the action, validates parameters, records the execution,
//! queues it, runs it with the right runner under the concurrency limits,
//! streams its output to every watcher and records how it ended.
//!
//! It does not speak HTTP or chat (the doors translate), and it writes
//! nothing to the database except through the `Store` trait. Identities,
//! authorization and approvals are decided here too (`authz`, `approvals`),
//! so every door gets the same answers.

pub mod alerts;
mod approvals;
pub mod attention;
mod audit;
pub mod audit_forward;
pub mod authz;
pub mod chat;
pub mod cluster;
mod dispatch;
pub mod doors;
pub mod hooks;
pub mod inventory_sources;
pub mod ldap;
mod live;
mod metrics;
pub mod oidc;
pub mod report;
pub mod runner;
pub mod schedules;
pub mod targets;
pub mod tokens;
pub mod workflow;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use switchboard_core::audit::{AuditEvent, AuditRecord};
use switchboard_core::policy::Verb;
use switchboard_core::{
    Action, Catalog, CatalogErrors, Execution, ExecutionId, ExecutionStatus, Origin, OutputChunk,
    ParamError, Principal, RawParams, Timestamp, ValidatedParams,
};
use switchboard_store::{CatalogLoad, ExecutionFilter, Store, StoreError};
use tokio::sync::{Notify, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

pub use approvals::ApprovalOutcome;
pub use authz::Identity;
pub use hooks::HookError;
pub use live::LiveEvent;
pub use runner::{RunEvent, RunLimits, RunOutcome};
pub use switchboard_store::{AuditVerification, verify_audit};
pub use workflow::{StepView, UnitView, WorkflowView};

/// How the engine runs things.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This node's name, recorded on every execution it runs.
    pub node: String,
    /// Most executions running at once on this node.
    pub max_concurrency: usize,
    pub limits: RunLimits,
    /// Where this node makes its private folder for run result files.
    pub temp_dir: PathBuf,
    /// How often buffered output is written to the store.
    pub output_flush: Duration,
    /// SHA-256 of the bootstrap token of the `admin` principal, if one is set.
    pub admin_token_hash: Option<String>,
    /// Sign-in with OIDC bearer tokens, when configured.
    pub oidc: Option<oidc::OidcConfig>,
    /// Where stored audit records are also sent.
    pub audit_forward: Vec<audit_forward::AuditSink>,
    /// Principals and groups declared in the configuration.
    pub directory: switchboard_core::directory::Directory,
    /// Principals and groups from LDAP, for those not declared.
    pub ldap: Option<ldap::LdapConfig>,
    /// How the chat front door converses.
    pub chat: chat::ChatSettings,
    /// How runners reach hosts (SSH) and Prometheus.
    pub runners: runner::RunnerSettings,
    /// How alerts are kept.
    pub alerts: alerts::AlertSettings,
    /// How long leases last (the leader's, and running executions').
    pub cluster: cluster::ClusterSettings,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            node: "local".to_owned(),
            max_concurrency: 16,
            limits: RunLimits::default(),
            temp_dir: std::env::temp_dir(),
            output_flush: Duration::from_millis(100),
            admin_token_hash: None,
            oidc: None,
            audit_forward: Vec::new(),
            directory: switchboard_core::directory::Directory::default(),
            ldap: None,
            chat: chat::ChatSettings::default(),
            runners: runner::RunnerSettings::default(),
            alerts: alerts::AlertSettings::default(),
            cluster: cluster::ClusterSettings::default(),
        }
    }
}

/// Why the engine refused or failed a request.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("unknown action `{name}`{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownAction {
        name: String,
        suggestion: Option<String>,
    },
    #[error("invalid parameters: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    InvalidParams(Vec<ParamError>),
    #[error("no execution {0}")]
    NotFound(ExecutionId),
    #[error("execution {id} is already {status}")]
    AlreadyFinished {
        id: ExecutionId,
        status: ExecutionStatus,
    },
    #[error("{0}")]
    Catalog(CatalogErrors),
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("cannot create a private folder in `{}`: {source}", .dir.display())]
    TempDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Audit(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("no active token {0}")]
    TokenNotFound(i64),
    #[error(
        "unknown principal `{0}`: declare it under [[users]] or [[service_accounts]] in the configuration"
    )]
    UnknownPrincipal(Principal),
    #[error("{0}")]
    Invalid(String),
    #[error("execution {id} is not awaiting approval (it is {status})")]
    NotAwaitingApproval {
        id: ExecutionId,
        status: ExecutionStatus,
    },
    #[error("{by} already answered for execution {id}")]
    AlreadyAnswered { id: ExecutionId, by: Principal },
    /// The directory could not answer; the request is denied.
    #[error("the user directory cannot be reached, so the request is denied: {0}")]
    DirectoryUnavailable(String),
    #[error("no silence `{0}`")]
    UnknownSilence(String),
    #[error("{0}")]
    UnknownAlert(String),
    /// A workflow is not in the state the request needs (not running, not
    /// waiting for an answer, still running).
    #[error("{0}")]
    WorkflowState(String),
    #[error("{0}")]
    Internal(String),
}

/// A request to run an action, as a door received it.
#[derive(Debug, Clone)]
pub struct SubmitRequest {
    pub action: String,
    pub params: RawParams,
    pub requester: Identity,
    pub origin: Origin,
}

/// The result of a catalog reload.
#[derive(Debug, Clone)]
pub struct ReloadReport {
    pub version: switchboard_core::catalog::CatalogVersion,
    pub actions: usize,
    pub changed: bool,
}

/// Where what a watcher receives ends.
#[derive(Debug, Clone)]
pub enum WatchEvent {
    Output(OutputChunk),
    /// The execution's final state; nothing follows.
    Finished(Box<Execution>),
}

pub(crate) struct Pending {
    action: Arc<Action>,
    params: ValidatedParams,
    /// The hosts an `ssh` action runs on.
    hosts: Vec<switchboard_core::inventory::Host>,
    /// Whether its `execution.requested` record is stored; it must be
    /// before the run starts. `None` for executions recovered at start-up.
    audited: Option<audit::Stored>,
    /// Who asked, with the groups they had then (a workflow's steps are
    /// authorized for them). `None` for executions recovered at start-up.
    requester: Option<Identity>,
}

/// What links an execution to the workflow whose step it is.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub(crate) parent: ExecutionId,
    /// The step, item and attempt: `restart#2`.
    pub(crate) step: String,
}

struct Running {
    action: switchboard_core::ActionName,
    cancel: watch::Sender<bool>,
    /// A workflow's driver, which waits for its steps rather than working:
    /// it takes no slot of `max_concurrency`.
    workflow: bool,
}

#[derive(Default)]
struct State {
    pending: HashMap<ExecutionId, Pending>,
    running: HashMap<ExecutionId, Running>,
}

struct Shared {
    store: Arc<dyn Store>,
    config: EngineConfig,
    /// This process's private folder for `$SB_RESULT` files.
    run_dir: PathBuf,
    catalog_dir: PathBuf,
    catalog: RwLock<Arc<Catalog>>,
    last_reload_error: Mutex<Option<String>>,
    state: Mutex<State>,
    /// Held shared while a submission records itself, exclusively while the
    /// dispatcher claims, so a claimed execution always finds its pending entry.
    claim_gate: tokio::sync::RwLock<()>,
    wake: Notify,
    /// Wakes the approval expiry timer when a new request is made.
    approval_wake: Notify,
    /// Wakes the schedules' timer when the catalog changes.
    schedules_wake: Notify,
    idle: Notify,
    accepting: AtomicBool,
    hub: live::LiveHub,
    audit: audit::AuditLog,
    oidc: Option<oidc::Oidc>,
    ldap: Option<ldap::LdapDirectory>,
    metrics: metrics::EngineMetrics,
    /// The inventory's dynamic sources and the merged inventory.
    inventory_sources: Arc<inventory_sources::Sources>,
    /// Alert groups and their timers.
    alerting: alerts::dispatcher::Dispatcher,
    /// The outlets of the chat platforms that run, by platform: alert
    /// notifications go through them.
    chat_outlets: RwLock<BTreeMap<String, Arc<dyn switchboard_core::chat::ChatOutlet>>>,
    /// The control channels of the workflows this node drives.
    workflows: Mutex<HashMap<ExecutionId, mpsc::Sender<workflow::Control>>>,
    /// This node's term as leader, if it leads.
    leader: cluster::Leadership,
    /// When this node last wrote each door's last event.
    door_events: doors::DoorEvents,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn catalog(&self) -> Arc<Catalog> {
        self.catalog
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The outlet of a chat platform that runs.
    fn chat_outlet(&self, platform: &str) -> Option<Arc<dyn switchboard_core::chat::ChatOutlet>> {
        self.chat_outlets
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(platform)
            .cloned()
    }
}

/// The automation service. Cheap to clone; all clones share one engine.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

impl Engine {
    /// Starts the engine: marks executions this node left `running` as
    /// `lost`, takes over the queue and begins dispatching.
    pub async fn start(
        store: Arc<dyn Store>,
        catalog: Catalog,
        config: EngineConfig,
    ) -> Result<Self, EngineError> {
        let lost = store
            .mark_lost(
                &config.node,
                "the node stopped while it was running",
                Timestamp::now(),
            )
            .await?;
        if !lost.is_empty() {
            tracing::warn!(count = lost.len(), ids = ?lost, "executions left running by a previous process marked lost");
        }
        let run_dir = runner::private_dir(
            &config.temp_dir,
            &format!(
                "switchboard-{}-{}-{}",
                config.node,
                std::process::id(),
                Timestamp::now().micros()
            ),
        )
        .map_err(|source| EngineError::TempDir {
            dir: config.temp_dir.clone(),
            source,
        })?;
        let metrics = metrics::EngineMetrics::new();
        metrics
            .catalog_actions
            .set(i64::try_from(catalog.len()).unwrap_or(i64::MAX));
        let forwarder = audit_forward::Forwarder::start(config.audit_forward.clone());
        let audit_log = audit::AuditLog::start(store.clone(), forwarder);
        let oidc_verifier = config.oidc.clone().map(oidc::Oidc::new);
        let ldap_directory = config.ldap.clone().map(ldap::LdapDirectory::new);
        let inventory_sources =
            inventory_sources::Sources::new(catalog.root.clone(), catalog.inventory.sources());
        let shared = Arc::new(Shared {
            store,
            run_dir,
            catalog_dir: catalog.root.clone(),
            catalog: RwLock::new(Arc::new(catalog)),
            last_reload_error: Mutex::new(None),
            config,
            state: Mutex::new(State::default()),
            claim_gate: tokio::sync::RwLock::new(()),
            wake: Notify::new(),
            approval_wake: Notify::new(),
            schedules_wake: Notify::new(),
            idle: Notify::new(),
            accepting: AtomicBool::new(true),
            hub: live::LiveHub::default(),
            audit: audit_log,
            oidc: oidc_verifier,
            ldap: ldap_directory,
            metrics,
            inventory_sources,
            alerting: alerts::dispatcher::Dispatcher::default(),
            chat_outlets: RwLock::new(BTreeMap::new()),
            workflows: Mutex::new(HashMap::new()),
            leader: watch::channel(None).0,
            door_events: doors::DoorEvents::default(),
        });
        let engine = Self { shared };
        for id in lost {
            let detail = serde_json::json!({"reason": "the node stopped while it was running", "node": engine.node()});
            engine
                .audit_system("execution.lost", &format!("execution:{id}"), "lost", detail)
                .await;
        }
        engine.record_catalog_load().await;
        engine.recover_queue().await?;
        engine.resume_workflows().await?;
        // Leases first: a single node leads from its first beat on, before
        // the singleton duties below look.
        cluster::beat(&engine.shared).await;
        tokio::spawn(cluster::run(engine.shared.clone()));
        tokio::spawn(dispatch::run(engine.shared.clone()));
        engine.shared.inventory_sources.start();
        alerts::dispatcher::prepare(&engine.shared).await;
        tokio::spawn(alerts::dispatcher::run(engine.shared.clone()));
        tokio::spawn(alerts::delivery::run(engine.shared.clone()));
        tokio::spawn(approvals::expiry_timer(
            engine.clone(),
            engine.shared.clone(),
        ));
        tokio::spawn(schedules::run(engine.clone()));
        Ok(engine)
    }

    /// Queued executions from before a restart: resume those that can be,
    /// and end the others with the reason.
    async fn recover_queue(&self) -> Result<(), EngineError> {
        let catalog = self.catalog();
        let mut before = None;
        loop {
            let filter = ExecutionFilter {
                status: Some(ExecutionStatus::Queued),
                before,
                limit: 500,
                ..Default::default()
            };
            let page = self.shared.store.list_executions(&filter).await?;
            let Some(last) = page.last() else { break };
            before = Some(last.id);
            for e in page {
                let why_not = match catalog.action(e.action.as_str()) {
                    None => Err("its action is no longer in the catalog".to_owned()),
                    Some(action) => resume_params(action, &e.params, &self.inventory())
                        .map(|(params, hosts)| (action.clone(), params, hosts)),
                };
                match why_not {
                    Ok((action, params, hosts)) => {
                        self.shared.state().pending.insert(
                            e.id,
                            Pending {
                                action,
                                params,
                                hosts,
                                audited: None,
                                requester: None,
                            },
                        );
                        self.shared.hub.open(e.id);
                    }
                    Err(reason) => {
                        let reason = format!("not resumed after a restart: {reason}");
                        self.shared
                            .store
                            .end_waiting(e.id, ExecutionStatus::Lost, &reason, Timestamp::now())
                            .await?;
                        let detail = serde_json::json!({"action": e.action, "reason": reason});
                        self.audit_system(
                            "execution.lost",
                            &format!("execution:{}", e.id),
                            "lost",
                            detail,
                        )
                        .await;
                    }
                }
            }
        }
        Ok(())
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// Makes a chat platform's outlet available to the alert receivers
    /// that post to its rooms (`[[receivers.chat_configs]]`).
    pub fn register_chat_outlet(
        &self,
        platform: &str,
        outlet: Arc<dyn switchboard_core::chat::ChatOutlet>,
    ) {
        self.shared
            .chat_outlets
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(platform.to_owned(), outlet);
        // Deliveries that waited for it are due now.
        self.shared.alerting.deliveries.notify_one();
    }

    /// The address people reach Switchboard at (`[chat] public_url`), if set.
    pub fn public_url(&self) -> Option<&str> {
        self.shared.config.chat.public_url.as_deref()
    }

    pub fn node(&self) -> &str {
        &self.shared.config.node
    }

    /// The catalog being served.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.shared.catalog()
    }

    /// Why the last reload failed, if it did (the previous catalog still serves).
    pub fn last_reload_error(&self) -> Option<String> {
        self.shared
            .last_reload_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Validates and queues an execution; returns it as stored.
    pub async fn submit(&self, req: SubmitRequest) -> Result<Execution, EngineError> {
        self.submit_linked(req, None, None).await
    }

    /// [`Engine::submit`], for a step of a workflow (`link`) or a workflow
    /// that starts from a stored state (`seed`, a re-run).
    pub(crate) async fn submit_linked(
        &self,
        req: SubmitRequest,
        link: Option<Link>,
        seed: Option<serde_json::Value>,
    ) -> Result<Execution, EngineError> {
        if !self.shared.accepting.load(Ordering::Acquire) {
            return Err(EngineError::ShuttingDown);
        }
        let catalog = self.catalog();
        let Some(action) = catalog.action(&req.action).cloned() else {
            return Err(EngineError::UnknownAction {
                suggestion: catalog.suggest(&req.action).map(str::to_owned),
                name: req.action,
            });
        };
        let mut params = ValidatedParams::validate(&action.params, &req.params)
            .map_err(EngineError::InvalidParams)?;
        let targets = targets::resolve(&action, &mut params, &self.inventory())
            .map_err(EngineError::InvalidParams)?;
        let masked = params.to_masked_json(&action.params);
        let decision = self
            .authorize(
                &req.requester,
                &req.origin,
                Verb::Run,
                Some(&action),
                &targets.names,
                None,
            )
            .await?;
        // The action's own rule, else one a permitting policy demands.
        let approval = action.approval.clone().or(decision.approval);
        let now = Timestamp::now();
        let new = switchboard_store::NewExecution {
            action: action.name.clone(),
            params: masked,
            requester: req.requester.principal.clone(),
            origin: req.origin,
            status: if approval.is_some() {
                ExecutionStatus::AwaitingApproval
            } else {
                ExecutionStatus::Queued
            },
            created_at: now,
            approval_expires_at: approval.as_ref().map(|rule| now.after(rule.expires)),
            approval_rule: approval,
            parent: link.as_ref().map(|l| l.parent),
            step: link.as_ref().map(|l| l.step.clone()),
            node: Some(self.shared.config.node.clone()),
        };
        let (execution, stored) = {
            let _gate = self.shared.claim_gate.read().await;
            let execution = self.shared.store.insert_execution(&new).await?;
            if let Some(seed) = &seed {
                self.shared
                    .store
                    .save_workflow_state(execution.id, seed, now)
                    .await?;
            }
            let mut detail = serde_json::json!({"action": execution.action, "params": execution.params, "targets": targets.names, "approval": execution.approval_rule});
            if let Some(l) = &link {
                detail["workflow"] = serde_json::json!(l.parent);
                detail["step"] = serde_json::json!(l.step);
            }
            let event = AuditEvent {
                ts: execution.created_at,
                actor: execution.requester.clone(),
                origin: execution.origin.clone(),
                kind: "execution.requested".to_owned(),
                subject: format!("execution:{}", execution.id),
                outcome: execution.status.as_str().to_owned(),
                detail,
            };
            // The run waits for this record (see `dispatch::run_one`), so no
            // execution starts without it; the gate is not held meanwhile.
            let stored = self.shared.audit.enqueue(event).await;
            self.shared.hub.open(execution.id);
            let audited = Some(stored.clone());
            self.shared.state().pending.insert(
                execution.id,
                Pending {
                    action,
                    params,
                    hosts: targets.hosts,
                    audited,
                    requester: Some(req.requester.clone()),
                },
            );
            (execution, stored)
        };
        if execution.status == ExecutionStatus::AwaitingApproval {
            self.shared.approval_wake.notify_one();
        } else {
            self.shared.wake.notify_one();
        }
        if let Err(e) = audit::wait_stored(stored).await {
            // The run will not start; it ends `cancelled` saying why.
            return Err(EngineError::Audit(e));
        }
        self.shared.metrics.submitted.inc();
        tracing::info!(id = %execution.id, action = %execution.action, requester = %execution.requester, origin = %execution.origin, "execution queued");
        Ok(execution)
    }

    pub async fn get(&self, id: ExecutionId) -> Result<Execution, EngineError> {
        self.shared
            .store
            .get_execution(id)
            .await?
            .ok_or(EngineError::NotFound(id))
    }

    /// The files an execution produced (names, types, sizes).
    pub async fn artifacts(
        &self,
        id: ExecutionId,
    ) -> Result<Vec<switchboard_store::ArtifactInfo>, EngineError> {
        Ok(self.shared.store.artifacts(id).await?)
    }

    /// One file an execution produced.
    pub async fn artifact(
        &self,
        id: ExecutionId,
        name: &str,
    ) -> Result<Option<switchboard_core::Artifact>, EngineError> {
        Ok(self.shared.store.artifact(id, name).await?)
    }

    pub async fn list(&self, filter: &ExecutionFilter) -> Result<Vec<Execution>, EngineError> {
        Ok(self.shared.store.list_executions(filter).await?)
    }

    /// Stops an execution if `by` may cancel it: a waiting one ends at
    /// once, a running one gets SIGTERM (then SIGKILL) and this returns once
    /// it has ended.
    pub async fn cancel(
        &self,
        id: ExecutionId,
        by: &Identity,
        origin: &Origin,
    ) -> Result<Execution, EngineError> {
        let execution = self.get(id).await?;
        self.authorize_on_execution(by, origin, Verb::Cancel, &execution)
            .await?;
        self.cancel_unchecked(id, &by.principal, origin).await
    }

    /// Decides `verb` on an existing execution: against its action, its
    /// targets and its requester. Executions of actions no longer in the
    /// catalog are the business of admins only.
    pub(crate) async fn authorize_on_execution(
        &self,
        by: &Identity,
        origin: &Origin,
        verb: Verb,
        execution: &Execution,
    ) -> Result<(), EngineError> {
        let catalog = self.catalog();
        match catalog.action(execution.action.as_str()) {
            Some(action) => {
                let targets = targets::stored_names(action, &execution.params, &self.inventory());
                self.authorize(
                    by,
                    origin,
                    verb,
                    Some(action),
                    &targets,
                    Some(&execution.requester),
                )
                .await?;
            }
            None => {
                self.authorize(by, origin, Verb::Admin, None, &[], None)
                    .await?;
            }
        }
        Ok(())
    }

    async fn cancel_unchecked(
        &self,
        id: ExecutionId,
        by: &Principal,
        origin: &Origin,
    ) -> Result<Execution, EngineError> {
        let audit = |outcome: &str| {
            AuditEvent::now(
                by,
                origin,
                "execution.cancel",
                format!("execution:{id}"),
                outcome,
                serde_json::json!({}),
            )
        };
        {
            // Held across the store call, so the dispatcher cannot claim the
            // execution between "not running here" and "end it while waiting".
            let _gate = self.shared.claim_gate.read().await;
            let signalled = self
                .shared
                .state()
                .running
                .get(&id)
                .map(|r| r.cancel.send(true).is_ok());
            if signalled.is_none() {
                let reason = format!("cancelled by {by}");
                let ended = self
                    .shared
                    .store
                    .end_waiting(id, ExecutionStatus::Cancelled, &reason, Timestamp::now())
                    .await?;
                if ended {
                    self.shared.state().pending.remove(&id);
                    self.shared.hub.finish(id, ExecutionStatus::Cancelled);
                    let label = metrics::StatusLabel {
                        status: ExecutionStatus::Cancelled.as_str().to_owned(),
                    };
                    self.shared.metrics.finished.get_or_create(&label).inc();
                    tracing::info!(%id, %by, "queued execution cancelled");
                    self.record(audit("cancelled")).await;
                    return self.get(id).await;
                }
                let e = self.get(id).await?;
                if e.status.is_terminal() {
                    return Err(EngineError::AlreadyFinished {
                        id,
                        status: e.status,
                    });
                }
                // Running on another node: nothing to signal from here.
                return Ok(e);
            }
        }
        tracing::info!(%id, %by, "cancelling running execution");
        self.record(audit("signalled")).await;
        // Only the end matters here, not the output.
        let mut events = self.watch_from(id, i64::MAX);
        while let Some(ev) = tokio_stream::StreamExt::next(&mut events).await {
            if let WatchEvent::Finished(e) = ev {
                return Ok(*e);
            }
        }
        self.get(id).await
    }

    /// Every output chunk after `after` and then live ones, ending with the
    /// final state. Works for running and finished executions alike.
    pub fn watch(&self, id: ExecutionId) -> ReceiverStream<WatchEvent> {
        self.watch_from(id, 0)
    }

    pub fn watch_from(&self, id: ExecutionId, after: i64) -> ReceiverStream<WatchEvent> {
        let (tx, rx) = mpsc::channel(256);
        let shared = self.shared.clone();
        tokio::spawn(async move {
            if let Err(e) = follow(&shared, id, after, &tx).await {
                tracing::warn!(%id, error = %e, "watching an execution failed");
            }
        });
        ReceiverStream::new(rx)
    }

    /// Reloads the catalog from its folder. On failure the current catalog
    /// keeps serving and the errors are returned (and kept for `/readyz`).
    pub async fn reload_catalog(
        &self,
        by: &Principal,
        origin: &Origin,
    ) -> Result<ReloadReport, EngineError> {
        let dir = self.shared.catalog_dir.clone();
        let loaded = tokio::task::spawn_blocking(move || Catalog::load(&dir))
            .await
            .map_err(|e| {
                EngineError::Catalog(CatalogErrors(vec![switchboard_core::CatalogError {
                    file: PathBuf::new(),
                    line: None,
                    key: None,
                    message: format!("catalog loader crashed: {e}"),
                }]))
            })?;
        let label = |result: &str| metrics::ResultLabel {
            result: result.to_owned(),
        };
        match loaded {
            Ok(catalog) => {
                let old = self.catalog();
                let report = ReloadReport {
                    changed: old.version != catalog.version,
                    version: catalog.version.clone(),
                    actions: catalog.len(),
                };
                self.shared
                    .metrics
                    .catalog_actions
                    .set(i64::try_from(catalog.len()).unwrap_or(i64::MAX));
                *self
                    .shared
                    .catalog
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(catalog);
                self.shared
                    .inventory_sources
                    .configure(self.catalog().inventory.sources());
                self.shared.schedules_wake.notify_one();
                *self
                    .shared
                    .last_reload_error
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
                self.shared
                    .metrics
                    .catalog_reloads
                    .get_or_create(&label("ok"))
                    .inc();
                if report.changed {
                    self.record_catalog_load().await;
                }
                self.record(AuditEvent::now(
                    by,
                    origin,
                    "catalog.reloaded",
                    "catalog",
                    if report.changed {
                        "changed"
                    } else {
                        "unchanged"
                    },
                    serde_json::json!({"version": report.version, "actions": report.actions}),
                ))
                .await;
                tracing::info!(version = %report.version, actions = report.actions, changed = report.changed, "catalog reloaded");
                Ok(report)
            }
            Err(errors) => {
                *self
                    .shared
                    .last_reload_error
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(errors.to_string());
                self.shared
                    .metrics
                    .catalog_reloads
                    .get_or_create(&label("failed"))
                    .inc();
                tracing::error!(%errors, "catalog reload failed; still serving the previous catalog");
                self.record(AuditEvent::now(by, origin, "catalog.reloaded", "catalog", "failed", serde_json::json!({"errors": errors.0.len(), "first": errors.0.first().map(ToString::to_string)})))
                .await;
                Err(EngineError::Catalog(errors))
            }
        }
    }

    async fn record_catalog_load(&self) {
        let catalog = self.catalog();
        let load = CatalogLoad {
            hash: catalog.version.hash.clone(),
            git_commit: catalog.version.git_commit.clone(),
            actions: i64::try_from(catalog.len()).unwrap_or(i64::MAX),
            node: self.shared.config.node.clone(),
            loaded_at: Timestamp::now(),
        };
        if let Err(e) = self.shared.store.record_catalog_load(&load).await {
            tracing::warn!(error = %e, "could not record the catalog version");
        }
        let detail = serde_json::json!({"version": catalog.version, "actions": catalog.len(), "root": catalog.root});
        self.audit_system("catalog.loaded", "catalog", "ok", detail)
            .await;
    }

    /// Encodes the engine's metrics in the Prometheus text format.
    pub fn encode_metrics(&self, out: &mut String) -> std::fmt::Result {
        prometheus_client::encoding::text::encode_registry(out, &self.shared.metrics.registry)
    }

    /// Reads the queue depth from the store into its gauge (before a scrape).
    pub async fn refresh_queue_depth(&self) {
        match self.shared.store.queue_depth().await {
            Ok(n) => {
                self.shared.metrics.queue_depth.set(n);
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the queue depth"),
        }
    }

    pub fn running_count(&self) -> usize {
        self.shared.state().running.len()
    }

    /// Stops taking work, waits up to `drain` for running executions to end,
    /// then cancels what is left.
    pub async fn shutdown(&self, drain: Duration) {
        self.shared.accepting.store(false, Ordering::Release);
        self.shared.wake.notify_one();
        let deadline = tokio::time::Instant::now() + drain;
        loop {
            let idle = self.shared.idle.notified();
            if self.running_count() == 0 {
                let _ = std::fs::remove_dir_all(&self.shared.run_dir);
                return;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                break;
            }
        }
        let ids: Vec<ExecutionId> = self.shared.state().running.keys().copied().collect();
        tracing::warn!(
            count = ids.len(),
            "drain time is over; cancelling running executions"
        );
        for id in ids {
            let _ = self
                .cancel_unchecked(id, &Principal::system(), &Origin::system())
                .await;
        }
        let _ = std::fs::remove_dir_all(&self.shared.run_dir);
    }

    /// Appends to the audit log; a failure is logged (the writer has
    /// already retried), not returned, for events that report what happened.
    pub(crate) async fn record(&self, event: AuditEvent) {
        if let Err(e) = self.shared.audit.record(event).await {
            tracing::error!(error = %e, "an audit record was not stored");
        }
    }

    async fn audit_system(
        &self,
        kind: &str,
        subject: &str,
        outcome: &str,
        detail: serde_json::Value,
    ) {
        self.record(AuditEvent {
            ts: Timestamp::now(),
            actor: Principal::system(),
            origin: Origin::system(),
            kind: kind.to_owned(),
            subject: subject.to_owned(),
            outcome: outcome.to_owned(),
            detail,
        })
        .await;
    }

    /// Joins runs made offline (`run --local`) to the audit log, each once,
    /// keeping its own time and origin; the actor is who pushes them.
    /// Returns how many were new.
    pub async fn push_offline_runs(
        &self,
        runs: Vec<switchboard_core::offline::OfflineRun>,
        by: &Principal,
        door: &Origin,
    ) -> Result<usize, EngineError> {
        let mut added = 0;
        for run in runs {
            if !self
                .shared
                .store
                .register_offline_run(&run.id, by, Timestamp::now())
                .await?
            {
                continue;
            }
            let event = AuditEvent {
                ts: run.started_at,
                actor: by.clone(),
                origin: Origin::local(),
                kind: "execution.offline".to_owned(),
                subject: format!("offline:{}", run.id),
                outcome: run.status.as_str().to_owned(),
                detail: serde_json::json!({
                    "action": run.action,
                    "params": run.params,
                    "os_user": run.os_user,
                    "host": run.host,
                    "catalog_version": run.catalog_version,
                    "catalog_git_commit": run.catalog_git_commit,
                    "exit_code": run.exit_code,
                    "error": run.error,
                    "finished_at": run.finished_at,
                    "pushed_through": door,
                }),
            };
            self.shared
                .audit
                .record(event)
                .await
                .map_err(EngineError::Audit)?;
            added += 1;
        }
        Ok(added)
    }

    /// Audit records after `after` (and at or after `since`), in chain order.
    pub async fn audit_records(
        &self,
        after: i64,
        since: Option<Timestamp>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, EngineError> {
        Ok(self.shared.store.audit_records(after, since, limit).await?)
    }

    /// Verifies the whole audit chain.
    pub async fn verify_audit(&self) -> Result<AuditVerification, EngineError> {
        Ok(verify_audit(self.shared.store.as_ref()).await?)
    }
}

/// Re-validates the stored parameters of an execution queued before a restart.
/// The parameters of a stored execution, ready to run again, and the hosts
/// an `ssh` action's selector names in today's inventory.
pub(crate) fn resume_params(
    action: &Action,
    stored: &serde_json::Value,
    inventory: &switchboard_core::inventory::Inventory,
) -> Result<(ValidatedParams, Vec<switchboard_core::inventory::Host>), String> {
    let raw: RawParams = match stored {
        serde_json::Value::Object(map) => map.clone().into_iter().collect(),
        _ => return Err("its stored parameters are malformed".to_owned()),
    };
    if action
        .params
        .iter()
        .any(|p| p.is_secret() && raw.contains_key(&p.name))
    {
        return Err("secret parameters are never stored, so it cannot run again".to_owned());
    }
    // Stored durations are human text; validation reads them back as such.
    let no_longer_fit = |errors: Vec<switchboard_core::ParamError>| {
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        format!(
            "its parameters no longer fit the action: {}",
            shown.join("; ")
        )
    };
    let mut params = ValidatedParams::validate(&action.params, &raw).map_err(no_longer_fit)?;
    let targets = targets::resolve(action, &mut params, inventory).map_err(no_longer_fit)?;
    Ok((params, targets.hosts))
}

/// Waits until execution `id` changes on another node, as the database
/// tells (at most [`UNHEARD_POLL`], as a change may go unheard), or for
/// [`POLL`] where the database tells nothing.
async fn changed(
    changes: &mut Option<tokio::sync::broadcast::Receiver<ExecutionId>>,
    id: ExecutionId,
) {
    /// How often a watcher looks at the store where nothing tells it.
    const POLL: Duration = Duration::from_millis(250);
    /// How often it looks all the same where changes are heard.
    const UNHEARD_POLL: Duration = Duration::from_secs(2);
    use tokio::sync::broadcast::error::RecvError;
    let Some(rx) = changes else {
        return tokio::time::sleep(POLL).await;
    };
    let heard = async {
        loop {
            match rx.recv().await {
                Ok(changed) if changed != id => {}
                Ok(_) | Err(RecvError::Lagged(_)) => return true,
                Err(RecvError::Closed) => return false,
            }
        }
    };
    match tokio::time::timeout(UNHEARD_POLL, heard).await {
        Ok(true) | Err(_) => {}
        Ok(false) => {
            *changes = None;
            tokio::time::sleep(POLL).await;
        }
    }
}

async fn follow(
    shared: &Shared,
    id: ExecutionId,
    mut after: i64,
    tx: &mpsc::Sender<WatchEvent>,
) -> Result<(), EngineError> {
    const PAGE: u32 = 1000;
    // Heard before the store is read, so no change falls between.
    let mut changes = shared.store.execution_changes();
    loop {
        let live = shared.hub.subscribe(id);
        // Stored output first (everything older than what is live).
        loop {
            let page = shared.store.output(id, after, PAGE).await?;
            let n = page.len();
            for chunk in page {
                after = chunk.seq;
                if tx.send(WatchEvent::Output(chunk)).await.is_err() {
                    return Ok(());
                }
            }
            if n < PAGE as usize {
                break;
            }
        }
        let Some((mut rx, unflushed)) = live else {
            let e = shared
                .store
                .get_execution(id)
                .await?
                .ok_or(EngineError::NotFound(id))?;
            if e.status.is_terminal() {
                let _ = tx.send(WatchEvent::Finished(Box::new(e))).await;
                return Ok(());
            }
            // Active on another node or not yet claimed: look again when
            // it changes.
            changed(&mut changes, id).await;
            continue;
        };
        let start = after;
        for chunk in unflushed.into_iter().filter(|c| c.seq > start) {
            after = chunk.seq;
            if tx.send(WatchEvent::Output(chunk)).await.is_err() {
                return Ok(());
            }
        }
        loop {
            match rx.recv().await {
                Ok(LiveEvent::Output(chunk)) => {
                    if chunk.seq <= after {
                        continue;
                    }
                    after = chunk.seq;
                    if tx.send(WatchEvent::Output(chunk)).await.is_err() {
                        return Ok(());
                    }
                }
                Ok(LiveEvent::Finished(_))
                | Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    // The store has the rest and the final state.
                    break;
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
            }
        }
    }
}

/// Runs a catalog's action right here, with no store and no server: what
/// `switchboard run --local` uses. Host selectors resolve against the
/// catalog's inventory as in the daemon. Output events go to `events`.
pub async fn run_offline(
    catalog: &Catalog,
    action: &Action,
    mut params: ValidatedParams,
    limits: &RunLimits,
    settings: &runner::RunnerSettings,
    events: mpsc::Sender<RunEvent>,
    cancel: watch::Receiver<bool>,
) -> Result<RunOutcome, Vec<switchboard_core::ParamError>> {
    let targets = targets::resolve(action, &mut params, &catalog.inventory)?;
    let name = format!(
        "switchboard-local-{}-{}",
        std::process::id(),
        Timestamp::now().micros()
    );
    let run_dir = match runner::private_dir(&std::env::temp_dir(), &name) {
        Ok(d) => d,
        Err(e) => {
            return Ok(RunOutcome::failed(format!(
                "cannot create a private temporary folder: {e}"
            )));
        }
    };
    let job = runner::Job {
        catalog,
        inventory: &catalog.inventory,
        action,
        params: &params,
        hosts: &targets.hosts,
        execution_id: None,
        limits,
        settings,
        temp_dir: &run_dir,
    };
    let outcome = runner::run(job, events, cancel).await;
    let _ = std::fs::remove_dir_all(&run_dir);
    Ok(outcome)
}
