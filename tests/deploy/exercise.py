#!/usr/bin/python3
"""exercise.py: drives a running gateway through the paths a deployment uses,
so that check.sh can record the system calls of both daemons under strace.

usage: exercise.py PORT

Waits for /healthz to answer 200 (every broker linked), logs in, fetches the
frontend, opens a WebSocket with the token, sends a message and reads it back
(the whole path through the broker and Redis), then closes. Exits 0 when all of
that worked.
"""
import base64
import json
import os
import socket
import sys
import time
import urllib.request

port = int(sys.argv[1])
base = f"http://127.0.0.1:{port}"


def healthy():
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


deadline = time.monotonic() + 20
while not healthy():
    if time.monotonic() > deadline:
        sys.exit("exercise: /healthz never answered 200")
    time.sleep(0.1)

req = urllib.request.Request(base + "/login", data=b'{"username":"deploy-check"}',
                             headers={"Content-Type": "application/json"})
with urllib.request.urlopen(req, timeout=5) as r:
    token = json.load(r)["token"]
with urllib.request.urlopen(base + "/", timeout=5) as r:
    assert b"<html" in r.read().lower(), "frontend served"

ws = socket.create_connection(("127.0.0.1", port), timeout=10)
key = base64.b64encode(os.urandom(16)).decode()
ws.sendall((f"GET /ws?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n").encode())
head = b""
while b"\r\n\r\n" not in head:
    chunk = ws.recv(4096)
    if not chunk:
        sys.exit("exercise: connection closed during the upgrade")
    head += chunk
status = head.split(b"\r\n", 1)[0]
if b" 101 " not in status:
    sys.exit(f"exercise: upgrade refused: {status!r}")
buf = head.split(b"\r\n\r\n", 1)[1]


def send_frame(opcode, payload):
    mask = os.urandom(4)
    n = len(payload)
    hdr = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else bytes([0xFE]) + n.to_bytes(2, "big"))
    ws.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def recv_frame():
    global buf
    while True:
        if len(buf) >= 2:
            n, off = buf[1] & 0x7F, 2
            if n == 126 and len(buf) >= 4:
                n, off = int.from_bytes(buf[2:4], "big"), 4
            elif n == 127 and len(buf) >= 10:
                n, off = int.from_bytes(buf[2:10], "big"), 10
            if n < 126 or off > 2:
                if len(buf) >= off + n:
                    op, data, buf = buf[0] & 0x0F, buf[off:off + n], buf[off + n:]
                    return op, data
        chunk = ws.recv(65536)
        if not chunk:
            sys.exit("exercise: connection closed before the message came back")
        buf += chunk


text = "hello from deploy.check"
send_frame(1, json.dumps({"type": "send_message", "payload": {"message": text, "from": "x"}}).encode())
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    op, data = recv_frame()
    if op == 1 and text in data.decode("utf-8", "replace"):
        break
    if op == 8:
        sys.exit(f"exercise: closed by the server: {data!r}")
else:
    sys.exit("exercise: the message never came back")
send_frame(8, (1000).to_bytes(2, "big"))
ws.close()
print("exercise: healthz, login, frontend, WebSocket round trip through broker and Redis")
