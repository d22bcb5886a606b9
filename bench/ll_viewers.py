#!/usr/bin/env python3
"""Simulated LL-HLS viewers: N clients doing blocking playlist reloads against one live video.

Used by ll_viewers.sh. Standard library only (asyncio, one keep-alive HTTP/1.1 connection per
viewer, a minimal client so that 50 viewers cost little CPU and every time is taken the moment a
response is complete). Viewers are spread round-robin over the rungs of the master playlist and
start 20 ms apart. Each one, like hls.js in low-latency mode:

  1. GET index.m3u8 once; the last listed part is (M, k);
  2. GET index.m3u8?_HLS_msn=M&_HLS_part=k+1[&_HLS_skip=YES] (or _HLS_msn=M+1&_HLS_part=0 when segment
     M is complete: hls.js's rule): a blocking reload, held by the server until that part is listed;
     checks that the answer lists it;
  3. GET that part (its URI from the EXT-X-PART line), then back to 2 after the last listed part.

For every blocking reload it notes when the request was sent and when the whole response was in.
"When the part appeared" is the earliest moment any viewer had a response listing it: all viewers
of a rung are waiting for that part when it appears, so the first answer comes within a
millisecond or so of the listing (a floor, not the server's word). So:

  reload_s      request sent → response in, every successful blocking reload (the issue's number:
                p99 ≤ part target + 100 ms)
  after_part_s  response in − the part's appearance, for reloads sent before the part appeared
                (how long the server takes to answer a waiting viewer once the part exists)
  part_fetch_s  GET of the part just listed

Errors: any status other than 200, a connection failure or timeout, an answer without the
requested part, a part that does not come. Prints one JSON object.
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import urllib.parse


class Http:
    """One keep-alive HTTP/1.1 connection (reopened after an error)."""

    def __init__(self, host, port, timeout):
        self.host, self.port, self.timeout = host, port, timeout
        self.reader = self.writer = None

    async def get(self, path):
        for attempt in (0, 1):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            try:
                self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUser-Agent: ll_viewers\r\n\r\n".encode())
                await self.writer.drain()
                return await asyncio.wait_for(self._response(), self.timeout)
            except (ConnectionError, asyncio.IncompleteReadError) as e:
                self.close()
                if attempt == 1:
                    raise e
            except BaseException:
                self.close()
                raise

    async def _response(self):
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                body += await self.reader.readexactly(size)
                await self.reader.readexactly(2)
        else:
            body = await self.reader.read()
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, bytes(body)

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def parse(text):
    """{'parts': [(msn, index, uri)], 'part_target': s} from a (possibly delta) media playlist."""
    sequence, skipped, segments, pending, parts, part_target = 0, 0, 0, [], [], None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            sequence = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-SKIP:"):
            skipped = int(line.split("SKIPPED-SEGMENTS=", 1)[1].split(",", 1)[0])
        elif line.startswith("#EXT-X-PART-INF:"):
            part_target = float(line.split("PART-TARGET=", 1)[1].split(",", 1)[0])
        elif line.startswith("#EXT-X-PART:"):
            pending.append(line.split('URI="', 1)[1].split('"', 1)[0])
        elif line and not line.startswith("#"):
            msn = sequence + skipped + segments
            parts.extend((msn, i, uri) for i, uri in enumerate(pending))
            pending = []
            segments += 1
    msn = sequence + skipped + segments
    parts.extend((msn, i, uri) for i, uri in enumerate(pending))
    return {"parts": parts, "part_target": part_target, "ended": "#EXT-X-ENDLIST" in text, "segments_end": sequence + skipped + segments}


class Stats:
    def __init__(self):
        self.reloads = []  # (rung, part key, sent, done)
        self.fetches = []
        self.errors = {}
        self.part_target = None

    def error(self, kind):
        self.errors[kind] = self.errors.get(kind, 0) + 1


def next_part(info):
    """hls.js's next delivery directive: the part after the last listed one, or part 0 of the next
    segment when the last listed part ends a segment that is complete."""
    msn, index, _ = info["parts"][-1]
    return (msn + 1, 0) if msn < info["segments_end"] else (msn, index + 1)


async def viewer(number, rung, playlist_path, http, stats, deadline, delta):
    await asyncio.sleep(number * 0.02)
    base = playlist_path.rsplit("/", 1)[0] + "/"
    want = None
    while time.time() < deadline:
        try:
            if want is None:
                status, body = await http.get(playlist_path)
                if status != 200:
                    stats.error(f"initial playlist {status}")
                    await asyncio.sleep(0.5)
                    continue
                info = parse(body.decode("utf-8", "replace"))
                if stats.part_target is None:
                    stats.part_target = info["part_target"]
                if not info["parts"]:
                    stats.error("initial playlist without parts")
                    await asyncio.sleep(0.5)
                    continue
                want = next_part(info)
            msn, index = want
            query = f"_HLS_msn={msn}&_HLS_part={index}" + ("&_HLS_skip=YES" if delta else "")
            sent = time.time()
            status, body = await http.get(f"{playlist_path}?{query}")
            done = time.time()
            if status != 200:
                stats.error(f"blocking reload {status}")
                want = None
                continue
            info = parse(body.decode("utf-8", "replace"))
            if info["ended"]:
                break
            listed = {(m, i): uri for m, i, uri in info["parts"]}
            if (msn, index) not in listed:
                if stats.errors.get("answer without the requested part", 0) < 2 and "LL_DEBUG" in os.environ:
                    print(f"asked {query} on {playlist_path}; got:\n{body.decode()}", file=sys.stderr)
                stats.error("answer without the requested part")
                want = None
                await asyncio.sleep(0.05)
                continue
            stats.reloads.append((rung, (msn, index), sent, done))
            fetch_sent = time.time()
            status, part = await http.get(urllib.parse.urljoin(base, listed[(msn, index)]))
            if status != 200 or not part:
                stats.error(f"part {status}")
            else:
                stats.fetches.append(time.time() - fetch_sent)
            want = next_part(info)
        except asyncio.TimeoutError:
            stats.error("timeout")
            http.close()
            want = None
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as e:
            stats.error(f"{type(e).__name__}")
            http.close()
            want = None
            await asyncio.sleep(0.2)
    http.close()


def spread(values):
    if not values:
        return None
    values = sorted(values)
    q = lambda p: values[min(len(values) - 1, int(p * len(values)))]
    return {"count": len(values), "p50": round(statistics.median(values), 4), "p90": round(q(0.9), 4),
            "p99": round(q(0.99), 4), "max": round(values[-1], 4), "min": round(values[0], 4)}


async def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--master", required=True, help="URL of the live master playlist (http://127.0.0.1:PORT/…)")
    ap.add_argument("--viewers", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds any one response may take")
    ap.add_argument("--no-delta", action="store_true", help="do not ask for delta updates (_HLS_skip=YES)")
    args = ap.parse_args()

    url = urllib.parse.urlsplit(args.master)
    http = Http(url.hostname, url.port or 80, args.timeout)
    status, body = await http.get(url.path)
    http.close()
    if status != 200:
        sys.exit(f"master playlist: HTTP {status}")
    rungs = [line.strip() for line in body.decode().splitlines() if line.strip() and not line.startswith("#")]
    paths = [urllib.parse.urlsplit(urllib.parse.urljoin(args.master, r)).path for r in rungs]
    stats = Stats()
    started = time.time()
    deadline = started + args.seconds
    cpu0 = time.process_time()
    tasks = []
    for n in range(args.viewers):
        path = paths[n % len(paths)]
        rung = path.rstrip("/").split("/")[-2]
        tasks.append(viewer(n, rung, path, Http(url.hostname, url.port or 80, args.timeout), stats, deadline, not args.no_delta))
    await asyncio.gather(*tasks)
    elapsed = time.time() - started

    appeared = {}
    for rung, key, _, done in stats.reloads:
        k = (rung, key)
        appeared[k] = min(appeared.get(k, done), done)
    waiting = [done - appeared[(rung, key)] for rung, key, sent, done in stats.reloads if sent < appeared[(rung, key)]]
    late = sum(1 for rung, key, sent, _ in stats.reloads if sent >= appeared[(rung, key)])
    out = {
        "viewers": args.viewers, "rungs": sorted({p.rstrip("/").split("/")[-2] for p in paths}), "seconds": round(elapsed, 1),
        "delta_updates": not args.no_delta, "part_target_s": stats.part_target,
        "blocking_reloads": len(stats.reloads), "parts_listed": len(appeared),
        "reloads_sent_after_the_part_appeared": late,
        "reload_s": spread([done - sent for _, _, sent, done in stats.reloads]),
        "after_part_s": spread(waiting),
        "part_fetch_s": spread(stats.fetches),
        "errors": sum(stats.errors.values()), "error_kinds": stats.errors,
        "client_cpu_pct": round(100 * (time.process_time() - cpu0) / elapsed, 1),
    }
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    asyncio.run(main())
