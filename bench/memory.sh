#!/usr/bin/env bash
# Memory over time: resident memory (VmRSS) of ferrocast running one live ladder (the default
# low/mid/high) from a publisher that loops the input in real time, sampled every 10 s for 10
# minutes. It should be flat after the first minute: anything that grows with stream time (the
# recording's playlist, database rows) must be small. The anchor is one ffmpeg process running the
# same ladder live from the same looping input (HLS, 6-segment window), sampled the same way.
# Knobs: BENCH_MEMORY_SECS (600), BENCH_MEMORY_INTERVAL (10), BENCH_DURATION (60, the input),
# BENCH_ONLY (all|anchors|ferrocast), BENCH_NICE (10). Default run: about 21 minutes.
# BENCH_HEAPTRACK=1 runs ferrocast under heaptrack (Debian's `heaptrack`) and adds what its heap
# held by allocation site at 10 minutes and at the end (`heap_growth.py`), to find what grows.
# BENCH_SERVER_ENV: NAME=VALUE words put in ferrocast's environment (an allocator setting such as
# MALLOC_ARENA_MAX=2), named in the results.
# BENCH_RESULTS_NAME: the results file's name (memory), so that two variants can run side by side
# (with their own BENCH_WORK_DIR and ports).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

require ffmpeg ffprobe jq curl awk
HEAPTRACK=${BENCH_HEAPTRACK:-0}
[[ $HEAPTRACK == 1 ]] && require heaptrack heaptrack_print python3
make_input
INPUT=$(input_file)
MEM_SECS=${BENCH_MEMORY_SECS:-600}
INTERVAL=${BENCH_MEMORY_INTERVAL:-10}
SAMPLES_FC="$WORK_DIR/memory-ferrocast.tsv"
SAMPLES_FF="$WORK_DIR/memory-ffmpeg.tsv"
SUMMARY=$(mktemp)
HEAP_REPORT=$(mktemp)
rm -f "$SAMPLES_FC" "$SAMPLES_FF"

# sample_rss PID SECONDS FILE: "t_s rss_kb" every INTERVAL from now on, t = 0 included; stops early
# if the process exits.
sample_rss() {
    local pid=$1 secs=$2 file=$3 start t
    : >"$file"
    start=$(date +%s)
    for ((t = 0; t <= secs; t += INTERVAL)); do
        while (($(date +%s) < start + t)); do sleep 0.2; done
        kill -0 "$pid" 2>/dev/null || { log "pid $pid exited at t=$t s"; return 0; }
        echo "$t $(proc_status_kb "$pid" VmRSS)" >>"$file"
    done
}

# summarize LABEL FILE NOTE: RSS at 1 min and at the end, the range after 1 min, and the slopes
# of least-squares lines through the samples after 1 min and after 10 min (the target's window,
# when the run is longer than 20 min).
summarize() {
    awk -v label="$1" -v note="$3" '
        function slope_from(from,    i, n, sx, sy, sxx, sxy) {
            n = sx = sy = sxx = sxy = 0
            for (i = 1; i <= NR; i++) if (t[i] >= from) {n++; sx += t[i]; sy += r[i]; sxx += t[i] * t[i]; sxy += t[i] * r[i]}
            return (n > 1 && n * sxx - sx * sx != 0) ? sprintf("%+.2f", (n * sxy - sx * sy) / (n * sxx - sx * sx) * 60) : "n/a"
        }
        {t[NR] = $1; r[NR] = $2 / 1024}
        END {
            if (NR == 0) {printf "| %s | no samples | | | | | | %s |\n", label, note; exit}
            at1 = "n/a"; lo = 1e18; hi = 0; n = 0
            for (i = 1; i <= NR; i++) {
                if (t[i] == 60) at1 = sprintf("%.0f", r[i])
                if (t[i] >= 60) {n++; if (r[i] < lo) lo = r[i]; if (r[i] > hi) hi = r[i]}
            }
            range = (n > 0) ? sprintf("%.0f–%.0f", lo, hi) : "n/a"
            after10 = (t[NR] > 1200) ? slope_from(600) : "n/a"
            printf "| %s | %s | %.0f (t=%d s) | %s | %s | %s | %s |\n", label, at1, r[NR], t[NR], range, slope_from(60), after10, note
        }' "$2" >>"$SUMMARY"
}

run_ffmpeg() {
    local out="$WORK_DIR/memory-ffmpeg" pid
    rm -rf "$out"
    mkdir -p "$out"
    log "ffmpeg live ladder from the looping input for $MEM_SECS s"
    bench_spawn "$out/ffmpeg.log" ffmpeg -hide_banner -loglevel error -nostdin -y -stream_loop -1 -re -i "$INPUT" \
        -filter_complex "[0:v]split=3[s0][s1][s2];[s0]scale=640:360:flags=bilinear,setsar=1[v0];[s1]scale=854:480:flags=bilinear,setsar=1[v1];[s2]scale=1280:720:flags=bilinear,setsar=1[v2]" \
        -map "[v0]" -map "[v1]" -map "[v2]" -map 0:a -map 0:a -map 0:a \
        -c:v libx264 -preset superfast -tune zerolatency -profile:v main -pix_fmt yuv420p -bf 0 -fps_mode passthrough \
        -g 60 -keyint_min 60 -sc_threshold 0 \
        -b:v:0 800k -maxrate:v:0 800k -bufsize:v:0 480k -b:v:1 1400k -maxrate:v:1 1400k -bufsize:v:1 840k \
        -b:v:2 2800k -maxrate:v:2 2800k -bufsize:v:2 1680k -c:a copy -t "$((MEM_SECS + 30))" \
        -f hls -hls_time 2 -hls_list_size 6 -hls_flags delete_segments -hls_segment_type mpegts \
        -hls_segment_filename "$out/%v/seg_%05d.ts" -master_pl_name master.m3u8 \
        -var_stream_map "v:0,a:0,name:low v:1,a:1,name:mid v:2,a:2,name:high" "$out/%v/index.m3u8"
    pid=$SPAWNED
    sample_rss "$pid" "$MEM_SECS" "$SAMPLES_FF"
    local last
    last=$(awk '/^#EXT-X-MEDIA-SEQUENCE:/ {split($0, p, ":"); s = p[2]} /^#EXTINF/ {n++} END {print s + n}' "$out/high/index.m3u8" 2>/dev/null || echo 0)
    stop_pid "$pid" 15
    summarize "ffmpeg, one process (same ladder, live)" "$SAMPLES_FF" "$last high segments written (≈ $((MEM_SECS / 2)) expected)"
}

run_ferrocast() {
    local key id pid segs status dropped
    # The owner's view (dropped frames) is read at the end: the access token must outlive the run.
    local heap_file="$WORK_DIR/memory-heaptrack-${MEM_SECS}s" server_pid
    rm -f "$heap_file".*
    local wrapper=${BENCH_SERVER_ENV:-}
    [[ $HEAPTRACK == 1 ]] && wrapper="$wrapper heaptrack -o $heap_file"
    # The whole ladder all the time: a shed rung (a busy moment on a shared machine) would change
    # what is measured halfway.
    FC_WRAPPER=$wrapper FC_MEDIA_TOML="shed_rungs = false" FC_EXTRA_TOML="[auth]\naccess_token_ttl_secs = $((MEM_SECS + 600))" start_ferrocast memory false
    # Under heaptrack the server is the wrapper's child: that is the process to sample and stop.
    server_pid=$FC_PID
    [[ $HEAPTRACK == 1 ]] && server_pid=$(pgrep -P "$FC_PID" -f -- "^$FERROCAST_BIN ")
    fc_streamer
    key=$(fc_channel memory-bench)
    publish_paced "$WORK_DIR/memory-publisher.log" "$FC_RTMP/$key" 1
    pid=$SPAWNED
    log "ferrocast live ladder from the looping input for $MEM_SECS s"
    sample_rss "$server_pid" "$MEM_SECS" "$SAMPLES_FC"
    id=$(curl -sf "$FC_HTTP/api/channels/memory-bench" | jq -r '.live_video_id // empty')
    segs=0
    status="not live at the end"
    if [[ -n $id ]]; then
        segs=$(curl -sf "$FC_HTTP/hls/$id/high/recording.m3u8" | grep -c '^#EXTINF' || true)
        dropped=$(fc_dropped "$id")
        status="still live, ${dropped:-n/a} frames dropped (server's count)"
    fi
    kill -0 "$pid" 2>/dev/null || status="$status; the publisher had exited (see work/memory-publisher.log)"
    stop_pid "$pid"
    if [[ $HEAPTRACK == 1 ]]; then
        # Killed, not stopped: what heaptrack counts as never freed is then the heap in use at the
        # end, by allocation site. `heaptrack_print -f LONG -d SHORT -l` compares two runs' ends.
        kill -KILL "$server_pid" 2>/dev/null || true
        while kill -0 "$FC_PID" 2>/dev/null; do sleep 1; done
        heaptrack_print -f "$heap_file".* -M "$WORK_DIR/memory-heap.massif" --massif-detailed-freq 0 >/dev/null
        {
            python3 "$BENCH_DIR/heap_growth.py" "$WORK_DIR/memory-heap.massif" 600
            echo
            echo "Heap in use at the end by allocation site (heaptrack's \"leaked\", top 12): \`$heap_file.*\`"
            echo
            echo '```'
            heaptrack_print -f "$heap_file".* -p 0 -a 0 -T 0 -l 1 -n 12 -s 2 | sed -n '/^MEMORY LEAKS/,$p' | awk 'NR <= 150'
            echo '```'
        } >"$HEAP_REPORT"
    fi
    stop_ferrocast
    summarize "ferrocast live ladder" "$SAMPLES_FC" "$segs high segments recorded (≈ $((MEM_SECS / 2)) expected); $status"
}

if runs_anchors; then run_ffmpeg; fi
if runs_ferrocast; then run_ferrocast; fi

OUT=$(mktemp)
{
    results_header "Memory: one live ladder for $((MEM_SECS / 60)) min ($MEM_SECS s), VmRSS every $INTERVAL s"
    if [[ -n ${BENCH_SERVER_ENV:-} ]]; then echo "ferrocast's environment: \`$BENCH_SERVER_ENV\`"; echo; fi
    echo "| process | RSS at 1 min, MB | RSS at the end, MB | range after 1 min, MB | trend after 1 min, MB per min | trend after 10 min, MB per min | notes |"
    echo "|---|---|---|---|---|---|---|"
    cat "$SUMMARY"
    echo
    echo "Trend: slope of a least-squares line through the samples from 60 s on; flat is ±0.1 MB/min or so"
    echo "(allocators do not give every freed page back). All samples, MB:"
    echo
    if [[ -s $HEAP_REPORT ]]; then
        echo "Heap (heaptrack, ferrocast):"
        echo
        cat "$HEAP_REPORT"
        echo
    fi
    echo "| t s | ferrocast | ffmpeg |"
    echo "|---|---|---|"
    join -a1 -a2 -e - -o 0,1.2,2.2 <(sort -k1,1 "$SAMPLES_FC" 2>/dev/null || true) <(sort -k1,1 "$SAMPLES_FF" 2>/dev/null || true) |
        sort -n | awk '{f = ($2 == "-") ? "-" : sprintf("%.1f", $2 / 1024); g = ($3 == "-") ? "-" : sprintf("%.1f", $3 / 1024); printf "| %s | %s | %s |\n", $1, f, g}'
} >"$OUT"
rm -f "$SUMMARY" "$HEAP_REPORT"
finish_results "${BENCH_RESULTS_NAME:-memory}" "$OUT"
