#!/usr/bin/env python3
# A REST brute force for benchmarks/README.md ("REST logins under attack"): 8 parallel clients
# send wrong Basic-auth passwords to GET /api/v2/management/nodes for DURATION seconds over
# keep-alive connections, and print the answers by status.
# usage: rest_brute_force.py API_PORT DURATION SOURCES
#   SOURCES = 1: every request from 127.0.0.1 (the per-address budget applies);
#   otherwise each request from another loopback address, 127.0.x.y (only the global hash cap
#   applies). Loopback 127/8 is local on Linux.
import base64, http.client, sys, threading, time, collections
port, duration, sources = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
counts = collections.Counter(); lock = threading.Lock()
def worker(k):
    end = time.time() + duration; i = 0; conn = None; src = None
    while time.time() < end:
        s = "127.0.0.1" if sources == 1 else "127.0.%d.%d" % (1 + (k * 1000 + i) // 250 % 200, 2 + (k * 1000 + i) % 250)
        if conn is None or s != src:
            if conn: conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=(s, 0)); src = s
        auth = base64.b64encode(b"admin:wrong%d" % i).decode()
        try:
            conn.request("GET", "/api/v2/management/nodes", headers={"Authorization": "Basic " + auth})
            r = conn.getresponse(); r.read(); st = r.status
        except Exception as e:
            st = "err"; conn.close(); conn = None
        with lock: counts[st] += 1
        i += 1
ts = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
print("brute force:", dict(counts))
