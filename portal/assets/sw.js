// The service worker of the installed web app (push approval, docs/PUSH.md). A push is the
// JSON payload the portal encrypted for this browser: the request's id and what to show,
// never a secret and never the number. It becomes a notification; a tap opens the request's
// approval page. No fetch handler: the worker never stands between the pages and the portal.
'use strict';

// The notification's words in English and Dutch, filled in by the portal from its texts.
const TEXT = __TEXT__;

// The language the phone was registered in (IndexedDB, as the pages keep it), else the
// browser's.
function language() {
  return new Promise(resolve => {
    const fallback = (self.navigator.language || '').toLowerCase().startsWith('nl') ? 'nl' : 'en';
    let r;
    try { r = indexedDB.open('mfa-push', 1); } catch (e) { resolve(fallback); return; }
    r.onupgradeneeded = () => r.result.createObjectStore('devices', { keyPath: 'user' });
    r.onerror = () => resolve(fallback);
    r.onsuccess = () => {
      const db = r.result;
      const q = db.transaction('devices', 'readonly').objectStore('devices').getAll();
      q.onsuccess = () => {
        db.close();
        const rec = (q.result || [])[0];
        resolve(rec && TEXT[rec.lang] ? rec.lang : fallback);
      };
      q.onerror = () => { db.close(); resolve(fallback); };
    };
  });
}

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', event => event.waitUntil(self.clients.claim()));

self.addEventListener('push', event => {
  event.waitUntil((async () => {
    const lang = await language();
    const t = TEXT[lang] || TEXT.en;
    let d = null;
    try { d = event.data ? event.data.json() : null; } catch (e) { d = null; }
    if (!d || d.v !== 1 || typeof d.id !== 'string' || !/^[0-9a-f]{32}$/.test(d.id)) {
      // A push must show something; this one cannot say what it is.
      return self.registration.showNotification(t.title, { body: t.unreadable, tag: 'mfa-unreadable' });
    }
    const where = typeof d.client_ip === 'string' && d.client_ip !== '' ? d.client_ip : t.unknown;
    let body = t.body.replace('{service}', String(d.service)).replace('{address}', where);
    if (d.number_matching === true) body += ' ' + t.number;
    return self.registration.showNotification(t.title, {
      body,
      tag: d.id,
      icon: '/icon-192.png',
      requireInteraction: true,
      timestamp: typeof d.created === 'number' ? d.created * 1000 : Date.now(),
      data: { url: `/push/${d.id}?lang=${lang}` },
    });
  })());
});

self.addEventListener('notificationclick', event => {
  event.notification.close();
  const url = (event.notification.data && event.notification.data.url) || '/push';
  event.waitUntil((async () => {
    const open = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    for (const c of open) {
      if (new URL(c.url).pathname === new URL(url, self.location.origin).pathname && 'focus' in c) return c.focus();
    }
    return self.clients.openWindow(url);
  })());
});
