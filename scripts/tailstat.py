#!/usr/bin/env python3
"""Where a latency tail comes from, read from `confab-bench --dump FILE`
(docs/benchmarks.md, "Reading a tail").

    scripts/tailstat.py DUMP [--slow-ms 2] [--late-ms 0.6]

Prints the latency percentiles of every delivery; the same of each message's
first delivery (a tail there was added before the server fanned the message
out, on its way in or between the server's processes) and of the spread
between a message's first and last member (added while writing to the
members); and the stalls: slow deliveries grouped by send time, so one stall
that delayed many messages counts once; and the beat: late deliveries by the
time of the second they were sent in, so that something of the server's
that runs once a second shows as one window of the second holding late
deliveries in most seconds. bench.py reports the same figures for the
steady scenario (summarize)."""
import argparse
import math
import sys

# Slow deliveries whose messages were sent less than this apart belong to one
# stall: at the steady scenario's 2000 msg/s, ten messages.
STALL_GAP_NS = 5_000_000


def percentiles(values_ns):
    """{p50, p90, p99, p999, max} in ms, or None when there are no values."""
    v = sorted(values_ns)
    if not v:
        return None

    def at(q):  # nearest rank, as confab-bench's histogram reports it
        return v[max(0, math.ceil(len(v) * q) - 1)] / 1e6

    return {"p50": at(.5), "p90": at(.9), "p99": at(.99), "p999": at(.999), "max": v[-1] / 1e6}


def summarize(path, slow_ms=2.0):
    """The figures of one dump: {"deliveries", "every", "first", "spread" (each
    percentiles()), "slow_ms", "stalls": [[first send ns, last send ns,
    deliveries, worst ns], ...], "stalled"} (deliveries in stalls). Raises
    ValueError on a line that is not a dump line."""
    lat, first, last, slow = [], {}, {}, []
    with open(path) as f:
        for n, row in enumerate(f, 1):
            try:
                t, l, sender, seq, _receiver = (int(x) for x in row.split())
            except ValueError:
                raise ValueError(f"{path}:{n}: not a --dump line: {row.strip()!r}") from None
            lat.append(l)
            k = (sender, seq)
            if k in first:
                first[k], last[k] = min(first[k], l), max(last[k], l)
            else:
                first[k] = last[k] = l
            if l > slow_ms * 1e6:
                slow.append((t - l, l))
    stalls = []
    for t, l in sorted(slow):
        if stalls and t - stalls[-1][1] < STALL_GAP_NS:
            s = stalls[-1]
            s[1], s[2], s[3] = t, s[2] + 1, max(s[3], l)
        else:
            stalls.append([t, t, 1, l])
    return {"deliveries": len(lat), "every": percentiles(lat),
            "first": percentiles(first.values()),
            "spread": percentiles([last[k] - first[k] for k in first]),
            "slow_ms": slow_ms, "stalls": stalls, "stalled": len(slow)}


# The beat's windows of the second, and how many late deliveries in one
# window of one second count (fewer is noise).
BEAT_WINDOW_NS = 10_000_000
BEAT_MIN_LATE = 3


def beat(path, late_ms=0.6):
    """Which windows of the second (by send time) held late deliveries in the
    most seconds: (seconds in the dump, [(seconds hit, window start ms), ...]
    best first). A once-a-second event shows as a window hit in nearly every
    second; stalls of the machine fall anywhere."""
    per = {}  # window -> {second: late deliveries}
    seconds = set()
    with open(path) as f:
        for row in f:
            t, lat = (int(x) for x in row.split()[:2])
            sent = t - lat
            sec = sent // 1_000_000_000
            seconds.add(sec)
            if lat > late_ms * 1e6:
                w = (sent % 1_000_000_000) // BEAT_WINDOW_NS
                hits = per.setdefault(w, {})
                hits[sec] = hits.get(sec, 0) + 1
    ranked = sorted(((sum(1 for n in h.values() if n >= BEAT_MIN_LATE), w * BEAT_WINDOW_NS // 1_000_000)
                     for w, h in per.items()), reverse=True)
    return len(seconds), ranked


def line(name, p):
    if not p:
        return f"{name}: none"
    return (f"{name}: p50 {p['p50']:.3f} p90 {p['p90']:.3f} p99 {p['p99']:.3f} "
            f"p99.9 {p['p999']:.3f} max {p['max']:.3f} ms")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dump")
    ap.add_argument("--slow-ms", type=float, default=2.0,
                    help="a delivery slower than this is part of a stall (default 2)")
    ap.add_argument("--late-ms", type=float, default=0.6,
                    help="a delivery slower than this is late, for the beat (default 0.6)")
    a = ap.parse_args()
    try:
        s = summarize(a.dump, a.slow_ms)
    except (OSError, ValueError) as e:
        sys.exit(f"tailstat: {e}")
    if not s["deliveries"]:
        sys.exit(f"tailstat: {a.dump}: no deliveries")
    print(f"{s['deliveries']} deliveries")
    print(line("every delivery", s["every"]))
    print(line("first delivery of each message", s["first"]))
    print(line("spread, first to last member", s["spread"]))
    print(f"stalls over {a.slow_ms:g} ms: {len(s['stalls'])} ({s['stalled']} deliveries); "
          "worst:")
    for st in sorted(s["stalls"], key=lambda st: -st[3])[:10]:
        print(f"  sent at {st[0] / 1e9:.3f} s (monotonic) for {(st[1] - st[0]) / 1e6:.1f} ms: "
              f"{st[2]} deliveries, worst {st[3] / 1e6:.2f} ms")
    secs, ranked = beat(a.dump, a.late_ms)
    top = ", ".join(f"{ms}-{ms + BEAT_WINDOW_NS // 1_000_000} ms in {n}" for n, ms in ranked[:3])
    print(f"beat: windows of the second holding {BEAT_MIN_LATE}+ deliveries over {a.late_ms:g} ms, "
          f"in how many of {secs} seconds: {top or 'none'}")


if __name__ == "__main__":
    main()
