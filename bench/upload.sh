#!/usr/bin/env bash
# Upload throughput and memory: a file of random bytes (100 MiB, then 2 GiB) sent to ferrocast
# over loopback through the resumable upload API (bench/upload.py: 8 MiB parts, 4 in parallel, each
# with its Content-Digest), against writing the same number of bytes to the same disk with dd.
#   - Only the part PUTs are timed. The upload is then DELETEd instead of completed, so no transcode
#     runs (the server does not look at the content before `complete`).
#   - The server's RSS is sampled every 0.1 s during the PUTs, and its VmHWM (peak) read after: it
#     must be the same for 100 MiB and for 2 GiB (parts are streamed to disk, never held).
#   - dd: `dd if=/dev/zero … bs=8M conv=fsync` and the same from the source file (which is in the
#     page cache, as it is for the uploader), on the same filesystem as the server's data dir.
#   - Before every timed run, an untimed `sync`, so no run pays for the previous one's dirty pages.
# A fresh server per size; BENCH_REPEAT (3) runs of each, alternating; medians in the table.
# Knobs: BENCH_UPLOAD_SIZES_MIB ("100 2048"), BENCH_UPLOAD_PARALLEL (4), BENCH_REPEAT (3),
# BENCH_ONLY (all|anchors|ferrocast), BENCH_NICE (10). Needs 2 × the largest size free in
# bench/work (the source file and one copy at a time); everything is deleted afterwards.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

require jq curl awk python3 dd timeout
SIZES=${BENCH_UPLOAD_SIZES_MIB:-100 2048}
PARALLEL=${BENCH_UPLOAD_PARALLEL:-4}
REPEAT=${BENCH_REPEAT:-3}
PART_BYTES=$((8 << 20))
BENCH_INPUT_DESC="random bytes (/dev/urandom), $(echo "$SIZES" | sed 's/ / and /g') MiB; ${PART_BYTES} B parts, $PARALLEL in parallel"

largest=0
for mib in $SIZES; do ((mib > largest)) && largest=$mib; done
avail_mib=$(df -Pm "$WORK_DIR" | awk 'NR == 2 {print $4}')
log "free in $WORK_DIR: $avail_mib MiB; needed: about $((2 * largest + 1024)) MiB"
((avail_mib > 2 * largest + 1024)) || die "not enough free space in $WORK_DIR for a $largest MiB upload and its copy"
FS_DESC="$(df -PT "$WORK_DIR" | awk 'NR == 2 {print $1 " (" $2 ")"}')"

ROWS=$(mktemp)
MEM_ROWS=$(mktemp)
SRC=
cleanup_files() { rm -f "$WORK_DIR"/upload-*.bin "$WORK_DIR"/upload-dd.out; }
upload_cleanup() {
    local status=$?
    cleanup_files
    (exit "$status")
    bench_cleanup
}
trap upload_cleanup EXIT

median() { sort -g | awk '{v[NR] = $1} END {if (NR == 0) print 0; else print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
range() { sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%s–%s", lo, hi}'; }

# dd_run IF BYTES: MB/s (10^6 bytes per second) of one dd to the work dir, fsync'd at the end.
dd_run() {
    local src=$1 bytes=$2 out="$WORK_DIR/upload-dd.out" err t0 t1
    rm -f "$out"
    sync # untimed: the previous run's dirty pages are not this run's work
    t0=$(now_ms)
    err=$(run_bounded 600 dd if="$src" of="$out" bs=8M count="$bytes" iflag=count_bytes conv=fsync 2>&1) || die "dd failed: $err"
    t1=$(now_ms)
    rm -f "$out"
    awk -v b="$bytes" -v a="$t0" -v c="$t1" 'BEGIN {printf "%.1f\n", b / ((c - a) / 1000) / 1e6}'
}

for mib in $SIZES; do
    bytes=$((mib << 20))
    SRC="$WORK_DIR/upload-$mib.bin"
    log "writing $mib MiB of random bytes to $SRC"
    dd if=/dev/urandom of="$SRC" bs=8M count="$bytes" iflag=count_bytes status=none
    up_runs=$(mktemp)
    dd_zero=$(mktemp)
    dd_file=$(mktemp)
    if runs_ferrocast; then
        FC_EXTRA_TOML="[auth]\naccess_token_ttl_secs = 3600\n[uploads]\npart_bytes = $PART_BYTES" start_ferrocast "upload-$mib" false
        fc_streamer
        fc_channel upload-bench >/dev/null
        idle=$(proc_status_kb "$FC_PID" VmRSS)
    fi
    for ((r = 1; r <= REPEAT; r++)); do
        if runs_ferrocast; then
            log "upload of $mib MiB, $PARALLEL parts in parallel (run $r of $REPEAT)"
            sync
            json=$(run_bounded 900 python3 "$BENCH_DIR/upload.py" --port "$FC_HTTP_PORT" --token "$FC_TOKEN" --channel upload-bench \
                --file "$SRC" --parallel "$PARALLEL" --then delete --watch-pid "$FC_PID") || die "upload failed: $json"
            echo "$json" >>"$up_runs"
            log "  $(jq -r '"\(.mb_per_s) MB/s in \(.put_s) s; server CPU \(.server_cpu_s) s, RSS peak \(.server_rss_peak_kb) kB"' <<<"$json")"
            left=$(du -sm "$FC_DATA/data/uploads" 2>/dev/null | cut -f1 || echo 0)
            ((left <= 1)) || log "warning: $left MiB left in the uploads dir after DELETE"
        fi
        if runs_anchors; then
            log "dd of $mib MiB from /dev/zero and from the file (run $r of $REPEAT)"
            dd_run /dev/zero "$bytes" >>"$dd_zero"
            dd_run "$SRC" "$bytes" >>"$dd_file"
        fi
    done
    if runs_ferrocast; then
        hwm=$(proc_status_kb "$FC_PID" VmHWM)
        stop_ferrocast
        n=$(grep -c . "$up_runs")
        mbs=$(jq -r .mb_per_s "$up_runs")
        cpu=$(jq -r '.server_cpu_s / .size * 1e9' "$up_runs" | median)
        ccpu=$(jq -r '.client_cpu_s / .size * 1e9' "$up_runs" | median)
        echo "| ferrocast upload API, $PARALLEL parallel 8 MiB parts | $mib | $n | $(printf %.0f "$(median <<<"$mbs")") ($(range <<<"$mbs")) | server $(printf %.1f "$cpu") CPU s per GB, client $(printf %.1f "$ccpu") | SHA-256 checked and fsync per part by the server |" >>"$ROWS"
        echo "| $mib | $(kb_to_mb "$idle") | $(kb_to_mb "$(jq -r .server_rss_peak_kb "$up_runs" | sort -n | tail -n1)") | $(kb_to_mb "$hwm") | $(kb_to_mb "$(jq -r .server_rss_after_kb "$up_runs" | tail -n1)") | $(jq -s 'map(.server_rss_samples) | add' "$up_runs") |" >>"$MEM_ROWS"
    fi
    if runs_anchors; then
        echo "| dd if=/dev/zero bs=8M conv=fsync | $mib | $REPEAT | $(printf %.0f "$(median <"$dd_zero")") ($(range <"$dd_zero")) | | one fsync at the end |" >>"$ROWS"
        echo "| dd if=the same file bs=8M conv=fsync | $mib | $REPEAT | $(printf %.0f "$(median <"$dd_file")") ($(range <"$dd_file")) | | source in the page cache, like the uploader's |" >>"$ROWS"
    fi
    rm -f "$up_runs" "$dd_zero" "$dd_file" "$SRC"
done

OUT=$(mktemp)
{
    results_header "Upload throughput over loopback vs dd, and server memory"
    echo "| writer | size MiB | runs | MB/s median (range) | CPU | notes |"
    echo "|---|---|---|---|---|---|"
    cat "$ROWS"
    echo
    if [[ -s $MEM_ROWS ]]; then
        echo "Server memory (MB) during the uploads of each size (a fresh server per size; sampled every 0.1 s during the PUTs):"
        echo
        echo "| size MiB | RSS idle, before | RSS peak during the PUTs | VmHWM (peak over the server's life) | RSS after the last upload | samples |"
        echo "|---|---|---|---|---|---|"
        cat "$MEM_ROWS"
        echo
    fi
    echo "MB/s = 10^6 bytes per second. Upload: only the part PUTs are timed (bench/upload.py: the SHA-256 of every"
    echo "part is computed before the clock starts; $PARALLEL threads with one keep-alive connection each), then the"
    echo "upload is deleted. The server streams each part to its own file, hashing as it goes, fsyncs it, renames it"
    echo "into place and records it in SQLite; dd writes one file and fsyncs once. All on $FS_DESC, with an untimed"
    echo "\`sync\` before every run. The client (Python) runs on the same $(nproc) cores as the server. CPU: CPU seconds"
    echo "per 10^9 bytes received, the server's (utime + stime) and the client's own."
} >"$OUT"
rm -f "$ROWS" "$MEM_ROWS"
finish_results upload "$OUT"
