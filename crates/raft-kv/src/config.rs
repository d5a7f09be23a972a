//! Node configuration: flags, `RAFT_KV_*` environment variables and a TOML file carry the same
//! settings. Precedence: a flag, then its environment variable, then the file, then what the
//! data directory remembers from the node's first start, then the default.

use std::fs;
use std::path::Path;
use std::path::PathBuf;

use raft_store::Backend;
use serde::Deserialize;
use serde::Serialize;

use crate::Error;
use crate::limits::Limits;

/// The settings of a node as given (every one optional until resolved).
#[derive(Debug, Clone, Default, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeArgs {
    /// TOML file with any of the settings below (keys: `id`, `http`, `raft`, `grpc`, `join`,
    /// `data_dir`, `backend`, `snapshot_after`, `max_request_bytes`, `max_key_bytes`,
    /// `max_append_bytes`).
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
}

/// A node's resolved settings.
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

/// What a data directory remembers of its node (`node.toml`), written once the node has bound
/// its addresses, so a restart needs only `--data-dir`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
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
pub fn identity_path(data_dir: &Path) -> PathBuf {
    data_dir.join("node.toml")
}

/// Read the identity a data directory remembers, if any.
pub fn read_identity(data_dir: &Path) -> Result<Option<Identity>, Error> {
    let path = identity_path(data_dir);
    match fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text)
            .map(Some)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Io(format!("reading {}", path.display()), e)),
    }
}

/// Write the identity file (through a temporary file and a rename, then a sync of the
/// directory, so a crash leaves the old file or the new one).
pub fn write_identity(data_dir: &Path, identity: &Identity) -> Result<(), Error> {
    let path = identity_path(data_dir);
    let tmp = data_dir.join("node.toml.tmp");
    let text = toml::to_string(identity).map_err(|e| Error::Config(e.to_string()))?;
    let io = |what: &str, e| Error::Io(format!("{what} {}", path.display()), e);
    let file = fs::File::create(&tmp).map_err(|e| io("creating", e))?;
    std::io::Write::write_all(&mut &file, text.as_bytes()).map_err(|e| io("writing", e))?;
    file.sync_all().map_err(|e| io("syncing", e))?;
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
                    .map_err(|e| Error::Config(format!("config file {}: {e}", path.display())))?
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
            .map_err(|e| Error::Config(format!("--backend {backend_name}: {e}")))?;
        let limits = Limits::resolve(
            args.max_request_bytes,
            args.max_key_bytes,
            args.max_append_bytes,
            backend,
        )
        .map_err(|e| Error::Config(e.to_string()))?;
        Ok(NodeConfig {
            id: args.id.unwrap_or(1),
            http: args.http.unwrap_or_else(|| "127.0.0.1:8080".to_string()),
            raft: args.raft.unwrap_or_else(|| "127.0.0.1:9080".to_string()),
            grpc: args.grpc,
            join: args.join,
            data_dir,
            backend,
            snapshot_after: args.snapshot_after.unwrap_or(10_000).max(1),
            limits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

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
}
