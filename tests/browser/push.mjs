// Push approval in Debian's chromium (playwright-core) playing the phone, on a phone-sized
// viewport, against the real mfa-portal and web-push-testing as the push service.
// Usage: node push.mjs '{"url": PORTAL, "api": PUSH_SERVICE_API, "vapid": B64URL,
//   "user": U, "key": BASE32, "helper": PUSH_REQUEST_BIN, "config": MFA_TOML, "shots": DIR|null}'
// Prints one JSON line {"ok": true, ...} and exits 0, or the failure and exits 1.
//
// Chromium's own pushManager.subscribe needs Google's push service (FCM), which these
// machines cannot reach: the page's subscribe is stubbed (addInitScript) to return a
// subscription made at web-push-testing for the portal's VAPID key, and what the service
// worker would receive is handed to it through CDP (ServiceWorker.deliverPushMessage).
// Everything else is the browser's own: the service worker, Notification, WebCrypto's
// non-extractable key in IndexedDB, the signature, the pages.
import { chromium } from 'playwright-core';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';

const args = JSON.parse(process.argv[2]);
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];
const check = (c, what) => { if (!c) throw new Error(`check failed: ${what}`); };
const code = key => execFileSync('oathtool', ['--totp', '-b', key], { encoding: 'utf8' }).trim();
const sleep = ms => new Promise(r => setTimeout(r, ms));
// The push-request helper (a front end's calls into the core): its JSON and exit status.
const helper = (...a) => {
  const r = spawnSync(args.helper, [args.config, ...a], { encoding: 'utf8' });
  const line = r.stdout.trim().split('\n').pop();
  let v = null;
  try { v = JSON.parse(line); } catch (e) { throw new Error(`push-request ${a.join(' ')}: ${r.stdout}${r.stderr}`); }
  return { status: r.status, v };
};
const start = (service, ip = '192.0.2.7') => {
  const r = helper('start', args.user, service, ip);
  check(r.status === 0, `a sign-in request starts: ${JSON.stringify(r.v)}`);
  return r.v;
};
const verify = (service, id, ip = '192.0.2.7') => helper('verify', args.user, service, ip, id).v;
const api = async (path, body) => {
  const r = await fetch(args.api + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return r.json();
};
// The payloads the push service took for this phone, once there are `count` of them: the
// phone decides on a request it was pushed.
const delivered = async (hash, count) => {
  for (let i = 0; i < 200; i++) {
    const got = (await api('/get-notifications', { clientHash: hash })).data.messages;
    if (got.length >= count) return got;
    await sleep(50);
  }
  throw new Error(`push ${count} never reached the push service`);
};
const shot = async (page, name) => {
  if (args.shots) await page.screenshot({ path: join(args.shots, name), fullPage: true });
};
// The page's status line once it says something new (not `before`, not "working...").
// Polled from here: the pages' policy allows no string evaluation, which waitForFunction
// needs.
const message = async (page, before = '') => {
  for (let i = 0; i < 300; i++) {
    const m = await page.locator('#message').evaluate(e => ({ hidden: e.hidden, text: e.textContent }));
    if (!m.hidden && m.text && m.text !== before && !m.text.endsWith('\u2026')) return m.text.trim();
    await sleep(50);
  }
  throw new Error(`the page said nothing new after ${JSON.stringify(before)}`);
};
// Waits until the page's script enabled the button `sel`.
const enabled = (page, sel) => page.locator(`${sel}:not([disabled])`).waitFor();

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: FLAGS });
const result = { ok: false };
try {
  const ctx = await browser.newContext({
    locale: 'en-GB', viewport: { width: 390, height: 844 }, deviceScaleFactor: 2,
  });
  await ctx.grantPermissions(['notifications'], { origin: args.url });
  // The phone's subscription at the push service, for the portal's VAPID key.
  const sub = (await api('/subscribe', { applicationServerKey: args.vapid, userVisibleOnly: 'true' })).data;
  check(sub && sub.endpoint && sub.clientHash, `a subscription at web-push-testing: ${JSON.stringify(sub)}`);
  await ctx.addInitScript(s => {
    const b64 = bytes => btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    PushManager.prototype.getSubscription = async function () { return null; };
    PushManager.prototype.subscribe = async function (options) {
      const k = options.applicationServerKey;
      const bytes = k instanceof ArrayBuffer ? new Uint8Array(k) : new Uint8Array(k.buffer, k.byteOffset, k.byteLength);
      window.__subscribed = { key: b64(bytes), userVisibleOnly: options.userVisibleOnly };
      const json = { endpoint: s.endpoint, expirationTime: null, keys: s.keys };
      return { endpoint: s.endpoint, expirationTime: null, options, toJSON: () => json, unsubscribe: async () => true };
    };
  }, { endpoint: sub.endpoint, keys: sub.keys });

  const page = await ctx.newPage();
  const errors = [];
  page.on('console', m => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', e => errors.push(String(e)));

  // 1. Sign in to My account (password and code), then "Use this phone to approve sign-ins".
  await page.goto(args.url + '/account');
  check(await page.locator('script').count() === 0, 'the sign-in page has no script');
  await page.fill('#user', args.user);
  await page.fill('#password', 'any');
  await page.fill('#code', code(args.key));
  await page.click('button[type=submit]');
  check((await page.locator('#user').innerText()).trim() === args.user, 'signed in');
  check(await page.locator('script').count() === 0, 'My account has no script');
  check(await page.locator('#phones-none').count() === 1, 'no phone listed yet');
  await page.click('#phone-register');
  check(new URL(page.url()).pathname === '/account/phone', `the registration page: ${page.url()}`);
  check(await page.locator('script[src="/js/register.js"]').count() === 1, 'its own script');
  await enabled(page, '#register-button');
  await page.fill('#name', 'Pixel <of> "Alice"');
  await shot(page, 'push-register.png');
  await page.click('#register-button');
  const registered = await message(page);
  check(registered.startsWith('This phone is registered'), `registered: ${registered}`);
  const subscribed = await page.evaluate(() => window.__subscribed);
  check(subscribed.key === args.vapid, `subscribed with the portal's VAPID key: ${subscribed.key}`);
  check(subscribed.userVisibleOnly === true, 'userVisibleOnly');
  // The device key: in IndexedDB, private, P-256, signing only, not extractable.
  const rec = await page.evaluate(async user => {
    const db = await new Promise((res, rej) => { const r = indexedDB.open('mfa-push', 1); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
    const v = await new Promise((res, rej) => { const q = db.transaction('devices').objectStore('devices').get(user); q.onsuccess = () => res(q.result); q.onerror = () => rej(q.error); });
    let exported = 'no';
    try { await crypto.subtle.exportKey('pkcs8', v.key); exported = 'yes'; } catch (e) { exported = e.name; }
    return { device: v.device, type: v.key.type, extractable: v.key.extractable, alg: v.key.algorithm.name,
      curve: v.key.algorithm.namedCurve, usages: v.key.usages, exported };
  }, args.user);
  check(/^[0-9a-f]{32}$/.test(rec.device), `a device id: ${rec.device}`);
  check(rec.type === 'private' && rec.extractable === false && rec.alg === 'ECDSA' && rec.curve === 'P-256', `the key: ${JSON.stringify(rec)}`);
  check(rec.usages.length === 1 && rec.usages[0] === 'sign', `sign only: ${rec.usages}`);
  check(rec.exported === 'InvalidAccessError', `the key cannot be exported: ${rec.exported}`);
  await page.goto(args.url + '/account');
  check((await page.locator('#phones .phone-name').innerText()).trim() === 'Pixel <of> "Alice"', 'My account lists the phone, its name as text');

  // 2. A sign-in request: delivered by the portal to the push service, which checked the
  //    VAPID token and decrypted the payload; then handed to the service worker.
  const cdp = await ctx.newCDPSession(page);
  const registrations = [];
  cdp.on('ServiceWorker.workerRegistrationUpdated', e => registrations.push(...e.registrations));
  await cdp.send('ServiceWorker.enable');
  const first = start('sshd');
  check(Number.isInteger(first.number) && first.number >= 10 && first.number <= 99, `a number: ${first.number}`);
  const payloads = await delivered(sub.clientHash, 1);
  check(payloads.length === 1, `one push delivered: ${JSON.stringify(payloads)}`);
  const payload = JSON.parse(payloads[0]);
  check(payload.v === 1 && payload.id === first.id && payload.service === 'sshd' && payload.client_ip === '192.0.2.7', `the payload: ${payloads[0]}`);
  check(payload.number_matching === true && !('number' in payload), `no number in the payload: ${payloads[0]}`);
  for (let i = 0; i < 400 && !registrations.some(r => r.scopeURL === args.url + '/'); i++) await sleep(50);
  const reg = registrations.find(r => r.scopeURL === args.url + '/');
  check(reg, `the service worker is registered: ${JSON.stringify(registrations)}`);
  await cdp.send('ServiceWorker.deliverPushMessage', { origin: args.url, registrationId: reg.registrationId, data: payloads[0] });
  let shown = [];
  for (let i = 0; i < 400 && shown.length === 0; i++) {
    shown = await page.evaluate(async () => (await (await navigator.serviceWorker.ready).getNotifications())
      .map(n => ({ title: n.title, body: n.body, tag: n.tag, data: n.data })));
    if (shown.length === 0) await sleep(50);
  }
  check(shown.length === 1, `one notification: ${JSON.stringify(shown)}`);
  const n = shown[0];
  check(n.title === 'Approve sign-in?' && n.tag === first.id, `the notification: ${JSON.stringify(n)}`);
  check(n.body.includes('sshd') && n.body.includes('192.0.2.7') && n.body.includes('type the number'), `its text: ${n.body}`);
  check(n.data.url === `/push/${first.id}?lang=en`, `it opens the approval page: ${n.data.url}`);
  result.notification = n;

  // 3. The approval page: service, address, time, the number; approve with the number.
  await page.goto(args.url + n.data.url);
  check(await page.locator('script[src="/js/approve.js"]').count() === 1, 'the approval page has its own script');
  check((await page.locator('#req-service').innerText()).trim() === 'sshd', 'the service shown');
  check((await page.locator('#req-address').innerText()).trim() === '192.0.2.7', 'the address shown');
  check(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test((await page.locator('#req-time').innerText()).trim()), 'the time shown');
  await enabled(page, '#approve');
  await page.click('#approve');
  const noNumber = await message(page);
  check(noNumber.startsWith('Type the two-digit number'), `approve without the number: ${noNumber}`);
  check(helper('status', first.id).v.state === 'pending', 'nothing sent without the number');
  await page.reload();
  await enabled(page, '#approve');
  await page.fill('#number', String(first.number));
  await shot(page, 'push-approve.png');
  await page.click('#approve');
  const approved = await message(page);
  check(approved.startsWith('Approved'), `approved: ${approved}`);
  check((await page.locator('#state').innerText()).trim() === 'approved', 'the state on the page');
  check(!(await page.locator('#decide').isVisible()), 'the buttons are gone once decided');
  await shot(page, 'push-approved.png');
  const v1 = verify('sshd', first.id);
  check(v1.allowed === true && v1.reason === 'push_approved', `the login is let in: ${JSON.stringify(v1)}`);
  check(verify('sshd', first.id).reason === 'push_used', 'one approval, one login');
  // Decided once: the page opened again offers no buttons.
  await page.reload();
  check(await page.locator('#approve').count() === 0, 'no buttons on a decided request');

  // 4. Deny.
  const second = start('sshd');
  await delivered(sub.clientHash, 2);
  await page.goto(`${args.url}/push/${second.id}`);
  await enabled(page, '#deny');
  await page.click('#deny');
  const denied = await message(page);
  check(denied.startsWith('Denied'), `denied: ${denied}`);
  const v2 = verify('sshd', second.id);
  check(v2.allowed === false && v2.reason === 'push_denied', `denied login: ${JSON.stringify(v2)}`);

  // 5. A wrong number denies.
  const third = start('sshd');
  await delivered(sub.clientHash, 3);
  await page.goto(`${args.url}/push/${third.id}`);
  await enabled(page, '#approve');
  await page.fill('#number', String(third.number === 99 ? 10 : third.number + 1));
  await page.click('#approve');
  const wrong = await message(page);
  check(wrong.startsWith('That is not the number'), `a wrong number: ${wrong}`);
  check(verify('sshd', third.id).reason === 'push_denied', 'a wrong number denies the login');

  // 6. The app's list of waiting requests (its start page), in Dutch; approve from it.
  const fourth = start('vpn', '198.51.100.9');
  await delivered(sub.clientHash, 4);
  await page.goto(args.url + '/push?lang=nl');
  await page.waitForSelector('#requests a.request');
  const listed = (await page.locator('#requests a.request').innerText()).trim();
  check(listed.includes('vpn') && listed.includes('198.51.100.9'), `listed: ${listed}`);
  check((await message(page)).startsWith('Kies een verzoek'), 'the list says what to do, in Dutch');
  await page.click('#requests a.request');
  check(new URL(page.url()).pathname === `/push/${fourth.id}`, `the list opens the request: ${page.url()}`);
  for (const [sel, text] of [['#approve', 'Goedkeuren'], ['#deny', 'Weigeren'], ['#fraud', 'Dit was ik niet']]) {
    check((await page.locator(sel).innerText()).trim() === text, `${sel} in Dutch`);
  }
  check((await page.locator('label[for=number]').innerText()).includes('Getal op het aanmeldscherm'), 'the number field in Dutch');
  await shot(page, 'push-approve-nl.png');
  await enabled(page, '#approve');
  await page.fill('#number', String(fourth.number));
  await page.click('#approve');
  check((await message(page)).startsWith('Goedgekeurd'), 'approved, in Dutch');
  check(verify('vpn', fourth.id, '198.51.100.9').reason === 'push_approved', 'approved from the list');

  // 7. "This wasn't me": denied, and the next push is refused as blocked.
  const fifth = start('sshd');
  await delivered(sub.clientHash, 5);
  await page.goto(`${args.url}/push/${fifth.id}`);
  await enabled(page, '#fraud');
  await page.click('#fraud');
  const fraud = await message(page);
  check(fraud.startsWith('Reported'), `reported: ${fraud}`);
  check(verify('sshd', fifth.id).reason === 'push_fraud', 'the login is refused as fraud');
  const blocked = helper('start', args.user, 'sshd', '192.0.2.7');
  check(blocked.status === 1 && blocked.v.refused === 'push_blocked', `the next push is blocked: ${JSON.stringify(blocked.v)}`);

  // 8. Remove the phone in My account: it is gone, and no push can be sent to it.
  await page.goto(args.url + '/account');
  await page.click('.phone-remove');
  const removed = (await page.locator('#message').innerText()).trim();
  check(removed.startsWith('The phone was removed'), `removed: ${removed}`);
  check(await page.locator('#phones-none').count() === 1, 'no phone listed');

  // The registration page in Dutch.
  await page.goto(args.url + '/account/phone?lang=nl');
  check((await page.locator('#register-button').innerText()).trim() === 'Deze telefoon gebruiken om aanmeldingen goed te keuren', 'the registration in Dutch');
  await shot(page, 'push-register-nl.png');

  check(errors.length === 0, `no script errors: ${errors.join('; ')}`);
  Object.assign(result, { ok: true, device: rec.device, clientHash: sub.clientHash, requests: [first.id, second.id, third.id, fourth.id, fifth.id] });
  console.log(JSON.stringify(result));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e && e.stack || e) }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
