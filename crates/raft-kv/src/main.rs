//! The `raft-kv` binary: run a node (the default), `raft-kv bench` to drive a loopback
//! cluster and report its throughput and latency, or `raft-kv certs` to make throwaway TLS
//! certificates for a cluster.

#![forbid(unsafe_code)]

use clap::Parser;
use raft_kv::config::NodeArgs;

/// A replicated key-value server on openraft and raft-store.
#[derive(Parser)]
#[command(name = "raft-kv", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Log lines on stderr: `text`, or `json` (one object per line).
    #[arg(long, global = true, value_enum, default_value_t, env = "RAFT_KV_LOG_FORMAT")]
    log_format: raft_kv::logging::LogFormat,
    /// Which events to log, as `RUST_LOG` directives (e.g. `info` or `debug,openraft=info`);
    /// without it `RUST_LOG`, else `info,openraft=warn`.
    #[arg(long, global = true, env = "RAFT_KV_LOG_LEVEL")]
    log_level: Option<String>,
    #[command(flatten)]
    node: NodeArgs,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Start a 3-node cluster of this binary on loopback ports per backend, drive writes and
    /// reads through it, and report throughput and latency.
    Bench(raft_kv::tools::bench::BenchArgs),
    /// Write a CA and a certificate per node (SAN URI `raft-kv://node/<id>`, valid for
    /// 127.0.0.1, `::1`, localhost and every --host) into --dir, for a TLS cluster.
    Certs(raft_kv::tools::certs::CertsArgs),
}

/// The exit code of a node stopped by a fatal error (a store write or apply failed, raft
/// stopped): a supervisor restarts it. A configuration or start-up error exits with 1.
const EXIT_FATAL: i32 = 3;

/// How long a node stopped by a fatal error keeps answering (`/status` and `/health` with the
/// cause, every client request refused as retryable) before it exits, so probes and clients
/// see why.
const FATAL_DRAIN: std::time::Duration = std::time::Duration::from_secs(2);

fn main() {
    let cli = Cli::parse();
    if let Err(e) = raft_kv::logging::init(cli.log_format, cli.log_level.as_deref()) {
        eprintln!("raft-kv: {e}");
        std::process::exit(1);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("raft-kv: starting the runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Some(Command::Bench(args)) => raft_kv::tools::bench::run(args).await.map(|()| Stopped::Asked),
            Some(Command::Certs(args)) => raft_kv::tools::certs::generate(&args).map(|written| {
                for path in written {
                    println!("wrote {}", path.display());
                }
                Stopped::Asked
            }),
            None => run_node(cli.node).await,
        }
    });
    match result {
        Ok(Stopped::Asked) => {}
        Ok(Stopped::Fatal) => std::process::exit(EXIT_FATAL),
        Err(e) => {
            last_word(&format!("raft-kv: {e}"));
            std::process::exit(1);
        }
    }
}

/// The last line a failing node prints: plain on stderr for a person, or a `tracing` error
/// event when the logs are JSON, so a log pipeline parses every line.
fn last_word(message: &str) {
    if raft_kv::logging::is_json() {
        tracing::error!(target: "raft_kv::node", "{message}");
    } else {
        eprintln!("{message}");
    }
}

/// Why a command ended without an error.
enum Stopped {
    /// It finished, or the node was asked to stop (SIGINT, SIGTERM).
    Asked,
    /// A fatal error stopped the node.
    Fatal,
}

async fn run_node(args: NodeArgs) -> Result<Stopped, raft_kv::Error> {
    let config = args.resolve()?;
    let node = raft_kv::Node::start(&config).await?;
    // One line on stdout once both servers listen: scripts and tests wait for it.
    println!(
        "raft-kv node {} listening http={} raft={} grpc={} backend={} data_dir={}",
        config.id,
        node.info().http,
        node.info().raft,
        if node.info().grpc.is_empty() {
            "-"
        } else {
            &node.info().grpc
        },
        config.backend.name(),
        config.data_dir.display()
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| raft_kv::Error::Io("installing the SIGTERM handler".into(), e))?;
    tracing::info!(
        target: "raft_kv::node",
        node = config.id,
        http = %node.info().http,
        raft = %node.info().raft,
        grpc = %node.info().grpc,
        backend = config.backend.name(),
        "listening"
    );
    let fatal = tokio::select! {
        _ = tokio::signal::ctrl_c() => None,
        _ = term.recv() => None,
        cause = node.fatal() => Some(cause),
    };
    match fatal {
        None => {
            tracing::info!(target: "raft_kv::node", node = config.id, "stopping (asked to)");
            node.shutdown().await.map(|()| Stopped::Asked)
        }
        Some(cause) => {
            tracing::error!(
                target: "raft_kv::node",
                node = config.id,
                cause = %cause,
                exit_code = EXIT_FATAL,
                "exiting in {} ms on a fatal error",
                FATAL_DRAIN.as_millis()
            );
            tokio::time::sleep(FATAL_DRAIN).await;
            // Raft may have stopped already; its answer adds nothing to the cause.
            if let Err(e) = node.shutdown().await {
                tracing::warn!(target: "raft_kv::node", error = %e, "shutting raft down after the fatal error");
            }
            last_word(&format!(
                "raft-kv: node {} exiting on a fatal error: {cause}",
                config.id
            ));
            Ok(Stopped::Fatal)
        }
    }
}
