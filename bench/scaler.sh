#!/usr/bin/env bash
# Scaler: the ladder's own scaler (media/scale, `ferrocastscale`) against ffmpeg's swscale with the
# bilinear filter (what the ffmpeg anchors of ladder.sh and vod.sh use) on the same raw frames:
# CPU milliseconds per frame for each rung of the default ladder, from a 1080p and a 720p source,
# and the SSIM of each result against the source scaled with ffmpeg's bicubic. One thread each; the
# frames are read from and written to files, so only the resizing differs.
#
#   bench/scaler.sh                 (about a minute)
#   BENCH_FRAMES=300 bench/scaler.sh
#   SCALE_FRAMES_BIN=path           the example binary (built with cargo when absent)
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

require ffmpeg awk
FRAMES=${BENCH_FRAMES:-150}
SCALE_FRAMES_BIN=${SCALE_FRAMES_BIN:-$REPO_DIR/target/release/examples/scale_frames}
if [[ ! -x $SCALE_FRAMES_BIN ]]; then
    require cargo
    log "building $SCALE_FRAMES_BIN (cargo build --release -p ferrocast-scale --example scale_frames)"
    (cd "$REPO_DIR" && cargo build --release --locked -p ferrocast-scale --example scale_frames) || die "build failed"
fi
# The default ladder's sizes (name width height).
RUNGS=("low 640 360" "mid 854 480" "high 1280 720")

# ssim_of FILE SIZE REFERENCE: the SSIM (all planes) of raw I420 FILE against REFERENCE, both SIZE.
ssim_of() {
    ffmpeg -hide_banner -nostdin -f rawvideo -pix_fmt yuv420p -s "$2" -i "$1" -f rawvideo -pix_fmt yuv420p -s "$2" -i "$3" \
        -lavfi ssim -f null - 2>&1 | awk -F'All:' '/SSIM/ {split($2, a, " "); print a[1]}'
}
# bench_utime FFMPEG_ARGS...: ffmpeg's user CPU seconds, one thread, for the raw input in RAW_IN.
bench_utime() {
    "${NICE[@]}" ffmpeg -hide_banner -nostdin -benchmark -threads 1 -filter_threads 1 "${RAW_IN[@]}" "$@" 2>&1 |
        awk -F'utime=' '/bench: utime/ {split($2, a, "s"); print a[1]}'
}

rows=$(mktemp)
for source in 1920x1080 1280x720; do
    sw=${source%x*} sh=${source#*x}
    raw="$WORK_DIR/scaler-$source.yuv"
    if [[ ! -s $raw ]]; then
        log "generating $FRAMES frames of $source (testsrc2 with temporal noise, like the other inputs)"
        "${NICE[@]}" ffmpeg -hide_banner -loglevel error -nostdin -y -f lavfi -i "testsrc2=size=$source:rate=30,noise=alls=20:allf=t+u" \
            -frames:v "$FRAMES" -pix_fmt yuv420p -f rawvideo "$raw"
    fi
    RAW_IN=(-f rawvideo -pix_fmt yuv420p -s "$source" -i "$raw")
    for rung in "${RUNGS[@]}"; do
        read -r name dw dh <<<"$rung"
        ((dw < sw)) || continue
        out="$WORK_DIR/scaler-out.yuv" reference="$WORK_DIR/scaler-reference.yuv"
        ffmpeg -hide_banner -loglevel error -nostdin -y "${RAW_IN[@]}" -vf "scale=$dw:$dh:flags=bicubic" -f rawvideo "$reference"
        ours=$("${NICE[@]}" "$SCALE_FRAMES_BIN" "$sw" "$sh" "$dw" "$dh" <"$raw" 2>&1 >"$out" | awk '{print $3}')
        ours_ssim=$(ssim_of "$out" "${dw}x$dh" "$reference")
        # ffmpeg's own time with and without the scale filter: the difference is swscale's.
        base=$(bench_utime -vf null -f null -)
        with=$(bench_utime -vf "scale=$dw:$dh:flags=bilinear" -f rawvideo -y "$out")
        theirs=$(awk -v a="$with" -v b="$base" -v n="$FRAMES" 'BEGIN {printf "%.3f", (a - b) * 1000 / n}')
        theirs_ssim=$(ssim_of "$out" "${dw}x$dh" "$reference")
        ratio=$(awk -v a="$ours" -v b="$theirs" 'BEGIN {if (b > 0) printf "%.2f×", a / b; else print "?"}')
        log "$source → ${dw}x$dh: ferrocast $ours ms, swscale $theirs ms per frame"
        echo "| $source → ${dw}x$dh ($name) | $ours | $theirs | $ratio | $ours_ssim | $theirs_ssim |" >>"$rows"
    done
done
rm -f "$WORK_DIR/scaler-out.yuv" "$WORK_DIR/scaler-reference.yuv"
BENCH_INPUT_DESC="$FRAMES raw I420 frames per source size (testsrc2 with temporal noise)"
results=$(mktemp)
{
    results_header "Scaler: ferrocastscale against swscale (bilinear), one thread, the same frames"
    echo "| resize | ferrocast ms per frame | swscale ms per frame | ratio | ferrocast SSIM vs bicubic | swscale SSIM vs bicubic |"
    echo "|---|---|---|---|---|---|"
    cat "$rows"
} >"$results"
rm -f "$rows"
finish_results scaler "$results"
