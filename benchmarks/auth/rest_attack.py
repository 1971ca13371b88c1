#!/usr/bin/env python3
# The "REST logins under attack" measurement of benchmarks/README.md: one mqttd
# (node.workers=2, TCP and REST on 127.0.0.1), and rounds of `mqttd-load pairs --pairs 8
# --qos 1 --duration D` alternating: no attack, a brute force from one address, a brute force
# from rotating addresses (rest_brute_force.py at nice 19, 8 clients), no attack again. Prints
# one row per round: the load's msgs/s, p50 and p99, mqttd's CPU seconds over the round and,
# split by thread (name and nice value, from /proc/<pid>/task/*/stat), the REST answers by
# status, and the machine's load average. Halfway through each round a user created for it
# (so its password needs a hash, none is cached) logs in from 127.0.0.3: "right login" is its
# status and time.
#
# usage: rest_attack.py [--mqttd build/mqttd] [--load build/benchmarks/load/mqttd-load]
#                       [--rounds 2] [--duration 10] [--set KEY=VALUE ...]
import argparse, base64, http.client, json, os, shutil, socket, statistics, subprocess, sys
import tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def threads_cpu(pid):
    """{(name, nice): CPU seconds} of every thread of pid."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                text = f.read()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        # fields[0] is field 3 (state): utime 14, stime 15, nice 19.
        cpu = (int(fields[11]) + int(fields[12])) / tick
        key = (name, int(fields[16]))
        out[key] = out.get(key, 0) + cpu
    return out


def wait_port(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d did not open" % port)


def rest(api, method, path, user, password, source="127.0.0.1", body=None):
    """(status, seconds) of one request from `source`."""
    conn = http.client.HTTPConnection("127.0.0.1", api, timeout=10, source_address=(source, 0))
    auth = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
    start = time.time()
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers={"Authorization": "Basic " + auth, "Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    conn.close()
    return r.status, time.time() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mqttd", default=os.path.join(ROOT, "build/mqttd"))
    ap.add_argument("--load", default=os.path.join(ROOT, "build/benchmarks/load/mqttd-load"))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--set", action="append", default=[])
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="rest-attack-")
    mqtt, api = free_port(), free_port()
    cmd = [a.mqttd, "--config", os.path.join(ROOT, "data/mqttd.conf"), "--data-dir",
           os.path.join(tmp, "data")]
    for kv in ["node.workers=2", "listener.tcp.external=127.0.0.1:%d" % mqtt,
               "listener.api.mgmt=127.0.0.1:%d" % api, "listener.ssl.external=",
               "listener.ws.external=", "listener.wss.external=", "dashboard.listener.http="
               ] + a.set:
        cmd += ["--set", kv]
    log = open(os.path.join(tmp, "mqttd.log"), "w")
    broker = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(mqtt)
        wait_port(api)
        print("settings:", " ".join(a.set) or "(defaults)")
        print("| run | msgs/s | p50 | p99 | mqttd CPU | of it: workers, committer, REST "
              "(mqttd-rest) | REST answers | right login | load avg |")
        print("|---|---|---|---|---|---|---|---|---|")
        kinds = [("no attack", 0), ("brute force from one address", 1),
                 ("brute force, each request from another address", 2)]
        plan = []
        for _ in range(a.rounds):
            plan += kinds
        plan.append(kinds[0])
        results = {}
        for n, (label, sources) in enumerate(plan):
            user = "probe%d" % n
            st, _ = rest(api, "POST", "/api/v2/users", "admin", "public",
                         body={"username": user, "password": "pw-" + user, "tags": "probe"})
            assert st == 200, st
            right = {}

            def probe():
                time.sleep(a.duration / 2)
                right["answer"] = rest(api, "GET", "/api/v2/management/nodes", user, "pw-" + user,
                                       source="127.0.0.3")

            prober = threading.Thread(target=probe)
            before = threads_cpu(broker.pid)
            attacker = None
            if sources:
                attacker = subprocess.Popen(
                        ["nice", "-n", "19", sys.executable,
                         os.path.join(ROOT, "benchmarks/auth/rest_brute_force.py"), str(api),
                         str(a.duration), str(sources)], stdout=subprocess.PIPE, text=True)
            prober.start()
            load = subprocess.run([a.load, "pairs", "--port", str(mqtt), "--pairs", "8", "--qos",
                                   "1", "--duration", str(a.duration)], capture_output=True,
                                  text=True, check=True)
            answers = attacker.communicate()[0].strip().replace("brute force: ", "") \
                if attacker else ""
            after = threads_cpu(broker.pid)
            prober.join()
            d = {k: after[k] - before.get(k, 0) for k in after}
            total = sum(d.values())
            workers = sum(v for (n, _), v in d.items() if n.startswith("mqttd-w"))
            commit = sum(v for (n, _), v in d.items() if n == "mqttd-commit")
            rest_cpu = sum(v for (n, _), v in d.items() if n == "mqttd-rest")
            r = json.loads(load.stdout.strip().splitlines()[-1])
            lat = r.get("latency_us", {})
            results.setdefault(label, []).append((r.get("msgs_per_s", 0), lat.get("p99", 0) / 1000))
            print("| %s | %.0f | %.2f ms | %.2f ms | %.1f s | %.1f, %.1f, %.2f s | %s | %d in %.0f ms "
                  "| %.1f |" % (label, r.get("msgs_per_s", 0), lat.get("p50", 0) / 1000,
                                lat.get("p99", 0) / 1000, total, workers, commit, rest_cpu,
                                answers, right["answer"][0], right["answer"][1] * 1000,
                                os.getloadavg()[0]), flush=True)
            time.sleep(1)
        base = results[kinds[0][0]]
        base_rate = statistics.median(x[0] for x in base)
        base_p99 = statistics.median(x[1] for x in base)
        print()
        print("| medians | msgs/s | vs no attack | p99 | vs no attack |")
        print("|---|---|---|---|---|")
        for label, _ in kinds:
            rate = statistics.median(x[0] for x in results[label])
            p99 = statistics.median(x[1] for x in results[label])
            print("| %s (%d runs) | %.0f | %+.1f %% | %.2f ms | %.2fx |" % (
                label, len(results[label]), rate, 100 * (rate / base_rate - 1), p99,
                p99 / base_p99))
    finally:
        broker.terminate()
        broker.wait(20)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
