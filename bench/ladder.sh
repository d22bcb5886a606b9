#!/usr/bin/env bash
# Ladder speed and CPU: the same 720p30 input through the same low/mid/high ladder, three ways:
#   1. ferrocast live: the file published in real time over RTMP (ffmpeg -re -c copy); the server's
#      CPU seconds per media second, its peak RSS, and whether the recording kept every frame.
#   2. gst-launch-1.0 unpaced: the pipeline ferrocast builds (media/src/live_pipeline.rs describe()),
#      fed from the file as fast as it goes: realtime factor, CPU per media second, peak RSS. With
#      GStreamer's videoscale where ferrocast uses its own scaler (media/src/scale.rs, which only
#      exists inside the ferrocast binary): the difference between rows 1 and 2 is mostly that.
#   3. ffmpeg unpaced: one process, decode once, split=3, scale, libx264 with the same settings,
#      audio copied, 2 s HLS segments.
# Knobs: BENCH_DURATION (60), BENCH_REPEAT (3 unpaced runs each), BENCH_ONLY (all|anchors|ferrocast),
# BENCH_NICE (10). See README.md.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

require ffmpeg ffprobe gst-launch-1.0 jq curl awk /usr/bin/time timeout
make_input
INPUT=$(input_file)
MEDIA_S=$(media_seconds "$INPUT")
IN_FRAMES=$(video_packets "$INPUT")
# Unpaced runs should take a fraction of the media duration; this only bounds a hang.
UNPACED_TIMEOUT=$((DURATION * 10 + 120))
# Unpaced runs per anchor; the table shows medians (and the wall-time range).
REPEAT=${BENCH_REPEAT:-3}

# The ladder (ferrocast's default): name width height kbps. Widths are what ladder.rs plans for 16:9.
RUNGS=("low 640 360 800" "mid 854 480 1400" "high 1280 720 2800")

ROWS=$(mktemp)
add_row() { echo "$*" >>"$ROWS"; }
fmt3() { if [[ -n $1 ]]; then printf %.3f "$1"; else echo n/a; fi; }

# collect_files DIR PATTERN_FMT: per rung, the .ts files and the coded video frames in them, as
# "low/mid/high" strings in SEGS and FRAMES.
collect_files() {
    local dir=$1 fmt=$2 name w h kbps files n frames segs=() frs=()
    for rung in "${RUNGS[@]}"; do
        read -r name w h kbps <<<"$rung"
        # shellcheck disable=SC2059
        files=$(compgen -G "$dir/$(printf "$fmt" "$name")" | sort || true)
        n=$(grep -c . <<<"$files" || true)
        frames=0
        if ((n > 0)); then
            # shellcheck disable=SC2086
            frames=$(cat $files | video_packets -)
        fi
        segs+=("$n")
        frs+=("$frames")
    done
    SEGS=$(IFS=/; echo "${segs[*]}")
    FRAMES=$(IFS=/; echo "${frs[*]}")
}

# record_run TIMEFILE RUNSFILE: appends "wall cpu rss_kb exit" of one unpaced run.
record_run() {
    local tf=$1 wall user sys
    wall=$(time_wall_s "$tf")
    user=$(time_field "$tf" "User time (seconds)")
    sys=$(time_field "$tf" "System time (seconds)")
    echo "$wall $(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.2f", u + s}') $(time_field "$tf" "Maximum resident set size (kbytes)") $(time_field "$tf" "Exit status")" >>"$2"
}

# unpaced_row LABEL RUNSFILE: medians of wall and CPU over the repeats, the largest peak RSS.
unpaced_row() {
    local label=$1 runs=$2 n wall cpu rss range exits
    n=$(grep -c . "$runs")
    wall=$(awk '{print $1}' "$runs" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}')
    cpu=$(awk '{print $2}' "$runs" | sort -g | awk '{v[NR] = $1} END {printf "%.1f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}')
    rss=$(awk '$3 > m {m = $3} END {print m + 0}' "$runs")
    range=$(awk 'NR == 1 || $1 < lo {lo = $1} NR == 1 || $1 > hi {hi = $1} END {printf "%.2f–%.2f", lo, hi}' "$runs")
    exits=$(awk '{print $4}' "$runs" | sort -u | paste -sd, -)
    add_row "| $label | unpaced, median of $n | $(printf %.1f "$MEDIA_S") | $(printf %.2f "$wall") ($range) | $(awk -v m="$MEDIA_S" -v w="$wall" 'BEGIN {printf "%.2f×", m / w}') | $cpu | $(awk -v c="$cpu" -v m="$MEDIA_S" 'BEGIN {printf "%.2f", c / m}') | $(kb_to_mb "$rss") | $SEGS | $FRAMES of $IN_FRAMES | exit status $exits |"
}

# --- 2. gst-launch-1.0, unpaced ------------------------------------------------------------------
run_gst() {
    local out="$WORK_DIR/ladder-gst" tf="$WORK_DIR/ladder-gst.time" d name w h kbps
    rm -rf "$out"
    mkdir -p "$out"
    # Mirrors describe() in media/src/live_pipeline.rs for an H.264 + AAC source, with two
    # differences a file source needs: flvdemux instead of the two appsrcs (queues after it, as
    # the appsrcs are separate threads in the server), and encoder queues that block instead of
    # leaking (a leaky queue in front of an unpaced source would drop frames instead of measuring
    # speed). Same small queue sizes, same encoder settings, same splitter, same thumbnail branch.
    d="filesrc location=$INPUT ! flvdemux name=demux"
    d+=" demux.video ! queue max-size-buffers=4 max-size-bytes=0 max-size-time=0 ! h264parse ! avdec_h264 ! videoconvert ! tee name=vt"
    d+=" demux.audio ! queue ! aacparse ! tee name=at"
    for rung in "${RUNGS[@]}"; do
        read -r name w h kbps <<<"$rung"
        d+=" vt. ! queue max-size-buffers=8 max-size-bytes=0 max-size-time=0 ! videoscale ! video/x-raw,width=$w,height=$h,pixel-aspect-ratio=1/1 !"
        d+=" x264enc speed-preset=superfast tune=zerolatency key-int-max=120 bframes=0 bitrate=$kbps option-string=scenecut=0 !"
        d+=" video/x-h264,profile=main ! h264parse config-interval=-1 ! queue ! $name.video"
        d+=" at. ! queue ! $name.audio_0"
        d+=" splitmuxsink name=$name muxer=mpegtsmux max-size-time=2000000000 send-keyframe-requests=true location=$out/${name}_%05d.ts"
    done
    d+=" vt. ! queue leaky=downstream max-size-buffers=1 max-size-bytes=0 max-size-time=0 ! videorate drop-only=true !"
    d+=" video/x-raw,framerate=1/30 ! videoscale ! video/x-raw,width=480,height=270,pixel-aspect-ratio=1/1 ! jpegenc quality=80 ! fakesink sync=false"
    echo "$d" >"$out/pipeline.txt"
    log "gst-launch-1.0 ladder, unpaced (run $1 of $REPEAT)"
    # shellcheck disable=SC2086
    run_bounded "$UNPACED_TIMEOUT" /usr/bin/time -v -o "$tf" gst-launch-1.0 -q -e $d >"$out/gst.log" 2>&1 ||
        log "gst-launch-1.0 failed; see $out/gst.log"
    record_run "$tf" "$WORK_DIR/ladder-gst.runs"
    collect_files "$out" "%s_*.ts"
    GST_SEGS=$SEGS GST_FRAMES=$FRAMES
}

# --- 3. ffmpeg, one process, unpaced ---------------------------------------------------------------
run_ffmpeg() {
    local out="$WORK_DIR/ladder-ffmpeg" tf="$WORK_DIR/ladder-ffmpeg.time"
    rm -rf "$out"
    mkdir -p "$out"
    ffmpeg_ladder_args
    log "ffmpeg ladder (one process), unpaced (run $1 of $REPEAT)"
    run_bounded "$UNPACED_TIMEOUT" /usr/bin/time -v -o "$tf" ffmpeg -hide_banner -loglevel error -nostdin -y -i "$INPUT" \
        -filter_complex "$FF_FILTER" "${FF_MAPS[@]}" \
        -c:v libx264 -preset superfast -tune zerolatency -profile:v main -pix_fmt yuv420p -bf 0 -fps_mode passthrough \
        -g 60 -keyint_min 60 -sc_threshold 0 "${FF_RATES[@]}" -c:a copy \
        -f hls -hls_time 2 -hls_playlist_type vod -hls_segment_type mpegts \
        -hls_segment_filename "$out/%v/seg_%05d.ts" -master_pl_name master.m3u8 \
        -var_stream_map "${FF_STREAMS[*]}" "$out/%v/index.m3u8" >"$out/ffmpeg.log" 2>&1 ||
        log "ffmpeg failed; see $out/ffmpeg.log"
    record_run "$tf" "$WORK_DIR/ladder-ffmpeg.runs"
    collect_files "$out" "%s/seg_*.ts"
    FFMPEG_SEGS=$SEGS FFMPEG_FRAMES=$FRAMES
}

# --- 1. ferrocast, live (paced) -----------------------------------------------------------------
run_ferrocast() {
    local key id t0 t_end t_ready ticks0 ticks1 idle_rss hwm video duration cpu name w h kbps segs=() frs=() n
    local publisher deadline dropped="" speed speed_min="" speed_last=""
    start_ferrocast ladder false
    fc_streamer
    key=$(fc_channel ladder-bench)
    idle_rss=$(proc_status_kb "$FC_PID" VmRSS)
    ticks0=$(proc_ticks "$FC_PID")
    t0=$(now_ms)
    log "publishing $(printf %.1f "$MEDIA_S") s into ferrocast in real time"
    publish_paced "$WORK_DIR/ladder-ferrocast-publisher.log" "$FC_RTMP/$key"
    publisher=$SPAWNED
    id=$(fc_wait_live ladder-bench 30)
    # While live: the server's own view (dropped frames; encode speed once it has a few segments).
    deadline=$(($(date +%s) + DURATION + 60))
    while kill -0 "$publisher" 2>/dev/null && (($(date +%s) < deadline)); do
        n=$(fc_dropped "$id")
        [[ -n $n ]] && dropped=$n
        speed=$(fc_encode_speed "$id")
        if [[ -n $speed ]] && (($(date +%s) * 1000 - t0 > 15000)); then
            speed_last=$speed
            speed_min=$(awk -v a="${speed_min:-$speed}" -v b="$speed" 'BEGIN {print (b < a) ? b : a}')
        fi
        pause 0.5
    done
    stop_pid "$publisher" 5
    t_end=$(now_ms)
    video=$(fc_wait_ready "$id" 120)
    t_ready=$(now_ms)
    ticks1=$(proc_ticks "$FC_PID")
    hwm=$(proc_status_kb "$FC_PID" VmHWM)
    duration=$(jq -r '.duration_secs // 0' <<<"$video")
    for rung in "${RUNGS[@]}"; do
        read -r name w h kbps <<<"$rung"
        n=$(curl -sf "$FC_HTTP/hls/$id/$name/index.m3u8" | grep -c '^#EXTINF' || true)
        segs+=("$n")
        frs+=("$(video_packets "$FC_HTTP/hls/$id/$name/index.m3u8")")
    done
    cpu=$(ticks_to_s $((ticks1 - ticks0)))
    add_row "| ferrocast live ladder | paced (-re) | $(printf %.1f "$MEDIA_S") | $(awk -v a="$t0" -v b="$t_ready" 'BEGIN {printf "%.2f", (b - a) / 1000}') | paced; server's gauge min $(fmt3 "$speed_min"), last $(fmt3 "$speed_last") | $cpu | $(awk -v c="$cpu" -v m="$MEDIA_S" 'BEGIN {printf "%.2f", c / m}') | $(kb_to_mb "$hwm") (idle $(kb_to_mb "$idle_rss")) | $(IFS=/; echo "${segs[*]}") | $(IFS=/; echo "${frs[*]}") of $IN_FRAMES | $(jq -r .status <<<"$video"), recorded ${duration} s; server counted ${dropped:-n/a} dropped frames; ready $(awk -v a="$t_end" -v b="$t_ready" 'BEGIN {printf "%.1f", (b - a) / 1000}') s after the publisher left |"
    stop_ferrocast
}

if runs_ferrocast; then run_ferrocast; fi
if runs_anchors; then
    rm -f "$WORK_DIR/ladder-gst.runs" "$WORK_DIR/ladder-ffmpeg.runs"
    # Alternate, so a change in background load hits both alike.
    for ((r = 1; r <= REPEAT; r++)); do
        run_gst "$r"
        run_ffmpeg "$r"
    done
    SEGS=$GST_SEGS FRAMES=$GST_FRAMES unpaced_row "gst-launch-1.0 (ferrocast's pipeline with videoscale)" "$WORK_DIR/ladder-gst.runs"
    SEGS=$FFMPEG_SEGS FRAMES=$FFMPEG_FRAMES unpaced_row "ffmpeg, one process (split=3, libx264)" "$WORK_DIR/ladder-ffmpeg.runs"
fi

OUT=$(mktemp)
{
    results_header "Ladder: speed and CPU (low 640x360 800k, mid 854x480 1400k, high 1280x720 2800k; x264 superfast zerolatency; 2 s MPEG-TS; AAC copied)"
    echo "| contestant | mode | media s | wall s | realtime factor | CPU s | CPU s per media s | peak RSS MB | segments low/mid/high | video frames out low/mid/high | notes |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    cat "$ROWS"
    echo
    echo "CPU s = user + system of the whole process (all threads), from /proc (ferrocast: publish start until the"
    echo "video is ready, so draining and finalising count) or /usr/bin/time -v (anchors). 1.00 CPU s per media s"
    echo "means one core busy in real time; on $(nproc) cores a ladder keeps up live while it stays below $(nproc).00"
    echo "(with headroom). ferrocast is fed in real time, so its realtime factor is 1 by construction: whether"
    echo "it kept up shows in the frames out (dropped frames are missing frames) and in the recorded duration."
    echo "The ferrocast wall time runs from publish start until the recording is ready."
} >"$OUT"
rm -f "$ROWS"
finish_results ladder "$OUT"
