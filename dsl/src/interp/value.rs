//! Runtime values of the reference interpreter.

use std::collections::BTreeMap;
use std::fmt;

use num_bigint::BigInt;
use num_rational::BigRational;

use crate::decimal;
use crate::ir::{Const, Type};

/// A value. Floats are exact rationals; an `Instant` is nanoseconds of the monotonic clock.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    Int(i64),
    Uint(u64),
    Float(BigRational),
    Bool(bool),
    Instant(u64),
    Str(String),
    Pair(Box<Value>, Box<Value>),
    Option(Option<Box<Value>>),
    Map(BTreeMap<Value, Value>),
    /// An append-only vector: only its length is state; its elements leave as records.
    Vec(u64),
}

impl Value {
    /// The value state starts with (LANGUAGE.md §3.1) and unassigned locals read.
    pub fn zero(ty: &Type) -> Value {
        match ty {
            Type::Int => Value::Int(0),
            Type::Uint => Value::Uint(0),
            Type::Float => Value::Float(BigRational::from_integer(BigInt::from(0))),
            Type::Bool => Value::Bool(false),
            Type::Instant => Value::Instant(0),
            Type::Str => Value::Str(String::new()),
            Type::Pair(a, b) => Value::Pair(Box::new(Value::zero(a)), Box::new(Value::zero(b))),
            Type::Option(_) => Value::Option(None),
            Type::Map(..) => Value::Map(BTreeMap::new()),
            Type::Vec(_) => Value::Vec(0),
            Type::Rpc | Type::Unit | Type::Unknown => Value::Bool(false),
        }
    }

    pub fn from_const(value: &Const) -> Value {
        match value {
            Const::Int(v) => Value::Int(*v),
            Const::Uint(v) => Value::Uint(*v),
            Const::Float(v) => Value::Float(v.clone()),
            Const::Bool(v) => Value::Bool(*v),
            Const::Str(v) => Value::Str(v.clone()),
        }
    }

    /// Parses a scalar value of type `ty` as written on a command line: `42`, `0.95`, `1/3`,
    /// `true`, an Instant in nanoseconds, or text for a string.
    pub fn parse(ty: &Type, text: &str) -> Result<Value, String> {
        let bad = || format!("`{text}` is not a valid {ty}");
        match ty {
            Type::Int => text.parse().map(Value::Int).map_err(|_| bad()),
            Type::Uint => text.parse().map(Value::Uint).map_err(|_| bad()),
            Type::Instant => text.parse().map(Value::Instant).map_err(|_| bad()),
            Type::Bool => text.parse().map(Value::Bool).map_err(|_| bad()),
            Type::Str => Ok(Value::Str(text.to_string())),
            Type::Float => parse_rational(text).map(Value::Float).ok_or_else(bad),
            Type::Vec(_) => text.parse().map(Value::Vec).map_err(|_| bad()),
            _ => Err(format!(
                "values of type {ty} cannot be given on the command line"
            )),
        }
    }

    pub fn as_bool(&self) -> bool {
        matches!(self, Value::Bool(true))
    }
}

/// `-1.5`, `2e3`, `19/20`.
fn parse_rational(text: &str) -> Option<BigRational> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    // `parse_float` trusts the lexer's shape; a command line can give anything.
    if !body.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        || !body.contains(|c: char| c.is_ascii_digit())
    {
        return None;
    }
    let value = match body.split_once('/') {
        Some((n, d)) => {
            let (n, d): (BigInt, BigInt) = (n.parse().ok()?, d.parse().ok()?);
            if d == BigInt::from(0) {
                return None;
            }
            BigRational::new(n, d)
        }
        // Integers are float literals too (`parse_float("3")` is 3).
        None => decimal::parse_float(body).ok()?,
    };
    Some(if negative { -value } else { value })
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Uint(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{}", decimal::to_decimal_string(v)),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Instant(v) => write!(f, "{v}ns"),
            Value::Str(v) => write!(f, "'{v}'"),
            Value::Pair(a, b) => write!(f, "({a}, {b})"),
            Value::Option(Some(v)) => write!(f, "Some({v})"),
            Value::Option(None) => write!(f, "None"),
            Value::Map(entries) => {
                write!(f, "{{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                write!(f, "}}")
            }
            Value::Vec(len) => write!(f, "vec(len {len})"),
        }
    }
}
