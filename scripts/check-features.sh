#!/usr/bin/env bash
# Each backend feature of the facade builds and passes clippy on its own, and pulls in no
# other engine: `cargo tree` for one feature names none of the other engine crates.
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
  echo "== raft-store --no-default-features --features $feature"
  if [ "$feature" = rocksdb ]; then
    clippy_reusing_rocksdb cargo clippy -q -p raft-store --no-default-features --features "$feature" --all-targets -- -D warnings
  else
    cargo clippy -q -p raft-store --no-default-features --features "$feature" --all-targets -- -D warnings
  fi
  tree=$(cargo tree -p raft-store --no-default-features --features "$feature" -e normal --prefix none)
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

# raft-kv built with its defaults (`cargo install raft-kv`, `cargo build -p raft-kv`) has redb
# alone: no RocksDB C++, no LMDB C, no sled. `--features all` has every engine.
echo "== raft-kv default features"
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
