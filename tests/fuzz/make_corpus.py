#!/usr/bin/env python3
"""Writes the decoder fuzz seed corpus (tests/fuzz/corpus/), one file per packet type and version.

Each file is the fuzz input layout of decoder_fuzz.cpp: a selector byte (client-side version:
0 = 3.1, 1 = 3.1.1, 2 = 5.0), a split byte, then the byte stream. Server-side seeds start with a
CONNECT. Bytes are written from the standard's packet layouts. Run from anywhere; rewrites the
files in place.
"""
import os


def s(text):
    b = text.encode() if isinstance(text, str) else text
    return len(b).to_bytes(2, "big") + b


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pkt(byte0, body):
    return bytes([byte0]) + varint(len(body)) + body


def props(*items):
    body = b"".join(items)
    return varint(len(body)) + body


CONNECT = {
    3: pkt(0x10, s("MQIsdp") + bytes([3, 0x02, 0, 60]) + s("c31")),
    4: pkt(0x10, s("MQTT") + bytes([4, 0x02, 0, 60]) + s("c311")),
    5: pkt(0x10, s("MQTT") + bytes([5, 0x02, 0, 60, 0]) + s("c5")),
}
SEL = {3: 0, 4: 1, 5: 2}

seeds = {}


def server(name, level, *packets, split=7):
    seeds[name] = bytes([SEL[level], split]) + CONNECT[level] + b"".join(packets)


def client(name, level, *packets, split=3):
    seeds[name] = bytes([SEL[level], split]) + b"".join(packets)


will_full = pkt(0x10, s("MQTT") + bytes([4, 0xEE, 0, 10]) + s("cid") + s("will/t") + s("bye") + s("user") + s("pw"))
seeds["connect_v311_full"] = bytes([1, 9]) + will_full
seeds["connect_v31_will"] = bytes([0, 9]) + pkt(0x10, s("MQIsdp") + bytes([3, 0xCC, 0, 10]) + s("cid") + s("w") + s("m") + s("u") + s("p"))
seeds["connect_v5_props_will"] = bytes([2, 11]) + pkt(
    0x10,
    s("MQTT") + bytes([5, 0xF6, 0, 30])
    + props(bytes([0x11, 0, 0, 0, 30, 0x21, 0, 10, 0x22, 0, 5, 0x27, 0, 1, 0, 0, 0x17, 1, 0x19, 0]), b"\x26" + s("k") + s("v"), b"\x15" + s("SCRAM"), b"\x16" + s(b"\x00\x01"))
    + s("id")
    + props(bytes([0x18, 0, 0, 0, 5, 0x01, 1, 0x02, 0, 0, 0, 60]), b"\x03" + s("text"), b"\x08" + s("resp/t"), b"\x09" + s(b"\x01"))
    + s("will/t") + s("payload") + s("user") + s("pass"))

for level in (3, 4, 5):
    pp = props() if level == 5 else b""
    v = {3: "v31", 4: "v311", 5: "v5"}[level]
    server(f"publish_qos0_{v}", level, pkt(0x30, s("a/b") + pp + b"hello"))
    server(f"publish_qos1_{v}", level, pkt(0x3B, s("a/b") + b"\x00\x01" + pp + b"x" * 40))
    server(f"publish_qos2_{v}", level, pkt(0x34, s("t") + b"\x12\x34" + pp + b"x"), pkt(0x62, b"\x12\x34"))
    server(f"acks_{v}", level, pkt(0x40, b"\x00\x01"), pkt(0x50, b"\x00\x02"), pkt(0x62, b"\x00\x02"), pkt(0x70, b"\x00\x02"))
    server(f"subscribe_{v}", level, pkt(0x82, b"\x00\x0a" + pp + s("a/+/c") + bytes([1]) + s("#") + bytes([2])))
    server(f"unsubscribe_{v}", level, pkt(0xA2, b"\x00\x0b" + pp + s("a/+/c") + s("#")))
    server(f"ping_disconnect_{v}", level, pkt(0xC0, b""), pkt(0xE0, b""))
    client(f"connack_{v}", level, pkt(0x20, b"\x01\x00" + pp))
    client(f"suback_{v}", level, pkt(0x90, b"\x00\x0a" + pp + b"\x00\x01\x02\x80"))
    client(f"unsuback_{v}", level, pkt(0xB0, b"\x00\x0b" + (pp + b"\x00\x11" if level == 5 else b"")))
    client(f"publish_in_{v}", level, pkt(0x32, s("x/y") + b"\x00\x07" + pp + b"data"), pkt(0xD0, b""))

server("publish_v5_props", 5, pkt(0x32, s("t") + b"\x00\x09" + props(bytes([0x01, 1, 0x02, 0, 0, 0, 60, 0x23, 0, 1]), b"\x03" + s("json"), b"\x08" + s("r"), b"\x09" + s(b"\x00\xff"), b"\x26" + s("a") + s("b")) + b"hi"))
server("publish_v5_alias", 5, pkt(0x30, s("") + props(bytes([0x23, 0, 1])) + b"x"))
server("subscribe_v5_options", 5, pkt(0x82, b"\x00\x01" + props(bytes([0x0B, 0x80, 0x01])) + s("$share/g/a/#") + bytes([0x29]) + s("b") + bytes([0x2E])))
server("acks_v5_reasons", 5, pkt(0x40, b"\x00\x01\x10"), pkt(0x50, b"\x00\x02\x80" + props(b"\x1f" + s("no"))), pkt(0x62, b"\x00\x02\x92\x00"), pkt(0x70, b"\x00\x02\x00\x00"))
server("disconnect_v5", 5, pkt(0xE0, b"\x04" + props(bytes([0x11, 0, 0, 0, 0]), b"\x1f" + s("bye"))))
server("auth_v5", 5, pkt(0xF0, b"\x18" + props(b"\x15" + s("SCRAM"), b"\x16" + s("data"))), pkt(0xF0, b""))
client("connack_v5_props", 5, pkt(0x20, b"\x00\x00" + props(bytes([0x11, 0, 0, 0, 10, 0x21, 0, 20, 0x24, 1, 0x25, 1, 0x27, 0, 0, 16, 0, 0x22, 0, 5, 0x28, 1, 0x29, 1, 0x2A, 1, 0x13, 0, 30]), b"\x12" + s("auto"), b"\x1f" + s("ok"), b"\x1a" + s("ri"), b"\x1c" + s("srv"))))
client("publish_in_v5_subids", 5, pkt(0x30, s("t") + props(bytes([0x0B, 1, 0x0B, 0x80, 0x01])) + b"x"))
client("disconnect_v5_server", 5, pkt(0xE0, b"\x9c" + props(b"\x1c" + s("other"))))
client("auth_v5_client", 5, pkt(0xF0, b"\x19\x00"))
seeds["bad_remaining_length"] = bytes([1, 3]) + CONNECT[4] + b"\x30\xff\xff\xff\xff\x01"
seeds["large_small_limit"] = bytes([0x05, 40]) + CONNECT[4] + pkt(0x30, s("t") + b"p" * 200)

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name + ".bin"), "wb") as f:
        f.write(data)
print(len(seeds), "seeds in", out)
