// The phone's side of push approval, shared by the registration page and the approval page
// (docs/PUSH.md). What this browser holds for each account it approves for, in IndexedDB:
// the device id the portal gave it and the ECDSA P-256 private key made here with
// `extractable: false`, so the key can sign but no script can read it out.

const DB = 'mfa-push';
const STORE = 'devices';

function open() {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => r.result.createObjectStore(STORE, { keyPath: 'user' });
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function run(mode, f) {
  return open().then(db => new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const r = f(tx.objectStore(STORE));
    tx.oncomplete = () => { db.close(); resolve(r && r.result); };
    tx.onerror = tx.onabort = () => { db.close(); reject(tx.error); };
  }));
}

// The record of `user`: {user, device, key, name, lang}, or undefined.
export const load = user => run('readonly', s => s.get(user));
// Every record (an approval app shared by several accounts has one each).
export const all = () => run('readonly', s => s.getAll());
export const save = record => run('readwrite', s => s.put(record));

export function b64url(bytes) {
  let s = '';
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function fromB64url(text) {
  const s = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(s, c => c.charCodeAt(0));
}

// The text the device key signs (docs/PUSH.md, "The signed message"), byte for byte.
export function decisionMessage(request, device, decision, typed) {
  const number = decision === 'approve' && typed !== '' ? String(Number(typed)) : '-';
  return `mfa-push-decision-v1\nrequest=${request}\ndevice=${device}\ndecision=${decision}\nnumber=${number}\n`;
}

// Shows `text` in the page's status line (`#message`), as an error or not.
export function say(text, ok) {
  const m = document.getElementById('message');
  m.textContent = text;
  m.className = ok ? 'ok' : 'err';
  m.hidden = false;
}

// The portal's answer to a post: its JSON, or the message of a refusal page it answered
// with instead (a rate limit, an ended sign-in).
export async function answer(resp) {
  const type = resp.headers.get('content-type') || '';
  if (type.startsWith('application/json')) return resp.json();
  const html = new DOMParser().parseFromString(await resp.text(), 'text/html');
  const m = html.getElementById('message');
  return { ok: false, message: m ? m.textContent : null };
}
