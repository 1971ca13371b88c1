// The dashboard's shell: login, logout, the hash router (#/clients, #/clients/<id>, ...).
import { api, credentials, login, logout, setUnauthorizedHandler } from './api.js';
import { clearMessages, showError } from './ui.js';
import { pages, stopTimers } from './pages.js';

const $ = id => document.getElementById(id);
export const state = { node: '' };

function showLogin(message) {
  stopTimers();
  $('shell').hidden = true;
  $('login').hidden = false;
  const err = $('login-error');
  err.hidden = !message;
  err.textContent = message || '';
  $('login-user').focus();
}

async function enter() {
  const nodes = await api('GET', 'management/nodes');
  state.node = nodes[0]?.name || '';
  $('node-name').textContent = state.node;
  $('user-name').textContent = credentials().username;
  $('login').hidden = true;
  $('shell').hidden = false;
  if (!location.hash || location.hash === '#/') location.hash = '#/overview';
  else route();
}

async function route() {
  if (!credentials()) {
    if ($('login').hidden) showLogin();
    return;
  }
  stopTimers();
  clearMessages();
  const [, name = 'overview', ...rest] = location.hash.split('/');
  const arg = rest.length ? decodeURIComponent(rest.join('/')) : undefined;
  for (const a of document.querySelectorAll('nav a')) {
    if (a.getAttribute('href') === `#/${name}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const page = pages[name] || pages.overview;
  const root = $('page');
  root.replaceChildren();
  document.title = `${page.title} · mqttd`;
  try {
    await page.render(root, arg, state);
  } catch (e) {
    showError(e);
  }
}

setUnauthorizedHandler(() => { logout(); showLogin('Your session ended: sign in again.'); });

$('login-form').addEventListener('submit', async ev => {
  ev.preventDefault();
  const button = ev.target.querySelector('button');
  button.disabled = true;
  try {
    await login($('login-user').value, $('login-pass').value);
    $('login-pass').value = '';
    await enter();
  } catch (e) {
    showLogin(e.message);
  } finally {
    button.disabled = false;
  }
});

$('logout').addEventListener('click', () => {
  logout();
  location.hash = '';
  showLogin('Logged out.');
});

window.addEventListener('hashchange', route);

if (credentials()) {
  enter().catch(e => showLogin(e.message));
} else {
  showLogin();
}
