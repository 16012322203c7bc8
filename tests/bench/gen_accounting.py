#!/usr/bin/env python3
"""confab-bench's accounting against a server that sends some messages
twice (the benchmark contract of docs/benchmarks.md, spoken by a small
server here, which sends every fifth new_message to each member twice):
the copies are counted as duplicated (which the report shows beside the
capacity), but they are not deliveries, so the latency histogram, which is of deliveries, holds
exactly one figure per delivery (before, each copy added one: a server that
doubled messages moved the step's percentiles). And a storm's connections
(--no-join) that the server closes while they are held are counted closed.

usage: gen_accounting.py CONFAB_BENCH"""
import base64
import hashlib
import json
import re
import socket
import struct
import subprocess
import sys
import threading
import time

CONNS, ROOMS, RATE = 20, 2, 100
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def check(ok, what):
    if not ok:
        sys.exit(f"FAIL: {what}")


def compact(o):
    """As the contract's examples spell it (the generator finds "type" by
    its bytes)."""
    return json.dumps(o, separators=(",", ":")).encode()


def frame(payload):
    n = len(payload)
    head = bytes([0x81, n]) if n < 126 else bytes([0x81, 126]) + struct.pack("!H", n)
    return head + payload


class Server:
    def __init__(self, close_after=None):
        self.close_after = close_after
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.rooms, self.lock, self.count = {}, threading.Lock(), 0

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.conn, args=(c,), daemon=True).start()

    def send(self, c, data):
        try:
            c.sendall(data)
        except OSError:
            pass

    def conn(self, c):
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = c.recv(4096)
            if not d:
                return
            buf += d
        head, buf = buf.split(b"\r\n\r\n", 1)
        key = re.search(rb"(?i)sec-websocket-key:\s*(\S+)", head).group(1)
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        if self.close_after is not None:
            time.sleep(self.close_after)
            c.close()
            return
        while True:
            while len(buf) < 2 or len(buf) < self.frame_len(buf):
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            n = self.frame_len(buf)
            self.on_frame(c, buf[:n])
            buf = buf[n:]

    @staticmethod
    def frame_len(b):
        ln, off = b[1] & 0x7F, 2
        if ln == 126:
            if len(b) < 4:
                return 1 << 30
            ln, off = struct.unpack("!H", b[2:4])[0], 4
        return off + 4 + ln  # clients mask: 4 key bytes

    def on_frame(self, c, f):
        off = 4 if (f[1] & 0x7F) == 126 else 2
        mask, data = f[off:off + 4], f[off + 4:]
        text = bytes(x ^ mask[i % 4] for i, x in enumerate(data))
        if f[0] & 0x0F != 1:
            return
        msg = json.loads(text)
        room = msg["payload"]["room"]
        if msg["type"] == "join":
            with self.lock:
                self.rooms.setdefault(room, []).append(c)
            self.send(c, frame(compact({"type": "joined", "payload": {"room": room}})))
        elif msg["type"] == "send":
            out = frame(compact({"type": "new_message", "payload": {
                "room": room, "message": msg["payload"]["message"]}}))
            with self.lock:
                self.count += 1
                twice = self.count % 5 == 0
                members = list(self.rooms.get(room, []))
            for m in members:
                self.send(m, out + out if twice else out)


def main():
    gen = sys.argv[1]
    srv = Server()
    threading.Thread(target=srv.serve, daemon=True).start()
    r = subprocess.run([gen, "--url", f"ws://127.0.0.1:{srv.port}/ws", "--secret",
                        "confab-test-secret-0123456789abcdef", "--conns", str(CONNS),
                        "--rooms", str(ROOMS), "--rate", str(RATE), "--step-seconds", "1",
                        "--drain-seconds", "1", "--json"],
                       stdout=subprocess.PIPE, text=True, timeout=60)
    srv.sock.close()
    check(r.returncode == 0, f"confab-bench exited with {r.returncode}")
    step = json.loads(r.stdout)["steps"][0]
    check(step["sent"] > 0 and step["lost"] == 0, f"every message came: {step}")
    check(step["duplicated"] > 0, f"the copies counted: {step}")
    check(step["latency_ms"]["count"] == step["delivered"],
          f"{step['latency_ms']['count']} latencies for {step['delivered']} deliveries "
          f"({step['duplicated']} duplicates)")
    print(f"ok: {step['delivered']} deliveries, {step['duplicated']} duplicates, "
          f"{step['latency_ms']['count']} latencies")

    # A storm's connections (--no-join) are to stay open while held: ones
    # the server closes are counted (they were not, and the storm looked clean).
    srv = Server(close_after=0.05)
    threading.Thread(target=srv.serve, daemon=True).start()
    r = subprocess.run([gen, "--url", f"ws://127.0.0.1:{srv.port}/ws", "--secret",
                        "confab-test-secret-0123456789abcdef", "--conns", "10", "--no-join",
                        "--hold", "1", "--json"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, timeout=60)
    srv.sock.close()
    check(r.returncode == 0, f"confab-bench --no-join exited with {r.returncode}")
    res = json.loads(r.stdout)
    check(res["connected"] == 10 and res["closed"] == 10,
          f"10 connections closed by the server while held: {res['connected']} connected, "
          f"{res['closed']} counted closed")
    print("ok: a storm's 10 closed connections counted")


if __name__ == "__main__":
    main()
