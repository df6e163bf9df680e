//! The types of LANGUAGE.md §2.

use std::fmt;

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum Type {
    Int,
    Uint,
    Float,
    Bool,
    Instant,
    Str,
    /// The handler's RPC parameter.
    Rpc,
    Pair(Box<Type>, Box<Type>),
    Option(Box<Type>),
    Map(Box<Type>, Box<Type>),
    Vec(Box<Type>),
    /// The value of a statement-like call (`set(..)`).
    Unit,
    #[default]
    /// A value whose type only a wire schema could tell (an RPC field, a header). It agrees
    /// with every type, so that `lint` accepts what AppNet accepts; such values are opaque and
    /// never reach a target.
    Unknown,
}

impl Type {
    pub fn is_numeric(&self) -> bool {
        matches!(self, Type::Int | Type::Uint | Type::Float)
    }

    pub fn is_integer(&self) -> bool {
        matches!(self, Type::Int | Type::Uint)
    }

    /// Two types agree when they are equal or one of them is unknown (recursively).
    pub fn agrees_with(&self, other: &Type) -> bool {
        match (self, other) {
            (Type::Unknown, _) | (_, Type::Unknown) => true,
            (Type::Pair(a1, b1), Type::Pair(a2, b2)) | (Type::Map(a1, b1), Type::Map(a2, b2)) => {
                a1.agrees_with(a2) && b1.agrees_with(b2)
            }
            (Type::Option(a), Type::Option(b)) | (Type::Vec(a), Type::Vec(b)) => a.agrees_with(b),
            (a, b) => a == b,
        }
    }

    /// The more precise of two agreeing types.
    pub fn meet(&self, other: &Type) -> Type {
        match (self, other) {
            (Type::Unknown, t) | (t, Type::Unknown) => t.clone(),
            (t, _) => t.clone(),
        }
    }

    /// Whether a value of this type may live in a map key, a map value or a vector.
    pub fn is_storable(&self) -> bool {
        match self {
            Type::Int | Type::Uint | Type::Float | Type::Bool | Type::Instant | Type::Str => true,
            Type::Pair(a, b) => a.is_storable() && b.is_storable(),
            Type::Vec(elem) => elem.is_storable(),
            Type::Unknown => true,
            _ => false,
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Int => write!(f, "int"),
            Type::Uint => write!(f, "uint"),
            Type::Float => write!(f, "float"),
            Type::Bool => write!(f, "bool"),
            Type::Instant => write!(f, "Instant"),
            Type::Str => write!(f, "string"),
            Type::Rpc => write!(f, "rpc"),
            Type::Pair(a, b) => write!(f, "<{a}, {b}>"),
            Type::Option(inner) => write!(f, "Option<{inner}>"),
            Type::Map(k, v) => write!(f, "Map<{k}, {v}>"),
            Type::Vec(elem) => write!(f, "Vec<{elem}>"),
            Type::Unit => write!(f, "()"),
            Type::Unknown => write!(f, "?"),
        }
    }
}
