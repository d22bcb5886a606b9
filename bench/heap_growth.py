#!/usr/bin/env python3
"""The heap over time from heaptrack's massif export (`heaptrack_print -M FILE`).

Usage: heap_growth.py MASSIF_FILE FROM_SECONDS

Prints, as Markdown: the heap in use at each whole minute, and the slope (MB per minute) of a
least-squares line through every snapshot from FROM_SECONDS on. A heap that grows with stream
time shows here even when the allocator hides it from RSS, and the other way round: RSS that grows
over a flat heap is the allocator's (fragmentation, arenas), not ours.
"""

import sys


def snapshots(path):
    time = None
    with open(path, encoding="utf-8", errors="replace") as massif:
        for line in massif:
            if line.startswith("time="):
                time = float(line.split("=", 1)[1])
            elif line.startswith("mem_heap_B=") and time is not None:
                yield time, int(line.split("=", 1)[1]) / 1e6


def slope_per_minute(points):
    n = len(points)
    if n < 2:
        return 0.0
    sx = sum(t for t, _ in points)
    sy = sum(m for _, m in points)
    sxx = sum(t * t for t, _ in points)
    sxy = sum(t * m for t, m in points)
    den = n * sxx - sx * sx
    return (n * sxy - sx * sy) / den * 60 if den else 0.0


def main():
    path, start = sys.argv[1], float(sys.argv[2])
    points = list(snapshots(path))
    if not points:
        print("no snapshots in", path)
        return
    print("| minute | heap in use, MB |")
    print("|---|---|")
    minute = 0
    for t, mb in points:
        if t >= minute * 60:
            print(f"| {minute} | {mb:.1f} |")
            minute = int(t // 60) + 1
    print(f"| end ({points[-1][0]:.0f} s) | {points[-1][1]:.1f} |")
    later = [p for p in points if p[0] >= start]
    print()
    print(f"Heap trend from {start:.0f} s on: {slope_per_minute(later):+.3f} MB/min over {len(later)} snapshots.")


if __name__ == "__main__":
    main()
