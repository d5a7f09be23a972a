#!/usr/bin/env bash
# Runs every test of the workspace. Works on a fresh machine: installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh

# Each step says how long it took, so a slow CI run shows where its time went.
step_started=$SECONDS
step() {
  echo "== $* (after $((SECONDS - step_started)) s)"
}

# The power-cut and file-system fault cases mount a FUSE file system. Without FUSE they fail,
# saying what is missing, unless RAFT_STORE_NO_FUSE=1 asks to skip them: then each skipped case
# is recorded here, and the count is printed at the end.
skip_log=$(mktemp)
export RAFT_STORE_SKIP_LOG="$skip_log"
report_skips() {
  local n
  n=$(sort -u "$skip_log" | grep -c . || true)
  if [ "$n" -gt 0 ]; then
    echo "== $n cases that need FUSE were SKIPPED (RAFT_STORE_NO_FUSE=1): power cuts and file-system faults were not checked"
  fi
}
trap 'report_skips; rm -f "$skip_log"' EXIT

step "doc tests"
cargo test --workspace --all-features --doc
step "unit, integration and conformance tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-features --no-fail-fast
else
  cargo test --workspace --all-features --no-fail-fast --lib --bins --tests
fi

# The HTTP API against its OpenAPI document: schemathesis (from PyPI, installed by the script)
# sends generated requests to a live node of the binary the tests just built, and fails on any
# answer the document does not describe.
step "the HTTP API against crates/raft-kv/openapi.json (schemathesis, a live node)"
./scripts/api-check.sh "${CARGO_TARGET_DIR:-target}/debug/raft-kv"
step "all tests done"
