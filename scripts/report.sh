#!/usr/bin/env bash
# The main job: a comparative benchmark report across every backend, written to target/report/.
# Pass --quick for the short run (about 2 minutes) or nothing for the full matrix.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
cargo run --release -p raft-store-bench --bin report -- "$@"
