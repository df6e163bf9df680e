//! The translation's laws, proven by Z3: the identities the token buckets need, exactness
//! where nothing is replaced, and never saying more than the bit-vectors.

use super::*;
use z3::ast::BV;
use z3::ast::{Ast, Bool, Dynamic};
use z3::{SatResult, Solver};

/// "Some input makes `claim` false" in the translation: `unsat` proves the claim.
fn proves(claim: &Bool) -> bool {
    let solver = Solver::new();
    for fact in translate(&[claim.not()], Vec::new()) {
        solver.assert(&fact);
    }
    solver.check() == SatResult::Unsat
}

fn bv(name: &str) -> BV {
    BV::new_const(name, 64)
}

#[test]
fn the_division_identity_the_token_buckets_use_holds() {
    // dt ≥ ceil(room / 1000) ⇔ 1000·dt ≥ room, with room < 2^63 so the product is exact
    // where it matters.
    let (dt, room) = (bv("dt"), bv("room"));
    let k = BV::from_u64(1000, 64);
    let ceil = room.bvudiv(&k).bvadd(
        room.bvurem(&k)
            .eq(BV::from_u64(0, 64))
            .ite(&BV::from_u64(0, 64), &BV::from_u64(1, 64)),
    );
    let wide = |x: &BV| x.zero_ext(64);
    let product = wide(&dt).bvmul(wide(&k));
    let claim = dt.bvuge(&ceil).eq(product.bvuge(wide(&room)));
    assert!(proves(&claim));
}

#[test]
fn a_wrong_identity_is_not_proven() {
    let (dt, room) = (bv("dt"), bv("room"));
    let k = BV::from_u64(1000, 64);
    let floor = room.bvudiv(&k);
    let claim = dt.bvuge(&floor).eq(dt.bvmul(&k).bvuge(&room));
    assert!(!proves(&claim));
}

#[test]
fn wrapping_sums_extracts_and_signed_comparisons_mean_what_bit_vectors_mean() {
    let x = bv("x");
    let y = bv("y");
    // x + y − y = x with wrap; the low and high halves make x; sign extension keeps the
    // signed order.
    assert!(proves(&x.bvadd(&y).bvsub(&y).eq(&x)));
    let halves = x.extract(63, 32).concat(x.extract(31, 0));
    assert!(proves(&halves.eq(&x)));
    let (a, b) = (x.extract(31, 0), y.extract(31, 0));
    assert!(proves(
        &a.bvslt(&b).eq(a.sign_ext(32).bvslt(b.sign_ext(32)))
    ));
    assert!(proves(
        &x.bvand(BV::from_u64(0xff00, 64))
            .bvlshr(BV::from_u64(8, 64))
            .eq(x.extract(15, 8).zero_ext(56))
    ));
    // Known bits: a field of x & 0xf0 is below 16, and adding 0xf8 to it wraps.
    let field = x.bvand(BV::from_u64(0xf0, 64)).extract(7, 4).zero_ext(4);
    let sum = field.bvadd(BV::from_u64(0xf8, 8));
    assert!(proves(
        &field
            .eq(BV::from_u64(8, 8))
            .implies(sum.eq(BV::from_u64(0, 8)))
    ));
    // And a false one is not: x + 1 > x fails at the wrap.
    assert!(!proves(&x.bvadd(BV::from_u64(1, 64)).bvugt(&x)));
}

/// A small bit-vector expression over `x`, `y` (8 bits) and `p` (a bit-level input).
#[derive(Debug, Clone)]
enum Expr {
    X,
    Y,
    P,
    Num(u8),
    Bin(u8, Box<Expr>, Box<Expr>),
    Un(u8, Box<Expr>),
    Ite(u8, Box<Expr>, Box<Expr>, Box<Expr>, Box<Expr>),
}

fn expr() -> impl proptest::strategy::Strategy<Value = Expr> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Expr::X),
        Just(Expr::Y),
        Just(Expr::P),
        any::<u8>().prop_map(Expr::Num),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (0u8..17, inner.clone(), inner.clone()).prop_map(|(op, a, b)| Expr::Bin(
                op,
                Box::new(a),
                Box::new(b)
            )),
            (0u8..8, inner.clone()).prop_map(|(op, a)| Expr::Un(op, Box::new(a))),
            (0u8..4, inner.clone(), inner.clone(), inner.clone(), inner).prop_map(
                |(op, a, b, c, d)| Expr::Ite(
                    op,
                    Box::new(a),
                    Box::new(b),
                    Box::new(c),
                    Box::new(d)
                )
            ),
        ]
    })
}

fn compare(op: u8, a: &BV, b: &BV) -> Bool {
    match op % 6 {
        0 => a.eq(b),
        1 => a.bvult(b),
        2 => a.bvule(b),
        3 => a.bvslt(b),
        4 => a.bvsge(b),
        _ => a.bvugt(b),
    }
}

/// Every operation the translation opens, at 8 bits, with a detour through 16.
fn build(e: &Expr) -> BV {
    let wide = |a: &BV| a.zero_ext(8);
    match e {
        Expr::X => BV::new_const("x", 8),
        Expr::Y => BV::new_const("y", 8),
        Expr::P => BV::new_const("p", 8),
        Expr::Num(n) => BV::from_u64(u64::from(*n), 8),
        Expr::Bin(op, a, b) => {
            let (a, b) = (build(a), build(b));
            match op {
                0 => a.bvadd(&b),
                1 => a.bvsub(&b),
                2 => a.bvmul(&b),
                3 => a.bvudiv(&b),
                4 => a.bvurem(&b),
                5 => a.bvshl(&b),
                6 => a.bvlshr(&b),
                7 => a.bvashr(&b),
                8 => a.bvand(&b),
                9 => a.bvor(&b),
                10 => a.bvxor(&b),
                11 => a.concat(&b).extract(11, 4),
                12 => wide(&a).bvmul(wide(&b)).extract(15, 8),
                13 => a
                    .bvshl(BV::from_u64(3, 8))
                    .bvor(b.bvlshr(BV::from_u64(5, 8))),
                14 => a.bvadd(b.bvmul(BV::from_u64(0xfd, 8))),
                // Known bits feeding a sum: whether it can wrap.
                15 => {
                    let halves = a
                        .bvand(BV::from_u64(0xf0, 8))
                        .bvor(b.bvand(BV::from_u64(0x0f, 8)));
                    halves.bvadd(&a)
                }
                _ => a.extract(7, 2).zero_ext(10).bvadd(wide(&b)).extract(8, 1),
            }
        }
        Expr::Un(op, a) => {
            let a = build(a);
            match op {
                0 => a.bvneg(),
                1 => a.bvnot(),
                2 => a.sign_ext(8).extract(12, 5),
                3 => a.bvudiv(BV::from_u64(7, 8)),
                4 => a.bvurem(BV::from_u64(10, 8)),
                5 => a.bvand(BV::from_u64(0x3c, 8)),
                6 => a.bvashr(BV::from_u64(2, 8)),
                _ => a.bvmul(BV::from_u64(200, 8)),
            }
        }
        Expr::Ite(op, a, b, c, d) => compare(*op, &build(a), &build(b)).ite(&build(c), &build(d)),
    }
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(500))]

    /// The law the proofs rest on: whatever holds of some values in bit-vectors has a
    /// model in the translation (so `unsat` there is `unsat` here). And where no term
    /// was replaced by a fresh value, the translation is exact: the opposite has none.
    #[test]
    fn the_translation_says_no_more_than_the_bit_vectors(
        a in expr(),
        b in expr(),
        op in 0u8..6,
        x in proptest::prelude::any::<u8>(),
        y in proptest::prelude::any::<u8>(),
        p in proptest::prelude::any::<u8>(),
    ) {
        let claim = compare(op, &build(&a), &build(&b));
        let values = [("x", x), ("y", y), ("p", p)].map(|(name, v)| {
            BV::new_const(name, 8).eq(BV::from_u64(u64::from(v), 8))
        });
        let substitutions: Vec<(BV, BV)> = [("x", x), ("y", y), ("p", p)]
            .iter()
            .map(|(name, v)| (BV::new_const(*name, 8), BV::from_u64(u64::from(*v), 8)))
            .collect();
        let pairs: Vec<(&BV, &BV)> = substitutions.iter().map(|(a, b)| (a, b)).collect();
        let truth = claim.substitute(&pairs).simplify().as_bool().expect("a closed claim");
        let holds = if truth { claim.clone() } else { claim.not() };
        let satisfiable = |fact: &Bool| {
            let solver = Solver::new();
            let mut translator =
                Translator::new(vec![Dynamic::from_ast(&BV::new_const("p", 8))]);
            for f in values.iter().chain([fact]) {
                solver.assert(translator.boolean(f));
            }
            for f in translator.finish() {
                solver.assert(&f);
            }
            (solver.check(), translator.opaque)
        };
        let (answer, _) = satisfiable(&holds);
        proptest::prop_assert_ne!(answer, SatResult::Unsat);
        let (answer, opaque) = satisfiable(&holds.not());
        if opaque == 0 {
            proptest::prop_assert_eq!(answer, SatResult::Unsat);
        }
    }
}
