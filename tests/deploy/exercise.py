#!/usr/bin/python3
"""exercise.py: drives a running gateway and broker through the paths a
deployment uses, so that check.sh can record the system calls of both daemons
under strace, and checks the operations endpoints a deployment relies on.

usage:
  exercise.py run PORT METRICS_PORT BROKER_METRICS_PORT
      Waits for /readyz on PORT to answer 200 (every broker linked and ready:
      Redis connected, delivery canary back), checks /healthz, /readyz and
      /metrics on the gateway's METRICS_PORT and the broker's
      BROKER_METRICS_PORT (status codes, Prometheus text format, labels),
      then logs in, fetches the frontend, is refused with a bad token, opens
      a WebSocket with the good one, sends a message and reads it back (the
      whole path through the broker and Redis), closes, and checks that the
      counters of both daemons moved accordingly. Exits 0 when all of that
      worked, else prints what did not.
  exercise.py status URL WANT SECONDS
      Polls URL until it answers HTTP status WANT; exits 1 after SECONDS.
  exercise.py sample URL SAMPLE
      Prints the value of one sample (e.g. 'confab_broker_ready{shard="0"}')
      of the Prometheus text at URL, or nothing when it is not there.
"""
import base64
import json
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request


def get(url, timeout=3):
    """(status, body) of a GET; status 0 when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except OSError:
        return 0, ""


def wait_status(url, want, seconds):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        last = get(url, timeout=2)
        if last[0] == want:
            return True
        time.sleep(0.1)
    print(f"exercise: {url} did not answer {want} within {seconds} s (last: {last})")
    return False


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """{sample: value}, where sample is 'name{labels as written}'; raises
    ValueError on a line that is not the Prometheus text format, or on a
    sample whose family has no # TYPE line before it."""
    samples, types = {}, {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            if kind not in ("counter", "gauge", "histogram", "summary", "untyped"):
                raise ValueError(f"bad type: {line!r}")
            types[name] = kind
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise ValueError(f"not a sample: {line!r}")
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        if family not in types:
            raise ValueError(f"no # TYPE for {name}")
        float(value)
        samples[name + labels] = float(value)
    return samples


def labels_of(sample):
    inner = sample[sample.index("{") + 1:-1] if "{" in sample else ""
    return dict(LABEL.findall(inner))


def total(samples, name, **want):
    """Sum of the samples of `name` whose labels include `want`."""
    return sum(v for k, v in samples.items()
               if k.split("{")[0] == name and all(labels_of(k).get(a) == b for a, b in want.items()))


failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
    return ok


def scrape(url, what):
    status, body = get(url)
    check(status == 200, f"{what}: GET {url} answers 200 (got {status})")
    try:
        return parse_metrics(body)
    except ValueError as e:
        check(False, f"{what}: Prometheus text format: {e}")
        return {}


def ws_upgrade(port, token):
    ws = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    ws.sendall((f"GET /ws?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = ws.recv(4096)
        if not chunk:
            break
        head += chunk
    status = head.split(b"\r\n", 1)[0]
    return ws, status, head.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in head else b""


def run(port, mport, bport):
    base = f"http://127.0.0.1:{port}"
    gops = f"http://127.0.0.1:{mport}"
    bops = f"http://127.0.0.1:{bport}"
    if not wait_status(base + "/readyz", 200, 30):
        sys.exit(1)

    # The operations endpoints, before any traffic.
    for url, want in ((gops + "/healthz", 200), (gops + "/readyz", 200), (gops + "/", 404),
                      (bops + "/healthz", 200), (bops + "/readyz", 200), (bops + "/nope", 404)):
        status, body = get(url)
        check(status == want, f"GET {url} answers {want} (got {status} {body.strip()[:80]!r})")
    status, body = get(gops + "/readyz")
    try:
        ready = json.loads(body)
        check(ready.get("status") == "ready" and ready.get("brokers") == ready.get("ready") == 1,
              f"gateway /readyz says ready with 1 of 1 brokers ready (got {body!r})")
    except ValueError:
        check(False, f"gateway /readyz is JSON (got {body!r})")
    g0 = scrape(gops + "/metrics", "gateway")
    b0 = scrape(bops + "/metrics", "broker")
    pid_labels = {labels_of(k).get("pid") for k in g0}
    check(bool(g0) and all(labels_of(k).get("worker") == "0" for k in g0) and len(pid_labels) == 1
          and None not in pid_labels, "every gateway sample has labels worker=\"0\" and pid")
    check(bool(b0) and all(labels_of(k).get("shard") == "0" for k in b0),
          "every broker sample has the label shard=\"0\"")
    for sample, want in (('confab_gateway_broker_link_up{shard="0"}', 1),
                         ('confab_gateway_broker_ready{shard="0"}', 1),
                         ("confab_gateway_draining", 0)):
        name, _, rest = sample.partition("{")
        labels = dict(LABEL.findall(rest))
        check(any(k.split("{")[0] == name for k in g0) and total(g0, name, **labels) == want,
              f"gateway {sample} is {want}")
    for sample, want in (("confab_broker_ready", 1), ("confab_broker_canary_ok", 1),
                         ('confab_broker_redis_up{conn="subscriber"}', 1),
                         ('confab_broker_redis_up{conn="publisher"}', 1),
                         ("confab_broker_gateway_links", 1)):
        name, _, rest = sample.partition("{")
        labels = dict(LABEL.findall(rest))
        check(any(k.split("{")[0] == name for k in b0) and total(b0, name, **labels) == want,
              f"broker {sample} is {want} (got {total(b0, name, **labels)})")

    # Traffic: a login, the frontend, a refused token, a message round trip.
    req = urllib.request.Request(base + "/login", data=b'{"username":"deploy-check"}',
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        token = json.load(r)["token"]
    with urllib.request.urlopen(base + "/", timeout=5) as r:
        check(b"<html" in r.read().lower(), "the frontend is served")
    bad, status, _ = ws_upgrade(port, "not-a-token")
    bad.close()
    check(b" 401 " in status, f"a bad token is refused with 401 (got {status!r})")

    ws, status, buf = ws_upgrade(port, token)
    if b" 101 " not in status:
        sys.exit(f"exercise: upgrade refused: {status!r}")

    def send_frame(opcode, payload):
        mask = os.urandom(4)
        n = len(payload)
        hdr = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else bytes([0xFE]) + n.to_bytes(2, "big"))
        ws.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def recv_frame():
        nonlocal buf
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
    g1 = scrape(gops + "/metrics", "gateway")
    b1 = scrape(bops + "/metrics", "broker")
    send_frame(8, (1000).to_bytes(2, "big"))
    ws.close()

    # The counters moved with the traffic.
    def moved(samples0, samples1, name, at_least=1, **labels):
        d = total(samples1, name, **labels) - total(samples0, name, **labels)
        check(d >= at_least, f"{name}{labels or ''} went up by at least {at_least} (by {d:g})")

    for name in ("confab_gateway_connections_total", "confab_gateway_logins_total",
                 "confab_gateway_messages_in_total", "confab_gateway_messages_out_total",
                 "confab_gateway_frames_out_total", "confab_gateway_bytes_out_total",
                 "confab_gateway_auth_failures_total", "confab_gateway_delivery_latency_seconds_count"):
        moved(g0, g1, name)
    moved(g0, g1, "confab_gateway_delivery_latency_seconds_bucket", le="+Inf")
    check(total(g1, "confab_gateway_connections") >= 1, "confab_gateway_connections counts the open WebSocket")
    check({labels_of(k).get("reason") for k in g1 if k.startswith("confab_gateway_auth_failures_total{")}
          >= {"missing", "malformed", "expired", "bad_signature"},
          "confab_gateway_auth_failures_total has a sample for each reason")
    for name in ("confab_broker_requests_total", "confab_broker_messages_in_total",
                 "confab_broker_messages_out_total"):
        moved(b0, b1, name)
    check(total(b1, "confab_broker_rooms") >= 1, "confab_broker_rooms counts the room in use")

    for f in failures:
        print(f"exercise: FAIL {f}")
    if failures:
        sys.exit(1)
    print("exercise: readyz, healthz and metrics of both daemons; login, frontend, a refused "
          "token, a WebSocket round trip through broker and Redis; the counters moved")


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "run" and len(sys.argv) == 5:
        run(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    elif mode == "status" and len(sys.argv) == 5:
        sys.exit(0 if wait_status(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])) else 1)
    elif mode == "sample" and len(sys.argv) == 4:
        status, body = get(sys.argv[2])
        want = sys.argv[3]
        name, _, rest = want.partition("{")
        labels = dict(LABEL.findall(rest))
        try:
            found = [v for k, v in parse_metrics(body).items()
                     if k.split("{")[0] == name and all(labels_of(k).get(a) == b for a, b in labels.items())]
        except ValueError:
            found = []
        if found:
            print(f"{sum(found):g}")
    else:
        sys.exit(__doc__)
