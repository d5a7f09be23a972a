#!/usr/bin/env bash
# A local raft-kv cluster in the background.
#
#   scripts/cluster.sh start [BACKEND]  three nodes (BACKEND: redb (default), lmdb, rocksdb, sled);
#                                       after a stop, restarts the nodes from their data
#   scripts/cluster.sh status           each node's /status
#   scripts/cluster.sh add              one more node, joined through a running node
#   scripts/cluster.sh remove ID        node ID leaves the cluster, then stops
#   scripts/cluster.sh stop             stops every node (SIGTERM); the data stays
#   scripts/cluster.sh clean            stops every node and removes the data
#
# Environment: RAFT_KV_CLUSTER_DIR (default target/raft-kv-cluster) holds each node's data,
# log and pid; RAFT_KV_HTTP_BASE (default 21000): node N serves its HTTP API on port BASE+N,
# raft on BASE+1000+N and gRPC on BASE+2000+N, all on 127.0.0.1 (0: free ports picked at
# start); RAFT_KV_BIN: a built raft-kv binary (default: built here with cargo, release);
# RAFT_KV_TLS=1 at the first start: TLS on every port with throwaway certificates that
# `raft-kv certs` writes to CLUSTER_DIR/certs, and bearer tokens the nodes require
# (--auth-file CLUSTER_DIR/certs/tokens): the cluster stays TLS from then on; clients trust
# CLUSTER_DIR/certs/ca.pem and send the token in write-token (or read-token), e.g.
# curl --cacert .../ca.pem -H @.../auth-header.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${RAFT_KV_CLUSTER_DIR:-$root/target/raft-kv-cluster}"
base="${RAFT_KV_HTTP_BASE:-21000}"

die() { echo "cluster.sh: $*" >&2; exit 1; }

binary() {
  if [ -n "${RAFT_KV_BIN:-}" ]; then
    echo "$RAFT_KV_BIN"
    return
  fi
  "$root/scripts/deps.sh" >&2
  # The same build as scripts/report.sh, so the two share one feature set and one RocksDB build.
  (cd "$root" && cargo build --release -p raft-store-bench --bin report -p raft-kv --bins --features raft-kv/all >&2)
  local target="${CARGO_TARGET_DIR:-$root/target}"
  echo "$target/release/raft-kv"
}

certs="$dir/certs"
tls_on() { [ -e "$certs/ca.pem" ]; }
scheme() { if tls_on; then echo https; else echo http; fi; }
# api ID PATH [CURL ARGS...]: curl node ID's client API (over TLS, trusting the cluster CA).
api() {
  local id=$1 path=$2
  shift 2
  if tls_on; then
    curl -sf --cacert "$certs/ca.pem" -H @"$certs/auth-header" "$@" "https://$(http_of "$id")$path"
  else
    curl -sf "$@" "http://$(http_of "$id")$path"
  fi
}
# tls_args ID: the TLS and token flags of node ID (the data directory does not keep them).
tls_args() {
  tls_on || return 0
  echo --tls-cert "$certs/node-$1.pem" --tls-key "$certs/node-$1-key.pem" --tls-ca "$certs/ca.pem" \
    --auth-file "$certs/tokens"
}

# make_tokens: a write and a read token (random, 48 hex digits) in the nodes' auth file, each
# also alone in a file, and the write token as a header file for curl (-H @FILE), so that a
# token never appears on a command line.
make_tokens() {
  local write read
  write=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
  read=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
  (
    umask 077
    printf '# raft-kv tokens of this cluster (scripts/cluster.sh)\nwrite %s\nread %s\n' "$write" "$read" >"$certs/tokens"
    printf '%s\n' "$write" >"$certs/write-token"
    printf '%s\n' "$read" >"$certs/read-token"
    printf 'Authorization: Bearer %s\n' "$write" >"$certs/auth-header"
  )
}

pid_of() { cat "$dir/node-$1.pid" 2>/dev/null || true; }
running() { local p; p=$(pid_of "$1"); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
http_of() { cat "$dir/node-$1.http"; }
node_ids() {
  local f
  for f in "$dir"/node-*.pid; do
    [ -e "$f" ] || continue
    f=${f##*/node-}
    echo "${f%.pid}"
  done | sort -n
}
any_running() {
  local id
  for id in $(node_ids); do
    if running "$id"; then echo "$id"; return; fi
  done
  return 1
}

# start_node ID [JOIN_ADDR]: start (or restart) node ID and wait for its address line.
start_node() {
  local id=$1 join=${2:-} bin=$3 args
  running "$id" && { echo "node $id already runs (pid $(pid_of "$id"))"; return; }
  if tls_on && [ ! -e "$certs/node-$id.pem" ]; then
    "$bin" certs --dir "$certs" --nodes "$id" >/dev/null
  fi
  if [ -e "$dir/node-$id/node.toml" ]; then
    args=(--data-dir "$dir/node-$id")  # a restart: the data directory knows the rest
  else
    local http=0 raft=0 grpc=0
    [ "$base" != 0 ] && { http=$((base + id)); raft=$((base + 1000 + id)); grpc=$((base + 2000 + id)); }
    args=(--id "$id" --http "127.0.0.1:$http" --raft "127.0.0.1:$raft" --grpc "127.0.0.1:$grpc"
      --backend "$backend" --data-dir "$dir/node-$id")
    [ -n "$join" ] && args+=(--join "$join")
  fi
  # shellcheck disable=SC2207 # paths under the cluster directory, without spaces
  args+=($(tls_args "$id"))
  : >"$dir/node-$id.out"
  # A joining node proves its write role with the cluster's write token (from the environment,
  # not the command line, where any process could read it).
  local envs=()
  tls_on && envs=("RAFT_KV_JOIN_TOKEN=$(cat "$certs/write-token")")
  env ${envs[@]+"${envs[@]}"} nohup "$bin" "${args[@]}" >"$dir/node-$id.out" 2>>"$dir/node-$id.log" </dev/null &
  echo $! >"$dir/node-$id.pid"
  local waited=0
  until grep -q "listening" "$dir/node-$id.out" 2>/dev/null; do
    running "$id" || die "node $id exited: $(tail -5 "$dir/node-$id.log")"
    [ $waited -ge 600 ] && die "node $id did not report its address within 60 s"
    sleep 0.1
    waited=$((waited + 1))
  done
  sed -E 's/.* http=([^ ]+).*/\1/' "$dir/node-$id.out" >"$dir/node-$id.http"
  sed -E 's/.* grpc=([^ ]+).*/\1/' "$dir/node-$id.out" >"$dir/node-$id.grpc"
  echo "node $id: $(scheme)://$(http_of "$id") grpc $(cat "$dir/node-$id.grpc") (pid $(pid_of "$id"), log $dir/node-$id.log)"
}

# wait_members N: until the leader reports N voters.
wait_members() {
  local want=$1 waited=0 id status voters
  while :; do
    id=$(any_running) || die "no node runs"
    status=$(api "$id" /status || true)
    voters=$(printf '%s' "$status" | grep -o '"voter":true' | wc -l)
    [ "$voters" -eq "$want" ] && return
    [ $waited -ge 600 ] && die "the cluster has $voters voters after 60 s, expected $want: $status"
    sleep 0.1
    waited=$((waited + 1))
  done
}

stop_node() {
  local id=$1 p waited=0
  p=$(pid_of "$id")
  running "$id" || return 0
  kill -TERM "$p"
  while kill -0 "$p" 2>/dev/null; do
    [ $waited -ge 300 ] && { kill -KILL "$p"; echo "node $id killed after 30 s"; break; }
    sleep 0.1
    waited=$((waited + 1))
  done
  echo "node $id stopped"
}

cmd=${1:-}
case "$cmd" in
  start)
    backend=${2:-redb}
    mkdir -p "$dir"
    bin=$(binary)
    if [ "${RAFT_KV_TLS:-0}" = 1 ] && [ -z "$(node_ids)" ] && ! tls_on; then
      "$bin" certs --dir "$certs" --nodes 3 >/dev/null
      make_tokens
      echo "TLS on: certificates and tokens in $certs (clients trust $certs/ca.pem and send the token in $certs/write-token, e.g. curl -H @$certs/auth-header)"
    fi
    if [ -n "$(node_ids)" ]; then
      for id in $(node_ids); do start_node "$id" "" "$bin"; done
    else
      start_node 1 "" "$bin"
      start_node 2 "$(http_of 1)" "$bin"
      start_node 3 "$(http_of 1)" "$bin"
      wait_members 3
    fi
    echo "cluster up: $(for id in $(node_ids); do printf '%s://%s ' "$(scheme)" "$(http_of "$id")"; done)"
    ;;
  status)
    for id in $(node_ids); do
      if running "$id"; then
        echo "node $id: $(api "$id" /status || echo 'no answer')"
      else
        echo "node $id: stopped"
      fi
    done
    ;;
  add)
    through=$(any_running) || die "no node runs: start the cluster first"
    last=$(node_ids | tail -1)
    id=$((last + 1))
    before=$(api "$through" /status | grep -o '"voter":true' | wc -l)
    backend=$(sed -nE 's/^backend = "(.*)"/\1/p' "$dir/node-$through/node.toml")
    start_node "$id" "$(http_of "$through")" "$(binary)"
    wait_members $((before + 1))
    echo "node $id joined"
    ;;
  remove)
    id=${2:?usage: cluster.sh remove ID}
    [ -e "$dir/node-$id.pid" ] || die "no node $id"
    through=""
    for other in $(node_ids); do
      if [ "$other" != "$id" ] && running "$other"; then through=$other; break; fi
    done
    [ -n "$through" ] || die "no other node runs to ask"
    api "$through" /leave -X POST -H 'content-type: application/json' \
      -d "{\"id\": $id}" >/dev/null || die "node $through refused to remove node $id"
    stop_node "$id"
    rm -rf "$dir/node-$id" "$dir/node-$id".*
    # Its certificate goes too: a node that left cannot come back with it.
    rm -f "$certs/node-$id.pem" "$certs/node-$id-key.pem"
    echo "node $id left the cluster"
    ;;
  stop)
    for id in $(node_ids); do stop_node "$id"; done
    ;;
  clean)
    for id in $(node_ids); do stop_node "$id"; done
    rm -rf "$dir"
    echo "removed $dir"
    ;;
  *)
    sed -n "2,20p" "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
