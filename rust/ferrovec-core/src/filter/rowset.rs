//! A set of rows of one source, as a bitset: what a filter resolves to.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowSet {
    words: Vec<u64>,
    len: usize,
}

impl RowSet {
    pub fn empty(len: usize) -> Self {
        RowSet {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }

    pub fn full(len: usize) -> Self {
        let mut s = RowSet {
            words: vec![u64::MAX; len.div_ceil(64)],
            len,
        };
        s.trim();
        s
    }

    /// Clear the bits past `len` in the last word.
    fn trim(&mut self) {
        if !self.len.is_multiple_of(64) {
            if let Some(last) = self.words.last_mut() {
                *last &= (1u64 << (self.len % 64)) - 1;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Number of 64-row words (the end of the range `iter_words` takes for every row).
    pub fn words(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub fn contains(&self, row: usize) -> bool {
        self.words
            .get(row / 64)
            .is_some_and(|w| w & (1 << (row % 64)) != 0)
    }

    #[inline]
    pub fn insert(&mut self, row: usize) {
        if let Some(w) = self.words.get_mut(row / 64) {
            *w |= 1 << (row % 64);
        }
    }

    pub fn remove(&mut self, row: usize) {
        if let Some(w) = self.words.get_mut(row / 64) {
            *w &= !(1 << (row % 64));
        }
    }

    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn and(&mut self, o: &RowSet) {
        for (a, b) in self.words.iter_mut().zip(&o.words) {
            *a &= b;
        }
    }

    pub fn or(&mut self, o: &RowSet) {
        for (a, b) in self.words.iter_mut().zip(&o.words) {
            *a |= b;
        }
    }

    pub fn not(&mut self) {
        for w in &mut self.words {
            *w = !*w;
        }
        self.trim();
    }

    /// The rows in the set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.iter_words(0..self.words.len())
    }

    /// Split the rows into about `parts` ranges with similar numbers of rows of the set:
    /// ranges of 64-row words, for `iter_words`.
    pub fn split(&self, parts: usize) -> Vec<std::ops::Range<usize>> {
        let per = self.count().div_ceil(parts.max(1)).max(1);
        let mut out = Vec::new();
        let (mut start, mut have) = (0, 0);
        for (i, w) in self.words.iter().enumerate() {
            have += w.count_ones() as usize;
            if have >= per {
                out.push(start..i + 1);
                (start, have) = (i + 1, 0);
            }
        }
        if start < self.words.len() {
            out.push(start..self.words.len());
        }
        out
    }

    /// The rows of the set in the 64-row words `words`, ascending.
    pub fn iter_words(&self, words: std::ops::Range<usize>) -> impl Iterator<Item = usize> + '_ {
        let first = words.start;
        self.words[words]
            .iter()
            .enumerate()
            .flat_map(move |(i, &w)| {
                let i = first + i;
                let mut w = w;
                std::iter::from_fn(move || {
                    if w == 0 {
                        return None;
                    }
                    let b = w.trailing_zeros() as usize;
                    w &= w - 1;
                    Some(i * 64 + b)
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::RowSet;

    #[test]
    fn set_algebra() {
        let mut a = RowSet::empty(130);
        for r in [0, 5, 64, 129] {
            a.insert(r);
        }
        let mut b = RowSet::full(130);
        b.remove(5);
        assert_eq!(b.count(), 129);
        let mut c = a.clone();
        c.and(&b);
        assert_eq!(c.iter().collect::<Vec<_>>(), vec![0, 64, 129]);
        c.not();
        assert_eq!(c.count(), 127);
        assert!(!c.contains(129) && c.contains(5));
        c.or(&a);
        assert_eq!(c.count(), 130);
    }

    #[test]
    fn split_covers_every_row_once() {
        let mut s = RowSet::empty(10_000);
        for r in (0..10_000usize).filter(|&r| r % 7 == 0 || r > 9_000) {
            s.insert(r);
        }
        for parts in [1, 2, 3, 8, 1000] {
            let ranges = s.split(parts);
            assert!(ranges.len() <= parts + 1);
            let rows: Vec<usize> = ranges.into_iter().flat_map(|r| s.iter_words(r)).collect();
            assert_eq!(rows, s.iter().collect::<Vec<_>>());
        }
        assert_eq!(RowSet::empty(0).split(4).len(), 0);
    }
}
