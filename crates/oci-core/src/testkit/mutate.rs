//! Mutated input for robustness tests: byte-level edits of valid seeds
//! from a fixed-seed generator, so that a failure repeats. The crates'
//! `garbage` tests feed the mutants to every parser of untrusted input.

/// A deterministic generator of mutants (xorshift64* underneath).
pub struct Mutator {
    state: u64,
    interesting: &'static [u8],
}

impl Mutator {
    /// A generator from `seed` (not 0); edits favour the `interesting`
    /// bytes (those that matter to the grammar under test) over random ones.
    pub fn new(seed: u64, interesting: &'static [u8]) -> Mutator {
        Mutator {
            state: seed.max(1),
            interesting,
        }
    }

    /// The next pseudo-random number.
    pub fn next_u64(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// `seed` with one to four edits: a byte replaced, inserted or
    /// deleted, the rest cut off, or a slice repeated.
    pub fn mutate(&mut self, seed: &[u8]) -> Vec<u8> {
        let mut v = seed.to_vec();
        for _ in 0..=self.below(4) {
            let at = self.below(v.len() + 1);
            let byte = if self.below(3) == 0 || self.interesting.is_empty() {
                self.next_u64() as u8
            } else {
                self.interesting[self.below(self.interesting.len())]
            };
            match self.below(5) {
                0 if at < v.len() => v[at] = byte,
                1 => v.insert(at, byte),
                2 if at < v.len() => {
                    v.remove(at);
                }
                3 => v.truncate(at),
                _ => {
                    let end = (at + self.below(16)).min(v.len());
                    let piece = v[at..end].repeat(self.below(4));
                    v.splice(at..at, piece);
                }
            }
        }
        v
    }

    /// Calls `check` with each seed and `rounds` mutants of it.
    pub fn each<S: AsRef<[u8]>>(
        &mut self,
        seeds: &[S],
        rounds: usize,
        mut check: impl FnMut(&[u8]),
    ) {
        for seed in seeds {
            let seed = seed.as_ref();
            check(seed);
            for _ in 0..rounds {
                check(&self.mutate(seed));
            }
        }
    }

    /// [`Mutator::each`] over text: mutants that are not UTF-8 are read
    /// lossily, as a server reads a header it must show in an error.
    pub fn each_str<S: AsRef<str>>(
        &mut self,
        seeds: &[S],
        rounds: usize,
        mut check: impl FnMut(&str),
    ) {
        let seeds: Vec<&[u8]> = seeds.iter().map(|s| s.as_ref().as_bytes()).collect();
        self.each(&seeds, rounds, |bytes| {
            check(&String::from_utf8_lossy(bytes))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutants_repeat_for_a_seed_and_differ_from_it() {
        let make = || {
            let mut m = Mutator::new(7, b"/:");
            (0..50)
                .map(|_| m.mutate(b"library/ubuntu:22.04"))
                .collect::<Vec<_>>()
        };
        let a = make();
        assert_eq!(a, make());
        assert!(
            a.iter()
                .filter(|m| m.as_slice() != b"library/ubuntu:22.04")
                .count()
                > 40
        );
        let mut seen = 0;
        Mutator::new(3, b"").each(&["ab", "cd"], 10, |_| seen += 1);
        assert_eq!(seen, 22);
    }
}
