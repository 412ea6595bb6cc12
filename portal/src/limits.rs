//! Rate limits: fixed-window counters in memory, per key (an address, an invite, a user).

use std::collections::HashMap;
use std::sync::Mutex;

use mfa_common::login::now;

/// Fixed-window counters: (window start, count) per key.
#[derive(Default)]
pub struct Limits {
    map: Mutex<HashMap<String, (i64, u32)>>,
}

impl Limits {
    /// Counts one hit of `key`; false once more than `max` fell in `window` seconds (and
    /// when the table cannot be used: fail closed).
    pub fn hit(&self, key: String, max: u32, window: i64) -> bool {
        let now = now();
        let Ok(mut map) = self.map.lock() else {
            return false;
        };
        if map.len() > 50_000 {
            map.retain(|_, (start, _)| now - *start < 3600);
        }
        let e = map.entry(key).or_insert((now, 0));
        if now - e.0 >= window {
            *e = (now, 0);
        }
        e.1 = e.1.saturating_add(1);
        e.1 <= max
    }
}
