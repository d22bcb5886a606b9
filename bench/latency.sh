#!/usr/bin/env bash
# Latency: the same input published in real time (ffmpeg -re -c copy) into nginx-rtmp (HLS,
# 2 s fragments, no transcoding), into ferrocast (the default ladder plus the source
# passthrough) and into ferrocast in relay mode (source rung only, no encoding), one after the
# other. The publisher goes through rtmp_tap.py, a loopback relay that notes when every video frame
# reaches the server; hls_watch.py polls the live playlists every 50 ms (BENCH_POLL_S) and notes
# when each segment and LL-HLS part is first listed:
#   - first part / first segment: first listed − arrival of the first keyframe at the server;
#   - live-edge lag: for each segment N (and each part), first listed − arrival of its last frame,
#     steady state from 10 media seconds on, the final flushed segment excluded;
#   - as before (the publisher's clock): first segment after publish start, and segment listed −
#     (publish start + media end of N).
# Knobs: BENCH_DURATION (60), BENCH_ONLY (all|anchors|ferrocast), BENCH_NICE (10),
# BENCH_TAP_PORT (19352), BENCH_POLL_S (0.05). See README.md.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

require ffmpeg ffprobe jq curl python3 awk
make_input
INPUT=$(input_file)
MEDIA_S=$(media_seconds "$INPUT")
# Watch the whole publish plus time for the last segments and the end of the stream.
WATCH_S=$((DURATION + 15))
WARMUP_S=$((DURATION >= 30 ? 10 : 4))
TAP_PORT=${BENCH_TAP_PORT:-19352}
POLL_S=${BENCH_POLL_S:-0.05}

ROWS=$(mktemp)
EDGE_ROWS=$(mktemp)

rows_from() { # rows_from SERVER JSON [NOTE]
    local server=$1 json=$2 note=${3:-}
    jq -r --arg server "$server" --arg note "$note" '
        .targets[] |
        "| \($server) | \(.name) | \(.first_segment_s // "none") | \(.lag_median_s // "n/a") | \(.lag_p90_s // "n/a") | \(.lag_max_s // "n/a") | \(.segments_seen) | \(.mean_segment_s // "n/a") | \($note)\(if .gaps then " (missed a segment while polling)" else "" end) |"
    ' <<<"$json" >>"$ROWS"
    jq -r --arg server "$server" '
        . as $all | .targets[] |
        "| \($server) | \(.name) | \(.first_part_after_key_s // "no parts") | \(.first_segment_after_key_s // "none") | \(.edge_lag_median_s // "n/a") | \(.edge_lag_p90_s // "n/a") | \(.edge_lag_max_s // "n/a") | \(.part_lag_median_s // "–") | \(.part_lag_p90_s // "–") | \(.part_lag_max_s // "–") | \(.edge_lag_count // 0) / \(.part_lag_count // 0) | \(.boundary_offset_max_ms // "n/a") | \($all.first_key_after_t0_s // "n/a") |"
    ' <<<"$json" >>"$EDGE_ROWS"
}

# start_tap UPSTREAM_PORT NAME: rtmp_tap.py on TAP_PORT in front of the server; sets TAP_PID, TAP_OUT.
start_tap() {
    local i
    port_free "$TAP_PORT"
    TAP_OUT="$WORK_DIR/latency-$2-arrivals.jsonl"
    bench_spawn "$WORK_DIR/latency-$2-tap.log" python3 "$BENCH_DIR/rtmp_tap.py" --listen "$TAP_PORT" --upstream "$1" \
        --out "$TAP_OUT" --seconds $((WATCH_S + 60))
    TAP_PID=$SPAWNED
    for ((i = 0; i < 50; i++)); do
        grep -q '^listening' "$WORK_DIR/latency-$2-tap.log" 2>/dev/null && return 0
        sleep 0.1
    done
    die "rtmp_tap.py did not listen on $TAP_PORT"
}
TAP_RTMP="rtmp://127.0.0.1:$TAP_PORT/live"

run_nginx() {
    local t0 json
    start_nginx latency
    start_tap "$NGINX_RTMP_PORT" nginx
    t0=$(now_ms)
    publish_paced "$WORK_DIR/latency-nginx-publisher.log" "$TAP_RTMP/bench"
    local publisher=$SPAWNED
    log "publishing $MEDIA_S s into nginx-rtmp; watching for $WATCH_S s"
    run_bounded $((WATCH_S + 30)) python3 "$BENCH_DIR/hls_watch.py" --t0-ms "$t0" --seconds "$WATCH_S" --warmup "$WARMUP_S" \
        --interval "$POLL_S" --arrivals "$TAP_OUT" --playlist "hls=$NGINX_HTTP/hls/bench.m3u8" >"$WORK_DIR/latency-nginx.json"
    json=$(cat "$WORK_DIR/latency-nginx.json")
    stop_pid "$publisher"
    stop_pid "$TAP_PID"
    stop_nginx
    rows_from "nginx-rtmp (no transcoding)" "$json" "cuts at the publisher's keyframes (every 2 s here)"
}

# run_ferrocast MODE: "ladder" (the default ladder plus the source rung) or "relay" (`ladder = []`:
# the source rung only, no encoding).
run_ferrocast() {
    local mode=$1 key t0 json live ladder="" rungs=low,mid,high,source label=ferrocast
    if [[ $mode == relay ]]; then ladder=none rungs=source label="ferrocast (relay mode)"; fi
    start_ferrocast "latency-$mode" true "$ladder"
    fc_streamer
    key=$(fc_channel latency-bench)
    start_tap "$FC_RTMP_PORT" "ferrocast-$mode"
    t0=$(now_ms)
    publish_paced "$WORK_DIR/latency-ferrocast-$mode-publisher.log" "$TAP_RTMP/$key"
    local publisher=$SPAWNED
    log "publishing $MEDIA_S s into ferrocast ($mode); watching for $WATCH_S s"
    run_bounded $((WATCH_S + 30)) python3 "$BENCH_DIR/hls_watch.py" --t0-ms "$t0" --seconds "$WATCH_S" --warmup "$WARMUP_S" \
        --interval "$POLL_S" --arrivals "$TAP_OUT" --token "$FC_TOKEN" \
        --ferrocast "$FC_HTTP" latency-bench "$rungs" >"$WORK_DIR/latency-ferrocast-$mode.json"
    json=$(cat "$WORK_DIR/latency-ferrocast-$mode.json")
    stop_pid "$publisher"
    stop_pid "$TAP_PID"
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
    results_header "Latency: publish → live playlist (2 s segments, LL-HLS parts)"
    echo "Measured at the server's door: rtmp_tap.py (a loopback relay between the publisher and the server)"
    echo "notes when each video frame arrives. Goals (issue 9): first part ≤ 1.0 s after the first keyframe"
    echo "arrives; first segment ≤ segment duration + 0.3 s (2.3 s); live-edge lag ≤ nginx-rtmp's."
    echo
    echo "| server | playlist | first part listed, s after the first keyframe arrived | first segment listed, s after it | live-edge lag median s | p90 s | max s | part lag median s | p90 s | max s | segments / parts measured | segment ends vs source keyframes, max ms | first keyframe arrived, s after publish start |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    cat "$EDGE_ROWS"
    echo
    echo "Live-edge lag = when segment N was first listed − when its last frame arrived (the latest-arriving"
    echo "frame whose PTS, counted from the first keyframe's, is before the end of N; the end is the sum of the"
    echo "EXTINF durations before it). Part lag: the same for every LL-HLS part. Steady state: ends after"
    echo "$WARMUP_S media s, the last (flushed) segment excluded. The playlists are polled every ${POLL_S} s, which adds"
    echo "up to that much to every number here. The last column but one checks the mapping: segment ends of"
    echo "rungs cut at the publisher's keyframes should be ≈ 0 ms from one (the re-encoded rungs cut by time)."
    echo
    echo "The same runs, against the publisher's clock (as in earlier results):"
    echo
    echo "| server | playlist | first segment listed, s after publish start | live-edge lag median s | p90 s | max s | segments seen | mean segment s | notes |"
    echo "|---|---|---|---|---|---|---|---|---|"
    cat "$ROWS"
    echo
    echo "Live-edge lag here = when segment N was first listed − (publish start + media end of N), so the"
    echo "segment's own duration is not counted; 0 would mean listed the instant its last frame was sent. The"
    echo "publisher's start-up (exec, connect, handshake; see the last column above) counts here."
    echo
    echo "nginx-rtmp only repackages the publisher's stream; ferrocast's low/mid/high are re-encoded (decode,"
    echo "scale, x264) and its source rung is the passthrough; in relay mode ferrocast encodes nothing at all,"
    echo "the like-for-like comparison with nginx."
} >"$OUT"
rm -f "$ROWS" "$EDGE_ROWS"
finish_results latency "$OUT"
