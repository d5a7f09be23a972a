#!/usr/bin/env bash
# Check a live raft-kv node against its OpenAPI document (crates/raft-kv/openapi.json) with
# schemathesis: every documented operation gets generated requests (valid and invalid ones),
# and every answer must have a documented status, content type, headers and body schema, and
# must not be a server error.
#
#   scripts/api-check.sh <raft-kv binary>
#
# Two passes, each on a fresh node of that binary on loopback ports picked at run time: one
# without an auth file (every request is let in), one with an auth file holding a write token
# that schemathesis sends as `Authorization: Bearer` (its ignored_auth check also leaves it out
# and spoils it, expecting the documented 401). Each pass waits until the node serves and runs
# schemathesis against http://ADDR/openapi.json (the document the node serves); the script
# exits non-zero if either pass found a failure. Nodes and data directories are removed on exit.
#
# Schemathesis is installed, pinned, into a venv under
# ${XDG_CACHE_HOME:-$HOME/.cache}/raft-store/venv-schemathesis the first time.
#
# Environment (all optional):
#   API_CHECK_MAX_TIME     schemathesis's time budget in seconds (default 75)
#   API_CHECK_MAX_EXAMPLES examples per operation and phase (default 40)
#   API_CHECK_SEED         a fixed seed, to reproduce a run
#   API_CHECK_ARGS         more schemathesis run arguments, split on spaces (e.g. --exclude-path /join)
#   API_CHECK_SCHEMA       a document file to test instead of the node's /openapi.json (to check
#                          an edited document before the binary that serves it is built)
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5
MAX_TIME=${API_CHECK_MAX_TIME:-75}
MAX_EXAMPLES=${API_CHECK_MAX_EXAMPLES:-40}
START_TIMEOUT=30
READY_TIMEOUT=30

say() { echo "== api-check: $*"; }
die() {
    echo "== api-check: ERROR: $*" >&2
    exit 2
}

[[ $# -eq 1 ]] || die "usage: $0 <raft-kv binary>"
BIN=$1
[[ -x $BIN ]] || die "$BIN is not an executable file"
command -v python3 >/dev/null || die "python3 is not on PATH"

# ---------------------------------------------------------------- schemathesis

VENV=${XDG_CACHE_HOME:-$HOME/.cache}/raft-store/venv-schemathesis
# How to run schemathesis: the venv's python, or python3 with a --target directory on its path.
ST_PY=
ST_PATH=

installed_version() {
    PYTHONPATH=$ST_PATH "$ST_PY" -c \
        'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null || true
}

find_schemathesis() {
    if [[ -x $VENV/bin/python ]]; then
        ST_PY=$VENV/bin/python ST_PATH=
    elif [[ -d $VENV/site ]]; then
        ST_PY=$(command -v python3) ST_PATH=$VENV/site
    else
        return 1
    fi
    [[ $(installed_version) == "$SCHEMATHESIS_VERSION" ]]
}

install_schemathesis() {
    say "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    local log
    log=$(mktemp)
    if python3 -m venv "$VENV" >"$log" 2>&1; then
        :
    else
        say "python3 -m venv failed (no ensurepip? on Debian: apt-get install python3-venv):"
        sed 's/^/    /' "$log" >&2
        rm -rf "$VENV"
        say "trying virtualenv instead (pip install --user virtualenv)"
        if python3 -m pip install --user --quiet virtualenv >"$log" 2>&1 &&
            python3 -m virtualenv --quiet "$VENV" >"$log" 2>&1; then
            :
        else
            say "virtualenv failed too:"
            sed 's/^/    /' "$log" >&2
            rm -rf "$VENV"
        fi
    fi
    if [[ -x $VENV/bin/python ]]; then
        if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
            "schemathesis==$SCHEMATHESIS_VERSION" >"$log" 2>&1; then
            cat "$log" >&2
            rm -f "$log"
            die "pip install schemathesis==$SCHEMATHESIS_VERSION into the venv $VENV failed (see above)"
        fi
    else
        say "no venv could be made; installing with pip install --target $VENV/site"
        mkdir -p "$VENV/site"
        if ! python3 -m pip install --quiet --disable-pip-version-check --target "$VENV/site" \
            "schemathesis==$SCHEMATHESIS_VERSION" >"$log" 2>&1; then
            cat "$log" >&2
            rm -f "$log"
            rm -rf "$VENV"
            die "pip install --target $VENV/site schemathesis==$SCHEMATHESIS_VERSION failed (see above); is pip installed (python3 -m pip)?"
        fi
    fi
    rm -f "$log"
    find_schemathesis || die "schemathesis $SCHEMATHESIS_VERSION is not importable after installing it into $VENV"
}

if find_schemathesis; then
    say "schemathesis $SCHEMATHESIS_VERSION found in $VENV"
else
    install_schemathesis
fi

# ---------------------------------------------------------------- the node

WORK=$(mktemp -d "${TMPDIR:-/tmp}/raft-kv-api-check.XXXXXX")
NODE_PID=
PASS_DIR=$WORK

stop_node() {
    if [[ -n $NODE_PID ]] && kill -0 "$NODE_PID" 2>/dev/null; then
        say "stopping the node (pid $NODE_PID)"
        kill -TERM "$NODE_PID" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$NODE_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$NODE_PID" 2>/dev/null; then
            say "the node did not stop within 5 s; killing it"
            kill -KILL "$NODE_PID" 2>/dev/null || true
        fi
        wait "$NODE_PID" 2>/dev/null || true
    fi
    NODE_PID=
}

cleanup() {
    local status=$?
    stop_node
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_node_log() {
    echo "---- node stdout" >&2
    tail -n 20 "$PASS_DIR/node.out" >&2 || true
    echo "---- node stderr" >&2
    tail -n 40 "$PASS_DIR/node.err" >&2 || true
}

# start_node <pass directory> [raft-kv arguments...]: sets NODE_PID and ADDR once it serves.
start_node() {
    PASS_DIR=$1
    shift
    mkdir -p "$PASS_DIR"
    say "starting $BIN (node 1, data in $PASS_DIR/data)"
    "$BIN" --id 1 --data-dir "$PASS_DIR/data" --http 127.0.0.1:0 --raft 127.0.0.1:0 --insecure "$@" \
        >"$PASS_DIR/node.out" 2>"$PASS_DIR/node.err" </dev/null &
    NODE_PID=$!

    ADDR=
    local deadline=$((SECONDS + START_TIMEOUT)) line
    while [[ -z $ADDR ]]; do
        line=$(grep -m1 '^raft-kv node 1 listening ' "$PASS_DIR/node.out" || true)
        if [[ -n $line ]]; then
            ADDR=$(sed -n 's/.* http=\([^ ]*\).*/\1/p' <<<"$line")
            [[ -n $ADDR ]] || die "no http= address in the node's line: $line"
            break
        fi
        if ! kill -0 "$NODE_PID" 2>/dev/null; then
            show_node_log
            NODE_PID=
            die "the node exited before it listened"
        fi
        if ((SECONDS >= deadline)); then
            show_node_log
            die "the node did not print its 'listening' line within ${START_TIMEOUT} s"
        fi
        sleep 0.2
    done
    say "node listening on http://$ADDR"

    # Serving: /health (which needs no token) answers 200, or (a node without /health) /status
    # names a leader.
    say "waiting (at most ${READY_TIMEOUT} s) until the node serves"
    if ! python3 - "$ADDR" "$READY_TIMEOUT" <<'EOF'; then
import json, sys, time, urllib.error, urllib.request
addr, limit = sys.argv[1], float(sys.argv[2])
deadline = time.monotonic() + limit
last = "no answer yet"
def get(path):
    try:
        with urllib.request.urlopen(f"http://{addr}{path}", timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
while time.monotonic() < deadline:
    try:
        status, body = get("/health")
        if status == 200:
            sys.exit(0)
        last = f"/health: {status} {body[:200]!r}"
        if status == 404:
            status, body = get("/status")
            if status == 200 and json.loads(body).get("leader") is not None:
                print("== api-check: (the node has no /health; /status names a leader)")
                sys.exit(0)
            last = f"/status: {status} {body[:200]!r}"
    except Exception as e:  # not listening yet, reset, not JSON
        last = f"{type(e).__name__}: {e}"
    time.sleep(0.3)
print(f"== api-check: last answer: {last}", file=sys.stderr)
sys.exit(1)
EOF
        show_node_log
        die "the node did not serve within ${READY_TIMEOUT} s"
    fi
}

# ---------------------------------------------------------------- schemathesis run

base_args=(
    --checks all
    --max-examples "$MAX_EXAMPLES"
    --max-time "$MAX_TIME"
    --workers 1
    --request-timeout 60
    --max-response-time 45
    --output-sanitize false
    --generation-database none
    --no-color
)
if [[ -n ${API_CHECK_SEED:-} ]]; then
    base_args+=(--seed "$API_CHECK_SEED")
fi
if [[ -n ${API_CHECK_ARGS:-} ]]; then
    read -r -a extra <<<"$API_CHECK_ARGS"
    base_args+=("${extra[@]}")
fi

# run_schemathesis <pass name> [more schemathesis arguments...]: against the running node.
# What it prints of the command leaves the extra arguments out: they hold the token.
run_schemathesis() {
    local name=$1 location status=0
    shift
    local args=("${base_args[@]}" "$@")
    if [[ -n ${API_CHECK_SCHEMA:-} ]]; then
        location=$(realpath "$API_CHECK_SCHEMA")
        args+=(--url "http://$ADDR")
        say "[$name] testing the document $location (API_CHECK_SCHEMA) against http://$ADDR"
    else
        location=http://$ADDR/openapi.json
        say "[$name] testing against $location"
    fi
    say "[$name] schemathesis run $location ${base_args[*]}${*:+ (and a token header)}"
    # In the pass's directory: no schemathesis.toml of the caller's is read, nothing is left.
    (cd "$PASS_DIR" && timeout --kill-after=10 $((MAX_TIME + 45)) \
        env PYTHONPATH="$ST_PATH" "$ST_PY" -m schemathesis.cli run "$location" "${args[@]}") || status=$?

    if ! kill -0 "$NODE_PID" 2>/dev/null; then
        show_node_log
        NODE_PID=
        die "[$name] the node exited during the run"
    fi
    if ((status == 0)); then
        say "[$name] passed: the node answers as its document says"
    elif ((status == 124 || status == 137)); then
        say "[$name] FAILED: schemathesis did not finish within $((MAX_TIME + 45)) s"
    else
        say "[$name] FAILED: schemathesis exited with status $status (its report is above)"
        if grep -q 'panicked at' "$PASS_DIR/node.err"; then
            say "the node panicked:"
            grep -A1 'panicked at' "$PASS_DIR/node.err" | head -n 20 >&2
        fi
    fi
    return "$status"
}

# auth_probe <before|after>: the pass only means something if the node asks for the token and
# takes it. Before the run: /status is 401 without it and 200 with it. After: the run's writes
# went through (the applied index passed the few entries a new node writes itself).
auth_probe() {
    python3 - "$ADDR" "$TOKEN" "$1" <<'EOF'
import sys, urllib.error, urllib.request
addr, token, when = sys.argv[1:4]
def get(path, token=None):
    request = urllib.request.Request(f"http://{addr}{path}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
if when == "before":
    without, _ = get("/status")
    with_token, body = get("/status", token)
    if without != 401 or with_token != 200:
        sys.exit(f"== api-check: ERROR: /status answered {without} without the token (want 401) and {with_token} with it (want 200): {body[:200]}")
else:
    status, body = get("/metrics", token)
    applied = [l for l in body.splitlines() if l.startswith("raft_kv_last_applied_index")]
    value = float(applied[0].split()[-1]) if applied else -1
    if status != 200 or value < 20:
        sys.exit(f"== api-check: ERROR: after the run the node applied up to {value} (want at least 20 entries: the token's writes): /metrics {status}")
    print(f"== api-check: the run's writes with the token were applied (up to index {int(value)})")
EOF
}

failed=0

# Pass 1: no auth file, every request is let in.
start_node "$WORK/open"
run_schemathesis "no tokens" || failed=1
stop_node

# Pass 2: an auth file with one write token (raft-kv wants at least 16 characters), sent by
# schemathesis on every request; its ignored_auth check also sends requests without it.
TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
(umask 077 && printf '# api-check\nwrite %s\n' "$TOKEN" >"$WORK/auth")
start_node "$WORK/tokens" --auth-file "$WORK/auth"
auth_probe before || exit 2
run_schemathesis "a write token" --header "Authorization: Bearer $TOKEN" || failed=1
auth_probe after || failed=1
stop_node

if ((failed)); then
    say "FAILED (see the pass marked FAILED above)"
    exit 1
fi
say "passed: both passes"
