#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 600), one after the
# other, and prints libFuzzer's final stats line of each; a failing target's log tail and
# crash input are printed too. CI (.ci/run) runs it for 60 s a target.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Only a stable toolchain is installed: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its
# nightly-only flags (-Zsanitizer=address, ...) to stable rustc. Set FUZZ_SANITIZER=none
# when AddressSanitizer does not link; FUZZ_JOBS=N runs N targets at once.
# Crashes land in fuzz/artifacts/<target>/ (git-ignored, as is fuzz/corpus/); each run's
# full libFuzzer output is in fuzz/target/logs/<target>.log.
set -euo pipefail

seconds="${1:-600}"
shift || true
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/fuzz"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi
sanitizer="${FUZZ_SANITIZER:-address}"
jobs="${FUZZ_JOBS:-1}"
logs="$root/fuzz/target/logs"  # git-ignored with fuzz/target
mkdir -p "$logs"

export RUSTC_BOOTSTRAP=1
# Build every target first so the timed runs measure fuzzing, not compiling.
for t in "${targets[@]}"; do
    cargo fuzz build --sanitizer "$sanitizer" "$t"
done

run() {
    local t="$1"
    local log="$logs/$t.log"
    mkdir -p "corpus/$t"
    # -max_total_time ends the run; a crash ends it earlier with a non-zero status.
    if cargo fuzz run --sanitizer "$sanitizer" "$t" "corpus/$t" -- \
        -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
        status=ok
    else
        status="FAILED (see $log and fuzz/artifacts/$t/)"
    fi
    local execs crashes
    execs="$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -1)"
    crashes="$(find "artifacts/$t" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' \) 2>/dev/null | wc -l)"
    echo "$t: ${status}; executions ${execs:-?}; crash/oom/timeout inputs ${crashes}"
    if [ "$status" != ok ]; then
        # What a CI log must show: libFuzzer's report and the input, in hex.
        tail -n 40 "$log" | sed "s/^/  $t | /"
        find "artifacts/$t" -type f 2>/dev/null | head -3 | while read -r input; do
            echo "  $t | $input:"
            od -A d -t x1 "$input" | head -16 | sed "s/^/  $t |   /"
        done
    fi
    [ "$status" = ok ]
}

failed=0
pids=()
for t in "${targets[@]}"; do
    run "$t" &
    pids+=("$!")
    if [ "${#pids[@]}" -ge "$jobs" ]; then
        wait "${pids[0]}" || failed=1
        pids=("${pids[@]:1}")
    fi
done
for p in "${pids[@]}"; do
    wait "$p" || failed=1
done
exit "$failed"
