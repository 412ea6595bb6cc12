//! A bounds-checked cursor over untrusted bytes: every read either succeeds or reports how
//! many bytes were missing, so the packet parser has no indexing that could panic.

use super::DecodeError;

#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Offset of the next unread byte from the start of the buffer.
    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(DecodeError::Truncated {
                offset: self.pos,
                wanted: n,
                available: self.remaining(),
            })?;
        let out = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated {
            offset: self.pos,
            wanted: n,
            available: self.remaining(),
        })?;
        self.pos = end;
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = self.take(1)?;
        b.first().copied().ok_or(DecodeError::Truncated {
            offset: self.pos,
            wanted: 1,
            available: 0,
        })
    }

    pub fn u16_be(&mut self) -> Result<u16, DecodeError> {
        let a = self.array::<2>()?;
        Ok(u16::from_be_bytes(a))
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u8().unwrap(), 1);
        assert_eq!(r.u16_be().unwrap(), 0x0203);
        assert!(r.is_empty());
        assert!(matches!(
            r.u8(),
            Err(DecodeError::Truncated { offset: 3, .. })
        ));
        let mut r = Reader::new(&[1]);
        assert!(r.take(usize::MAX).is_err());
        assert_eq!(r.pos(), 0, "a failed read consumes nothing");
        assert!(r.array::<2>().is_err());
    }
}
