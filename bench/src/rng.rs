//! A tiny deterministic generator (SplitMix64): the same seed gives the same stream on every
//! platform and every version of this crate, which a general-purpose RNG crate does not promise.

/// SplitMix64 state.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix(u64);

impl SplitMix {
    /// A generator for one purpose: `parts` (seed, product number, …) mixed into the state so
    /// that streams for different parts are unrelated.
    pub(crate) fn new(parts: &[u64]) -> SplitMix {
        let mut state = 0x6a09_e667_f3bc_c908;
        for &p in parts {
            state = SplitMix(state ^ p).next_u64();
        }
        SplitMix(state)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0; the slight modulo bias does not matter for test data).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `percent`/100.
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// `len` lowercase hex digits.
    pub(crate) fn hex(&mut self, len: usize) -> String {
        let mut out = String::with_capacity(len + 16);
        while out.len() < len {
            out.push_str(&format!("{:016x}", self.next_u64()));
        }
        out.truncate(len);
        out
    }

    /// Fills `buf` with pseudo-random bytes.
    pub(crate) fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SplitMix;

    #[test]
    fn same_parts_same_stream_other_parts_other_stream() {
        let a: Vec<u64> = (0..4).map(|_| SplitMix::new(&[1, 2]).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(
            SplitMix::new(&[1, 2]).next_u64(),
            SplitMix::new(&[2, 1]).next_u64()
        );
        let mut r = SplitMix::new(&[7]);
        assert_eq!(r.hex(40).len(), 40);
        let mut buf = [0u8; 13];
        r.fill(&mut buf);
        assert!(buf.iter().any(|&b| b != 0));
    }
}
