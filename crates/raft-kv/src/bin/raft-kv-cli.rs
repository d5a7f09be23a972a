//! `raft-kv-cli`: put, get, delete, update, status, join and leave against a raft-kv cluster,
//! over HTTP or gRPC, failing over between the nodes it is given.

#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use raft_kv::client::ClientError;
use raft_kv::client::ClientTls;
use raft_kv::client::KvClient;
use raft_kv::grpc::GrpcClient;
use raft_kv::grpc::proto;

/// A command-line client of a raft-kv cluster.
#[derive(Parser)]
#[command(name = "raft-kv-cli", version, about)]
struct Cli {
    /// Node addresses (`host:port` of their HTTP API, or of their gRPC API with `--grpc`),
    /// comma-separated; the client fails over between them.
    #[arg(
        long,
        env = "RAFT_KV_NODES",
        default_value = "127.0.0.1:21001,127.0.0.1:21002,127.0.0.1:21003"
    )]
    nodes: String,
    /// Speak gRPC instead of HTTP.
    #[arg(long)]
    grpc: bool,
    /// Seconds a request may take, and (four times that) the retries on other nodes.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
    /// Bearer token sent with every request (a node with an auth file needs one).
    #[arg(long, env = "RAFT_KV_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// CA certificate (PEM) of a TLS cluster: speak TLS and trust the nodes it signed.
    #[arg(long, env = "RAFT_KV_CACERT")]
    cacert: Option<PathBuf>,
    /// Client certificate (PEM) to present, with --key: a node's own, for `join`.
    #[arg(long, requires = "key", requires = "cacert")]
    cert: Option<PathBuf>,
    /// The private key (PEM) of --cert.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Set KEY to VALUE.
    Put { key: String, value: String },
    /// Print the value of KEY (exit code 1 if it is not set).
    Get {
        key: String,
        /// Read the answering node's state without asking the leader.
        #[arg(long)]
        stale: bool,
    },
    /// Remove KEY.
    Delete { key: String },
    /// Set KEY to VALUE only if it exists (exit code 1 if it does not).
    Update { key: String, value: String },
    /// Print the answering node's status.
    Status,
    /// Add node ID with its addresses to the cluster.
    Join {
        id: u64,
        #[arg(long)]
        raft: String,
        #[arg(long)]
        http: String,
        #[arg(long, default_value = "")]
        grpc: String,
    },
    /// Remove node ID from the cluster.
    Leave { id: u64 },
}

/// What a command printed and how it ended.
enum Outcome {
    Done(Vec<u8>),
    Missing(String),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let nodes: Vec<String> = cli
        .nodes
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    let timeout = Duration::from_secs(cli.timeout.max(1));
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("raft-kv-cli: starting the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let tls = match &cli.cacert {
        Some(ca) => {
            let identity = cli.cert.as_deref().zip(cli.key.as_deref());
            match ClientTls::from_files(ca, identity) {
                Ok(tls) => Some(tls),
                Err(e) => {
                    eprintln!("raft-kv-cli: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        None => None,
    };
    let result = runtime.block_on(async {
        if cli.grpc {
            let mut client = GrpcClient::new(nodes, timeout, timeout * 4);
            if let Some(token) = &cli.token {
                client = client
                    .with_token(token)
                    .map_err(|s| format!("--token: {}", s.message()))?;
            }
            if let Some(tls) = tls {
                client = client.with_tls(tls);
            }
            grpc(cli.command, client)
                .await
                .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
        } else {
            let mut client = KvClient::new(nodes, timeout, timeout * 4);
            if let Some(token) = cli.token {
                client = client.with_token(token);
            }
            if let Some(tls) = &tls {
                client = client.with_tls(tls).map_err(|e| e.to_string())?;
            }
            http(cli.command, client).await.map_err(|e| e.to_string())
        }
    });
    match result {
        Ok(Outcome::Done(out)) => {
            let mut stdout = std::io::stdout();
            let _ = stdout.write_all(&out);
            let _ = stdout.write_all(b"\n");
            ExitCode::SUCCESS
        }
        Ok(Outcome::Missing(what)) => {
            eprintln!("raft-kv-cli: {what}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("raft-kv-cli: {e}");
            ExitCode::from(2)
        }
    }
}

fn line(text: impl Into<String>) -> Outcome {
    Outcome::Done(text.into().into_bytes())
}

async fn http(command: Command, client: KvClient) -> Result<Outcome, ClientError> {
    Ok(match command {
        Command::Put { key, value } => line(format!("ok index={}", client.put(&[(&key, &value)]).await?)),
        Command::Get { key, stale } => match client.get(&key, stale).await? {
            Some(value) => Outcome::Done(value),
            None => Outcome::Missing(format!("key {key:?} not found")),
        },
        Command::Delete { key } => line(format!("ok existed={}", client.delete(&key).await?)),
        Command::Update { key, value } => {
            if client.update(&key, &value).await? {
                line("ok")
            } else {
                Outcome::Missing(format!(
                    "key {key:?} not found; update only changes an existing key"
                ))
            }
        }
        Command::Status => line(client.status().await?.to_string()),
        Command::Join { id, raft, http, grpc } => {
            line(client.join(id, &raft, &http, &grpc).await?.to_string())
        }
        Command::Leave { id } => line(client.leave(id).await?.to_string()),
    })
}

async fn grpc(command: Command, client: GrpcClient) -> Result<Outcome, tonic::Status> {
    let missing = |s: &tonic::Status| s.code() == tonic::Code::NotFound;
    Ok(match command {
        Command::Put { key, value } => {
            let m = proto::SaveEntriesRequest {
                id: key,
                secrets: value.into_bytes(),
            };
            let r = client
                .call(|c| {
                    let m = m.clone();
                    Box::pin(async move { c.save_entries(m).await })
                })
                .await?;
            line(format!("ok index={}", r.index))
        }
        Command::Get { key, stale } => {
            let m = proto::GetEntriesRequest { id: key, stale };
            match client
                .call(|c| {
                    let m = m.clone();
                    Box::pin(async move { c.get_entries(m).await })
                })
                .await
            {
                Ok(r) => Outcome::Done(r.data),
                Err(s) if missing(&s) => Outcome::Missing(s.message().to_string()),
                Err(s) => return Err(s),
            }
        }
        Command::Delete { key } => {
            let m = proto::DeleteEntriesRequest { id: key };
            let r = client
                .call(|c| {
                    let m = m.clone();
                    Box::pin(async move { c.delete_entries(m).await })
                })
                .await?;
            line(format!("ok existed={}", r.existed))
        }
        Command::Update { key, value } => {
            let m = proto::UpdateEntriesRequest {
                id: key,
                secrets: value.into_bytes(),
            };
            match client
                .call(|c| {
                    let m = m.clone();
                    Box::pin(async move { c.update_entries(m).await })
                })
                .await
            {
                Ok(_) => line("ok"),
                Err(s) if missing(&s) => Outcome::Missing(s.message().to_string()),
                Err(s) => return Err(s),
            }
        }
        Command::Status => {
            let r = client
                .call(|c| Box::pin(async move { c.status(proto::StatusRequest {}).await }))
                .await?;
            line(format!("{r:?}"))
        }
        Command::Join { id, raft, http, grpc } => {
            let m = proto::JoinRequest { id, raft, http, grpc };
            let r = client
                .call(|c| {
                    let m = m.clone();
                    Box::pin(async move { c.join(m).await })
                })
                .await?;
            line(format!("ok index={}", r.index))
        }
        Command::Leave { id } => {
            let r = client
                .call(|c| Box::pin(async move { c.leave(proto::LeaveRequest { id, force: false }).await }))
                .await?;
            line(format!("ok index={}", r.index))
        }
    })
}
