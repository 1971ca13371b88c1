// Small DOM helpers: an element builder (text is always set as text, never as HTML), the
// message area, and a paged table that follows the API's cursors.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'style') el.style.cssText = v;  // CSSOM: allowed by the page's CSP
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

let uid = 0;
// A labelled field: [label, control] in a div.
export function field(label, control) {
  if (!control.id) control.id = `f${++uid}`;
  return h('div', {}, h('label', { for: control.id }, label), control);
}

export function showError(e) {
  const box = document.getElementById('messages');
  box.replaceChildren(h('div', { class: 'msg error', role: 'alert' }, e.message || String(e)));
}
export function showInfo(text) {
  const box = document.getElementById('messages');
  box.replaceChildren(h('div', { class: 'msg info' }, text));
}
export function clearMessages() { document.getElementById('messages').replaceChildren(); }

// Runs an action; its error (the API's message) is shown, never swallowed.
export async function attempt(fn, done) {
  try {
    const r = await fn();
    if (done) showInfo(done);
    return r;
  } catch (e) {
    showError(e);
    return undefined;
  }
}

// A paged table. `load(cursor)` returns the API's page envelope ({objects, total_num, cursor});
// `columns` are [title, object => cell content, class?]. Next follows the cursor; Previous
// goes back through the cursors seen.
export function pagedTable(columns, load, { caption } = {}) {
  const tbody = h('tbody');
  const info = h('span', { class: 'muted', 'aria-live': 'polite' });
  const prev = h('button', { type: 'button', class: 'secondary', disabled: true }, 'Previous');
  const next = h('button', { type: 'button', class: 'secondary', disabled: true }, 'Next');
  const table = h('table', {},
    caption ? h('caption', { class: 'muted' }, caption) : null,
    h('thead', {}, h('tr', {}, columns.map(([t, , cls]) => h('th', { scope: 'col', class: cls }, t)))),
    tbody);
  const stack = [];
  let current = '';
  let nextCursor = '';
  async function show(cursor) {
    const page = await attempt(() => load(cursor));
    if (!page) return;
    current = cursor;
    nextCursor = page.cursor || '';
    tbody.replaceChildren(...page.objects.map(o =>
      h('tr', {}, columns.map(([, f, cls]) => h('td', { class: cls }, f(o))))));
    if (page.objects.length === 0) {
      tbody.append(h('tr', {}, h('td', { colspan: columns.length, class: 'muted' }, 'None.')));
    }
    info.textContent = `${page.total_num} in all, page ${stack.length + 1}`;
    prev.disabled = stack.length === 0;
    next.disabled = !nextCursor;
  }
  prev.addEventListener('click', () => show(stack.pop() ?? ''));
  next.addEventListener('click', () => { stack.push(current); show(nextCursor); });
  const el = h('div', {}, table, h('div', { class: 'pager' }, prev, next, info));
  return {
    el,
    reload: () => show(current),
    reset: () => { stack.length = 0; return show(''); },
  };
}

export function hex(bytes) {
  return Array.from(bytes, b => b.toString(16).padStart(2, '0')).join(' ');
}

export function fmtBytes(n) {
  if (!Number.isFinite(n)) return '-';
  const u = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}
