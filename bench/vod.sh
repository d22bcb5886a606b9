#!/usr/bin/env bash
# VOD ladder: one 1080p30 file (60 s, H.264 + AAC in MP4) through the low/mid/high ladder with
# x264 veryfast and 4 s segments, three ways:
#   1. ferrocast: uploaded through the REST API (bench/upload.py: create, parts with their
#      Content-Digest, complete); wall time from `complete` until GET /api/videos/{id} says ready,
#      the server's CPU (utime + stime from /proc) over that window, its peak RSS (VmHWM).
#   2. ffmpeg, one process: decode once, split=3, scale, libx264, AAC copied, HLS 4 s segments.
#   3. ffmpeg, three sequential runs, one per rendition (each decodes the source again): the naive
#      approach. Wall and CPU summed, peak RSS the largest of the three.
# Every contestant runs at the same niceness; they alternate, BENCH_REPEAT (3) times, and the table
# shows medians. Knobs: BENCH_DURATION (60), BENCH_REPEAT (3), BENCH_ONLY (all|anchors|ferrocast),
# BENCH_NICE (10). See README.md.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

require ffmpeg ffprobe jq curl awk python3 /usr/bin/time timeout
REPEAT=${BENCH_REPEAT:-3}
PRESET=veryfast
SEGMENT_S=4
GOP=$((30 * SEGMENT_S))
# The ladder (ferrocast's default): name width height kbps. Widths are what ladder.rs plans for 16:9.
RUNGS=("low 640 360 800" "mid 854 480 1400" "high 1280 720 2800")

# The 1080p30 source: what a camera or an OBS recording gives, H.264 High 8 Mb/s with B-frames and a
# 2 s GOP, AAC 128k, MP4 with the index in front. testsrc2 with temporal noise, like the live input,
# so every frame is real work for the encoders.
vod_input() {
    if [[ $DURATION == 60 ]]; then echo "$WORK_DIR/input-1080p.mp4"; else echo "$WORK_DIR/input-1080p-${DURATION}s.mp4"; fi
}
make_vod_input() {
    local out
    out=$(vod_input)
    [[ -s $out ]] && return 0
    log "generating $out ($DURATION s, 1080p30 with temporal noise; once)"
    "${NICE[@]}" ffmpeg -hide_banner -loglevel error -nostdin -y \
        -f lavfi -i "testsrc2=size=1920x1080:rate=30,noise=alls=20:allf=t+u" \
        -f lavfi -i "sine=frequency=440:sample_rate=48000" \
        -t "$DURATION" \
        -c:v libx264 -preset veryfast -profile:v high -pix_fmt yuv420p -bf 2 \
        -g 60 -keyint_min 60 -sc_threshold 0 -b:v 8000k -maxrate 8000k -bufsize 16000k \
        -c:a aac -b:a 128k -ar 48000 -ac 2 -movflags +faststart \
        -f mp4 "$out.tmp" || die "ffmpeg could not generate the input"
    mv "$out.tmp" "$out"
}

make_vod_input
INPUT=$(vod_input)
MEDIA_S=$(media_seconds "$INPUT")
IN_FRAMES=$(video_packets "$INPUT")
# Unpaced runs take about the media duration on 2 cores; this only bounds a hang.
RUN_TIMEOUT=$((DURATION * 15 + 120))
BENCH_INPUT_DESC="$(basename "$INPUT"), $(printf %.1f "$MEDIA_S") s 1920x1080 30 fps H.264 High 8 Mb/s (B-frames, 2 s GOP) + AAC 128k, MP4, $(du -m "$INPUT" | cut -f1) MB"

ROWS=$(mktemp)
add_row() { echo "$*" >>"$ROWS"; }
median() { sort -g | awk '{v[NR] = $1} END {if (NR == 0) print 0; else print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# frames_in_files DIR PATTERN_FMT: "low/mid/high" coded video frames in the .ts files of each rung.
frames_in_files() {
    local dir=$1 fmt=$2 name w h kbps files frs=()
    for rung in "${RUNGS[@]}"; do
        read -r name w h kbps <<<"$rung"
        # shellcheck disable=SC2059
        files=$(compgen -G "$dir/$(printf "$fmt" "$name")" | sort || true)
        if [[ -n $files ]]; then
            # shellcheck disable=SC2086
            frs+=("$(cat $files | video_packets -)")
        else
            frs+=(0)
        fi
    done
    (IFS=/; echo "${frs[*]}")
}

# x264_options TS_FILE: the encoder settings x264 wrote into the stream (its SEI), for the record.
x264_options() {
    { ffmpeg -v error -nostdin -i "$1" -map 0:v:0 -c copy -f h264 - 2>/dev/null | grep -a -o 'options: [ -~]*' | first_line | cut -c10-; } || true
}

# time_run TIMEFILE: "wall cpu rss_kb exit" from /usr/bin/time -v output.
time_run() {
    local tf=$1 user sys
    user=$(time_field "$tf" "User time (seconds)")
    sys=$(time_field "$tf" "System time (seconds)")
    echo "$(time_wall_s "$tf") $(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.2f", u + s}') $(time_field "$tf" "Maximum resident set size (kbytes)") $(time_field "$tf" "Exit status")"
}

x264_args() { # x264_args KBPS: libx264 with what ferrocast's x264enc gets for a file rung
    # x264enc (pass=cbr, its default) is ABR with a VBV of bitrate × 600 ms; main profile, no
    # B-frames (ferrocast sets bframes=0 on every rung); keyframes every 4 s exactly.
    echo "-c:v libx264 -preset $PRESET -profile:v main -pix_fmt yuv420p -bf 0 -g $GOP -keyint_min $GOP -sc_threshold 0 -b:v ${1}k -maxrate ${1}k -bufsize $(($1 * 6 / 10))k"
}

# ssim_vs_bicubic MEDIA W H: the SSIM (all planes) of MEDIA's pictures against the source scaled to
# W×H with ffmpeg's bicubic, frame by frame: how much of the picture a rung keeps, scaler and
# encoder together. The same for every contestant, so the difference between two is their scaler.
ssim_vs_bicubic() {
    "${NICE[@]}" ffmpeg -hide_banner -nostdin -i "$1" -i "$INPUT" \
        -lavfi "[1:v]scale=$2:$3:flags=bicubic,setsar=1[ref];[0:v]setsar=1[out];[out][ref]ssim" -f null - 2>&1 |
        awk '/SSIM Y:/ {for (i = 1; i <= NF; i++) if ($i ~ /^All:/) {sub(/^All:/, "", $i); v = $i}} END {print (v == "" ? "n/a" : v)}'
}

# ssim_row MEDIA_PATTERN: "low/mid/high" SSIMs; MEDIA_PATTERN has %s for the rung's name.
ssim_row() {
    local name w h media values=()
    for rung in "${RUNGS[@]}"; do
        read -r name w h _ <<<"$rung"
        # shellcheck disable=SC2059 # the pattern is ours
        media=$(printf "$1" "$name")
        values+=("$(ssim_vs_bicubic "$media" "$w" "$h")")
    done
    (IFS=/; echo "${values[*]}")
}

# --- 1. ferrocast -------------------------------------------------------------------------------
run_ferrocast() {
    local r=$1 up upload_id id t0 t1 ticks0 ticks1 hwm idle video status duration cpu frames log started done_ms job_s
    FC_EXTRA_TOML="[jobs]\nconcurrency = 1\nvod_x264_preset = \"$PRESET\"\nvod_segment_duration_secs = $SEGMENT_S" start_ferrocast "vod-$r" false
    fc_streamer
    fc_channel vod-bench >/dev/null
    log "ferrocast: uploading $(basename "$INPUT") (run $r of $REPEAT)"
    up=$(run_bounded 300 python3 "$BENCH_DIR/upload.py" --port "$FC_HTTP_PORT" --token "$FC_TOKEN" --channel vod-bench \
        --file "$INPUT" --title "vod bench" --then none) || die "upload failed: $up"
    upload_id=$(jq -r .upload_id <<<"$up")
    idle=$(proc_status_kb "$FC_PID" VmRSS)
    ticks0=$(proc_ticks "$FC_PID")
    t0=$(now_ms)
    id=$(BENCH_CURL_TIMEOUT=120 api POST "/api/uploads/$upload_id/complete" | jq -r .video_id)
    [[ -n $id && $id != null ]] || die "complete returned no video id"
    log "ferrocast: transcoding video $id"
    status=processing
    local deadline=$(($(date +%s) + RUN_TIMEOUT))
    while (($(date +%s) < deadline)); do
        video=$(curl -sf -H "authorization: Bearer $FC_TOKEN" "$FC_HTTP/api/videos/$id") || video='{}'
        status=$(jq -r '.status // empty' <<<"$video")
        [[ $status == ready || $status == failed ]] && break
        sleep 0.1
    done
    t1=$(now_ms)
    ticks1=$(proc_ticks "$FC_PID")
    hwm=$(proc_status_kb "$FC_PID" VmHWM)
    duration=$(jq -r '.duration_secs // 0' <<<"$video")
    frames=$(for rung in "${RUNGS[@]}"; do read -r name _ <<<"$rung"; video_packets "$FC_HTTP/hls/$id/$name/index.m3u8"; done | paste -sd/ -)
    # The job's own start and end, from the server's JSON log (pickup delay and API polling excluded).
    log=$FC_LOG
    started=$(jq -r 'select((.message // .fields.message) == "transcode started") | .timestamp' "$log" 2>/dev/null | first_line || true)
    done_ms=$(jq -r 'select((.message // .fields.message) == "transcode done") | .timestamp' "$log" 2>/dev/null | first_line || true)
    job_s=n/a
    if [[ -n $started && -n $done_ms ]]; then
        job_s=$(python3 -c 'import sys, datetime as d; f = lambda s: d.datetime.fromisoformat(s.replace("Z", "+00:00")); print(f"{(f(sys.argv[2]) - f(sys.argv[1])).total_seconds():.2f}")' "$started" "$done_ms")
    fi
    local seg
    seg=$(curl -sf "$FC_HTTP/hls/$id/high/index.m3u8" | grep -v '^#' | first_line || true)
    [[ -n $seg ]] && curl -sf -o "$WORK_DIR/vod-ferrocast-high.ts" "$FC_HTTP/hls/$id/high/$seg" && x264_options "$WORK_DIR/vod-ferrocast-high.ts" >"$WORK_DIR/vod-ferrocast.x264"
    if [[ $r == "$REPEAT" && $status == ready ]]; then
        log "ferrocast: SSIM of each rung against the source scaled with bicubic"
        FC_SSIM=$(ssim_row "$FC_HTTP/hls/$id/%s/index.m3u8")
    fi
    cpu=$(ticks_to_s $((ticks1 - ticks0)))
    echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", (b - a) / 1000}') $cpu $hwm $status $job_s $idle" >>"$WORK_DIR/vod-ferrocast.runs"
    FC_FRAMES=$frames FC_STATUS="$status, duration_secs $duration"
    log "ferrocast: $status after $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", (b - a) / 1000}') s, $cpu CPU s (job itself $job_s s)"
    stop_ferrocast
}

# --- 2. ffmpeg, one process -----------------------------------------------------------------------
run_ffmpeg_one() {
    local r=$1 out="$WORK_DIR/vod-ffmpeg-one" tf="$WORK_DIR/vod-ffmpeg-one.time"
    rm -rf "$out"
    mkdir -p "$out"
    ffmpeg_ladder_args
    log "ffmpeg, one process (split=3), run $r of $REPEAT"
    run_bounded "$RUN_TIMEOUT" /usr/bin/time -v -o "$tf" ffmpeg -hide_banner -loglevel error -nostdin -y -i "$INPUT" \
        -filter_complex "$FF_FILTER" "${FF_MAPS[@]}" \
        -c:v libx264 -preset "$PRESET" -profile:v main -pix_fmt yuv420p -bf 0 -fps_mode passthrough \
        -g "$GOP" -keyint_min "$GOP" -sc_threshold 0 "${FF_RATES[@]}" -c:a copy \
        -f hls -hls_time "$SEGMENT_S" -hls_playlist_type vod -hls_segment_type mpegts \
        -hls_segment_filename "$out/%v/seg_%05d.ts" -master_pl_name master.m3u8 \
        -var_stream_map "${FF_STREAMS[*]}" "$out/%v/index.m3u8" >"$out/ffmpeg.log" 2>&1 ||
        log "ffmpeg failed; see $out/ffmpeg.log"
    time_run "$tf" >>"$WORK_DIR/vod-ffmpeg-one.runs"
    ONE_FRAMES=$(frames_in_files "$out" "%s/seg_*.ts")
    if [[ $r == "$REPEAT" ]]; then
        log "ffmpeg: SSIM of each rung against the source scaled with bicubic"
        ONE_SSIM=$(ssim_row "$out/%s/index.m3u8")
    fi
    x264_options "$(compgen -G "$out/high/seg_*.ts" | sort | first_line)" >"$WORK_DIR/vod-ffmpeg.x264"
}

# --- 3. ffmpeg, three sequential runs -----------------------------------------------------------
run_ffmpeg_seq() {
    local r=$1 out="$WORK_DIR/vod-ffmpeg-seq" name w h kbps tf wall=0 cpu=0 rss=0 exits=() run_wall run_cpu run_rss run_exit
    rm -rf "$out"
    mkdir -p "$out"
    for rung in "${RUNGS[@]}"; do
        read -r name w h kbps <<<"$rung"
        tf="$WORK_DIR/vod-ffmpeg-seq-$name.time"
        mkdir -p "$out/$name"
        log "ffmpeg, one run per rendition: $name (run $r of $REPEAT)"
        # shellcheck disable=SC2046
        run_bounded "$RUN_TIMEOUT" /usr/bin/time -v -o "$tf" ffmpeg -hide_banner -loglevel error -nostdin -y -i "$INPUT" \
            -map 0:v:0 -map 0:a:0 -vf "scale=$w:$h:flags=bilinear,setsar=1" $(x264_args "$kbps") -fps_mode passthrough -c:a copy \
            -f hls -hls_time "$SEGMENT_S" -hls_playlist_type vod -hls_segment_type mpegts \
            -hls_segment_filename "$out/$name/seg_%05d.ts" "$out/$name/index.m3u8" >"$out/$name.log" 2>&1 ||
            log "ffmpeg ($name) failed; see $out/$name.log"
        read -r run_wall run_cpu run_rss run_exit <<<"$(time_run "$tf")"
        wall=$(awk -v a="$wall" -v b="$run_wall" 'BEGIN {printf "%.2f", a + b}')
        cpu=$(awk -v a="$cpu" -v b="$run_cpu" 'BEGIN {printf "%.2f", a + b}')
        ((run_rss > rss)) && rss=$run_rss
        exits+=("$run_exit")
    done
    echo "$wall $cpu $rss $(printf '%s\n' "${exits[@]}" | sort -u | paste -sd, -)" >>"$WORK_DIR/vod-ffmpeg-seq.runs"
    SEQ_FRAMES=$(frames_in_files "$out" "%s/seg_*.ts")
}

# row LABEL RUNSFILE FRAMES NOTE: medians of wall and CPU, the largest peak RSS.
row() {
    local label=$1 runs=$2 frames=$3 note=$4 n wall cpu rss range
    n=$(grep -c . "$runs")
    wall=$(awk '{print $1}' "$runs" | median)
    cpu=$(awk '{print $2}' "$runs" | median)
    rss=$(awk '$3 > m {m = $3} END {print m + 0}' "$runs")
    range=$(awk 'NR == 1 || $1 < lo {lo = $1} NR == 1 || $1 > hi {hi = $1} END {printf "%.1f–%.1f", lo, hi}' "$runs")
    add_row "| $label | $n | $(printf %.1f "$wall") ($range) | $(awk -v m="$MEDIA_S" -v w="$wall" 'BEGIN {printf "%.2f×", m / w}') | $(printf %.1f "$cpu") | $(awk -v c="$cpu" -v m="$MEDIA_S" 'BEGIN {printf "%.2f", c / m}') | $(kb_to_mb "$rss") | $frames of $IN_FRAMES | $note |"
}

rm -f "$WORK_DIR"/vod-*.runs
for ((r = 1; r <= REPEAT; r++)); do
    if runs_ferrocast; then run_ferrocast "$r"; fi
    if runs_anchors; then
        run_ffmpeg_one "$r"
        run_ffmpeg_seq "$r"
    fi
done

if runs_ferrocast; then
    job=$(awk '$5 != "n/a" {print $5}' "$WORK_DIR/vod-ferrocast.runs" | median)
    idle=$(awk '{print $6}' "$WORK_DIR/vod-ferrocast.runs" | median)
    row "ferrocast (upload → ready)" "$WORK_DIR/vod-ferrocast.runs" "$FC_FRAMES" \
        "$FC_STATUS; the job itself (log: transcode started → done) median $(printf %.1f "$job") s; server RSS before complete $(kb_to_mb "${idle%.*}") MB"
fi
if runs_anchors; then
    row "ffmpeg, one process (split=3)" "$WORK_DIR/vod-ffmpeg-one.runs" "$ONE_FRAMES" "exit status $(awk '{print $4}' "$WORK_DIR/vod-ffmpeg-one.runs" | sort -u | paste -sd, -)"
    row "ffmpeg, 3 sequential runs (one per rendition)" "$WORK_DIR/vod-ffmpeg-seq.runs" "$SEQ_FRAMES" "wall and CPU summed over the 3 runs; exit status $(awk '{print $4}' "$WORK_DIR/vod-ffmpeg-seq.runs" | sort -u | paste -sd, -)"
fi

OUT=$(mktemp)
{
    results_header "VOD ladder: one 1080p30 file → low 640x360 800k, mid 854x480 1400k, high 1280x720 2800k (x264 $PRESET, ${SEGMENT_S} s MPEG-TS, AAC copied)"
    echo "| contestant | runs | wall s, median (range) | realtime factor | CPU s | CPU s per media s | peak RSS MB | video frames out low/mid/high | notes |"
    echo "|---|---|---|---|---|---|---|---|---|"
    cat "$ROWS"
    echo
    echo "Realtime factor = media seconds ($(printf %.1f "$MEDIA_S")) / wall seconds; CPU s = user + system of the whole process, all"
    echo "threads (ferrocast: the server's /proc utime + stime from the \`complete\` request until GET /api/videos/{id} says"
    echo "ready, polled every 0.1 s, so assembling the upload, the job pick-up (the worker polls every 1 s), probing"
    echo "and finalising count; anchors: /usr/bin/time -v). Peak RSS: ferrocast's VmHWM over its whole life (a fresh"
    echo "server per run, the upload included), the anchors' maximum resident set size (sequential: the largest of"
    echo "the three). Same encoder settings everywhere: x264 $PRESET, main profile, no B-frames, ABR with a VBV of"
    echo "bitrate × 600 ms (x264enc's default), a keyframe every $SEGMENT_S s, no scene-cut keyframes; scaling: ffmpeg bilinear, ferrocast its own (below)."
    echo
    echo "Picture kept, SSIM low/mid/high against the source scaled to each size with ffmpeg's bicubic (last run; 1 = identical):"
    echo "ferrocast (its own scaler, media/scale) ${FC_SSIM:-n/a}; ffmpeg one process (swscale bilinear) ${ONE_SSIM:-n/a}."
    for f in ferrocast ffmpeg; do
        [[ -s $WORK_DIR/vod-$f.x264 ]] && printf '\nx264 settings in the %s high rendition (from its SEI): `%s`\n' "$f" "$(cat "$WORK_DIR/vod-$f.x264")"
    done
} >"$OUT"
rm -f "$ROWS"
finish_results vod "$OUT"
