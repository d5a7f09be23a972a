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
    #[command(flatten)]
    node: NodeArgs,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Start a 3-node cluster of this binary on loopback ports per backend, drive writes and
    /// reads through it, and report throughput and latency.
    Bench(raft_kv::bench::BenchArgs),
    /// Write a CA and a certificate per node (SAN URI `raft-kv://node/<id>`, valid for
    /// 127.0.0.1, `::1`, localhost and every --host) into --dir, for a TLS cluster.
    Certs(raft_kv::certs::CertsArgs),
}

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("raft-kv: starting the runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Some(Command::Bench(args)) => raft_kv::bench::run(args).await,
            Some(Command::Certs(args)) => raft_kv::certs::generate(&args).map(|written| {
                for path in written {
                    println!("wrote {}", path.display());
                }
            }),
            None => run_node(cli.node).await,
        }
    });
    if let Err(e) = result {
        eprintln!("raft-kv: {e}");
        std::process::exit(1);
    }
}

async fn run_node(args: NodeArgs) -> Result<(), raft_kv::Error> {
    let config = args.resolve()?;
    let node = raft_kv::node::Node::start(&config).await?;
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
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("raft-kv: node {} stopping", config.id);
    node.shutdown().await
}
