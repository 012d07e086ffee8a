//! A bit-exact re-implementation of the parts of CPython's `random.Random` that the original
//! jobs-api uses to expand cron macros (see [`crate::schedule`]).
//!
//! The original seeds Python's global generator with the string `"<tool> <job>"` and draws the
//! macro's fields with `random.randint`, so the same seed must give the same numbers here.
//! What is reproduced, following CPython 3.2+ (`Lib/random.py`, `Modules/_randommodule.c`):
//!
//! - seeding from a `str` ("version 2"): the UTF-8 bytes followed by their SHA-512 digest are read
//!   as one big-endian integer, whose 32-bit words (least significant first) feed MT19937's
//!   `init_by_array`;
//! - the Mersenne Twister itself (`genrand_uint32`);
//! - `getrandbits(k)`, `_randbelow(n)` (rejection sampling on `getrandbits(n.bit_length())`),
//!   `randrange(start, stop)`, `randint(a, b)`, `choice(seq)` and `random()`.
//!
//! Integers are limited to `i64`/`u64` (Python's are unbounded); that covers every use here.

use ring::digest;

/// The state size of MT19937, in 32-bit words.
const N: usize = 624;
/// The middle word offset of MT19937.
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// What Python would raise for arguments this generator cannot draw from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `randrange(start, stop)` with `stop <= start` (Python: `ValueError`).
    #[error("empty range for randrange() ({start}, {stop})")]
    EmptyRange {
        /// The inclusive lower bound asked for.
        start: i64,
        /// The exclusive upper bound asked for.
        stop: i64,
    },
    /// `getrandbits(k)` with more bits than fit in a `u64` (Python has no such limit).
    #[error("getrandbits() is limited to 64 bits here, {k} were asked for")]
    TooManyBits {
        /// The number of bits asked for.
        k: u32,
    },
}

/// CPython's `random.Random`: MT19937 with Python's seeding and derived draws.
#[derive(Clone)]
pub struct Random {
    state: Box<[u32; N]>,
    /// The index of the next state word to temper; `N` means "regenerate first".
    idx: usize,
}

impl std::fmt::Debug for Random {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The 624-word state is noise in debug output.
        f.debug_struct("Random")
            .field("idx", &self.idx)
            .finish_non_exhaustive()
    }
}

impl Random {
    /// `random.Random(seed)` / `random.seed(seed)` for a `str` seed (version 2 seeding).
    pub fn from_str_seed(seed: &str) -> Random {
        let digest = digest::digest(&digest::SHA512, seed.as_bytes());
        let mut bytes = Vec::with_capacity(seed.len() + digest.as_ref().len());
        bytes.extend_from_slice(seed.as_bytes());
        bytes.extend_from_slice(digest.as_ref());
        Random::from_big_endian_integer(&bytes)
    }

    /// `random.seed(n)` for a non-negative integer given as big-endian bytes.
    ///
    /// Python passes the integer's 32-bit words, least significant first, to `init_by_array`;
    /// leading zero bytes do not count (the key is as long as the integer's bit length needs),
    /// and zero is the one-word key `[0]`.
    pub fn from_big_endian_integer(bytes: &[u8]) -> Random {
        let first_nonzero = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        let significant = &bytes[first_nonzero..];
        let mut key: Vec<u32> = significant
            .rchunks(4)
            .map(|chunk| {
                chunk
                    .iter()
                    .fold(0u32, |word, &b| (word << 8) | u32::from(b))
            })
            .collect();
        if key.is_empty() {
            key.push(0);
        }
        let mut random = Random {
            state: Box::new([0; N]),
            idx: N,
        };
        random.init_by_array(&key);
        random
    }

    /// MT19937's `genrand_uint32`: the next 32 random bits.
    pub fn genrand_u32(&mut self) -> u32 {
        if self.idx >= N {
            self.regenerate();
        }
        let mut y = self.state[self.idx];
        self.idx += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `getrandbits(k)` for `k <= 64`.
    ///
    /// Words are drawn least significant first; the last (most significant) word keeps only the
    /// top bits it needs, as CPython does.
    pub fn getrandbits(&mut self, k: u32) -> Result<u64, Error> {
        if k > 64 {
            return Err(Error::TooManyBits { k });
        }
        Ok(self.bits(k))
    }

    /// `_randbelow(n)`: a uniform integer in `0..n`, or 0 when `n == 0` (Python returns 0 there too).
    pub fn randbelow(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // `n.bit_length()`, not `(n - 1).bit_length()`: CPython draws one bit more for powers
        // of two, and the sequence of draws must match.
        let k = u64::BITS - n.leading_zeros();
        loop {
            let r = self.bits(k);
            if r < n {
                return r;
            }
        }
    }

    /// `randrange(start, stop)` with step 1.
    pub fn randrange(&mut self, start: i64, stop: i64) -> Result<i64, Error> {
        self.draw_in(i128::from(start), i128::from(stop))
    }

    /// `randint(a, b)`: `randrange(a, b + 1)`, both ends included.
    pub fn randint(&mut self, a: i64, b: i64) -> Result<i64, Error> {
        self.draw_in(i128::from(a), i128::from(b) + 1)
    }

    /// `choice(seq)`: `seq[_randbelow(len(seq))]`, or `None` for an empty slice (Python raises).
    pub fn choice<'a, T>(&mut self, seq: &'a [T]) -> Option<&'a T> {
        if seq.is_empty() {
            return None;
        }
        let idx = self.randbelow(seq.len() as u64);
        seq.get(usize::try_from(idx).ok()?)
    }

    /// `random()`: a float in `[0, 1)` with 53 random bits.
    pub fn random(&mut self) -> f64 {
        let a = f64::from(self.genrand_u32() >> 5);
        let b = f64::from(self.genrand_u32() >> 6);
        (a * 67_108_864.0 + b) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `start + _randbelow(stop - start)`, computed wide so that no bound overflows.
    fn draw_in(&mut self, start: i128, stop: i128) -> Result<i64, Error> {
        let width = stop - start;
        if width <= 0 {
            return Err(Error::EmptyRange {
                start: clamp_to_i64(start),
                stop: clamp_to_i64(stop),
            });
        }
        // Python would draw 65 bits for the one wider range (all of i64); this generator stops at 64.
        let width = u64::try_from(width).map_err(|_| Error::TooManyBits { k: 65 })?;
        let value = start + i128::from(self.randbelow(width));
        // start <= value < stop <= i64::MAX + 1.
        Ok(clamp_to_i64(value))
    }

    /// `getrandbits(k)` for `k <= 64`, which callers guarantee.
    fn bits(&mut self, k: u32) -> u64 {
        match k {
            0 => 0,
            1..=32 => u64::from(self.genrand_u32() >> (32 - k)),
            _ => {
                let low = u64::from(self.genrand_u32());
                let high = u64::from(self.genrand_u32() >> (64 - k));
                (high << 32) | low
            }
        }
    }

    fn init_genrand(&mut self, seed: u32) {
        self.state[0] = seed;
        for i in 1..N {
            let prev = self.state[i - 1];
            self.state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        self.idx = N;
    }

    fn init_by_array(&mut self, key: &[u32]) {
        self.init_genrand(19_650_218);
        let mut i = 1;
        let mut j = 0;
        for _ in 0..N.max(key.len()) {
            let prev = self.state[i - 1];
            self.state[i] = (self.state[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                self.state[0] = self.state[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            let prev = self.state[i - 1];
            self.state[i] = (self.state[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_566_083_941))
                .wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                self.state[0] = self.state[N - 1];
                i = 1;
            }
        }
        // The most significant bit is 1, so the initial state is never all zero.
        self.state[0] = 0x8000_0000;
        self.idx = N;
    }

    fn regenerate(&mut self) {
        let mag01 = |y: u32| if y & 1 == 0 { 0 } else { MATRIX_A };
        for kk in 0..N - M {
            let y = (self.state[kk] & UPPER_MASK) | (self.state[kk + 1] & LOWER_MASK);
            self.state[kk] = self.state[kk + M] ^ (y >> 1) ^ mag01(y);
        }
        for kk in N - M..N - 1 {
            let y = (self.state[kk] & UPPER_MASK) | (self.state[kk + 1] & LOWER_MASK);
            self.state[kk] = self.state[kk + M - N] ^ (y >> 1) ^ mag01(y);
        }
        let y = (self.state[N - 1] & UPPER_MASK) | (self.state[0] & LOWER_MASK);
        self.state[N - 1] = self.state[M - 1] ^ (y >> 1) ^ mag01(y);
        self.idx = 0;
    }
}

fn clamp_to_i64(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
}
