#!/usr/bin/python3
"""Paho MQTT (Debian's python3-paho-mqtt) for the integration tests, over TCP, TLS,
WebSocket or WebSocket over TLS. Prints one JSON line with what it saw.

  paho_client.py roundtrip PORT [--tls CA] [--ws PATH] [--id ID]
      subscribes to rt/ID/#, publishes QoS 0, 1 and 2 (and one retained) and prints them
  paho_client.py subscribe PORT --id ID [--tls CA] [--ws PATH] [--count N] [--persistent]
      connects (clean session unless --persistent), subscribes to sess/ID at QoS 1, waits for
      N messages, disconnects; prints session_present and the payloads
  paho_client.py publish PORT TOPIC N [--tls CA] [--ws PATH]
      publishes N QoS 1 messages "m0".."mN-1"
"""
import argparse
import json
import sys
import time

import paho.mqtt.client as mqtt

p = argparse.ArgumentParser()
p.add_argument("mode")
p.add_argument("port", type=int)
p.add_argument("rest", nargs="*")
p.add_argument("--tls")
p.add_argument("--ws")
p.add_argument("--id", default="paho")
p.add_argument("--count", type=int, default=1)
p.add_argument("--persistent", action="store_true")
a = p.parse_args()


def client(cid, clean=True):
    c = mqtt.Client(cid, clean_session=clean, transport="websockets" if a.ws else "tcp")
    if a.ws:
        c.ws_set_options(path=a.ws)
    if a.tls:
        c.tls_set(ca_certs=a.tls)
    c.connect("localhost", a.port, keepalive=30)
    return c


def wait(pred, seconds=8):
    end = time.time() + seconds
    while not pred() and time.time() < end:
        time.sleep(0.02)
    return pred()


got = []
present = []


def on_message(c, u, m):
    got.append({"topic": m.topic, "payload": m.payload.decode(), "qos": m.qos,
                "retain": bool(m.retain)})


def on_connect(c, u, flags, rc):
    present.append({"rc": rc, "session_present": bool(flags.get("session present", 0))})


if a.mode == "roundtrip":
    c = client(a.id)
    c.on_message = on_message
    c.on_connect = on_connect
    c.loop_start()
    if not wait(lambda: present):
        print(json.dumps({"error": "no CONNACK"}))
        sys.exit(1)
    c.publish("rt/%s/kept" % a.id, "retained", qos=1, retain=True).wait_for_publish()
    r, _ = c.subscribe("rt/%s/#" % a.id, qos=2)
    time.sleep(0.3)
    for q in (0, 1, 2):
        c.publish("rt/%s/q%d" % (a.id, q), "hello %d" % q, qos=q).wait_for_publish()
    wait(lambda: len(got) >= 4)
    seen = list(got)
    c.unsubscribe("rt/%s/#" % a.id)
    c.publish("rt/%s/kept" % a.id, "", qos=1, retain=True).wait_for_publish()
    c.disconnect()
    c.loop_stop()
    print(json.dumps({"received": seen}))
elif a.mode == "subscribe":
    c = client(a.id, clean=not a.persistent)
    c.on_message = on_message
    c.on_connect = on_connect
    c.loop_start()
    if not wait(lambda: present):
        print(json.dumps({"error": "no CONNACK"}))
        sys.exit(1)
    c.subscribe("sess/%s" % a.id, qos=1)
    wait(lambda: len(got) >= a.count)
    c.disconnect()
    c.loop_stop()
    print(json.dumps({"session_present": present[0]["session_present"],
                      "payloads": [m["payload"] for m in got]}))
elif a.mode == "publish":
    topic, n = a.rest[0], int(a.rest[1])
    c = client(a.id + "-pub")
    c.loop_start()
    for i in range(n):
        c.publish(topic, "m%d" % i, qos=1).wait_for_publish()
    c.disconnect()
    c.loop_stop()
    print(json.dumps({"published": n}))
