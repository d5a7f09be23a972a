//! Starting a node: open the store, start raft, bind both servers, bootstrap or join.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::Config;
use openraft::SnapshotPolicy;
use raft_store::StoreConfig;
use tokio::net::TcpListener;

use crate::Error;
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
}

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
        config
            .validate()
            .map_err(|e| Error::Config(format!("raft config: {e}")))?,
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
        let store = StoreConfig::new(config.backend, config.data_dir.join("store"));
        let (log, sm) = raft_store::open_with_kv::<crate::types::TypeConfig>(&store)
            .map_err(|e| Error::Store(format!("opening {}", config.data_dir.display()), e))?;
        let reader = sm.reader();
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
        .map_err(|e| Error::Raft(format!("starting raft: {e}")))?;
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
        });
        let servers = serve(
            &state,
            conns,
            tls.as_ref(),
            raft_listener,
            http_listener,
            grpc_listener,
        );
        bootstrap_or_join(config, &state, tls.as_ref()).await?;
        Ok(Node { state, servers })
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
        self.state
            .raft
            .shutdown()
            .await
            .map_err(|e| Error::Raft(format!("shutting raft down: {e}")))
    }
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
        .map_err(|e| Error::Raft(format!("reading the raft state: {e}")))?;
    if !initialized {
        match &config.join {
            None => raft
                .initialize(BTreeMap::from([(config.id, info.clone())]))
                .await
                .map_err(|e| Error::Raft(format!("bootstrapping a new cluster: {e}")))?,
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
        eprintln!(
            "raft-kv: WARNING: --insecure without TLS: the client API, gRPC and raft traffic of node {} are unauthenticated plaintext; anyone who reaches these ports can read and change the data and the cluster",
            config.id
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
    builder
        .build()
        .map_err(|e| Error::Config(format!("HTTP client: {e}")))
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
) -> Vec<tokio::task::JoinHandle<()>> {
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
        servers.push(tokio::spawn(async move {
            let router = crate::grpc::server_builder(conns)
                .layer(crate::conn_limits::busy_layer())
                .layer(crate::grpc::oversize_layer(limits))
                .add_service(service);
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
                eprintln!("raft-kv: gRPC server stopped: {e}");
            }
        }));
    }
    servers
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
                eprintln!("raft-kv: node {} joined through {member}", request.id);
                return;
            }
            Ok(r) => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                eprintln!("raft-kv: join through {member} (attempt {attempt}): HTTP {status}: {body}");
            }
            Err(e) => eprintln!("raft-kv: join through {member} (attempt {attempt}): {e}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
