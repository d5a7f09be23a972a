#!/usr/bin/env bash
# Each backend feature of the facade builds and passes clippy on its own (with the default
# openraft line), and pulls in no other engine: `cargo tree` for one feature names none of the
# other engine crates. Then each openraft line alone and both together, and the facade with no
# backend or no line, which must stop at a `compile_error!` naming the features.
set -euo pipefail
cd "$(dirname "$0")/.."

engine_crates() {
  case "$1" in
    redb) echo "redb" ;;
    lmdb) echo "heed lmdb-master-sys" ;;
    rocksdb) echo "rocksdb librocksdb-sys" ;;
    sled) echo "sled" ;;
    mem) echo "" ;;
  esac
}

# shellcheck source=scripts/rocksdb-lib.sh
source "$(dirname "$0")/rocksdb-lib.sh"

all="redb lmdb rocksdb sled mem"
for feature in $all; do
  echo "== raft-store --no-default-features --features $feature,openraft-0-10"
  if [ "$feature" = rocksdb ]; then
    clippy_reusing_rocksdb cargo clippy -q -p raft-store --no-default-features --features "$feature,openraft-0-10" --all-targets -- -D warnings
  else
    cargo clippy -q -p raft-store --no-default-features --features "$feature,openraft-0-10" --all-targets -- -D warnings
  fi
  tree=$(cargo tree -p raft-store --no-default-features --features "$feature,openraft-0-10" -e normal --prefix none)
  for other in $all; do
    [ "$other" = "$feature" ] && continue
    for crate in $(engine_crates "$other"); do
      if grep -qE "^$crate v" <<<"$tree"; then
        echo "feature $feature pulls in $crate (an engine of feature $other)" >&2
        exit 1
      fi
    done
  done
  for crate in $(engine_crates "$feature"); do
    grep -qE "^$crate v" <<<"$tree" || { echo "feature $feature does not pull in $crate" >&2; exit 1; }
  done
done
echo "every backend feature builds alone and pulls in no other engine"

# Each openraft line alone, and both: the facade's library (its tests need both lines).
for lines in openraft-0-9 openraft-0-10 openraft-0-9,openraft-0-10; do
  echo "== raft-store --no-default-features --features redb,$lines (library)"
  cargo clippy -q -p raft-store --no-default-features --features "redb,$lines" -- -D warnings
  tree=$(cargo tree -p raft-store --no-default-features --features "redb,$lines" -e normal --prefix none)
  for line in 0.9 0.10; do
    want=no
    case ",$lines," in *",openraft-${line//./-},"*) want=yes ;; esac
    if grep -qE "^openraft v$line\." <<<"$tree"; then have=yes; else have=no; fi
    if [ "$want" != "$have" ]; then
      echo "features redb,$lines: openraft $line in the tree: $have, expected $want" >&2
      exit 1
    fi
  done
done
echo "each openraft line builds alone and with the other, and pulls in only its openraft"

# No backend, or no line: the build stops at the `compile_error!` naming the features, and at
# nothing else.
expect_compile_error() {
  local features=$1 message=$2 out
  if out=$(cargo check -q -p raft-store --no-default-features ${features:+--features "$features"} 2>&1); then
    echo "raft-store built with features '$features': expected a compile_error! naming the features" >&2
    exit 1
  fi
  if ! grep -qF "$message" <<<"$out"; then
    echo "raft-store with features '$features' failed without the expected message ($message):" >&2
    echo "$out" >&2
    exit 1
  fi
  local errors
  errors=$(grep -cE '^error(\[E[0-9]+\])?:' <<<"$out" || true)
  local others
  others=$(grep -E '^error' <<<"$out" | grep -vE 'needs a backend|needs an openraft line|could not compile' || true)
  if [ -n "$others" ]; then
    echo "raft-store with features '$features': errors besides the compile_error!:" >&2
    echo "$others" >&2
    exit 1
  fi
  echo "features '$features': stops at the compile_error! ($errors error lines)"
}
expect_compile_error "" "enable at least one of its cargo features \`redb\` (the default), \`lmdb\`, \`rocksdb\`, \`sled\` or \`mem\`"
expect_compile_error "redb" "enable its cargo feature \`openraft-0-10\` (the default) or \`openraft-0-9\`"

# raft-kv built with its defaults (`cargo install raft-kv`, `cargo build -p raft-kv`) has redb
# alone: no RocksDB C++, no LMDB C, no sled. `--features all` has every engine.
echo "== raft-kv default features"
# It builds on its own (`cargo install raft-kv`): its own features pick the openraft line.
cargo check -q -p raft-kv
tree=$(cargo tree -p raft-kv -e normal --prefix none)
for crate in redb; do
  grep -qE "^$crate v" <<<"$tree" || { echo "raft-kv's default build does not pull in $crate" >&2; exit 1; }
done
for crate in $(engine_crates lmdb) $(engine_crates rocksdb) $(engine_crates sled); do
  if grep -qE "^$crate v" <<<"$tree"; then
    echo "raft-kv's default build pulls in $crate: the default is redb alone" >&2
    exit 1
  fi
done
tree=$(cargo tree -p raft-kv --features all -e normal --prefix none)
for crate in redb $(engine_crates lmdb) $(engine_crates rocksdb) $(engine_crates sled); do
  grep -qE "^$crate v" <<<"$tree" || { echo "raft-kv --features all does not pull in $crate" >&2; exit 1; }
done
echo "raft-kv's default build has redb alone; --features all has every engine"

# The oldest openraft 0.9 the glue is written against (the `0.9.21` requirement in Cargo.toml;
# the lock file builds the newest 0.9): the 0.9 suite on the in-memory engine and the migration,
# in a copy of the workspace whose lock file is moved back to 0.9.21.
oldest=$(mktemp -d)
trap 'rm -rf "$oldest"' EXIT
tar --exclude=./target -cf - . | tar -xf - -C "$oldest"
locked=$(grep -A1 '^name = "openraft"$' Cargo.lock | grep -oE '"0\.9\.[0-9]+"' | tr -d '"')
echo "== openraft 0.9.21 (the lock file has $locked): the 0.9 suite on MemEngine and the migration"
(
  cd "$oldest"
  cargo update -q -p "openraft@$locked" --precise 0.9.21
  grep -qE '^version = "0\.9\.21"$' Cargo.lock || { echo "the copy's lock file does not name openraft 0.9.21" >&2; exit 1; }
  if cargo nextest --version >/dev/null 2>&1; then
    # The 0.9 suite lives in raft-store-testkit; the migration's test in raft-store-core.
    cargo nextest run -p raft-store-core -p raft-store-testkit \
      --features raft-store-core/openraft-0-9,raft-store-core/migrate,raft-store-testkit/openraft-0-9 \
      -E 'binary(openraft09_mem) | binary(migrate)' --no-fail-fast
  else
    cargo test -p raft-store-testkit --features openraft-0-9 --test openraft09_mem
    cargo test -p raft-store-core --features openraft-0-9,migrate --test migrate
  fi
)
