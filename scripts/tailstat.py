#!/usr/bin/env python3
"""Where a latency tail comes from, read from `confab-bench --dump FILE`
(docs/benchmarks.md, "Reading a tail").

    scripts/tailstat.py DUMP [--slow-ms 2]

Prints the latency percentiles of every delivery; the same of each message's
first delivery (a tail there was added before the server fanned the message
out, on its way in or between the server's processes) and of the spread
between a message's first and last member (added while writing to the
members); and the stalls: slow deliveries grouped by send time, so one stall
that delayed many messages counts once."""
import argparse
import sys


def pct(sorted_ms, q):
    return sorted_ms[min(len(sorted_ms) - 1, int(len(sorted_ms) * q))]


def line(name, values_ns):
    v = sorted(x / 1e6 for x in values_ns)
    if not v:
        return f"{name}: none"
    return (f"{name}: n={len(v)} p50 {pct(v, .5):.3f} p90 {pct(v, .9):.3f} "
            f"p99 {pct(v, .99):.3f} p99.9 {pct(v, .999):.3f} max {v[-1]:.3f} ms")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dump")
    ap.add_argument("--slow-ms", type=float, default=2.0,
                    help="a delivery slower than this is part of a stall (default 2)")
    a = ap.parse_args()
    lat, first, last, sent_at = [], {}, {}, []
    with open(a.dump) as f:
        for n, row in enumerate(f, 1):
            try:
                t, l, sender, seq, _receiver = (int(x) for x in row.split())
            except ValueError:
                sys.exit(f"{a.dump}:{n}: not a --dump line: {row.strip()!r}")
            lat.append(l)
            k = (sender, seq)
            first[k] = min(first.get(k, l), l)
            last[k] = max(last.get(k, l), l)
            if l > a.slow_ms * 1e6:
                sent_at.append((t - l, l))
    if not lat:
        sys.exit(f"{a.dump}: no deliveries")
    print(line("every delivery", lat))
    print(line("first delivery of each message", first.values()))
    print(line("spread, first to last member", [last[k] - first[k] for k in first]))
    stalls = []  # [first send, last send, deliveries, worst]
    for t, l in sorted(sent_at):
        if stalls and t - stalls[-1][1] < 5_000_000:
            s = stalls[-1]
            s[1], s[2], s[3] = t, s[2] + 1, max(s[3], l)
        else:
            stalls.append([t, t, 1, l])
    print(f"stalls over {a.slow_ms:g} ms: {len(stalls)} ({len(sent_at)} deliveries); worst:")
    for s in sorted(stalls, key=lambda s: -s[3])[:10]:
        print(f"  sent at {s[0] / 1e9:.3f} s (monotonic) for {(s[1] - s[0]) / 1e6:.1f} ms: "
              f"{s[2]} deliveries, worst {s[3] / 1e6:.2f} ms")


if __name__ == "__main__":
    main()
