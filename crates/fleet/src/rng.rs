//! The pseudo-random number generator (xoshiro256** seeded through SplitMix64), its Zipf
//! sampling and the alphabets random identifiers are drawn from. Everything is integer
//! arithmetic, so streams are the same on every platform.

/// SplitMix64's finaliser: spreads the bits of one word over the whole output.
fn splitmix64(z: u64) -> u64 {
    let mut z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[derive(Clone)]
pub(crate) struct Rng([u64; 4]);

impl Rng {
    /// A stream determined by `parts` alone (seed, purpose tag, index...), so any call or agent
    /// can be regenerated without replaying the others.
    pub(crate) fn from_parts(parts: &[u64]) -> Rng {
        let mut h = 0x6A09_E667_F3BC_C908u64;
        for &part in parts {
            h = splitmix64(h ^ part);
        }
        Rng([
            splitmix64(h),
            splitmix64(h ^ 0x1111_1111_1111_1111),
            splitmix64(h ^ 0x2222_2222_2222_2222),
            splitmix64(h ^ 0x3333_3333_3333_3333),
        ])
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let out = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        out
    }

    /// Uniform in `0..n` (Lemire's multiply-shift, no division).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform index into a collection of `len` elements.
    pub(crate) fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn inclusive(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    /// True `pct` times in a hundred.
    pub(crate) fn chance_pct(&mut self, pct: u8) -> bool {
        self.below(100) < pct as u64
    }

    /// True `per_10k` times in ten thousand.
    pub(crate) fn chance_per_10k(&mut self, per_10k: u64) -> bool {
        self.below(10_000) < per_10k
    }

    pub(crate) fn pick<'a, X>(&mut self, xs: &'a [X]) -> &'a X {
        &xs[self.index(xs.len())]
    }

    /// Rank in `0..n` with weight 1/(rank+1): a few values dominate, the tail is rare but present.
    pub(crate) fn zipf_rank(&mut self, n: usize) -> usize {
        if n <= ZIPF_TABLE_LEN {
            let x = self.below(ZIPF_CUMULATIVE[n]);
            return ZIPF_CUMULATIVE[1..=n]
                .iter()
                .position(|&c| x < c)
                .unwrap_or(n - 1);
        }
        let total: u64 = (1..=n as u64).map(|k| ZIPF_NUMERATOR / k).sum();
        let mut x = self.below(total);
        for k in 0..n {
            let w = ZIPF_NUMERATOR / (k as u64 + 1);
            if x < w {
                return k;
            }
            x -= w;
        }
        n - 1
    }

    /// An element by Zipf rank: the first elements of `xs` are the agent's favourites.
    pub(crate) fn pick_zipf<'a, X>(&mut self, xs: &'a [X]) -> &'a X {
        &xs[self.zipf_rank(xs.len())]
    }

    /// `k` distinct elements, order randomised.
    pub(crate) fn sample_distinct<X: Clone>(&mut self, xs: &[X], k: usize) -> Vec<X> {
        let mut ix: Vec<usize> = (0..xs.len()).collect();
        let k = k.min(xs.len());
        for i in 0..k {
            let j = i + self.index(xs.len() - i);
            ix.swap(i, j);
        }
        ix[..k].iter().map(|&i| xs[i].clone()).collect()
    }

    /// Appends `n` characters drawn uniformly from `alphabet`.
    pub(crate) fn push_chars(&mut self, out: &mut String, n: usize, alphabet: &[u8]) {
        for _ in 0..n {
            out.push(alphabet[self.index(alphabet.len())] as char);
        }
    }
}

/// lcm(1..=16): divisible by every rank up to the table length, so weights are exact integers.
pub(crate) const ZIPF_NUMERATOR: u64 = 720_720;
const ZIPF_TABLE_LEN: usize = 16;
// Prefix sums of the Zipf weights, computed at compile time: the sampler is hot, and 64-bit
// divisions per draw showed up in profiles.
const ZIPF_CUMULATIVE: [u64; ZIPF_TABLE_LEN + 1] = {
    let mut c = [0u64; ZIPF_TABLE_LEN + 1];
    let mut k = 1;
    while k <= ZIPF_TABLE_LEN {
        c[k] = c[k - 1] + ZIPF_NUMERATOR / k as u64;
        k += 1;
    }
    c
};

pub(crate) const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub(crate) const LOWER_ALPHANUMERIC: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
pub(crate) const UPPER_ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
pub(crate) const HEX_DIGITS: &[u8] = b"0123456789abcdef";
pub(crate) const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
