//! Exact float arithmetic as integer linear forms (LANGUAGE.md §4.4).
//!
//! A float the program computes at run time is `(Σ coef·atom + k) / scale`: each atom is a
//! 64-bit C expression (a fixed-point state variable, a random draw, a time difference, an
//! integer) whose mathematical value lies in a known range; `coef`, `k` and `scale` are exact
//! integers. Sums and products by constants stay linear and exact. Because C's unsigned
//! arithmetic is exact modulo 2^64, a form evaluated with wrapping adds and multiplies gives
//! the right bits whenever the *final* value fits in 64 bits; that is the only range check
//! a materialisation needs. Comparisons of a single atom with a constant are solved for the
//! atom instead (`randomf(0, 1) < 0.95` becomes `u < 4080218932`), so they never overflow.

use num_bigint::BigInt;
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{One, Signed, Zero};
use simplebpf_dsl::ir::CmpOp;

/// Which variable an atom reads, so that a branch condition can narrow its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum VarKey {
    State(u32),
    Local(u32),
}

/// An inclusive range of integers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub lo: BigInt,
    pub hi: BigInt,
}

impl Range {
    pub fn new(lo: impl Into<BigInt>, hi: impl Into<BigInt>) -> Range {
        Range {
            lo: lo.into(),
            hi: hi.into(),
        }
    }

    pub fn i64() -> Range {
        Range::new(i64::MIN, i64::MAX)
    }

    pub fn u64() -> Range {
        Range::new(0u64, u64::MAX)
    }

    pub fn point(value: BigInt) -> Range {
        Range {
            lo: value.clone(),
            hi: value,
        }
    }

    pub fn fits_i64(&self) -> bool {
        self.lo >= BigInt::from(i64::MIN) && self.hi <= BigInt::from(i64::MAX)
    }

    pub fn fits_u64(&self) -> bool {
        self.lo >= BigInt::zero() && self.hi <= BigInt::from(u64::MAX)
    }

    pub fn join(&self, other: &Range) -> Range {
        Range {
            lo: (&self.lo).min(&other.lo).clone(),
            hi: (&self.hi).max(&other.hi).clone(),
        }
    }

    pub fn meet(&self, other: &Range) -> Option<Range> {
        let lo = (&self.lo).max(&other.lo).clone();
        let hi = (&self.hi).min(&other.hi).clone();
        (lo <= hi).then_some(Range { lo, hi })
    }

    fn scaled(&self, coef: &BigInt) -> Range {
        let (a, b) = (&self.lo * coef, &self.hi * coef);
        if a <= b {
            Range { lo: a, hi: b }
        } else {
            Range { lo: b, hi: a }
        }
    }

    fn plus(&self, other: &Range) -> Range {
        Range {
            lo: &self.lo + &other.lo,
            hi: &self.hi + &other.hi,
        }
    }
}

/// A 64-bit value the C code computes, with the range its mathematical value lies in.
#[derive(Debug, Clone, PartialEq)]
pub struct Atom {
    /// A side-effect-free C expression of type `__s64` (when `signed`) or `__u64`.
    pub c: String,
    pub range: Range,
    pub signed: bool,
    pub var: Option<VarKey>,
    /// False for a random draw: evaluating it has an effect, so it is never duplicated,
    /// never merged with another draw (`id` tells them apart) and never dropped.
    pub pure: bool,
    pub id: usize,
}

impl Atom {
    pub fn new(c: impl Into<String>, range: Range, signed: bool, var: Option<VarKey>) -> Atom {
        Atom {
            c: c.into(),
            range,
            signed,
            var,
            pure: true,
            id: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    pub coef: BigInt,
    pub atom: Atom,
}

/// `(Σ coef·atom + k) / scale`, with `scale > 0`.
#[derive(Debug, Clone, PartialEq)]
pub struct Lin {
    pub terms: Vec<Term>,
    pub k: BigInt,
    pub scale: BigInt,
    /// Draws whose value cancelled out but which must still be taken, in order.
    pub effects: Vec<String>,
}

/// Why a form cannot become a 64-bit integer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfRange {
    pub range: Range,
}

impl Lin {
    pub fn constant(value: &BigRational) -> Lin {
        Lin {
            terms: Vec::new(),
            k: value.numer().clone(),
            scale: value.denom().clone(),
            effects: Vec::new(),
        }
        .normalized()
    }

    /// The atom divided by `scale`.
    pub fn atom(atom: Atom, scale: BigInt) -> Lin {
        Lin {
            terms: vec![Term {
                coef: BigInt::one(),
                atom,
            }],
            k: BigInt::zero(),
            scale,
            effects: Vec::new(),
        }
        .normalized()
    }

    /// Every effect evaluating this form has: the kept ones and the draws still in terms.
    pub fn all_effects(&self) -> Vec<String> {
        let mut effects = self.effects.clone();
        effects.extend(
            self.terms
                .iter()
                .filter(|t| !t.atom.pure)
                .map(|t| t.atom.c.clone()),
        );
        effects
    }

    pub fn as_constant(&self) -> Option<BigRational> {
        self.terms
            .is_empty()
            .then(|| BigRational::new(self.k.clone(), self.scale.clone()))
    }

    /// The same value over `scale`, which must be a multiple of the current scale.
    pub fn at_scale(&self, scale: &BigInt) -> Lin {
        debug_assert!(scale.is_multiple_of(&self.scale));
        let factor = scale / &self.scale;
        Lin {
            terms: self
                .terms
                .iter()
                .map(|term| Term {
                    coef: &term.coef * &factor,
                    atom: term.atom.clone(),
                })
                .collect(),
            k: &self.k * &factor,
            scale: scale.clone(),
            effects: self.effects.clone(),
        }
    }

    /// Divides coefficients, constant and scale by their common factor and merges terms that
    /// read the same C expression.
    pub fn normalized(mut self) -> Lin {
        let mut merged: Vec<Term> = Vec::new();
        for term in self.terms.drain(..) {
            match merged
                .iter_mut()
                .find(|t| t.atom.c == term.atom.c && t.atom.id == term.atom.id)
            {
                Some(existing) => existing.coef += term.coef,
                None => merged.push(term),
            }
        }
        for term in &merged {
            if term.coef.is_zero() && !term.atom.pure {
                self.effects.push(term.atom.c.clone());
            }
        }
        merged.retain(|term| !term.coef.is_zero());
        self.terms = merged;
        let mut g = self.scale.clone();
        for term in &self.terms {
            g = g.gcd(&term.coef);
        }
        g = g.gcd(&self.k);
        if !g.is_zero() && !g.is_one() {
            for term in &mut self.terms {
                term.coef /= &g;
            }
            self.k /= &g;
            self.scale /= &g;
        }
        self
    }

    pub fn add(&self, other: &Lin) -> Lin {
        let scale = self.scale.lcm(&other.scale);
        let (a, b) = (self.at_scale(&scale), other.at_scale(&scale));
        Lin {
            terms: a.terms.into_iter().chain(b.terms).collect(),
            k: a.k + b.k,
            scale,
            effects: a.effects.into_iter().chain(b.effects).collect(),
        }
        .normalized()
    }

    pub fn negate(&self) -> Lin {
        Lin {
            terms: self
                .terms
                .iter()
                .map(|term| Term {
                    coef: -&term.coef,
                    atom: term.atom.clone(),
                })
                .collect(),
            k: -&self.k,
            scale: self.scale.clone(),
            effects: self.effects.clone(),
        }
    }

    pub fn sub(&self, other: &Lin) -> Lin {
        self.add(&other.negate())
    }

    /// Multiplies by an exact constant.
    pub fn mul_const(&self, factor: &BigRational) -> Lin {
        if factor.is_zero() {
            let mut zero = Lin::constant(factor);
            zero.effects = self.all_effects();
            return zero;
        }
        let (mut numer, mut denom) = (factor.numer().clone(), factor.denom().clone());
        if denom.is_negative() {
            numer = -numer;
            denom = -denom;
        }
        Lin {
            terms: self
                .terms
                .iter()
                .map(|term| Term {
                    coef: &term.coef * &numer,
                    atom: term.atom.clone(),
                })
                .collect(),
            k: &self.k * &numer,
            scale: &self.scale * denom,
            effects: self.effects.clone(),
        }
        .normalized()
    }

    /// The range of the integer numerator `Σ coef·atom + k`.
    pub fn numerator_range(&self) -> Range {
        self.terms
            .iter()
            .fold(Range::point(self.k.clone()), |acc, term| {
                acc.plus(&term.atom.range.scaled(&term.coef))
            })
    }

    /// The numerator as a C expression of type `__s64` (if its range fits) or `__u64`.
    pub fn materialize(&self) -> Result<(String, Range, bool), OutOfRange> {
        let range = self.numerator_range();
        let signed = if range.fits_i64() {
            true
        } else if range.fits_u64() {
            false
        } else {
            return Err(OutOfRange { range });
        };
        let c = wrapping_sum(&self.terms, &self.k);
        let c = match (signed, self.terms.as_slice()) {
            // A lone atom of the right signedness needs no cast.
            (_, []) => c_int_literal(&self.k, signed),
            (s, [term]) if term.coef.is_one() && self.k.is_zero() && term.atom.signed == s => {
                term.atom.c.clone()
            }
            (true, _)
                if c.starts_with('(') && self.terms.len() + usize::from(!self.k.is_zero()) > 1 =>
            {
                // `wrapping_sum` parenthesised the whole sum.
                format!("(__s64){c}")
            }
            (true, _) => format!("(__s64)({c})"),
            (false, _) => c,
        };
        if self.effects.is_empty() {
            return Ok((c, range, signed));
        }
        let effects: Vec<String> = self
            .effects
            .iter()
            .map(|e| format!("(void)({e}), "))
            .collect();
        Ok((format!("({}{c})", effects.concat()), range, signed))
    }
}

/// `Σ coef·atom + k` in `__u64` arithmetic, which is exact modulo 2^64.
fn wrapping_sum(terms: &[Term], k: &BigInt) -> String {
    let mut parts: Vec<(bool, String)> = Vec::new();
    for term in terms {
        let atom = if term.atom.signed {
            format!("(__u64){}", term.atom.c)
        } else {
            term.atom.c.clone()
        };
        let magnitude = term.coef.abs();
        let text = if magnitude.is_one() {
            atom
        } else {
            format!("{atom} * {}", u64_literal(&magnitude))
        };
        parts.push((term.coef.is_negative(), text));
    }
    if !k.is_zero() {
        parts.push((k.is_negative(), u64_literal(&k.abs())));
    }
    let mut out = String::new();
    for (index, (negative, text)) in parts.iter().enumerate() {
        match (index, negative) {
            (0, false) => out.push_str(text),
            (0, true) => out.push_str(&format!("-({text})")),
            (_, false) => out.push_str(&format!(" + {text}")),
            (_, true) => out.push_str(&format!(" - {text}")),
        }
    }
    if parts.len() > 1 || parts.first().is_some_and(|(negative, _)| *negative) {
        format!("({out})")
    } else {
        out
    }
}

/// A magnitude below 2^64 as a C `__u64` literal; larger values wrap, which is what the
/// modular sum wants.
fn u64_literal(value: &BigInt) -> String {
    let modulus = BigInt::one() << 64;
    let wrapped = value.mod_floor(&modulus);
    format!("{wrapped}ULL")
}

/// An integer that fits the C type as a literal of that type.
pub fn c_int_literal(value: &BigInt, signed: bool) -> String {
    if signed {
        if *value == BigInt::from(i64::MIN) {
            "(-9223372036854775807LL - 1)".to_string()
        } else {
            format!("{value}LL")
        }
    } else {
        format!("{value}ULL")
    }
}

/// The outcome of comparing a form with zero.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Always(bool),
    /// A C condition, and the ranges the compared variable has where it holds and where it
    /// does not (when the condition reads one variable).
    Test {
        c: String,
        narrowed: Option<(VarKey, Option<Range>, Option<Range>)>,
    },
}

/// `lin CMP 0`, exactly. Kept effects (`lin.effects`) are the caller's to sequence: the
/// condition returned reads the terms only.
pub fn compare_with_zero(lin: &Lin, op: CmpOp) -> Result<Decision, OutOfRange> {
    match lin.terms.as_slice() {
        [] => Ok(Decision::Always(holds(&lin.k, op))),
        [term] => Ok(solve_single(term, &lin.k, op)),
        _ => {
            let bare = Lin {
                effects: Vec::new(),
                ..lin.clone()
            };
            let (c, range, _) = bare.materialize()?;
            if range.lo > BigInt::zero() || range.hi < BigInt::zero() {
                // The sign is the same everywhere (an unsigned value is never below zero).
                return Ok(Decision::Always(holds(&range.lo, op)));
            }
            Ok(Decision::Test {
                c: format!("{c} {} 0", op.symbol()),
                narrowed: None,
            })
        }
    }
}

fn holds(value: &BigInt, op: CmpOp) -> bool {
    let zero = BigInt::zero();
    match op {
        CmpOp::Eq => *value == zero,
        CmpOp::Ne => *value != zero,
        CmpOp::Lt => *value < zero,
        CmpOp::Le => *value <= zero,
        CmpOp::Gt => *value > zero,
        CmpOp::Ge => *value >= zero,
    }
}

fn flip(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
        other => other,
    }
}

/// `coef·a + k CMP 0` for an integer atom `a`: the set of `a` where it holds is a half-line
/// (or a point), so it becomes `a CMP' bound` and folds when the atom's range decides it.
fn solve_single(term: &Term, k: &BigInt, op: CmpOp) -> Decision {
    let atom = &term.atom;
    // a CMP -k/coef, with the direction flipped when coef < 0.
    let op = if term.coef.is_negative() {
        flip(op)
    } else {
        op
    };
    let bound = BigRational::new(-k.clone(), term.coef.clone());
    // The integers satisfying `a op bound`, as an inclusive range (None = unbounded side).
    let (lo, hi): (Option<BigInt>, Option<BigInt>) = match op {
        CmpOp::Lt => (None, Some(bound.ceil().to_integer() - 1)),
        CmpOp::Le => (None, Some(bound.floor().to_integer())),
        CmpOp::Gt => (Some(bound.floor().to_integer() + 1), None),
        CmpOp::Ge => (Some(bound.ceil().to_integer()), None),
        CmpOp::Eq | CmpOp::Ne => {
            let hit = bound.is_integer() && {
                let value = bound.to_integer();
                value >= atom.range.lo && value <= atom.range.hi
            };
            return match (op, hit) {
                (CmpOp::Eq, false) => Decision::Always(false),
                (CmpOp::Ne, false) => Decision::Always(true),
                _ => Decision::Test {
                    c: format!(
                        "{} {} {}",
                        atom.c,
                        op.symbol(),
                        c_int_literal(&bound.to_integer(), atom.signed)
                    ),
                    narrowed: None,
                },
            };
        }
    };
    let holds_set = Range {
        lo: lo.clone().unwrap_or_else(|| atom.range.lo.clone()),
        hi: hi.clone().unwrap_or_else(|| atom.range.hi.clone()),
    };
    let Some(true_range) = atom.range.meet(&holds_set) else {
        return Decision::Always(false);
    };
    if true_range == atom.range {
        return Decision::Always(true);
    }
    let (c, false_range) = match (lo, hi) {
        (None, Some(hi)) => (
            format!("{} <= {}", atom.c, c_int_literal(&hi, atom.signed)),
            Range::new(hi + 1, atom.range.hi.clone()),
        ),
        (Some(lo), None) => (
            format!("{} >= {}", atom.c, c_int_literal(&lo, atom.signed)),
            Range::new(atom.range.lo.clone(), lo - 1),
        ),
        _ => unreachable!("an inequality bounds one side"),
    };
    // Prefer the strict form people write: `u < 4080218932` rather than `u <= 4080218931`.
    let c = strict_form(&c, atom);
    Decision::Test {
        c,
        narrowed: atom
            .var
            .map(|var| (var, Some(true_range), atom.range.meet(&false_range))),
    }
}

fn strict_form(c: &str, atom: &Atom) -> String {
    if let Some(rest) = c.strip_prefix(&format!("{} <= ", atom.c))
        && let Some(value) = parse_literal(rest)
    {
        return format!("{} < {}", atom.c, c_int_literal(&(value + 1), atom.signed));
    }
    c.to_string()
}

fn parse_literal(text: &str) -> Option<BigInt> {
    text.trim_end_matches("ULL")
        .trim_end_matches("LL")
        .parse::<BigInt>()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw() -> Atom {
        Atom::new(
            "u",
            Range::new(0u64, u64::from(u32::MAX)),
            false,
            Some(VarKey::Local(0)),
        )
    }

    fn rational(n: i64, d: i64) -> BigRational {
        BigRational::new(BigInt::from(n), BigInt::from(d))
    }

    #[test]
    fn a_draw_compared_with_a_probability_becomes_the_exact_threshold() {
        let u = Lin::atom(draw(), BigInt::one() << 32);
        let decision =
            compare_with_zero(&u.sub(&Lin::constant(&rational(95, 100))), CmpOp::Lt).unwrap();
        let Decision::Test { c, .. } = decision else {
            panic!("expected a test, got {decision:?}");
        };
        assert_eq!(c, "u < 4080218932ULL");
    }

    #[test]
    fn comparisons_outside_the_atom_range_fold() {
        let u = Lin::atom(draw(), BigInt::one() << 32);
        let always = compare_with_zero(&u.sub(&Lin::constant(&rational(1, 1))), CmpOp::Lt).unwrap();
        assert_eq!(always, Decision::Always(true));
        let never = compare_with_zero(&u.sub(&Lin::constant(&rational(0, 1))), CmpOp::Lt).unwrap();
        assert_eq!(never, Decision::Always(false));
    }

    #[test]
    fn sums_over_64_bits_refuse_to_materialize() {
        let x = Atom::new("x", Range::i64(), true, None);
        let y = Atom::new("y", Range::u64(), false, None);
        let sum = Lin::atom(x, BigInt::one()).add(&Lin::atom(y, BigInt::one()));
        assert!(sum.materialize().is_err());
    }

    #[test]
    fn scales_reduce_to_the_smallest_exact_one() {
        let dt = Atom::new("dt", Range::u64(), false, None);
        let seconds = Lin::atom(dt, BigInt::from(1_000_000_000u64));
        let tokens = seconds.mul_const(&rational(1000, 1));
        assert_eq!(tokens.scale, BigInt::from(1_000_000u64));
        assert_eq!(tokens.terms[0].coef, BigInt::one());
    }

    #[test]
    fn narrowing_gives_both_sides_of_a_guard() {
        let t = Atom::new("t", Range::i64(), true, Some(VarKey::State(0)));
        let form = Lin::atom(t, BigInt::from(10)).sub(&Lin::constant(&rational(1, 1)));
        let Decision::Test { c, narrowed } = compare_with_zero(&form, CmpOp::Ge).unwrap() else {
            panic!("expected a test");
        };
        assert_eq!(c, "t >= 10LL");
        let (_, yes, no) = narrowed.unwrap();
        assert_eq!(yes.unwrap(), Range::new(10, i64::MAX));
        assert_eq!(no.unwrap(), Range::new(i64::MIN, 9));
    }

    /// The backend's solved comparison says the same as the exact-rational reference in
    /// `threshold.rs`, for every operator and the probabilities people write.
    #[test]
    fn solved_draw_comparisons_agree_with_the_threshold_reference() {
        use crate::threshold::{DrawTest, randomf_compare};
        let probabilities = [
            (95, 100),
            (99, 100),
            (1, 2),
            (1, 1_000_000_000),
            (0, 1),
            (1, 1),
            (1, 10),
            (7, 3),
        ];
        let ops = [CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge];
        for (n, d) in probabilities {
            let c = rational(n, d);
            for op in ops {
                let u = Lin::atom(draw(), BigInt::one() << 32);
                let ours = compare_with_zero(&u.sub(&Lin::constant(&c)), op).unwrap();
                let reference = randomf_compare(&rational(0, 1), &rational(1, 1), op, &c);
                let agrees = match (&ours, &reference) {
                    (Decision::Always(true), DrawTest::Always) => true,
                    (Decision::Always(false), DrawTest::Never) => true,
                    (Decision::Test { c, .. }, DrawTest::Below(k)) => *c == format!("u < {k}ULL"),
                    (Decision::Test { c, .. }, DrawTest::AtLeast(k)) => {
                        *c == format!("u >= {k}ULL")
                    }
                    _ => false,
                };
                assert!(
                    agrees,
                    "{n}/{d} {op:?}: backend {ours:?}, reference {reference:?}"
                );
            }
        }
    }
}
