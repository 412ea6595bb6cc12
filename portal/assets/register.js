// "Use this phone to approve sign-ins" (the registration page of My account): subscribes
// to Web Push with the portal's VAPID key, makes the device key (non-extractable ECDSA
// P-256) and posts both with the device's name and the page's CSRF token. The key is kept
// in IndexedDB only once the portal took the registration.
import { save, b64url, fromB64url, say, answer } from '/js/device.js';

const box = document.getElementById('register-box');
const form = document.getElementById('register');
const button = document.getElementById('register-button');
const t = key => box.dataset[key];

function supported() {
  return 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window &&
    window.crypto && crypto.subtle && 'indexedDB' in window;
}

async function subscription(reg) {
  const key = fromB64url(box.dataset.vapid);
  const old = await reg.pushManager.getSubscription();
  if (old) {
    const had = old.options && old.options.applicationServerKey;
    if (had && b64url(had) === box.dataset.vapid) return old;
    await old.unsubscribe();
  }
  return reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
}

async function register(ev) {
  ev.preventDefault();
  button.disabled = true;
  say(t('working'), true);
  try {
    // Asked first, straight from the tap: Safari grants notifications and subscriptions
    // only in answer to one.
    if (await Notification.requestPermission() !== 'granted') {
      say(t('permission'), false);
      return;
    }
    const reg = await navigator.serviceWorker.ready;
    const sub = await subscription(reg);
    const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
    const raw = await crypto.subtle.exportKey('raw', pair.publicKey);
    const name = document.getElementById('name').value.trim();
    const body = new URLSearchParams({
      csrf: form.elements.csrf.value,
      name,
      subscription: JSON.stringify(sub.toJSON ? sub.toJSON() : sub),
      public_key: b64url(raw),
    });
    const resp = await fetch(form.action, {
      method: 'POST', body, credentials: 'same-origin', headers: { Accept: 'application/json' },
    });
    const a = await answer(resp);
    if (!a.ok || !/^[0-9a-f]{32}$/.test(a.device || '')) {
      say(a.message || t('failed'), false);
      return;
    }
    await save({ user: box.dataset.user, device: a.device, key: pair.privateKey, name, lang: box.dataset.lang });
    say(a.message, true);
    document.getElementById('registered').hidden = false;
  } catch (e) {
    say(`${t('failed')} (${e && e.name || e})`, false);
  } finally {
    button.disabled = false;
  }
}

if (supported()) {
  // The service worker is installed with the page, so the tap only asks and subscribes.
  navigator.serviceWorker.register('/sw.js', { scope: '/' }).then(() => {
    form.addEventListener('submit', register);
    button.disabled = false;
  }, e => say(`${t('failed')} (${e && e.name || e})`, false));
} else {
  say(t('unsupported'), false);
}
