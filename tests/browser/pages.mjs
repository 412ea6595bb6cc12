// Every user page of mfa-portal in Debian's chromium (playwright-core), in English and Dutch,
// checked with axe-core (npm): no serious or critical violation. With "shots", the
// screenshots of docs/ (portal-*.png, the Dutch ones portal-*-nl.png).
// Usage: node pages.mjs '{"url": BASE, "invites": [URL_EN, URL_NL], "request": PUSH_ID, "shots": DIR|null}'
// Each invite's user is enrolled here (its key from the page, codes from oathtool) and signs
// in to My account with it. Prints one JSON line {"ok": true, "checked": [...]} and exits 0,
// or the failure (with every violation found) and exits 1.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const args = JSON.parse(process.argv[2]);
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];
const check = (c, what) => { if (!c) throw new Error(`check failed: ${what}`); };
const now = () => Math.floor(Date.now() / 1000);
const code = (key, t = now()) => execFileSync('oathtool', ['--totp', '-b', key, '-N', `@${t}`], { encoding: 'utf8' }).trim();
// axe-core's own build, injected through the DevTools protocol: the pages' policy allows no
// script of ours, and this leaves it as it is.
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const checked = [];
const violations = [];
// axe on the page as it stands: the serious and critical violations are kept, by page.
async function audit(page, name) {
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) await page.evaluate(AXE);
  const result = await page.evaluate(() => window.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
    resultTypes: ['violations'],
  }));
  for (const v of result.violations) {
    if (v.impact === 'serious' || v.impact === 'critical') {
      violations.push({ page: name, id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.html.slice(0, 160)) });
    }
  }
  checked.push(name);
}
async function shot(page, file) {
  if (args.shots) await page.screenshot({ path: join(args.shots, file), fullPage: true });
}

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: FLAGS });
try {
  // The checker itself first: on a copy of the sign-in page given a field without a label
  // and grey-on-white text, axe must report both, so a check that silently saw nothing
  // cannot pass.
  {
    const page = await browser.newPage();
    await page.goto(`${args.url}/account`);
    await page.evaluate(() => {
      const main = document.querySelector('main');
      main.append(document.createElement('input'));
      const p = document.createElement('p');
      p.textContent = 'faint';
      p.style.color = '#cccccc';
      main.append(p);
    });
    await page.evaluate(AXE);
    const r = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
    const ids = r.violations.map(v => v.id);
    check(ids.includes('label') && ids.includes('color-contrast'), `axe sees a broken page: ${ids}`);
    await page.close();
  }
  for (const [i, lang] of ['en', 'nl'].entries()) {
    const sfx = lang === 'en' ? '' : '-nl';
    const ctx = await browser.newContext({
      locale: lang === 'en' ? 'en-GB' : 'nl-NL', viewport: { width: 820, height: 1000 },
    });
    const page = await ctx.newPage();
    const q = `?lang=${lang}`;
    const at = (what) => `${what} (${lang})`;

    // The sign-in form, and a page that says one thing (an unknown link).
    await page.goto(`${args.url}/account${q}`);
    await audit(page, at('sign-in'));
    await shot(page, `portal-signin${sfx}.png`);
    await page.goto(`${args.url}/enrol/nothing${q}`);
    await audit(page, at('unknown link'));

    // The invite: its steps, then linked.
    await page.goto(args.invites[i] + q);
    check(await page.locator('#qr svg').count() === 1, 'the QR code');
    await audit(page, at('enrol'));
    await shot(page, `portal-enrol${sfx}.png`);
    const key = (await page.locator('#key').innerText()).replace(/ /g, '');
    const user = (await page.locator('#user').innerText()).trim();
    await page.fill('#code', code(key));
    await page.click('button[type=submit]');
    check(await page.locator('#next').count() === 1, 'linked, with what happens next');
    await audit(page, at('linked'));
    await shot(page, `portal-linked${sfx}.png`);

    // My account, signed in with that key (the next step's code: the one typed at Save is
    // spent), and its pages.
    await page.click('#done');
    await page.fill('#user', user);
    await page.fill('#password', 'any');
    await page.fill('#code', code(key, now() + 30));
    await page.click('button[type=submit]');
    check((await page.locator('#user').innerText()).trim() === user, `signed in: ${await page.content()}`);
    await audit(page, at('my account'));
    await shot(page, `portal-account${sfx}.png`);
    await page.click('#backup-codes');
    check(await page.locator('#backup-codes-confirm').count() === 1, 'asked before new backup codes');
    await audit(page, at('backup codes, asked'));
    await shot(page, `portal-backup-confirm${sfx}.png`);
    await page.click('#backup-codes-confirm');
    check(await page.locator('#backup-codes li').count() === 10, 'ten backup codes');
    await audit(page, at('backup codes, shown'));
    await page.click('#replace-start');
    check(await page.locator('#replace-confirm').count() === 1, 'the new key');
    await audit(page, at('replace key'));
    await shot(page, `portal-replace${sfx}.png`);
    await page.click('#replace-cancel');
    await page.click('#unlock');
    await audit(page, at('unlocked'));

    // The push pages: registering this phone, the app's list, a request's approval page.
    await page.goto(`${args.url}/account/phone${q}`);
    await page.locator('#register-button:not([disabled])').waitFor({ timeout: 5000 }).catch(() => {});
    await audit(page, at('phones'));
    await page.goto(`${args.url}/push${q}`);
    await audit(page, at('sign-in requests'));
    await page.goto(`${args.url}/push/${args.request}${q}`);
    check(await page.locator('#approve').count() === 1, 'the approval page');
    await audit(page, at('approval'));
    await ctx.close();
  }
  if (violations.length > 0) {
    console.log(JSON.stringify({ ok: false, error: 'serious or critical accessibility violations', violations, checked }));
    process.exitCode = 1;
  } else {
    console.log(JSON.stringify({ ok: true, checked }));
  }
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e && e.stack || e), violations, checked }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
