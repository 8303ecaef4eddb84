#!/usr/bin/env python3
"""Asks a llama-server for completions of every prompt at once (a thread each), greedily.

usage: serve.py PORT N_PREDICT PROMPT...
Waits up to 60 s for /health, then prints one line per prompt, in order: the slot that
answered it, and its content as a JSON string."""
import json, sys, threading, time, urllib.request

port, n_predict, prompts = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
base = "http://127.0.0.1:%s" % port
deadline = time.time() + 60
while True:
    try:
        if urllib.request.urlopen(base + "/health", timeout=2).status == 200: break
    except Exception:
        pass
    if time.time() > deadline: sys.exit("the server did not come up in 60 s")
    time.sleep(0.1)
out = [None] * len(prompts)
def ask(i):
    body = json.dumps({"prompt": prompts[i], "n_predict": n_predict, "temperature": 0, "cache_prompt": False}).encode()
    req = urllib.request.Request(base + "/completion", body, {"Content-Type": "application/json"})
    r = json.load(urllib.request.urlopen(req, timeout=60))
    out[i] = "%d %s" % (r["id_slot"], json.dumps(r["content"]))
ts = [threading.Thread(target=ask, args=(i,)) for i in range(len(prompts))]
for t in ts: t.start()
for t in ts: t.join()
if None in out: sys.exit("a request got no answer")
print("\n".join(out))
