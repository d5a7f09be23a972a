//! Starting a node: open the store, start raft, bind both servers, bootstrap or join.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::Config;
use openraft::SnapshotPolicy;
use tokio::net::TcpListener;

use crate::Error;
use crate::FatalCause;
use crate::StoreFailure;
use crate::auth::Secret;
use crate::config::Identity;
use crate::config::NodeConfig;
use crate::conn_limits::ConnLimits;
use crate::conn_limits::Refuse;
use crate::conn_limits::Tracker;
use crate::network::HttpNetwork;
use crate::serve::ListenerTls;
use crate::server::Counters;
use crate::server::FORWARD_TIMEOUT;
use crate::server::JoinRequest;
use crate::server::NodeState;
use crate::server::api_router;
use crate::server::raft_router;
use crate::tls::NodeTls;
use crate::types::NodeInfo;
use crate::types::Raft;

/// A running node.
pub struct Node {
    /// Shared state of the request handlers.
    pub state: Arc<NodeState>,
    servers: Vec<tokio::task::JoinHandle<()>>,
    fatal: tokio::sync::watch::Receiver<Option<FatalCause>>,
}

/// How often the watcher looks at the store's fatal error between raft's metrics changes.
const WATCH_EVERY: Duration = Duration::from_millis(200);

/// The raft configuration of a node.
pub fn raft_config(snapshot_after: u64) -> Result<Arc<Config>, Error> {
    let config = Config {
        cluster_name: "raft-kv".to_string(),
        heartbeat_interval: 200,
        election_timeout_min: 800,
        election_timeout_max: 1600,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(snapshot_after),
        // Keep some log behind a snapshot so a briefly lagging follower catches up from the
        // log, not from a whole snapshot.
        max_in_snapshot_log_to_keep: snapshot_after.min(1000),
        // A node coming back after a crash asks before it campaigns, so it does not depose a
        // leader that is doing fine (and bump everyone's term) just because it missed
        // heartbeats while it was down.
        enable_pre_vote: Some(true),
        ..Config::default()
    };
    Ok(Arc::new(
        config.validate().map_err(|e| Error::setup("raft config", e))?,
    ))
}

async fn bind(addr: &str, what: &str) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Io(format!("binding the {what} address {addr}"), e))
}

impl Node {
    /// Start a node with `config`: returns once both servers listen and the node has
    /// bootstrapped, or has started joining.
    pub async fn start(config: &NodeConfig) -> Result<Node, Error> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            Error::Io(
                format!("creating the data directory {}", config.data_dir.display()),
                e,
            )
        })?;
        let tls = load_tls(config)?;
        let (log, sm) = open_store(config)?;
        let reader = sm.reader();
        let counters = sm.stats();
        let conns = config.connections;
        check_files(config);
        let raft_listener = bind(&config.raft, "raft").await?;
        let http_listener = bind(&config.http, "HTTP").await?;
        let grpc_listener = match &config.grpc {
            Some(addr) => Some(bind(addr, "gRPC").await?),
            None => None,
        };
        let local = |l: &TcpListener, what: &str| {
            l.local_addr()
                .map(|a| a.to_string())
                .map_err(|e| Error::Io(format!("reading the bound {what} address"), e))
        };
        let info = NodeInfo {
            raft: local(&raft_listener, "raft")?,
            http: local(&http_listener, "HTTP")?,
            grpc: match &grpc_listener {
                Some(l) => local(l, "gRPC")?,
                None => String::new(),
            },
        };
        crate::config::write_identity(
            &config.data_dir,
            &Identity {
                id: config.id,
                http: info.http.clone(),
                raft: info.raft.clone(),
                grpc: grpc_listener.as_ref().map(|_| info.grpc.clone()),
                backend: config.backend.name().to_string(),
            },
        )?;
        let raft = Raft::new(
            config.id,
            raft_config(config.snapshot_after)?,
            HttpNetwork::new(
                config.id,
                config.limits.max_append_bytes,
                tls.as_ref().map(|t| &t.client),
            )?,
            log,
            sm,
        )
        .await
        .map_err(|e| Error::raft("starting raft", e))?;
        let state = Arc::new(NodeState {
            id: config.id,
            info: info.clone(),
            raft: raft.clone(),
            reader,
            backend: config.backend.name(),
            data_dir: config.data_dir.clone(),
            forward: http_client(
                tls.as_ref(),
                reqwest::Client::builder()
                    .timeout(FORWARD_TIMEOUT)
                    // Drop an idle connection to the leader before the leader's idle timeout
                    // closes it, so a forward is never sent on a connection being closed.
                    .pool_idle_timeout(conns.idle_timeout / 2),
            )?,
            counters: Counters::default(),
            limits: config.limits,
            auth: config.auth.clone(),
            tls: tls.as_ref().map(|t| t.client.clone()),
            stats: counters,
            fatal: std::sync::OnceLock::new(),
            leader_seen: std::sync::Mutex::new(None),
        });
        let (fatal_tx, fatal) = tokio::sync::watch::channel(None);
        let mut servers = serve(
            &state,
            conns,
            tls.as_ref(),
            raft_listener,
            http_listener,
            grpc_listener,
        )?;
        servers.push(tokio::spawn(watch(state.clone(), fatal_tx)));
        bootstrap_or_join(config, &state, tls.as_ref()).await?;
        Ok(Node {
            state,
            servers,
            fatal,
        })
    }

    /// Resolves with the cause once a fatal error stopped the node: its store failed a write
    /// or an apply, or raft stopped. By then `/status` and `/health` show the cause and every
    /// client request is refused; the caller should exit (non-zero) after a short drain, so a
    /// supervisor restarts the node on what its disk holds.
    pub async fn fatal(&self) -> FatalCause {
        let mut fatal = self.fatal.clone();
        let cause = match fatal.wait_for(Option::is_some).await {
            Ok(cause) => cause.clone(),
            Err(_) => None,
        };
        match cause {
            Some(cause) => cause,
            // The watcher is gone only when the node shuts down: never resolve.
            None => std::future::pending().await,
        }
    }

    /// The addresses the node listens on.
    pub fn info(&self) -> &NodeInfo {
        &self.state.info
    }

    /// Stop serving and shut raft down (the store is synced and closed when dropped).
    pub async fn shutdown(self) -> Result<(), Error> {
        for server in &self.servers {
            server.abort();
        }
        tracing::info!(target: "raft_kv::node", node = self.state.id, "shutting raft down");
        self.state
            .raft
            .shutdown()
            .await
            .map_err(|e| Error::raft("shutting raft down", e))
    }
}

/// Raise the open file limit to what the connection caps need, or warn that it is too low.
fn check_files(config: &NodeConfig) {
    let conns = config.connections;
    crate::conn_limits::check_file_limit(
        conns.files_needed(config.grpc.is_some()),
        &format!(
            "--max-connections {} (HTTP{}) and --max-raft-connections {}",
            conns.max_connections,
            if config.grpc.is_some() { " and gRPC" } else { "" },
            conns.max_raft_connections
        ),
    );
}

/// A node with an empty store bootstraps a new cluster, or (with `--join`) asks a member to
/// add it, in the background until it is done.
async fn bootstrap_or_join(
    config: &NodeConfig,
    state: &Arc<NodeState>,
    tls: Option<&NodeTls>,
) -> Result<(), Error> {
    let raft = &state.raft;
    let info = &state.info;
    let initialized = raft
        .is_initialized()
        .await
        .map_err(|e| Error::raft("reading the raft state", e))?;
    if !initialized {
        match &config.join {
            None => raft
                .initialize(BTreeMap::from([(config.id, info.clone())]))
                .await
                .map_err(|e| Error::raft("bootstrapping a new cluster", e))?,
            Some(member) => {
                let request = JoinRequest {
                    id: config.id,
                    raft: info.raft.clone(),
                    http: info.http.clone(),
                    grpc: info.grpc.clone(),
                };
                let client = http_client(tls, reqwest::Client::builder())?;
                let url = format!("{}://{member}/join", state.scheme());
                let token = config.join_token.clone();
                tokio::spawn(join_until_done(client, url, token, request));
            }
        }
    }
    Ok(())
}

/// The node's TLS, loaded before anything opens so a bad certificate is a configuration error
/// at once; without TLS and with `--insecure`, the warning that traffic is plaintext.
fn load_tls(config: &NodeConfig) -> Result<Option<NodeTls>, Error> {
    if config.plaintext_exposed() {
        tracing::warn!(
            target: "raft_kv::node",
            node = config.id,
            "--insecure without TLS: the client API, gRPC and raft traffic of this node are unauthenticated plaintext; anyone who reaches these ports can read and change the data and the cluster"
        );
    }
    config
        .tls
        .as_ref()
        .map(|files| NodeTls::load(files, config.id))
        .transpose()
}

/// An HTTP client of the cluster from `builder`: over TLS with the node's certificate if the
/// node has TLS.
fn http_client(tls: Option<&NodeTls>, builder: reqwest::ClientBuilder) -> Result<reqwest::Client, Error> {
    let builder = match tls {
        Some(tls) => tls.client.reqwest(builder),
        None => builder,
    };
    builder.build().map_err(|e| Error::setup("HTTP client", e))
}

/// Serve the raft endpoint, the HTTP API and (if bound) the gRPC API, each on its own task
/// with its own connection cap, over TLS if `tls` is given.
fn serve(
    state: &Arc<NodeState>,
    conns: ConnLimits,
    tls: Option<&NodeTls>,
    raft_listener: TcpListener,
    http_listener: TcpListener,
    grpc_listener: Option<TcpListener>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, Error> {
    let mut servers = Vec::new();
    let heads = state.limits.head_limits();
    let on = |acceptor: &tokio_rustls::TlsAcceptor, port| ListenerTls {
        acceptor: acceptor.clone(),
        port,
    };
    for (listener, router, what, max, tls) in [
        (
            raft_listener,
            raft_router(state.clone()),
            format!("raft {}", state.info.raft),
            (conns.max_raft_connections, "max_raft_connections"),
            tls.map(|t| on(&t.raft, "raft")),
        ),
        (
            http_listener,
            api_router(state.clone()),
            format!("API {}", state.info.http),
            (conns.max_connections, "max_connections"),
            tls.map(|t| on(&t.api, "HTTP")),
        ),
    ] {
        // A 503 written in plaintext before the handshake reads as a protocol error to a TLS
        // client, so a TLS listener over its cap closes the connection instead.
        let refuse = if tls.is_some() {
            Refuse::Close
        } else {
            Refuse::Http
        };
        let tracker = Tracker::new(what, conns, max, refuse);
        servers.push(tokio::spawn(crate::serve::serve(
            listener, router, heads, tracker, tls,
        )));
    }
    if let Some(listener) = grpc_listener {
        let service = crate::grpc::service(state.clone());
        let limits = state.limits;
        let tracker = Tracker::new(
            format!("gRPC {}", state.info.grpc),
            conns,
            (conns.max_connections, "max_connections"),
            Refuse::Close,
        );
        let acceptor = tls.map(|t| t.grpc.clone());
        let (reporter, health) = crate::grpc::health_service();
        let reflection =
            crate::grpc::reflection_service().map_err(|e| Error::setup("the gRPC reflection service", e))?;
        servers.push(tokio::spawn(crate::grpc::report_health(state.clone(), reporter)));
        servers.push(tokio::spawn(async move {
            let router = crate::grpc::server_builder(conns)
                .layer(crate::conn_limits::busy_layer())
                .layer(crate::grpc::oversize_layer(limits))
                .add_service(service)
                .add_service(health)
                .add_service(reflection);
            let stopped = match acceptor {
                None => {
                    router
                        .serve_with_incoming(crate::conn_limits::incoming(listener, tracker))
                        .await
                }
                Some(acceptor) => {
                    router
                        .serve_with_incoming(crate::grpc::tls_incoming(listener, tracker, acceptor))
                        .await
                }
            };
            if let Err(e) = stopped {
                tracing::error!(target: "raft_kv::node", error = %e, "the gRPC server stopped");
            }
        }));
    }
    Ok(servers)
}

/// Ask `member` to add this node, again and again until it answers yes (the cluster may be
/// electing a leader, or the member may not be up yet).
async fn join_until_done(client: reqwest::Client, url: String, token: Option<Secret>, request: JoinRequest) {
    let member = url.trim_end_matches("/join");
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let mut post = client.post(&url).timeout(Duration::from_secs(60)).json(&request);
        if let Some(Secret(token)) = &token {
            post = post.bearer_auth(token);
        }
        let answer = post.send().await;
        match answer {
            Ok(r) if r.status().is_success() => {
                tracing::info!(target: "raft_kv::membership", node = request.id, member, "joined the cluster");
                return;
            }
            Ok(r) => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                tracing::warn!(target: "raft_kv::membership", member, attempt, status = status.as_u16(), answer = %body, "join refused; trying again");
            }
            Err(e) => {
                tracing::warn!(target: "raft_kv::membership", member, attempt, error = %e, "join failed; trying again");
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What the watcher remembers of raft's metrics, to log what changed.
#[derive(Default, PartialEq)]
struct Seen {
    leader: Option<u64>,
    term: u64,
    state: Option<openraft::ServerState>,
    membership: Option<String>,
    snapshot: Option<u64>,
}

/// Log what changes in raft's metrics (leader, term, role, membership, snapshot), and watch
/// for a fatal error: the store's (a failed durable write or apply) or raft stopping. On the
/// first one, record it in the node's state (`/status`, `/health`), log it and send it to
/// [`Node::fatal`]; then stop watching.
async fn watch(state: Arc<NodeState>, fatal: tokio::sync::watch::Sender<Option<FatalCause>>) {
    use openraft::async_runtime::WatchReceiver as _;
    let mut metrics = state.raft.metrics();
    let mut seen = Seen::default();
    let node = state.id;
    let mut core_gone = false;
    let mut was_serving = false;
    loop {
        let m = metrics.borrow_watched().clone();
        let membership = m.membership_config.membership();
        let now = Seen {
            leader: m.current_leader,
            term: m.current_term,
            state: Some(m.state),
            membership: Some(format!(
                "voters {:?} learners {:?}",
                membership.voter_ids().collect::<Vec<_>>(),
                membership.learner_ids().collect::<Vec<_>>()
            )),
            snapshot: m.snapshot.as_ref().map(|l| l.index),
        };
        if now.leader != seen.leader || now.term != seen.term {
            if let Some(leader) = now.leader {
                tracing::info!(target: "raft_kv::raft", node, leader, term = now.term, "leader changed");
            } else {
                tracing::warn!(target: "raft_kv::raft", node, term = now.term, "no leader known");
            }
        }
        if now.state != seen.state {
            tracing::info!(target: "raft_kv::raft", node, role = ?m.state, term = now.term, "role changed");
        }
        if now.membership != seen.membership {
            tracing::info!(
                target: "raft_kv::raft",
                node,
                membership = now.membership.as_deref().unwrap_or_default(),
                log_index = m.membership_config.log_id().as_ref().map(|l| l.index),
                "membership changed"
            );
        }
        if now.snapshot != seen.snapshot && now.snapshot.is_some() {
            tracing::info!(target: "raft_kv::raft", node, snapshot_index = now.snapshot, "snapshot taken over");
        }
        seen = now;
        let health = crate::server::Health::of(&state);
        let serving = matches!(health, crate::server::Health::Serving);
        if serving != was_serving {
            match &health {
                crate::server::Health::NoLeader(why) => {
                    tracing::warn!(target: "raft_kv::raft", node, reason = %why, "not serving");
                }
                crate::server::Health::Serving => tracing::info!(target: "raft_kv::raft", node, "serving"),
                // Logged below with its cause.
                crate::server::Health::Fatal(_) => {}
            }
            was_serving = serving;
        }
        let cause = if let Some(store) = StoreFailure::of(&state.stats) {
            Some(FatalCause::Store(store))
        } else if core_gone {
            Some(FatalCause::CoreGone)
        } else {
            FatalCause::of_raft(&m)
        };
        if let Some(cause) = cause {
            let _ = state.fatal.set(cause.clone());
            tracing::error!(
                target: "raft_kv::node",
                node,
                cause = %cause,
                "fatal: the node stops serving and exits; restart it (it recovers from what its disk holds) once the cause is fixed"
            );
            let _ = fatal.send(Some(cause));
            return;
        }
        // A metrics change, or the next look at the store's fatal error. The metrics channel
        // closes when raft's core task ends without a shutdown: it panicked, and every call
        // of raft fails from then on while its last metrics still read as healthy.
        if let Ok(Err(_)) = tokio::time::timeout(WATCH_EVERY, metrics.changed()).await {
            core_gone = true;
        }
    }
}

/// The node's log store and its key-value state machine, sharing one engine.
type Stores = (
    raft_store::SharedStore<crate::types::TypeConfig, crate::types::StoreCodec>,
    raft_store::KvStore<crate::types::TypeConfig, crate::types::StoreCodec>,
);

/// The node's log store and state machine, opened on its backend with the `[store]` options.
fn open_store(config: &NodeConfig) -> Result<Stores, Error> {
    let store = config
        .store
        .store_config(config.backend, config.data_dir.join("store"));
    raft_store::open_with_kv_checked::<crate::types::TypeConfig, crate::types::StoreCodec>(
        &store,
        raft_store::EntryCheck::equal(),
    )
    .map_err(|e| Error::Store(format!("opening {}", config.data_dir.display()), Box::new(e)))
}
