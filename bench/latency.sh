#!/usr/bin/env bash
# Latency: the same input published in real time (ffmpeg -re -c copy) into nginx-rtmp (HLS,
# 2 s fragments, no transcoding), into ferrocast (the default ladder plus the source
# passthrough) and into ferrocast in relay mode (source rung only, no encoding), one after the other. hls_watch.py polls the live playlists every 100 ms and notes
#   - first segment: publish start → the first segment listed in the live playlist;
#   - live-edge lag: for each segment N, when it was first listed minus (publish start + the media
#     end time of N), steady state from 10 media seconds on, the final flushed segment excluded.
# Knobs: BENCH_DURATION (60), BENCH_ONLY (all|anchors|ferrocast), BENCH_NICE (10). See README.md.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

require ffmpeg ffprobe jq curl python3 awk
make_input
INPUT=$(input_file)
MEDIA_S=$(media_seconds "$INPUT")
# Watch the whole publish plus time for the last segments and the end of the stream.
WATCH_S=$((DURATION + 15))
WARMUP_S=$((DURATION >= 30 ? 10 : 4))

ROWS=$(mktemp)

rows_from() { # rows_from SERVER JSON [NOTE]
    local server=$1 json=$2 note=${3:-}
    jq -r --arg server "$server" --arg note "$note" '
        .targets[] |
        "| \($server) | \(.name) | \(.first_segment_s // "none") | \(.lag_median_s // "n/a") | \(.lag_p90_s // "n/a") | \(.lag_max_s // "n/a") | \(.segments_seen) | \(.mean_segment_s // "n/a") | \($note)\(if .gaps then " (missed a segment while polling)" else "" end) |"
    ' <<<"$json" >>"$ROWS"
}

run_nginx() {
    local t0 json
    start_nginx latency
    t0=$(now_ms)
    publish_paced "$WORK_DIR/latency-nginx-publisher.log" "$NGINX_RTMP/bench"
    local publisher=$SPAWNED
    log "publishing $MEDIA_S s into nginx-rtmp; watching for $WATCH_S s"
    run_bounded $((WATCH_S + 30)) python3 "$BENCH_DIR/hls_watch.py" --t0-ms "$t0" --seconds "$WATCH_S" --warmup "$WARMUP_S" \
        --playlist "hls=$NGINX_HTTP/hls/bench.m3u8" >"$WORK_DIR/latency-nginx.json"
    json=$(cat "$WORK_DIR/latency-nginx.json")
    stop_pid "$publisher"
    stop_nginx
    rows_from "nginx-rtmp (no transcoding)" "$json" "cuts at the publisher's keyframes (every 2 s here)"
}

# run_ferrocast MODE: "ladder" (the default ladder plus the source rung) or "relay" (`ladder = []`:
# the source rung only, no encoding).
run_ferrocast() {
    local mode=$1 key t0 json live ladder="" rungs=low,high,source label=ferrocast
    if [[ $mode == relay ]]; then ladder=none rungs=source label="ferrocast (relay mode)"; fi
    start_ferrocast "latency-$mode" true "$ladder"
    fc_streamer
    key=$(fc_channel latency-bench)
    t0=$(now_ms)
    publish_paced "$WORK_DIR/latency-ferrocast-$mode-publisher.log" "$FC_RTMP/$key"
    local publisher=$SPAWNED
    log "publishing $MEDIA_S s into ferrocast ($mode); watching for $WATCH_S s"
    run_bounded $((WATCH_S + 30)) python3 "$BENCH_DIR/hls_watch.py" --t0-ms "$t0" --seconds "$WATCH_S" --warmup "$WARMUP_S" \
        --ferrocast "$FC_HTTP" latency-bench "$rungs" >"$WORK_DIR/latency-ferrocast-$mode.json"
    json=$(cat "$WORK_DIR/latency-ferrocast-$mode.json")
    stop_pid "$publisher"
    stop_ferrocast
    live=$(jq -r '.channel_live_s // "never"' <<<"$json")
    rows_from "$label" "$json" "channel live after $live s"
}

if runs_anchors; then run_nginx; fi
if runs_ferrocast; then
    run_ferrocast ladder
    run_ferrocast relay
fi

OUT=$(mktemp)
{
    results_header "Latency: publish → live playlist (2 s segments)"
    echo "| server | playlist | first segment listed, s after publish start | live-edge lag median s | p90 s | max s | segments seen | mean segment s | notes |"
    echo "|---|---|---|---|---|---|---|---|---|"
    cat "$ROWS"
    echo
    echo "Live-edge lag = when segment N was first listed − (publish start + media end of N), so the"
    echo "segment's own duration is not counted; 0 would mean listed the instant its last frame was sent."
    echo "Steady state: segments ending after $WARMUP_S media s, the last (flushed) segment excluded. Polling"
    echo "every 100 ms adds up to 0.1 s. A player starts about three segments behind the newest listed one,"
    echo "so glass-to-glass latency is roughly lag + 3 × segment duration + the player's buffer."
    echo "nginx-rtmp only repackages the publisher's stream; ferrocast's low/high are re-encoded (decode,"
    echo "scale, x264) and its source rung is the passthrough; in relay mode ferrocast encodes nothing at all,"
    echo "the like-for-like comparison with nginx."
} >"$OUT"
rm -f "$ROWS"
finish_results latency "$OUT"
