//! The policy's values as solver terms (`Sym`): integers as 64-bit vectors, floats as exact
//! rationals with a wide signed numerator, and the arithmetic, comparisons and merges of
//! LANGUAGE.md §3 over them, each exact (the unit tests prove the identities it relies on).

use std::collections::BTreeMap;

use num_bigint::BigInt;
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};
use simplebpf_dsl::interp::Value;
use simplebpf_dsl::ir::{ArithOp, CmpOp, Type};
use z3::DeclKind;
use z3::ast::{Ast, BV, Bool, Dynamic};

use crate::numeral;
use crate::symexec::Section;

/// The widest float numerator the encoding builds; past it the verdict is "unknown".
/// Every numerator is exactly as wide as its value can need (inputs are 64-bit; each add
/// adds a bit, each constant factor its bits), so no operation wraps: the encoding is exact,
/// and the solver's circuits stay as narrow as the arithmetic allows.
pub const MAX_WIDTH: u32 = 512;

#[derive(Debug, Clone)]
pub enum Sym {
    /// `int`, `uint` or `Instant` (64 bits) with its type.
    Bits(BV, Type),
    Bool(Bool),
    /// `num / den`, `den > 0`.
    Float {
        num: BV,
        den: BigInt,
    },
    Str(String),
    /// A string that differs between paths: the index of one of the strings the policy
    /// spells out (all strings are build-time constants here), as `string_id` encodes it.
    StrId(BV),
    Opt {
        some: Bool,
        value: Box<Sym>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

/// `value` as a two's-complement literal of `width` bits.
pub fn lit(value: &BigInt, width: u32) -> BV {
    BV::from_str(
        width,
        &value.mod_floor(&(BigInt::one() << width)).to_string(),
    )
    .expect("a decimal")
}

/// The bits a signed number needs.
pub(super) fn bits_for(value: &BigInt) -> u32 {
    value.bits() as u32 + 1
}

/// `x` sign-extended to at least `width` bits.
pub fn widen(x: &BV, width: u32) -> BV {
    let size = x.get_size();
    if size >= width {
        x.clone()
    } else {
        x.sign_ext(width - size)
    }
}

/// A constant numerator, as narrow as it can be.
pub(super) fn number(value: &BigInt) -> BV {
    lit(value, bits_for(value).max(2))
}

pub(super) fn add(x: &BV, y: &BV) -> BV {
    let w = x.get_size().max(y.get_size()) + 1;
    widen(x, w).bvadd(widen(y, w))
}

pub(super) fn sub(x: &BV, y: &BV) -> BV {
    let w = x.get_size().max(y.get_size()) + 1;
    widen(x, w).bvsub(widen(y, w))
}

/// Both sides at one width, for comparisons and `ite`.
pub(super) fn common(x: &BV, y: &BV) -> (BV, BV) {
    let w = x.get_size().max(y.get_size());
    (widen(x, w), widen(y, w))
}

/// The stored bytes of a variable (little endian).
pub fn read_global(
    sections: &BTreeMap<String, Section>,
    section: &str,
    offset: u64,
    size: u32,
) -> BV {
    sections[section].read(offset, size)
}

/// The value a stored scalar of type `ty` (scale for floats) means.
pub fn decode(raw: &BV, ty: &Type, scale: Option<&BigInt>) -> Sym {
    match ty {
        Type::Bool => Sym::Bool(raw.eq(BV::from_u64(0, raw.get_size())).not()),
        Type::Float => Sym::Float {
            num: raw.clone(),
            den: scale.cloned().unwrap_or_else(BigInt::one),
        },
        ty => Sym::Bits(raw.clone(), ty.clone()),
    }
}

/// A build-time value as a term.
pub fn constant(value: &Value) -> Result<Sym, Unsupported> {
    Ok(match value {
        Value::Int(v) => Sym::Bits(BV::from_i64(*v, 64), Type::Int),
        Value::Uint(v) => Sym::Bits(BV::from_u64(*v, 64), Type::Uint),
        Value::Instant(v) => Sym::Bits(BV::from_u64(*v, 64), Type::Instant),
        Value::Bool(v) => Sym::Bool(Bool::from_bool(*v)),
        Value::Float(v) => Sym::Float {
            num: number(v.numer()),
            den: v.denom().clone(),
        },
        Value::Str(s) => Sym::Str(s.clone()),
        Value::Option(None) => Sym::Opt {
            some: Bool::from_bool(false),
            value: Box::new(Sym::Bool(Bool::from_bool(false))),
        },
        Value::Option(Some(v)) => Sym::Opt {
            some: Bool::from_bool(true),
            value: Box::new(constant(v)?),
        },
        other => return Err(Unsupported(format!("the constant {other}"))),
    })
}

pub(super) fn is_false(b: &Bool) -> bool {
    b.simplify().as_bool() == Some(false)
}

/// A string as bits that determine it: its UTF-8 bytes above its 16-bit length. Different
/// strings give different bits at any common width (zero-extension keeps the length field),
/// so no table of the strings seen is needed.
pub(super) fn string_id(value: &Sym) -> Result<BV, Unsupported> {
    match value {
        Sym::StrId(id) => Ok(id.clone()),
        Sym::Str(text) if text.len() <= usize::from(u16::MAX) => Ok(text
            .bytes()
            .map(|b| BV::from_u64(u64::from(b), 8))
            .chain(std::iter::once(BV::from_u64(text.len() as u64, 16)))
            .reduce(|acc, part| acc.concat(&part))
            .expect("the length is always there")),
        _ => Err(Unsupported("a string of unknown shape".to_string())),
    }
}

/// Two string ids at one width.
pub(super) fn common_ids(a: &Sym, b: &Sym) -> Result<(BV, BV), Unsupported> {
    let (x, y) = (string_id(a)?, string_id(b)?);
    let width = x.get_size().max(y.get_size());
    let widen = |v: BV| {
        let size = v.get_size();
        if size < width {
            v.zero_ext(width - size)
        } else {
            v
        }
    };
    Ok((widen(x), widen(y)))
}

/// `ite(c, a, b)` for two values of one type.
pub fn merge(c: &Bool, a: &Sym, b: &Sym) -> Result<Sym, Unsupported> {
    Ok(match (a, b) {
        (Sym::Bits(x, t), Sym::Bits(y, _)) => Sym::Bits(c.ite(x, y), t.clone()),
        (Sym::Bool(x), Sym::Bool(y)) => Sym::Bool(c.ite(x, y)),
        (Sym::Float { num: x, den: dx }, Sym::Float { num: y, den: dy }) => {
            let den = dx.lcm(dy);
            let (x, y) = common(&scale_by(x, &(&den / dx)), &scale_by(y, &(&den / dy)));
            Sym::Float {
                num: c.ite(&x, &y),
                den,
            }
        }
        (Sym::Str(x), Sym::Str(y)) if x == y => Sym::Str(x.clone()),
        (Sym::Str(_) | Sym::StrId(_), Sym::Str(_) | Sym::StrId(_)) => {
            let (x, y) = common_ids(a, b)?;
            Sym::StrId(c.ite(&x, &y))
        }
        (
            Sym::Opt {
                some: s1,
                value: v1,
            },
            Sym::Opt {
                some: s2,
                value: v2,
            },
        ) => Sym::Opt {
            some: c.ite(s1, s2),
            // The value of a `None` is never read: where one side is surely `None` (its
            // placeholder may have another shape), take the other side's value.
            value: Box::new(if is_false(s2) {
                (**v1).clone()
            } else if is_false(s1) {
                (**v2).clone()
            } else {
                merge(c, v1, v2)?
            }),
        },
        _ => {
            return Err(Unsupported(
                "two different strings or shapes on two paths".to_string(),
            ));
        }
    })
}

/// `x · k` for a constant `k`, without a multiplier when `k` is 1 (bit-blasted multipliers
/// are what makes wide proofs slow, CHECKER-NOTES.md §1).
///
/// Two identities keep the solver on the program's terms: the product of an `ite` is the
/// `ite` of the products, and for `x = zext(y)` and `k > 0`, where `y·k` fits `y`'s width
/// it is `zext(y ·ₙ k)` — the wrapping multiply a program does once it has checked that
/// `y ≤ (2ⁿ − 1) / k` (the wide product is kept for the other case).
pub fn scale_by(x: &BV, k: &BigInt) -> BV {
    if k.is_one() {
        return x.clone();
    }
    let w = x.get_size() + bits_for(k);
    if let Ok(decl) = x.safe_decl() {
        let children = x.children();
        match decl.kind() {
            DeclKind::Ite => {
                if let (Some(c), Some(t), Some(e)) = (
                    children[0].as_bool(),
                    children[1].as_bv(),
                    children[2].as_bv(),
                ) {
                    let (t, e) = common(&scale_by(&t, k), &scale_by(&e, k));
                    return c.ite(&t, &e);
                }
            }
            DeclKind::ZeroExt => {
                if let (Some(y), Some(factor)) = (children[0].as_bv(), k.to_u64())
                    && factor > 0
                    && y.get_size() <= 64
                    && y.get_size() < x.get_size()
                {
                    let n = y.get_size();
                    let max = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
                    let narrow = y.bvmul(BV::from_u64(factor, n)).zero_ext(w - n);
                    let wide = x.zero_ext(w - x.get_size()).bvmul(lit(k, w));
                    return y.bvule(BV::from_u64(max / factor, n)).ite(&narrow, &wide);
                }
            }
            _ => {}
        }
    }
    widen(x, w).bvmul(lit(k, w))
}

pub(super) fn float_cmp(a: (&BV, &BigInt), b: (&BV, &BigInt), op: CmpOp) -> Bool {
    // a/da op b/db  ⇔  a·(db/g) op b·(da/g)  (denominators are positive, g their gcd).
    let g = a.1.gcd(b.1);
    let (x, y) = common(&scale_by(a.0, &(b.1 / &g)), &scale_by(b.0, &(a.1 / &g)));
    match op {
        CmpOp::Eq => x.eq(&y),
        CmpOp::Ne => x.eq(&y).not(),
        CmpOp::Lt => x.bvslt(&y),
        CmpOp::Le => x.bvsle(&y),
        CmpOp::Gt => x.bvsgt(&y),
        CmpOp::Ge => x.bvsge(&y),
    }
}

/// `a − b` for two 64-bit times, exactly (66 bits, signed). Where `b ≤ a` (as for a stored
/// Instant and the request's time) it is the 64-bit difference a program computes,
/// zero-extended: an identity that lets the solver meet the program's `now - last` term
/// instead of a wider adder.
pub(super) fn nanoseconds_between(a: &BV, b: &BV) -> BV {
    let exact = a.zero_ext(2).bvsub(b.zero_ext(2));
    b.bvule(a).ite(&a.bvsub(b).zero_ext(2), &exact)
}

/// `min(cap, x + t)`, written the way a program computes it without overflow: where `t ≥ 0`,
/// it is `cap` if `x ≥ cap` or `t ≥ cap − x`, else `x + t` — an identity, so the encoding
/// stays exact, and the solver meets the same case split as in the bytecode instead of
/// proving two adders equal (CHECKER-NOTES.md §2). Where `t < 0` the plain form is used.
pub(super) fn capped_sum(cap: &Sym, x: &Sym, t: &Sym) -> Result<Sym, Unsupported> {
    let zero = Sym::Float {
        num: number(&BigInt::zero()),
        den: BigInt::one(),
    };
    let sum = arith(ArithOp::Add, x.clone(), t.clone())?;
    let plain = merge(&compare(CmpOp::Le, cap, &sum)?, cap, &sum)?;
    let (gap, narrow_sum) = match (cap, x, t) {
        // All three over one denominator, cap and x 64-bit numerators (a stored value and a
        // constant): where `x < cap`, `cap − x` is in [1, 2⁶⁴) — the unsigned 64-bit
        // difference a program computes; where nothing fills, `x ≤ x + t < cap`, so the sum
        // is the 64-bit one (and `t < cap − x` fits 64 bits). Both identities in the cases
        // they are used in, and the solver meets the program's own terms.
        (
            Sym::Float { num: c, den: dc },
            Sym::Float { num: n, den: dn },
            Sym::Float { num: m, den: dm },
        ) if dc == dn && dn == dm && c.get_size() <= 64 && n.get_size() <= 64 => {
            let (c64, x64) = (widen(c, 64), widen(n, 64));
            let t64 = if m.get_size() > 64 {
                m.extract(63, 0)
            } else {
                widen(m, 64)
            };
            let gap = Sym::Float {
                num: c64.bvsub(&x64).zero_ext(1),
                den: dc.clone(),
            };
            let sum = Sym::Float {
                num: x64.bvadd(&t64),
                den: dc.clone(),
            };
            (gap, sum)
        }
        _ => (arith(ArithOp::Sub, cap.clone(), x.clone())?, sum),
    };
    let fills = Bool::or(&[compare(CmpOp::Ge, x, cap)?, compare(CmpOp::Ge, t, &gap)?]);
    let split = merge(&fills, cap, &narrow_sum)?;
    merge(&compare(CmpOp::Ge, t, &zero)?, &split, &plain)
}

/// A scalar as the program stores it (`bits` wide, floats at `scale`); exact only when the
/// value is representable, which the caller's comparison of observables decides.
pub fn encode_scalar(value: &Sym, bits: u32, scale: Option<&BigInt>) -> Result<BV, Unsupported> {
    Ok(match value {
        Sym::Bits(v, _) => fit(v, bits),
        Sym::Bool(b) => b.ite(&BV::from_u64(1, bits), &BV::from_u64(0, bits)),
        Sym::Float { num, den } => {
            let scale = scale.cloned().unwrap_or_else(BigInt::one);
            // num·scale/den, truncated; whether it is exact is checked where it matters.
            let scaled = scale_by(num, &scale);
            let w = scaled.get_size().max(bits_for(den)).max(bits);
            let quotient = widen(&scaled, w).bvsdiv(lit(den, w));
            quotient.extract(bits - 1, 0)
        }
        _ => return Err(Unsupported("storing this value in a map".to_string())),
    })
}

pub(super) fn fit(v: &BV, bits: u32) -> BV {
    let size = v.get_size();
    if size == bits {
        v.clone()
    } else if size > bits {
        v.extract(bits - 1, 0)
    } else {
        v.zero_ext(bits - size)
    }
}

pub(super) fn equals(a: &Sym, b: &Sym) -> Result<Bool, Unsupported> {
    compare(CmpOp::Eq, a, b)
}

pub(super) fn compare(op: CmpOp, a: &Sym, b: &Sym) -> Result<Bool, Unsupported> {
    Ok(match (a, b) {
        (Sym::Bits(x, t), Sym::Bits(y, _)) => {
            let signed = *t == Type::Int;
            match op {
                CmpOp::Eq => x.eq(y),
                CmpOp::Ne => x.eq(y).not(),
                CmpOp::Lt if signed => x.bvslt(y),
                CmpOp::Le if signed => x.bvsle(y),
                CmpOp::Gt if signed => x.bvsgt(y),
                CmpOp::Ge if signed => x.bvsge(y),
                CmpOp::Lt => x.bvult(y),
                CmpOp::Le => x.bvule(y),
                CmpOp::Gt => x.bvugt(y),
                CmpOp::Ge => x.bvuge(y),
            }
        }
        (Sym::Bool(x), Sym::Bool(y)) => match op {
            CmpOp::Eq => x.eq(y),
            CmpOp::Ne => x.eq(y).not(),
            _ => return Err(Unsupported("ordering booleans".to_string())),
        },
        (Sym::Float { num: x, den: dx }, Sym::Float { num: y, den: dy }) => {
            float_cmp((x, dx), (y, dy), op)
        }
        (Sym::Str(x), Sym::Str(y)) => {
            let holds = match op {
                CmpOp::Eq => x == y,
                CmpOp::Ne => x != y,
                CmpOp::Lt => x < y,
                CmpOp::Le => x <= y,
                CmpOp::Gt => x > y,
                CmpOp::Ge => x >= y,
            };
            Bool::from_bool(holds)
        }
        (Sym::Str(_) | Sym::StrId(_), Sym::Str(_) | Sym::StrId(_))
            if matches!(op, CmpOp::Eq | CmpOp::Ne) =>
        {
            let (x, y) = common_ids(a, b)?;
            let same = x.eq(&y);
            if op == CmpOp::Eq { same } else { same.not() }
        }
        _ => return Err(Unsupported("comparing these values".to_string())),
    })
}

pub(super) fn arith(op: ArithOp, a: Sym, b: Sym) -> Result<Sym, Unsupported> {
    bounded(arith_unbounded(op, a, b)?)
}

pub(super) fn bounded(value: Sym) -> Result<Sym, Unsupported> {
    match &value {
        Sym::Float { num, .. } if num.get_size() > MAX_WIDTH => Err(Unsupported(format!(
            "float arithmetic wider than {MAX_WIDTH} bits"
        ))),
        _ => Ok(value),
    }
}

pub(super) fn arith_unbounded(op: ArithOp, a: Sym, b: Sym) -> Result<Sym, Unsupported> {
    Ok(match (a, b) {
        (Sym::Bits(x, t), Sym::Bits(y, _)) => {
            let zero = BV::from_u64(0, 64);
            let v = match op {
                ArithOp::Add => x.bvadd(&y),
                ArithOp::Sub => x.bvsub(&y),
                ArithOp::Mul => x.bvmul(&y),
                ArithOp::Div if t == Type::Int => y.eq(&zero).ite(&zero, &x.bvsdiv(&y)),
                ArithOp::Div => y.eq(&zero).ite(&zero, &x.bvudiv(&y)),
            };
            Sym::Bits(v, t)
        }
        (Sym::Float { num: x, den: dx }, Sym::Float { num: y, den: dy }) => match op {
            ArithOp::Add | ArithOp::Sub => {
                let den = dx.lcm(&dy);
                let x = scale_by(&x, &(&den / &dx));
                let y = scale_by(&y, &(&den / &dy));
                Sym::Float {
                    num: if op == ArithOp::Add {
                        add(&x, &y)
                    } else {
                        sub(&x, &y)
                    },
                    den,
                }
            }
            ArithOp::Mul => match (constant_of(&x, &dx), constant_of(&y, &dy)) {
                (Some(c), _) => times_constant(&y, &dy, &c),
                (_, Some(c)) => times_constant(&x, &dx, &c),
                _ => {
                    let w = x.get_size() + y.get_size();
                    Sym::Float {
                        num: widen(&x, w).bvmul(widen(&y, w)),
                        den: &dx * &dy,
                    }
                }
            },
            ArithOp::Div => match constant_of(&y, &dy) {
                Some(c) if c.is_zero() => Sym::Float {
                    num: number(&BigInt::zero()),
                    den: BigInt::one(),
                },
                Some(c) => times_constant(&x, &dx, &c.recip()),
                None => {
                    return Err(Unsupported(
                        "dividing by a float computed at run time".to_string(),
                    ));
                }
            },
        },
        _ => return Err(Unsupported("arithmetic on these values".to_string())),
    })
}

/// `x/dx · c`, reduced so that the numerator is multiplied by as little as possible.
pub(super) fn times_constant(x: &BV, dx: &BigInt, c: &BigRational) -> Sym {
    let (mut n, mut d) = (c.numer().clone(), c.denom().clone());
    if d.is_negative() {
        n = -n;
        d = -d;
    }
    let den = dx * &d;
    let g = n.abs().gcd(&den);
    let (n, den) = if g.is_zero() {
        (n, den)
    } else {
        (&n / &g, &den / &g)
    };
    let num = if n.is_negative() {
        let scaled = scale_by(x, &-n);
        widen(&scaled, scaled.get_size() + 1).bvneg()
    } else {
        scale_by(x, &n)
    };
    Sym::Float { num, den }
}

pub(super) fn constant_of(num: &BV, den: &BigInt) -> Option<BigRational> {
    let value = numeral::value(&Dynamic::from_ast(&num.simplify()))?;
    // Interpret as a signed number of the numerator's width.
    let modulus = BigInt::one() << num.get_size();
    let value = if value >= (&modulus >> 1) {
        value - modulus
    } else {
        value
    };
    Some(BigRational::new(value, den.clone()))
}

#[cfg(test)]
mod tests {
    //! The identities the encoding uses to meet the program's own terms must be identities:
    //! each is checked here for every input with the solver.

    use super::*;
    use z3::{SatResult, Solver};

    /// Whether `a ≠ b` has no solution (under `assume`).
    fn always_equal(a: &Sym, b: &Sym, assume: &[Bool]) -> bool {
        let solver = Solver::new();
        for fact in assume {
            solver.assert(fact);
        }
        solver.assert(compare(CmpOp::Ne, a, b).unwrap());
        solver.check() == SatResult::Unsat
    }

    fn float(num: BV, den: u64) -> Sym {
        Sym::Float {
            num,
            den: BigInt::from(den),
        }
    }

    #[test]
    fn scaling_a_zero_extension_is_the_wide_product() {
        let y = BV::new_const("y", 64);
        let x = y.zero_ext(2);
        // (A factor near 2⁶⁴ makes the solver prove a full multiplier equal to another:
        // minutes; the identity is the same.)
        for k in [2u64, 9, 1000, 1_000_000_000, 1 << 40] {
            let k = BigInt::from(k);
            let w = x.get_size() + bits_for(&k);
            let plain = float(widen(&x, w).bvmul(lit(&k, w)), 1);
            assert!(
                always_equal(&float(scale_by(&x, &k), 1), &plain, &[]),
                "k = {k}"
            );
        }
        // Through an `ite`, with a negative branch.
        let c = Bool::new_const("c");
        let z = BV::new_const("z", 66);
        let x = c.ite(&x, &z);
        let k = BigInt::from(9);
        let plain = float(widen(&x, 70).bvmul(lit(&k, 70)), 1);
        assert!(always_equal(&float(scale_by(&x, &k), 1), &plain, &[]));
    }

    #[test]
    fn the_time_difference_is_exact() {
        let (a, b) = (BV::new_const("a", 64), BV::new_const("b", 64));
        let exact = float(a.zero_ext(2).bvsub(b.zero_ext(2)), 1);
        assert!(always_equal(
            &float(nanoseconds_between(&a, &b), 1),
            &exact,
            &[]
        ));
    }

    #[test]
    fn a_wrong_identity_would_be_caught() {
        // The check above can fail: a product that drops the overflow case is not equal.
        let y = BV::new_const("y", 64);
        let narrow = float(y.bvmul(BV::from_u64(9, 64)).zero_ext(6), 1);
        let plain = float(y.zero_ext(6).bvmul(BV::from_u64(9, 70)), 1);
        assert!(!always_equal(&narrow, &plain, &[]));
    }

    #[test]
    fn the_capped_sum_is_min_of_cap_and_the_sum() {
        let x = float(BV::new_const("x", 64), 10_000_000);
        let t = float(BV::new_const("t", 70), 10_000_000);
        for cap in [9_000_000_000i64, 100_000_000, 0, -5, i64::MAX] {
            let cap = float(number(&BigInt::from(cap)), 10_000_000);
            let sum = arith(ArithOp::Add, x.clone(), t.clone()).unwrap();
            let plain = merge(&compare(CmpOp::Le, &cap, &sum).unwrap(), &cap, &sum).unwrap();
            let split = capped_sum(&cap, &x, &t).unwrap();
            assert!(always_equal(&split, &plain, &[]));
        }
    }
}
