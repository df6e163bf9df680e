//! Exact values of numeric literals.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Zero};

/// Largest decimal exponent accepted in a float literal. `1e999999999` would otherwise ask for
/// a billion-digit integer; no policy needs more than f64's range (about 10^±308).
pub const MAX_EXPONENT: i64 = 400;

/// The exact rational value of a float literal (`1.5`, `.5`, `1.`, `2.5E+2`, `1e-3`).
/// Underscores must already be removed.
pub fn parse_float(text: &str) -> Result<BigRational, String> {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], &text[at + 1..]),
        None => (text, "0"),
    };
    let exponent: i64 = exponent
        .parse()
        .ok()
        .filter(|e: &i64| e.abs() <= MAX_EXPONENT)
        .ok_or_else(|| {
            format!("the exponent must be between -{MAX_EXPONENT} and {MAX_EXPONENT}")
        })?;
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{whole}{fraction}");
    let digits = if digits.is_empty() {
        "0".to_string()
    } else {
        digits
    };
    let numer: BigInt = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    let scale = exponent - fraction.len() as i64;
    let ten = BigInt::from(10);
    let value = if scale >= 0 {
        BigRational::from_integer(numer * num_traits::pow(ten, scale as usize))
    } else {
        BigRational::new(numer, num_traits::pow(ten, (-scale) as usize))
    };
    Ok(value)
}

/// The exact value of the largest finite `f64`, the meaning of `inf_f`.
pub fn largest_float() -> BigRational {
    let mantissa = BigInt::from((1u64 << 53) - 1);
    BigRational::from_integer(mantissa * num_traits::pow(BigInt::from(2), 1023 - 52))
}

/// Renders a rational as a decimal if it has a finite one, else as `p/q`.
pub fn to_decimal_string(value: &BigRational) -> String {
    if value.denom().is_one() {
        return format!("{}.0", value.numer());
    }
    // A finite decimal exists when the denominator has no prime factors but 2 and 5.
    let mut denom = value.denom().clone();
    let (two, five) = (BigInt::from(2), BigInt::from(5));
    let mut places = 0usize;
    let (mut twos, mut fives) = (0usize, 0usize);
    while (&denom % &two).is_zero() {
        denom /= &two;
        twos += 1;
    }
    while (&denom % &five).is_zero() {
        denom /= &five;
        fives += 1;
    }
    if !denom.is_one() {
        return format!("{}/{}", value.numer(), value.denom());
    }
    places += twos.max(fives);
    let scaled = value * BigRational::from_integer(num_traits::pow(BigInt::from(10), places));
    let scaled = scaled.to_integer();
    let negative = scaled < BigInt::zero();
    let digits = if negative {
        (-scaled).to_string()
    } else {
        scaled.to_string()
    };
    let digits = format!("{digits:0>width$}", width = places + 1);
    let (whole, fraction) = digits.split_at(digits.len() - places);
    format!("{}{whole}.{fraction}", if negative { "-" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ratio(n: i64, d: i64) -> BigRational {
        BigRational::new(BigInt::from(n), BigInt::from(d))
    }

    #[test]
    fn literals_are_exact() {
        assert_eq!(parse_float("0.95").unwrap(), ratio(19, 20));
        assert_eq!(parse_float(".5").unwrap(), ratio(1, 2));
        assert_eq!(parse_float("1.").unwrap(), ratio(1, 1));
        assert_eq!(parse_float("1e-3").unwrap(), ratio(1, 1000));
        assert_eq!(parse_float("2.5E+2").unwrap(), ratio(250, 1));
        assert_eq!(parse_float("0.1").unwrap(), ratio(1, 10));
    }

    #[test]
    fn huge_exponents_are_refused_not_computed() {
        assert!(parse_float("1e999999999").is_err());
    }

    #[test]
    fn decimal_strings() {
        assert_eq!(to_decimal_string(&ratio(19, 20)), "0.95");
        assert_eq!(to_decimal_string(&ratio(-1, 8)), "-0.125");
        assert_eq!(to_decimal_string(&ratio(1, 3)), "1/3");
        assert_eq!(to_decimal_string(&ratio(1000, 1)), "1000.0");
    }

    #[test]
    fn largest_float_matches_f64() {
        assert_eq!(
            largest_float().to_integer().to_string(),
            format!("{:.0}", f64::MAX)
        );
    }
}
