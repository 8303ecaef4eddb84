#!/usr/bin/env python3
"""A traced llama-server that runs long: the driver of bench/soak.sh.

    soak.py LLTRACE LLAMA_SERVER MODEL LEVEL TOKENS INTERVAL_S WORKDIR

Starts `lltrace exec --level LEVEL -o WORKDIR/soak.db -- llama-server --parallel 2` on MODEL,
keeps two clients asking for completions at once until the server has generated TOKENS
tokens, and every INTERVAL_S seconds samples the server's RSS, the size of the run's step
logs, the trace's size (with its WAL) and the tokens per second since the last sample. Then,
at a random moment while the clients still ask, kills the server with SIGKILL and checks the
trace the next reader sees: PRAGMA integrity_check, the run 'killed', every step committed
before the kill present and numbered without a gap.

Prints the samples as a Markdown table and the checks; exits 1 when a check fails: the step
logs within 8 MiB, the trace growing with the tokens, and the server's RSS after warm-up (the
first quarter of the tokens) growing no faster than the untraced server's: LEVEL "off" runs
it untraced and writes its growth per token to WORKDIR/rss-per-token, which a later traced
level compares with (1.25 times it plus 0.25 KiB a token); without it, at most 32 MiB.
llama-server itself grows about 1.2 KiB a generated token (measured untraced, 2026-12-07).
"""
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request

lltrace, server_bin, model, level, tokens, interval, work = sys.argv[1:8]
tokens, interval = int(tokens), float(interval)
trace = os.path.join(work, "soak-%s.db" % level)
for suffix in ("", "-wal", "-shm"):
    if os.path.exists(trace + suffix):
        os.unlink(trace + suffix)

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
base = "http://127.0.0.1:%d" % port
log = open(os.path.join(work, "server-%s.log" % level), "w")
server = [server_bin, "-m", model, "--host", "127.0.0.1", "--port", str(port), "--parallel", "2", "-c", "2048", "-t", "2",
          "--no-warmup"]
# level "off": the server untraced, the baseline of its own memory (no trace, no kill checks)
untraced = level == "off"
execp = subprocess.Popen(server if untraced else [lltrace, "exec", "-q", "--level", level, "-o", trace, "--"] + server,
                         stdout=log, stderr=subprocess.STDOUT)

deadline = time.time() + 120
while True:
    try:
        if urllib.request.urlopen(base + "/health", timeout=2).status == 200:
            break
    except Exception:
        pass
    if time.time() > deadline or execp.poll() is not None:
        sys.exit("soak: the server never answered /health")
    time.sleep(0.1)
server_pid = execp.pid if untraced else int(subprocess.check_output(["pgrep", "-P", str(execp.pid)]).split()[0])

generated = [0]
stop = threading.Event()
lock = threading.Lock()


def client(i):
    n = 0
    while not stop.is_set():
        n += 1
        body = json.dumps({"prompt": "Story %d of client %d: once upon a time" % (n, i), "n_predict": 128,
                           "temperature": 0.8, "seed": n, "cache_prompt": False}).encode()
        try:
            r = json.load(urllib.request.urlopen(urllib.request.Request(
                base + "/completion", body, {"Content-Type": "application/json"}), timeout=300))
        except Exception:
            return  # the server was killed
        with lock:
            generated[0] += r.get("tokens_predicted", 0)


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def size(paths):
    return sum(os.path.getsize(p) for p in paths if os.path.exists(p))


def log_files():
    d, b = os.path.split(trace)
    return [os.path.join(d, f) for f in os.listdir(d) if f.startswith(b + "-log-")]


def committed_steps():
    """the steps of the run in the trace now, read without recovery (Python's sqlite3)"""
    try:
        db = sqlite3.connect("file:%s?mode=ro" % trace, uri=True, timeout=10)
        n = db.execute("SELECT count(*), coalesce(max(step) + 1, 0) FROM steps WHERE run_id ="
                       " (SELECT max(run_id) FROM steps)").fetchone()
        db.close()
        return n
    except sqlite3.Error:
        return (0, 0)


threads = [threading.Thread(target=client, args=(i,)) for i in range(2)]
for t in threads:
    t.start()
samples = []
t0 = last_t = time.time()
last_n = 0
while True:
    time.sleep(interval)
    now = time.time()
    with lock:
        n = generated[0]
    samples.append({"t": now - t0, "tokens": n, "rss": rss_kib(server_pid), "log": size(log_files()),
                    "trace": size([trace, trace + "-wal"]), "tps": (n - last_n) / (now - last_t)})
    last_t, last_n = now, n
    if n >= tokens and len(samples) >= 3:
        break

# the kill: at a random moment while both clients still ask
time.sleep(random.uniform(0, min(2.0, interval)))
with lock:
    final = generated[0]
before = committed_steps()
os.kill(server_pid, signal.SIGKILL)
stop.set()
execp.wait(timeout=60)
for t in threads:
    t.join(timeout=60)

print("#### level %s: %d tokens generated, samples every %g s" % (level, final, interval))
print()
print("| t (s) | generated | tokens/s | server RSS | step logs | trace |")
print("|---|---|---|---|---|---|")
for s in samples:
    print("| %.0f | %d | %.1f | %.1f MiB | %.2f MiB | %.1f MiB |" % (s["t"], s["tokens"], s["tps"], s["rss"] / 1024,
                                                                  s["log"] / 2**20, s["trace"] / 2**20))
print()

fails = []
warm = [s for s in samples if s["tokens"] >= tokens / 4] or samples[-1:]
rss_growth = warm[-1]["rss"] - warm[0]["rss"]
rate = rss_growth / max(1, warm[-1]["tokens"] - warm[0]["tokens"])  # KiB a generated token
base_file = os.path.join(work, "rss-per-token")
log_max = max(s["log"] for s in samples)
if log_max > 8 << 20:
    fails.append("the step logs reached %.1f MiB, want at most 8" % (log_max / 2**20))
if untraced:
    open(base_file, "w").write("%f\n" % rate)
elif os.path.exists(base_file):
    base = float(open(base_file).read())
    if rate > 1.25 * base + 0.25:
        fails.append("the server's RSS grew by %.2f KiB a token after warm-up, untraced %.2f" % (rate, base))
elif rss_growth > 32 << 10:
    fails.append("the server's RSS grew by %.1f MiB after warm-up" % (rss_growth / 1024))
if samples[-1]["trace"] <= samples[0]["trace"] and not untraced:
    fails.append("the trace did not grow")
if untraced:
    print("untraced: RSS after warm-up %+.1f MiB (%.2f KiB a generated token)" % (rss_growth / 1024, rate))
    print()
    for f in fails:
        print("soak: FAIL " + f, file=sys.stderr)
    sys.exit(1 if fails else 0)

# the next reader: lltrace itself opens the trace (recovery replays the killed run's logs)
rc = subprocess.run([lltrace, "show", trace, "--runs"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
if rc.returncode != 0:
    fails.append("show --runs after kill -9: " + rc.stderr.strip())
db = sqlite3.connect(trace)
integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
run = db.execute("SELECT max(run_id) FROM steps").fetchone()[0]
status = db.execute("SELECT status FROM runs WHERE id = ?", (run,)).fetchone()[0]
count, span = db.execute("SELECT count(*), max(step) + 1 FROM steps WHERE run_id = ?", (run,)).fetchone()
logs_left = log_files()
if integrity != "ok":
    fails.append("integrity_check: " + integrity)
if status != "killed":
    fails.append("the run is '%s', want killed" % status)
if count < before[0]:
    fails.append("%d steps after recovery, %d were committed before the kill" % (count, before[0]))
if count != span:
    fails.append("%d steps numbered 0..%d: a gap" % (count, span - 1))
if logs_left:
    fails.append("step logs left after recovery: %s" % logs_left)
print("kill -9 at %.0f s: %d steps committed before it, %d after recovery (the rest from the step logs), "
      "integrity_check %s, run %s; RSS after warm-up %+.1f MiB (%.2f KiB a generated token), step logs at most %.2f MiB"
      % (time.time() - t0, before[0], count, integrity, status, rss_growth / 1024, rate, log_max / 2**20))
print()
for f in fails:
    print("soak: FAIL " + f, file=sys.stderr)
sys.exit(1 if fails else 0)
