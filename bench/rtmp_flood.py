#!/usr/bin/env python3
"""Holds many unauthenticated RTMP connections, each with as much unfinished message as the
server lets it buffer before a publish is authorised, and prints the server's RSS before and
after. Loopback only; bounded in count and time.

    bench/rtmp_flood.py HOST:PORT SERVER_PID [CONNECTIONS] [HOLD_SECS]
"""
import socket
import sys
import time


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    pid = int(sys.argv[2])
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 150
    hold = float(sys.argv[4]) if len(sys.argv) > 4 else 3.0
    before = rss_kb(pid)
    sockets = []
    for i in range(count):
        s = socket.create_connection((host, int(port)), timeout=5)
        s.sendall(b"\x03" + bytes(1536))
        got = b""
        while len(got) < 3073:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        s.sendall(got[1:1537])
        # Chunk size 4096, then four command messages on four chunk streams, each announced just
        # under the pre-publish message limit (64 KiB), their chunks interleaved, none finished:
        # about 246 KB held per connection, under the 256 KiB it may hold before a publish.
        s.sendall(bytes([0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0x10, 0]))
        length = 65000
        for n in range(15):
            for csid in (3, 4, 5, 6):
                if n == 0:
                    header = bytes([csid, 0, 0, 0]) + length.to_bytes(3, "big") + bytes([20, 0, 0, 0, 0])
                else:
                    header = bytes([0xC0 | csid])
                s.sendall(header + bytes(4096))
        sockets.append(s)
    time.sleep(hold)
    during = rss_kb(pid)
    alive = 0
    for s in sockets:
        s.settimeout(0.2)
        try:
            alive += 0 if s.recv(1) == b"" else 1
        except socket.timeout:
            alive += 1
        except OSError:
            pass
        s.close()
    time.sleep(2)
    after = rss_kb(pid)
    print(f"connections: {count}, still open after {hold:.0f} s: {alive}")
    print(f"server RSS: before {before / 1024:.1f} MB, while held {during / 1024:.1f} MB, after close {after / 1024:.1f} MB")
    print(f"per connection while held: {(during - before) / max(count, 1):.0f} kB")


if __name__ == "__main__":
    main()
