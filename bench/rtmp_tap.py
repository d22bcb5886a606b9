#!/usr/bin/env python3
"""A loopback TCP relay in front of an RTMP server that notes when each video frame arrives.

Used by latency.sh so that "after the first keyframe arrives" and "its last frame's arrival" are
measured at the server's door, the same way for every server, and not taken from a server's log.
Standard library only. It forwards bytes both ways untouched and parses the publisher → server
direction (handshake, chunk headers, Set Chunk Size) just enough to find complete video messages
(type 9). For each it writes one line to --out when its last chunk has been read:

  [arrival epoch seconds, RTMP timestamp ms (dts), composition offset ms, keyframe 0/1]

AVC sequence headers and end-of-sequence markers are skipped. The relay costs one extra loopback hop (tens of microseconds)
on both servers alike. It stops after --seconds or when a publisher has come and gone. Prints "listening" once ready.
"""

import argparse
import asyncio
import time

HANDSHAKE_BYTES = 1 + 1536 + 1536  # C0, C1, C2


class Parser:
    def __init__(self, out):
        self.out = out
        self.buffer = bytearray()
        self.skip = HANDSHAKE_BYTES
        self.chunk_size = 128
        self.streams = {}  # csid -> dict(ts, delta, length, type, ext, data)

    def feed(self, data, now):
        if self.skip:
            taken = min(self.skip, len(data))
            self.skip -= taken
            data = data[taken:]
        self.buffer += data
        while self._chunk(now):
            pass

    def _chunk(self, now):
        b = self.buffer
        if not b:
            return False
        fmt, csid, pos = b[0] >> 6, b[0] & 0x3F, 1
        if csid == 0:
            if len(b) < 2:
                return False
            csid, pos = 64 + b[1], 2
        elif csid == 1:
            if len(b) < 3:
                return False
            csid, pos = 64 + b[1] + 256 * b[2], 3
        header = (11, 7, 3, 0)[fmt]
        if len(b) < pos + header:
            return False
        st = self.streams.setdefault(csid, {"ts": 0, "delta": 0, "length": 0, "type": 0, "ext": False, "data": None})
        ts_field = None
        if fmt <= 2:
            ts_field = int.from_bytes(b[pos:pos + 3], "big")
        if fmt <= 1:
            length = int.from_bytes(b[pos + 3:pos + 6], "big")
            mtype = b[pos + 6]
        pos += header
        ext = ts_field == 0xFFFFFF if ts_field is not None else st["ext"]
        if ext:
            if len(b) < pos + 4:
                return False
            ext_value = int.from_bytes(b[pos:pos + 4], "big")
            pos += 4
        starting = st["data"] is None
        remaining = (length if fmt <= 1 else st["length"]) - (0 if starting else len(st["data"]))
        take = min(self.chunk_size, remaining)
        if len(b) < pos + take:
            return False
        # The whole chunk is here: commit the header state.
        value = ext_value if ext else ts_field
        if fmt <= 1:
            st["length"], st["type"] = length, mtype
        if starting:
            if fmt == 0:
                st["ts"], st["delta"] = value, 0
            elif fmt in (1, 2):
                st["delta"] = value
                st["ts"] += value
            else:
                st["ts"] += st["delta"]
            st["data"] = bytearray()
        st["ext"] = ext
        st["data"] += b[pos:pos + take]
        del b[:pos + take]
        if len(st["data"]) >= st["length"]:
            self._message(st["type"], st["ts"], bytes(st["data"]), now)
            st["data"] = None
        return True

    def _message(self, mtype, ts, payload, now):
        if mtype == 1 and len(payload) >= 4:  # Set Chunk Size
            self.chunk_size = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
        elif mtype == 9 and len(payload) >= 5:
            key = 1 if payload[0] >> 4 == 1 else 0
            if payload[0] & 0x0F == 7 and payload[1] != 1:
                return  # AVC sequence header or end of sequence: not a frame
            cts = int.from_bytes(payload[2:5], "big", signed=True) if payload[0] & 0x0F == 7 else 0
            self.out.write(f"[{now:.6f},{ts},{cts},{key}]\n")
            self.out.flush()


async def pipe(reader, writer, parser=None):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if parser is not None:
                parser.feed(data, time.time())
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", type=int, required=True, help="port on 127.0.0.1")
    ap.add_argument("--upstream", type=int, required=True, help="the server's RTMP port on 127.0.0.1")
    ap.add_argument("--out", required=True, help="file for the arrival lines")
    ap.add_argument("--seconds", type=float, default=3600)
    args = ap.parse_args()
    out = open(args.out, "w")
    done = asyncio.Event()

    async def handle(client_reader, client_writer):
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", args.upstream)
        parser = Parser(out)
        await asyncio.gather(pipe(client_reader, server_writer, parser), pipe(server_reader, client_writer))
        if parser.skip == 0:  # a publisher came and went (not a mere connection check)
            done.set()

    server = await asyncio.start_server(handle, "127.0.0.1", args.listen)
    print("listening", flush=True)
    async with server:
        try:
            await asyncio.wait_for(done.wait(), args.seconds)
        except asyncio.TimeoutError:
            pass
    out.close()


if __name__ == "__main__":
    asyncio.run(main())
