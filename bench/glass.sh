#!/usr/bin/env bash
# Glass-to-glass latency in a real browser: headless Chromium (Debian's) with hls.js, against
# nginx-rtmp (HLS, 2 s fragments), ferrocast with the default ladder, and ferrocast in relay mode
# (`[media] ladder = []`, `include_source = true`), one after the other, in one run.
#
# The publisher burns its own clock into the picture: ffmpeg makes a 720p30 testsrc2 picture paced by
# the `realtime` filter, stamps each frame with the wall clock as it leaves that filter
# (`setpts=RTCTIME`), and `geq` draws that time (centiseconds mod 65536) as a row of black/white
# blocks (layout and a decoder in glass/clock.py). It encodes with x264 and publishes over RTMP, live.
# glass/run.mjs opens glass/page.html in Chromium; hls.js plays the master playlist and every 200 ms
# the page draws the frame on screen to a canvas, decodes the blocks and takes
#   latency = the page's clock − the frame's capture time  (same machine, same clock).
# Samples count after a warm-up from the first decoded frame. Before the servers, both decoders (Python
# and the page's) are checked on a recording of a test clock whose codes are known (at 720p, and
# scaled down to 360p at a low bitrate).
#
# Knobs: BENCH_DURATION (60: seconds each server is published to), BENCH_GLASS_JOIN (8: seconds
# after the publisher starts that the page opens), BENCH_GLASS_WARMUP (10),
# BENCH_GLASS_X264 (x264 options of the publisher; see below), BENCH_GLASS_NOISE (20: temporal noise
# in the picture, as in the other benchmarks' input), BENCH_GLASS_HLS_CONFIG (JSON for new Hls(…);
# default: the web player's), BENCH_ONLY (all|anchors|ferrocast), BENCH_NICE (10). See README.md.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

require ffmpeg ffprobe jq curl python3 node
[[ -f $REPO_DIR/web/node_modules/hls.js/dist/hls.min.js && -d $REPO_DIR/web/node_modules/playwright-core ]] ||
    die "web/node_modules lacks hls.js or playwright-core: run make web"
[[ -x ${CHROMIUM:-/usr/bin/chromium} ]] || die "no Chromium at ${CHROMIUM:-/usr/bin/chromium} (apt-get install chromium, or set CHROMIUM)"

WARMUP=${BENCH_GLASS_WARMUP:-$((DURATION >= 30 ? 10 : 2))}
# The viewer joins a stream already running, as most do: the page opens this long after the
# publisher started (nginx-rtmp then lists the 3 segments hls.js wants behind the edge).
JOIN=${BENCH_GLASS_JOIN:-8}
NOISE=${BENCH_GLASS_NOISE:-20}
# A streamer who wants low latency: x264 veryfast with zerolatency (no B-frames, no lookahead, no
# frame threads), 2 s GOP (the segment duration), 4 Mb/s CBR-ish.
read -r -a X264 <<<"${BENCH_GLASS_X264:--preset veryfast -tune zerolatency -profile:v high -g 60 -keyint_min 60 -sc_threshold 0 -b:v 4000k -maxrate 4000k -bufsize 4000k}"
# The web player's hls.js settings (web/src/player.js) minus capLevelToPlayerSize (the page's
# video is 1280x720 anyway): low-latency mode on, catching up at up to 1.25x.
HLS_CONFIG=${BENCH_GLASS_HLS_CONFIG:-'{"lowLatencyMode":true,"backBufferLength":60,"enableWorker":true,"maxLiveSyncPlaybackRate":1.25}'}
GRAPH=$(python3 "$BENCH_DIR/glass/clock.py" filter 1280 720 30 "$NOISE")
ROWS=$(mktemp)
CHECK_ROWS=$(mktemp)

# clock_source SECONDS: sets CMD to the publisher's ffmpeg without its output: the clocked 720p30
# source with a sine tone (-re), encoded, for SECONDS.
clock_source() {
    CMD=(ffmpeg -hide_banner -loglevel error -nostdin -y -re -f lavfi -i "sine=frequency=440:sample_rate=48000"
        -filter_complex "$GRAPH" -map '[v]' -map 0:a -t "$1"
        -c:v libx264 "${X264[@]}" -pix_fmt yuv420p -c:a aac -b:a 128k -ar 48000 -ac 2)
}

check_decoder() {
    local dir="$WORK_DIR/glass-check" f json offset=1234.567
    mkdir -p "$dir"
    log "checking the clock decoder on a 6 s recording of the test clock (720p, and 360p at 300 kb/s)"
    run_bounded 120 ffmpeg -hide_banner -loglevel error -nostdin -y \
        -filter_complex "$(python3 "$BENCH_DIR/glass/clock.py" filter 1280 720 30 "$NOISE" "$offset")" -map '[v]' -frames:v 180 \
        -c:v libx264 "${X264[@]}" -pix_fmt yuv420p -movflags +faststart "$dir/clock-720p.mp4"
    run_bounded 120 ffmpeg -hide_banner -loglevel error -nostdin -y -i "$dir/clock-720p.mp4" -vf scale=640:360 \
        -c:v libx264 -preset veryfast -b:v 300k -maxrate 300k -bufsize 200k -movflags +faststart "$dir/clock-360p.mp4"
    for f in clock-720p clock-360p; do
        json=$(run_bounded 120 python3 "$BENCH_DIR/glass/clock.py" check "$dir/$f.mp4" "$offset")
        echo "| $f.mp4 | Python (clock.py), every frame | $(jq -r '"\(.frames) | \(.frames - .unreadable) | \(.correct) | \(.wrong)"' <<<"$json") |" >>"$CHECK_ROWS"
        json=$(run_bounded 120 node "$BENCH_DIR/glass/run.mjs" --file "$dir/$f.mp4" --offset "$offset" --seconds 5.5 --warmup 0)
        echo "| $f.mp4 | Chromium (page.html), every 200 ms while playing | $(jq -r '.validation | "\(.samples) | \(.decoded) | \(.right) | \(.decoded - .right)\(if (.wrong | length) > 0 then " (" + (.wrong | map("at \(.t) s read \(.code), frame there has \(.expected)") | join("; ")) + ")" else "" end)"' <<<"$json") |" >>"$CHECK_ROWS"
    done
}

# measure LABEL SERVER_PID PUBLISHER_PID T0_MS SRC: the browser on SRC until the publisher is nearly
# done; appends a row.
measure() {
    local label=$1 server=$2 publisher=$3 t0=$4 src=$5 left until json ticks0 ticks1 pticks0 pticks1 w0 w1 out wait_ms
    wait_ms=$((t0 + JOIN * 1000 - $(now_ms)))
    ((wait_ms <= 0)) || pause "$(awk -v ms="$wait_ms" 'BEGIN {printf "%.3f", ms / 1000}')"
    until=$((t0 + DURATION * 1000 - 2000))
    left=$(((until - $(now_ms)) / 1000))
    ((left > 5)) || die "no time left to watch $label (publishing took too long to start)"
    out="$WORK_DIR/glass-$(tr -c 'a-z0-9\n' - <<<"${label,,}" | tr -s -).json"
    log "$label: watching $src in Chromium for $left s"
    ticks0=$(tree_ticks "$server")
    pticks0=$(proc_ticks "$publisher")
    w0=$(now_ms)
    run_bounded $((left + 60)) node "$BENCH_DIR/glass/run.mjs" --src "$src" --epoch "$t0" --until "$until" --warmup "$WARMUP" \
        --seconds "$left" --config "$HLS_CONFIG" --label "$label" >"$out" || log "run.mjs failed for $label (see $out)"
    ticks1=$(tree_ticks "$server")
    pticks1=$(proc_ticks "$publisher")
    w1=$(now_ms)
    json=$(cat "$out")
    [[ -n $json ]] || json='{}'
    local cpu pcpu
    cpu=$(awk -v t=$((ticks1 - ticks0)) -v hz="$CLK_TCK" -v ms=$((w1 - w0)) 'BEGIN {printf "%.0f", 100 * t / hz / (ms / 1000)}')
    pcpu=$(awk -v t=$((pticks1 - pticks0)) -v hz="$CLK_TCK" -v ms=$((w1 - w0)) 'BEGIN {printf "%.0f", 100 * t / hz / (ms / 1000)}')
    jq -r --arg name "$label" --arg cpu "$cpu" --arg pcpu "$pcpu" '
        "| \($name) | **\(.median_s // "n/a")** | \(.p90_s // "n/a") | \(.min_s // "n/a") … \(.max_s // "n/a") | \(.steady_samples // 0) | \(.hls_latency_median_s // "n/a") | \(if .hls_target_latency_s then (.hls_target_latency_s | if .[0] == .[1] then "\(.[0])" else "\(.[0]) … \(.[1])" end) else "n/a" end) | \(.first_frame_s // "never") | \((.levels // []) | join(", ")) | \(.frozen_samples // "n/a") | \(.unreadable // "n/a") / \(.samples_taken // 0) | \(.error_count // "n/a")\(if (.errors // []) | length > 0 then " (" + ((.errors | unique)[:3] | join("; ")) + ")" else "" end) | \(.requests.blocking // 0) / \(.requests.playlist // 0) / \(.requests.media // 0) | \($cpu) / \($pcpu) |"
    ' <<<"$json" >>"$ROWS"
}

start_publisher() { # start_publisher URL: sets PUB_PID and PUB_T0 (epoch ms just before ffmpeg starts)
    PUB_T0=$(now_ms)
    clock_source "$DURATION"
    bench_spawn "$WORK_DIR/glass-publisher-$1.log" "${CMD[@]}" -f flv "$2"
    PUB_PID=$SPAWNED
}

run_nginx() {
    local i
    start_nginx glass
    start_publisher nginx "$NGINX_RTMP/glass"
    for ((i = 0; i < 200; i++)); do
        curl -sf -o /dev/null "$NGINX_HTTP/hls/glass.m3u8" && break
        sleep 0.1
    done
    measure "nginx-rtmp (HLS, no transcoding)" "$NGINX_PID" "$PUB_PID" "$PUB_T0" "$NGINX_HTTP/hls/glass.m3u8"
    stop_pid "$PUB_PID"
    stop_nginx
}

run_ferrocast() { # run_ferrocast ladder|relay
    local mode=$1 ladder="" label="ferrocast, default ladder + source" key id
    [[ $mode == relay ]] && ladder=none label="ferrocast, relay mode"
    start_ferrocast "glass-$mode" true "$ladder"
    fc_streamer
    key=$(fc_channel glass)
    start_publisher "ferrocast-$mode" "$FC_RTMP/$key"
    # Anonymous: the channel shows its live video once the master playlist exists.
    id=$(FC_TOKEN='' fc_wait_live glass 20)
    measure "$label" "$FC_PID" "$PUB_PID" "$PUB_T0" "$FC_HTTP/hls/$id/master.m3u8"
    stop_pid "$PUB_PID"
    stop_ferrocast
}

check_decoder
if runs_anchors; then run_nginx; fi
if runs_ferrocast; then
    run_ferrocast ladder
    run_ferrocast relay
fi

BENCH_INPUT_DESC="live testsrc2 720p30 with the burnt-in clock (noise $NOISE), x264 ${X264[*]}, AAC 128k; $DURATION s per server"
OUT=$(mktemp)
{
    results_header "Glass-to-glass: publisher's capture → frame on screen in headless Chromium with hls.js"
    echo "Goals (issue 9): median ≤ 1.5 s with the default ladder, ≤ 1.0 s in relay mode; nginx-rtmp measured the same way."
    echo
    echo "| server | glass-to-glass median s | p90 s | min … max s | samples | hls.js's own latency estimate, median s | hls.js's target latency, s | first frame on screen, s after page load | levels played | frozen samples | unreadable / all samples | hls.js errors | requests: blocking reloads / other playlists / media | CPU % server / publisher (100 = one core) |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    cat "$ROWS"
    echo
    echo "Every 200 ms the page draws the frame on screen to a canvas and decodes the clock burnt into it by the"
    echo "publisher (the wall clock when the paced source released the frame, in 10 ms steps); latency = the page's"
    echo "Date.now() − that time, so it includes the publisher's encoder, RTMP, the server, HTTP, hls.js's buffer,"
    echo "decoding and the frame's time on screen (up to 33 ms). Samples count from $WARMUP s after the first decoded"
    echo "frame until 2 s before the publisher stops. Frozen samples: the same frame as 200 ms earlier (a stall,"
    echo "or a 5 fps sampler meeting a 30 fps video twice, rarely). hls.js $(jq -r .version "$REPO_DIR/web/node_modules/hls.js/package.json") with"
    echo "\`$HLS_CONFIG\` for every server (nginx-rtmp's playlists have no parts, so low-latency mode changes"
    echo "nothing there and hls.js stays 3 segments behind the edge). hls.js aims at its target latency"
    echo "(PART-HOLD-BACK, or 3 target durations without parts) and raises that target by 1 s after each stall"
    echo "(liveSyncOnStallIncrease), so a stall during start-up costs a second for the rest of the run. The page"
    echo "opens $JOIN s after the publisher started (a viewer joining a running stream); the browser, server and"
    echo "publisher share the machine's $(nproc) cores. Publisher: ffmpeg, x264 \`${X264[*]}\`."
    echo
    echo "Decoder check, before the servers: the same picture and encoder with a test clock (T = 1234.567 s + N / 30,"
    echo "so the code in every frame is known), and that recording scaled to 640x360 at 300 kb/s (smaller and"
    echo "blurrier than any rung). Python decodes every frame; the page decodes what is on screen every 200 ms and"
    echo "must read the code of the frame at currentTime, give or take one frame (a code 2–3 frames off is the"
    echo "compositor lagging currentTime under load, not a misread; a misread is a code far off):"
    echo
    echo "| file | decoder | frames or samples | decoded (references and parity good) | right | wrong |"
    echo "|---|---|---|---|---|---|"
    cat "$CHECK_ROWS"
} >"$OUT"
rm -f "$ROWS" "$CHECK_ROWS"
finish_results glass "$OUT"
