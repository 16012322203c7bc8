#!/usr/bin/env python3
"""bench.py: confab's benchmark suite (`make bench`, docs/benchmarks.md).

Runs each scenario against confab and against bench/baseline in the same
invocation, with the load generator bench/gen/confab-bench, and reports
confab/baseline ratios next to the absolute figures: one machine's noise then
cancels out. Writes bench-results/<timestamp>.md (the tables) and .json (every
raw figure) and prints the tables.

    scripts/bench.py [--build DIR] [--scenarios fanout,rooms,steady,idle,storm,stormjoin]
                     [--repeat N] [--quick] [--out DIR] [--update-docs]

Standard library only. Every process it starts runs in its own process group
and is stopped at the end, also on Ctrl-C or an exception.
"""

import argparse
import datetime
import http.client
import json
import math
import os
import random
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from benchproc import (descendants, machine_cpu, meminfo_slab_bytes, sockstat_tcp_bytes,
                       steal_seconds, tree_cpu, tree_mem)
from benchreport import figures, machine, report, update_docs
from tailstat import summarize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECRET = "confab-bench-secret-0123456789abcdef"  # >= 32 bytes, as JWT_SECRET requires
ALL_SCENARIOS = ["fanout", "rooms", "steady", "idle", "storm", "stormjoin"]
FANOUT_RATES = [20, 40, 80, 160, 320, 640, 1000, 1280, 1600]
ROOMS_RATES = [1000, 2000, 4000] + list(range(8000, 40001, 4000))  # 8000, 12000, ... 40000


def say(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# ---- scenarios ---------------------------------------------------------------
# Each scenario: generator arguments (full and --quick), and how its figures
# are read. "procs" is how many generator processes share the connections.

def scenarios(quick):
    q = quick
    return {
        "fanout": {
            "title": "Fan-out: 1 room, 4 publishers",
            "conns": 200 if q else 1000, "rooms": 1, "publishers": 4,
            "rates": [20, 320, 1000, 2000, 4000] if q else FANOUT_RATES,
            "step": 1 if q else 5, "drain": 1 if q else 2, "rerun_late": True,
        },
        "rooms": {
            "title": "Small rooms: rooms of 10, every connection publishes",
            "conns": 400 if q else 2000, "rooms": 40 if q else 200, "publishers": 0,
            "rates": [1000, 4000, 8000, 16000, 32000] if q else ROOMS_RATES,
            "step": 1 if q else 5, "drain": 1 if q else 2, "rerun_late": True,
        },
        "steady": {
            "title": "Steady: rooms of 10, one rate held",
            "conns": 1000 if q else 5000, "rooms": 100 if q else 500, "publishers": 0,
            "rates": [500] if q else [2000], "step": 3 if q else 20, "drain": 2,
            "stop_p99_ms": 1e6, "stop_loss": 1.0,  # one step: report, never cut
            # a step the generator itself fell behind in (a stall of the
            # whole VM held it > 50 ms) measured the generator: as in the
            # ramps, it runs once more and the second run is the one kept
            "rerun_late": True,
            "dump": True,  # where its tail comes from (tail_figures)
        },
        "idle": {
            "title": "Idle: connections held, memory per connection",
            "conns": 2000 if q else 20000, "rooms": 200 if q else 2000,
            "hold": 2 if q else 20, "gateway_workers": 2, "baseline_procs": 2,
        },
        # Two generator processes of half the connections and half the
        # in-flight bound each, started together: a loopback connect() runs
        # both ends' TCP handshake in the caller, so one process storming
        # alone sits at a whole core against either server and its limit,
        # not the server's, is what would be measured (benchmarks.md)
        # A storm lasts ~0.1 s and a run ~2 s, and this VM runs both servers'
        # handshakes at one of two speeds at random (~11 and ~15 us of
        # server CPU each; benchmarks.md, the storm row of "What limits each
        # figure"): three runs cannot tell 10 % apart, so each repeat of the
        # storms is five runs
        "storm": {
            "title": "Connect storm: as fast as possible, <= 1000 handshakes in flight",
            "conns": 2000 if q else 5000, "rooms": 200 if q else 500, "inflight": 1000,
            "no_join": True, "gen_procs": 2, "runs_per_repeat": 1 if q else 5,
        },
        # the same storm where every connection also joins a room of 10 (its
        # joined snapshot, presence to the others): no target, for reference
        "stormjoin": {
            "title": "Connect storm with joins: each connection also joins a room of 10",
            "conns": 2000 if q else 5000, "rooms": 200 if q else 500, "inflight": 1000,
            "gen_procs": 2, "runs_per_repeat": 1 if q else 5,
        },
    }


# ---- processes -----------------------------------------------------------------

class Procs:
    """Every process started, each in its own process group, stopped in reverse."""

    def __init__(self):
        self.started = []

    def start(self, name, argv, env=None, stdout=None, stderr=None, cwd=None):
        p = subprocess.Popen(argv, env=env, stdout=stdout, stderr=stderr, cwd=cwd,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        p.bench_name = name
        self.started.append(p)
        return p

    def stop(self, p, timeout=10.0):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                say(f"{p.bench_name} ignored SIGTERM for {timeout:.0f} s: SIGKILL")
        try:  # anything left in the group (a worker that outlived its parent)
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        p.wait()
        if p in self.started:
            self.started.remove(p)

    def stop_all(self):
        for p in reversed(list(self.started)):
            self.stop(p)


def free_port():
    """A free port, at random outside the kernel's ephemeral range when there
    is room: a port from that range can become the local port of one of the
    generator's connections before the server binds it."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = map(int, f.read().split())
    except (OSError, ValueError):
        lo, hi = 32768, 60999
    pool = list(range(10000, lo)) + list(range(hi + 1, 65536))
    for port in random.sample(pool, min(len(pool), 200)) if len(pool) >= 1000 else []:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                pass
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, deadline_s, check, interval=0.1):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if check():
            return
        time.sleep(interval)
    raise RuntimeError(f"{what}: not within {deadline_s:.0f} s")


def http_status(port, path):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", path)
        status = c.getresponse().status
        c.close()
        return status
    except OSError:
        return 0


# ---- the two servers -----------------------------------------------------------

class Server:
    """One server under test: its port, the roots of its process trees whose
    memory and CPU count, and the processes to stop."""

    def __init__(self, kind, port, roots, procs, extra_roots=(), run_dir=None):
        self.kind, self.port, self.roots, self.procs = kind, port, roots, procs
        # Redis: in the CPU figures; its memory is reported beside the idle
        # target, which the issue defines over gateways and brokers
        self.extra_roots = list(extra_roots)
        self.run_dir = run_dir
        self.idle_mem = tree_mem([p.pid for p in roots])


def start_confab(a, procs, gateway_workers, logdir):
    run = tempfile.mkdtemp(prefix="confab-bench.")
    os.chmod(run, 0o750)
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("METRICS_PORT", "BROKER_METRICS_PORT", "LOG_FORMAT", "NOTIFY_SOCKET",
                        "WATCHDOG_USEC", "LISTEN_FDS", "LISTEN_PID", "JOURNAL_STREAM",
                        "CONFAB_DEV", "REDIS_PASSWORD", "REDIS_USERNAME", "METRICS_ADDR")}
    env.update({
        "CONFAB_ENV_FILE": "/dev/null", "RUN_DIR": run, "PORT": str(port),
        "LISTEN_ADDR": "127.0.0.1", "BROKERS": str(a.brokers),
        "GATEWAY_WORKERS": str(gateway_workers), "REDIS_ADDR": f"unix:{run}/redis.sock",
        "JWT_SECRET": SECRET, "LOG_LEVEL": "warn", "DRAIN_TIMEOUT_MS": "1000",
        # a single-address load generator: the abuse limits would refuse it
        "RATE_MSGS": "0", "LOGIN_RATE": "0", "UPGRADE_RATE": "0", "MAX_CONNS_PER_IP": "0",
        # a fan-out publisher sends 400 msg/s: 64 unanswered sends would cap it
        # at 64 / ack latency
        "MAX_PENDING_REQUESTS": "1024",
    })
    for kv in a.confab_env:
        k, _, v = kv.partition("=")
        env[k] = v
    log = open(os.path.join(logdir, "confab.log"), "ab")
    redis = procs.start("redis", ["redis-server", "--port", "0", "--unixsocket",
                                  f"{run}/redis.sock", "--unixsocketperm", "700", "--save", "",
                                  "--appendonly", "no", "--dir", run],
                        env=env, stdout=log, stderr=log)
    wait_until("redis-server socket", 10, lambda: os.path.exists(f"{run}/redis.sock"))
    broker = procs.start("brokers", [os.path.join(a.build, "broker/confab-broker"), "--shards",
                                     str(a.brokers)], env=env, stdout=log, stderr=log)
    gateway = procs.start("gateway", [os.path.join(a.build, "gateway/confab-gateway")], env=env,
                          stdout=log, stderr=log)

    def ready():
        for p in (redis, broker, gateway):
            if p.poll() is not None:
                raise RuntimeError(f"confab: {p.bench_name} exited with {p.returncode} "
                                   f"(log: {log.name})")
        return http_status(port, "/readyz") == 200

    wait_until("confab /readyz", 30, ready)
    time.sleep(0.5)  # let the workers' start-up allocations settle before the idle sample
    return Server("confab", port, [broker, gateway], [gateway, broker, redis],
                  extra_roots=[redis], run_dir=run)


def start_baseline(a, procs, nprocs, logdir):
    exe = os.path.join(a.build, "bench/baseline/confab-baseline")
    p = procs.start("baseline", [exe, "--port", "0", "--addr", "127.0.0.1", "--procs",
                                 str(nprocs)], stdout=subprocess.PIPE,
                    stderr=open(os.path.join(logdir, "baseline.log"), "ab"))
    line = read_line_with_deadline(p.stdout, 10)
    if not line.startswith("READY "):
        raise RuntimeError(f"baseline: expected 'READY <port>', got {line!r}")
    port = int(line.split()[1])
    wait_until("baseline processes", 5, lambda: len(descendants([p.pid])) >= nprocs)
    time.sleep(0.3)
    return Server("baseline", port, [p], [p])


def read_line_with_deadline(stream, seconds):
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    buf = b""
    end = time.monotonic() + seconds
    while b"\n" not in buf and time.monotonic() < end:
        if sel.select(max(0.0, end - time.monotonic())):
            chunk = os.read(stream.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
    sel.close()
    return buf.decode(errors="replace").strip()


def stop_server(procs, srv):
    for p in srv.procs:
        procs.stop(p)
    if srv.run_dir:
        shutil.rmtree(srv.run_dir, ignore_errors=True)


# ---- running the generator --------------------------------------------------------

def gen_argv(a, sc, port, conns=None, offset=0, src="1-1"):
    argv = [os.path.join(a.build, "bench/gen/confab-bench"), "--url", f"ws://127.0.0.1:{port}/ws",
            "--secret", SECRET, "--conns", str(conns or sc["conns"]), "--rooms", str(sc["rooms"]),
            "--index-offset", str(offset), "--src-ips", src, "--json"]
    if "rates" in sc:
        argv += ["--publishers", str(sc["publishers"]), "--rate", ",".join(map(str, sc["rates"])),
                 "--step-seconds", str(sc["step"]), "--drain-seconds", str(sc["drain"])]
        if "stop_p99_ms" in sc:
            argv += ["--stop-p99-ms", str(sc["stop_p99_ms"]), "--stop-loss", str(sc["stop_loss"])]
    if "hold" in sc:
        argv += ["--hold", str(sc["hold"])]
    if "inflight" in sc:
        argv += ["--inflight", str(sc["inflight"]), "--connect-rate", "0"]
    if sc.get("no_join"):
        argv += ["--no-join"]
    # the ramps: a step the generator alone failed (one stall of the VM at
    # any rate) runs once more before the ramp stops (bench/gen/step.h)
    if sc.get("rerun_late"):
        argv += ["--rerun-late-steps"]
    return argv


def gen_timeout(sc):
    # a ramp may run each rate twice (--rerun-late-steps)
    runs = 2 if sc.get("rerun_late") else 1
    steps = runs * len(sc.get("rates", [])) * (sc.get("step", 0) + sc.get("drain", 0))
    return 120 + steps + sc.get("hold", 0)


def parse_gen(out, err_path):
    try:
        return json.loads(out)
    except ValueError:
        raise RuntimeError(f"confab-bench printed no JSON result (stderr: {err_path})")


def run_publish(a, procs, srv, sc, logdir):
    """fanout, rooms, steady: one generator process."""
    err_path = os.path.join(logdir, f"gen-{srv.kind}.log")
    roots = [p.pid for p in srv.roots + srv.extra_roots]  # confab's CPU includes Redis'
    cpu0, t0 = tree_cpu(roots), time.monotonic()
    argv = gen_argv(a, sc, srv.port)
    dump = os.path.join(logdir, f"dump-{srv.kind}.txt") if sc.get("dump") else None
    if dump:
        argv += ["--dump", dump]
    try:
        with open(err_path, "ab") as err:
            p = procs.start("confab-bench", argv, stdout=subprocess.PIPE, stderr=err)
            try:
                out, _ = p.communicate(timeout=gen_timeout(sc))
            finally:
                procs.stop(p)
        wall = time.monotonic() - t0
        if p.returncode != 0:
            raise RuntimeError(f"confab-bench exited with {p.returncode} (stderr: {err_path})")
        r = parse_gen(out, err_path)
        r["server_cpu"] = round((tree_cpu(roots) - cpu0) / wall, 3)
        if dump:
            r["tail"] = tail_figures(dump, sc)
        return r
    finally:
        if dump and os.path.exists(dump):
            os.remove(dump)  # ~15 MB per steady run


# The generator's histogram buckets (bench/gen/hist.h), to merge several
# generators' handshake times exactly.
BH_SUB_BITS = 7
BH_SUB = 1 << BH_SUB_BITS


def bh_lower(idx):
    if idx < BH_SUB:
        return idx
    e = (idx >> BH_SUB_BITS) + BH_SUB_BITS - 1
    return (BH_SUB + (idx & (BH_SUB - 1))) << (e - BH_SUB_BITS)


def bh_width(idx):
    return 1 if idx < BH_SUB else 1 << ((idx >> BH_SUB_BITS) - 1)


def bh_quantile(buckets, lo, hi, q):
    """bh_quantile() of hist.c over merged sparse buckets {index: count}."""
    count = sum(buckets.values())
    if not count:
        return 0
    if q >= 1.0:
        return hi
    rank = max(1, math.ceil(q * count))
    seen = 0
    for i in sorted(buckets):
        seen += buckets[i]
        if seen >= rank:
            return max(lo, min(hi, bh_lower(i) + bh_width(i) // 2))
    return hi


def merge_storms(results):
    """One storm's figures from generators that stormed together: handshakes
    per second over the span from the first start to the last handshake, and
    the quantiles of every handshake."""
    buckets, lo, hi = {}, None, 0
    for r in results:
        h = r["handshake_ns_buckets"]
        for i, c in h["b"]:
            buckets[i] = buckets.get(i, 0) + c
        if h["b"]:
            lo = h["min"] if lo is None else min(lo, h["min"])
            hi = max(hi, h["max"])
    lo = lo or 0
    span = (max(r["t_last_handshake_ns"] for r in results)
            - min(r["t_start_ns"] for r in results)) / 1e9
    connected = sum(r["connected"] for r in results)
    out = {"generators": results, "conns": sum(r["conns"] for r in results),
           "connected": connected,
           "connect_errors": sum(r["connect_errors"] for r in results),
           "joined": sum(r["joined"] for r in results),
           "join_errors": sum(r["join_errors"] for r in results),
           "closed": sum(r.get("closed", 0) for r in results),
           "handshakes_per_s": round(connected / span, 1) if span > 0 else 0,
           "handshake_ms": {k: round(bh_quantile(buckets, lo, hi, q) / 1e6, 3)
                            for k, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99),
                                         ("p999", 0.999), ("max", 1.0))},
           # over the storm alone (a holding generator idles after it); the
           # busiest process says whether a generator was the limit
           "gen_cpu_total": max(r["gen_cpu_setup"] for r in results),
           "gen_cpu_sum": round(sum(r["gen_cpu_setup"] for r in results), 3),
           "start_skew_ms": round((max(r["t_start_ns"] for r in results)
                                   - min(r["t_start_ns"] for r in results)) / 1e6, 3),
           "storm_s": round(span, 4)}
    out["handshake_ms"]["count"] = sum(buckets.values())
    return out


# Generators that started further apart than this did not storm together.
STORM_SKEW_MS = 50


def run_storm(a, procs, srv, sc, logdir):
    """storm, stormjoin: sc["gen_procs"] generators of an equal share of the
    connections and of the in-flight bound, started at the same instant. They
    hold their connections once all are set up (READY), and the server's CPU
    is sampled then: the storm's, without the closes that follow."""
    n = sc["gen_procs"]
    roots = [p.pid for p in srv.roots + srv.extra_roots]  # confab's CPU includes Redis'
    start_at = int((time.monotonic() + 1.0) * 1e9)  # the generators' CLOCK_MONOTONIC
    gens, results = [], []
    shares = [sc["conns"] // n + (k < sc["conns"] % n) for k in range(n)]
    try:
        for k in range(n):
            argv = gen_argv(a, dict(sc, inflight=max(1, sc["inflight"] // n), hold=3600),
                            srv.port, shares[k], sum(shares[:k]), f"{1 + 50 * k}-{50 + 50 * k}")
            gens.append(GenProc(procs, f"confab-bench-{k}", argv + ["--start-at", str(start_at)],
                                os.path.join(logdir, f"gen-{srv.kind}-{k}.log")))
        # from the start: the server's idle work before it is not the storm's
        time.sleep(max(0.0, start_at / 1e9 - 0.005 - time.monotonic()))
        cpu0, busy0, wall0 = tree_cpu(roots), machine_cpu(), time.monotonic()
        for g in gens:
            g.wait_ready(120)
        cpu, busy1, wall = tree_cpu(roots) - cpu0, machine_cpu(), time.monotonic() - wall0
        for g in gens:
            results.append(g.result(0))  # SIGTERM: it reports and exits
    finally:
        for g in gens:
            if g.p.poll() is None:
                procs.stop(g.p)
    for k, (g, r) in enumerate(zip(gens, results)):
        if g.p.returncode != 0:
            raise RuntimeError(f"generator {k} exited with {g.p.returncode} (log: {g.err_path})")
        if r["connected"] + r["connect_errors"] != r["conns"]:
            raise RuntimeError(f"generator {k} settled {r['connected'] + r['connect_errors']} of "
                               f"its {r['conns']} connections (log: {g.err_path})")
    r = merge_storms(results)
    if r["start_skew_ms"] > STORM_SKEW_MS:
        raise RuntimeError(f"the generators started {r['start_skew_ms']:.0f} ms apart (over "
                           f"{STORM_SKEW_MS} ms): the machine was too busy to start them together")
    # every CPU's busy share over the storm (/proc/stat: softirqs, other
    # processes and time the hypervisor took count too), which says whether
    # the machine, not either server, set handshakes/s
    r["machine_busy"] = (round((busy1[0] - busy0[0]) / (busy1[1] - busy0[1]), 3)
                         if busy1[1] > busy0[1] else None)
    # /proc/stat counts in clock ticks (10 ms): over a storm of a tenth of a
    # second each CPU's share may be off by about a tick, ~4 % of it here
    r["machine_busy_err"] = (round(os.cpu_count() / (busy1[1] - busy0[1]), 3)
                             if busy1[1] > busy0[1] else None)
    r["server_cpu_s"] = round(cpu, 4)
    r["server_cpu_us_per_handshake"] = (round(cpu / r["connected"] * 1e6, 1)
                                        if r["connected"] else None)
    # over the window the CPU was read in (to READY: a stormjoin's joins
    # too), not over storm_s, which ends at the last 101
    r["server_cpu"] = round(cpu / wall, 3) if wall > 0 else None
    return r


def tail_figures(dump, sc):
    """Where the step's tail comes from (scripts/tailstat.py): the p99 of each
    message's first delivery and of the spread to its last member, and the
    stalls (deliveries over 2 ms grouped by send time). Extra figures: a
    failure here costs them, not the run."""
    try:
        t = summarize(dump)
    except Exception as e:  # noqa: BLE001 (whatever it is, the run's figures stand)
        say(f"cannot read the generator's dump {dump}: {e}")
        return {}
    if not t["deliveries"]:
        return {}
    return {"first_p99_ms": t["first"]["p99"], "spread_p99_ms": t["spread"]["p99"],
            "stalls_per_s": round(len(t["stalls"]) / sc["step"], 2),
            "stalled_pct": round(100 * t["stalled"] / t["deliveries"], 3)}


class GenProc:
    """A generator process whose stdout (the JSON result) and stderr (READY,
    progress) are read by threads, so that several can run at once."""

    def __init__(self, procs, name, argv, err_path):
        self.procs, self.err_path = procs, err_path
        self.p = procs.start(name, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out, self.joined = b"", None
        self.ready = threading.Event()
        self.threads = [threading.Thread(target=self._read_out, daemon=True),
                        threading.Thread(target=self._read_err, daemon=True)]
        for t in self.threads:
            t.start()

    def _read_out(self):
        self.out = self.p.stdout.read()

    def _read_err(self):
        with open(self.err_path, "ab") as err:
            for line in self.p.stderr:
                err.write(line)
                if line.startswith(b"READY "):
                    self.joined = int(line.split()[1])
                    self.ready.set()
        self.ready.set()  # exited: whoever waits stops waiting

    def wait_ready(self, seconds):
        if not self.ready.wait(seconds) or self.joined is None:
            raise RuntimeError(f"confab-bench did not print READY (exit status "
                               f"{self.p.poll()}, stderr: {self.err_path})")

    def result(self, timeout):
        """Waits for the report (or stops the process after timeout seconds)."""
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        self.procs.stop(self.p)  # SIGTERM: a holding generator reports and exits
        for t in self.threads:
            t.join(10)
        return parse_gen(self.out, self.err_path)


# Memory is sampled once the connections have been idle this long, for both
# servers: what an idle server holds, not the tail of the connect burst
# (confab hands freed memory back after 1 s of quiet, common/memtrim.h).
IDLE_SETTLE_S = 3


def sample_idle(roots):
    return {"mem": tree_mem(roots), "kernel_tcp": sockstat_tcp_bytes(),
            "slab": meminfo_slab_bytes()}


def run_idle(a, procs, srv, sc, logdir):
    """Two generators of conns/2 each, the second started once the first is
    READY; memory is sampled after each, so besides the cost per connection
    from start-up (the target) the report has the marginal cost of the second
    half, free of fixed costs that the first connections bring."""
    roots = [p.pid for p in srv.roots]
    extra = [p.pid for p in srv.extra_roots]
    s0 = sample_idle(roots)
    redis0 = tree_mem(extra)
    half = sc["conns"] // 2
    setup_s = 120
    first = GenProc(procs, "confab-bench-0",
                    gen_argv(a, dict(sc, hold=sc["hold"] + 3600), srv.port, half, 0, "1-50"),
                    os.path.join(logdir, f"gen-{srv.kind}-0.log"))
    second = None
    try:
        first.wait_ready(setup_s)
        time.sleep(IDLE_SETTLE_S)
        s1 = sample_idle(roots)
        second = GenProc(procs, "confab-bench-1",
                         gen_argv(a, sc, srv.port, sc["conns"] - half, half, "101-150"),
                         os.path.join(logdir, f"gen-{srv.kind}-1.log"))
        second.wait_ready(setup_s)
        time.sleep(IDLE_SETTLE_S)
        s2 = sample_idle(roots)
        redis2 = tree_mem(extra)
        r2 = second.result(sc["hold"] + 30)
    finally:
        if second and second.p.poll() is None:
            procs.stop(second.p)
        r1 = first.result(0)
    results = [r1, r2]
    n1, n = first.joined, first.joined + second.joined
    r = {"generators": results, "connected": sum(x["connected"] for x in results),
         "joined": n, "connect_errors": sum(x["connect_errors"] for x in results),
         "gen_cpu_total": max(x["gen_cpu_total"] for x in results)}
    base, mid, now = srv.idle_mem, s1["mem"], s2["mem"]

    def total(mem, k, ref=None):
        # a process missing from ref (a restarted worker) counts whole
        return sum(m[k] - (ref.get(pid, (0, 0))[k] if ref is not None else 0)
                   for pid, m in mem.items())
    r.update({
        "processes": len(now),
        "rss_idle": total(base, 0), "rss_half": total(mid, 0), "rss_held": total(now, 0),
        "rss_per_conn": round(total(now, 0, base) / max(1, n), 1),
        "private_per_conn": round(total(now, 1, base) / max(1, n), 1),
        "rss_marginal_per_conn": round((total(now, 0) - total(mid, 0)) / max(1, n - n1), 1),
        "private_marginal_per_conn": round((total(now, 1) - total(mid, 1)) / max(1, n - n1), 1),
        "per_process": {str(pid): {"rss": m[0], "private": m[1],
                                   "rss_idle": base.get(pid, (0, 0))[0]} for pid, m in now.items()},
        "kernel_tcp_before": s0["kernel_tcp"], "kernel_tcp_held": s2["kernel_tcp"],
        # idle sockets hold next to no buffers: the machine-wide count then
        # moves by the noise of other sockets, and can drop below its start
        "kernel_per_conn": max(0.0, round((s2["kernel_tcp"] - s0["kernel_tcp"]) / max(1, n), 1)),
        "slab_before": s0["slab"], "slab_held": s2["slab"],
        "slab_per_conn": round((s2["slab"] - s0["slab"]) / max(1, n), 1),
        # presence keys (a sorted-set entry, a hash field and a count a
        # member): state confab keeps per connection outside its processes
        "redis_rss_per_conn": (round(total(redis2, 0, redis0) / max(1, n), 1)
                               if extra else None),
    })
    return r


def run_one(a, procs, name, sc, kind, logdir):
    """One scenario against one server: start it, load it, stop it."""
    t0 = time.monotonic()
    srv = None
    try:
        if kind == "confab":
            srv = start_confab(a, procs, sc.get("gateway_workers", a.gateway_workers), logdir)
        else:
            srv = start_baseline(a, procs, sc.get("baseline_procs", 1), logdir)
        run = (run_idle if name == "idle" else run_storm if sc.get("gen_procs")
               else run_publish)
        steal0, t1 = steal_seconds(), time.monotonic()
        r = run(a, procs, srv, sc, logdir)
        # the share of a CPU the host took meanwhile: what says whether a
        # run's latency was the server's or the VM's ("Reading the tables")
        span = time.monotonic() - t1
        if span > 0:
            r["steal"] = round((steal_seconds() - steal0) / span, 3)
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        say(f"{name} against {kind}: {e}")
        r = {"error": str(e)}
    finally:
        if srv:
            stop_server(procs, srv)
    r["wall_s"] = round(time.monotonic() - t0, 1)
    return r


# ---- main ----------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(description="confab benchmarks against bench/baseline "
                                            "(docs/benchmarks.md)")
    p.add_argument("--build", default="build", help="build directory (default: build)")
    p.add_argument("--scenarios", default=",".join(ALL_SCENARIOS),
                   help="comma list of " + ",".join(ALL_SCENARIOS))
    p.add_argument("--repeat", type=int, default=1, help="runs of each scenario; medians")
    p.add_argument("--quick", action="store_true", help="smaller and shorter: a smoke run")
    p.add_argument("--out", default="bench-results", help="directory of the reports")
    # One of each: the generator takes about one of this machine's two cores,
    # and a second process of either kind mostly adds wake-ups per message
    # (docs/benchmarks.md, the options table under "Running it").
    p.add_argument("--gateway-workers", type=int, default=1,
                   help="confab GATEWAY_WORKERS outside the idle scenario (default 1)")
    p.add_argument("--brokers", type=int, default=1, help="confab BROKERS (default 1)")
    p.add_argument("--confab-env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for confab (repeatable)")
    p.add_argument("--update-docs", action="store_true",
                   help="also write the tables into docs/benchmarks.md")
    a = p.parse_args(argv)
    a.build = os.path.abspath(os.path.join(ROOT, a.build) if not os.path.isabs(a.build)
                              else a.build)
    a.scenarios = [s for s in a.scenarios.split(",") if s]
    bad = [s for s in a.scenarios if s not in ALL_SCENARIOS]
    if bad or not a.scenarios or a.repeat < 1:
        p.error(f"unknown scenario(s) {bad}" if bad else "nothing to run")
    return a


def check_binaries(a):
    need = ["gateway/confab-gateway", "broker/confab-broker", "bench/gen/confab-bench",
            "bench/baseline/confab-baseline", "bench/hop/confab-hop"]
    missing = [n for n in need if not os.access(os.path.join(a.build, n), os.X_OK)]
    if missing:
        raise SystemExit(f"bench: missing in {a.build}: {', '.join(missing)} (build first: make)")
    if not shutil.which("redis-server"):
        raise SystemExit("bench: redis-server is not installed (make deps)")


def hop_cost(a):
    """What one hand-over between two processes costs here (bench/hop/hop.c):
    confab's messages make four more than the baseline's, so this is what
    the steady scenario's latency ratio is made of. None if it failed."""
    try:
        out = subprocess.run([os.path.join(a.build, "bench/hop/confab-hop")], capture_output=True,
                             text=True, timeout=60, check=True).stdout
        return json.loads(out)
    except (OSError, subprocess.SubprocessError, ValueError) as e:
        say(f"confab-hop failed ({e}); the report goes without the hand-over cost")
        return None


def main(argv):
    a = parse_args(argv)
    check_binaries(a)
    scs = scenarios(a.quick)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = os.path.join(ROOT, a.out) if not os.path.isabs(a.out) else a.out
    logdir = os.path.join(out_dir, f"{stamp}-logs")
    os.makedirs(logdir, exist_ok=True)
    meta = {"started": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "command": "scripts/bench.py " + " ".join(argv), "machine": machine(),
            "hop": hop_cost(a),
            "quick": a.quick, "repeat": a.repeat, "scenarios": {n: scs[n] for n in a.scenarios}}
    procs = Procs()

    def on_signal(sig, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    results = {}
    steal0, t0 = steal_seconds(), time.monotonic()
    try:
        for name in a.scenarios:
            results[name] = {"confab": [], "baseline": []}
            runs = a.repeat * scs[name].get("runs_per_repeat", 1)
            for i in range(runs):
                # alternated, so that warm-up or drift favours neither
                for kind in ("baseline", "confab") if i % 2 == 0 else ("confab", "baseline"):
                    say(f"{name} ({i + 1}/{runs}) against {kind}")
                    r = run_one(a, procs, name, scs[name], kind, logdir)
                    results[name][kind].append(r)
                    say(f"{name} against {kind}: {json.dumps(figures(name, r))}")
    except KeyboardInterrupt:
        say("interrupted: reporting what ran")
    finally:
        procs.stop_all()
    meta["steal"] = round((steal_seconds() - steal0) / max(1e-9, time.monotonic() - t0), 3)
    results = {n: r for n, r in results.items() if r["confab"] and r["baseline"]}
    md = report(a, meta, scs, results)
    base = os.path.join(out_dir, stamp)
    with open(base + ".md", "w") as f:
        f.write(md)
    with open(base + ".json", "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    print(md)
    say(f"report: {base}.md, raw figures: {base}.json, logs: {logdir}")
    if a.update_docs:
        update_docs(md)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
