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

With --arrivals FILE (rtmp_tap.py's lines: when each video frame reached the server), measured
from the server's door instead of the publisher's start:
  first_segment_after_key_s   first listing of the first segment − arrival of the first keyframe
  first_part_after_key_s      the same for the first LL-HLS part (EXT-X-PART), when there are parts
  edge_lag_*_s                for each segment N: first listed − arrival of its last frame (the
                              latest-arriving frame whose PTS, counted from the first keyframe's,
                              is before the end of N). "Segment listed − its last frame's arrival".
  part_lag_*_s                the same for every part (its end = its segment's start + the
                              durations of the parts before it and its own)
  boundary_offset_max_ms      how far segment ends are from the nearest source keyframe (≈ 0 for
                              rungs cut at the publisher's keyframes; a sanity check of the mapping)

A target is either --playlist NAME=URL or --ferrocast BASE SLUG RUNG[,RUNG...]: for the latter
the channel is polled until it has a live video, then /hls/{video}/{rung}/index.m3u8 per rung.
--token makes the channel lookup as its owner, who sees the live video as soon as it exists
(anonymous viewers only once its master playlist is written).
"""

import argparse
import json
import statistics
import sys
import time
import urllib.error
import urllib.request


def fetch(url, timeout=2.0, token=None):
    try:
        request = urllib.request.Request(url, headers={"authorization": f"Bearer {token}"} if token else {})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if response.status != 200:
                return None
            return response.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError, ValueError):
        return None


def attribute(line, name):
    for item in line.split(":", 1)[1].split(","):
        if item.startswith(name + "="):
            return item.split("=", 1)[1].strip('"')
    return None


def parse_playlist(text):
    """(media sequence, [(uri, duration)], ended, [(msn, part index, duration)])"""
    sequence, segments, duration, ended = 0, [], None, False
    pending_parts, parts = [], []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            sequence = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-PART:"):
            pending_parts.append(float(attribute(line, "DURATION")))
        elif line.startswith("#EXTINF:"):
            duration = float(line.split(":", 1)[1].split(",", 1)[0])
        elif line.startswith("#EXT-X-ENDLIST"):
            ended = True
        elif line and not line.startswith("#") and duration is not None:
            msn = sequence + len(segments)
            parts.extend((msn, i, d) for i, d in enumerate(pending_parts))
            pending_parts = []
            segments.append((line, duration))
            duration = None
    # Parts after the last segment belong to the open one.
    msn = sequence + len(segments)
    parts.extend((msn, i, d) for i, d in enumerate(pending_parts))
    return sequence, segments, ended, parts


def spread(values, prefix, out, digits=3):
    """median, p90, max (and count) of values into out[prefix_*]."""
    if not values:
        return
    values = sorted(values)
    out[f"{prefix}_count"] = len(values)
    out[f"{prefix}_median_s"] = round(statistics.median(values), digits)
    out[f"{prefix}_p90_s"] = round(values[min(len(values) - 1, int(0.9 * len(values)))], digits)
    out[f"{prefix}_max_s"] = round(values[-1], digits)
    out[f"{prefix}_min_s"] = round(values[0], digits)


class Arrivals:
    """rtmp_tap.py's record: [arrival, dts ms, cts ms, key] per video frame, PTS counted from the first keyframe."""

    def __init__(self, path):
        frames = []
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        frames.append(json.loads(line))
                    except ValueError:
                        pass  # a line cut short when the tap stopped
        first_key = next((i for i, fr in enumerate(frames) if fr[3]), None)
        self.frames = []  # (arrival, pts seconds from the first keyframe, key)
        self.first_key_at = None
        if first_key is not None:
            base = frames[first_key][1] + frames[first_key][2]
            self.first_key_at = frames[first_key][0]
            self.frames = [(fr[0], (fr[1] + fr[2] - base) / 1000.0, fr[3]) for fr in frames[first_key:]]
        self.keys = [pts for _, pts, key in self.frames if key]

    def last_arrival_before(self, end):
        """When the last frame with PTS before `end` (media seconds) arrived; None past the record."""
        if not self.frames or self.frames[-1][1] < end:
            return None
        latest = None
        for arrival, pts, _ in self.frames:
            if pts < end - 0.0005 and (latest is None or arrival > latest):
                latest = arrival
        return latest

    def nearest_key_ms(self, end):
        return min((abs(k - end) for k in self.keys), default=float("nan")) * 1000


class Target:
    def __init__(self, name, url=None):
        self.name = name
        self.url = url
        self.seen = {}  # sequence -> (uri, duration, first listed, epoch seconds)
        self.parts = {}  # (msn, part index) -> (duration, first listed)
        self.ended = False

    def poll(self):
        if self.url is None or self.ended:
            return
        # A segment first seen now was listed at most one interval earlier.
        now = time.time()
        text = fetch(self.url)
        if text is None:
            return
        sequence, segments, ended, parts = parse_playlist(text)
        for offset, (uri, duration) in enumerate(segments):
            self.seen.setdefault(sequence + offset, (uri, duration, now))
        for msn, index, duration in parts:
            self.parts.setdefault((msn, index), (duration, now))
        self.ended = ended

    def summary(self, t0, warmup, arrivals=None):
        out = {"name": self.name, "url": self.url, "segments_seen": len(self.seen), "parts_seen": len(self.parts)}
        if not self.seen and not self.parts:
            return out
        if arrivals is not None and arrivals.first_key_at is not None:
            if self.parts:
                out["first_part_after_key_s"] = round(min(t for _, t in self.parts.values()) - arrivals.first_key_at, 3)
            if self.seen:
                out["first_segment_after_key_s"] = round(self.seen[min(self.seen)][2] - arrivals.first_key_at, 3)
            self.edge_lags(out, warmup, arrivals)
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

    def edge_lags(self, out, warmup, arrivals):
        """Listed − arrival of the last frame, for every segment and part after `warmup` media seconds."""
        sequences = sorted(self.seen)
        if not sequences or (self.parts and min(self.parts)[0] < sequences[0]):
            return
        starts, end = {}, 0.0  # msn -> media start
        segment_lags, offsets = [], []
        previous = sequences[0] - 1
        for s in sequences[:-1]:  # the last (flushed) segment is not steady state
            if s != previous + 1:
                out["gaps"] = True
                break
            previous = s
            starts[s] = end
            _, duration, listed = self.seen[s]
            end += duration
            if end < warmup:
                continue
            last = arrivals.last_arrival_before(end)
            if last is not None:
                segment_lags.append(listed - last)
                offsets.append(arrivals.nearest_key_ms(end))
        spread(segment_lags, "edge_lag", out)
        if offsets:
            out["boundary_offset_max_ms"] = round(max(offsets), 1)
        if previous + 1 not in starts:
            starts[previous + 1] = end
        part_lags = []
        for (msn, index) in sorted(self.parts):
            if msn not in starts:
                continue
            part_end = starts[msn] + sum(self.parts[(msn, i)][0] for i in range(index + 1) if (msn, i) in self.parts)
            if part_end < warmup:
                continue
            last = arrivals.last_arrival_before(part_end)
            if last is not None:
                part_lags.append(self.parts[(msn, index)][1] - last)
        spread(part_lags, "part_lag", out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--t0-ms", type=int, required=True, help="publish start, epoch milliseconds")
    parser.add_argument("--seconds", type=float, required=True, help="stop this long after t0")
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--warmup", type=float, default=10.0, help="media seconds before lag counts")
    parser.add_argument("--playlist", action="append", default=[], metavar="NAME=URL")
    parser.add_argument("--ferrocast", nargs=3, metavar=("BASE", "SLUG", "RUNGS"))
    parser.add_argument("--token", help="bearer token for the channel lookup (the owner's)")
    parser.add_argument("--arrivals", help="rtmp_tap.py's output: frame arrivals at the server")
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
            text = fetch(f"{ferrocast[0]}/api/channels/{ferrocast[1]}", token=args.token)
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

    arrivals = Arrivals(args.arrivals) if args.arrivals else None
    result = {"targets": [t.summary(t0, args.warmup, arrivals) for t in targets]}
    if arrivals is not None and arrivals.first_key_at is not None:
        result["first_key_after_t0_s"] = round(arrivals.first_key_at - t0, 3)
        result["frames_recorded"] = len(arrivals.frames)
    if ferrocast:
        result["channel_live_s"] = live_s
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
