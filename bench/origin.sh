#!/usr/bin/env bash
# Origin throughput: requests per second and latency percentiles for a finished video's segment
# and its media playlist, served by ferrocast and by nginx serving the same files from disk
# (sendfile on, open_file_cache, keep-alive), at 100 and 1,000 connections, with wrk on loopback.
#
# The video is made by publishing the test input in relay mode (no transcoding) and letting it
# finish; both servers then serve its files. Not a test: prints numbers, asserts nothing.
#
#   bench/origin.sh                      (about 3 minutes)
#   BENCH_WRK_SECS=30 bench/origin.sh    longer runs per case
#   BENCH_PERF=1 bench/origin.sh         also a CPU profile of ferrocast per case (perf, from
#                                        linux-perf), summarised in work/perf-<file>-<connections>.txt
set -euo pipefail
export BENCH_DURATION=${BENCH_DURATION:-20}
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

WRK_SECS=${BENCH_WRK_SECS:-15}
require wrk jq curl ffmpeg
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
make_input

# wrk_case URL CONNECTIONS: "requests/s p50_ms p99_ms errors" of one wrk run.
wrk_case() {
    local out rps p50 p99 errors
    out=$(run_bounded $((WRK_SECS + 30)) wrk -t2 -c "$2" -d "${WRK_SECS}s" --timeout 10s --latency "$1" 2>&1) || true
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out" | to_ms)
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out" | to_ms)
    errors=$(awk '/Non-2xx or 3xx responses:/ {n += $NF} /Socket errors:/ {for (i = 4; i <= NF; i += 2) n += $i} END {print n + 0}' <<<"$out" | tr -d ',')
    echo "${rps:-0} ${p50:-?} ${p99:-?} ${errors:-?}"
}

# to_ms: wrk's "1.23ms" / "456.00us" / "1.02s" as milliseconds.
to_ms() {
    awk '{v = $1; if (v ~ /us$/) {sub(/us$/, "", v); v /= 1000} else if (v ~ /ms$/) {sub(/ms$/, "", v)} else if (v ~ /s$/) {sub(/s$/, "", v); v *= 1000}; printf "%.1f", v}'
}

# The finished video, made once by ferrocast in relay mode.
FC_EXTRA_TOML='[http]\nmax_connections = 20000\nmax_connections_per_address = 20000'
start_ferrocast origin true none
fc_streamer
key=$(fc_channel origin)
log "publishing $(input_file) in relay mode to make a finished video"
publish_paced "$WORK_DIR/origin-publish.log" "$FC_RTMP/$key"
publisher=$SPAWNED
video=$(fc_wait_live origin 60)
wait "$publisher" 2>/dev/null || true
forget_pid "$publisher"
fc_wait_ready "$video" 120 >/dev/null
master=$(curl -sf "$FC_HTTP/hls/$video/master.m3u8")
rendition=$(awk '!/^#/ && NF {print; exit}' <<<"$master")
rendition_dir=${rendition%index.m3u8}
playlist=$(curl -sf "$FC_HTTP/hls/$video/$rendition")
segment=$(awk '!/^#/ && NF {n++; if (n == 3) {print; exit}}' <<<"$playlist")
media_dir="$FC_DATA/data/media/$video"
[[ -f $media_dir/$rendition_dir$segment ]] || die "no segment file at $media_dir/$rendition_dir$segment"
segment_bytes=$(stat -c %s "$media_dir/$rendition_dir$segment")
playlist_bytes=$(stat -c %s "$media_dir/$rendition")
log "video $video: segment $rendition_dir$segment ($segment_bytes bytes), playlist $rendition ($playlist_bytes bytes)"

# nginx serving the same directory as static files.
ensure_nginx_rtmp
nginx_prefix="$WORK_DIR/nginx-origin"
rm -rf "$nginx_prefix" && mkdir -p "$nginx_prefix/logs" "$nginx_prefix/tmp"
chmod -R a+rX "$FC_DATA/data/media"
chmod a+x "$FC_DATA" "$FC_DATA/data" "$WORK_DIR" "$BENCH_DIR" "$REPO_DIR" 2>/dev/null || true
cat >"$nginx_prefix/nginx.conf" <<NGINX
daemon off;
worker_processes auto;
pid $nginx_prefix/nginx.pid;
error_log $nginx_prefix/logs/error.log warn;
events { worker_connections 20000; }
http {
    access_log off;
    client_body_temp_path $nginx_prefix/tmp;
    sendfile on;
    tcp_nopush on;
    open_file_cache max=1000 inactive=60s;
    keepalive_requests 100000;
    types { application/vnd.apple.mpegurl m3u8; video/mp4 mp4 m4s; }
    server {
        listen 127.0.0.1:$NGINX_HTTP_PORT;
        location /hls/ { alias $FC_DATA/data/media/; }
    }
}
NGINX
port_free "$NGINX_HTTP_PORT"
bench_spawn "$nginx_prefix/logs/stdout.log" nginx -p "$nginx_prefix" -c "$nginx_prefix/nginx.conf"
NGINX_PID=$SPAWNED
for ((i = 0; i < 100; i++)); do curl -sf -o /dev/null "$NGINX_HTTP/hls/$video/$rendition" && break; sleep 0.1; done
curl -sf -o /dev/null "$NGINX_HTTP/hls/$video/$rendition_dir$segment" || die "nginx does not serve the files (log: $nginx_prefix/logs/error.log)"

rows=$(mktemp)
for file in segment playlist; do
    path="/hls/$video/$rendition"
    [[ $file == segment ]] && path="/hls/$video/$rendition_dir$segment"
    for connections in 100 1000; do
        # Warm both (ferrocast's memory cache, nginx's open file cache, the page cache).
        curl -sf -o /dev/null "$FC_HTTP$path"
        curl -sf -o /dev/null "$NGINX_HTTP$path"
        log "$file, $connections connections: ferrocast"
        if [[ ${BENCH_PERF:-0} == 1 ]]; then
            # A flat CPU profile of the server during the run (its middle; wrk is not in it).
            bench_spawn "$WORK_DIR/perf-$file-$connections.log" perf record -F 499 -p "$FC_PID" \
                -o "$WORK_DIR/perf-$file-$connections.data" -- sleep $((WRK_SECS - 4))
            PERF_PID=$SPAWNED
        fi
        read -r fc_rps fc_p50 fc_p99 fc_err < <(wrk_case "$FC_HTTP$path" "$connections")
        if [[ ${BENCH_PERF:-0} == 1 ]]; then
            wait "$PERF_PID" 2>/dev/null || true
            forget_pid "$PERF_PID"
            perf report -i "$WORK_DIR/perf-$file-$connections.data" --no-children --sort dso,symbol --percent-limit 0.7 --stdio \
                2>/dev/null | grep -v '^#' | grep -v '^$' >"$WORK_DIR/perf-$file-$connections.txt" || true
            log "profile: $WORK_DIR/perf-$file-$connections.txt"
        fi
        log "$file, $connections connections: nginx"
        read -r ng_rps ng_p50 ng_p99 ng_err < <(wrk_case "$NGINX_HTTP$path" "$connections")
        ratio=$(awk -v a="$fc_rps" -v b="$ng_rps" 'BEGIN {if (b > 0) printf "%.2f×", a / b; else print "?"}')
        p99_ratio=$(awk -v a="$fc_p99" -v b="$ng_p99" 'BEGIN {if (b > 0) printf "%.2f×", a / b; else print "?"}')
        echo "| $file | $connections | $fc_rps | $ng_rps | $ratio | $fc_p50 / $fc_p99 | $ng_p50 / $ng_p99 | $p99_ratio | $fc_err / $ng_err |" >>"$rows"
    done
done
rss_mb=$(kb_to_mb "$(proc_status_kb "$FC_PID" VmRSS)")
stop_pid "$NGINX_PID" 10
stop_ferrocast
# The header last: it records when the runs finished and the load average at the end.
results=$(mktemp)
{
    results_header "Origin: a finished video's files, ferrocast against nginx (static, sendfile)"
    echo "wrk -t2, ${WRK_SECS} s per case, loopback, wrk on the same 2 CPUs as the server. Segment: $segment_bytes bytes; media playlist: $playlist_bytes bytes."
    echo
    echo "| file | connections | ferrocast req/s | nginx req/s | ratio | ferrocast p50 / p99 ms | nginx p50 / p99 ms | p99 ratio | errors (fc / nginx) |"
    echo "|---|---|---|---|---|---|---|---|---|"
    cat "$rows"
    echo
    echo "Server RSS at the end: ferrocast $rss_mb MB."
} >"$results"
rm -f "$rows"
finish_results origin "$results"
