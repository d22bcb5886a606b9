//! Resizes raw I420 frames read from stdin with the ladder's scaler and writes them to stdout,
//! printing how long the resizing itself took per frame: `bench/scaler.sh` runs it beside ffmpeg's
//! swscale on the same frames.
//!
//!     scale_frames SRC_WIDTH SRC_HEIGHT DST_WIDTH DST_HEIGHT < in.yuv > out.yuv

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ferrocast_scale::{resize_plane, Scratch};

fn main() -> ExitCode {
    let sizes: Vec<u32> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let &[src_width, src_height, dst_width, dst_height] = sizes.as_slice() else {
        eprintln!("usage: scale_frames SRC_WIDTH SRC_HEIGHT DST_WIDTH DST_HEIGHT < in.yuv > out.yuv");
        return ExitCode::FAILURE;
    };
    // I420: a full-size luma plane, then two chroma planes of half the width and height (rounded up).
    let planes = |w: u32, h: u32| [(w, h), (w.div_ceil(2), h.div_ceil(2)), (w.div_ceil(2), h.div_ceil(2))];
    let (from, to) = (planes(src_width, src_height), planes(dst_width, dst_height));
    let bytes = |p: &[(u32, u32); 3]| p.iter().map(|(w, h)| (w * h) as usize).sum::<usize>();
    let mut input = vec![0u8; bytes(&from)];
    let mut output = vec![0u8; bytes(&to)];
    let (mut stdin, mut stdout) = (std::io::stdin().lock(), std::io::stdout().lock());
    let mut scratch = Scratch::default();
    let (mut frames, mut spent) = (0u32, Duration::ZERO);
    while stdin.read_exact(&mut input).is_ok() {
        let started = Instant::now();
        let (mut src, mut dst) = (&input[..], &mut output[..]);
        for (&(sw, sh), &(dw, dh)) in from.iter().zip(&to) {
            let (plane, rest) = src.split_at((sw * sh) as usize);
            let (out, more) = dst.split_at_mut((dw * dh) as usize);
            if let Err(e) = resize_plane(&mut scratch, plane, sw as usize, (sw, sh), out, dw as usize, (dw, dh)) {
                eprintln!("resizing: {e}");
                return ExitCode::FAILURE;
            }
            (src, dst) = (rest, more);
        }
        spent += started.elapsed();
        frames += 1;
        if stdout.write_all(&output).is_err() {
            return ExitCode::FAILURE;
        }
    }
    eprintln!("{frames} frames, {:.3} ms per frame", spent.as_secs_f64() * 1000.0 / f64::from(frames.max(1)));
    ExitCode::SUCCESS
}
