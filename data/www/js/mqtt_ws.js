// A small MQTT 3.1.1 client over WebSocket (subprotocol "mqtt") for the live message view:
// CONNECT (clean session), SUBSCRIBE, PUBLISH in (QoS 0 and 1, acknowledged), PINGREQ,
// DISCONNECT. Written by hand rather than vendoring a client library; it only subscribes.
const te = new TextEncoder();

function varint(n) {
  const out = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}
function str(s) {
  const b = te.encode(s);
  return [b.length >> 8, b.length & 0xff, ...b];
}
function packet(type, flags, body) {
  return new Uint8Array([(type << 4) | flags, ...varint(body.length), ...body]);
}

export class MqttWs {
  // Events: onmessage(topic, payloadBytes, {qos, retain}), onclose(reason), onopen().
  constructor(url, { clientId, username, password, keepalive = 30 } = {}) {
    this.url = url;
    this.clientId = clientId || 'dashboard-' + Math.random().toString(16).slice(2, 10);
    this.username = username;
    this.password = password;
    this.keepalive = keepalive;
    this.nextId = 1;
    this.buf = new Uint8Array(0);
    this.onmessage = () => {};
    this.onclose = () => {};
    this.onopen = () => {};
    this.onsuback = () => {};
  }

  connect() {
    this.ws = new WebSocket(this.url, ['mqtt']);
    this.ws.binaryType = 'arraybuffer';
    this.ws.onopen = () => {
      let flags = 0x02;  // clean session
      const payload = [...str(this.clientId)];
      if (this.username) { flags |= 0x80; payload.push(...str(this.username)); }
      if (this.username && this.password) { flags |= 0x40; payload.push(...str(this.password)); }
      const body = [...str('MQTT'), 4, flags, this.keepalive >> 8, this.keepalive & 0xff, ...payload];
      this.ws.send(packet(1, 0, body));
    };
    this.ws.onmessage = ev => this.feed(new Uint8Array(ev.data));
    this.ws.onerror = () => {};
    this.ws.onclose = ev => {
      clearInterval(this.timer);
      this.onclose(ev.code === 1000 ? 'closed' : `connection closed (${ev.code})`);
    };
  }

  subscribe(filter, qos = 0) {
    const id = this.nextId++;
    this.ws.send(packet(8, 2, [id >> 8, id & 0xff, ...str(filter), qos]));
  }

  close() {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(packet(14, 0, []));
    if (this.ws) this.ws.close(1000);
  }

  feed(bytes) {
    const all = new Uint8Array(this.buf.length + bytes.length);
    all.set(this.buf); all.set(bytes, this.buf.length);
    let pos = 0;
    while (true) {
      if (all.length - pos < 2) break;
      let len = 0, mult = 1, i = pos + 1, done = false;
      for (; i < all.length && i < pos + 5; i++) {
        len += (all[i] & 0x7f) * mult;
        mult *= 128;
        if ((all[i] & 0x80) === 0) { done = true; i++; break; }
      }
      if (!done || all.length - i < len) break;
      this.handle(all[pos], all.subarray(i, i + len));
      pos = i + len;
    }
    this.buf = all.slice(pos);
  }

  handle(first, body) {
    const type = first >> 4;
    if (type === 2) {  // CONNACK
      if (body[1] !== 0) {
        this.onclose(`CONNACK refused (return code ${body[1]})`);
        this.ws.close(1000);
        return;
      }
      this.timer = setInterval(() => this.ws.send(packet(12, 0, [])), this.keepalive * 500);
      this.onopen();
    } else if (type === 3) {  // PUBLISH
      const qos = (first >> 1) & 3;
      const tlen = (body[0] << 8) | body[1];
      const topic = new TextDecoder().decode(body.subarray(2, 2 + tlen));
      let p = 2 + tlen;
      if (qos > 0) {
        const id = [body[p], body[p + 1]];
        p += 2;
        if (qos === 1) this.ws.send(packet(4, 0, id));
      }
      this.onmessage(topic, body.slice(p), { qos, retain: (first & 1) === 1 });
    } else if (type === 9) {  // SUBACK
      this.onsuback(body[2]);
    }
  }
}
