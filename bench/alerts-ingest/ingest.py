#!/usr/bin/env python3
"""The helper of bench/alerts-ingest/run: makes the alerts, sends them to one
server, measures it and reports. Python 3 standard library only.

    ingest.py free-port
    ingest.py wait-ready URL [--token TOKEN] [--timeout S]
    ingest.py measure --system switchboard|alertmanager --url URL --pid PID ...
    ingest.py report RESULTS.jsonl --command "..."

`measure` does one run against a freshly started server (see `run`):

1. its resident memory at rest;
2. pass "new": N alerts it has never seen, in batches of B, from C senders
   at once (each a thread with its own keep-alive connection), every body
   encoded before the clock starts; alerts/s = N / the time from the first
   request sent to the last answer received;
3. one second later: VmRSS and VmHWM with the N alerts held;
4. checks that the server holds exactly N firing alerts in the expected
   number of aggregation groups (a benchmark that silently drops alerts is
   a defect): Switchboard's `GET /api/v1/alerts/groups` and, when given,
   its SQLite database; Alertmanager's metrics (`alertmanager_alerts`,
   `alertmanager_dispatcher_aggregation_groups`) and, after the last pass,
   `GET /api/v2/alerts/groups`;
5. pass "re-sent": the same N alerts again, with the same start and a later
   end, as Prometheus re-sends firing alerts every evaluation; then the
   same checks and memory figures.

The clock stops at the last answer. Switchboard answers a request once its
alerts are stored and grouped. Alertmanager answers once they are in its
in-memory store, and its dispatcher (and inhibitor) take them from there
through channels 200 deep that the store waits on when full: at the last
answer at most 200 alerts remain to be grouped, well under a millisecond
of work. (Polling its metrics for the moment they are all grouped is no
better: with 100,000 alerts held one scrape of /metrics takes about 0.4 s,
as it counts them.) The checks then confirm that its dispatcher took every
alert. Each pass's peak memory (VmHWM) is reset first
(`/proc/PID/clear_refs`), so that it is that pass's own.

It appends one JSON line per run to --out and prints a summary line.
"""

import argparse
import http.client
import json
import os
import signal
import socket
import sqlite3
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timedelta, timezone

# The alerts: N distinct label sets. alertname from 8, cluster from 10,
# instance unique; severity and team vary independently of the two
# group_by labels, so every (alertname, cluster) pair has alerts on each of
# the three routes.
ALERTNAMES = ["HighCPU", "DiskFull", "MemoryPressure", "NodeDown", "HighLatency", "ErrorRate",
              "BackupLate", "CertExpiring"]
CLUSTERS = ["c%02d" % i for i in range(10)]
TEAMS = ["db", "storage", "web", "infra", "payments"]
SEVERITIES = ["critical"] + ["warning"] * 6 + ["info"] * 3


def labels_of(i):
    return {
        "alertname": ALERTNAMES[i % len(ALERTNAMES)],
        "cluster": CLUSTERS[(i // len(ALERTNAMES)) % len(CLUSTERS)],
        "instance": "host-%06d:9100" % i,
        "job": "node",
        "severity": SEVERITIES[(i // 11) % len(SEVERITIES)],
        "team": TEAMS[(i // 3) % len(TEAMS)],
    }


def route_of(labels):
    """The route an alert takes in both configurations the script writes:
    the first child that matches, else the root (no `continue`)."""
    if labels["severity"] == "critical":
        return "pager"
    if labels["team"] in ("db", "storage"):
        return "db"
    return "ops"


def expected_groups(n):
    return len({(route_of(l), l["alertname"], l["cluster"]) for l in map(labels_of, range(n))})


def rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def encode_batches(n, batch, starts_at, ends_at):
    """The request bodies, Alertmanager's /api/v2/alerts array, as
    Prometheus sends it."""
    s, e = rfc3339(starts_at), rfc3339(ends_at)
    bodies = []
    for first in range(0, n, batch):
        alerts = []
        for i in range(first, min(first + batch, n)):
            l = labels_of(i)
            alerts.append({
                "labels": l,
                "annotations": {
                    "summary": "%s on %s" % (l["alertname"], l["instance"]),
                    "description": "%s has fired on %s in cluster %s for 5 minutes."
                                   % (l["alertname"], l["instance"], l["cluster"]),
                },
                "startsAt": s,
                "endsAt": e,
                "generatorURL": "http://prometheus-%s.example:9090/graph?g0.expr=up%%7Binstance"
                                "%%3D%%22%s%%22%%7D&g0.tab=1" % (l["cluster"], l["instance"]),
            })
        bodies.append(json.dumps(alerts, separators=(",", ":")).encode())
    return bodies


class Client:
    def __init__(self, url, token=None):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port or 80
        self.prefix = u.path.rstrip("/")
        self.headers = {"Authorization": "Bearer " + token} if token else {}

    def connect(self):
        c = http.client.HTTPConnection(self.host, self.port, timeout=600)
        c.connect()
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return c

    def request(self, method, path, body=None, conn=None):
        own = conn is None
        c = conn or self.connect()
        try:
            headers = dict(self.headers)
            if body is not None:
                headers["Content-Type"] = "application/json"
            c.request(method, self.prefix + path, body=body, headers=headers)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            if own:
                c.close()


def send_all(client, path, bodies, senders):
    """Sends every body, `senders` at a time; returns (start, end, answers),
    times from time.perf_counter()."""
    lock = threading.Lock()
    nxt = [0]
    answers = [None] * len(bodies)
    errors = []
    conns = [client.connect() for _ in range(senders)]
    start_gate = threading.Barrier(senders + 1)

    def worker(conn):
        start_gate.wait()
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= len(bodies) or errors:
                return
            try:
                status, data = client.request("POST", path, bodies[i], conn)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append("batch %d: %s" % (i, e))
                return
            if status != 200:
                errors.append("batch %d: HTTP %d: %s" % (i, status, data[:500]))
                return
            answers[i] = data

    threads = [threading.Thread(target=worker, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    start_gate.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    t1 = time.perf_counter()
    for c in conns:
        c.close()
    if errors:
        raise SystemExit("sending failed: " + "; ".join(errors[:3]))
    return t0, t1, answers


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0])  # KiB
    return out


def reset_peak(pid):
    """Resets VmHWM to the current VmRSS (Linux 4.0 and later), so that each
    pass's peak is its own."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
    except OSError as e:
        print("cannot reset the peak memory of %d (%s): peaks are since start" % (pid, e),
              file=sys.stderr)


def proc_cpu(pid):
    """CPU seconds of the process (all its threads) so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu(pid):
    """CPU seconds so far of the process's threads, summed by thread name
    (tokio-rt-worker, sqlx-sqlite-worker-0, ...; digits kept)."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                text = f.read()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def machine_busy():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / os.sysconf("SC_CLK_TCK")


def own_cpu():
    t = os.times()
    return t.user + t.system


class Meter:
    """The server's CPU, this helper's, and the rest of the machine's."""

    def __init__(self, pid):
        self.pid = pid
        self.threads0 = thread_cpu(pid)
        self.t0, self.s0, self.o0, self.b0 = time.monotonic(), proc_cpu(pid), own_cpu(), machine_busy()

    def stop(self):
        t, s, o, b = time.monotonic(), proc_cpu(self.pid), own_cpu(), machine_busy()
        threads = thread_cpu(self.pid)
        wall = max(t - self.t0, 1e-9)
        server, own = s - self.s0, o - self.o0
        by_thread = {k: round(v - self.threads0.get(k, 0.0), 3) for k, v in threads.items()
                     if v - self.threads0.get(k, 0.0) > 0}
        return {"server_cpu_s": server, "client_cpu_s": own,
                "others_cores": max(0.0, (b - self.b0) - server - own) / wall,
                "server_threads_cpu_s": by_thread}


def wait_quiet(pid, limit, longest):
    """Waits until the rest of the machine has used less than `limit` cores
    over half a second (at most `longest` seconds); returns the seconds
    waited, or None if it never was."""
    start = time.monotonic()
    while True:
        m = Meter(pid)
        time.sleep(0.5)
        if m.stop()["others_cores"] < limit:
            return time.monotonic() - start
        if time.monotonic() - start > longest:
            return None


def check_switchboard(client, n, groups_expected, db):
    status, data = client.request("GET", "/api/v1/alerts/groups")
    if status != 200:
        return "GET /api/v1/alerts/groups: HTTP %d" % status
    groups = json.loads(data)
    held = sum(g["alerts"] for g in groups)
    problems = []
    if len(groups) != groups_expected or held != n:
        problems.append("%d alerts in %d groups, expected %d in %d"
                        % (held, len(groups), n, groups_expected))
    if db:
        with sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30) as c:
            firing = c.execute("SELECT count(*) FROM alerts WHERE status = 'firing'").fetchone()[0]
        if firing != n:
            problems.append("%d firing alerts stored, expected %d" % (firing, n))
    return "; ".join(problems) or None


def am_metrics(client):
    """Alertmanager's own figures: alerts held (not resolved, in any state),
    aggregation groups, and alerts its dispatcher has taken from the store
    (`alertmanager_dispatcher_alert_processing_duration_seconds_count`,
    one per alert received, re-sent ones included)."""
    status, data = client.request("GET", "/metrics")
    if status != 200:
        raise SystemExit("GET /metrics: HTTP %d" % status)
    out = {"held": 0, "groups": None, "processed": None}
    for line in data.decode().splitlines():
        value = line.rsplit(" ", 1)[-1]
        if line.startswith("alertmanager_alerts{"):
            out["held"] += int(float(value))
        elif line.startswith("alertmanager_dispatcher_aggregation_groups "):
            out["groups"] = int(float(value))
        elif line.startswith("alertmanager_dispatcher_alert_processing_duration_seconds_count "):
            out["processed"] = int(float(value))
    return out


def check_alertmanager(client, n, groups_expected, processed, full):
    """Checks from the metrics (its dispatcher has taken every alert sent so
    far, `processed`); with `full`, also every group's alerts (a large
    answer: done once, after the memory figures)."""
    m = am_metrics(client)
    problems = []
    if m["processed"] is not None and m["processed"] != processed:
        problems.append("its dispatcher took %d alerts, expected %d" % (m["processed"], processed))
    if m["held"] != n or (m["groups"] is not None and m["groups"] != groups_expected):
        problems.append("%d alerts held in %s groups, expected %d in %d"
                        % (m["held"], m["groups"], n, groups_expected))
    if full:
        status, data = client.request("GET", "/api/v2/alerts/groups")
        if status != 200:
            return "GET /api/v2/alerts/groups: HTTP %d" % status
        groups = json.loads(data)
        in_groups = sum(len(g["alerts"]) for g in groups)
        if in_groups != n or len(groups) != groups_expected:
            problems.append("GET /api/v2/alerts/groups: %d alerts in %d groups, expected %d in %d"
                            % (in_groups, len(groups), n, groups_expected))
    return "; ".join(problems) or None


def measure(a):
    client = Client(a.url, a.token)
    path = "/api/v1/alerts" if a.system == "switchboard" else "/api/v2/alerts"
    groups_expected = expected_groups(a.alerts)
    rec = {"system": a.system, "run": a.run, "alerts": a.alerts, "batch": a.batch,
           "senders": a.senders, "groups": groups_expected,
           "idle_rss_kib": proc_status(a.pid)["VmRSS"], "passes": {}}

    def check(k, last):
        if a.system == "switchboard":
            return check_switchboard(client, a.alerts, groups_expected, a.db)
        return check_alertmanager(client, a.alerts, groups_expected, (k + 1) * a.alerts,
                                  full=last)

    starts = datetime.now(timezone.utc)
    problems = []
    names = ["new", "resent"][:a.passes]
    for k, name in enumerate(names):
        # Fresh times for each pass: the start stays (the alerts go on
        # firing), the end moves on, as Prometheus sends them.
        bodies = encode_batches(a.alerts, a.batch, starts,
                                datetime.now(timezone.utc) + timedelta(hours=1))
        if a.quiet_wait > 0:
            waited = wait_quiet(a.pid, 0.1, a.quiet_wait)
            if waited is None:
                print("  the machine stayed busy for %.0f s: measuring anyway" % a.quiet_wait,
                      file=sys.stderr, flush=True)
            elif waited > 1:
                print("  waited %.0f s for the machine to be quiet" % waited, flush=True)
        reset_peak(a.pid)
        meter = Meter(a.pid)
        t0, t1, answers = send_all(client, path, bodies, a.senders)
        usage = meter.stop()
        seconds = t1 - t0
        if a.system == "switchboard":
            firing = sum(json.loads(x)["firing"] for x in answers)
            if firing != a.alerts:
                problems.append("%s: the answers count %d firing, expected %d"
                                % (name, firing, a.alerts))
        time.sleep(a.settle)
        # Memory before the checks, whose answers (Alertmanager's lists
        # every alert) would add their own.
        mem = proc_status(a.pid)
        problem = check(k, last=(k == len(names) - 1))
        if problem:
            problems.append("%s: %s" % (name, problem))
        p = {"seconds": seconds, "alerts_per_s": a.alerts / seconds,
             "body_bytes": sum(len(b) for b in bodies), "requests": len(bodies),
             "rss_kib": mem["VmRSS"], "hwm_kib": mem["VmHWM"],
             "rss_anon_kib": mem.get("RssAnon"), "rss_file_kib": mem.get("RssFile")}
        p.update(usage)
        rec["passes"][name] = p
    rec["problems"] = problems
    with open(a.out, "a") as f:
        f.write(json.dumps(rec) + "\n")
    line = "%-12s run %d: " % (a.system, a.run)
    for name, p in rec["passes"].items():
        line += "%s %7.0f alerts/s (%.2f s, server CPU %.0f µs/alert, others %.2f cores); " % (
            name, p["alerts_per_s"], p["seconds"], 1e6 * p["server_cpu_s"] / a.alerts,
            p["others_cores"])
    first = next(iter(rec["passes"].values()))
    line += "RSS idle %.1f MiB, %d held %.1f MiB (%.1f anonymous), peak %.1f MiB" % (
        rec["idle_rss_kib"] / 1024, a.alerts, first["rss_kib"] / 1024,
        (first["rss_anon_kib"] or 0) / 1024,
        max(p["hwm_kib"] for p in rec["passes"].values()) / 1024)
    print(line, flush=True)
    for name, p in rec["passes"].items():
        threads = sorted(p["server_threads_cpu_s"].items(), key=lambda kv: -kv[1])
        print("  %s: server CPU by thread, cores over the pass: %s" % (name, ", ".join(
            "%s %.2f" % (k, v / p["seconds"]) for k, v in threads[:6])), flush=True)
    for p in problems:
        print("  PROBLEM: " + p, file=sys.stderr, flush=True)
    return 1 if problems else 0


def median(xs):
    xs = sorted(xs)
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2


def report(a):
    with open(a.results) as f:
        recs = [json.loads(line) for line in f if line.strip()]
    by = {}
    for r in recs:
        by.setdefault(r["run"], {})[r["system"]] = r
    systems = [s for s in ("switchboard", "alertmanager") if any(s in v for v in by.values())]
    first = recs[0]
    passes = list(first["passes"])
    mib = lambda k: "%.1f" % (k / 1024)  # noqa: E731

    print()
    print("Alerts ingest: %d distinct alerts, %d a request, %d senders at once; %d groups "
          "on 3 routes" % (first["alerts"], first["batch"], first["senders"], first["groups"]))
    print()
    head = ["run"]
    for s in systems:
        head.append("%s alerts/s, %s" % (NAMES[s], " / ".join(PASS_NAMES[p] for p in passes)))
    if len(systems) == 2:
        head.append("Switchboard / Alertmanager, %s" % " / ".join(PASS_NAMES[p] for p in passes))
    for s in systems:
        head.append("%s server CPU µs/alert" % NAMES[s])
    head.append("others, cores")
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    ratios = {p: [] for p in passes}
    for run in sorted(by):
        row = ["run %d" % run]
        for s in systems:
            r = by[run].get(s)
            row.append(" / ".join("%.0f" % r["passes"][p]["alerts_per_s"] for p in passes)
                       if r else "—")
        if len(systems) == 2:
            sb, am = by[run].get("switchboard"), by[run].get("alertmanager")
            if sb and am:
                cells = []
                for p in passes:
                    x = sb["passes"][p]["alerts_per_s"] / am["passes"][p]["alerts_per_s"]
                    ratios[p].append(x)
                    cells.append("%.2f" % x)
                row.append(" / ".join(cells))
            else:
                row.append("—")
        for s in systems:
            r = by[run].get(s)
            row.append(" / ".join("%.1f" % (1e6 * r["passes"][p]["server_cpu_s"] / r["alerts"])
                                  for p in passes) if r else "—")
        others = [p["others_cores"] for r in by[run].values() for p in r["passes"].values()]
        row.append("%.2f%s" % (max(others), " (busy: disturbed)" if max(others) >= 0.1 else ""))
        print("| " + " | ".join(row) + " |")
    print()
    print("Resident memory, MiB: at rest / with the %d alerts held (VmRSS, %.0f s after each "
          "pass: %s) / peak while sending (VmHWM)"
          % (first["alerts"], a.settle, " / ".join(PASS_NAMES[p] for p in passes)))
    print()
    print("| run | " + " | ".join(NAMES[s] for s in systems) + " |")
    print("|" + " --- |" * (len(systems) + 1))
    for run in sorted(by):
        row = ["run %d" % run]
        for s in systems:
            r = by[run].get(s)
            if not r:
                row.append("—")
                continue
            ps = list(r["passes"].values())
            row.append("%s / %s / %s" % (mib(r["idle_rss_kib"]),
                                         " / ".join(mib(p["rss_kib"]) for p in ps),
                                         mib(max(p["hwm_kib"] for p in ps))))
        print("| " + " | ".join(row) + " |")
    print()
    for s in systems:
        rates = {p: [by[r][s]["passes"][p]["alerts_per_s"] for r in by if s in by[r]]
                 for p in passes}
        print("%s: median %s alerts/s (%s)" % (
            NAMES[s], " / ".join("%.0f" % median(rates[p]) for p in passes),
            " / ".join(PASS_NAMES[p] for p in passes)))
    if len(systems) == 2 and ratios[passes[0]]:
        print("Switchboard / Alertmanager: %s (%s; range over runs)" % (
            " / ".join("%.2f–%.2f" % (min(ratios[p]), max(ratios[p])) for p in passes),
            " / ".join(PASS_NAMES[p] for p in passes)))
    bad = [(r["system"], r["run"], p) for r in recs for p in r["problems"]]
    for s, run, p in bad:
        print("PROBLEM: %s run %d: %s" % (NAMES[s], run, p))
    if a.command:
        print("command: %s" % a.command)
    return 1 if bad else 0


NAMES = {"switchboard": "Switchboard", "alertmanager": "Alertmanager"}
PASS_NAMES = {"new": "new", "resent": "re-sent"}


def free_port(_a):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])
    return 0


def wait_ready(a):
    client = Client(a.url, a.token)
    deadline = time.monotonic() + a.timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            status, _ = client.request("GET", a.path)
            if status == 200:
                return 0
            last = "HTTP %d" % status
        except OSError as e:
            last = str(e)
        time.sleep(0.05)
    print("%s%s not ready after %.0f s: %s" % (a.url, a.path, a.timeout, last), file=sys.stderr)
    return 1


def die_of_sigint(*_):
    """Ctrl-C: end as killed by SIGINT, not with an exit status, so that the
    calling script stops too (bash goes on after a child that seems to
    have handled SIGINT itself)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)


def main():
    signal.signal(signal.SIGINT, die_of_sigint)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("free-port")
    w = sub.add_parser("wait-ready")
    w.add_argument("url")
    w.add_argument("--path", default="/")
    w.add_argument("--token")
    w.add_argument("--timeout", type=float, default=60)
    m = sub.add_parser("measure")
    m.add_argument("--system", choices=["switchboard", "alertmanager"], required=True)
    m.add_argument("--url", required=True)
    m.add_argument("--pid", type=int, required=True)
    m.add_argument("--token")
    m.add_argument("--db", help="Switchboard's SQLite database, to count what it stored")
    m.add_argument("--alerts", type=int, default=100000)
    m.add_argument("--batch", type=int, default=1000)
    m.add_argument("--senders", type=int, default=4)
    m.add_argument("--passes", type=int, default=2, choices=[1, 2])
    m.add_argument("--settle", type=float, default=1.0)
    m.add_argument("--quiet-wait", type=float, default=120,
                   help="before each pass, wait up to this long for the rest of the machine to "
                        "use under 0.1 cores (0: do not wait)")
    m.add_argument("--run", type=int, default=1)
    m.add_argument("--out", required=True)
    r = sub.add_parser("report")
    r.add_argument("results")
    r.add_argument("--settle", type=float, default=1.0)
    r.add_argument("--command")
    a = p.parse_args()
    return {"free-port": free_port, "wait-ready": wait_ready, "measure": measure,
            "report": report}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
