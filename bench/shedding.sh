#!/usr/bin/env bash
# The CPU-aware ladder: a 1080p60 publish into a ladder this machine cannot encode in real time
# (low 360p30, mid 480p30, high 720p60, full 1080p60), once with `shed_rungs = false` (every rung
# drops frames) and once with it on (the top rung is shed). For each rung of the recording
# (`rendition_runs.py`): the seconds of its own encoder's picture and the frames missing from them,
# and the seconds it showed a lower rung's picture instead.
# There is no anchor: no other server degrades a ladder on purpose; the comparison is with the
# same server doing what every other one does.
# Knobs: BENCH_SHED_SECS (90, the publish), BENCH_NICE (10). Default run: about 5 minutes.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

require ffmpeg ffprobe jq curl awk python3
SECS=${BENCH_SHED_SECS:-90}
INPUT="$WORK_DIR/input-1080p60.flv"
LADDER="low 640 360 800
mid 854 480 1400
high 1280 720 2800
full 1920 1080 6000"
SUMMARY=$(mktemp)
BENCH_INPUT_DESC="input-1080p60.flv, 30 s 1080p60 H.264 8 Mb/s + AAC, looped for $SECS s"

if [[ ! -s $INPUT ]]; then
    log "generating $INPUT (30 s, 1080p60 with temporal noise; once)"
    "${NICE[@]}" ffmpeg -hide_banner -loglevel error -nostdin -y \
        -f lavfi -i "testsrc2=size=1920x1080:rate=60,noise=alls=20:allf=t+u" \
        -f lavfi -i "sine=frequency=440:sample_rate=48000" -t 30 \
        -c:v libx264 -preset veryfast -pix_fmt yuv420p -g 120 -b:v 8000k -maxrate 8000k -bufsize 16000k \
        -c:a aac -b:a 128k -f flv "$INPUT.tmp" || die "ffmpeg could not generate the input"
    mv "$INPUT.tmp" "$INPUT"
fi

# run MODE: one publish with shed_rungs = MODE; a row per rung into the summary.
run() {
    local mode=$1 key id pid rung name width rate dropped
    FC_MEDIA_TOML="shed_rungs = $mode\nshed_restore_after_secs = 30" start_ferrocast "shed-$mode" false "$LADDER"
    fc_streamer
    key=$(fc_channel "shed-$mode")
    log "publishing 1080p60 for $SECS s (shed_rungs = $mode)"
    bench_spawn "$WORK_DIR/shedding-publisher-$mode.log" ffmpeg -hide_banner -loglevel error -nostdin \
        -stream_loop -1 -re -i "$INPUT" -t "$SECS" -c copy -f flv "$FC_RTMP/$key"
    pid=$SPAWNED
    id=$(fc_wait_live "shed-$mode" 30)
    # The drop counter is part of the live health: read it just before the publish ends.
    sleep $((SECS - 8))
    dropped=$(fc_dropped "$id")
    wait "$pid" || true
    forget_pid "$pid"
    fc_wait_ready "$id" 120 >/dev/null
    for rung in "low 640 30" "mid 854 30" "high 1280 60" "full 1920 60"; do
        read -r name width rate <<<"$rung"
        echo "| $mode | $name ($rate fps) | $(python3 "$BENCH_DIR/rendition_runs.py" "$FC_HTTP/hls/$id/$name/index.m3u8" "$width" "$rate") |" >>"$SUMMARY"
    done
    echo "| $mode | (server) | ${dropped:-n/a} frames dropped in front of the encoders, 8 s before the end |" >>"$SUMMARY"
    echo "| $mode | (log) | $(grep -c 'this rung is shed' "$FC_LOG" || true) sheds, $(grep -c 'this rung is encoded again' "$FC_LOG" || true) restores |" >>"$SUMMARY"
    stop_ferrocast
}

run false
run true

OUT=$(mktemp)
{
    results_header "CPU-aware ladder: 1080p60 into low/mid/high 720p60/full 1080p60, $SECS s each way"
    echo "| shed_rungs | rung | its own encoder's picture, and the rest |"
    echo "|---|---|---|"
    cat "$SUMMARY"
} >"$OUT"
rm -f "$SUMMARY"
finish_results shedding "$OUT"
