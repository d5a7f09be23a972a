//! The child of the corruption tests: opens the store in a (damaged) directory and prints all it
//! reads, so the parent can check that nothing wrong was served and that the process ended
//! normally, whatever the damage.
//!
//! `corrupt-reader <backend> <dir>` prints `P <term> <index>` (purged), `V <term> <node>`,
//! `C <term> <index>` (committed), `E <index> <term> <payload>` per entry, then `END`; or, at
//! the first error, `ERR <message>`. It exits 0 either way: an error is a fine answer to damage.

#![forbid(unsafe_code)]

use std::path::Path;
use std::process::ExitCode;

use openraft::EntryPayload;
use openraft::RaftLogReader;
use openraft::storage::RaftLogStorage;
use raft_store::Backend;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [backend, dir] = args.as_slice() else {
        eprintln!("usage: corrupt-reader <backend> <dir>");
        return ExitCode::from(2);
    };
    let Ok(backend) = backend.parse::<Backend>() else {
        eprintln!("corrupt-reader: unknown backend {backend:?}");
        return ExitCode::from(2);
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("corrupt-reader: runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match rt.block_on(read(backend, Path::new(dir))) {
        Ok(()) => println!("END"),
        Err(e) => println!("ERR {}", e.replace('\n', " ")),
    }
    ExitCode::SUCCESS
}

async fn read(backend: Backend, dir: &Path) -> Result<(), String> {
    let mut store = compat_tests::open_store(backend, dir).map_err(|e| format!("open: {e}"))?;
    let state = store
        .get_log_state()
        .await
        .map_err(|e| format!("log state: {e}"))?;
    if let Some(p) = &state.last_purged_log_id {
        println!("P {} {}", p.leader_id.term, p.index);
    }
    if let Some(v) = store.read_vote().await.map_err(|e| format!("vote: {e}"))? {
        println!("V {} {}", v.leader_id.term, v.leader_id.node_id);
    }
    if let Some(c) = store
        .read_committed()
        .await
        .map_err(|e| format!("committed: {e}"))?
    {
        println!("C {} {}", c.leader_id.term, c.index);
    }
    let start = state.last_purged_log_id.map_or(0, |p| p.index + 1);
    let end = state.last_log_id.map_or(0, |l| l.index + 1);
    if end > start {
        let entries = store
            .try_get_log_entries(start..end)
            .await
            .map_err(|e| format!("entries {start}..{end}: {e}"))?;
        for e in entries {
            let payload = match &e.payload {
                EntryPayload::Normal(data) => data.clone(),
                other => format!("<not a normal entry: {other:?}>"),
            };
            println!("E {} {} {payload}", e.log_id.index, e.log_id.leader_id.term);
        }
    }
    Ok(())
}
