#!/usr/bin/env python3
"""A recorded rendition, split where its picture changed source (the CPU-aware ladder).

Usage: rendition_runs.py PLAYLIST_URL WIDTH FPS

Reads a VOD media playlist, splits it at every EXT-X-MAP (a new init segment), decodes each run
(init + its segments) with ffprobe, and prints one line: the seconds (EXTINF) and frames of the runs at
WIDTH (the rung's own encoder) against what FPS asks for, and the seconds of the other runs
(a lower rung's picture, while the rung was shed).
"""

import json
import subprocess
import sys
import tempfile
import urllib.request
from urllib.parse import urljoin


def fetch(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def runs(playlist_url):
    text = fetch(playlist_url).decode()
    current = None
    for line in text.splitlines():
        if line.startswith("#EXT-X-MAP:URI="):
            current = {"init": line.split('"')[1], "segments": [], "seconds": 0.0}
            yield current
        elif line.startswith("#EXTINF:") and current is not None:
            current["seconds"] += float(line[len("#EXTINF:"):].split(",")[0])
        elif line and not line.startswith("#") and current is not None:
            current["segments"].append(line)


def probe(path):
    """(width, decoded frames); durations come from the playlist: a run that starts late in the
    stream has fragments timed from the stream's start, which ffprobe counts as its duration."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=width,nb_read_frames", "-of", "json", path],
        capture_output=True, check=True, text=True).stdout
    stream = json.loads(out)["streams"][0]
    return int(stream["width"]), int(stream.get("nb_read_frames", 0))


def main():
    url, width, fps = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    own_s = own_frames = other_s = 0.0
    for run in list(runs(url)):
        with tempfile.NamedTemporaryFile(suffix=".mp4") as file:
            file.write(fetch(urljoin(url, run["init"])))
            for segment in run["segments"]:
                file.write(fetch(urljoin(url, segment)))
            file.flush()
            w, frames = probe(file.name)
        duration = run["seconds"]
        if w == width:
            own_s += duration
            own_frames += frames
        else:
            other_s += duration
    expected = own_s * fps
    missing = 100 * (expected - own_frames) / expected if expected else 0
    print(f"{own_s:.0f} s own: {own_frames:.0f} of {expected:.0f} frames ({missing:.1f} % missing); {other_s:.0f} s of a lower rung's picture")


if __name__ == "__main__":
    main()
