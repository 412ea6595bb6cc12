// The approval page and the app's list of waiting requests. A decision is signed in this
// browser with the device key of the request's account (IndexedDB) over the exact message
// docs/PUSH.md defines, ECDSA P-256 with SHA-256 (WebCrypto's IEEE P1363 r || s, sent as
// is), and posted; the portal checks it and decides once.
import { load, all, b64url, decisionMessage, say, answer } from '/js/device.js';

const lang = document.documentElement.lang;

async function decide(box, decision) {
  const t = key => box.dataset[key];
  const buttons = box.querySelectorAll('button[data-decision]');
  const field = document.getElementById('number');
  const typed = field ? field.value.trim() : '';
  if (decision === 'approve' && field && !/^[0-9]{1,2}$/.test(typed)) {
    say(t('typeNumber'), false);
    field.focus();
    return;
  }
  const rec = await load(box.dataset.user);
  if (!rec) {
    say(t('notRegistered'), false);
    return;
  }
  buttons.forEach(b => { b.disabled = true; });
  say(t('working'), true);
  let final = false;
  try {
    const text = decisionMessage(box.dataset.request, rec.device, decision, decision === 'approve' ? typed : '');
    const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, rec.key, new TextEncoder().encode(text));
    const body = new URLSearchParams({
      device: rec.device,
      decision,
      number: decision === 'approve' && typed !== '' ? String(Number(typed)) : '-',
      signature: b64url(sig),
    });
    const resp = await fetch(`/push/${box.dataset.request}?lang=${lang}`, {
      method: 'POST', body, headers: { Accept: 'application/json' },
    });
    const a = await answer(resp);
    final = a.final === true;
    say(a.message || t('failed'), a.ok === true);
    if (a.state) document.getElementById('state').textContent = a.stateText || a.state;
  } catch (e) {
    say(t('failed'), false);
  } finally {
    // Decided (or closed): nothing more to do here.
    if (final) box.hidden = true;
    else buttons.forEach(b => { b.disabled = false; });
  }
}

async function list(box) {
  const t = key => box.dataset[key];
  const ul = document.getElementById('requests');
  const records = await all();
  if (!records || records.length === 0) {
    say(t('notRegistered'), false);
    return;
  }
  let shown = 0;
  for (const rec of records) {
    const resp = await fetch(`/push/pending?lang=${lang}`, {
      method: 'POST', body: new URLSearchParams({ device: rec.device }), headers: { Accept: 'application/json' },
    });
    const a = await answer(resp);
    for (const r of (a.requests || [])) {
      const li = document.createElement('li');
      const link = document.createElement('a');
      link.href = `/push/${r.id}?lang=${lang}`;
      link.className = 'request';
      link.textContent = `${r.service} \u2013 ${r.client_ip || '-'} \u2013 ${r.time}`;
      li.appendChild(link);
      ul.appendChild(li);
      shown += 1;
    }
  }
  say(shown === 0 ? t('none') : t('some'), true);
}

const decideBox = document.getElementById('decide');
if (decideBox) {
  decideBox.querySelectorAll('button[data-decision]').forEach(b => {
    b.addEventListener('click', () => decide(decideBox, b.dataset.decision));
    b.disabled = false;
  });
}
const listBox = document.getElementById('pending');
if (listBox) list(listBox).catch(() => say(listBox.dataset.failed, false));
