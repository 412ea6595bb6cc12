// "Replace key" in mfa-portal's My account, in Debian's chromium (playwright-core).
// Usage: node replace.mjs '{"url": BASE, "user": U, "password": P, "key": BASE32, "mfactl": PATH, "config": PATH}'
// Prints one JSON line {"ok": true, "key": NEW_BASE32} and exits 0, or the failure and exits 1.
import { chromium } from 'playwright-core';
import { execFileSync, spawnSync } from 'node:child_process';

const args = JSON.parse(process.argv[2]);
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];
const check = (c, what) => { if (!c) throw new Error(`check failed: ${what}`); };
const now = () => Math.floor(Date.now() / 1000);
const code = (key, t = now()) => execFileSync('oathtool', ['--totp', '-b', key, '-N', `@${t}`], { encoding: 'utf8' }).trim();
// `mfactl auth USER --code CODE` from an untrusted address: [exit status, output].
const auth = c => {
  const r = spawnSync(args.mfactl, ['--config', args.config, 'auth', args.user, '--ip', '198.51.100.40', '--code', c], { encoding: 'utf8' });
  return [r.status, r.stdout + r.stderr];
};

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: FLAGS });
try {
  const ctx = await browser.newContext({ locale: 'en-GB' });
  const page = await ctx.newPage();
  await page.goto(args.url + '/account');
  await page.fill('#user', args.user);
  await page.fill('#password', args.password);
  await page.fill('#code', code(args.key));
  await page.click('button[type=submit]');
  check((await page.locator('#user').innerText()).trim() === args.user, 'signed in');
  const changedBefore = (await page.locator('#mfa-changed').innerText()).trim();

  // 1. Start: a new QR code and key, never cached.
  const [resp] = await Promise.all([page.waitForResponse(r => r.request().method() === 'POST'), page.click('#replace-start')]);
  check((resp.headers()['cache-control'] || '').includes('no-store'), 'no-store on the new key page');
  check(await page.locator('#qr svg').count() === 1, 'an inline SVG QR code');
  const shown = (await page.locator('#key').innerText()).trim();
  check(/^([A-Z2-7]{4} )+[A-Z2-7]{1,4}$/.test(shown), `key in groups of four, upper case: ${shown}`);
  const key = shown.replace(/ /g, '');
  check(key !== args.key, 'a new key');
  // The choice to also end the old key's codes and unlocks is offered, and not made for the user.
  check(await page.locator('#end-old').count() === 1 && !(await page.locator('#end-old').isChecked()), 'the end-old box, not ticked');

  // 2. A wrong code (the old key's): refused, the old key kept and still working.
  await page.fill('#code', code(args.key));
  await page.click('#replace-confirm');
  const wrong = (await page.locator('#message').innerText()).trim();
  check(wrong.includes('not right for the new key') && wrong.includes('current key still works'), `wrong-code text: ${wrong}`);
  check((await page.locator('#key').innerText()).replace(/ /g, '') === key, 'the same new key after a wrong code');
  const [st, out] = auth(code(args.key, now() + 30));
  check(st === 0, `the old key still logs in before the confirmation: ${out}`);

  // 3. The new app's code: saved, "last changed" moves, the key is shown no more.
  await page.fill('#code', code(key));
  await page.click('#replace-confirm');
  const ok = (await page.locator('#message').innerText()).trim();
  check(ok.startsWith('Your new key is saved'), `saved text: ${ok}`);
  const changedAfter = (await page.locator('#mfa-changed').innerText()).trim();
  check(changedAfter !== changedBefore && changedAfter !== 'never', `last changed: ${changedBefore} -> ${changedAfter}`);
  const noKey = async what => {
    const html = await page.content();
    check(!html.includes(key) && !html.includes(shown) && await page.locator('#key').count() === 0, `no new key on ${what}`);
  };
  await noKey('the account page');
  await page.reload();
  await noKey('the reloaded account page');
  // Posting the confirmation again (the back button, a replay) shows no key either.
  const csrf = await page.locator('input[name=csrf]').first().getAttribute('value');
  const again = await page.request.post(args.url + '/account', { form: { action: 'replace-confirm', code: code(key), csrf } });
  const againText = await again.text();
  check(againText.includes('no new key waiting') && !againText.includes(shown), 'a second confirmation shows nothing');

  // 4. A replacement started and left by signing out is gone with the session.
  await page.click('#replace-start');
  const left = (await page.locator('#key').innerText()).trim();
  await page.goto(args.url + '/account');
  await page.click('#signout');
  check(await page.locator('#signin').count() === 1, 'signed out');
  const fresh = await page.locator('input[name=csrf]').first().getAttribute('value');
  const back = await page.request.post(args.url + '/account', { form: { action: 'replace-confirm', code: code(key), csrf: fresh } });
  check(back.status() === 400, `a replacement after sign-out: status ${back.status()}`);
  check(!(await back.text()).includes(left), 'no pending key after the session ended');
  console.log(JSON.stringify({ ok: true, key, left: left.replace(/ /g, '') }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e && e.stack || e) }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
