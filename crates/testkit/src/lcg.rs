//! A fixed pseudo-random sequence (Knuth's MMIX linear congruential generator), so a test that
//! mixes its operations at random reproduces a failure exactly.

/// The generator; the same seed gives the same sequence on every machine.
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Lcg {
        Lcg(seed)
    }

    /// The next number below `n`, from the state's high bits (the low ones cycle quickly).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}
