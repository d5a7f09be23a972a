//! Node configuration: flags, `RAFT_KV_*` environment variables and a TOML file carry the same
//! settings. Precedence: a flag, then its environment variable, then the file, then what the
//! data directory remembers from the node's first start, then the default.

use std::fs;
use std::path::Path;
use std::path::PathBuf;

use raft_store::Backend;
use raft_store::StoreConfig;
use serde::Deserialize;
use serde::Serialize;

use crate::Error;
use crate::auth::Auth;
use crate::auth::Secret;
use crate::conn_limits::ConnLimits;
use crate::conn_limits::Timeout;
use crate::limits::Limits;
use crate::tls::TlsFiles;

pub use crate::limits::DEFAULT_MAX_KEY_BYTES;
pub use crate::limits::DEFAULT_MAX_REQUEST_BYTES;

/// The settings of a node as given (every one optional until resolved).
#[derive(Debug, Clone, Default, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeArgs {
    /// TOML file with any of the settings below (keys: `id`, `http`, `raft`, `grpc`, `join`,
    /// `data_dir`, `backend`, `snapshot_after`, `max_request_bytes`, `max_key_bytes`,
    /// `max_append_bytes`, `header_timeout`, `body_timeout`, `idle_timeout`, `max_connections`,
    /// `max_raft_connections`, `tls_cert`, `tls_key`, `tls_ca`, `auth_file`, `join_token`,
    /// `insecure`), and tables `[store.redb]`, `[store.lmdb]`, `[store.rocksdb]`, `[store.sled]`
    /// of the backends' options (see [`StoreSection`]).
    #[arg(long, env = "RAFT_KV_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Node id, unique in the cluster (default 1).
    #[arg(long, env = "RAFT_KV_ID")]
    pub id: Option<u64>,
    /// Address of the client HTTP API (default 127.0.0.1:8080; port 0 picks a free port).
    #[arg(long, env = "RAFT_KV_HTTP")]
    pub http: Option<String>,
    /// Address of the raft endpoint for other nodes (default 127.0.0.1:9080; port 0 picks a
    /// free port).
    #[arg(long, env = "RAFT_KV_RAFT")]
    pub raft: Option<String>,
    /// Address of the gRPC API (off unless given; port 0 picks a free port).
    #[arg(long, env = "RAFT_KV_GRPC")]
    pub grpc: Option<String>,
    /// HTTP address of any member of a running cluster to join. Without it, a node with an
    /// empty data directory starts a new single-node cluster.
    #[arg(long, env = "RAFT_KV_JOIN")]
    pub join: Option<String>,
    /// Directory of the node's store, snapshots and identity (default ./raft-kv-data).
    #[arg(long, env = "RAFT_KV_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Storage engine: redb, lmdb, rocksdb or sled (default redb).
    #[arg(long, env = "RAFT_KV_BACKEND")]
    pub backend: Option<String>,
    /// Build a snapshot (and purge the log before it) every this many applied entries
    /// (default 10000).
    #[arg(long, env = "RAFT_KV_SNAPSHOT_AFTER")]
    pub snapshot_after: Option<u64>,
    /// The largest client request in bytes, as logged (the encoded request; default 1048576).
    /// Larger writes are refused with 413 / `RESOURCE_EXHAUSTED` before they are proposed.
    #[arg(long, env = "RAFT_KV_MAX_REQUEST_BYTES")]
    pub max_request_bytes: Option<usize>,
    /// The longest key in UTF-8 bytes (default 4096; on LMDB at most and by default 503).
    #[arg(long, env = "RAFT_KV_MAX_KEY_BYTES")]
    pub max_key_bytes: Option<usize>,
    /// The largest append-entries message sent to a follower in bytes (default 16 MiB, and at
    /// least the request limit plus 64 KiB); larger batches are sent in parts.
    #[arg(long, env = "RAFT_KV_MAX_APPEND_BYTES")]
    pub max_append_bytes: Option<usize>,
    /// Time for a request head to arrive from its first byte, e.g. `10s` (the default) or
    /// `500ms`; a late head is answered with 408 and its connection closed.
    #[arg(long, env = "RAFT_KV_HEADER_TIMEOUT")]
    pub header_timeout: Option<Timeout>,
    /// The longest wait for the next bytes of a request body (default 30s): a stalled body
    /// closes its HTTP connection (a gRPC call fails); a slow but steady one is never cut.
    #[arg(long, env = "RAFT_KV_BODY_TIMEOUT")]
    pub body_timeout: Option<Timeout>,
    /// How long a connection with no request in progress stays open after its last answer, or
    /// after its start if it sends nothing (default 60s), on every port.
    #[arg(long, env = "RAFT_KV_IDLE_TIMEOUT")]
    pub idle_timeout: Option<Timeout>,
    /// The most connections the HTTP API holds, and the gRPC API each (default 256). At the cap
    /// a new connection closes the longest-idle one, or gets 503 if every one is busy.
    #[arg(long, env = "RAFT_KV_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// The most connections the raft port holds (default 128), as `--max-connections` does.
    #[arg(long, env = "RAFT_KV_MAX_RAFT_CONNECTIONS")]
    pub max_raft_connections: Option<usize>,
    /// The node's certificate chain (PEM), signed by the cluster CA and naming the node with
    /// the SAN URI `raft-kv://node/<id>`. With `--tls-key` and `--tls-ca`, every port speaks
    /// TLS and the raft port accepts only peers with a certificate of the cluster CA.
    #[arg(long, env = "RAFT_KV_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of `--tls-cert` (PEM).
    #[arg(long, env = "RAFT_KV_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// The cluster CA's certificate (PEM): the peers and joining nodes it signed are trusted.
    #[arg(long, env = "RAFT_KV_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// File of bearer tokens, one a line: `read <token>` or `write <token>` (`#` starts a
    /// comment line). With it every client API call needs `Authorization: Bearer <token>`.
    #[arg(long, env = "RAFT_KV_AUTH_FILE")]
    pub auth_file: Option<PathBuf>,
    /// The token (of the write role) this node sends with its `--join` request.
    #[arg(long, env = "RAFT_KV_JOIN_TOKEN", hide_env_values = true)]
    pub join_token: Option<String>,
    /// Allow binding a non-loopback address without TLS: all traffic is then unauthenticated
    /// plaintext (a warning says so on stderr at start).
    #[arg(
        long,
        env = "RAFT_KV_INSECURE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub insecure: Option<bool>,
    /// The storage engines' options (config file only: table `[store]`).
    #[arg(skip)]
    pub store: Option<StoreSection>,
}

/// The `[store]` table of the config file: a table per backend of that backend's options, each
/// field optional with the backend's default (the fields of `RedbOptions`, `LmdbOptions`,
/// `RocksOptions` and `SledOptions`, by name). Only the chosen backend's table is used; a
/// misspelt option, or a backend this build left out, is refused when the file is read.
///
/// ```toml
/// backend = "rocksdb"
///
/// [store.rocksdb]
/// write_buffer_size = 134217728
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSection {
    /// Options of the redb backend.
    #[cfg(feature = "redb")]
    pub redb: raft_store::RedbOptions,
    /// Options of the LMDB backend.
    #[cfg(feature = "lmdb")]
    pub lmdb: raft_store::LmdbOptions,
    /// Options of the RocksDB backend.
    #[cfg(feature = "rocksdb")]
    pub rocksdb: raft_store::RocksOptions,
    /// Options of the sled backend.
    #[cfg(feature = "sled")]
    pub sled: raft_store::SledOptions,
}

impl StoreSection {
    /// The store to open: `backend` at `path`, with these options.
    pub fn store_config(&self, backend: Backend, path: PathBuf) -> StoreConfig {
        let mut config = StoreConfig::new(backend, path);
        #[cfg(feature = "redb")]
        {
            config.redb = self.redb;
        }
        #[cfg(feature = "lmdb")]
        {
            config.lmdb = self.lmdb;
        }
        #[cfg(feature = "rocksdb")]
        {
            config.rocksdb = self.rocksdb.clone();
        }
        #[cfg(feature = "sled")]
        {
            config.sled = self.sled;
        }
        config
    }
}

/// A node's resolved settings.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Node id.
    pub id: u64,
    /// Client API address to bind.
    pub http: String,
    /// Raft endpoint address to bind.
    pub raft: String,
    /// gRPC API address to bind, if any.
    pub grpc: Option<String>,
    /// A member to join through, if any.
    pub join: Option<String>,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The storage engine.
    pub backend: Backend,
    /// Applied entries between snapshots.
    pub snapshot_after: u64,
    /// The size limits.
    pub limits: Limits,
    /// The connection limits of every listener.
    pub connections: ConnLimits,
    /// TLS on every port, if configured.
    pub tls: Option<TlsFiles>,
    /// The tokens of the client API, if any (without, the API is open).
    pub auth: Option<Auth>,
    /// The token sent with the join request.
    pub join_token: Option<Secret>,
    /// Whether a non-loopback address may be bound without TLS.
    pub insecure: bool,
    /// The storage engines' options.
    pub store: StoreSection,
}

/// What a data directory remembers of its node (`node.toml`), written once the node has bound
/// its addresses, so a restart needs only `--data-dir`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Identity {
    /// Node id.
    pub id: u64,
    /// The client API address actually bound.
    pub http: String,
    /// The raft address actually bound.
    pub raft: String,
    /// The gRPC address actually bound, if the node serves gRPC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<String>,
    /// The storage engine.
    pub backend: String,
}

/// The identity file in a data directory.
pub(crate) fn identity_path(data_dir: &Path) -> PathBuf {
    data_dir.join("node.toml")
}

/// Read the identity a data directory remembers, if any.
pub(crate) fn read_identity(data_dir: &Path) -> Result<Option<Identity>, Error> {
    let path = identity_path(data_dir);
    match fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text)
            .map(Some)
            .map_err(|e| Error::setup(path.display().to_string(), e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Io(format!("reading {}", path.display()), e)),
    }
}

/// Write the identity file (through a temporary file and a rename, then a sync of the
/// directory, so a crash leaves the old file or the new one).
pub(crate) fn write_identity(data_dir: &Path, identity: &Identity) -> Result<(), Error> {
    let path = identity_path(data_dir);
    let tmp = data_dir.join("node.toml.tmp");
    let text = toml::to_string(identity).map_err(|e| Error::Config(e.to_string()))?;
    let io = |what: &str, e| Error::Io(format!("{what} {}", path.display()), e);
    // Written whole to a temporary file first; one that could not be (a full disk) is removed,
    // not left beside the record.
    let written = fs::File::create(&tmp)
        .and_then(|file| {
            std::io::Write::write_all(&mut &file, text.as_bytes())?;
            file.sync_all()
        })
        .map_err(|e| Error::Io(format!("writing {}", tmp.display()), e));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, &path).map_err(|e| io("renaming into", e))?;
    fs::File::open(data_dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("syncing the directory of", e))
}

impl NodeArgs {
    /// Fill what is unset from `other`.
    fn or(self, other: NodeArgs) -> NodeArgs {
        NodeArgs {
            config: self.config.or(other.config),
            id: self.id.or(other.id),
            http: self.http.or(other.http),
            raft: self.raft.or(other.raft),
            grpc: self.grpc.or(other.grpc),
            join: self.join.or(other.join),
            data_dir: self.data_dir.or(other.data_dir),
            backend: self.backend.or(other.backend),
            snapshot_after: self.snapshot_after.or(other.snapshot_after),
            max_request_bytes: self.max_request_bytes.or(other.max_request_bytes),
            max_key_bytes: self.max_key_bytes.or(other.max_key_bytes),
            max_append_bytes: self.max_append_bytes.or(other.max_append_bytes),
            header_timeout: self.header_timeout.or(other.header_timeout),
            body_timeout: self.body_timeout.or(other.body_timeout),
            idle_timeout: self.idle_timeout.or(other.idle_timeout),
            max_connections: self.max_connections.or(other.max_connections),
            max_raft_connections: self.max_raft_connections.or(other.max_raft_connections),
            tls_cert: self.tls_cert.or(other.tls_cert),
            tls_key: self.tls_key.or(other.tls_key),
            tls_ca: self.tls_ca.or(other.tls_ca),
            auth_file: self.auth_file.or(other.auth_file),
            join_token: self.join_token.or(other.join_token),
            insecure: self.insecure.or(other.insecure),
            store: self.store.or(other.store),
        }
    }

    /// Resolve flags and environment (already merged by clap), the config file and the data
    /// directory's identity into the node's settings.
    pub fn resolve(self) -> Result<NodeConfig, Error> {
        let file = match &self.config {
            Some(path) => {
                let text = fs::read_to_string(path)
                    .map_err(|e| Error::Io(format!("reading the config file {}", path.display()), e))?;
                toml::from_str::<NodeArgs>(&text)
                    .map_err(|e| Error::setup(format!("config file {}", path.display()), e))?
            }
            None => NodeArgs::default(),
        };
        let args = self.or(file);
        let data_dir = args
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("raft-kv-data"));
        let args = match read_identity(&data_dir)? {
            Some(identity) => {
                if let Some(id) = args.id.filter(|&id| id != identity.id) {
                    return Err(Error::Config(format!(
                        "--id {id}, but data directory {} belongs to node {}",
                        data_dir.display(),
                        identity.id
                    )));
                }
                args.or(NodeArgs {
                    id: Some(identity.id),
                    http: Some(identity.http),
                    raft: Some(identity.raft),
                    grpc: identity.grpc,
                    backend: Some(identity.backend),
                    ..NodeArgs::default()
                })
            }
            None => args,
        };
        let backend_name = args.backend.unwrap_or_else(|| "redb".to_string());
        let backend = backend_name
            .parse::<Backend>()
            .map_err(|e| Error::Config(backend_error(&backend_name, &e)))?;
        let limits = Limits::resolve(
            args.max_request_bytes,
            args.max_key_bytes,
            args.max_append_bytes,
            backend,
        )
        .map_err(|e| Error::Config(e.to_string()))?;
        let connections = ConnLimits::resolve(
            args.header_timeout,
            args.body_timeout,
            args.idle_timeout,
            args.max_connections,
            args.max_raft_connections,
        )
        .map_err(Error::Config)?;
        let tls = match (args.tls_cert, args.tls_key, args.tls_ca) {
            (None, None, None) => None,
            (Some(cert), Some(key), Some(ca)) => Some(TlsFiles { cert, key, ca }),
            (cert, key, ca) => {
                let missing: Vec<&str> = [
                    (cert.is_none(), "--tls-cert"),
                    (key.is_none(), "--tls-key"),
                    (ca.is_none(), "--tls-ca"),
                ]
                .into_iter()
                .filter_map(|(missing, name)| missing.then_some(name))
                .collect();
                return Err(Error::Config(format!(
                    "TLS needs --tls-cert, --tls-key and --tls-ca together; {} missing",
                    missing.join(" and ")
                )));
            }
        };
        let auth = args.auth_file.as_deref().map(Auth::load).transpose()?;
        let config = NodeConfig {
            id: args.id.unwrap_or(1),
            http: args.http.unwrap_or_else(|| "127.0.0.1:8080".to_string()),
            raft: args.raft.unwrap_or_else(|| "127.0.0.1:9080".to_string()),
            grpc: args.grpc,
            join: args.join,
            data_dir,
            backend,
            snapshot_after: args.snapshot_after.unwrap_or(10_000).max(1),
            limits,
            connections,
            tls,
            auth,
            join_token: args.join_token.map(Secret),
            insecure: args.insecure.unwrap_or(false),
            store: args.store.unwrap_or_default(),
        };
        config.check_exposure()?;
        Ok(config)
    }
}

impl NodeConfig {
    /// Without TLS, refuse any address but loopback unless `insecure`: on a network, plaintext
    /// raft traffic lets anyone who reaches the port depose the leader or inject entries.
    fn check_exposure(&self) -> Result<(), Error> {
        if self.tls.is_some() || self.insecure {
            return Ok(());
        }
        let addresses = [
            ("--http", Some(&self.http)),
            ("--raft", Some(&self.raft)),
            ("--grpc", self.grpc.as_ref()),
        ];
        for (flag, addr) in addresses {
            if let Some(addr) = addr.filter(|a| !is_loopback(a)) {
                return Err(Error::Config(format!(
                    "{flag} {addr} is not a loopback address and TLS is off: anyone who reaches it \
                     could read and change the data and send raft messages unauthenticated. \
                     Configure TLS (--tls-cert, --tls-key, --tls-ca), bind to 127.0.0.1 or ::1, \
                     or pass --insecure to serve unauthenticated plaintext anyway"
                )));
            }
        }
        Ok(())
    }

    /// Whether the node serves plaintext on the network because of `--insecure` (it says so
    /// on stderr at start).
    pub fn plaintext_exposed(&self) -> bool {
        self.tls.is_none() && self.insecure
    }
}

/// Whether `addr` (`host:port`) is a loopback address: 127.0.0.0/8, `::1` or `localhost`.
pub(crate) fn is_loopback(addr: &str) -> bool {
    if let Ok(socket) = addr.parse::<std::net::SocketAddr>() {
        return socket.ip().is_loopback();
    }
    addr.rsplit_once(':')
        .is_some_and(|(host, _)| host.eq_ignore_ascii_case("localhost"))
}

/// What `--backend NAME` says when NAME cannot be used: a backend this build of raft-kv left
/// out names the raft-kv feature that builds it in.
fn backend_error(name: &str, e: &raft_store::BackendError) -> String {
    match e {
        raft_store::BackendError::NotCompiled { name: backend } => format!(
            "--backend {name}: this raft-kv was built without the {backend} backend; build it with `--features {backend}` (or `--features all`), e.g. `cargo install --path crates/raft-kv --features {backend}`"
        ),
        other => format!("--backend {name}: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "lmdb")]
    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.conf");
        fs::write(
            &file,
            format!(
                "id = 7\nhttp = \"127.0.0.1:7000\"\nbackend = \"lmdb\"\ndata_dir = {:?}\n",
                dir.path().join("data")
            ),
        )
        .unwrap();
        let config = NodeArgs {
            config: Some(file),
            http: Some("127.0.0.1:7001".into()),
            ..NodeArgs::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(config.id, 7);
        assert_eq!(config.http, "127.0.0.1:7001");
        assert_eq!(config.raft, "127.0.0.1:9080");
        assert_eq!(config.backend, Backend::Lmdb);
        assert_eq!(config.connections, ConnLimits::default());
    }

    #[test]
    fn connection_limits_from_the_file_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.conf");
        fs::write(
            &file,
            format!(
                "header_timeout = \"1500ms\"\nbody_timeout = 7\nidle_timeout = \"2m\"\n\
                 max_connections = 9\nmax_raft_connections = 5\ndata_dir = {:?}\n",
                dir.path().join("data")
            ),
        )
        .unwrap();
        let config = NodeArgs {
            config: Some(file.clone()),
            max_connections: Some(10),
            ..NodeArgs::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(
            config.connections,
            ConnLimits {
                header_timeout: std::time::Duration::from_millis(1500),
                body_timeout: std::time::Duration::from_secs(7),
                idle_timeout: std::time::Duration::from_secs(120),
                max_connections: 10,
                max_raft_connections: 5,
            }
        );
        fs::write(&file, "idle_timeout = \"soon\"\n").unwrap();
        let err = NodeArgs {
            config: Some(file),
            ..NodeArgs::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("expected a duration"), "{err}");
    }

    #[cfg(feature = "sled")]
    #[test]
    fn the_data_dir_identity_fills_what_a_restart_leaves_out() {
        let dir = tempfile::tempdir().unwrap();
        let identity = Identity {
            id: 3,
            http: "127.0.0.1:4001".into(),
            raft: "127.0.0.1:4002".into(),
            grpc: None,
            backend: "sled".into(),
        };
        write_identity(dir.path(), &identity).unwrap();
        let config = NodeArgs {
            data_dir: Some(dir.path().to_path_buf()),
            ..NodeArgs::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(
            (
                config.id,
                config.http.as_str(),
                config.raft.as_str(),
                config.backend
            ),
            (3, "127.0.0.1:4001", "127.0.0.1:4002", Backend::Sled)
        );
        let err = NodeArgs {
            data_dir: Some(dir.path().to_path_buf()),
            id: Some(4),
            ..NodeArgs::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("belongs to node 3"), "{err}");
    }

    #[test]
    fn a_backend_left_out_of_the_build_names_the_feature() {
        let said = backend_error(
            "RocksDB",
            &raft_store::BackendError::NotCompiled {
                name: "rocksdb".into(),
            },
        );
        assert!(said.contains("--features rocksdb"), "{said}");
        #[cfg(not(feature = "rocksdb"))]
        {
            let dir = tempfile::tempdir().unwrap();
            let err = NodeArgs {
                data_dir: Some(dir.path().join("d")),
                backend: Some("rocksdb".into()),
                ..NodeArgs::default()
            }
            .resolve()
            .unwrap_err();
            assert!(err.to_string().contains("--features rocksdb"), "{err}");
        }
    }

    #[test]
    fn unknown_keys_and_backends_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        fs::write(&file, "idd = 1\n").unwrap();
        let err = NodeArgs {
            config: Some(file),
            ..NodeArgs::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("idd"), "{err}");
        let err = NodeArgs {
            data_dir: Some(dir.path().join("d")),
            backend: Some("leveldb".into()),
            ..NodeArgs::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("leveldb"), "{err}");
    }

    #[test]
    fn exposure_tls_and_tokens_are_checked_when_resolved() {
        let dir = tempfile::tempdir().unwrap();
        let at = |http: &str| NodeArgs {
            data_dir: Some(dir.path().join("d")),
            http: Some(http.into()),
            ..NodeArgs::default()
        };
        for loopback in ["127.0.0.1:0", "127.8.9.1:80", "[::1]:0", "localhost:8080"] {
            assert!(at(loopback).resolve().is_ok(), "{loopback}");
        }
        let err = at("0.0.0.0:8080").resolve().unwrap_err().to_string();
        assert!(
            err.contains("--http 0.0.0.0:8080 is not a loopback address") && err.contains("--insecure"),
            "{err}"
        );
        let insecure = NodeArgs {
            insecure: Some(true),
            ..at("0.0.0.0:8080")
        }
        .resolve()
        .unwrap();
        assert!(insecure.plaintext_exposed());
        let err = NodeArgs {
            tls_cert: Some("node.pem".into()),
            ..at("0.0.0.0:8080")
        }
        .resolve()
        .unwrap_err()
        .to_string();
        assert!(err.contains("--tls-key and --tls-ca missing"), "{err}");
        let tokens = dir.path().join("tokens");
        fs::write(&tokens, "# ok\nread 0123456789abcdef\nwrite\n").unwrap();
        let err = NodeArgs {
            auth_file: Some(tokens),
            ..at("127.0.0.1:0")
        }
        .resolve()
        .unwrap_err()
        .to_string();
        assert!(err.contains("tokens: line 3: expected"), "{err}");
    }
}
