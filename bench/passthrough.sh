#!/usr/bin/env bash
# Passthrough publishers: server CPU and memory with 1, 10 and 40 concurrent publishers, each
# ffmpeg -re -c copy of the same pre-encoded 720p file on its own stream key, into nginx-rtmp (HLS
# on) and into ferrocast in relay mode (`[media] ladder = []`, `include_source = true`: the source
# rung only, FLV tags repackaged into CMAF segments and LL-HLS parts by the Rust packager, with no
# GStreamer pipeline; the latest keyframe is decoded once per thumbnail interval). Each
# (server, N) pair gets a fresh server; after a warm-up, CPU (utime+stime of the server's whole
# process tree) and RSS (sampled every second) are measured over a steady window, and every
# stream's live playlist is read at the start and end of the window to see whether the server kept
# up (≈ window / 2 new segments each).
#
# Knobs: BENCH_PUBLISHERS ("1 10 40"), BENCH_WARMUP (10), BENCH_WINDOW (30), BENCH_DURATION (60,
# the input; publishers loop it), BENCH_ONLY (all|anchors|ferrocast), BENCH_NICE (10).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

require ffmpeg ffprobe jq curl awk
make_input
PUBLISHERS=${BENCH_PUBLISHERS:-1 10 40}
WARMUP=${BENCH_WARMUP:-10}
WINDOW=${BENCH_WINDOW:-30}

ROWS=$(mktemp)
COSTS=$(mktemp) # "publishers cpu% mean-rss-kb label" per measurement, for the per-stream costs
FC_IDS=()

# measure SERVER_LABEL N SERVER_PID PLAYLIST_URL...: warm-up, then the steady window; appends a row.
# The publishers are in PUB_PIDS.
measure() {
    local label=$1 n=$2 server=$3
    shift 3
    local urls=("$@") i ticks0 ticks1 pticks0 pticks1 rss peak=0 sum=0 samples=0 start_seq=() produced=() alive=0 t_start t_end
    local dropped="n/a" dropped0=0 dropped1=0
    pause "$WARMUP"
    for i in "${!urls[@]}"; do start_seq+=("$(playlist_last_seq "${urls[i]}")"); done
    # ferrocast's own count of dropped frames, summed over its live videos (FC_IDS set: ferrocast).
    ((${#FC_IDS[@]} > 0)) && dropped0=$(fc_dropped_total)
    ticks0=$(tree_ticks "$server")
    pticks0=0
    for i in "${PUB_PIDS[@]}"; do pticks0=$((pticks0 + $(proc_ticks "$i"))); done
    t_start=$(now_ms)
    while (($(now_ms) < t_start + WINDOW * 1000)); do
        rss=$(tree_rss_kb "$server")
        ((rss > peak)) && peak=$rss
        sum=$((sum + rss))
        samples=$((samples + 1))
        sleep 1
    done
    ticks1=$(tree_ticks "$server")
    t_end=$(now_ms)
    pticks1=0
    for i in "${PUB_PIDS[@]}"; do
        pticks1=$((pticks1 + $(proc_ticks "$i")))
        kill -0 "$i" 2>/dev/null && alive=$((alive + 1))
    done
    for i in "${!urls[@]}"; do
        local end_seq
        end_seq=$(playlist_last_seq "${urls[i]}")
        if ((start_seq[i] < 0 || end_seq < 0)); then produced+=(0); else produced+=($((end_seq - start_seq[i]))); fi
    done
    if ((${#FC_IDS[@]} > 0)); then
        dropped1=$(fc_dropped_total)
        if [[ -n $dropped0 && -n $dropped1 ]]; then dropped=$((dropped1 - dropped0)); fi
    fi
    local secs sorted
    secs=$(awk -v a="$t_start" -v b="$t_end" 'BEGIN {print (b - a) / 1000}')
    sorted=$(printf '%s\n' "${produced[@]}" | sort -n)
    local cpu_pct
    cpu_pct=$(awk -v t=$((ticks1 - ticks0)) -v hz="$CLK_TCK" -v s="$secs" 'BEGIN {printf "%.1f", 100 * t / hz / s}')
    echo "$n $cpu_pct $((sum / samples)) $label" >>"$COSTS"
    add_row "| $label | $n | $cpu_pct | $(kb_to_mb "$peak") | $(kb_to_mb $((sum / samples))) | $(head -n1 <<<"$sorted") / $(sed -n "$(((n + 1) / 2))p" <<<"$sorted") / $(tail -n1 <<<"$sorted") (expect ≈ $(awk -v s="$secs" 'BEGIN {printf "%.0f", s / 2}')) | $dropped | $alive of $n | $(awk -v t=$((pticks1 - pticks0)) -v hz="$CLK_TCK" -v s="$secs" 'BEGIN {printf "%.1f", 100 * t / hz / s}') |"
}

add_row() { echo "$*" >>"$ROWS"; }

run_nginx() {
    local n=$1 i urls=()
    start_nginx "passthrough-$n"
    PUB_PIDS=()
    mkdir -p "$WORK_DIR/passthrough-logs"
    for ((i = 1; i <= n; i++)); do
        publish_paced "$WORK_DIR/passthrough-logs/nginx-$n-$i.log" "$NGINX_RTMP/s$i" 1
        PUB_PIDS+=("$SPAWNED")
        urls+=("$NGINX_HTTP/hls/s$i.m3u8")
    done
    FC_IDS=()
    log "nginx-rtmp: $n publishers; warm-up $WARMUP s, window $WINDOW s"
    measure "nginx-rtmp (HLS on)" "$n" "$NGINX_PID" "${urls[@]}"
    stop_pids "${PUB_PIDS[@]}"
    stop_nginx
}

run_ferrocast() {
    local n=$1 i keys=() urls=() id
    FC_IDS=()
    start_ferrocast "passthrough-$n" true none
    fc_streamer
    for ((i = 1; i <= n; i++)); do keys+=("$(fc_channel "pass-$i")"); done
    PUB_PIDS=()
    mkdir -p "$WORK_DIR/passthrough-logs"
    for ((i = 1; i <= n; i++)); do
        publish_paced "$WORK_DIR/passthrough-logs/ferrocast-$n-$i.log" "$FC_RTMP/${keys[i - 1]}" 1
        PUB_PIDS+=("$SPAWNED")
    done
    local deadline=$(($(date +%s) + 120))
    for ((i = 1; i <= n; i++)); do
        id=$(fc_wait_live "pass-$i" $((deadline > $(date +%s) ? deadline - $(date +%s) : 1)))
        urls+=("$FC_HTTP/hls/$id/source/index.m3u8")
        FC_IDS+=("$id")
    done
    log "ferrocast: $n publishers; warm-up $WARMUP s, window $WINDOW s"
    measure "ferrocast (relay: source rung only)" "$n" "$FC_PID" "${urls[@]}"
    stop_pids "${PUB_PIDS[@]}"
    stop_ferrocast
}

for n in $PUBLISHERS; do
    if runs_anchors; then run_nginx "$n"; fi
    if runs_ferrocast; then run_ferrocast "$n"; fi
done

OUT=$(mktemp)
{
    results_header "Passthrough publishers: server CPU and memory"
    echo "| server | publishers | server CPU % (100 = one core) | peak RSS MB | mean RSS MB | new segments per stream in the window, min / median / max | frames dropped in the window (server's count) | publishers alive at the end | publishers' CPU % |"
    echo "|---|---|---|---|---|---|---|---|---|"
    cat "$ROWS"
    echo
    # Per extra stream: the slope between the fewest and the most publishers measured, per server.
    awk '{label = substr($0, index($0, $4)); n[label, ++c[label]] = $1; cpu[label, c[label]] = $2; rss[label, c[label]] = $3}
        END {
            for (l in c) if (c[l] > 1) {
                lo = 1; hi = 1
                for (i = 1; i <= c[l]; i++) { if (n[l, i] < n[l, lo]) lo = i; if (n[l, i] > n[l, hi]) hi = i }
                if (n[l, hi] == n[l, lo]) continue
                d = n[l, hi] - n[l, lo]
                printf "- %s, per extra stream (%d → %d publishers): %.2f %% of a core, %.1f MB of mean RSS\n", l, n[l, lo], n[l, hi], (cpu[l, hi] - cpu[l, lo]) / d, (rss[l, hi] - rss[l, lo]) / d / 1024
            }
        }' "$COSTS" | sort
    echo
    echo "Steady window: $WINDOW s after a $WARMUP s warm-up. CPU and RSS cover the server's whole process tree"
    echo "(nginx: master + one worker). The publishers (ffmpeg -re -stream_loop -1 -c copy, one per stream key)"
    echo "run on the same $(nproc) cores for both servers; their own CPU is the last column. A server that keeps"
    echo "up adds about one 2 s segment per stream every 2 s."
    echo
    echo "ferrocast runs in relay mode ([media] ladder = [], include_source = true): each stream's FLV tags are"
    echo "repackaged by the Rust packager into 2 s CMAF segments with 250 ms LL-HLS parts, with no GStreamer"
    echo "pipeline; one keyframe per thumbnail interval (30 s) is decoded for the thumbnail. nginx-rtmp writes"
    echo "2 s MPEG-TS segments. Both servers cut at the publisher's keyframes (every 2 s in this input). Nobody"
    echo "watches: the playlists are read twice per stream. Issue 9's goal: ferrocast ≤ 1.5× nginx-rtmp's CPU"
    echo "and ≤ 4 MB of RSS per stream at 40 publishers."
} >"$OUT"
rm -f "$ROWS" "$COSTS"
finish_results passthrough "$OUT"
