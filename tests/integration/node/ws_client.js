// MQTT.js over ws:// or wss:// for the integration tests: subscribes, publishes at QoS 0, 1
// and 2, and prints one JSON line with what it received.
//   node ws_client.js URL CAFILE|- CLIENT_ID
const mqtt = require('mqtt');
const fs = require('fs');
const [url, ca, id] = process.argv.slice(2);
const opts = { clientId: id, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000 };
if (ca !== '-') {
    opts.ca = fs.readFileSync(ca);
}
const c = mqtt.connect(url, opts);
const got = [];
const fail = (e) => {
    console.log(JSON.stringify({ error: String(e) }));
    process.exit(1);
};
setTimeout(() => fail('timeout'), 8000);
c.on('error', fail);
c.on('message', (topic, payload, packet) => {
    got.push({ topic, payload: payload.toString(), qos: packet.qos });
    if (got.length === 3) {
        c.end(false, () => {
            console.log(JSON.stringify({ received: got }));
            process.exit(0);
        });
    }
});
c.on('connect', () => {
    c.subscribe('js/' + id + '/#', { qos: 2 }, (err) => {
        if (err) {
            fail(err);
        }
        for (const qos of [0, 1, 2]) {
            c.publish('js/' + id + '/q' + qos, 'hello ' + qos, { qos });
        }
    });
});
