#!/usr/bin/env bash
# Installs the system packages the workspace needs, only when they are missing.
set -euo pipefail

need=()
# chattr (e2fsprogs) makes a directory unwritable even for root, for the permission tests.
command -v chattr >/dev/null 2>&1 || need+=(e2fsprogs)

# RocksDB is built from source: bindgen needs libclang, the C++ build a compiler.
# (libclang-cpp is another library: match libclang.so and libclang-<version>.so only.)
if ! ls /usr/lib/llvm-*/lib/libclang-[0-9]*.so* >/dev/null 2>&1 \
  && ! ldconfig -p 2>/dev/null | grep -qE 'libclang(-[0-9][0-9.]*)?\.so'; then
  need+=(libclang-dev)
fi
command -v clang >/dev/null 2>&1 || need+=(clang)
command -v c++ >/dev/null 2>&1 || need+=(g++)
# scripts/cluster.sh and the walk-through of docs/raft-kv.md talk to raft-kv over HTTP with curl.
command -v curl >/dev/null 2>&1 || need+=(curl)
# scripts/quick.sh reads the workspace's crates and their dependencies from cargo metadata with jq.
command -v jq >/dev/null 2>&1 || need+=(jq)
# raft-store-faultfs: fusermount3 mounts its power-cut test file system without root, and detaches a busy one.
command -v fusermount3 >/dev/null 2>&1 || need+=(fuse3)

if [ ${#need[@]} -gt 0 ]; then
  echo "installing missing system packages: ${need[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
fi
