#!/usr/bin/env bash
# The long run of the RTMP session fuzz harness (ingest/tests/rtmp_fuzz.rs): a million mutated
# publisher sessions (default) through the sans-IO session in a release build, on stable Rust. The
# test suite runs a thousand of them; this is the run whose result docs/performance.md records.
#
#   bench/rtmp-fuzz.sh            # 1,000,000 sessions
#   bench/rtmp-fuzz.sh 200000     # fewer
#
# A panic prints its seed; FERROCAST_FUZZ_SEED=N replays that one session.
set -euo pipefail
cd "$(dirname "$0")/.."
iterations=${1:-1000000}
started=$(date +%s)
FERROCAST_FUZZ_ITERATIONS=$iterations cargo test --release --locked -p ferrocast-ingest --test rtmp_fuzz -- --nocapture 2>&1 |
    grep -E "sessions|test result|panicked|seed"
echo "elapsed: $(( $(date +%s) - started )) s (build included)"
