// The dashboard in a real browser: Debian's chromium driven headless by playwright-core.
// Started by tests/integration/41_dashboard_test.cpp (DashboardBrowser), which runs mqttd on
// free ports and a mosquitto_sub client, and passes one JSON argument:
//   {"url": dashboard URL, "chromium": path, "out": screenshot directory,
//    "client": the mosquitto_sub client id, "ws": true when the broker has a WebSocket listener}
// It logs in, finds the client in Clients, kicks it and sees it leave, publishes a retained
// message from Publish (watching it arrive in the live view) and finds it in Retained, stops
// and starts a plugin, saves a config value and sees the validation error for a bad one, adds
// and deletes a user, and logs out; a screenshot of each page goes to `out`. Any console error,
// page error, failed request or HTTP status >= 400 fails it. Exit status 0 = passed; the last
// line of stdout is a JSON summary.
'use strict';
const path = require('path');
const fs = require('fs');
const { chromium } = require('playwright-core');

const cfg = JSON.parse(process.argv[2]);
const problems = [];
const steps = [];
const TIMEOUT = 15000;  // per step; the suite shares the machine with builds

async function main() {
  fs.mkdirSync(cfg.out, { recursive: true });
  const browser = await chromium.launch({
    executablePath: cfg.chromium, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1366, height: 850 } });
    const page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT);
    page.on('console', m => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
    page.on('pageerror', e => problems.push(`page error: ${e.message}`));
    page.on('requestfailed', r => {
      // The live view's WebSocket is closed on purpose when the page changes.
      if (r.resourceType() !== 'websocket') problems.push(`request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`);
    });
    page.on('response', r => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`); });
    page.on('dialog', d => d.accept());
    const shot = async name => {
      await page.screenshot({ path: path.join(cfg.out, `${name}.png`), fullPage: true });
      steps.push(name);
    };
    const go = async (hash, heading) => {
      await page.getByRole('link', { name: hash.label, exact: true }).click();
      await page.waitForURL(`**#/${hash.path}`);
      await page.getByRole('heading', { level: 1, name: heading }).waitFor();
    };
    const info = text => page.locator('#messages .msg.info', { hasText: text }).waitFor();

    // Login (credentials in sessionStorage only).
    await page.goto(cfg.url);
    await page.getByLabel('Username').fill('admin');
    await shot('01-login');
    await page.getByLabel('Password').fill('public');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    const stored = await page.evaluate(() => ({ local: localStorage.length, session: sessionStorage.length }));
    if (stored.local !== 0) problems.push('the login wrote to localStorage');
    if (stored.session !== 1) problems.push('the login is not in sessionStorage');
    await page.locator('.cards dd', { hasText: 'mqttd@' }).first().waitFor();
    // Two samples make the first rates (the page polls every 5 s).
    await page.locator('.chart .legend', { hasText: /received: \d/ }).waitFor({ timeout: 8000 });
    await shot('02-overview');

    // Clients: the mosquitto_sub client, its detail, kick it and see it leave.
    await go({ label: 'Clients', path: 'clients' }, 'Clients');
    await page.getByLabel('Client id starts with').fill(cfg.client.slice(0, 6));
    await page.getByRole('button', { name: 'Search' }).click();
    const row = page.locator('tbody tr', { hasText: cfg.client });
    await row.waitFor();
    await shot('03-clients');
    await row.getByRole('link', { name: cfg.client }).click();
    await page.getByRole('heading', { level: 1, name: `Client ${cfg.client}` }).waitFor();
    await page.getByRole('heading', { name: 'Subscriptions' }).waitFor();
    await page.locator('td code', { hasText: 'dash/#' }).waitFor();
    await page.locator('dd', { hasText: 'dash/will (QoS 0, 4 bytes)' }).waitFor();
    await shot('04-client-detail');
    await page.getByRole('button', { name: 'Clear ACL cache' }).click();
    await info('ACL cache of');
    await page.goBack();
    await page.getByRole('heading', { level: 1, name: 'Clients' }).waitFor();
    await page.getByLabel('Client id starts with').fill(cfg.client);
    await page.getByRole('button', { name: 'Search' }).click();
    await page.locator('tbody tr', { hasText: cfg.client }).getByRole('button', { name: 'Kick' }).click();
    await info(`Kicked ${cfg.client}`);
    await page.locator('tbody tr', { hasText: cfg.client }).waitFor({ state: 'detached' });
    await page.locator('tbody td', { hasText: 'None.' }).waitFor();
    await shot('05-clients-after-kick');

    for (const [label, p, heading, n] of [['Sessions', 'sessions', 'Sessions', '06-sessions'],
      ['Subscriptions', 'subscriptions', 'Subscriptions', '07-subscriptions'],
      ['Routes', 'routes', 'Routes', '08-routes']]) {
      await go({ label, path: p }, heading);
      await page.locator('.pager span', { hasText: 'in all' }).waitFor();
      await shot(n);
    }

    // Publish a retained message, watch it in the live view, find it in Retained.
    await go({ label: 'Publish / Subscribe', path: 'publish' }, 'Publish and subscribe');
    if (cfg.ws) {
      await page.getByLabel('Filter', { exact: true }).fill('dash/#');
      await page.getByRole('button', { name: 'Watch' }).click();
      await page.getByText('Receiving dash/#').waitFor();
    }
    await page.getByLabel('Topic', { exact: true }).fill('dash/retained');
    await page.getByLabel('Payload').fill('hello from the dashboard');
    await page.getByLabel('QoS', { exact: true }).first().selectOption('1');
    await page.getByLabel('Retain').check();
    await page.getByRole('button', { name: 'Publish', exact: true }).click();
    await info('Published to dash/retained');
    if (cfg.ws) await page.locator('.live td', { hasText: 'hello from the dashboard' }).waitFor();
    await shot('09-publish');
    await go({ label: 'Retained', path: 'retained' }, 'Retained messages');
    await page.getByLabel('Topic filter (+ and # allowed)').fill('dash/+');
    await page.getByRole('button', { name: 'Query' }).click();
    const ret = page.locator('tbody tr', { hasText: 'dash/retained' });
    await ret.waitFor();
    await ret.getByRole('button', { name: 'View' }).click();
    await page.locator('pre.payload', { hasText: 'hello from the dashboard' }).waitFor();
    await page.getByRole('button', { name: 'Hex' }).click();
    await page.locator('pre.payload', { hasText: '68 65 6c 6c 6f' }).waitFor();
    await shot('10-retained');

    // A plugin off and on.
    await go({ label: 'Plugins', path: 'plugins' }, 'Plugins');
    await page.getByRole('button', { name: 'Stop emq_retainer' }).click();
    await info('emq_retainer stopped');
    await page.getByRole('button', { name: 'Start emq_retainer' }).click();
    await info('emq_retainer started');
    await page.getByRole('button', { name: 'Stop emq_retainer' }).waitFor();
    await page.getByRole('button', { name: 'Configure emq_retainer' }).click();
    await page.getByRole('heading', { name: 'Settings of emq_retainer' }).waitFor();
    await shot('11-plugins');

    // A config value saved, then a bad one refused with the API's message.
    await go({ label: 'Configs', path: 'configs' }, 'Configs');
    const key = 'mqtt.broker.sys_interval';
    const form = page.getByRole('form', { name: key });
    await form.getByRole('textbox').fill('30');
    await form.getByRole('button', { name: 'Save' }).click();
    await form.getByText('saved').waitFor();
    await form.getByRole('textbox').fill('soon');
    await form.getByRole('button', { name: 'Save' }).click();
    await form.locator('.error', { hasText: 'code 108' }).waitFor();
    await page.locator('#messages .msg.error', { hasText: 'code 108' }).waitFor();
    await shot('12-configs');

    await go({ label: 'Listeners', path: 'listeners' }, 'Listeners');
    await page.locator('td', { hasText: 'dashboard:http' }).waitFor();
    await shot('13-listeners');

    await go({ label: 'Users', path: 'users' }, 'Users');
    await page.getByRole('form', { name: 'Add a user' }).getByLabel('Username').fill('ops');
    await page.getByRole('form', { name: 'Add a user' }).getByLabel('Password').fill('ops-secret');
    await page.getByRole('button', { name: 'Add user' }).click();
    await info('User ops added');
    await page.getByRole('button', { name: 'Delete ops' }).click();
    await info('User ops deleted');
    await shot('14-users');

    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    if (await page.evaluate(() => sessionStorage.length) !== 0) problems.push('logout left the credentials');
    await shot('15-logged-out');
  } finally {
    await browser.close();
  }
}

main().then(() => {
  console.log(JSON.stringify({ ok: problems.length === 0, steps, problems }));
  process.exit(problems.length === 0 ? 0 : 1);
}, e => {
  console.log(JSON.stringify({ ok: false, steps, problems, error: String(e && e.stack || e) }));
  process.exit(1);
});
