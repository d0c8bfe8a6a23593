//! Varint / zigzag primitives of the on-disk store and a bounds-checked
//! cursor over decoded bytes. Nothing here panics on any input.

/// Appends `v` as an unsigned LEB128 varint.
#[inline]
pub fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Appends the signed difference `cur - prev` (wrapping) as a zigzag varint.
#[inline]
pub fn put_delta(out: &mut Vec<u8>, cur: u64, prev: u64) {
    put(out, zigzag(cur.wrapping_sub(prev) as i64));
}

/// Appends a length-prefixed byte string.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Appends an optional value: 0 for none, else the value plus one.
pub fn put_opt(out: &mut Vec<u8>, v: Option<u64>) {
    match v {
        None => put(out, 0),
        Some(v) => put(out, v.wrapping_add(1)),
    }
}

/// Concatenates columns, each prefixed by its length, into `out`.
pub fn columns(out: &mut Vec<u8>, cols: &[Vec<u8>]) {
    out.clear();
    for c in cols {
        put_bytes(out, c);
    }
}

/// A cursor over one decoded column; errors carry the position for the
/// corruption report.
pub struct Cur<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Name of the column, for messages.
    pub what: &'static str,
}

pub type R<T> = Result<T, String>;

impl<'a> Cur<'a> {
    pub fn new(buf: &'a [u8], what: &'static str) -> Cur<'a> {
        Cur { buf, pos: 0, what }
    }

    pub fn err<T>(&self, why: impl std::fmt::Display) -> R<T> {
        Err(format!("{} at byte {}: {why}", self.what, self.pos))
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn at_end(&self) -> bool {
        self.pos == self.buf.len()
    }

    #[inline]
    pub fn u64(&mut self) -> R<u64> {
        let mut v = 0u64;
        let mut shift = 0u32;
        loop {
            let Some(&b) = self.buf.get(self.pos) else {
                return self.err("truncated varint");
            };
            self.pos += 1;
            if shift == 63 && b > 1 {
                return self.err("varint overflows 64 bits");
            }
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return self.err("varint too long");
            }
        }
    }

    pub fn u32(&mut self) -> R<u32> {
        let v = self.u64()?;
        u32::try_from(v).or_else(|_| self.err(format!("{v} does not fit 32 bits")))
    }

    /// An optional value written by [`put_opt`].
    pub fn opt(&mut self) -> R<Option<u64>> {
        Ok(match self.u64()? {
            0 => None,
            v => Some(v - 1),
        })
    }

    /// `N` columns written by [`columns`], which must be all of `buf`.
    pub fn columns<const N: usize>(buf: &'a [u8], what: [&'static str; N]) -> R<[Cur<'a>; N]> {
        let mut top = Cur::new(buf, what[0]);
        let mut out: [Cur<'a>; N] = std::array::from_fn(|i| Cur::new(&[], what[i]));
        for (i, c) in out.iter_mut().enumerate() {
            *c = Cur::new(top.len_bytes()?, what[i]);
        }
        if !top.at_end() {
            return top.err("bytes after the last column");
        }
        Ok(out)
    }

    pub fn i64(&mut self) -> R<i64> {
        Ok(unzigzag(self.u64()?))
    }

    #[inline]
    pub fn delta(&mut self, prev: u64) -> R<u64> {
        Ok(prev.wrapping_add(self.i64()? as u64))
    }

    pub fn u8(&mut self) -> R<u8> {
        let Some(&b) = self.buf.get(self.pos) else {
            return self.err("truncated");
        };
        self.pos += 1;
        Ok(b)
    }

    pub fn bytes(&mut self, n: usize) -> R<&'a [u8]> {
        if n > self.remaining() {
            return self.err(format!("{n} bytes announced, {} left", self.remaining()));
        }
        let b = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    pub fn len_bytes(&mut self) -> R<&'a [u8]> {
        let n = self.u64()?;
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        self.bytes(n)
    }

    /// A count that must be plausible: each item takes at least one byte of
    /// what is left, so a corrupted count cannot make us allocate wildly.
    pub fn count(&mut self) -> R<usize> {
        let n = self.u64()?;
        if n > self.remaining() as u64 {
            return self.err(format!(
                "count {n} exceeds the {} bytes left",
                self.remaining()
            ));
        }
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_reject_garbage() {
        let mut b = Vec::new();
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            put(&mut b, v);
        }
        put_delta(&mut b, 5, 10);
        let mut c = Cur::new(&b, "t");
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            assert_eq!(c.u64().unwrap(), v);
        }
        assert_eq!(c.delta(10).unwrap(), 5);
        assert!(c.at_end());
        assert!(Cur::new(&[0xff; 11], "t").u64().is_err());
        assert!(Cur::new(&[0x80], "t").u64().is_err());
        assert!(Cur::new(&[5, 1], "t").count().is_err());
    }
}
