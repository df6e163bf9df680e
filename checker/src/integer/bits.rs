//! The bit-vector operations with a linear meaning: sums and products by constants with
//! as few wraps as their bounds allow, fields, shifts, and the bits a term may have set.

use num_bigint::BigInt;
use num_traits::{One, ToPrimitive, Zero};
use z3::DeclKind;
use z3::ast::{Ast, Dynamic, Int};

use super::{Reads, Term, Translator, int, parameter, pow2, width_of};

impl Translator {
    /// The bits of a bit-vector operation's result that may be one, from its arguments'.
    pub(super) fn ones(&self, node: &Dynamic, kind: DeclKind, width: u32) -> BigInt {
        use DeclKind::*;
        let all = pow2(width) - 1u32;
        let arg = |i: usize| self.ones_child(node, i);
        let shift = || match self.child(node, 1) {
            Term::Int {
                constant: Some(k), ..
            } => k.to_usize(),
            _ => None,
        };
        let n = node.num_children();
        let bits = match kind {
            Band => (0..n).map(arg).fold(all.clone(), |a, b| a & b),
            Bor | Bxor => (0..n).map(arg).fold(BigInt::zero(), |a, b| a | b),
            Concat => (0..n).fold(BigInt::zero(), |a, i| {
                let w = node
                    .nth_child(i)
                    .and_then(|c| width_of(&c))
                    .unwrap_or(width);
                (a << w as usize) | arg(i)
            }),
            Extract => arg(0) >> parameter(node, 1) as usize,
            ZeroExt => arg(0),
            Bshl => match shift() {
                Some(k) => arg(0) << k,
                None => all.clone(),
            },
            Blshr => match shift() {
                Some(k) => arg(0) >> k,
                None => arg(0),
            },
            _ => all.clone(),
        };
        bits & all
    }

    /// The integer a bit-vector operation denotes, with a bound on its bits where the
    /// operation gives a tighter one than its arguments, or `None` when it has no linear
    /// meaning.
    pub(super) fn arithmetic(
        &mut self,
        node: &Dynamic,
        kind: DeclKind,
    ) -> Option<(Int, Option<BigInt>)> {
        use DeclKind::*;
        let width = width_of(node)?;
        let modulus = pow2(width);
        let m = int(&modulus);
        let args = self.ints(node);
        let constant = |i: usize| match self.child(node, i) {
            Term::Int { constant, .. } => constant,
            Term::Bool(_) => None,
        };
        let value = match kind {
            Badd => {
                let terms: Vec<Scaled> = (0..args.len())
                    .map(|i| self.scaled(node, i, width))
                    .collect();
                return Some(wrap(&terms, width));
            }
            Bsub => {
                let terms = [
                    self.scaled(node, 0, width),
                    self.scaled(node, 1, width).negated(),
                ];
                return Some(wrap(&terms, width));
            }
            Bneg => return Some(wrap(&[self.scaled(node, 0, width).negated()], width)),
            Bnot => Int::sub(&[&int(&(&modulus - 1u32)), &args[0].0]),
            Bmul => {
                let mut factor = BigInt::one();
                let mut unknown = None;
                for i in 0..args.len() {
                    match constant(i) {
                        Some(c) => factor *= c,
                        None if unknown.is_none() => unknown = Some(i),
                        None => return None,
                    }
                }
                match unknown {
                    None => int(&(factor % &modulus)),
                    Some(i) => {
                        let term = self.scaled(node, i, width).times(&factor, width);
                        return Some(wrap(&[term], width));
                    }
                }
            }
            Budiv | BudivI | Burem | BuremI => {
                let divisor = constant(1)?;
                let a = &args[0].0;
                match (kind, divisor.is_zero()) {
                    (Budiv, true) => int(&(&modulus - 1u32)),
                    (Burem, true) => a.clone(),
                    (_, true) => return None,
                    (Budiv | BudivI, false) => a.div(int(&divisor)),
                    _ => a.modulo(int(&divisor)),
                }
            }
            Bshl | Blshr | Bashr => {
                let shift = constant(1)?.to_u32().unwrap_or(u32::MAX);
                let a = &args[0].0;
                match kind {
                    _ if shift >= width && kind != Bashr => Int::from_u64(0),
                    Bshl => Int::mul(&[a, &int(&pow2(shift))]).modulo(&m),
                    Blshr => a.div(int(&pow2(shift))),
                    _ => {
                        let q = signed(a, width).div(int(&pow2(shift.min(width))));
                        q.lt(Int::from_u64(0)).ite(&Int::add(&[&q, &m]), &q)
                    }
                }
            }
            Band => self.and(node, &args, width)?,
            Bor | Bxor if self.disjoint(node) => {
                let refs: Vec<&Int> = args.iter().map(|(a, _)| a).collect();
                Int::add(&refs)
            }
            Bxor => return None,
            Bor => {
                // Not linear; what is cheap: a | b lies between max(a, b) and a + b.
                let value = self.fresh_int(width);
                for (a, _) in &args {
                    self.facts.push(value.ge(a));
                }
                let refs: Vec<&Int> = args.iter().map(|(a, _)| a).collect();
                self.facts.push(value.le(Int::add(&refs)));
                value
            }
            Concat => {
                let mut total = Int::from_u64(0);
                for (value, w) in &args {
                    total = Int::add(&[&Int::mul(&[&total, &int(&pow2(*w))]), value]);
                }
                total
            }
            Extract => {
                let (high, low) = (parameter(node, 0), parameter(node, 1));
                let (a, w) = &args[0];
                let shifted = if low == 0 {
                    a.clone()
                } else {
                    a.div(int(&pow2(low)))
                };
                if high + 1 >= *w {
                    shifted
                } else {
                    shifted.modulo(int(&pow2(high - low + 1)))
                }
            }
            ZeroExt => args[0].0.clone(),
            SignExt => {
                let (a, w) = &args[0];
                let extra = int(&(pow2(width) - pow2(*w)));
                a.ge(int(&pow2(w - 1))).ite(&Int::add(&[a, &extra]), a)
            }
            _ => return None,
        };
        Some((value, None))
    }

    /// Argument `i` as a term of a sum; a product by a constant is its factor times the
    /// other argument, so `now + (−1)·last` wraps once, not twice.
    fn scaled(&self, node: &Dynamic, i: usize, width: u32) -> Scaled {
        let child = node.nth_child(i).expect("an argument");
        let known = |t: &Term| match t {
            Term::Int { constant, .. } => constant.clone(),
            Term::Bool(_) => None,
        };
        let product = child.safe_decl().is_ok_and(|d| d.kind() == DeclKind::Bmul)
            && child.num_children() == 2
            && self.pure.get(&child) == Some(&Reads::Other);
        if product {
            let (a, b) = (
                child.nth_child(0).expect("a factor"),
                child.nth_child(1).expect("a factor"),
            );
            if let (Some(ta), Some(tb)) = (self.done.get(&a), self.done.get(&b)) {
                match (known(ta), known(tb)) {
                    (Some(c), None) => return self.plain(tb).times(&c, width),
                    (None, Some(c)) => return self.plain(ta).times(&c, width),
                    _ => {}
                }
            }
        }
        self.plain(&self.child(node, i))
    }

    fn plain(&self, term: &Term) -> Scaled {
        match term {
            Term::Int {
                value,
                constant,
                ones,
                ..
            } => Scaled {
                coefficient: BigInt::one(),
                value: value.clone(),
                low: constant.clone().unwrap_or_default(),
                high: ones.clone(),
            },
            Term::Bool(_) => unreachable!("a bit-vector argument translates to an integer"),
        }
    }

    /// Whether no bit may be one in two of the arguments: then `|` and `^` are `+`.
    fn disjoint(&self, node: &Dynamic) -> bool {
        let mut seen = BigInt::zero();
        for i in 0..node.num_children() {
            let ones = self.ones_child(node, i);
            if !(&seen & &ones).is_zero() {
                return false;
            }
            seen |= ones;
        }
        true
    }

    /// `a & mask` for a mask of consecutive ones is a field of `a`, and for a mask that
    /// covers every bit `a` may have it is `a`; otherwise a fresh value no greater than
    /// either side.
    fn and(&mut self, node: &Dynamic, args: &[(Int, u32)], width: u32) -> Option<Int> {
        if args.len() == 2 {
            for (mask_at, other) in [(0, 1), (1, 0)] {
                let covered = match self.child(node, mask_at) {
                    Term::Int {
                        constant: Some(mask),
                        ..
                    } => (self.ones_child(node, other) & &mask) == self.ones_child(node, other),
                    _ => false,
                };
                if covered {
                    return Some(args[other].0.clone());
                }
            }
            if (self.ones_child(node, 0) & self.ones_child(node, 1)).is_zero() {
                return Some(Int::from_u64(0));
            }
            for (mask_at, other) in [(0, 1), (1, 0)] {
                let Term::Int {
                    constant: Some(mask),
                    ..
                } = self.child(node, mask_at)
                else {
                    continue;
                };
                if mask.is_zero() {
                    return Some(Int::from_u64(0));
                }
                let low = mask.trailing_zeros()? as u32;
                let ones = (&mask >> low as usize).bits() as u32;
                if (&mask >> low as usize) == pow2(ones) - 1u32 {
                    let a = &args[other].0;
                    let field = a.div(int(&pow2(low))).modulo(int(&pow2(ones)));
                    return Some(Int::mul(&[&field, &int(&pow2(low))]));
                }
            }
        }
        let value = self.fresh_int(width);
        for (a, _) in args {
            self.facts.push(value.le(a));
        }
        Some(value)
    }
}

/// A term of a sum: `coefficient · value`, the value between `low` and `high`.
struct Scaled {
    coefficient: BigInt,
    value: Int,
    low: BigInt,
    high: BigInt,
}

impl Scaled {
    fn negated(self) -> Scaled {
        Scaled {
            coefficient: -self.coefficient,
            ..self
        }
    }

    /// Times a constant, taken modulo `2^width` as the smaller of its two representatives
    /// (`·0xff…fc18` is `·−1000`): the sum then needs fewer wraps.
    fn times(self, factor: &BigInt, width: u32) -> Scaled {
        let modulus = pow2(width);
        let mut c = (factor * &self.coefficient) % &modulus;
        if c < BigInt::zero() {
            c += &modulus;
        }
        if c >= pow2(width - 1) {
            c -= &modulus;
        }
        Scaled {
            coefficient: c,
            ..self
        }
    }
}

/// `Σ cᵢ·xᵢ mod 2^width`, with as few wraps as the bounds of the sum allow: none when it
/// cannot leave `[0, 2^width)`, one case when it can leave by one side, `mod` otherwise.
/// The bound on its bits comes back when no wrap was needed.
fn wrap(terms: &[Scaled], width: u32) -> (Int, Option<BigInt>) {
    let modulus = pow2(width);
    let m = int(&modulus);
    let (mut low, mut high) = (BigInt::zero(), BigInt::zero());
    let mut parts = Vec::new();
    for term in terms {
        let a = &term.coefficient * &term.low;
        let b = &term.coefficient * &term.high;
        low += a.clone().min(b.clone());
        high += a.max(b);
        parts.push(if term.coefficient.is_one() {
            term.value.clone()
        } else {
            Int::mul(&[&int(&term.coefficient), &term.value])
        });
    }
    let refs: Vec<&Int> = parts.iter().collect();
    let sum = Int::add(&refs);
    let zero = BigInt::zero();
    if low >= zero && high < modulus {
        let bits = high.bits() as u32;
        return (sum, Some(pow2(bits) - 1u32));
    }
    let value = if low >= -&modulus && high < modulus {
        sum.lt(Int::from_u64(0)).ite(&Int::add(&[&sum, &m]), &sum)
    } else if low >= zero && high < &modulus * 2u32 {
        sum.ge(&m).ite(&Int::sub(&[&sum, &m]), &sum)
    } else {
        sum.modulo(&m)
    };
    (value, None)
}

/// The two's-complement value of a `width`-bit unsigned integer.
pub(super) fn signed(a: &Int, width: u32) -> Int {
    let half = int(&pow2(width - 1));
    a.ge(&half).ite(&Int::sub(&[a, &int(&pow2(width))]), a)
}
