// The pages. Each render(root, arg, state) fills `root`; state.node is the node name. Every
// figure comes from the REST API v2 (or its /metrics), every action is one API call whose error
// is shown.
import { api, enc, metrics } from './api.js';
import { LineChart } from './chart.js';
import { MqttWs } from './mqtt_ws.js';
import { attempt, field, fmtBytes, h, hex, pagedTable, showError, showInfo } from './ui.js';

const timers = new Set();
let liveClient = null;
export function stopTimers() {
  for (const t of timers) clearInterval(t);
  timers.clear();
  if (liveClient) { liveClient.close(); liveClient = null; }
}

function pageQuery(cursor, extra = {}) {
  const q = new URLSearchParams({ page_size: '20', ...extra });
  if (cursor) q.set('cursor', cursor);
  return q.toString();
}
// A single-object lookup ({objects: [...]}) shaped as a page.
function asPage(result) {
  const objects = Array.isArray(result) ? result : (result.objects || []);
  return { objects, total_num: objects.length, cursor: '' };
}
function button(text, onclick, cls) {
  return h('button', { type: 'button', class: cls, onclick }, text);
}
function input(attrs = {}) { return h('input', attrs); }
// An inline form; `search` makes it a search landmark (the other forms get their aria-label).
function searchForm(fields, onsubmit, label = 'Search', search = true) {
  const form = h('form', { class: 'inline', role: search ? 'search' : null }, fields,
    h('button', { type: 'submit' }, label));
  form.addEventListener('submit', ev => { ev.preventDefault(); onsubmit(); });
  return form;
}
function dl(pairs) {
  return h('dl', {}, pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '-')]));
}

// ---- Overview --------------------------------------------------------------------------------

const POLL_MS = 5000;
const charts = {
  connections: new LineChart('Connections', ['clients'], { format: v => String(Math.round(v)) }),
  messages: new LineChart('Messages per second', ['received', 'sent'], { unit: '/s' }),
  bytes: new LineChart('Bytes per second', ['in', 'out'], { format: v => fmtBytes(v) + '/s' }),
  dropped: new LineChart('Dropped messages per second', ['dropped'], { unit: '/s' }),
  latency: new LineChart('Store write latency (mean per interval)', ['write'], { unit: 'ms' }),
};
let last = null;

async function sample(node) {
  const [m, s, prom] = await Promise.all([
    api('GET', `monitoring/metrics/${enc(node)}`),
    api('GET', `monitoring/stats/${enc(node)}`),
    metrics(),
  ]);
  const now = Date.now();
  const cur = {
    t: now, rx: m['messages/received'], tx: m['messages/sent'], bin: m['bytes/received'],
    bout: m['bytes/sent'], drop: m['messages/dropped'],
    wsum: prom['mqttd_store_write_duration_seconds_sum'] ?? 0,
    wcount: prom['mqttd_store_write_duration_seconds_count'] ?? 0,
  };
  charts.connections.add(now, [s['clients/count']]);
  if (last) {
    const dt = (now - last.t) / 1000;
    const rate = k => Math.max(0, (cur[k] - last[k]) / dt);
    charts.messages.add(now, [rate('rx'), rate('tx')]);
    charts.bytes.add(now, [rate('bin'), rate('bout')]);
    charts.dropped.add(now, [rate('drop')]);
    const n = cur.wcount - last.wcount;
    charts.latency.add(now, [n > 0 ? (cur.wsum - last.wsum) / n * 1000 : 0]);
  }
  last = cur;
  return s;
}

async function overview(root, _arg, state) {
  const nodeBox = h('div', { class: 'cards' });
  const statsBox = h('div', { class: 'cards' });
  root.append(h('h1', {}, 'Overview'),
    h('h2', {}, 'Node'), nodeBox,
    h('h2', {}, 'Live (every 5 s, last 15 minutes)'),
    h('div', { class: 'charts' }, Object.values(charts).map(c => c.el)),
    h('h2', {}, 'Counts'), statsBox);
  async function refreshNode() {
    const [m, n] = await Promise.all([api('GET', `management/nodes/${enc(state.node)}`),
      api('GET', `monitoring/nodes/${enc(state.node)}`)]);
    const node = { ...(Array.isArray(m) ? m[0] : m), ...(Array.isArray(n) ? n[0] : n) };
    nodeBox.replaceChildren(h('div', { class: 'card' }, dl([
      ['Name', node.name], ['Version', node.version], ['Uptime', node.uptime],
      ['Status', node.node_status], ['Local time', node.datetime]])),
    h('div', { class: 'card' }, dl([
      ['Memory used', node.memory_used], ['Memory total', node.memory_total],
      ['Load 1 / 5 / 15', `${node.load1} / ${node.load5} / ${node.load15}`]])),
    h('div', { class: 'card' }, dl([
      ['Connections', node.process_used], ['Max fds', node.max_fds],
      ['Connection limit', node.process_available]])));
  }
  async function tick() {
    const s = await sample(state.node);
    statsBox.replaceChildren(...Object.entries(s).map(([k, v]) =>
      h('div', { class: 'card' }, dl([[k, v]]))));
    for (const c of Object.values(charts)) c.draw();
  }
  await Promise.all([refreshNode(), tick()]);
  timers.add(setInterval(() => attempt(async () => { await tick(); await refreshNode(); }), POLL_MS));
}

// ---- Clients ---------------------------------------------------------------------------------

async function clients(root, id, state) {
  if (id !== undefined) return clientDetail(root, id, state);
  const prefix = input({ name: 'clientid', placeholder: 'prefix' });
  const user = input({ name: 'username' });
  let table;
  const kick = async c => {
    if (await attempt(() => api('DELETE', `clients/${enc(c.client_id)}`), `Kicked ${c.client_id}.`)) {
      await table.reload();
    }
  };
  table = pagedTable([
    ['Client id', c => h('a', { href: `#/clients/${enc(c.client_id)}` }, c.client_id)],
    ['Username', c => c.username],
    ['Address', c => `${c.ipaddress}:${c.port}`],
    ['Listener', c => c.protocol],
    ['MQTT', c => ({ 3: '3.1', 4: '3.1.1', 5: '5.0' })[c.proto_ver] || c.proto_ver],
    ['Clean', c => (c.clean_sess ? 'yes' : 'no')],
    ['Keepalive', c => c.keepalive, 'num'],
    ['Connected at', c => c.connected_at],
    ['', c => button('Kick', () => kick(c), 'danger')],
  ], cursor => {
    const extra = {};
    if (prefix.value) extra.clientid = prefix.value;
    if (user.value) extra.username = user.value;
    return api('GET', `nodes/${enc(state.node)}/clients?${pageQuery(cursor, extra)}`);
  });
  root.append(h('h1', {}, 'Clients'),
    searchForm([field('Client id starts with', prefix), field('Username', user)], () => table.reset()),
    h('div', { class: 'toolbar' }, button('Refresh', () => table.reload(), 'secondary')),
    table.el);
  await table.reset();
}

async function clientDetail(root, id, state) {
  root.append(h('p', {}, h('a', { href: '#/clients' }, '← Clients')), h('h1', {}, `Client ${id}`));
  const [cl, sess, subs] = await Promise.all([
    api('GET', `nodes/${enc(state.node)}/clients/${enc(id)}`),
    api('GET', `sessions/${enc(id)}`),
    api('GET', `subscriptions/${enc(id)}`),
  ]);
  const c = asPage(cl).objects[0];
  const s = asPage(sess).objects[0];
  if (!c) root.append(h('p', { class: 'muted' }, 'Not connected.'));
  else {
    root.append(h('div', { class: 'card' }, dl([
      ['Username', c.username], ['Address', `${c.ipaddress}:${c.port}`], ['Listener', c.protocol],
      ['TLS', c.is_ssl ? 'yes' : 'no'], ['Protocol version', c.proto_ver],
      ['Keepalive', c.keepalive], ['Clean session', String(c.clean_sess)],
      ['Connected at', c.connected_at],
      ['Will', c.will ? `${c.will.topic} (QoS ${c.will.qos}${c.will.retain ? ', retained' : ''}, ${c.will.payload_size} bytes)` : 'none']])));
    const topic = input({ name: 'topic', value: '#', required: true });
    const f = searchForm([field('ACL cache: topic', topic)], () => attempt(
      () => api('PUT', `clients/${enc(id)}/clean_acl_cache`, { topic: topic.value }),
      `ACL cache of ${id} cleared for ${topic.value}.`), 'Clear ACL cache', false);
    f.setAttribute('aria-label', 'Clear the ACL cache');
    root.append(h('div', { class: 'toolbar' }, button('Kick', async () => {
      if (await attempt(() => api('DELETE', `clients/${enc(id)}`), `Kicked ${id}.`)) location.hash = '#/clients';
    }, 'danger')), f);
  }
  root.append(h('h2', {}, 'Session'));
  if (s) {
    root.append(h('div', { class: 'card' }, dl([
      ['Online', String(s.online)], ['Subscriptions', s.subscriptions], ['Max in flight', s.max_inflight],
      ['In flight', s.inflight_len], ['Queued', s.mqueue_len], ['Queue dropped', s.mqueue_dropped],
      ['Awaiting PUBREL', s.awaiting_rel_len], ['Delivered', s.deliver_msg], ['Enqueued', s.enqueue_msg],
      ['Created at', s.created_at]])),
    h('p', {}, h('a', { href: `#/sessions/${enc(id)}` }, 'Queued messages')));
  } else root.append(h('p', { class: 'muted' }, 'No session.'));
  const subTable = subscriptionTable(() => Promise.resolve(asPage(subs)));
  root.append(h('h2', {}, 'Subscriptions'), subTable.el);
  await subTable.reset();
}

// ---- Sessions --------------------------------------------------------------------------------

async function sessions(root, id, state) {
  if (id !== undefined) return mqueue(root, id);
  const search = input({ name: 'client_id' });
  let table;
  const del = async s => {
    if (!confirm(`Delete the session of ${s.client_id}, its subscriptions and queue?`)) return;
    if (await attempt(() => api('DELETE', `sessions/${enc(s.client_id)}`), `Session ${s.client_id} deleted.`)) {
      await table.reload();
    }
  };
  table = pagedTable([
    ['Client id', s => h('a', { href: `#/clients/${enc(s.client_id)}` }, s.client_id)],
    ['Online', s => (s.online ? 'yes' : 'no')],
    ['Clean', s => (s.clean_sess ? 'yes' : 'no')],
    ['Subs', s => s.subscriptions, 'num'],
    ['In flight', s => s.inflight_len, 'num'],
    ['Queued', s => s.mqueue_len, 'num'],
    ['Dropped', s => s.mqueue_dropped, 'num'],
    ['Delivered', s => s.deliver_msg, 'num'],
    ['Created at', s => s.created_at],
    ['', s => h('span', {}, h('a', { href: `#/sessions/${enc(s.client_id)}` }, 'Queue'), ' ',
      s.online || s.clean_sess ? null : button('Delete', () => del(s), 'danger'))],
  ], cursor => (search.value
    ? api('GET', `sessions/${enc(search.value)}`).then(asPage)
    : api('GET', `nodes/${enc(state.node)}/sessions?${pageQuery(cursor)}`)));
  root.append(h('h1', {}, 'Sessions'),
    h('p', { class: 'muted' }, 'Persistent sessions (offline ones included), then the clean sessions of connected clients.'),
    searchForm([field('Client id', search)], () => table.reset()), table.el);
  await table.reset();
}

async function mqueue(root, id) {
  root.append(h('p', {}, h('a', { href: '#/sessions' }, '← Sessions')), h('h1', {}, `Queue of ${id}`));
  const now = Date.now();
  const table = pagedTable([
    ['Seq', m => m.seq, 'num'],
    ['Topic', m => h('code', {}, m.topic ?? '(gone)')],
    ['QoS', m => m.qos, 'num'],
    ['Retain', m => (m.retain ? 'yes' : 'no')],
    ['Size', m => fmtBytes(m.payload_size), 'num'],
    ['Enqueued at', m => m.enqueued_at ?? '-'],
    ['Age', m => (m.enqueued_at ? age(now, m.enqueued_at) : '-'), 'num'],
  ], cursor => api('GET', `sessions/${enc(id)}/mqueue?${pageQuery(cursor)}`));
  root.append(table.el);
  await table.reset();
}
function age(now, text) {
  const t = Date.parse(text.replace(' ', 'T'));
  if (!Number.isFinite(t)) return '-';
  const s = Math.max(0, Math.round((now - t) / 1000));
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`;
}

// ---- Subscriptions and routes ------------------------------------------------------------------

function subscriptionTable(load) {
  return pagedTable([
    ['Client id', s => h('a', { href: `#/clients/${enc(s.client_id)}` }, s.client_id)],
    ['Topic filter', s => h('code', {}, s.topic)],
    ['QoS', s => s.qos, 'num'],
  ], load);
}

async function subscriptions(root, _arg, state) {
  const search = input({ name: 'client_id' });
  const table = subscriptionTable(cursor => (search.value
    ? api('GET', `subscriptions/${enc(search.value)}`).then(asPage)
    : api('GET', `nodes/${enc(state.node)}/subscriptions?${pageQuery(cursor)}`)));
  root.append(h('h1', {}, 'Subscriptions'),
    searchForm([field('Client id', search)], () => table.reset()), table.el);
  await table.reset();
}

async function routes(root) {
  const search = input({ name: 'topic' });
  const table = pagedTable([
    ['Topic', r => h('code', {}, r.topic)],
    ['Node', r => r.node],
  ], cursor => (search.value
    ? api('GET', `routes/${search.value.split('/').map(enc).join('/')}`).then(asPage)
    : api('GET', `routes?${pageQuery(cursor)}`)));
  root.append(h('h1', {}, 'Routes'),
    searchForm([field('Topic', search)], () => table.reset()), table.el);
  await table.reset();
}

// ---- Retained --------------------------------------------------------------------------------

function payloadBytes(m) {
  if (m.encoding === 'base64') return Uint8Array.from(atob(m.payload), ch => ch.charCodeAt(0));
  return new TextEncoder().encode(m.payload);
}

async function retained(root) {
  const filter = input({ name: 'topic', value: '#', required: true });
  const viewer = h('div');
  let table;
  const view = m => {
    const bytes = payloadBytes(m);
    const pre = h('pre', { class: 'payload', tabindex: '0' });
    const asText = () => { pre.textContent = m.encoding === 'base64' ? '(not UTF-8: see hex)' : m.payload; };
    const asHex = () => { pre.textContent = hex(bytes); };
    asText();
    viewer.replaceChildren(h('h2', {}, `Payload of ${m.topic}`),
      h('div', { class: 'toolbar' }, button('Text', asText, 'secondary'), button('Hex', asHex, 'secondary'),
        h('span', { class: 'muted' }, `${m.payload_size} bytes, QoS ${m.qos}`)), pre);
    pre.focus();
  };
  const del = async m => {
    if (!confirm(`Delete the retained message of ${m.topic}?`)) return;
    if (await attempt(() => api('DELETE', `retained/${m.topic.split('/').map(enc).join('/')}`),
      `Retained message of ${m.topic} deleted.`)) {
      viewer.replaceChildren();
      await table.reload();
    }
  };
  table = pagedTable([
    ['Topic', m => h('code', {}, m.topic)],
    ['QoS', m => m.qos, 'num'],
    ['Size', m => fmtBytes(m.payload_size), 'num'],
    ['Stored at', m => m.stored_at],
    ['', m => h('span', {}, button('View', () => view(m), 'secondary'), ' ', button('Delete', () => del(m), 'danger'))],
  ], cursor => api('GET', `retained?${pageQuery(cursor, { topic: filter.value })}`));
  root.append(h('h1', {}, 'Retained messages'),
    searchForm([field('Topic filter (+ and # allowed)', filter)], () => table.reset(), 'Query'),
    table.el, viewer);
  await table.reset();
}

// ---- Publish / subscribe ---------------------------------------------------------------------

async function publish(root, _arg, state) {
  root.append(h('h1', {}, 'Publish and subscribe'));

  const topic = input({ name: 'topic', required: true });
  const payload = h('textarea', { name: 'payload' });
  const qos = h('select', { name: 'qos' }, [0, 1, 2].map(q => h('option', { value: q }, q)));
  const retain = input({ type: 'checkbox', name: 'retain' });
  const clientId = input({ name: 'client_id', value: 'dashboard' });
  const pub = h('form', { class: 'grid', 'aria-label': 'Publish' },
    h('label', { for: 'pub-topic' }, 'Topic'), Object.assign(topic, { id: 'pub-topic' }),
    h('label', { for: 'pub-payload' }, 'Payload'), Object.assign(payload, { id: 'pub-payload' }),
    h('label', { for: 'pub-qos' }, 'QoS'), Object.assign(qos, { id: 'pub-qos' }),
    h('label', { for: 'pub-retain' }, 'Retain'), Object.assign(retain, { id: 'pub-retain' }),
    h('label', { for: 'pub-client' }, 'Client id'), Object.assign(clientId, { id: 'pub-client' }),
    h('span'), h('div', {}, h('button', { type: 'submit' }, 'Publish')));
  pub.addEventListener('submit', ev => {
    ev.preventDefault();
    attempt(() => api('POST', 'mqtt/publish', {
      topic: topic.value, payload: payload.value, qos: Number(qos.value), retain: retain.checked,
      client_id: clientId.value || 'dashboard',
    }), `Published to ${topic.value}.`);
  });

  const subClient = input({ name: 'client_id', required: true });
  const subTopic = input({ name: 'topic', required: true });
  const subQos = h('select', { name: 'qos' }, [0, 1, 2].map(q => h('option', { value: q }, q)));
  const sub = searchForm([field('Client id', subClient), field('Topic filter', subTopic), field('QoS', subQos)],
    () => attempt(() => api('POST', 'mqtt/subscribe', {
      client_id: subClient.value, topic: subTopic.value, qos: Number(subQos.value),
    }), `${subClient.value} subscribed to ${subTopic.value}.`), 'Subscribe', false);
  sub.setAttribute('aria-label', 'Subscribe a client');
  const unsub = button('Unsubscribe', () => attempt(() => api('POST', 'mqtt/unsubscribe', {
    client_id: subClient.value, topic: subTopic.value,
  }), `${subClient.value} unsubscribed from ${subTopic.value}.`), 'secondary');
  sub.append(unsub);

  // The live view: MQTT over the broker's WebSocket listener, when it has one.
  const listeners = await api('GET', `monitoring/listeners/${enc(state.node)}`);
  const ws = listeners.find(l => l.protocol === 'mqtt:ws');
  const wsPort = ws ? ws.listen.split(':').pop() : '';
  const url = input({ name: 'url', size: 40,
    value: ws ? `ws://${location.hostname}:${wsPort}/mqtt` : '' });
  const liveFilter = input({ name: 'filter', value: '#' });
  const mUser = input({ name: 'mqtt_user', autocomplete: 'off' });
  const mPass = input({ name: 'mqtt_password', type: 'password', autocomplete: 'off' });
  const status = h('span', { class: 'muted', 'aria-live': 'polite' }, ws ? 'Not connected.' : 'This broker has no MQTT WebSocket listener (listener.ws.external).');
  const rows = h('tbody');
  const stop = button('Stop', () => { if (liveClient) liveClient.close(); liveClient = null; }, 'secondary');
  const live = searchForm([field('WebSocket URL', url), field('Filter', liveFilter),
    field('MQTT username', mUser), field('MQTT password', mPass)], () => {
    if (liveClient) liveClient.close();
    const c = new MqttWs(url.value, { username: mUser.value, password: mPass.value });
    liveClient = c;
    rows.replaceChildren();
    status.textContent = 'Connecting…';
    c.onopen = () => { status.textContent = `Connected; subscribing to ${liveFilter.value}`; c.subscribe(liveFilter.value, 0); };
    c.onsuback = rc => { status.textContent = rc === 0x80 ? `Subscription to ${liveFilter.value} refused` : `Receiving ${liveFilter.value}`; };
    c.onclose = reason => { if (liveClient === c) status.textContent = `Stopped: ${reason}`; };
    c.onmessage = (t, bytes, o) => {
      let text;
      try { text = new TextDecoder('utf-8', { fatal: true }).decode(bytes); } catch { text = hex(bytes); }
      rows.prepend(h('tr', {}, h('td', {}, new Date().toLocaleTimeString()), h('td', {}, h('code', {}, t)),
        h('td', { class: 'num' }, o.qos), h('td', {}, o.retain ? 'yes' : ''), h('td', { class: 'mono' }, text)));
      while (rows.children.length > 200) rows.lastChild.remove();
    };
    c.connect();
  }, 'Watch', false);
  live.setAttribute('aria-label', 'Live messages');
  live.append(stop);

  root.append(h('h2', {}, 'Publish (mqtt/publish)'), pub,
    h('h2', {}, 'Subscribe a client (mqtt/subscribe)'), sub,
    h('h2', {}, 'Live messages'), live, h('p', {}, status),
    h('div', { class: 'live' }, h('table', {}, h('thead', {}, h('tr', {},
      ['Time', 'Topic', 'QoS', 'Retained', 'Payload'].map(t => h('th', { scope: 'col' }, t)))), rows)));
}

// ---- Plugins ---------------------------------------------------------------------------------

async function plugins(root, _arg, state) {
  const base = `nodes/${enc(state.node)}`;
  const tbody = h('tbody');
  const editor = h('div');
  async function load() {
    const list = await api('GET', `${base}/plugins`);
    tbody.replaceChildren(...list.map(p => h('tr', {},
      h('td', {}, h('code', {}, p.name)), h('td', {}, p.description), h('td', {}, p.version),
      h('td', {}, p.active ? h('span', { class: 'ok' }, 'running') : 'stopped'),
      h('td', {}, button(p.active ? `Stop ${p.name}` : `Start ${p.name}`, async () => {
        if (await attempt(() => api('PUT', `${base}/plugins/${enc(p.name)}`, { active: !p.active }),
          `${p.name} ${p.active ? 'stopped' : 'started'}.`)) await load();
      }, p.active ? 'secondary' : ''), ' ', button(`Configure ${p.name}`, () => configure(p.name), 'secondary')))));
  }
  async function configure(name) {
    const items = await attempt(() => api('GET', `${base}/plugin_configs/${enc(name)}`));
    if (!items) return;
    if (items.length === 0) {
      editor.replaceChildren(h('h2', {}, `${name}`), h('p', { class: 'muted' }, 'No settings.'));
      return;
    }
    const inputs = items.map(i => input({ name: i.key, value: i.value, 'aria-describedby': `d-${i.key}` }));
    const form = h('form', { class: 'grid', 'aria-label': `Settings of ${name}` },
      items.flatMap((i, n) => {
        inputs[n].id = `pc-${i.key}`;
        return [h('label', { for: inputs[n].id }, i.key),
          h('div', {}, inputs[n], h('div', { id: `d-${i.key}`, class: 'muted' }, i.desc))];
      }),
      h('span'), h('div', {}, h('button', { type: 'submit' }, 'Save')));
    form.addEventListener('submit', ev => {
      ev.preventDefault();
      const body = {};
      items.forEach((i, n) => { if (inputs[n].value !== i.value) body[i.key] = inputs[n].value; });
      attempt(() => api('PUT', `${base}/plugin_configs/${enc(name)}`, body), `${name} settings saved.`);
    });
    editor.replaceChildren(h('h2', {}, `Settings of ${name}`), form);
    inputs[0].focus();
  }
  root.append(h('h1', {}, 'Plugins'), h('table', {}, h('thead', {}, h('tr', {},
    ['Name', 'Description', 'Version', 'State', ''].map(t => h('th', { scope: 'col' }, t)))), tbody), editor);
  await load();
}

// ---- Configs ---------------------------------------------------------------------------------

async function configs(root, _arg, state) {
  const result = await api('GET', `nodes/${enc(state.node)}/configs`);
  const items = Array.isArray(result) ? result : (result[state.node] || Object.values(result)[0] || []);
  const tbody = h('tbody');
  for (const c of items) {
    const value = input({ name: c.key, value: c.value, id: `cfg-${c.key}` });
    const note = h('span', { class: 'muted', 'aria-live': 'polite' });
    const save = h('button', { type: 'submit' }, 'Save');
    const form = h('form', { class: 'inline', 'aria-label': c.key }, value, save, note);
    form.addEventListener('submit', async ev => {
      ev.preventDefault();
      note.className = 'muted';
      note.textContent = '';
      try {
        await api('PUT', `nodes/${enc(state.node)}/configs/${enc(c.app)}`, { key: c.key, value: value.value });
        note.className = 'ok';
        note.textContent = 'saved';
        showInfo(`${c.key} = ${value.value}`);
      } catch (e) {
        note.className = 'error';
        note.setAttribute('role', 'alert');
        note.textContent = e.message;
        showError(e);
      }
    });
    tbody.append(h('tr', {}, h('th', { scope: 'row' }, h('label', { for: value.id }, c.key)),
      h('td', {}, c.datatpye), h('td', {}, form)));
  }
  root.append(h('h1', {}, 'Configs'), h('p', { class: 'muted' }, 'Hot configuration: a change applies at once and is stored.'),
    h('table', {}, h('thead', {}, h('tr', {}, ['Key', 'Type', 'Value'].map(t => h('th', { scope: 'col' }, t)))), tbody));
}

// ---- Listeners -------------------------------------------------------------------------------

async function listeners(root, _arg, state) {
  const list = await api('GET', `monitoring/listeners/${enc(state.node)}`);
  root.append(h('h1', {}, 'Listeners'), h('table', {},
    h('thead', {}, h('tr', {}, ['Protocol', 'Address', 'Acceptors', 'Current', 'Max', 'Closed by reason']
      .map(t => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, list.map(l => h('tr', {}, h('td', {}, l.protocol), h('td', {}, h('code', {}, l.listen)),
      h('td', { class: 'num' }, l.acceptors), h('td', { class: 'num' }, l.current_clients),
      h('td', { class: 'num' }, l.max_clients || 'no limit'),
      h('td', {}, (l.shutdown_count || []).map(s => `${s.reason}: ${s.count}`).join(', ') || '-'))))));
}

// ---- Users -----------------------------------------------------------------------------------

async function users(root) {
  const tbody = h('tbody');
  async function load() {
    const list = await api('GET', 'users');
    tbody.replaceChildren(...list.map(u => h('tr', {}, h('td', {}, u.username), h('td', {}, u.tags),
      h('td', {}, button(`Delete ${u.username}`, async () => {
        if (!confirm(`Delete the user ${u.username}?`)) return;
        if (await attempt(() => api('DELETE', `users/${enc(u.username)}`), `User ${u.username} deleted.`)) await load();
      }, 'danger')))));
  }
  const nu = input({ name: 'username', required: true, autocomplete: 'off' });
  const np = input({ name: 'password', type: 'password', required: true, autocomplete: 'new-password' });
  const nt = input({ name: 'tags', value: 'user' });
  const add = searchForm([field('Username', nu), field('Password', np), field('Tags', nt)], async () => {
    if (await attempt(() => api('POST', 'users', { username: nu.value, password: np.value, tags: nt.value }),
      `User ${nu.value} added.`)) { np.value = ''; await load(); }
  }, 'Add user', false);
  add.setAttribute('aria-label', 'Add a user');
  const cu = input({ name: 'username', required: true });
  const co = input({ name: 'old_pwd', type: 'password', required: true, autocomplete: 'current-password' });
  const cn = input({ name: 'new_pwd', type: 'password', required: true, autocomplete: 'new-password' });
  const change = searchForm([field('Username', cu), field('Old password', co), field('New password', cn)],
    async () => {
      if (await attempt(() => api('PUT', `change_pwd/${enc(cu.value)}`, { old_pwd: co.value, new_pwd: cn.value }),
        `Password of ${cu.value} changed.`)) { co.value = ''; cn.value = ''; }
    }, 'Change password', false);
  change.setAttribute('aria-label', 'Change a password');
  root.append(h('h1', {}, 'Users'), h('table', {}, h('thead', {}, h('tr', {},
    ['Username', 'Tags', ''].map(t => h('th', { scope: 'col' }, t)))), tbody),
  h('h2', {}, 'Add a user'), add, h('h2', {}, 'Change a password'), change);
  await load();
}

export const pages = {
  overview: { title: 'Overview', render: overview },
  clients: { title: 'Clients', render: clients },
  sessions: { title: 'Sessions', render: sessions },
  subscriptions: { title: 'Subscriptions', render: subscriptions },
  routes: { title: 'Routes', render: routes },
  retained: { title: 'Retained', render: retained },
  publish: { title: 'Publish / Subscribe', render: publish },
  plugins: { title: 'Plugins', render: plugins },
  configs: { title: 'Configs', render: configs },
  listeners: { title: 'Listeners', render: listeners },
  users: { title: 'Users', render: users },
};

export { showError };
