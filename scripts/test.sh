#!/usr/bin/env bash
# Runs every test of the workspace. Works on a fresh machine: installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh

echo "== doc tests"
cargo test --workspace --all-features --doc
echo "== unit, integration and conformance tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-features --no-fail-fast
else
  cargo test --workspace --all-features --no-fail-fast --lib --bins --tests
fi
