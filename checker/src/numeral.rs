//! Reading the value of a Z3 numeral, the one place that does.

use std::ffi::CStr;

use num_bigint::BigInt;
use z3::ast::{Ast, Dynamic};

/// The value of a numeral (bit-vector or integer), read through Z3's decimal string.
#[allow(unsafe_code)]
pub(crate) fn value(ast: &Dynamic) -> Option<BigInt> {
    if ast.kind() != z3::AstKind::Numeral {
        return None;
    }
    let ctx = ast.get_ctx().get_z3_context();
    // SAFETY: `ast` is a live numeral of this context; Z3 owns the returned string until
    // the next call on the context, and it is copied at once.
    let text = unsafe {
        let raw = z3_sys::Z3_get_numeral_string(ctx, ast.get_z3_ast());
        if raw.is_null() {
            return None;
        }
        CStr::from_ptr(raw).to_string_lossy().into_owned()
    };
    text.parse().ok()
}
