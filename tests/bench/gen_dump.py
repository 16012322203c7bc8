#!/usr/bin/env python3
"""confab-bench --dump against bench/baseline: one line per delivery of the
step, each naming a sender and a receiver of the same room, as many lines
as the report counts deliveries; an unwritable --dump is refused.

usage: gen_dump.py CONFAB_BENCH CONFAB_BASELINE"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

CONNS, ROOMS, RATE = 40, 4, 200


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_baseline(path):
    """The baseline on a free port; a port taken meanwhile gets two more tries."""
    for _ in range(3):
        port = free_port()
        p = subprocess.Popen([path, "--port", str(port), "--addr", "127.0.0.1", "--procs", "1"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and p.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return p, port
            except OSError:
                time.sleep(0.05)
        p.kill()
        p.wait()
    sys.exit("the baseline did not start")


def main():
    gen, baseline = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        bad = subprocess.run([gen, "--url", "ws://127.0.0.1:1/ws", "--secret", "s",
                              "--dump", os.path.join(tmp, "missing", "d.txt")],
                             capture_output=True, text=True, timeout=30)
        assert bad.returncode == 1 and "--dump" in bad.stderr, (bad.returncode, bad.stderr)

        srv, port = start_baseline(baseline)
        dump = os.path.join(tmp, "d.txt")
        try:
            r = subprocess.run([gen, "--url", f"ws://127.0.0.1:{port}/ws", "--secret",
                                "confab-test-secret-0123456789abcdef", "--conns", str(CONNS),
                                "--rooms", str(ROOMS), "--rate", str(RATE), "--step-seconds",
                                "1", "--drain-seconds", "2", "--json", "--dump", dump],
                               capture_output=True, text=True, timeout=120)
        finally:
            srv.kill()
            srv.wait()
        assert r.returncode == 0, r.stderr
        step = json.loads(r.stdout)["steps"][0]
        assert step["sent"] > 0 and step["lost"] == 0, step
        assert step["duplicated"] == 0 and step["late"] == 0, step

        receivers = {}
        last_t = 0
        with open(dump) as f:
            lines = f.read().splitlines()
        for line in lines:
            t, lat, sender, seq, receiver = (int(x) for x in line.split())
            assert t >= last_t, "receive times go back"
            last_t = t
            assert 0 <= lat < 10 * 10**9, line
            assert sender % ROOMS == receiver % ROOMS, f"not one room: {line}"
            receivers.setdefault((sender, seq), set()).add(receiver)
        assert len(lines) == step["delivered"], (len(lines), step["delivered"])
        assert len(receivers) == step["sent"], (len(receivers), step["sent"])
        members = CONNS // ROOMS
        assert all(len(v) == members for v in receivers.values()), "a message missed a member"
    print(f"ok: {len(lines)} deliveries of {step['sent']} messages dumped")


if __name__ == "__main__":
    main()
