//! The query in linear integer arithmetic (CHECKER-NOTES §1): a second way to ask the same
//! question when bit-blasting cannot. Multiplying and dividing by constants, comparing, and
//! the 64-bit wrap are linear over the integers, where a SAT solver must reason about
//! multiplier and divider circuits; a token bucket that refills when `dt ≥ ceil(room / k)`
//! is a divider identity for bit-vectors and a few linear facts for integers.
//!
//! Each bit-vector term of width `w` over state, time and draws becomes the integer in
//! `[0, 2^w)` it denotes: a sum or a product by a constant wraps by as few cases as its
//! bounds allow (none when it cannot leave the range), quotients and remainders by constants
//! are `div` and `mod` by numerals, extracts and concatenations are `div`, `mod` and sums, an
//! `|` or `^` of sides with no bit in common is their sum, signed comparisons read the
//! two's-complement value. Array reads at equal indices are equal (Ackermann). A term of the
//! packet alone stays a bit-vector — the solver bit-blasts it, which is what it does best —
//! and joins the integers by its value (`bv2int`) where arithmetic uses it. A term with no
//! linear meaning (a product of two unknowns, an `|` of overlapping sides) becomes a fresh
//! integer of its range — the same one wherever the same term occurs — with what is cheap
//! to say about it (`a & b ≤ a`).
//!
//! So the integer query says less than the bit-vector one: every model of the original
//! gives one of the translation (each fresh integer takes its term's value). `unsat` here
//! is therefore `unsat` there — a proof; `sat` here may be spurious and proves nothing.
//! `tests.rs` checks that law on generated terms, and that the translation is exact where
//! nothing was replaced.

use std::collections::HashMap;

use num_bigint::BigInt;
use num_traits::One;
use z3::ast::{Ast, Bool, Dynamic, Int};
use z3::{DeclKind, SortKind};

use crate::numeral::value as numeral;
use bits::signed;

mod bits;
#[cfg(test)]
mod tests;

/// A translated term: a Boolean, or the integer a bit-vector denotes with its width.
#[derive(Clone)]
enum Term {
    Bool(Bool),
    Int {
        value: Int,
        width: u32,
        /// The value when it is a known number (a numeral, or an operation on numerals).
        constant: Option<BigInt>,
        /// The bits that may be one (a bound, not the value): `(x << 8) | y` with `y < 256`
        /// has disjoint sides, so it is the sum `x·256 + y`.
        ones: BigInt,
    },
}

/// The integer query that over-approximates `query`: `unsat` of the result implies `unsat`
/// of `query`.
pub fn translate(query: &[Bool], bit_level: Vec<Dynamic>) -> Vec<Bool> {
    let mut translator = Translator::new(bit_level);
    let mut facts: Vec<Bool> = query.iter().map(|fact| translator.boolean(fact)).collect();
    facts.extend(translator.finish());
    facts
}

/// What a term reads, which decides how it is translated.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reads {
    /// Nothing: it is a number, folded by Z3's simplifier.
    Nothing,
    /// Bit-level inputs only: it stays a bit-vector.
    BitLevel,
    /// Anything else: it is translated.
    Other,
}

/// Translates Boolean terms one by one into one integer vocabulary; `finish` gives the facts
/// the fresh integers rest on.
struct Translator {
    /// The inputs only bit-level work reads (the packet and its length): a term of these
    /// alone stays a bit-vector, joined to the integers where arithmetic uses it.
    bit_level: Vec<Dynamic>,
    /// What each term seen reads.
    pure: HashMap<Dynamic, Reads>,
    done: HashMap<Dynamic, Term>,
    /// Array reads at known indices, by array and index: the same byte however its index
    /// was written (`54 + 4` and `58`).
    reads: HashMap<(Dynamic, BigInt), Int>,
    /// Every read of each array, index and value: reads at equal indices are equal
    /// (Ackermann's reduction), which links a header field read at `14 + 4·ihl + 2` by the
    /// program with the same field read at `16 + (ihl << 2)` by the policy. In the order
    /// first met, so the same query is always the same facts in the same order (the
    /// solver's path, and so its verdict within the budget, depends on it).
    indexed: Vec<(Dynamic, Vec<(Int, Int)>)>,
    /// What every fresh integer is known to satisfy (its range, cheap bounds).
    facts: Vec<Bool>,
    /// How many terms were replaced by fresh values (the translation is exact without).
    opaque: usize,
}

fn pow2(bits: u32) -> BigInt {
    BigInt::one() << bits
}

fn int(value: &BigInt) -> Int {
    value
        .to_string()
        .parse::<Int>()
        .expect("a decimal numeral is an integer")
}

/// The `index`-th integer parameter of the term's declaration (an extract's bounds, an
/// extension's width).
#[allow(unsafe_code)]
fn parameter(ast: &Dynamic, index: u32) -> u32 {
    let ctx = ast.get_ctx().get_z3_context();
    // SAFETY: callers ask only applications whose declarations carry integer parameters
    // (extract, zero_extend, sign_extend); the pointers are live for this call.
    unsafe {
        let app = z3_sys::Z3_to_app(ctx, ast.get_z3_ast()).expect("an application");
        let decl = z3_sys::Z3_get_app_decl(ctx, app).expect("a declaration");
        z3_sys::Z3_get_decl_int_parameter(ctx, decl, index) as u32
    }
}

/// Whether the declaration is one this module reads through its arguments; any other is
/// replaced whole by a fresh value.
fn structural(kind: DeclKind) -> bool {
    use DeclKind::*;
    matches!(
        kind,
        True | False
            | Eq
            | Distinct
            | Ite
            | And
            | Or
            | Iff
            | Xor
            | Not
            | Implies
            | Badd
            | Bsub
            | Bneg
            | Bmul
            | Budiv
            | BudivI
            | Burem
            | BuremI
            | Bshl
            | Blshr
            | Bashr
            | Band
            | Bor
            | Bxor
            | Bnot
            | Concat
            | Extract
            | ZeroExt
            | SignExt
            | Uleq
            | Ugeq
            | Ult
            | Ugt
            | Sleq
            | Sgeq
            | Slt
            | Sgt
    )
}

fn width_of(ast: &Dynamic) -> Option<u32> {
    (ast.sort_kind() == SortKind::Bv).then(|| ast.as_bv().map(|bv| bv.get_size()))?
}

impl Translator {
    fn new(bit_level: Vec<Dynamic>) -> Translator {
        Translator {
            bit_level,
            pure: HashMap::new(),
            done: HashMap::new(),
            reads: HashMap::new(),
            indexed: Vec::new(),
            facts: Vec::new(),
            opaque: 0,
        }
    }

    /// The integer meaning of a Boolean term.
    fn boolean(&mut self, fact: &Bool) -> Bool {
        match self.lower(&Dynamic::from_ast(fact)) {
            Term::Bool(b) => b,
            Term::Int { .. } => unreachable!("a Boolean term translates to a Boolean"),
        }
    }

    /// What the fresh integers made so far satisfy: their ranges and the links between
    /// array reads. Asserted beside the translated query.
    fn finish(&mut self) -> Vec<Bool> {
        let mut facts = std::mem::take(&mut self.facts);
        facts.extend(self.congruence());
        facts
    }

    /// Marks every subterm of `root` that reads only bit-level inputs.
    fn mark_pure(&mut self, root: &Dynamic) {
        let mut stack = vec![(root.clone(), false)];
        while let Some((node, ready)) = stack.pop() {
            if self.pure.contains_key(&node) {
                continue;
            }
            let children = if node.is_app() {
                node.children()
            } else {
                Vec::new()
            };
            if !ready && !children.is_empty() {
                stack.push((node.clone(), true));
                stack.extend(children.into_iter().map(|c| (c, false)));
                continue;
            }
            let pure = match node.kind() {
                z3::AstKind::Numeral => Reads::Nothing,
                z3::AstKind::App if children.is_empty() => {
                    let bit_level = self.bit_level.contains(&node);
                    let truth = node
                        .safe_decl()
                        .is_ok_and(|d| matches!(d.kind(), DeclKind::True | DeclKind::False));
                    match (truth, bit_level) {
                        (true, _) => Reads::Nothing,
                        (false, true) => Reads::BitLevel,
                        (false, false) => Reads::Other,
                    }
                }
                z3::AstKind::App => {
                    children
                        .iter()
                        .map(|c| self.pure[c])
                        .fold(Reads::Nothing, |a, b| match (a, b) {
                            (Reads::Other, _) | (_, Reads::Other) => Reads::Other,
                            (Reads::BitLevel, _) | (_, Reads::BitLevel) => Reads::BitLevel,
                            _ => Reads::Nothing,
                        })
                }
                _ => Reads::Other,
            };
            self.pure.insert(node, pure);
        }
    }

    /// A term of numbers alone, as the number it is.
    fn folded(&mut self, node: &Dynamic) -> Term {
        let simple = node.simplify();
        match (simple.as_bool().and_then(|b| b.as_bool()), numeral(&simple)) {
            (Some(truth), _) => Term::Bool(Bool::from_bool(truth)),
            (_, Some(n)) => Term::Int {
                value: int(&n),
                width: width_of(node).unwrap_or(1),
                constant: Some(n.clone()),
                ones: n,
            },
            _ => self.leaf(node),
        }
    }

    /// A term of bit-level inputs alone: a Boolean stays as it is (the solver bit-blasts
    /// it), a bit-vector is joined to the integers by its value.
    fn bit_level_term(&mut self, node: &Dynamic) -> Term {
        match (node.as_bool(), node.as_bv()) {
            (Some(b), _) => Term::Bool(b),
            (_, Some(bv)) => {
                let width = bv.get_size();
                Term::Int {
                    value: Int::from_bv(&bv, false),
                    width,
                    constant: None,
                    ones: pow2(width) - 1u32,
                }
            }
            _ => self.leaf(node),
        }
    }

    /// The translation of `root`, every subterm translated once (an explicit stack: merged
    /// paths make deep terms).
    fn lower(&mut self, root: &Dynamic) -> Term {
        self.mark_pure(root);
        let mut stack = vec![(root.clone(), false)];
        while let Some((node, ready)) = stack.pop() {
            if self.done.contains_key(&node) {
                continue;
            }
            let term = match self.pure[&node] {
                Reads::BitLevel => Some(self.bit_level_term(&node)),
                Reads::Nothing if node.kind() != z3::AstKind::Numeral => Some(self.folded(&node)),
                _ => None,
            };
            if let Some(term) = term {
                self.done.insert(node, term);
                continue;
            }
            let kind = node.safe_decl().ok().map(|d| d.kind());
            let opens = node.kind() != z3::AstKind::Numeral
                && kind.is_some_and(|k| structural(k) || k == DeclKind::Select);
            if opens && !ready {
                stack.push((node.clone(), true));
                // An array is not translated, only the index it is read at.
                let skip = usize::from(kind == Some(DeclKind::Select));
                for child in node.children().into_iter().skip(skip) {
                    if !self.done.contains_key(&child) {
                        stack.push((child, false));
                    }
                }
                continue;
            }
            let term = match kind {
                Some(DeclKind::Select) if opens => self.select(&node),
                Some(kind) if opens => self.apply(&node, kind),
                _ => self.leaf(&node),
            };
            self.done.insert(node, term);
        }
        self.done[root].clone()
    }

    /// Reads of one array at equal indices are equal. Two reads at different numerals need
    /// nothing, so only pairs with an index that is not a numeral are stated.
    fn congruence(&self) -> Vec<Bool> {
        let mut facts = Vec::new();
        for (_, reads) in &self.indexed {
            for (i, (at, value)) in reads.iter().enumerate() {
                for (other_at, other) in &reads[i + 1..] {
                    let numeral = |x: &Int| x.kind() == z3::AstKind::Numeral;
                    let both_known = numeral(at) && numeral(other_at);
                    if !both_known {
                        facts.push(at.eq(other_at).implies(value.eq(other)));
                    }
                }
            }
        }
        facts
    }

    /// An array read: one integer per array and known index, else a fresh one.
    fn select(&mut self, node: &Dynamic) -> Term {
        let array = node.nth_child(0).expect("an array");
        let (
            Some(width),
            Term::Int {
                value: at,
                constant: index,
                ..
            },
        ) = (width_of(node), self.child(node, 1))
        else {
            return self.leaf(node);
        };
        let known = index
            .as_ref()
            .and_then(|i| self.reads.get(&(array.clone(), i.clone())));
        let value = match known {
            Some(value) => value.clone(),
            None => {
                let value = self.fresh_int(width);
                if let Some(index) = index {
                    self.reads.insert((array.clone(), index), value.clone());
                }
                match self.indexed.iter_mut().find(|(a, _)| *a == array) {
                    Some((_, reads)) => reads.push((at, value.clone())),
                    None => self.indexed.push((array, vec![(at, value.clone())])),
                }
                value
            }
        };
        Term::Int {
            value,
            width,
            constant: None,
            ones: pow2(width) - 1u32,
        }
    }

    /// The bits of an argument that may be one.
    fn ones_child(&self, node: &Dynamic, index: usize) -> BigInt {
        match self.child(node, index) {
            Term::Int { ones, .. } => ones,
            Term::Bool(_) => BigInt::one(),
        }
    }

    fn child(&self, node: &Dynamic, index: usize) -> Term {
        let child = node.nth_child(index).expect("an argument");
        self.done[&child].clone()
    }

    fn bool_child(&mut self, node: &Dynamic, index: usize) -> Bool {
        match self.child(node, index) {
            Term::Bool(b) => b,
            Term::Int { .. } => self.fresh_bool(),
        }
    }

    fn int_child(&mut self, node: &Dynamic, index: usize) -> (Int, u32) {
        match self.child(node, index) {
            Term::Int { value, width, .. } => (value, width),
            Term::Bool(_) => {
                let w = width_of(&node.nth_child(index).expect("an argument")).unwrap_or(1);
                (self.fresh_int(w), w)
            }
        }
    }

    fn ints(&mut self, node: &Dynamic) -> Vec<(Int, u32)> {
        (0..node.num_children())
            .map(|i| self.int_child(node, i))
            .collect()
    }

    fn fresh_bool(&mut self) -> Bool {
        self.opaque += 1;
        Bool::fresh_const("opaque")
    }

    /// A fresh integer of a `width`-bit range standing for a term with no linear meaning.
    fn fresh_int(&mut self, width: u32) -> Int {
        self.opaque += 1;
        self.ranged("opaque", width)
    }

    /// A fresh integer in `[0, 2^width)`.
    fn ranged(&mut self, prefix: &str, width: u32) -> Int {
        let value = Int::fresh_const(prefix);
        self.facts.push(value.ge(Int::from_u64(0)));
        self.facts.push(value.lt(int(&pow2(width))));
        value
    }

    /// A term this module does not open: a numeral, a variable, or anything without a linear
    /// meaning.
    fn leaf(&mut self, node: &Dynamic) -> Term {
        match node.sort_kind() {
            SortKind::Bool => {
                let is_variable = node.is_const()
                    && node
                        .safe_decl()
                        .is_ok_and(|d| d.kind() == DeclKind::Uninterpreted);
                Term::Bool(match node.as_bool() {
                    Some(b) if is_variable => b,
                    _ => self.fresh_bool(),
                })
            }
            SortKind::Bv => {
                let width = width_of(node).unwrap_or(1);
                let constant = numeral(node);
                let value = match &constant {
                    Some(n) => int(n),
                    None if node.is_const() => {
                        // A variable: one integer per term (the same term is translated
                        // once), fresh so that no two variables can share a name.
                        self.ranged("var", width)
                    }
                    None => self.fresh_int(width),
                };
                let ones = constant.clone().unwrap_or_else(|| pow2(width) - 1u32);
                Term::Int {
                    value,
                    width,
                    constant,
                    ones,
                }
            }
            // Arrays and anything else appear only under a term that is itself a leaf or an
            // equality; such an equality becomes a fresh Boolean.
            _ => Term::Bool(self.fresh_bool()),
        }
    }

    fn apply(&mut self, node: &Dynamic, kind: DeclKind) -> Term {
        use DeclKind::*;
        let n = node.num_children();
        let bools = |t: &mut Self| -> Vec<Bool> { (0..n).map(|i| t.bool_child(node, i)).collect() };
        match kind {
            True => Term::Bool(Bool::from_bool(true)),
            False => Term::Bool(Bool::from_bool(false)),
            And => Term::Bool(Bool::and(&bools(self))),
            Or => Term::Bool(Bool::or(&bools(self))),
            Not => Term::Bool(self.bool_child(node, 0).not()),
            Implies => {
                let b = bools(self);
                Term::Bool(b[0].implies(&b[1]))
            }
            Xor => {
                let b = bools(self);
                Term::Bool(b[0].xor(&b[1]))
            }
            Iff => {
                let b = bools(self);
                Term::Bool(b[0].eq(&b[1]))
            }
            Eq => Term::Bool(self.equality(node, false)),
            Distinct => Term::Bool(self.equality(node, true)),
            Ite => {
                let c = self.bool_child(node, 0);
                match (self.child(node, 1), self.child(node, 2)) {
                    (Term::Bool(a), Term::Bool(b)) if node.sort_kind() == SortKind::Bool => {
                        Term::Bool(c.ite(&a, &b))
                    }
                    (
                        Term::Int {
                            value: a,
                            width,
                            ones: x,
                            ..
                        },
                        Term::Int {
                            value: b, ones: y, ..
                        },
                    ) => Term::Int {
                        value: c.ite(&a, &b),
                        width,
                        constant: None,
                        ones: x | y,
                    },
                    _ => self.leaf(node),
                }
            }
            Uleq | Ugeq | Ult | Ugt | Sleq | Sgeq | Slt | Sgt => {
                let (mut a, w) = self.int_child(node, 0);
                let (mut b, _) = self.int_child(node, 1);
                if matches!(kind, Sleq | Sgeq | Slt | Sgt) {
                    a = signed(&a, w);
                    b = signed(&b, w);
                }
                Term::Bool(match kind {
                    Uleq | Sleq => a.le(&b),
                    Ugeq | Sgeq => a.ge(&b),
                    Ult | Slt => a.lt(&b),
                    _ => a.gt(&b),
                })
            }
            _ => match self.arithmetic(node, kind) {
                Some((value, bound)) => {
                    // Operations on numerals are numerals: a divisor written
                    // `zero_extend(1000)` is the constant 1000.
                    let known = (0..n).all(|i| {
                        matches!(
                            self.child(node, i),
                            Term::Int {
                                constant: Some(_),
                                ..
                            }
                        )
                    });
                    let constant: Option<BigInt> = if known {
                        value.simplify().to_string().parse().ok()
                    } else {
                        None
                    };
                    let width = width_of(node).unwrap_or(1);
                    let ones = match (&constant, bound) {
                        (Some(c), _) => c.clone(),
                        (None, Some(bound)) => bound,
                        (None, None) => self.ones(node, kind, width),
                    };
                    Term::Int {
                        value,
                        width,
                        constant,
                        ones,
                    }
                }
                None => self.leaf(node),
            },
        }
    }

    /// Every pair equal (`=`), or every pair different (`distinct`). Arrays are not
    /// translated: an equality of arrays is a fresh Boolean of its own (a Boolean per array
    /// could not hold three different arrays).
    fn equality(&mut self, node: &Dynamic, distinct: bool) -> Bool {
        let n = node.num_children();
        let sort = node.nth_child(0).map(|c| c.sort_kind());
        if !matches!(sort, Some(SortKind::Bool | SortKind::Bv)) {
            return self.fresh_bool();
        }
        let terms: Vec<Term> = (0..n).map(|i| self.child(node, i)).collect();
        let mut pairs = Vec::new();
        for i in 0..n {
            for j in i + 1..n {
                let equal = match (&terms[i], &terms[j]) {
                    (Term::Bool(a), Term::Bool(b)) => a.eq(b),
                    (Term::Int { value: a, .. }, Term::Int { value: b, .. }) => a.eq(b),
                    _ => self.fresh_bool(),
                };
                pairs.push(if distinct { equal.not() } else { equal });
            }
        }
        Bool::and(&pairs)
    }
}
