// The administrator's console of mfa-portal in Debian's chromium: sign in (PAM password and
// an oathtool code), find a user among many, unlink (then `mfactl auth` with the old key is
// refused), link (the QR code is saved for zbarimg), temporary access, the audit log with the
// administrator as the actor, the roll-out's counts; screenshots where asked.
// Usage: node admin.mjs '{"url": BASE, "user": U, "password": P, "key": BASE32,
//   "target": NAME, "targetKey": BASE32, "search": PREFIX, "mfactl": PATH, "config": PATH,
//   "out": DIR, "shots": DIR|null}'
// Prints one JSON line {"ok": true, ...} and exits 0, or the failure and exits 1.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const args = JSON.parse(process.argv[2]);
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];
const check = (c, what) => { if (!c) throw new Error(`check failed: ${what}`); };
const code = key => execFileSync('oathtool', ['--totp', '-b', key], { encoding: 'utf8' }).trim();
// `mfactl auth USER --ip 198.51.100.1 --code CODE`: its exit status and output.
const auth = (user, c) => {
  try {
    const out = execFileSync(args.mfactl, ['--config', args.config, 'auth', user, '--ip', '198.51.100.1', '--code', c],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { status: 0, out };
  } catch (e) {
    return { status: e.status, out: String(e.stdout) + String(e.stderr) };
  }
};
const shot = async (page, name) => {
  if (args.shots) await page.screenshot({ path: join(args.shots, name), fullPage: true });
};

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: FLAGS });
try {
  const ctx = await browser.newContext({ locale: 'en-GB', viewport: { width: 1200, height: 800 } });
  const page = await ctx.newPage();

  // The sign-in form in Dutch, then in English (the choice is kept in a cookie).
  await page.goto(args.url + '/admin?lang=nl');
  check((await page.locator('h1').innerText()).trim() === 'Aanmelden', 'Dutch sign-in form');
  await page.goto(args.url + '/admin?lang=en');
  check((await page.locator('h1').innerText()).trim() === 'Sign in', 'English sign-in form');

  await page.fill('#user', args.user);
  await page.fill('#password', args.password);
  await page.fill('#code', code(args.key));
  await page.click('#signin button[type=submit]');
  check(page.url().endsWith('/admin/users'), `signed in: ${page.url()}`);
  const who = await page.locator('#who').innerText();
  check(who.includes(args.user) && who.includes('administrator'), `header names the admin: ${who}`);
  const cookies = await ctx.cookies();
  const sess = cookies.find(c => c.name === 'mfa_admin');
  check(sess && sess.httpOnly && sess.sameSite === 'Strict', 'HttpOnly, SameSite=Strict console cookie');
  check(!cookies.some(c => c.name === 'mfa_session'), 'no user-page session');

  // The administrator's time zone: times in Amsterdam's.
  await page.fill('#tzname', 'Europe/Amsterdam');
  await page.click('#tz button[type=submit]');
  check((await page.inputValue('#tzname')) === 'Europe/Amsterdam', 'time zone kept');

  // The first page of everyone, then the user among many.
  check((await page.locator('#users tr').count()) === 51, 'a page of 50 users');
  if (args.shots) await page.screenshot({ path: join(args.shots, 'admin-users.png') });
  await page.fill('#q', args.search);
  await page.click('#find');
  const names = await page.locator('#users td:first-child a').allInnerTexts();
  check(names.includes(args.target), `${args.target} found among ${names.length}: ${names.slice(0, 5)}`);
  await page.click(`#users a:text-is("${args.target}")`);
  check((await page.locator('#mfa').innerText()).trim() === 'MFA linked', 'MFA linked');
  check((await page.locator('#login-count').innerText()).trim() === '1', 'login count 1');
  const lastLogins = await page.locator('#logins').innerText();
  check(lastLogins.includes('Allowed: valid code'), `last logins in words: ${lastLogins}`);
  check(/CES?T/.test(await page.locator('#mfa-created').innerText()), 'times in the chosen zone');
  await shot(page, 'admin-user.png');

  // Unlink, after a confirmation.
  await page.click('#unlink');
  check(await page.locator('#confirm').isVisible(), 'asked to confirm');
  await page.click('#unlink-confirm');
  const unlinked = (await page.locator('#message').innerText()).trim();
  check(unlinked.includes('unlinked'), `unlink message: ${unlinked}`);
  check((await page.locator('#mfa').innerText()).trim() === 'No MFA code linked', 'no MFA linked now');
  const old = auth(args.target, code(args.targetKey));

  // Link: the personal QR code and key, shown once.
  await page.click('#link');
  const svg = await page.locator('#qr svg').evaluate(e => e.outerHTML);
  writeFileSync(join(args.out, 'admin-qr.svg'), svg);
  const key = (await page.locator('#key').innerText()).replace(/\s/g, '');
  check((await page.locator('#mfa').innerText()).trim() === 'MFA linked', 'linked again');

  // Temporary access, shown once.
  await page.selectOption('#valid', '1h');
  await page.click('#temp-access');
  const temp = (await page.locator('#temp-code').innerText()).replace(/\s/g, '');
  check(/^[0-9]{8}$/.test(temp), `temporary code shown: ${temp}`);

  // The console's own log: every action with the administrator as the actor.
  await page.goto(args.url + '/admin/log?user=' + encodeURIComponent(args.target) + '&since=1h');
  const rows = await page.locator('#log tr').evaluateAll(trs => trs.slice(1).map(tr =>
    Array.from(tr.querySelectorAll('td')).map(td => td.innerText)));
  const actor = 'mfa-portal:admin:' + args.user;
  for (const what of ['Unlinked: key removed', 'Linked: set by an administrator', 'Temporary access: issued']) {
    check(rows.some(r => r[2] === actor && r[4] === what), `log shows "${what}" by ${actor}: ${JSON.stringify(rows)}`);
  }

  // The roll-out, counted now.
  await page.goto(args.url + '/admin/rollout?recount=1');
  const counts = {};
  for (const id of ['users', 'enrolled', 'grace', 'overdue', 'never-seen', 'locked', 'exempt', 'invites-open', 'invites-expired']) {
    counts[id] = Number((await page.locator('#count-' + id).innerText()).trim());
  }
  check(await page.locator('#share-chart').isVisible(), 'the share chart');
  check(await page.locator('#per-day').isVisible(), 'enrolments per day');
  const goLive = (await page.locator('#go-live').innerText()).trim();
  if (args.shots) {
    await page.setViewportSize({ width: 1200, height: 1150 });
    await page.screenshot({ path: join(args.shots, 'admin-rollout.png') });
  }

  // The same page in Dutch.
  await page.goto(args.url + '/admin/rollout?lang=nl');
  check((await page.locator('h1').innerText()).trim() === 'Uitrol', 'Dutch roll-out page');

  console.log(JSON.stringify({ ok: true, key, temp, old, counts, goLive }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e && e.stack || e) }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
