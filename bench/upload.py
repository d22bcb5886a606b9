#!/usr/bin/env python3
"""Uploads one file to ferrocast through its resumable upload API, the way a client would.

Used by vod.sh and upload.sh. Standard library only, loopback only.

  POST /api/uploads {channel, filename, size, title}      -> {id, part_size, part_count}
  PUT  /api/uploads/{id}/parts/{n}  (n = 1..part_count)   raw bytes, Content-Digest: sha-256=:<b64>:
  then, by --then: POST /api/uploads/{id}/complete (-> {video_id}), DELETE /api/uploads/{id}, or nothing

The SHA-256 of every part is computed before the clock starts (a client hashes while it reads
the file; here that work is kept out of the server's number). The timed phase is the part PUTs
alone: --parallel worker threads, each with its own keep-alive connection, take the next part
number until none is left. With --watch-pid, the server's VmRSS is sampled every 0.1 s during the
PUTs and its utime + stime is read before and after them.

Prints one JSON object: sizes, timings (digest_s, put_s, then_s), MB/s (10^6 bytes per second),
the server's RSS and CPU while the parts came in, this client's own CPU over the PUTs (client_cpu_s),
and video_id after --then complete.
"""

import argparse
import base64
import hashlib
import http.client
import json
import os
import queue
import sys
import threading
import time


def request(conn, method, path, token, body=None, headers=None):
    all_headers = {"authorization": f"Bearer {token}"}
    if headers:
        all_headers.update(headers)
    if body is not None and not isinstance(body, (bytes, bytearray, memoryview)):
        body = json.dumps(body).encode()
        all_headers["content-type"] = "application/json"
    conn.request(method, path, body=body, headers=all_headers)
    response = conn.getresponse()
    data = response.read()
    if response.status >= 300:
        raise RuntimeError(f"{method} {path}: HTTP {response.status}: {data[:300]!r}")
    return json.loads(data) if data else None


def read_part(path, offset, length):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)


def proc_status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def proc_cpu_s(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


class RssWatcher(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.samples, self.stop = pid, [], threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.samples.append(proc_status_kb(self.pid, "VmRSS"))
            self.stop.wait(0.1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--channel", required=True)
    ap.add_argument("--file", required=True)
    ap.add_argument("--title", default="bench upload")
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--then", choices=["complete", "delete", "none"], default="none")
    ap.add_argument("--watch-pid", type=int)
    ap.add_argument("--timeout", type=float, default=300, help="seconds any one request may take")
    args = ap.parse_args()

    size = os.path.getsize(args.file)
    conn = http.client.HTTPConnection(args.host, args.port, timeout=args.timeout)
    created = request(conn, "POST", "/api/uploads", args.token,
                      {"channel": args.channel, "filename": os.path.basename(args.file), "size": size, "title": args.title})
    upload_id, part_size, part_count = created["id"], created["part_size"], created["part_count"]

    t = time.monotonic()
    digests = {}
    with open(args.file, "rb") as f:
        for n in range(1, part_count + 1):
            digests[n] = base64.b64encode(hashlib.sha256(f.read(part_size)).digest()).decode()
    digest_s = time.monotonic() - t

    parts = queue.Queue()
    for n in range(1, part_count + 1):
        parts.put(n)
    errors = []

    def worker():
        c = http.client.HTTPConnection(args.host, args.port, timeout=args.timeout)
        try:
            while not errors:
                try:
                    n = parts.get_nowait()
                except queue.Empty:
                    return
                offset = (n - 1) * part_size
                body = read_part(args.file, offset, min(part_size, size - offset))
                request(c, "PUT", f"/api/uploads/{upload_id}/parts/{n}", args.token, body,
                        {"content-digest": f"sha-256=:{digests[n]}:", "content-type": "application/octet-stream"})
        except Exception as e:  # noqa: BLE001 - reported below, the run fails
            errors.append(str(e))
        finally:
            c.close()

    watcher = None
    if args.watch_pid:
        rss_before = proc_status_kb(args.watch_pid, "VmRSS")
        cpu_before = proc_cpu_s(args.watch_pid)
        watcher = RssWatcher(args.watch_pid)
        watcher.start()
    threads = [threading.Thread(target=worker) for _ in range(max(1, args.parallel))]
    t0 = time.monotonic()
    self_cpu0 = sum(os.times()[:2])
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    put_s = time.monotonic() - t0
    client_cpu_s = sum(os.times()[:2]) - self_cpu0
    out = {
        "upload_id": upload_id, "size": size, "part_size": part_size, "part_count": part_count,
        "parallel": args.parallel, "digest_s": round(digest_s, 3), "put_s": round(put_s, 3),
        "mb_per_s": round(size / put_s / 1e6, 1), "client_cpu_s": round(client_cpu_s, 2),
    }
    if watcher:
        watcher.stop.set()
        watcher.join()
        out["server_cpu_s"] = round(proc_cpu_s(args.watch_pid) - cpu_before, 2)
        out["server_rss_before_kb"] = rss_before
        out["server_rss_peak_kb"] = max(watcher.samples or [0])
        out["server_rss_after_kb"] = proc_status_kb(args.watch_pid, "VmRSS")
        out["server_rss_samples"] = len(watcher.samples)
    if errors:
        out["errors"] = errors[:5]
        print(json.dumps(out))
        sys.exit(1)

    t = time.monotonic()
    if args.then == "complete":
        out["video_id"] = request(conn, "POST", f"/api/uploads/{upload_id}/complete", args.token, {})["video_id"]
    elif args.then == "delete":
        request(conn, "DELETE", f"/api/uploads/{upload_id}", args.token)
    out["then"] = args.then
    out["then_s"] = round(time.monotonic() - t, 3)
    out["then_done_epoch_ms"] = int(time.time() * 1000)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
