#!/usr/bin/env bash
# run.sh BUILD_DIR: run every benchmark and print `bench: <name> <value> <unit>` lines,
# preceded by the machine they ran on. Benchmarks print figures, never pass/fail.
set -euo pipefail
build="${1:-build/release}"
echo "bench: machine \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')\" $(nproc) cores $(free -g | awk '/Mem:/{print $2}') GiB"
for b in "$build"/bench/bench_*; do
    [ -x "$b" ] || continue
    "$b"
done
