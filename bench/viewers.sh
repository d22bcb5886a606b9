#!/usr/bin/env bash
# Many viewers of one live stream: BENCH_VIEWERS (10,000) simulated players (bench/viewers, one
# keep-alive connection each) follow a live ladder as hls.js does outside low-latency mode —
# reload the media playlist once per target duration, fetch every new segment — for
# BENCH_DURATION seconds (600) after joining over BENCH_VIEWERS_RAMP seconds (60). Reports errors
# and playlist/segment latency percentiles, and the server's CPU and RSS.
#
# All viewers watch one rendition (BENCH_VIEWERS_RENDITION, `low`): on a 2-core machine that also
# encodes the ladder and runs the viewers, 10,000 viewers of the 720p rung would be ~1.5 GB/s of
# loopback traffic; the low rung keeps the test about requests (~10,000/s) rather than bytes.
# No anchor runs beside it; the goal is the issue's: 0 errors and segment p99 < 100 ms.
#
# Knobs: BENCH_DURATION, BENCH_VIEWERS, BENCH_VIEWERS_RAMP, BENCH_VIEWERS_RENDITION, BENCH_NICE,
# VIEWERS_BIN (the simulator; built with cargo when missing). See README.md.
set -euo pipefail
VIEW_SECS=${BENCH_DURATION:-600}
export BENCH_DURATION=$((VIEW_SECS >= 60 ? 60 : 10))
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

require ffmpeg jq curl awk
make_input
VIEWERS=${BENCH_VIEWERS:-10000}
RAMP=${BENCH_VIEWERS_RAMP:-60}
RENDITION=${BENCH_VIEWERS_RENDITION:-low}
VIEWERS_BIN=${VIEWERS_BIN:-${CARGO_TARGET_DIR:-$REPO_DIR/target}/release/ferrocast-viewers}
if [[ ! -x $VIEWERS_BIN ]]; then
    log "building $VIEWERS_BIN (cargo build --release -p ferrocast-viewers)"
    (cd "$REPO_DIR" && nice -n 10 cargo build --release --locked -p ferrocast-viewers) || die "build failed"
fi
# One socket per viewer in each process (server and simulator), all from 127.0.0.1.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[[ $(ulimit -n) -gt $((VIEWERS + 1000)) ]] || die "ulimit -n $(ulimit -n) is too low for $VIEWERS viewers"

FC_EXTRA_TOML="[http]\nmax_connections = $((VIEWERS + 1000))\nmax_connections_per_address = $((VIEWERS + 1000))"
start_ferrocast viewers true ""
fc_streamer
key=$(fc_channel viewers)
publish_paced "$WORK_DIR/viewers-publisher.log" "$FC_RTMP/$key" 1
PUBLISHER=$SPAWNED
id=$(FC_TOKEN='' fc_wait_live viewers 30)
MASTER="$FC_HTTP/hls/$id/master.m3u8"
log "live: $MASTER; settling 10 s"
pause 10

log "$VIEWERS viewers joining over $RAMP s, then watching $VIEW_SECS s"
ticks=$(tree_ticks "$FC_PID")
start=$(now_ms)
bench_spawn "$WORK_DIR/viewers.json" "$VIEWERS_BIN" "$MASTER" --viewers "$VIEWERS" --secs "$VIEW_SECS" \
    --ramp-secs "$RAMP" --rendition "$RENDITION"
SIMULATOR=$SPAWNED
wait "$SIMULATOR" 2>/dev/null || log "the simulator failed (see $WORK_DIR/viewers.json)"
forget_pid "$SIMULATOR"
# The server's peak over its whole life (the viewers' time is where it peaks).
peak_kb=$(proc_status_kb "$FC_PID" VmHWM)
cpu=$(awk -v t=$(($(tree_ticks "$FC_PID") - ticks)) -v hz="$CLK_TCK" -v ms=$(($(now_ms) - start)) 'BEGIN {printf "%.0f", 100 * t / hz / (ms / 1000)}')
dropped=$(fc_dropped_total)
publisher_alive=no
kill -0 "$PUBLISHER" 2>/dev/null && publisher_alive=yes
stop_pid "$PUBLISHER"
stop_ferrocast
JSON=$(grep '^{' "$WORK_DIR/viewers.json" | tail -n 1)
[[ -n $JSON ]] || JSON='{}'

OUT=$(mktemp)
{
    results_header "Viewers: $VIEWERS simulated HLS viewers of one live stream for $VIEW_SECS s"
    echo "Goal (issue 11): 0 errors, segment p99 < 100 ms."
    echo
    echo "| request | count | p50 ms | p99 ms | p99.9 ms | max ms |"
    echo "|---|---|---|---|---|---|"
    for kind in playlist segment; do
        echo "| $kind | $(jq -r ".$kind.count // 0" <<<"$JSON") | $(jq -r ".$kind.p50_ms // \"?\"" <<<"$JSON") | $(jq -r ".$kind.p99_ms // \"?\"" <<<"$JSON") | $(jq -r ".$kind.p999_ms // \"?\"" <<<"$JSON") | $(jq -r ".$kind.max_ms // \"?\"" <<<"$JSON") |"
    done
    echo
    echo "- **errors: $(jq -r '.errors // "n/a"' <<<"$JSON")**; reconnects $(jq -r '.reconnects // "n/a"' <<<"$JSON"); examples: $(jq -c '.error_examples // []' <<<"$JSON")"
    echo "- rendition watched: $(jq -r '(.renditions // []) | join(", ")' <<<"$JSON"); $(jq -r '.requests_per_s // 0 | round' <<<"$JSON") requests/s and $(jq -r '.segment_mbytes_per_s // 0 | . * 10 | round / 10' <<<"$JSON") MB/s of segments over the whole run (ramp included)"
    echo "- server (ladder encoding included): $cpu % of one core, peak RSS $(kb_to_mb "$peak_kb") MB; frames dropped before the encoders: $dropped; publisher still connected at the end: $publisher_alive"
    echo
    echo "How it is measured: bench/viewers (one Rust process, one keep-alive HTTP/1.1 connection per viewer);"
    echo "latency is request sent → last byte in. Viewers, server, encoders and publisher share the machine's $(nproc) cores."
} >"$OUT"
finish_results "viewers" "$OUT"
