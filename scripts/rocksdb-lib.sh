# Sourced by .ci/run and scripts/check-features.sh.
#
# RocksDB's C++ takes 15-20 minutes to compile on 2 cores, and cargo compiles it once per
# distinct build hash of librocksdb-sys. The test build and the workspace clippy run share one;
# the facade built with only `rocksdb` (check-features) resolves its build dependencies
# differently and would compile it again. clippy links nothing, so that run is pointed at the
# librocksdb.a the test build made (librocksdb-sys's ROCKSDB_LIB_DIR). Never point a run that
# shares the test build's hash at it: the variable is part of that build script's inputs, so
# the next run without it compiles RocksDB again.

# The directory of the newest librocksdb.a in the target dir, or nothing.
built_rocksdb_dir() {
  local target="${CARGO_TARGET_DIR:-target}"
  ls -t "$target"/debug/build/librocksdb-sys-*/out/librocksdb.a 2>/dev/null | head -n1 | xargs -r dirname || true
}

# Run a clippy command with RocksDB taken from the test build when there is one.
clippy_reusing_rocksdb() {
  local lib_dir
  lib_dir=$(built_rocksdb_dir)
  if [ -n "$lib_dir" ]; then
    echo "(clippy uses the RocksDB library already built in $lib_dir)"
    ROCKSDB_LIB_DIR="$lib_dir" ROCKSDB_STATIC=1 "$@"
  else
    "$@"
  fi
}
