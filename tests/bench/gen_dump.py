#!/usr/bin/env python3
"""confab-bench --dump against bench/baseline: one line per delivery of the
step (no duplicates or late ones in this run), each naming a sender and a
receiver of the same room, every message reaching every member, latencies
agreeing with the report; scripts/tailstat.py reads it back, and finds a
once-a-second beat where there is one; an unwritable --dump is refused
before anything starts.

usage: gen_dump.py CONFAB_BENCH CONFAB_BASELINE"""
import json
import os
import selectors
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../scripts"))
from tailstat import beat, summarize  # noqa: E402

CONNS, ROOMS, RATE = 40, 4, 200


def check(ok, what):
    if not ok:
        sys.exit(f"FAIL: {what}")


def start_baseline(path):
    """The baseline on a port of its own choosing: it prints READY <port>."""
    p = subprocess.Popen([path, "--port", "0", "--addr", "127.0.0.1", "--procs", "1"],
                         stdout=subprocess.PIPE)  # stderr passes through: sanitizer reports
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    line = p.stdout.readline().decode() if sel.select(10) else ""
    sel.close()
    if not line.startswith("READY "):
        p.kill()
        p.wait()
        sys.exit(f"FAIL: the baseline printed {line!r}, not READY <port>")
    return p, int(line.split()[1])


def main():
    gen, baseline = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        bad = subprocess.run([gen, "--url", "ws://127.0.0.1:1/ws", "--secret", "s",
                              "--dump", os.path.join(tmp, "missing", "d.txt")],
                             capture_output=True, text=True, timeout=30)
        check(bad.returncode == 1 and "--dump" in bad.stderr,
              f"an unwritable --dump: exit {bad.returncode}, {bad.stderr!r}")

        srv, port = start_baseline(baseline)
        dump = os.path.join(tmp, "d.txt")
        try:
            r = subprocess.run([gen, "--url", f"ws://127.0.0.1:{port}/ws", "--secret",
                                "confab-test-secret-0123456789abcdef", "--conns", str(CONNS),
                                "--rooms", str(ROOMS), "--rate", str(RATE), "--step-seconds",
                                "1", "--drain-seconds", "2", "--json", "--dump", dump],
                               stdout=subprocess.PIPE, text=True, timeout=60)
        finally:
            srv.kill()
            srv.wait()
        check(r.returncode == 0, f"confab-bench exited with {r.returncode}")
        step = json.loads(r.stdout)["steps"][0]
        check(step["sent"] > 0 and step["lost"] == 0, f"a clean step: {step}")
        check(step["duplicated"] == 0 and step["late"] == 0, f"no duplicates, no late: {step}")

        receivers, sent_at, last_t, worst = {}, {}, 0, 0
        with open(dump) as f:
            lines = f.read().splitlines()
        for line in lines:
            t, lat, sender, seq, receiver = (int(x) for x in line.split())
            check(t >= last_t, f"receive times go back: {line}")
            last_t = t
            check(0 <= lat < 10 * 10**9, f"latency out of range: {line}")
            worst = max(worst, lat)
            check(sender % ROOMS == receiver % ROOMS, f"not one room: {line}")
            receivers.setdefault((sender, seq), set()).add(receiver)
            sent_at[(sender, seq)] = t - lat
        check(len(lines) == step["delivered"], f"{len(lines)} lines, {step['delivered']} delivered")
        check(len(receivers) == step["sent"], f"{len(receivers)} messages, {step['sent']} sent")
        members = CONNS // ROOMS
        check(all(len(v) == members for v in receivers.values()), "a message missed a member")
        check(round(worst / 1e6, 3) == step["latency_ms"]["max"],
              f"worst latency {worst / 1e6:.3f} ms, the report's max {step['latency_ms']['max']}")
        for sender in {s for s, _ in sent_at}:
            times = [sent_at[k] for k in sorted(k for k in sent_at if k[0] == sender)]
            check(times == sorted(times), f"sender {sender}'s send times go back with its seq")

        t = summarize(dump)
        check(t["deliveries"] == len(lines) and t["first"] and t["spread"],
              f"tailstat read {t['deliveries']} deliveries")
        check(t["first"]["max"] <= t["every"]["max"] and t["stalled"] == sum(
            1 for line in lines if int(line.split()[1]) > 2e6), "tailstat's stalls")
    check_beat()
    print(f"ok: {len(lines)} deliveries of {step['sent']} messages dumped")


def check_beat():
    """A dump of 6 s where every second the sends of 300-310 ms are late and
    one second also has late sends elsewhere: the beat is that window, in
    all 6 seconds, and nothing else comes close."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "beat.txt")
        with open(path, "w") as f:
            for sec in range(100, 106):
                for ms in range(0, 1000, 2):
                    late = 300 <= ms < 310 or (sec == 102 and 600 <= ms < 640)
                    lat = 1_500_000 if late else 200_000
                    sent = sec * 1_000_000_000 + ms * 1_000_000
                    for receiver in range(3):
                        f.write(f"{sent + lat} {lat} 1 {sec * 1000 + ms} {receiver}\n")
        secs, ranked = beat(path, 0.6)
        check(secs == 6 and ranked[0] == (6, 300) and ranked[1][0] == 1,
              f"tailstat's beat: {secs} seconds, windows {ranked[:3]}")


if __name__ == "__main__":
    main()
