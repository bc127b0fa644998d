"""benchlib: what bench/backends, bench/compare's measuring core and bench/scale share.

Processes and their CPU time from /proc, the whole machine's CPU time from
/proc/stat, servers started pinned in a session of their own, echo-bench runs with
the CPU sampled over the measured window, the load cases in both regimes
(unsaturated: today's one-message-at-a-time load; saturated: pipelined so that the
server is kept at least 90 % busy), and the statistics every report prints the same
way: a median with its spread (min-max over the runs), and a ratio that says "tie"
when the two spreads overlap.

Only the standard library; Linux only. Loopback only.
"""
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import time

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SATURATED_BUSY = 0.90  # a "saturated" row whose server was less busy is flagged

# ------------------------------------------------------------------ load cases
# name -> (title, echo-bench arguments, unit). The saturated regime of a case adds
# SATURATE[name]: messages in flight per connection (--depth), since one echo-bench
# thread on its own CPU costs about what the server does per message and so, one
# message at a time, keeps the server well under busy.
CASES = {
    "pp64-c1": ("ping-pong 64 B, 1 conn", ["--mode", "pingpong", "-s", "64", "-c", "1"], "msgs"),
    "pp64-c100": ("ping-pong 64 B, 100 conns", ["--mode", "pingpong", "-s", "64", "-c", "100"], "msgs"),
    "pp64-c1000": ("ping-pong 64 B, 1000 conns", ["--mode", "pingpong", "-s", "64", "-c", "1000"], "msgs"),
    "pp512-c1000": ("ping-pong 512 B, 1000 conns", ["--mode", "pingpong", "-s", "512", "-c", "1000"], "msgs"),
    "stream16k-c16": ("stream 16 KiB, 16 conns", ["--mode", "stream", "-s", "16k", "-c", "16"], "blocks"),
    "stream16k-c1000": ("stream 16 KiB, 1000 conns", ["--mode", "stream", "-s", "16k", "-c", "1000"], "blocks"),
}
# The saturating form of the ping-pong cases (checked by the busy share of every run:
# see SATURATED_BUSY). A stream never waits for its echoes, so its one form is the
# saturated one already (STREAMS).
SATURATE = {
    "pp64-c100": ["--depth", "8"],
    "pp512-c1000": ["--depth", "4"],
}
STREAMS = {"stream16k-c16", "stream16k-c1000"}


def regimes_of(name):
    """The regimes a case runs in: streams only saturated, the ping-pong cases with a
    SATURATE form in both, the others unsaturated."""
    if name in STREAMS:
        return ["saturated"]
    return ["unsaturated", "saturated"] if name in SATURATE else ["unsaturated"]


def case_args(name, saturated=False):
    args = list(CASES[name][1])
    if saturated:
        args += SATURATE.get(name, [])
    return args


def regime(saturated):
    return "saturated" if saturated else "unsaturated"


# ------------------------------------------------------------------ /proc
def proc_stat(pid):
    """dict of one process's /proc/PID/stat fields we use, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return {"ppid": int(fields[1]), "sid": int(fields[3]),
            "cpu": sum(int(x) for x in fields[11:15]),  # utime stime cutime cstime
            "user": int(fields[11]) + int(fields[13]), "sys": int(fields[12]) + int(fields[14]),
            "rss": int(fields[21])}


def all_procs():
    procs = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st is not None:
                procs[int(entry)] = st
    return procs


def tree(root, procs=None):
    """root and its descendants: {pid: stat}."""
    procs = procs if procs is not None else all_procs()
    out = {root: procs[root]} if root in procs else {}
    grew = True
    while grew:
        grew = False
        for pid, st in procs.items():
            if pid not in out and st["ppid"] in out:
                out[pid] = st
                grew = True
    return out


def tree_cpu(root):
    """(user, system) seconds of root's tree, reaped children included."""
    t = tree(root)
    return (sum(s["user"] for s in t.values()) / TICK, sum(s["sys"] for s in t.values()) / TICK)


def tree_rss(root):
    return sum(s["rss"] for s in tree(root).values()) * PAGE


def machine_cpu():
    """(busy, all) seconds of every CPU together since boot, from /proc/stat: busy is
    everything but idle and iowait (softirq and kernel threads included)."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    total = sum(vals[:8])  # guest time is already in user
    return (total - vals[3] - vals[4]) / TICK, total / TICK


# ------------------------------------------------------------------ servers
def port_open(port, timeout=0.2):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server pinned to cpus in a session of its own; PORT in cmd is replaced by a
    fresh port. Started by `with`, and stopped (its whole session) on leaving it."""

    def __init__(self, cmd, cpus, log=None, env=None):
        self.port = free_port()
        self.cmd = [w.replace("PORT", str(self.port)) for w in cmd]
        self.cpus = str(cpus)
        self.log = log
        self.env = env

    def __enter__(self):
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(["taskset", "-c", self.cpus, *self.cmd],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                         start_new_session=True, env=self.env)
        finally:
            if self.log:
                out.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited with status {self.proc.returncode}: {' '.join(self.cmd)}")
            if port_open(self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"did not accept connections within 10 s: {' '.join(self.cmd)}")

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def workers(self):
        """The server's processes that are not its supervisor (echod -w N: the workers)."""
        return [p for p in tree(self.pid) if p != self.pid]

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=3)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        for pid, st in all_procs().items():  # anything left in its session
            if st["sid"] == self.proc.pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def __exit__(self, *exc):
        self.stop()


# ------------------------------------------------------------------ echo-bench
def bench_cmd(build, args, port, cpus, threads=1, seconds=3, warmup=0.5):
    return (["taskset", "-c", str(cpus), f"{build}/echo-bench", "-t", str(threads),
             "--cpu", str(cpus), "--json", "--warmup", f"{warmup}s", "-d", f"{seconds}s",
             *args, f"127.0.0.1:{port}"])


def measure(server, benches, seconds, warmup, cpu_of=None):
    """One timed run: the echo-bench commands `benches` at once against `server`. The
    server's CPU (of its tree, or of the pids cpu_of() gives) and the machine's are
    sampled from warmup + 0.25 s to 0.25 s before the end. Returns a dict: rate,
    per-message user/sys/total ns, busy (server CPU / wall), machine ns per
    message, p50, p99, errors, fairness, open, json (the first echo-bench's)."""
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for cmd in benches]
    pids = cpu_of or (lambda: [server.pid])

    def cpu():
        u = s = 0.0
        for p in pids():
            uu, ss = tree_cpu(p)
            u += uu
            s += ss
        return u, s

    try:
        time.sleep(warmup + 0.25)
        u0, s0 = cpu()
        m0 = machine_cpu()[0]
        t0 = time.monotonic()
        time.sleep(max(seconds - 0.5, 0.2))
        u1, s1 = cpu()
        m1 = machine_cpu()[0]
        t1 = time.monotonic()
        outs = [p.communicate(timeout=seconds + warmup + 60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    results = []
    for p, (out, err) in zip(procs, outs):
        try:
            results.append(json.loads(out))
        except ValueError:
            raise RuntimeError(f"echo-bench exit {p.returncode}: {err.strip()[:300]}")
    rate = sum(r["requests_per_sec"] for r in results)
    wall = t1 - t0
    msgs = rate * wall
    first = results[0]
    fair = first.get("fairness") or {}
    r = {
        "rate": rate,
        "mbps": sum(r.get("transfer_mb_per_sec", 0) for r in results),
        "user_ns": (u1 - u0) / msgs * 1e9 if msgs else None,
        "sys_ns": (s1 - s0) / msgs * 1e9 if msgs else None,
        "busy": (u1 - u0 + s1 - s0) / wall,
        "machine_ns": (m1 - m0) / msgs * 1e9 if msgs else None,
        # A run that echoed nothing has no latency (echo-bench prints 0 for it).
        "p50": (first.get("latency_us") or {}).get("p50") if first.get("requests") else None,
        "p99": (first.get("latency_us") or {}).get("p99") if first.get("requests") else None,
        "errors": sum(r["errors"]["total"] for r in results),
        "complete": all((r.get("open") or {}).get("complete", True) for r in results),
        "fair": fair, "open": first.get("open") or {},
        "conns": first.get("connections"),
        "served": served(first),
        "json": first,
    }
    r["cpu_ns"] = None if r["user_ns"] is None else r["user_ns"] + r["sys_ns"]
    return r


def served(res):
    """(served, of): of the connections open all through the window, how many got
    at least one echo in it (echo-bench's fairness: connections, unserved), or None."""
    fair = res.get("fairness") or {}
    conns = fair.get("connections")
    if conns is None or "unserved" not in fair:
        return None
    return conns - (fair.get("unserved") or 0), conns


# ------------------------------------------------------------------ statistics
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def lohi(xs):
    xs = [x for x in xs if x is not None]
    return (min(xs), max(xs)) if xs else (None, None)


def fmt(x, digits=0):
    if x is None:
        return "-"
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def with_spread(xs, digits=0, scale=1.0):
    """'median (min–max)' of the runs."""
    xs = [x * scale for x in xs if x is not None]
    if not xs:
        return "-"
    if len(xs) == 1:
        return fmt(xs[0], digits)
    lo, hi = lohi(xs)
    return f"{fmt(med(xs), digits)} ({fmt(lo, digits)}–{fmt(hi, digits)})"


def ratio(xs, refs):
    """'0.93×' of the medians, '0.93× (tie)' when the runs' ranges overlap, and no
    verdict where a side has a single run."""
    a, b = med(xs), med(refs)
    if a is None or not b:
        return "-"
    if min(len([x for x in xs if x is not None]), len([x for x in refs if x is not None])) < 2:
        return f"{a / b:.2f}× (one run: no verdict)"
    (alo, ahi), (blo, bhi) = lohi(xs), lohi(refs)
    tie = alo <= bhi and blo <= ahi
    return f"{a / b:.2f}× (tie)" if tie else f"{a / b:.2f}×"


def busy_cell(busies, saturated):
    """The server's busy share: median (min–max), flagged when a saturated row's
    median is under SATURATED_BUSY."""
    cell = with_spread(busies, 0, 100) + " %"
    if saturated and med(busies) is not None and med(busies) < SATURATED_BUSY:
        cell += " **not saturated**"
    return cell


def served_cell(runs):
    """'' when every run served all its connections; else 'served S of N' (worst run)."""
    worst = None
    for r in runs:
        s = r.get("served")
        if s and s[0] < s[1] and (worst is None or s[0] < worst[0]):
            worst = s
    return f"served {worst[0]} of {worst[1]}" if worst else ""


# ------------------------------------------------------------------ the report's header
def revision():
    """The commit measured, marked when the tree has changes."""
    try:
        rev = subprocess.run(["git", "-C", TOP, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        # The reports bench/all writes one after the other are not changes to what is
        # measured: docs/ is left out.
        dirty = subprocess.run(["git", "-C", TOP, "status", "--porcelain", "--untracked-files=no",
                                "--", ".", ":(exclude)docs"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (rev or "unknown") + (" with uncommitted changes" if dirty else "")


def machine():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"Linux {platform.release()}, {os.cpu_count()} CPUs ({model})"


def else_running_line(text):
    """The operator's statement of what else ran on the machine (--else-running)."""
    return f"Anything else running during the measurements: {text or 'not stated'}."


def echod_features(build):
    """echod -V's lines as a dict (backends: ..., offload: ...)."""
    try:
        out = subprocess.run([f"{build}/echod", "-V"], capture_output=True, text=True, timeout=10)
    except OSError:
        return {}
    feats = {}
    for line in (out.stdout + out.stderr).splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            feats[k.strip()] = v.strip()
    return feats
