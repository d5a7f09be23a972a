#!/usr/bin/env bash
# A quick check of what you changed, for developers; ./scripts/test.sh and .ci/run check everything.
#
#   ./scripts/quick.sh            # changes since `git merge-base HEAD main`, and uncommitted ones
#   ./scripts/quick.sh BASE       # changes since `git merge-base HEAD BASE` (a branch or commit)
#   ./scripts/quick.sh --all      # every crate of the workspace
#   ./scripts/quick.sh --list     # only print the touched crates and the test filter
#
# 1. `cargo fmt --all -- --check`.
# 2. The touched crates: every workspace crate with a changed file (committed since the merge
#    base, staged, unstaged or untracked), and every workspace crate that depends on one of them
#    (normal, dev or build dependency, transitively; read from `cargo metadata`). A changed file
#    outside every crate: a markdown file touches `raft-store` alone, not the crates that depend
#    on it (its tests compile the snippets of README.md and docs/*.md and check the links of
#    every markdown file); Cargo.toml, Cargo.lock, clippy.toml, rustfmt.toml and .config/ touch
#    every crate; anything else (scripts/, .ci/) touches none.
# 3. `cargo clippy -p <touched>... --all-targets --all-features -- -D warnings`.
# 4. `cargo nextest run -p <touched>... --all-features -E <the fast cases>`: everything but the
#    slow cases below, which ./scripts/test.sh runs (doc tests too: run
#    `cargo test -p <crate> --all-features --doc` for a changed snippet):
#    - power cuts on the fault file system (FUSE): the conformance cases `power_cut::log_ops` and
#      `power_cut::engine_batches`, every test binary named `*power_cut*` (compat-tests'
#      log_power_cut and kv_power_cut, raft-store-core's negative_power_cut, raft-store-faultfs'
#      power_cut), and raft-store-faultfs' other integration tests (faults, engines: mounts);
#    - disk faults on the fault file system: the conformance cases `fs_faults::*`;
#    - property cases: `generated::*` (proptest, through the store), `codec::*` (codec_suite!),
#      `random_ops_match_model` (the 0.9 glue against a model, 300 random operations), and
#      compat-tests' decode (20,000 random and mutated inputs);
#    - kill and corruption loops in child processes: compat-tests' crash, kv_crash, power_loss and
#      corruption;
#    - clusters of real processes: every integration test of raft-kv (`crates/raft-kv/tests/`);
#    - the slowest of the rest, measured by a run of this script touching the facade (nextest,
#      debug build, 2 cores shared with other builds; 552 s of test time in all before these
#      were left out): the facade's shutdown_reopen (restart loops on every backend, 20-28 s per
#      test, 99 s in all), `all_cases_at_once` (openraft's whole suite in one test, whose cases
#      also run one by one; 69 s over 9 tests), `log::hundred_thousand_entries` (37 s over 5) and
#      `kv_state_machine::keys_of_any_length_apply_and_snapshot` (24 s over 5);
#    - schemathesis against a live node (`scripts/api-check.sh`) is not a cargo test: only
#      ./scripts/test.sh runs it.
#    A test binary the filter leaves out whole is not built either (`--lib --bins --test <each
#    other integration test>`; `$skipped_binaries` below names them).
#
# RocksDB: its C++ takes 15-20 minutes on 2 cores (see scripts/rocksdb-lib.sh). This script links
# the librocksdb.a a test build already made (ROCKSDB_LIB_DIR, as .ci/run does for clippy) and
# builds in a target dir of its own ($QUICK_TARGET_DIR, default ~/.cache/raft-store/target-quick):
# in the test build's target dir, a build with ROCKSDB_LIB_DIR set could rerun that build's own
# librocksdb-sys build script, and the next test build (without it) would compile the C++ again.
# The first run compiles the Rust crates in its target dir once; later runs are warm. With
# ROCKSDB_LIB_DIR already set, it builds in CARGO_TARGET_DIR as given. With no library built
# yet, it compiles RocksDB from source once, in its own target dir.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-auto}"

# The slow cases (see the header); the fast cases are all the others.
slow=(
  'test(/(^|::)power_cut::(log_ops|engine_batches)$/)'
  'binary(/power_cut/)'
  '(package(raft-store-faultfs) & kind(test))'
  'test(/(^|::)fs_faults::/)'
  'test(/(^|::)generated::/)'
  'test(/(^|::)codec::/)'
  'test(/(^|::)random_ops_match_model$/)'
  '(package(compat-tests) & binary(/^(crash|kv_crash|power_loss|corruption|decode)$/))'
  '(package(raft-kv) & kind(test))'
  'binary(/^shutdown_reopen$/)'
  'test(/(^|::)all_cases_at_once$/)'
  'test(/(^|::)hundred_thousand_entries$/)'
  'test(/(^|::)keys_of_any_length_apply_and_snapshot$/)'
)
filter=""
for case_set in "${slow[@]}"; do filter+="${filter:+ | }$case_set"; done
filter="not ($filter)"
# The test binaries (crate/binary) the filter leaves out whole: not even built.
skipped_binaries='^(raft-kv|raft-store-faultfs)/|^compat-tests/(crash|kv_crash|power_loss|corruption|decode)$|power_cut|^raft-store/shutdown_reopen$'

base_ref=main
all=0
list=0
for arg in "$@"; do
  case "$arg" in
    --all) all=1 ;;
    --list) list=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    -*)
      echo "unknown option $arg (see ./scripts/quick.sh --help)" >&2
      exit 2
      ;;
    *) base_ref=$arg ;;
  esac
done

command -v jq >/dev/null 2>&1 || {
  echo "quick.sh reads cargo metadata with jq: install it (./scripts/deps.sh does)" >&2
  exit 1
}
cargo nextest --version >/dev/null 2>&1 || {
  echo "quick.sh runs the tests with cargo-nextest: cargo install cargo-nextest --locked" >&2
  exit 1
}

if [ -z "${ROCKSDB_LIB_DIR:-}" ]; then
  # shellcheck source=scripts/rocksdb-lib.sh
  source scripts/rocksdb-lib.sh
  lib_dir=""
  for t in "${CARGO_TARGET_DIR:-}" "$HOME/.cache/raft-store/target" target; do
    [ -n "$t" ] || continue
    lib_dir=$(CARGO_TARGET_DIR="$t" built_rocksdb_dir)
    [ -n "$lib_dir" ] && break
  done
  export CARGO_TARGET_DIR="${QUICK_TARGET_DIR:-$HOME/.cache/raft-store/target-quick}"
  if [ -n "$lib_dir" ]; then
    echo "(RocksDB: the library already built in $lib_dir; target dir $CARGO_TARGET_DIR)"
    export ROCKSDB_LIB_DIR="$lib_dir" ROCKSDB_STATIC=1
  else
    echo "(RocksDB: no library built yet; it is compiled from source once, in $CARGO_TARGET_DIR)"
  fi
fi

# name<TAB>directory (relative to the workspace root) of every workspace crate, and
# crate<TAB>workspace crate it depends on (any kind of dependency).
metadata=$(cargo metadata --format-version 1 --no-deps)
crates=$(jq -r '.workspace_root as $r | .packages[]
  | [.name, (.manifest_path | ltrimstr($r + "/") | sub("/?Cargo.toml$"; ""))] | @tsv' <<<"$metadata")
edges=$(jq -r '[.packages[].name] as $ws | .packages[] | .name as $p
  | .dependencies[] | select(.path != null and (.name as $d | $ws | index($d))) | [$p, .name] | @tsv' <<<"$metadata")
# crate<TAB>integration test target, and the crates without a library.
test_targets=$(jq -r '.packages[] | .name as $p | .targets[] | select(.kind | index("test"))
  | [$p, .name] | @tsv' <<<"$metadata")
without_lib=$(jq -r '.packages[] | select([.targets[].kind[]] | index("lib") | not) | .name' <<<"$metadata")

declare -A touched=()
docs_changed=0
touch_all() { while IFS=$'\t' read -r name _; do touched[$name]=1; done <<<"$crates"; }

if [ "$all" = 1 ]; then
  touch_all
  echo "== every crate of the workspace"
else
  base=$(git merge-base HEAD "$base_ref" 2>/dev/null) || {
    echo "no merge base of HEAD and '$base_ref': name a base (./scripts/quick.sh BASE) or use --all" >&2
    exit 1
  }
  changed=$({
    git diff --name-only "$base" HEAD
    git diff --name-only HEAD
    git ls-files --others --exclude-standard
  } | sort -u)
  echo "== changed since $(git rev-parse --short "$base") ($base_ref) or uncommitted: $(grep -c . <<<"$changed" || true) files"
  while IFS= read -r file; do
    [ -n "$file" ] || continue
    # The crate whose directory holds the file, the longest match first.
    best="" best_len=0
    while IFS=$'\t' read -r name dir; do
      if [ -n "$dir" ] && [[ "$file" == "$dir"/* ]] && [ ${#dir} -gt $best_len ]; then
        best=$name best_len=${#dir}
      fi
    done <<<"$crates"
    if [ -n "$best" ]; then
      touched[$best]=1
      continue
    fi
    case "$file" in
      Cargo.toml | Cargo.lock | clippy.toml | rustfmt.toml | .config/*) touch_all ;;
      *.md) docs_changed=1 ;;
    esac
  done <<<"$changed"
  # Every crate that depends on a touched one, until nothing changes.
  grew=1
  while [ "$grew" = 1 ]; do
    grew=0
    while IFS=$'\t' read -r from to; do
      [ -n "$from" ] || continue
      if [ -n "${touched[$to]:-}" ] && [ -z "${touched[$from]:-}" ]; then
        touched[$from]=1
        grew=1
      fi
    done <<<"$edges"
  done
  # Markdown is read by the facade's own tests only: no crate that depends on it is touched.
  [ "$docs_changed" = 0 ] || touched[raft-store]=1
fi

packages=()
for name in $(printf '%s\n' "${!touched[@]}" | sort); do packages+=(-p "$name"); done
echo "== touched crates: ${packages[*]:-none}"
# Build the libraries' and binaries' unit tests and the integration tests the filter keeps
# (every target when a touched crate has no library, which `--lib` would refuse).
targets=(--lib --bins)
declare -A wanted=()
while IFS=$'\t' read -r name target; do
  [ -n "${touched[$name]:-}" ] || continue
  [[ "$name/$target" =~ $skipped_binaries ]] && continue
  wanted[$target]=1
done <<<"$test_targets"
for target in $(printf '%s\n' "${!wanted[@]}" | sort); do targets+=(--test "$target"); done
for name in $without_lib; do [ -z "${touched[$name]:-}" ] || targets=(); done
if [ "$list" = 1 ]; then
  echo "== the test targets built: ${targets[*]:-all}"
  echo "== the fast tests: -E '$filter'"
  exit 0
fi

echo "== rustfmt"
cargo fmt --all -- --check
if [ ${#packages[@]} -eq 0 ]; then
  echo "== no crate touched: formatting was all there was to check"
  exit 0
fi

echo "== clippy"
cargo clippy "${packages[@]}" --all-targets --all-features -- -D warnings

echo "== the fast tests (nextest -E '$filter')"
cargo nextest run "${packages[@]}" "${targets[@]}" --all-features --no-fail-fast -E "$filter"
echo "== quick check passed; ./scripts/test.sh runs every test"
