# shellcheck shell=bash
# Shared helpers for the bench/*.sh scripts: paths and knobs, the test input, starting and
# stopping ferrocast and nginx-rtmp on fixed loopback ports, the REST calls that make a stream key,
# /proc sampling, and writing a results file. Sourced, never run. Benchmarks print numbers; they
# are never part of the test suite and never assert on timings.
#
# Every process a script starts goes through bench_spawn (or runs in the foreground under
# `timeout`), so the EXIT trap can end exactly those processes, by id. All traffic stays on
# 127.0.0.1.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
WORK_DIR=${BENCH_WORK_DIR:-$BENCH_DIR/work}
RESULTS_DIR=${BENCH_RESULTS_DIR:-$BENCH_DIR/results}

# Length of the generated input in seconds (60 for real runs; 10 is enough to try a script out).
DURATION=${BENCH_DURATION:-60}
# all | anchors | ferrocast: which side of a comparison to run.
BENCH_ONLY=${BENCH_ONLY:-all}
# Every contestant runs at the same niceness, so another job on the machine is not starved and
# neither side is favoured. Set BENCH_NICE=0 on a quiet machine.
BENCH_NICE=${BENCH_NICE:-10}
FERROCAST_BIN=${FERROCAST_BIN:-$REPO_DIR/target/release/ferrocast}

FC_HTTP_PORT=${BENCH_FC_HTTP_PORT:-18080}
FC_RTMP_PORT=${BENCH_FC_RTMP_PORT:-19350}
NGINX_HTTP_PORT=${BENCH_NGINX_HTTP_PORT:-18081}
NGINX_RTMP_PORT=${BENCH_NGINX_RTMP_PORT:-19351}
FC_HTTP="http://127.0.0.1:$FC_HTTP_PORT"
# shellcheck disable=SC2034 # used by the scripts that source this file
FC_RTMP="rtmp://127.0.0.1:$FC_RTMP_PORT/live"
NGINX_HTTP="http://127.0.0.1:$NGINX_HTTP_PORT"
# shellcheck disable=SC2034
NGINX_RTMP="rtmp://127.0.0.1:$NGINX_RTMP_PORT/live"

CLK_TCK=$(getconf CLK_TCK)
# Taken when a script starts, before it loads the machine itself.
BENCH_STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
BENCH_START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
NICE=(nice -n "$BENCH_NICE")

mkdir -p "$WORK_DIR" "$RESULTS_DIR"

# ---------------------------------------------------------------------------------------------
# Logging and process bookkeeping

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

now_ms() { date +%s%3N; }

# pause SECONDS: sleep that a signal to the script interrupts at once.
pause() {
    sleep "$1" &
    wait $! || true
}

# first_line: the first non-empty line of stdin. Reads all of it, unlike head, so the writer never
# dies of SIGPIPE (which pipefail would turn into a failed assignment).
first_line() { awk 'NF && !done {print; done = 1}'; }

BENCH_PIDS=()

# bench_spawn LOGFILE CMD...: starts CMD in the background (niced), remembers its pid in SPAWNED.
bench_spawn() {
    local logfile=$1
    shift
    "${NICE[@]}" "$@" >"$logfile" 2>&1 &
    SPAWNED=$!
    BENCH_PIDS+=("$SPAWNED")
}

# run_bounded SECONDS CMD...: runs CMD (niced) under `timeout` and waits for it, returning its
# status. In the background plus `wait`, so a signal to the script is handled at once; `timeout`
# leads its own process group and passes a SIGTERM on to everything CMD started.
run_bounded() {
    local secs=$1 pid status=0
    shift
    timeout "$secs" "${NICE[@]}" "$@" &
    pid=$!
    BENCH_PIDS+=("$pid")
    wait "$pid" || status=$?
    forget_pid "$pid"
    return "$status"
}

forget_pid() {
    local i
    for i in "${!BENCH_PIDS[@]}"; do
        [[ ${BENCH_PIDS[i]} == "$1" ]] && unset 'BENCH_PIDS[i]'
    done
    return 0
}

# stop_pid PID [SECONDS]: SIGTERM, wait up to SECONDS (10), then SIGKILL. Only our own children.
stop_pid() {
    local pid=$1 grace=${2:-10} i
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < grace * 10; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "pid $pid still running after ${grace}s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
    forget_pid "$pid"
}

# stop_pids PID...: SIGTERM to all at once, then reap each (used for many publishers).
stop_pids() {
    local pid
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "$@"; do stop_pid "$pid" 5; done
}

# On exit, however it happens: stop what is still running, newest first. Only pids that are still
# jobs of this shell are signalled, so a recycled pid can never be hit.
bench_cleanup() {
    local status=$? pid live pids i
    trap - EXIT INT TERM
    live=" $(jobs -p | tr '\n' ' ') "
    pids=("${BENCH_PIDS[@]}")
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        pid=${pids[i]}
        [[ $live == *" $pid "* ]] && stop_pid "$pid" 15
    done
    exit "$status"
}
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# Tools and inputs

# Every HTTP request is bounded: an overloaded server must not hang a benchmark.
curl() { command curl --max-time "${BENCH_CURL_TIMEOUT:-10}" "$@"; }

require() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (apt-get install ffmpeg gstreamer1.0-tools gstreamer1.0-plugins-{base,good,bad,ugly} gstreamer1.0-libav jq curl time python3)"
    done
}

# port_free PORT: dies if something already listens on 127.0.0.1:PORT.
port_free() {
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
        die "port $1 is in use; set the BENCH_*_PORT variables to free ones"
    fi
}

runs_ferrocast() { [[ $BENCH_ONLY == all || $BENCH_ONLY == ferrocast ]]; }
runs_anchors() { [[ $BENCH_ONLY == all || $BENCH_ONLY == anchors ]]; }

# The 720p30 test input: H.264 High (B-frames, 2 s GOP like an OBS preset) + AAC in FLV. testsrc2
# alone compresses to almost nothing; temporal noise makes every frame cost the encoders real work.
input_file() {
    if [[ $DURATION == 60 ]]; then echo "$WORK_DIR/input-720p.flv"; else echo "$WORK_DIR/input-720p-${DURATION}s.flv"; fi
}

make_input() {
    local out
    out=$(input_file)
    if [[ -s $out ]]; then
        return 0
    fi
    log "generating $out ($DURATION s, 720p30 with temporal noise; once)"
    "${NICE[@]}" ffmpeg -hide_banner -loglevel error -nostdin -y \
        -f lavfi -i "testsrc2=size=1280x720:rate=30,noise=alls=20:allf=t+u" \
        -f lavfi -i "sine=frequency=440:sample_rate=48000" \
        -t "$DURATION" \
        -c:v libx264 -preset veryfast -profile:v high -pix_fmt yuv420p -bf 2 \
        -g 60 -keyint_min 60 -sc_threshold 0 -b:v 6000k -maxrate 6000k -bufsize 12000k \
        -c:a aac -b:a 128k -ar 48000 -ac 2 \
        -f flv "$out.tmp" || die "ffmpeg could not generate the input"
    mv "$out.tmp" "$out"
}

# media_seconds FILE: the container duration.
media_seconds() {
    ffprobe -v error -show_entries format=duration -of csv=p=0 "$1"
}

# video_packets SOURCE: coded video frames in SOURCE (a file, an HLS URL, or - for stdin), without decoding.
video_packets() {
    timeout 300 ffprobe -v error -select_streams v:0 -count_packets -show_entries stream=nb_read_packets -of csv=p=0 -i "$1" 2>/dev/null | first_line
}

# ---------------------------------------------------------------------------------------------
# /proc sampling (Linux)

# proc_ticks PID: utime + stime of the whole process (all its threads), in clock ticks.
proc_ticks() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    # Fields after "pid (comm) " start at field 3 (state); utime and stime are fields 14 and 15.
    stat=${stat##*) }
    awk '{print $12 + $13}' <<<"$stat"
}

# proc_status_kb PID FIELD: a kB value from /proc/PID/status (VmRSS, VmHWM), 0 when gone.
proc_status_kb() {
    awk -v f="$2:" '$1 == f {print $2; found = 1} END {if (!found) print 0}' "/proc/$1/status" 2>/dev/null || echo 0
}

# proc_tree PID: PID and all its descendants.
proc_tree() {
    local pid child
    for pid in "$@"; do
        echo "$pid"
        for child in $(ps -o pid= --ppid "$pid" 2>/dev/null); do
            proc_tree "$child"
        done
    done
}

tree_ticks() {
    local total=0 pid
    for pid in $(proc_tree "$@"); do total=$((total + $(proc_ticks "$pid"))); done
    echo "$total"
}

tree_rss_kb() {
    local total=0 pid
    for pid in $(proc_tree "$@"); do total=$((total + $(proc_status_kb "$pid" VmRSS))); done
    echo "$total"
}

ticks_to_s() { awk -v t="$1" -v hz="$CLK_TCK" 'BEGIN {printf "%.1f", t / hz}'; }
kb_to_mb() { awk -v k="$1" 'BEGIN {printf "%.0f", k / 1024}'; }

# time_field FILE LABEL: a value from `/usr/bin/time -v` output.
time_field() {
    awk -F': ' -v label="$2" 'index($0, label) {print $NF}' "$1" | tr -d ' \t' | first_line
}

# time_wall_s FILE: the "Elapsed (wall clock)" value in seconds.
time_wall_s() {
    local v
    v=$(awk -F'): ' '/Elapsed \(wall clock\)/ {print $2}' "$1")
    awk -v v="$v" 'BEGIN {n = split(v, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.2f", s}'
}

# ---------------------------------------------------------------------------------------------
# ferrocast

# ensure_ferrocast: the release binary, built once (nice'd) when missing.
ensure_ferrocast() {
    if [[ -x $FERROCAST_BIN ]]; then
        return 0
    fi
    require cargo
    log "building $FERROCAST_BIN (nice -n 10 cargo build --release -p ferrocast; takes minutes)"
    (cd "$REPO_DIR" && nice -n 10 cargo build --release -p ferrocast) || die "release build failed"
    [[ -x $FERROCAST_BIN ]] || die "no binary at $FERROCAST_BIN after the build"
}

# write_ferrocast_config FILE DATA_DIR INCLUDE_SOURCE LADDER: LADDER is lines of
# "name width height kbps"; the default ladder when empty; "none" for an empty ladder (with
# INCLUDE_SOURCE=true that is relay mode: the source rung only, no encoding). FC_EXTRA_TOML, when
# set, is appended as is (more sections, e.g. "[jobs]\nvod_x264_preset = \"veryfast\"").
write_ferrocast_config() {
    local file=$1 data_dir=$2 include_source=$3 ladder=${4:-} name width height kbps
    {
        echo "http_addr = \"127.0.0.1:$FC_HTTP_PORT\""
        echo "rtmp_addr = \"127.0.0.1:$FC_RTMP_PORT\""
        echo "data_dir = \"$data_dir\""
        echo 'log_format = "json"'
        echo '[rtmp]'
        echo '# Finish a recording one second after the publisher leaves, not ten.'
        echo 'reconnect_grace_secs = 1'
        echo '# Every bench publisher connects from 127.0.0.1; the per-address cap (16) is for hosts.'
        echo 'max_connections_per_address = 200'
        echo '[media]'
        echo "include_source = $include_source"
        # FC_MEDIA_TOML: more [media] settings (before the ladder's tables).
        if [[ -n ${FC_MEDIA_TOML:-} ]]; then printf '%b\n' "$FC_MEDIA_TOML"; fi
        if [[ $ladder == none ]]; then
            echo 'ladder = []'
        elif [[ -n $ladder ]]; then
            while read -r name width height kbps; do
                [[ -n $name ]] || continue
                printf '[[media.ladder]]\nname = "%s"\nwidth = %s\nheight = %s\nvideo_bitrate_kbps = %s\n' "$name" "$width" "$height" "$kbps"
            done <<<"$ladder"
        fi
        if [[ -n ${FC_EXTRA_TOML:-} ]]; then printf '%b\n' "$FC_EXTRA_TOML"; fi
    } >"$file"
}

# start_ferrocast TAG INCLUDE_SOURCE [LADDER]: a fresh data dir and config under work/, the server
# on the fixed ports; sets FC_PID, FC_DATA, FC_LOG once /healthz answers.
start_ferrocast() {
    local tag=$1 include_source=$2 ladder=${3:-} config i var
    ensure_ferrocast
    port_free "$FC_HTTP_PORT"
    port_free "$FC_RTMP_PORT"
    FC_DATA="$WORK_DIR/ferrocast-$tag"
    rm -rf "$FC_DATA"
    mkdir -p "$FC_DATA"
    config="$FC_DATA/ferrocast.toml"
    write_ferrocast_config "$config" "$FC_DATA/data" "$include_source" "$ladder"
    FC_LOG="$FC_DATA/server.log"
    # Unknown FERROCAST_* variables are configuration errors; start from none of them.
    local unset_args=()
    for var in $(compgen -e | grep '^FERROCAST_' || true); do unset_args+=(-u "$var"); done
    # FC_WRAPPER: words put in front of the binary (a profiler); FC_PID is then the wrapper's.
    # shellcheck disable=SC2086
    bench_spawn "$FC_LOG" env "${unset_args[@]}" ${FC_WRAPPER:-} "$FERROCAST_BIN" --config "$config" serve
    FC_PID=$SPAWNED
    for ((i = 0; i < 600; i++)); do
        if curl -sf -o /dev/null "$FC_HTTP/healthz"; then
            log "ferrocast up (pid $FC_PID, data $FC_DATA)"
            return 0
        fi
        kill -0 "$FC_PID" 2>/dev/null || { tail -n 20 "$FC_LOG" >&2; die "ferrocast exited during start-up"; }
        sleep 0.1
    done
    die "ferrocast did not answer /healthz within 60 s (log: $FC_LOG)"
}

# stop_ferrocast: SIGTERM (it drains: live videos are finalised), then the segments are deleted
# unless BENCH_KEEP=1; the config, database and log stay in work/ferrocast-TAG.
stop_ferrocast() {
    [[ -n ${FC_PID:-} ]] || return 0
    stop_pid "$FC_PID" 30
    FC_PID=
    [[ ${BENCH_KEEP:-0} == 1 ]] || rm -rf "$FC_DATA/data/media" "$FC_DATA/data/spool" "$FC_DATA/data/uploads"
}

api() { # api METHOD PATH [JSON]: the response body; fails on an HTTP error.
    local method=$1 path=$2 body=${3:-}
    local args=(-sS --fail-with-body -X "$method" -H 'content-type: application/json')
    [[ -n ${FC_TOKEN:-} ]] && args+=(-H "authorization: Bearer $FC_TOKEN")
    [[ -n $body ]] && args+=(--data "$body")
    curl "${args[@]}" "$FC_HTTP$path"
}

# fc_streamer: signs up and logs in the benchmark user; sets FC_TOKEN.
fc_streamer() {
    FC_TOKEN=
    api POST /api/auth/signup '{"username":"bench","email":"bench@example.com","password":"a long bench password"}' >/dev/null
    FC_TOKEN=$(api POST /api/auth/login '{"username_or_email":"bench","password":"a long bench password"}' | jq -r .access_token)
    [[ -n $FC_TOKEN && $FC_TOKEN != null ]] || die "login returned no access token"
}

# fc_channel SLUG: creates a channel and prints its stream key.
fc_channel() {
    local key
    key=$(api POST /api/channels "{\"slug\":\"$1\",\"title\":\"bench $1\"}" | jq -r .stream_key)
    [[ -n $key && $key != null ]] || die "channel $1 returned no stream key"
    echo "$key"
}

# fc_wait_live SLUG SECONDS: prints the channel's live video id.
fc_wait_live() {
    local slug=$1 deadline=$(($(date +%s) + $2)) id
    while (($(date +%s) < deadline)); do
        id=$(curl -sf "$FC_HTTP/api/channels/$slug" | jq -r '.live_video_id // empty') || true
        if [[ -n $id ]]; then echo "$id"; return 0; fi
        sleep 0.2
    done
    die "channel $slug did not go live within $2 s"
}

# fc_wait_ready VIDEO_ID SECONDS: prints the video JSON once its status is ready (or failed).
fc_wait_ready() {
    local id=$1 deadline=$(($(date +%s) + $2)) video status
    while (($(date +%s) < deadline)); do
        video=$(curl -sf "$FC_HTTP/api/videos/$id") || video='{}'
        status=$(jq -r '.status // empty' <<<"$video")
        if [[ $status == ready || $status == failed ]]; then echo "$video"; return 0; fi
        sleep 0.25
    done
    die "video $id not ready within $2 s"
}

# fc_dropped VIDEO_ID: frames the server says it dropped (the owner's view of a live video:
# GET /api/videos/{id} → health.dropped_frames); empty when not live or not reported.
fc_dropped() {
    curl -sf -H "authorization: Bearer $FC_TOKEN" "$FC_HTTP/api/videos/$1" 2>/dev/null | jq -r '.health.dropped_frames // empty' 2>/dev/null || true
}

# fc_dropped_total: frames dropped, summed over every live video, from /metrics (one request,
# refreshed by the server every 5 s); empty when the gauge is absent.
fc_dropped_total() {
    curl -sf "$FC_HTTP/metrics" 2>/dev/null |
        awk 'index($0, "ferrocast_live_frames_dropped{") == 1 {sum += $NF; found = 1} END {if (found) printf "%.0f\n", sum}' || true
}

# fc_encode_speed VIDEO_ID: the server's own realtime factor gauge for a live video (media seconds
# written per wall second; from /metrics, refreshed every 5 s); empty when absent.
fc_encode_speed() {
    curl -sf "$FC_HTTP/metrics" 2>/dev/null |
        awk -v id="$1" 'index($0, "ferrocast_live_encode_realtime_factor{") == 1 && index($0, "\"" id "\"") {print $NF}' | first_line || true
}

# ---------------------------------------------------------------------------------------------
# nginx with the RTMP module

ensure_nginx_rtmp() {
    if ! command -v nginx >/dev/null 2>&1 || [[ ! -e /usr/lib/nginx/modules/ngx_rtmp_module.so ]]; then
        log "installing nginx-light and libnginx-mod-rtmp (Debian packages)"
        local sudo=()
        [[ $(id -u) == 0 ]] || sudo=(sudo)
        # policy-rc.d in containers keeps the packaged service from starting; we never use it anyway.
        "${sudo[@]}" apt-get install -y -q nginx-light libnginx-mod-rtmp >/dev/null ||
            { "${sudo[@]}" apt-get update -q >/dev/null && "${sudo[@]}" apt-get install -y -q nginx-light libnginx-mod-rtmp >/dev/null; } ||
            die "could not install nginx-light libnginx-mod-rtmp"
    fi
}

# start_nginx TAG: nginx in the foreground with bench/nginx.conf under work/nginx-TAG (HLS files in
# its hls/); sets NGINX_PID (the master; it has one worker).
start_nginx() {
    local tag=$1 prefix i
    ensure_nginx_rtmp
    port_free "$NGINX_HTTP_PORT"
    port_free "$NGINX_RTMP_PORT"
    prefix="$WORK_DIR/nginx-$tag"
    NGINX_PREFIX=$prefix
    rm -rf "$prefix"
    mkdir -p "$prefix/hls" "$prefix/logs" "$prefix/tmp"
    # Workers may run as an unprivileged user when started as root; they write the HLS files.
    chmod 0777 "$prefix/hls" "$prefix/tmp"
    sed -e "s|@PREFIX@|$prefix|g" -e "s|@RTMP_PORT@|$NGINX_RTMP_PORT|g" -e "s|@HTTP_PORT@|$NGINX_HTTP_PORT|g" \
        "$BENCH_DIR/nginx.conf" >"$prefix/nginx.conf"
    bench_spawn "$prefix/logs/stdout.log" nginx -p "$prefix" -c "$prefix/nginx.conf"
    NGINX_PID=$SPAWNED
    for ((i = 0; i < 100; i++)); do
        if curl -s -o /dev/null "$NGINX_HTTP/"; then
            log "nginx-rtmp up (pid $NGINX_PID, prefix $prefix)"
            return 0
        fi
        kill -0 "$NGINX_PID" 2>/dev/null || { cat "$prefix/logs/stdout.log" "$prefix/logs/error.log" >&2 2>/dev/null; die "nginx exited during start-up"; }
        sleep 0.1
    done
    die "nginx did not answer within 10 s"
}

stop_nginx() {
    [[ -n ${NGINX_PID:-} ]] || return 0
    stop_pid "$NGINX_PID" 15
    NGINX_PID=
    [[ ${BENCH_KEEP:-0} == 1 ]] || rm -rf "$NGINX_PREFIX/hls"
}

# ---------------------------------------------------------------------------------------------
# Publishers

# publish_paced LOGFILE URL [LOOP]: ffmpeg sends the input at its own pace (-re), untouched
# (-c copy), like OBS would; LOOP=1 repeats it forever. Sets SPAWNED.
publish_paced() {
    local logfile=$1 url=$2 loop=${3:-0} args=(-hide_banner -loglevel error -nostdin)
    [[ $loop == 1 ]] && args+=(-stream_loop -1)
    bench_spawn "$logfile" ffmpeg "${args[@]}" -re -i "$(input_file)" -c copy -f flv "$url"
}

# playlist_last_seq URL: the media sequence number of the last segment listed, -1 when unavailable.
playlist_last_seq() {
    curl -sf --max-time 5 "$1" 2>/dev/null | awk '
        /^#EXT-X-MEDIA-SEQUENCE:/ {split($0, p, ":"); seq = p[2] + 0}
        /^#EXTINF:/ {n++}
        END {if (n) print seq + n - 1; else print -1}'
}

# ---------------------------------------------------------------------------------------------
# Results

# results_header TITLE: the common header of a results file (machine, versions, knobs).
results_header() {
    local rev cpu
    rev=$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [[ -n $(git -C "$REPO_DIR" status --porcelain 2>/dev/null | first_line) ]]; then rev="$rev (dirty)"; fi
    cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
    echo "# $1"
    echo
    echo "- started: $BENCH_STARTED; ferrocast commit $rev (the checkout); binary $(basename "$FERROCAST_BIN"), built $(date -u -r "$FERROCAST_BIN" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || echo '(missing)')"
    echo "- machine: $(nproc) CPUs ($cpu), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo); load average at start $BENCH_START_LOAD, at the end $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min; ours included); finished $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "- tools: $(ffmpeg -version | first_line | cut -d' ' -f1-3); $(gst-launch-1.0 --version | sed -n 2p); $( (command -v nginx >/dev/null && nginx -v 2>&1 | cut -d' ' -f3) || echo 'nginx not installed')"
    echo "- input: ${BENCH_INPUT_DESC:-$(basename "$(input_file)"), $DURATION s 720p30 H.264 High 6 Mb/s + AAC}; niceness $BENCH_NICE for every contestant; BENCH_ONLY=$BENCH_ONLY"
    echo
}

# finish_results NAME FILE: moves FILE into results/NAME.md and prints it.
finish_results() {
    local target="$RESULTS_DIR/$1.md"
    mv "$2" "$target"
    echo
    cat "$target"
    log "results written to $target"
}

# The ffmpeg side of a ladder comparison, built from RUNGS ("name width height kbps"): decode once,
# split, bilinear scale per rung (what GStreamer's videoscale does by default), and per rung ABR with
# a VBV of bitrate × 600 ms (x264enc's defaults: pass=cbr, vbv-buf-capacity=600). Sets FF_FILTER
# (for -filter_complex), FF_MAPS (video then audio maps), FF_RATES (per-stream rate options) and
# FF_STREAMS (for -var_stream_map).
ffmpeg_ladder_args() {
    local i name w h kbps
    FF_FILTER="[0:v]split=${#RUNGS[@]}" FF_MAPS=() FF_RATES=() FF_STREAMS=()
    for i in "${!RUNGS[@]}"; do FF_FILTER+="[s$i]"; done
    for i in "${!RUNGS[@]}"; do
        read -r name w h kbps <<<"${RUNGS[i]}"
        FF_FILTER+=";[s$i]scale=$w:$h:flags=bilinear,setsar=1[v$i]"
        FF_MAPS+=(-map "[v$i]")
        FF_RATES+=("-b:v:$i" "${kbps}k" "-maxrate:v:$i" "${kbps}k" "-bufsize:v:$i" "$((kbps * 6 / 10))k")
        FF_STREAMS+=("v:$i,a:$i,name:$name")
    done
    for i in "${!RUNGS[@]}"; do FF_MAPS+=(-map 0:a); done
}
