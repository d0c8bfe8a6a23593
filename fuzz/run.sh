#!/usr/bin/env bash
# Runs a cargo-fuzz target on the stable toolchain.
#
#   fuzz/run.sh TARGET SECONDS [libFuzzer options...]
#
# Environment: FUZZ_SANITIZER=address|none (default address),
#              FUZZ_JOBS=N (libFuzzer -fork=N; default 1 process).
# New inputs go to fuzz/work/TARGET (not committed); the committed seeds in
# fuzz/corpus/TARGET are only read. Crashes land in fuzz/artifacts/TARGET.
set -euo pipefail
usage="usage: fuzz/run.sh TARGET SECONDS [libFuzzer options...]"
target=${1:?$usage}
secs=${2:?$usage}
shift 2
cd "$(dirname "$0")/.."

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# cargo-fuzz passes -Z flags (sanitizer, coverage instrumentation) to rustc;
# the stable compiler accepts them when told it is bootstrapping itself.
export RUSTC_BOOTSTRAP=1

work="fuzz/work/$target"
mkdir -p "$work" "fuzz/corpus/$target"
args=(-max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 -timeout=10 -print_final_stats=1)
if [[ -n "${FUZZ_JOBS:-}" ]]; then
    args+=(-fork="$FUZZ_JOBS")
fi
exec cargo fuzz run --sanitizer "${FUZZ_SANITIZER:-address}" "$target" "$work" "fuzz/corpus/$target" -- "${args[@]}" "$@"
