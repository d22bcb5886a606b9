#!/usr/bin/env python3
"""The burnt-in clock of glass.sh: an ffmpeg filter graph that draws the wall-clock time of each
frame's capture as a row of black/white blocks, and a decoder for it (the same one the page runs,
in Python, to validate on a recording).

Layout, in a 1280x720 picture (scaled along with it: the decoder works in fractions of the frame):
19 blocks of 40x40 px in a row from x=40, y=40:
  block 0      always white  (reference)
  block 1      always black  (reference)
  blocks 2-17  16-bit code, most significant bit first: centiseconds of the Unix epoch mod 65536
               (wraps every 655.36 s; the reader takes the latest time ≤ its own clock that has it)
  block 18     even parity of the 16 code bits
The code is the wall clock when the frame left ffmpeg's `realtime` filter, i.e. when the paced
source released it: its capture time. `setpts=RTCTIME` (µs since the epoch) gives geq that time as T.

  clock.py filter [WIDTH HEIGHT RATE NOISE [OFFSET]]
      prints the -filter_complex graph (output [v]). With OFFSET (seconds) it is a test clock
      instead: no pacing, T = OFFSET + N / RATE, so frame N's code is known exactly.
  clock.py check FILE OFFSET [RATE]
      decodes every frame of a recording of the test clock (ffmpeg → gray) and compares each code
      with the one drawn into that frame
"""

import json
import subprocess
import sys

BLOCKS = 19
BLOCK = 40  # px at 1280x720
X0, Y0 = 40, 40
REF_W, REF_H = 1280, 720


def filter_graph(width=1280, height=720, rate=30, noise=20, offset=None):
    bits = [f"mod(floor(ld(0)/{1 << (15 - i)}),2)" for i in range(16)]
    # st(0, code); then per column X: 0 white, 1 black, 2..17 the bits, 18 parity, 19 (padding) black.
    expr = "st(0,mod(floor(T*100),65536));"
    expr += "255*if(eq(X,0),1,if(eq(X,1),0,if(lt(X,18),mod(floor(ld(0)/pow(2,17-X)),2),if(eq(X,18),mod(" + "+".join(bits) + ",2),0))))"
    src = f"testsrc2=size={width}x{height}:rate={rate}"
    noise_f = f",noise=alls={noise}:allf=t+u" if noise else ""
    strip_w = (BLOCKS + 1) * BLOCK * width // REF_W
    strip_h = BLOCK * height // REF_H
    clock = "realtime,settb=AVTB,setpts=RTCTIME" if offset is None else f"settb=AVTB,setpts=N/({rate}*TB)+{offset}/TB"
    return (
        f"{src},{clock},split[bg][c];"
        f"[c]crop=20:2:0:0,format=yuv420p,geq=lum='{expr}':cb=128:cr=128,"
        f"scale={strip_w}:{strip_h}:flags=neighbor[strip];"
        f"[bg]format=yuv420p{noise_f}[n];"
        f"[n][strip]overlay=x={X0 * width // REF_W}:y={Y0 * height // REF_H}:eof_action=pass,"
        f"setpts=N/({rate}*TB),settb=1/{rate}[v]"
    )


def decode(gray, width, height):
    """Code from one gray frame (bytes, row-major) or None when the references or parity fail."""
    def block(i):
        cx = (X0 + BLOCK * i + BLOCK / 2) * width / REF_W
        cy = (Y0 + BLOCK / 2) * height / REF_H
        rx = max(1, int(BLOCK / 4 * width / REF_W))
        ry = max(1, int(BLOCK / 4 * height / REF_H))
        total = n = 0
        for y in range(int(cy) - ry, int(cy) + ry + 1):
            row = y * width
            for x in range(int(cx) - rx, int(cx) + rx + 1):
                total += gray[row + x]
                n += 1
        return total / n

    values = [block(i) for i in range(BLOCKS)]
    white, black = values[0], values[1]
    if white - black < 100:
        return None
    threshold = (white + black) / 2
    bits = [1 if v > threshold else 0 for v in values[2:19]]
    if sum(bits[:16]) % 2 != bits[16]:
        return None
    code = 0
    for b in bits[:16]:
        code = code * 2 + b
    return code


def expected_code(offset, frame, rate=30):
    """The code geq draws into frame N of the test clock (T = offset + N / rate)."""
    from fractions import Fraction
    return int((Fraction(str(offset)) + Fraction(frame, rate)) * 100) % 65536


def check(path, offset, rate=30):
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
         "-of", "json", path], check=True, capture_output=True).stdout)
    width, height = probe["streams"][0]["width"], probe["streams"][0]["height"]
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                         check=True, capture_output=True).stdout
    size = width * height
    frames = len(raw) // size
    codes = [decode(raw[i * size:(i + 1) * size], width, height) for i in range(frames)]
    wrong = [i for i, c in enumerate(codes) if c is not None and c != expected_code(offset, i, rate)]
    print(json.dumps({
        "file": path, "size": f"{width}x{height}", "frames": frames,
        "unreadable": sum(1 for c in codes if c is None), "wrong": len(wrong), "first_wrong": wrong[:5],
        "correct": frames - len(wrong) - sum(1 for c in codes if c is None),
    }))


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "filter":
        numbers = [int(a) for a in sys.argv[2:6]]
        print(filter_graph(*numbers, *([float(sys.argv[6])] if len(sys.argv) > 6 else [])))
    elif len(sys.argv) in (4, 5) and sys.argv[1] == "check":
        check(sys.argv[2], float(sys.argv[3]), *([int(sys.argv[4])] if len(sys.argv) > 4 else []))
    else:
        sys.exit(__doc__)
