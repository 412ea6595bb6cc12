// Drives mfa-portal's enrolment page in Debian's chromium (playwright-core, no download).
// Usage: node enrol.mjs '{"link": URL, "link2": URL, "expired": URL, "out": DIR}'
// (The screenshots of docs/ are pages.mjs's, of the branded pages.)
// Prints one JSON line {"ok": true, "key": ..., ...} and exits 0, or prints the failure and exits 1.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const args = JSON.parse(process.argv[2]);
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

function oathtool(key, extra = []) {
  return execFileSync('oathtool', ['--totp', '-b', key, ...extra], { encoding: 'utf8' })
    .trim().split('\n').map(s => s.trim());
}

// A code outside every step from 10 minutes back to 10 minutes ahead.
function wrongCode(key) {
  const t = Math.floor(Date.now() / 1000) - 600;
  const valid = new Set(oathtool(key, ['-N', `@${t}`, '-w', '40']));
  for (let n = 0; ; n++) {
    const c = String(n).padStart(6, '0');
    if (!valid.has(c)) return c;
  }
}

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: FLAGS });
const result = { ok: false };
try {
  // 1. The invite link: the code field is the first input; the key in groups of four.
  const ctx = await browser.newContext({ locale: 'en-GB', viewport: { width: 900, height: 1300 } });
  const page = await ctx.newPage();
  const resp = await page.goto(args.link);
  check(resp.status() === 200, `invite page status ${resp.status()}`);
  check((resp.headers()['cache-control'] || '').includes('no-store'), 'no-store on the key page');
  check((resp.headers()['content-security-policy'] || '').includes("default-src 'none'"), 'strict CSP');
  check(await page.locator('input').first().getAttribute('id') === 'code', 'the code field is the first input');
  const shown = (await page.locator('#key').innerText()).trim();
  check(/^([A-Z2-7]{4} )+[A-Z2-7]{1,4}$/.test(shown), `key in groups of four, upper case: ${shown}`);
  const key = shown.replace(/ /g, '');
  result.key = key;
  result.account = (await page.locator('#account').innerText()).trim();
  for (const app of ['Microsoft Authenticator', 'Google Authenticator', 'Authy']) {
    check((await page.content()).includes(app), `names ${app}`);
  }
  // The QR code as drawn, for zbar.
  const svg = await page.locator('#qr svg').evaluate(e => e.outerHTML);
  writeFileSync(join(args.out, 'qr.svg'), '<?xml version="1.0" standalone="yes"?>' + (svg.includes('xmlns=') ? svg : svg.replace('<svg ', '<svg xmlns="http://www.w3.org/2000/svg" ')));

  // 2. A wrong code: said plainly, the invite and the same key kept.
  await page.fill('#code', wrongCode(key));
  await page.click('button[type=submit]');
  const wrong = await page.locator('#message').innerText();
  check(wrong.includes('That code is not right') && wrong.includes('Your link still works'), `wrong-code text: ${wrong}`);
  check((await page.locator('#key').innerText()).replace(/ /g, '') === key, 'the same key after a wrong code');

  // 3. The right code from oathtool: linked.
  await page.fill('#code', oathtool(key)[0]);
  await page.click('button[type=submit]');
  const linked = await page.locator('#message').innerText();
  check(linked.includes('Your device is linked.'), `success text: ${linked}`);
  // What happens next, and another device offered with the same key, the last time it is shown.
  const next = await page.locator('#next').innerText();
  check(next.includes('What happens next') && next.includes('Next time you sign in') && next.includes('you are asked for a code after your password'), `next steps: ${next}`);
  const another = await page.locator('#another').innerText();
  check(another.includes('Link another device') && another.includes('not shown again'), `another device: ${another}`);
  check(await page.locator('input').count() === 0, 'no form after linking');
  check((await page.locator('#another #key').innerText()).replace(/ /g, '') === key, 'the key still shown for another device');
  check(await page.locator('#another #qr svg').count() === 1, 'the QR code for another device');
  check((await page.locator('#done').getAttribute('href')).startsWith('/account'), 'the way on to My account');

  // 4. After leaving: the link is used, and no page shows the key again.
  const again = await page.goto(args.link);
  check(again.status() === 410, `used link status ${again.status()}`);
  const usedText = await page.content();
  check(usedText.includes('This link was used'), 'the used page');
  check(!usedText.includes(key) && !usedText.includes(shown), 'no key on the used page');

  // 5. An expired invite is refused.
  const exp = await page.goto(args.expired);
  check(exp.status() === 410 && (await page.content()).includes('This link has expired'), 'expired refused');
  check(await page.locator('input').count() === 0, 'no form on the expired page');

  // 6. A form posted without its CSRF token is refused, and the invite still works.
  const ctx2 = await browser.newContext({ locale: 'nl-NL' });
  const p2 = await ctx2.newPage();
  await p2.goto(args.link2);
  const key2 = (await p2.locator('#key').innerText()).replace(/ /g, '');
  const forged = await p2.request.post(args.link2 + '?lang=nl', { form: { code: oathtool(key2)[0] } });
  check(forged.status() === 403, `post without CSRF token: status ${forged.status()}`);
  check((await forged.text()).includes('beveiligingstoken'), 'the CSRF page, in Dutch');
  const wrongToken = await p2.request.post(args.link2, { form: { code: oathtool(key2)[0], csrf: 'x'.repeat(32) } });
  check(wrongToken.status() === 403, `post with a wrong CSRF token: status ${wrongToken.status()}`);

  // 7. Dutch, from Accept-Language and from the language link.
  await p2.reload();
  const nl = await p2.content();
  check(nl.includes('Koppel je authenticator-app') && nl.includes('Opslaan') && nl.includes('Ander account'), 'Dutch from Accept-Language');
  check((await p2.locator('#key').innerText()).replace(/ /g, '') === key2, 'the invite kept after the refused posts');
  await p2.click('#lang');
  check((await p2.content()).includes('Link your authenticator app'), 'English through the language link');
  const p3 = await ctx.newPage();
  await p3.goto(args.link2 + '?lang=nl');
  check((await p3.content()).includes('Voer de 6-cijferige code in'), 'Dutch through ?lang=nl');
  result.ok = true;
  console.log(JSON.stringify(result));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e && e.stack || e) }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
