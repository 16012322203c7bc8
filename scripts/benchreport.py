"""benchreport: the figures, targets and Markdown report of scripts/bench.py
(docs/benchmarks.md). Pure functions of the raw results, apart from
machine() (reads /proc and git) and update_docs() (writes the docs)."""

import os
import platform
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def say(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def rerun_next(steps, k):
    """Whether the generator ran step k's rate once more: it failed on the
    generator's lateness alone (confab-bench --rerun-late-steps)."""
    return k + 1 < len(steps) and steps[k + 1].get("rerun", False)


def capacity_step(r):
    """The passing step with the highest rate, or None."""
    ok = [s for s in r.get("steps", []) if s.get("pass")]
    return max(ok, key=lambda s: s["rate"]) if ok else None


def figures(name, r):
    """The headline figures of one run: {figure: value}."""
    if "error" in r:
        return {}
    f = scenario_figures(name, r)
    if f:
        f["steal"] = r.get("steal")
    return f


def step_cpu(step):
    """The generator's CPU in a step: over its sends or over the whole step,
    the higher. A step that ends a ramp (a loss) waits out its whole drain,
    nearly idle, so the whole step's figure waters down a generator pegged
    while sending."""
    return max(step["gen_cpu"], step.get("gen_cpu_send", 0))


def scenario_figures(name, r):
    if name in ("fanout", "rooms"):
        s = capacity_step(r)
        steps = r.get("steps", [])
        f = {"capacity_msgs": r.get("capacity_rate", 0),
             "capacity_deliveries": s["delivered_per_s"] if s else 0,
             "p99_at_capacity_ms": s["latency_ms"]["p99"] if s else None,
             "gen_cpu_max": max((step_cpu(x) for x in steps), default=0),
             "server_cpu": r.get("server_cpu")}
        return f
    if name == "steady":
        # the last step: a second run of the rate, when the first was late
        # (--rerun-late-steps), replaces it; anomalies() still names the
        # first. But not its loss: a message lost or duplicated in either run
        # is one, whatever else went wrong in that run.
        steps = r.get("steps") or []
        s = steps[-1] if steps else None
        if not s:
            return {}
        return {"delivered_per_s": s["delivered_per_s"],
                "lost": max(x["lost"] for x in steps),
                "duplicated": max(x["duplicated"] for x in steps),
                "loss": max(x["loss"] for x in steps),
                "p50_ms": s["latency_ms"]["p50"], "p99_ms": s["latency_ms"]["p99"],
                "p999_ms": s["latency_ms"]["p999"], "gen_cpu": step_cpu(s),
                # what else failed the step (blocked sends, the generator
                # behind schedule, closed connections, server errors)
                "step_failures": len(s.get("fail_reasons") or []),
                "server_cpu": r.get("server_cpu"), **r.get("tail", {})}
    if name == "idle":
        return {k: r.get(k) for k in ("joined", "rss_per_conn", "private_per_conn",
                                      "rss_marginal_per_conn", "private_marginal_per_conn",
                                      "kernel_per_conn", "slab_per_conn", "redis_rss_per_conn",
                                      "processes")}
    if name in ("storm", "stormjoin"):
        return {"connected": r["connected"], "connect_errors": r["connect_errors"],
                "closed": r.get("closed", 0), "handshakes_per_s": r["handshakes_per_s"],
                "handshake_p50_ms": r["handshake_ms"]["p50"],
                "handshake_p99_ms": r["handshake_ms"]["p99"],
                "handshake_max_ms": r["handshake_ms"]["max"], "gen_cpu": r["gen_cpu_total"],
                "gen_cpu_sum": r.get("gen_cpu_sum"), "server_cpu": r.get("server_cpu"),
                "server_cpu_us_per_handshake": r.get("server_cpu_us_per_handshake"),
                "handshakes_per_core_s": (round(1e6 / r["server_cpu_us_per_handshake"], 1)
                                          if r.get("server_cpu_us_per_handshake") else None),
                "machine_busy": r.get("machine_busy"),
                "machine_busy_err": r.get("machine_busy_err", 0)}
    return {}


def anomalies(r):
    """What went wrong in a run besides the figures: refused connections,
    server errors, connections the server closed."""
    out = []
    for g in r.get("generators", [r]):
        for key in ("connect_errors", "join_errors", "closed", "bad_frames"):
            if g.get(key):
                out.append(f"{key.replace('_', ' ')}: {g[key]}")
        refused = {k: v for k, v in g.get("refused_by_status", {}).items() if v}
        if refused:
            out.append(f"upgrades refused by status: {refused}")
        if g.get("server_error_codes"):
            out.append(f"error events from the server: {g['server_error_codes']}")
        steps = g.get("steps", [])
        for k, s in enumerate(steps):
            if s.get("send_blocked"):
                out.append(f"{s['send_blocked']} sends blocked at {s['rate']:g} msg/s "
                           "(publisher's output full)")
            if s.get("fail_reasons"):
                out.append(f"step {s['rate']:g} msg/s failed: {', '.join(s['fail_reasons'])}"
                           + (" (run once more)" if rerun_next(steps, k) else ""))
    return out


# Figures where one bad run must show: a loss in one run of three is a loss.
WORST = {"lost", "duplicated", "loss", "connect_errors", "closed", "step_failures"}


def median_figures(runs):
    """Medians over the runs, except the WORST figures: their maximum."""
    keys = {k for f in runs for k in f}
    out = {}
    for k in keys:
        vals = [f[k] for f in runs if isinstance(f.get(k), (int, float))]
        out[k] = (max(vals) if k in WORST else statistics.median(vals)) if vals else None
    return out


def paired_ratios(name, key, results):
    """confab/baseline of one figure for each repeat, whose two runs came
    back to back (bench.py alternates them), in the order run: a ratio of
    runs that shared a few minutes of the machine, where the table's is of
    medians that may come from different hours."""
    out = []
    for c, b in zip(results[name]["confab"], results[name]["baseline"]):
        out.append(ratio(figures(name, c).get(key), figures(name, b).get(key)))
    return out


# A generator process at this much CPU (cores) may be what limits a figure.
GEN_LIMIT = 0.9
GEN_FIGURE = {"fanout": "gen_cpu_max", "rooms": "gen_cpu_max", "steady": "gen_cpu",
              "storm": "gen_cpu", "stormjoin": "gen_cpu"}


def baseline_at_top(name, sc, b):
    """Whether the baseline passed the top step of a ramp: its real capacity
    is then only known to be at least that, and a ratio to it is a bound."""
    rates = sc.get("rates")
    return name in ("fanout", "rooms") and bool(rates) and b.get("capacity_msgs") == max(rates)


def generator_limited(name, sc, med):
    """Why the baseline's figures may be the generator's (a saturated
    generator understates the baseline and so flatters confab's ratios), or
    None. A ramp the baseline passed to its top step is not limited: its
    capacity is the ramp's end either way."""
    key = GEN_FIGURE.get(name)
    g = med.get("baseline", {}).get(key) if key else None
    if not isinstance(g, (int, float)) or g < GEN_LIMIT:
        return None
    if baseline_at_top(name, sc, med["baseline"]):
        return None  # the verdict says so instead
    return (f"the generator ran at {g:.2f} cores against the baseline, so the baseline's "
            "figure is a lower bound and the ratio an upper one")


# Figures that measure the machine, not the server, once its CPUs were this
# busy (generators, server, softirqs, everything) during the baseline's run.
MACHINE_LIMIT = 0.9
MACHINE_BOUND = {"storm": {"handshakes_per_s"}}
# Figures of the server alone, whatever limited the load.
SERVER_ALONE = {"handshakes_per_core_s"}


def machine_limited(name, med):
    """Why the rates of a storm are the machine's (every CPU busy: a faster
    server would only have left the generators more), or None. The
    baseline's run is the one that must not be: confab's figure in a full
    machine is a lower bound, which cannot flatter it."""
    busy = med.get("baseline", {}).get("machine_busy")
    err = med.get("baseline", {}).get("machine_busy_err") or 0
    # within its counting error of the limit is as good as at it
    if name not in MACHINE_BOUND or not isinstance(busy, (int, float)) or \
            busy + err < MACHINE_LIMIT:
        return None
    return (f"the machine's CPUs were {busy:.0%} (±{err:.0%}) busy during the baseline's "
            "storm, so "
            "handshakes/s is the machine's; what tells the servers apart is the CPU each "
            "spends on a handshake")


def ratio(c, b):
    return c / b if isinstance(c, (int, float)) and isinstance(b, (int, float)) and b else None


def ratio_at_least(x):
    return lambda c, b: ratio(c, b) is not None and ratio(c, b) >= x


def ratio_at_most(x):
    return lambda c, b: ratio(c, b) is not None and ratio(c, b) <= x


# (figure, label, target text, check(confab, baseline) -> bool or None)
TARGETS = {
    "fanout": [("capacity_deliveries", "capacity, deliveries/s", ">= 0.9x",
                ratio_at_least(0.9)),
               ("capacity_msgs", "capacity, msg/s (highest passing step)", "", None),
               ("p99_at_capacity_ms", "p99 at that step, ms", "", None),
               ("server_cpu", "server CPU, cores (whole run; confab's with Redis)", "", None),
               ("gen_cpu_max", "generator CPU, cores (busiest step)", "", None)],
    "rooms": [("capacity_msgs", "capacity, msg/s", ">= 0.8x",
               ratio_at_least(0.8)),
              ("capacity_deliveries", "deliveries/s at capacity", "", None),
              ("p99_at_capacity_ms", "p99 at that step, ms", "", None),
              ("server_cpu", "server CPU, cores (whole run; confab's with Redis)", "", None),
              ("gen_cpu_max", "generator CPU, cores (busiest step)", "", None)],
    "steady": [("lost", "lost deliveries", "0", lambda c, b: c == 0),
               ("duplicated", "duplicated deliveries", "0", lambda c, b: c == 0),
               ("step_failures", "other reasons the step failed (worst run; see the steps)", "0",
                lambda c, b: c == 0),
               ("p99_ms", "p99 latency, ms", "<= 2x",
                ratio_at_most(2)),
               ("p50_ms", "p50 latency, ms", "", None),
               ("p999_ms", "p99.9 latency, ms", "", None),
               ("first_p99_ms", "p99 of each message's first delivery, ms", "", None),
               ("spread_p99_ms", "p99 of a message's first-to-last-member spread, ms", "",
                None),
               ("stalls_per_s", "stalls per second (deliveries over 2 ms, grouped by send "
                "time)", "", None),
               ("stalled_pct", "deliveries in those stalls, %", "", None),
               ("delivered_per_s", "deliveries/s", "", None),
               ("server_cpu", "server CPU, cores (confab's with Redis)", "", None),
               ("gen_cpu", "generator CPU, cores", "", None)],
    "idle": [("rss_per_conn", "user-space RSS per connection, bytes", "<= 1024",
              lambda c, b: c is not None and c <= 1024),
             ("private_per_conn", "private memory per connection, bytes", "", None),
             ("rss_marginal_per_conn", "RSS per connection, second half only, bytes", "", None),
             ("private_marginal_per_conn", "private memory per connection, second half only, "
              "bytes", "", None),
             ("kernel_per_conn", "kernel TCP buffers per connection, bytes (sockstat)", "",
              None),
             ("slab_per_conn", "kernel slab per connection, both ends, bytes (Slab)", "", None),
             ("redis_rss_per_conn", "Redis RSS per connection, bytes (presence keys; not in "
              "the target, which counts gateways and brokers)", "", None),
             ("joined", "connections held", "", None),
             ("processes", "server processes summed", "", None)],
    "storm": [("handshakes_per_s", "handshakes/s", ">= 0.9x",
               ratio_at_least(0.9)),
              ("handshakes_per_core_s", "handshakes per second of server CPU (what a server "
               "with a core of its own would take)", ">= 0.9x",
               ratio_at_least(0.9)),
              ("handshake_p99_ms", "handshake p99, ms", "<= 2x",
               ratio_at_most(2)),
              ("handshake_p50_ms", "handshake p50, ms", "", None),
              ("handshake_max_ms", "handshake max, ms", "", None),
              ("connect_errors", "connect errors (worst run)", "0", lambda c, b: c == 0),
              ("closed", "connections the server closed while held (worst run)", "0",
               lambda c, b: c == 0),
              ("server_cpu", "server CPU, cores (confab's with Redis)", "", None),
              ("server_cpu_us_per_handshake", "server CPU per handshake, µs (confab's with "
               "Redis)", "", None),
              ("gen_cpu", "generator CPU, cores (the busiest generator process)", "", None),
              ("gen_cpu_sum", "generator CPU, cores (all its processes)", "", None),
              ("machine_busy", "machine's CPUs busy over the storm (share)", "", None)],
}
TARGETS["stormjoin"] = [(k, label, "", None) for k, label, _, _ in TARGETS["storm"]]
for _rows in TARGETS.values():
    _rows.append(("steal", "CPU the host took from the VM during the run (steal), cores", "",
                  None))
# Figures of the machine, not of either server: no ratio.
NO_RATIO = {"steal"}
for _row in ("lost", "duplicated"):  # the worst run's, not the median's
    TARGETS["steady"] = [(k, f"{label} (worst run)" if k == _row else label, t, c)
                         for k, label, t, c in TARGETS["steady"]]


def fmt(v):
    if v is None:
        return "—"
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def scenario_table(name, sc, med):
    """The table, and the verdicts of its ratio targets (None: no verdict)."""
    c, b = med.get("confab", {}), med.get("baseline", {})
    limited = generator_limited(name, sc, med)
    mlimited = machine_limited(name, med)
    lines = [f"### {sc['title']} (`{name}`)", "",
             "| figure | confab | baseline | confab/baseline | target | met |",
             "|---|---:|---:|---:|---|---|"]
    verdicts = []
    for key, label, target, check in TARGETS[name]:
        cv, bv = c.get(key), b.get(key)
        r = ratio(cv, bv) if key not in NO_RATIO else None
        met = ""
        if check and limited and target.endswith("x") and key not in SERVER_ALONE:
            met = "no verdict: generator-limited"
            verdicts.append(None)
        elif check and mlimited and key in MACHINE_BOUND.get(name, ()):
            met = "no verdict: machine-limited"
            verdicts.append(None)
        elif check:
            ok = check(cv, bv) if cv is not None else False
            met = "met" if ok else "**not met**"
            if ok and target.endswith("x") and baseline_at_top(name, sc, b):
                # the baseline's capacity is the ramp's end, not its own
                met = "met within the ramp (the baseline passed its top step: an upper bound)"
            verdicts.append(ok)
        lines.append(f"| {label} | {fmt(cv)} | {fmt(bv)} | {fmt(r) if r is not None else '—'} "
                     f"| {target} | {met} |")
    if limited:
        lines += ["", f"_No verdict on the ratios: {limited}._"]
    elif mlimited:
        lines += ["", f"_No verdict on handshakes/s: {mlimited}._"]
    return lines, verdicts


def describe(name, sc):
    if name == "idle":
        return (f"{sc['conns']:,} connections in {sc['rooms']:,} rooms from 2 generator "
                f"processes (the second started once the first had all its connections), "
                f"held {sc['hold']} s")
    if name in ("storm", "stormjoin"):
        joins = (", handshakes only" if sc.get("no_join")
                 else f", each joining one of {sc['rooms']:,} rooms")
        gens = sc.get("gen_procs", 1)
        split = (f", from {gens} generator processes started together (each with an equal "
                 f"share of the connections and of the in-flight bound)" if gens > 1 else "")
        return (f"{sc['conns']:,} connections, as fast as possible, <= {sc['inflight']} in "
                f"flight{joins}{split}")
    pubs = "every connection" if sc["publishers"] == 0 else f"{sc['publishers']} publishers"
    rooms = "1 room" if sc["rooms"] == 1 else f"{sc['rooms']:,} rooms"
    return (f"{sc['conns']:,} connections in {rooms}, {pubs}, steps "
            f"{','.join(map(str, sc['rates']))} msg/s of {sc['step']} s (+ up to {sc['drain']} s "
            f"drain)")


def step_table(r):
    """The generator's per-step figures of one run, for the appendix."""
    rows = ["| rate | sent | sent/s | delivered/s | loss | dup | ooo | p50 ms | p99 ms | max ms "
            "| lag ms | gen CPU | pass |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    steps = r.get("steps", [])
    for k, s in enumerate(steps):
        lat = s["latency_ms"]
        verdict = "yes" if s["pass"] else "no: " + ", ".join(s.get("fail_reasons") or ["?"])
        if rerun_next(steps, k):
            verdict += " (run once more)"
        rows.append(f"| {s['rate']:g} | {s['sent']:,} | {s.get('sent_per_s', 0):,.0f} | "
                    f"{s['delivered_per_s']:,.0f} | {s['loss']:.4%} | {s['duplicated']} | "
                    f"{s['out_of_order']} | {lat['p50']:.2f} | {lat['p99']:.2f} | "
                    f"{lat['max']:.2f} | {s.get('pace_lag_ms_max', 0):.1f} | {s['gen_cpu']:.2f} | "
                    f"{verdict} |")
    return rows


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            mem_kb = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kb = 0

    def git(*args):
        try:
            return subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    dirty = git("status", "--porcelain", "--", "gateway", "broker", "common", "bench")
    return {"nproc": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "ram_gib": round(mem_kb / 1048576, 1), "commit": git("rev-parse", "--short", "HEAD"),
            "uncommitted_server_changes": bool(dirty),
            "load_before": os.getloadavg()[0]}


def hop_line(h):
    """The hand-over cost measured by confab-hop, as a report line."""
    if not h:
        return []
    part = lambda k, name: (f"{name} {h[k]['p50']:.1f} µs (p99 {h[k]['p99']:.1f})"
                            if k in h else None)
    parts = [x for x in (part("same_cpu_us", "same CPU"), part("other_cpu_us", "other CPU"),
                         part("unpinned_us", "unpinned")) if x]
    return [f"- one hand-over between two processes (`confab-hop`, one way, median, "
            f"{h['gap_us']} µs apart): " + ", ".join(parts)]


def steal_line(steal):
    """The CPU the host took from the VM over the whole invocation."""
    if steal is None:
        return []
    return [f"- the host took {fmt(steal)} of a CPU from this VM over the whole invocation "
            "(steal, /proc/stat; each table gives its runs')"]


def report(a, meta, scs, results):
    m = meta["machine"]
    lines = [f"## Results {meta['started']}", "",
             f"- machine: {m['nproc']} CPUs ({m['cpu']}), {m['ram_gib']} GiB RAM, "
             f"Linux {m['kernel']}; load average {m['load_before']:.2f} at the start",
             f"- tree: {m['commit']}"
             f"{' + uncommitted changes in gateway/broker/common/bench' if m['uncommitted_server_changes'] else ''}"
             f", binaries: {a.build}",
             f"- command: `{meta['command']}`",
             ] + hop_line(meta.get("hop")) + steal_line(meta.get("steal")) + [
             f"- confab: BROKERS={a.brokers}, GATEWAY_WORKERS={a.gateway_workers} (idle: 2), "
             "private Redis on a Unix socket; baseline: 1 process (idle: 2)",
             f"- repeat: {a.repeat}" + (" (medians)" if a.repeat > 1 else "")
             + "".join(f"; {n}: {a.repeat * scs[n]['runs_per_repeat']} runs"
                       for n in results if scs[n].get("runs_per_repeat", 1) > 1)
             + (" — **quick run: smaller sizes and shorter steps, not the reference figures**"
                if a.quick else ""), ""]
    summary = []
    for name in results:
        sc = scs[name]
        med = {kind: median_figures([figures(name, r) for r in results[name][kind]])
               for kind in ("confab", "baseline")}
        t, verdicts = scenario_table(name, sc, med)
        lines += t
        lines += ["", f"_{describe(name, sc)}._"]
        top = [kind for kind in ("confab", "baseline") if name in ("fanout", "rooms")
               and med[kind].get("capacity_msgs") == max(sc["rates"])]
        if top:
            lines += ["", f"_{' and '.join(top)} passed the top step of the ramp: the capacity "
                          "is at least that, so the ratio is only a bound._"]
        errs = [f"{kind} run {i + 1}: {r['error']}" for kind in ("confab", "baseline")
                for i, r in enumerate(results[name][kind]) if "error" in r]
        if errs:
            lines += [""] + [f"- error: {e}" for e in errs]
        pairs = paired_ratios(name, "p99_ms", results) if name == "steady" else []
        if len(pairs) > 1:
            known = [r for r in pairs if r is not None]
            steals = [(figures(name, c).get("steal"), figures(name, b).get("steal"))
                      for c, b in zip(results[name]["confab"], results[name]["baseline"])]
            lines += ["", "_p99, confab/baseline, of each repeat's two runs (back to back, in "
                      "the order run): " + ", ".join(fmt(r) if r is not None else "—"
                                                     for r in pairs)
                      + (f"; their median {fmt(statistics.median(known))}" if known else "")
                      + ("; the host's steal during each pair's runs, cores (confab/baseline): "
                         + ", ".join(f"{fmt(c)}/{fmt(b)}" for c, b in steals)
                         if any(v is not None for pair in steals for v in pair) else "")
                      + "._"]
        notes = [f"{kind} run {i + 1}: {n}" for kind in ("confab", "baseline")
                 for i, r in enumerate(results[name][kind]) for n in anomalies(r)]
        if notes:
            lines += [""] + [f"- {n}" for n in notes]
        lines.append("")
        has_targets = any(row[3] for row in TARGETS[name])
        judged = [v for v in verdicts if v is not None]
        if not has_targets and not errs:
            state = "no target (for reference)"
        elif errs or not all(judged) or not verdicts:
            state = "**not all met**"
        elif len(judged) < len(verdicts):
            state = (f"met where judged; {len(verdicts) - len(judged)} without a verdict "
                     "(generator- or machine-limited)")
        else:
            state = "all met"
        summary.append((name, state))
    lines += ["### Summary", "", "| scenario | targets |", "|---|---|"]
    lines += [f"| {n} | {state} |" for n, state in summary]
    details = []
    for name in results:
        for kind in ("confab", "baseline"):
            for i, r in enumerate(results[name][kind]):
                if r.get("steps"):
                    details += [f"{name}, {kind}, run {i + 1}:", ""] + step_table(r) + [""]
    if details:
        lines += ["", "<details><summary>Steps of every run</summary>", ""] + details
        lines += ["</details>", ""]
    return "\n".join(lines)


def update_docs(md):
    """Replaces the results section of docs/benchmarks.md with md."""
    path = os.path.join(ROOT, "docs/benchmarks.md")
    begin, end = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"
    with open(path) as f:
        text = f.read()
    if begin not in text or end not in text:
        say(f"{path} has no {begin} ... {end} section; not updated")
        return
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    with open(path, "w") as f:
        f.write(f"{head}{begin}\n{md}\n{end}{tail}")
    say(f"updated {path}")
