//! Splitting one pool connection's extranonce space among miners.
//!
//! The pool gives extranonce1 `E1` and an extranonce2 size `N`. Each miner gets a unique `p`-byte prefix `P`:
//! it is told extranonce1 = `E1 || P` and extranonce2_size = `N - p`, and its submitted extranonce2 `X` becomes
//! `P || X` upstream, so the coinbase the pool rebuilds is the one the miner hashed.

/// Largest extranonce2 a miner is given: some ASIC firmware fails above 8 bytes.
pub const MAX_MINER_EXTRANONCE2: usize = 8;

/// Prefix bytes for a pool extranonce2 size `n`, leaving each miner at least `min_keep` bytes where possible
/// and at most 8: `p = min(2, n - min_keep)`, raised so that `n - p <= 8`.
pub fn prefix_len(n: usize, min_keep: usize) -> usize {
    let p = n.saturating_sub(min_keep).min(2);
    p.max(n.saturating_sub(MAX_MINER_EXTRANONCE2))
}

/// Hands out unique prefixes of a fixed length in O(1): never-used values first (a counter), then returned
/// ones oldest first (a FIFO free list). Reusing a prefix as late as possible matters: a miner that gets the
/// prefix its predecessor had, on the same job and starting from the same extranonce2, would find the same
/// shares and the pool would reject them as duplicates.
#[derive(Debug, Clone)]
pub struct PrefixAllocator {
    len: usize,
    capacity: u64,
    next_unused: u64,
    free: std::collections::VecDeque<u64>,
    in_use: u64,
}

impl PrefixAllocator {
    /// An allocator of `len`-byte prefixes (0 to 8 bytes; 0 means a single miner).
    pub fn new(len: usize) -> PrefixAllocator {
        let len = len.min(8);
        let capacity = if len >= 8 {
            u64::MAX
        } else {
            1u64 << (8 * len)
        };
        PrefixAllocator {
            len,
            capacity,
            next_unused: 0,
            free: std::collections::VecDeque::new(),
            in_use: 0,
        }
    }

    /// Prefix length in bytes.
    pub fn prefix_len(&self) -> usize {
        self.len
    }

    /// How many prefixes exist in all.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// How many are handed out now.
    pub fn in_use(&self) -> u64 {
        self.in_use
    }

    /// True when no prefix is free.
    pub fn is_full(&self) -> bool {
        self.in_use >= self.capacity
    }

    /// A free prefix, or `None` when all are in use.
    pub fn alloc(&mut self) -> Option<u64> {
        let v = if self.next_unused < self.capacity {
            self.next_unused += 1;
            self.next_unused - 1
        } else {
            self.free.pop_front()?
        };
        self.in_use += 1;
        Some(v)
    }

    /// Returns a prefix; the caller guarantees it was handed out and is no longer used.
    pub fn release(&mut self, v: u64) {
        debug_assert!(v < self.next_unused);
        self.in_use = self.in_use.saturating_sub(1);
        self.free.push_back(v);
    }

    /// The big-endian bytes of prefix `v`.
    pub fn bytes(&self, v: u64) -> impl Iterator<Item = u8> {
        let be = v.to_be_bytes();
        let len = self.len;
        (8 - len..8).map(move |i| be[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_len_matches_the_issue_table() {
        assert_eq!(prefix_len(8, 4), 2);
        assert_eq!(prefix_len(6, 4), 2);
        assert_eq!(prefix_len(5, 4), 1);
        assert_eq!(prefix_len(4, 4), 0);
        assert_eq!(prefix_len(12, 4), 4);
        assert_eq!(prefix_len(3, 4), 0);
        assert_eq!(prefix_len(16, 4), 8);
    }

    #[test]
    fn released_prefixes_are_reused_last_and_oldest_first() {
        let mut a = PrefixAllocator::new(1);
        let x = a.alloc().unwrap();
        let y = a.alloc().unwrap();
        a.release(x);
        a.release(y);
        // Never-used prefixes come first, even with everything released.
        assert_eq!(a.alloc(), Some(2));
        for _ in 3..256 {
            a.alloc().unwrap();
        }
        assert_eq!(a.alloc(), Some(x), "then the one released first");
        assert_eq!(a.alloc(), Some(y));
        assert_eq!(a.alloc(), None);
    }

    #[test]
    fn allocator_hands_out_each_prefix_once_and_reuses_released_ones() {
        let mut a = PrefixAllocator::new(1);
        let got: Vec<u64> = (0..256).map(|_| a.alloc().unwrap()).collect();
        let mut sorted = got.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 256);
        assert!(a.is_full());
        assert_eq!(a.alloc(), None);
        a.release(17);
        assert_eq!(a.alloc(), Some(17));
        assert_eq!(a.alloc(), None);
    }

    #[test]
    fn zero_length_prefix_serves_one_miner() {
        let mut a = PrefixAllocator::new(0);
        assert_eq!(a.capacity(), 1);
        assert_eq!(a.alloc(), Some(0));
        assert_eq!(a.alloc(), None);
        assert_eq!(a.bytes(0).count(), 0);
    }

    #[test]
    fn bytes_are_big_endian_of_the_right_length() {
        let a = PrefixAllocator::new(2);
        assert_eq!(a.bytes(0x0102).collect::<Vec<_>>(), vec![1, 2]);
    }
}
