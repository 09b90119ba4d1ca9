//! Bitmaps of a segment's rows: deleted or replaced after sealing, lacking a vector.

/// A growable bitmap of deleted rows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bitmap {
    bytes: Vec<u8>,
    ones: usize,
}

impl Bitmap {
    pub fn new(len: usize) -> Self {
        Bitmap {
            bytes: vec![0; len.div_ceil(8)],
            ones: 0,
        }
    }

    #[inline]
    pub fn get(&self, i: usize) -> bool {
        self.bytes
            .get(i / 8)
            .is_some_and(|b| b & (1 << (i % 8)) != 0)
    }

    /// Set bit `i`; returns whether it was newly set.
    pub fn set(&mut self, i: usize) -> bool {
        let Some(b) = self.bytes.get_mut(i / 8) else {
            return false;
        };
        let mask = 1 << (i % 8);
        if *b & mask != 0 {
            return false;
        }
        *b |= mask;
        self.ones += 1;
        true
    }

    pub fn count_ones(&self) -> usize {
        self.ones
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub(super) fn from_bytes(bytes: Vec<u8>) -> Self {
        let ones = bytes.iter().map(|b| b.count_ones() as usize).sum();
        Bitmap { bytes, ones }
    }
}
