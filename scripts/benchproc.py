"""benchproc: what bench.py reads of /proc about the processes under test and
the machine: their trees, memory and CPU, and the kernel's socket memory."""

import os


def descendants(pids):
    """pids and every process below them."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], list(pids)
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def proc_mem(pid):
    """(VmRSS, Private_Clean + Private_Dirty) in bytes, or None."""
    try:
        rss = priv = 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith(("Private_Clean:", "Private_Dirty:")):
                    priv += int(line.split()[1]) * 1024
        return rss, priv
    except (OSError, ValueError):
        return None


def tree_mem(roots):
    """{pid: (rss, private)} over the process trees under roots."""
    out = {}
    for pid in descendants(roots):
        m = proc_mem(pid)
        if m:
            out[pid] = m
    return out


def proc_cpu(pid):
    """CPU seconds of one process, every thread: the scheduler's own count in
    nanoseconds (schedstat), where /proc/PID/stat has clock ticks (10 ms
    here, too coarse for a storm's tenth of a second)."""
    try:
        total = 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except FileNotFoundError:
                pass  # a thread that ended meanwhile (and its CPU with it: none here has)
        return total / 1e9
    except (OSError, IndexError, ValueError):
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def all_cpus_ticks():
    """/proc/stat's first line: user, nice, system, idle, iowait, irq,
    softirq, steal clock ticks, all CPUs summed."""
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:9]]


def machine_cpu():
    """(busy, total) clock ticks of all CPUs: busy is all but idle and
    iowait, so steal and softirq count as busy."""
    v = all_cpus_ticks()
    return sum(v) - v[3] - v[4], sum(v)


def steal_seconds():
    """CPU time the hypervisor gave to others while this VM's CPUs wanted to
    run, all CPUs summed (steal), in seconds."""
    v = all_cpus_ticks()
    return v[7] / os.sysconf("SC_CLK_TCK") if len(v) > 7 else 0.0


def tree_cpu(roots):
    """CPU seconds (user + system) of the live processes under roots."""
    return sum(proc_cpu(pid) for pid in descendants(roots))


def meminfo_slab_bytes():
    """Kernel slab memory, machine-wide (/proc/meminfo Slab): socket structs live there."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Slab:"):
                return int(line.split()[1]) * 1024
    return 0


def sockstat_tcp_bytes():
    """Kernel TCP buffer memory, machine-wide (/proc/net/sockstat, pages * 4096)."""
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                w = line.split()
                return int(w[w.index("mem") + 1]) * 4096
    return 0
