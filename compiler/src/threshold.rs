//! Exact integer tests for `randomf` comparisons (LANGUAGE.md §4.4).
//!
//! `randomf(lo, hi) OP c` is `lo + (hi - lo) * u / 2^32 OP c` for a 32-bit draw `u`. Over the
//! integers `0 <= u < 2^32` that is always one of the tests below, with the exact smallest
//! threshold: `randomf(0, 1) < 0.95` is `u < 4080218932`, because 0.95 * 2^32 =
//! 4080218931.2. A modulo form (`u % 100 < 95`) is not equivalent and is never produced.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{Signed, Zero};
use simplebpf_dsl::ir::CmpOp;

/// A test on the draw `u` equivalent to a `randomf` comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrawTest {
    /// True for every draw (the draw is still consumed).
    Always,
    /// False for every draw.
    Never,
    /// `u < k`, with `0 < k < 2^32`.
    Below(u32),
    /// `u >= k`, with `0 < k < 2^32`.
    AtLeast(u32),
    /// `u == k`.
    Equal(u32),
    /// `u != k`.
    NotEqual(u32),
}

impl DrawTest {
    pub fn holds(self, u: u32) -> bool {
        match self {
            DrawTest::Always => true,
            DrawTest::Never => false,
            DrawTest::Below(k) => u < k,
            DrawTest::AtLeast(k) => u >= k,
            DrawTest::Equal(k) => u == k,
            DrawTest::NotEqual(k) => u != k,
        }
    }
}

/// The exact test equivalent to `randomf(lo, hi) op c`.
pub fn randomf_compare(lo: &BigRational, hi: &BigRational, op: CmpOp, c: &BigRational) -> DrawTest {
    let span = hi - lo;
    if span.is_zero() {
        let holds = match op {
            CmpOp::Lt => lo < c,
            CmpOp::Le => lo <= c,
            CmpOp::Gt => lo > c,
            CmpOp::Ge => lo >= c,
            CmpOp::Eq => lo == c,
            CmpOp::Ne => lo != c,
        };
        return if holds {
            DrawTest::Always
        } else {
            DrawTest::Never
        };
    }
    // x(u) OP c  <=>  u OP' t, with t = (c - lo) * 2^32 / span; a negative span reverses the
    // order.
    let t = (c - lo) * BigRational::from_integer(draw_count()) / &span;
    let op = if span.is_negative() { reversed(op) } else { op };
    match op {
        // u < t  <=>  u < ceil(t)
        CmpOp::Lt => below(t.ceil().to_integer()),
        // u <= t  <=>  u < floor(t) + 1
        CmpOp::Le => below(t.floor().to_integer() + 1),
        // u > t  <=>  u >= floor(t) + 1
        CmpOp::Gt => at_least(t.floor().to_integer() + 1),
        // u >= t  <=>  u >= ceil(t)
        CmpOp::Ge => at_least(t.ceil().to_integer()),
        CmpOp::Eq => match exact_draw(&t) {
            Some(k) => DrawTest::Equal(k),
            None => DrawTest::Never,
        },
        CmpOp::Ne => match exact_draw(&t) {
            Some(k) => DrawTest::NotEqual(k),
            None => DrawTest::Always,
        },
    }
}

/// `2^32`, the number of distinct draws.
fn draw_count() -> BigInt {
    BigInt::from(1u64 << 32)
}

/// `u < k` over all draws.
fn below(k: BigInt) -> DrawTest {
    if k <= BigInt::zero() {
        DrawTest::Never
    } else if k >= draw_count() {
        DrawTest::Always
    } else {
        DrawTest::Below(to_u32(&k))
    }
}

/// `u >= k` over all draws.
fn at_least(k: BigInt) -> DrawTest {
    if k <= BigInt::zero() {
        DrawTest::Always
    } else if k >= draw_count() {
        DrawTest::Never
    } else {
        DrawTest::AtLeast(to_u32(&k))
    }
}

/// The draw equal to `t`, if `t` is one.
fn exact_draw(t: &BigRational) -> Option<u32> {
    let k = t.is_integer().then(|| t.to_integer())?;
    (k >= BigInt::zero() && k < draw_count()).then(|| to_u32(&k))
}

fn to_u32(k: &BigInt) -> u32 {
    u32::try_from(k).expect("callers check 0 <= k < 2^32")
}

fn reversed(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
        CmpOp::Eq => CmpOp::Eq,
        CmpOp::Ne => CmpOp::Ne,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ratio(n: i64, d: i64) -> BigRational {
        BigRational::new(BigInt::from(n), BigInt::from(d))
    }

    fn decimal(text: &str) -> BigRational {
        simplebpf_dsl::decimal::parse_float(text).unwrap()
    }

    /// `randomf(0, 1) < p`.
    fn below_p(p: &str) -> DrawTest {
        randomf_compare(&ratio(0, 1), &ratio(1, 1), CmpOp::Lt, &decimal(p))
    }

    #[test]
    fn thresholds_of_randomf_below_p() {
        assert_eq!(below_p("0.95"), DrawTest::Below(4080218932));
        // 0.99 * 2^32 = 4252017623.04
        assert_eq!(below_p("0.99"), DrawTest::Below(4252017624));
        assert_eq!(below_p("0.5"), DrawTest::Below(2147483648));
        // 1e-9 * 2^32 = 4.294967296: draws 0..=4 are below.
        assert_eq!(below_p("1e-9"), DrawTest::Below(5));
        assert_eq!(below_p("0"), DrawTest::Never);
        assert_eq!(below_p("1"), DrawTest::Always);
        assert_eq!(below_p("1.5"), DrawTest::Always);
    }

    #[test]
    fn the_095_threshold_is_exact_at_its_edge() {
        let test = below_p("0.95");
        let exact =
            |u: u32| ratio(u.into(), 1) / BigRational::from_integer(draw_count()) < decimal("0.95");
        for u in [4080218930, 4080218931, 4080218932, 4080218933] {
            assert_eq!(test.holds(u), exact(u), "u = {u}");
        }
        assert!(test.holds(4080218931) && !test.holds(4080218932));
    }

    #[test]
    fn other_operators_and_bounds() {
        let (zero, one) = (ratio(0, 1), ratio(1, 1));
        let half = decimal("0.5");
        assert_eq!(
            randomf_compare(&zero, &one, CmpOp::Le, &half),
            DrawTest::Below(2147483649)
        );
        assert_eq!(
            randomf_compare(&zero, &one, CmpOp::Gt, &half),
            DrawTest::AtLeast(2147483649)
        );
        assert_eq!(
            randomf_compare(&zero, &one, CmpOp::Ge, &half),
            DrawTest::AtLeast(2147483648)
        );
        assert_eq!(
            randomf_compare(&zero, &one, CmpOp::Eq, &half),
            DrawTest::Equal(2147483648)
        );
        assert_eq!(
            randomf_compare(&zero, &one, CmpOp::Eq, &decimal("0.95")),
            DrawTest::Never
        );
        assert_eq!(
            randomf_compare(&zero, &one, CmpOp::Ne, &decimal("0.95")),
            DrawTest::Always
        );
        // randomf(0, 100) < 95 is randomf(0, 1) < 0.95.
        assert_eq!(
            randomf_compare(&zero, &ratio(100, 1), CmpOp::Lt, &ratio(95, 1)),
            DrawTest::Below(4080218932)
        );
        // A reversed range counts down: randomf(1, 0) < 0.25 holds for u/2^32 > 0.75.
        assert_eq!(
            randomf_compare(&one, &zero, CmpOp::Lt, &decimal("0.25")),
            DrawTest::AtLeast(3221225473)
        );
        assert_eq!(
            randomf_compare(&one, &one, CmpOp::Le, &one),
            DrawTest::Always
        );
    }

    fn op() -> impl Strategy<Value = CmpOp> {
        prop::sample::select(vec![
            CmpOp::Lt,
            CmpOp::Le,
            CmpOp::Gt,
            CmpOp::Ge,
            CmpOp::Eq,
            CmpOp::Ne,
        ])
    }

    proptest! {
        /// The integer test agrees with the exact rational comparison on every draw tried,
        /// including the draws next to the threshold.
        #[test]
        fn integer_test_matches_exact_semantics(
            lo in -5i64..5, hi in -5i64..5, num in -2000i64..2000, den in 1i64..1000,
            op in op(), draws in prop::collection::vec(any::<u32>(), 8),
        ) {
            let (lo, hi, c) = (ratio(lo, 1), ratio(hi, 1), ratio(num, den));
            let test = randomf_compare(&lo, &hi, op, &c);
            let exact = |u: u32| {
                let x = &lo + (&hi - &lo) * ratio(u.into(), 1) / BigRational::from_integer(draw_count());
                match op {
                    CmpOp::Lt => x < c, CmpOp::Le => x <= c, CmpOp::Gt => x > c,
                    CmpOp::Ge => x >= c, CmpOp::Eq => x == c, CmpOp::Ne => x != c,
                }
            };
            let mut probes = draws;
            if let DrawTest::Below(k) | DrawTest::AtLeast(k) | DrawTest::Equal(k) | DrawTest::NotEqual(k) = test {
                probes.extend([k.saturating_sub(1), k, k.saturating_add(1)]);
            }
            probes.extend([0, u32::MAX]);
            for u in probes {
                prop_assert_eq!(test.holds(u), exact(u), "u = {}", u);
            }
        }
    }
}
