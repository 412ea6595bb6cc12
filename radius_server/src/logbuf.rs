//! The decision log on stderr, written in blocks: one `write` per line was a tenth of the
//! daemon's CPU at 30,000 decisions a second. Lines wait at most `FLUSH_EVERY` (the serve
//! loop flushes on a timer) and are flushed at once when the block fills, before a warning,
//! and at exit, so the order of lines is kept and little waits.

use std::io::Write;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// How long a decision line may wait in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Flush when this much is waiting.
const BLOCK: usize = 32 * 1024;

#[derive(Debug, Default)]
pub struct LogBuffer {
    buf: Mutex<Vec<u8>>,
}

impl LogBuffer {
    /// Queues `mfa-radiusd: {line}`.
    pub fn line(&self, line: &str) {
        let mut b = self.push("", line);
        if b.len() >= BLOCK {
            write_out(&mut b);
        }
    }

    /// Writes `mfa-radiusd: {line}` now, after whatever is queued.
    pub fn line_now(&self, line: &str) {
        write_out(&mut self.push("", line));
    }

    /// Writes `mfa-radiusd: warning: {line}` now, after whatever is queued.
    pub fn warning(&self, line: &str) {
        write_out(&mut self.push("warning: ", line));
    }

    pub fn flush(&self) {
        let mut b = self.buf.lock().unwrap_or_else(PoisonError::into_inner);
        if !b.is_empty() {
            write_out(&mut b);
        }
    }

    /// Appends one line and keeps the lock for the caller's flush decision.
    fn push(&self, kind: &str, line: &str) -> MutexGuard<'_, Vec<u8>> {
        let mut b = self.buf.lock().unwrap_or_else(PoisonError::into_inner);
        b.extend_from_slice(b"mfa-radiusd: ");
        b.extend_from_slice(kind.as_bytes());
        b.extend_from_slice(line.as_bytes());
        b.push(b'\n');
        b
    }
}

/// Written under the buffer's lock, so blocks from two threads never interleave. A failed
/// write (stderr closed) drops the lines: the audit trail is the store, not this log.
fn write_out(b: &mut Vec<u8>) {
    let _ = std::io::stderr().lock().write_all(b);
    b.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_queued_until_a_warning_or_a_flush() {
        let log = LogBuffer::default();
        log.line("user=\"a\" decision=accept");
        assert_eq!(
            log.buf.lock().unwrap().as_slice(),
            b"mfa-radiusd: user=\"a\" decision=accept\n"
        );
        log.warning("something");
        assert!(log.buf.lock().unwrap().is_empty());
        for _ in 0..2000 {
            log.line("0123456789012345678901234567890123456789");
        }
        assert!(log.buf.lock().unwrap().len() < BLOCK);
        log.flush();
        assert!(log.buf.lock().unwrap().is_empty());
    }
}
