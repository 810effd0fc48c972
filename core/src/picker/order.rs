//! Pieces kept sorted by availability with O(1) updates.
//!
//! The classic structure behind rarest-first (libtorrent's piece picker
//! works the same way): one array of pieces grouped into buckets by key
//! (how many peers have the piece), ascending, plus each piece's position.
//! A `have` moves a piece one bucket up: swap it with the last piece of its
//! bucket and move the bucket boundary by one. No search, no sort.

/// Marks a piece that is not in this order.
const ABSENT: u32 = u32::MAX;

/// A permutation of some pieces, grouped by ascending key.
#[derive(Clone, Debug)]
pub(crate) struct BucketOrder {
    /// The pieces, bucket 0 first.
    items: Vec<u32>,
    /// Position of each piece in `items`, or `ABSENT`.
    pos: Vec<u32>,
    /// `starts[k]` is the index in `items` where bucket `k` starts; bucket
    /// `k` ends where bucket `k + 1` starts (the last at `items.len()`).
    starts: Vec<u32>,
}

impl BucketOrder {
    pub(crate) fn new(piece_count: u32) -> BucketOrder {
        BucketOrder {
            items: Vec::new(),
            pos: vec![ABSENT; piece_count as usize],
            starts: vec![0],
        }
    }

    pub(crate) fn contains(&self, piece: u32) -> bool {
        self.pos.get(piece as usize).is_some_and(|&p| p != ABSENT)
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Number of buckets (highest key + 1).
    pub(crate) fn buckets(&self) -> usize {
        self.starts.len()
    }

    /// The pieces with key `k`.
    pub(crate) fn bucket(&self, k: usize) -> &[u32] {
        let start = self.starts[k] as usize;
        let end = self
            .starts
            .get(k + 1)
            .map_or(self.items.len(), |&e| e as usize);
        &self.items[start..end]
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.items.swap(a, b);
        self.pos[self.items[a] as usize] = a as u32;
        self.pos[self.items[b] as usize] = b as u32;
    }

    fn ensure_bucket(&mut self, key: usize) {
        while self.starts.len() <= key {
            self.starts.push(self.items.len() as u32);
        }
    }

    /// Adds `piece` with `key`; O(number of buckets above `key`).
    pub(crate) fn insert(&mut self, piece: u32, key: usize) {
        if self.contains(piece) {
            return;
        }
        self.ensure_bucket(key);
        self.items.push(piece);
        self.pos[piece as usize] = (self.items.len() - 1) as u32;
        // Walk down from the top bucket: become the first item of each
        // bucket above `key`, then step below its boundary.
        for b in (key + 1..self.starts.len()).rev() {
            let first = self.starts[b] as usize;
            let at = self.pos[piece as usize] as usize;
            self.swap(at, first);
            self.starts[b] += 1;
        }
    }

    /// Removes `piece`, which has `key`; O(number of buckets above `key`).
    pub(crate) fn remove(&mut self, piece: u32, key: usize) {
        if !self.contains(piece) {
            return;
        }
        for k in key..self.starts.len() - 1 {
            self.raise(piece, k);
        }
        let at = self.pos[piece as usize] as usize;
        let last = self.items.len() - 1;
        self.swap(at, last);
        self.items.pop();
        self.pos[piece as usize] = ABSENT;
    }

    /// Moves `piece` from key `k` to `k + 1`: O(1).
    pub(crate) fn raise(&mut self, piece: u32, k: usize) {
        if !self.contains(piece) {
            return;
        }
        self.ensure_bucket(k + 1);
        let last_of_k = self.starts[k + 1] as usize - 1;
        let at = self.pos[piece as usize] as usize;
        self.swap(at, last_of_k);
        self.starts[k + 1] -= 1;
    }

    /// Moves `piece` from key `k` to `k - 1`: O(1).
    pub(crate) fn lower(&mut self, piece: u32, k: usize) {
        if !self.contains(piece) || k == 0 {
            return;
        }
        let first_of_k = self.starts[k] as usize;
        let at = self.pos[piece as usize] as usize;
        self.swap(at, first_of_k);
        self.starts[k] += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(o: &BucketOrder, keys: &[usize]) {
        for k in 0..o.buckets() {
            for &p in o.bucket(k) {
                assert_eq!(keys[p as usize], k, "piece {p} in bucket {k}");
            }
        }
        for (i, &p) in o.items.iter().enumerate() {
            assert_eq!(o.pos[p as usize] as usize, i);
        }
    }

    #[test]
    fn buckets_follow_keys_through_every_operation() {
        let n = 50;
        let mut o = BucketOrder::new(n);
        let mut keys = vec![0usize; n as usize];
        for p in 0..n {
            o.insert(p, 0);
        }
        // A deterministic mix of raises, lowers, removes and re-inserts.
        let mut x = 12345u32;
        let mut present = vec![true; n as usize];
        for _ in 0..5000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let p = (x >> 8) % n;
            let i = p as usize;
            match (x >> 4) % 4 {
                0 | 1 if present[i] => {
                    o.raise(p, keys[i]);
                    keys[i] += 1;
                }
                2 if present[i] && keys[i] > 0 => {
                    o.lower(p, keys[i]);
                    keys[i] -= 1;
                }
                3 if present[i] => {
                    o.remove(p, keys[i]);
                    present[i] = false;
                }
                3 => {
                    keys[i] = (x as usize >> 12) % 5;
                    o.insert(p, keys[i]);
                    present[i] = true;
                }
                _ => {}
            }
            check(&o, &keys);
        }
        assert_eq!(o.len(), present.iter().filter(|&&p| p).count());
    }
}
