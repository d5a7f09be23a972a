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

# The facade with only `rocksdb` resolves its build dependencies' features differently from the
# whole workspace, which gives librocksdb-sys another build hash and would compile RocksDB's C++ a
# second time (15-20 minutes here). clippy links nothing, so when the workspace build already
# produced librocksdb.a, that run is pointed at it instead (librocksdb-sys's ROCKSDB_LIB_DIR).
built_rocksdb_dir() {
  local target="${CARGO_TARGET_DIR:-target}"
  ls -t "$target"/debug/build/librocksdb-sys-*/out/librocksdb.a 2>/dev/null | head -n1 | xargs -r dirname || true
}

all="redb lmdb rocksdb sled mem"
for feature in $all; do
  echo "== raft-store --no-default-features --features $feature"
  env_prefix=()
  if [ "$feature" = rocksdb ]; then
    lib_dir=$(built_rocksdb_dir)
    if [ -n "$lib_dir" ]; then
      echo "(using the RocksDB library already built in $lib_dir)"
      env_prefix=(env ROCKSDB_LIB_DIR="$lib_dir" ROCKSDB_STATIC=1)
    fi
  fi
  "${env_prefix[@]}" cargo clippy -q -p raft-store --no-default-features --features "$feature" --all-targets -- -D warnings
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
