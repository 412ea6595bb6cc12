// Signs in to mfa-portal's "My account" in Debian's chromium and unlocks this network.
// Usage: node account.mjs '{"url": BASE, "user": U, "password": P, "key": BASE32, "forwarded": IP|null}'
// Prints one JSON line {"ok": true, "message": ...} and exits 0, or the failure and exits 1.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';

const args = JSON.parse(process.argv[2]);
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];
const check = (c, what) => { if (!c) throw new Error(`check failed: ${what}`); };
const code = key => execFileSync('oathtool', ['--totp', '-b', key], { encoding: 'utf8' }).trim();

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: FLAGS });
try {
  const headers = args.forwarded ? { 'X-Forwarded-For': args.forwarded } : {};
  const ctx = await browser.newContext({ locale: 'en-GB', extraHTTPHeaders: headers });
  const page = await ctx.newPage();
  await page.goto(args.url + '/account');
  // A wrong password first: refused, nothing changed.
  await page.fill('#user', args.user);
  await page.fill('#password', args.password + 'x');
  await page.fill('#code', code(args.key));
  await page.click('button[type=submit]');
  check((await page.locator('#message').innerText()).includes('Wrong user name, password or code'), 'wrong password refused');
  await page.fill('#user', args.user);
  await page.fill('#password', args.password);
  await page.fill('#code', code(args.key));
  await page.click('button[type=submit]');
  check((await page.locator('#user').innerText()).trim() === args.user, 'signed in');
  const account = await page.content();
  check(account.includes('MFA set up') && account.includes('Last logins'), 'account facts shown');
  await page.click('#unlock');
  const msg = (await page.locator('#message').innerText()).trim();
  check(msg.startsWith('Unlocked.'), `unlock message: ${msg}`);
  // Make new backup codes asks first (none yet: nothing to lose), then makes them.
  await page.click('#backup-codes');
  check(await page.locator('#backup-codes li').count() === 0, 'no codes before the confirmation');
  check((await page.locator('#backup-confirm-text').innerText()).includes('no usable backup codes'), 'the confirmation says what there is');
  await page.click('#backup-codes-confirm');
  const codes = await page.locator('#backup-codes li').count();
  check(codes === 10, `10 backup codes shown, saw ${codes}`);
  const cookies = await ctx.cookies();
  const sess = cookies.find(c => c.name === 'mfa_session');
  check(sess && sess.httpOnly && sess.sameSite === 'Strict', 'HttpOnly, SameSite=Strict session cookie');
  console.log(JSON.stringify({ ok: true, message: msg }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e && e.stack || e) }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
