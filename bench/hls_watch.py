#!/usr/bin/env python3
"""Watches live HLS media playlists and notes when each segment is first listed.

Used by latency.sh. Standard library only. Polls every --interval seconds (loopback only) until
--seconds have passed since --t0-ms, then prints one JSON object per target:

  first_segment_s   first listing of the first segment, seconds after t0 (publish start)
  lag_*_s           for each segment N: first listed − (t0 + end of N in media time), where the
                    end is the sum of the EXTINF durations of segments 0..N. It is how far the
                    newest listed media trails the publisher's clock: segment duration does not
                    count (a segment cannot be listed before it ends), everything else does
                    (ingest, decode, encode, mux, storage, playlist).

A target is either --playlist NAME=URL or --ferrocast BASE SLUG RUNG[,RUNG...]: for the latter
the channel is polled until it has a live video, then /hls/{video}/{rung}/index.m3u8 per rung.
"""

import argparse
import json
import statistics
import sys
import time
import urllib.error
import urllib.request


def fetch(url, timeout=2.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            if response.status != 200:
                return None
            return response.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError, ValueError):
        return None


def parse_playlist(text):
    """(media sequence, [(uri, duration)], ended)"""
    sequence, segments, duration, ended = 0, [], None, False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            sequence = int(line.split(":", 1)[1])
        elif line.startswith("#EXTINF:"):
            duration = float(line.split(":", 1)[1].split(",", 1)[0])
        elif line.startswith("#EXT-X-ENDLIST"):
            ended = True
        elif line and not line.startswith("#") and duration is not None:
            segments.append((line, duration))
            duration = None
    return sequence, segments, ended


class Target:
    def __init__(self, name, url=None):
        self.name = name
        self.url = url
        self.seen = {}  # sequence -> (uri, duration, first listed, epoch seconds)
        self.ended = False

    def poll(self):
        if self.url is None or self.ended:
            return
        # A segment first seen now was listed at most one interval earlier.
        now = time.time()
        text = fetch(self.url)
        if text is None:
            return
        sequence, segments, ended = parse_playlist(text)
        for offset, (uri, duration) in enumerate(segments):
            self.seen.setdefault(sequence + offset, (uri, duration, now))
        self.ended = ended

    def summary(self, t0, warmup):
        out = {"name": self.name, "url": self.url, "segments_seen": len(self.seen)}
        if not self.seen:
            return out
        sequences = sorted(self.seen)
        first = sequences[0]
        out["first_sequence"] = first
        out["first_segment_s"] = round(self.seen[first][2] - t0, 3)
        durations = [self.seen[s][1] for s in sequences]
        out["mean_segment_s"] = round(statistics.mean(durations), 3)
        # The last segment is flushed when the publisher stops: not steady state.
        steady = []
        end = 0.0
        previous = first - 1
        for s in sequences[:-1]:
            if s != previous + 1:
                out["gaps"] = True  # missed a segment between polls: media times after it are unknown
                break
            previous = s
            _, duration, listed = self.seen[s]
            end += duration
            if end >= warmup:
                steady.append(listed - t0 - end)
        if steady:
            steady.sort()
            out["lag_segments"] = len(steady)
            out["lag_median_s"] = round(statistics.median(steady), 3)
            out["lag_p90_s"] = round(steady[min(len(steady) - 1, int(0.9 * len(steady)))], 3)
            out["lag_max_s"] = round(steady[-1], 3)
            out["lag_min_s"] = round(steady[0], 3)
        return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--t0-ms", type=int, required=True, help="publish start, epoch milliseconds")
    parser.add_argument("--seconds", type=float, required=True, help="stop this long after t0")
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--warmup", type=float, default=10.0, help="media seconds before lag counts")
    parser.add_argument("--playlist", action="append", default=[], metavar="NAME=URL")
    parser.add_argument("--ferrocast", nargs=3, metavar=("BASE", "SLUG", "RUNGS"))
    args = parser.parse_args()

    t0 = args.t0_ms / 1000.0
    deadline = t0 + args.seconds
    targets = []
    for spec in args.playlist:
        name, url = spec.split("=", 1)
        targets.append(Target(name, url))
    ferrocast = None
    live_s = None
    if args.ferrocast:
        base, slug, rungs = args.ferrocast
        ferrocast = (base.rstrip("/"), slug)
        fc_targets = [Target(rung) for rung in rungs.split(",")]
        targets.extend(fc_targets)

    while time.time() < deadline:
        now = time.time()
        if ferrocast and live_s is None:
            text = fetch(f"{ferrocast[0]}/api/channels/{ferrocast[1]}")
            video = json.loads(text).get("live_video_id") if text else None
            if video:
                live_s = round(now - t0, 3)
                for target in fc_targets:
                    target.url = f"{ferrocast[0]}/hls/{video}/{target.name}/index.m3u8"
        for target in targets:
            target.poll()
        if targets and all(t.ended for t in targets):
            break
        time.sleep(max(0.0, args.interval - (time.time() - now)))

    result = {"targets": [t.summary(t0, args.warmup) for t in targets]}
    if ferrocast:
        result["channel_live_s"] = live_s
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
