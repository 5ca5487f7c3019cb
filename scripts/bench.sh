#!/usr/bin/env bash
# The performance benchmarks (docs/performance.md), one command:
#
#   scripts/bench.sh [watch|store|relist|latency|chart|all] [RUNS]
#   scripts/bench.sh scale [RUNS]      (RUNS default 3)
#
# Builds the reference router and the perf/ project in release, runs the chosen
# benchmark(s) with the router as a separate process (client CPU is the client's own
# getrusage), RUNS times each (default 5, medians reported), merges the numbers into
# perf/results/results.json and draws docs/performance.svg. Not run in CI.
#
# `scale` (not part of `all`: it takes several minutes and a few GB of memory at 1M)
# measures, for N containers (SIZES, default 10000,100000,300000,1000000): router start,
# the informer's first list and relist (seconds, peak and steady heap), heap per cached
# container and events/s with N cached against 31 cached, without and with transparent
# huge pages for the client's heap (SCALE_EVENTS events a run, default 1000000). It writes perf/results/scale.json and draws docs/scale.svg.
#
# Environment: CARGO_TARGET_DIR (default: target/), EVENTS (watch, default 2000000),
# CONTAINERS (relist, default 100000), RATE and SECONDS_MEASURED (latency, default 20000 and 10).
set -euo pipefail

what="${1:-all}"
runs="${2:-5}"
# The scale benchmark's runs are long: three by default.
[ "$what" = scale ] && runs="${2:-3}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
bins="$CARGO_TARGET_DIR/release"
results="$root/perf/results/results.json"

case "$what" in
    watch | store | relist | latency | chart | all | scale) ;;
    *)
        echo "usage: scripts/bench.sh [watch|store|relist|latency|chart|all|scale] [RUNS]" >&2
        exit 2
        ;;
esac

cargo build --release -p hypersh-apirouter --bin apirouter
cargo build --release --locked --manifest-path perf/Cargo.toml --bins

if [ "$what" = watch ] || [ "$what" = all ]; then
    # Client (d): Hyper.sh's signer and the websocket package, from npm.
    (cd perf/node && npm install --no-audit --no-fund --loglevel=error)
fi

bench() { "$bins/bench" --bins "$bins" --runs "$runs" --out "$results" "$@"; }

if [ "$what" = scale ]; then
    scale="$root/perf/results/scale.json"
    "$bins/bench" --bins "$bins" --runs "$runs" --out "$scale" \
        scale --sizes "${SIZES:-10000,100000,300000,1000000}" --events "${SCALE_EVENTS:-1000000}"
    "$bins/scalechart" --results "$scale" --out "$root/docs/scale.svg"
    echo "results: $scale"
    exit 0
fi

case "$what" in
    watch) bench watch --events "${EVENTS:-2000000}" --node-dir perf/node ;;
    store) bench store ;;
    relist) bench relist --containers "${CONTAINERS:-100000}" ;;
    latency) bench latency --rate "${RATE:-20000}" --seconds "${SECONDS_MEASURED:-10}" ;;
    chart) ;;
    all)
        bench watch --events "${EVENTS:-2000000}" --node-dir perf/node
        bench store
        bench relist --containers "${CONTAINERS:-100000}"
        bench latency --rate "${RATE:-20000}" --seconds "${SECONDS_MEASURED:-10}"
        ;;
esac

"$bins/chart" --results "$results" --out "$root/docs/performance.svg"
echo "results: $results"
