//! Exact sums as PostgreSQL keeps them (`numeric`), and their averages as `f64`.
//!
//! The rollups sum values as `numeric`, exactly: `float8` would overflow past 1.8e308
//! (1e308 twice in a bucket). Dividing a sum by its count in PostgreSQL and sending the
//! quotient as text cost about as much as reading the rollup's rows; here the sum comes
//! in PostgreSQL's binary form (in a `numeric[]`: `arrays::Sums`) and is divided in Rust.

use sqlx::error::BoxDynError;

/// Base of `numeric`'s digits.
const BASE: u128 = 10_000;
/// Digits of the base (4 decimal digits each) kept from the first non-zero one of a
/// quotient: 24 decimal digits, more than the 17 that tell any two `f64` apart.
const QUOTIENT_DIGITS: usize = 6;

/// A finite `numeric`: `digits` in base 10,000, the first of weight `weight` (its
/// value is `digits[0] * 10000^weight + digits[1] * 10000^(weight - 1) + ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExactSum {
    negative: bool,
    weight: i32,
    digits: Vec<u16>,
}

impl ExactSum {
    /// The sum divided by `count`, to the nearest `f64` of its first 24 significant
    /// digits (PostgreSQL's own division keeps 16 to 20); 0 below the smallest
    /// subnormal. `count` is positive: a rollup row counts at least one value.
    pub fn average(&self, count: i64) -> Result<f64, BoxDynError> {
        let divisor = u64::try_from(count)
            .ok()
            .filter(|divisor| *divisor > 0)
            .ok_or("an average of no values")?;
        // The quotient's digits as decimal text, then its exponent: `{digits}e{exponent}`,
        // which Rust's parser rounds correctly. No allocation: this runs for every bucket.
        let mut text = [0u8; 4 * QUOTIENT_DIGITS + 16];
        let mut length = 0;
        // Long division: the quotient's digit at position `index` has the weight
        // `self.weight - index`, as the dividend's. The remainder stays below the
        // divisor, so `remainder * BASE + digit` fits in 128 bits.
        let (mut remainder, mut kept, mut index) = (0u128, 0, 0usize);
        let divisor = u128::from(divisor);
        while kept < QUOTIENT_DIGITS && (index < self.digits.len() || remainder != 0) {
            let digit = self.digits.get(index).copied().unwrap_or(0);
            let dividend = remainder * BASE + u128::from(digit);
            let (quotient_digit, rest) = if let Ok(dividend) = u64::try_from(dividend) {
                // Most sums and counts are small: 64-bit division is several times faster.
                let divisor = divisor as u64;
                ((dividend / divisor) as u16, u128::from(dividend % divisor))
            } else {
                ((dividend / divisor) as u16, dividend % divisor)
            };
            remainder = rest;
            if kept > 0 || quotient_digit != 0 {
                // Four decimal digits; leading zeros of the first are harmless.
                for (offset, power) in [1000, 100, 10, 1].into_iter().enumerate() {
                    text[length + offset] = b'0' + (quotient_digit / power % 10) as u8;
                }
                length += 4;
                kept += 1;
            }
            index += 1;
        }
        if kept == 0 {
            return Ok(0.0);
        }
        // The last digit written has the weight `self.weight - (index - 1)`.
        let exponent = 4 * (i64::from(self.weight) - (index as i64 - 1));
        text[length] = b'e';
        length += 1;
        for byte in itoa::Buffer::new().format(exponent).bytes() {
            text[length] = byte;
            length += 1;
        }
        let magnitude: f64 = std::str::from_utf8(&text[..length])?.parse()?;
        Ok(if self.negative { -magnitude } else { magnitude })
    }
}

impl ExactSum {
    /// A `numeric` in PostgreSQL's binary form (`numeric_send`): the count of digits,
    /// weight, sign and display scale as 16-bit integers, then the digits.
    pub fn from_binary(bytes: &[u8]) -> Result<Self, BoxDynError> {
        let word = |index: usize| -> Result<u16, BoxDynError> {
            let pair = bytes
                .get(2 * index..2 * index + 2)
                .ok_or("a numeric shorter than its header says")?;
            Ok(u16::from_be_bytes([pair[0], pair[1]]))
        };
        let length = usize::from(word(0)?);
        let weight = i32::from(word(1)? as i16);
        let negative = match word(2)? {
            0x0000 => false,
            0x4000 => true,
            _ => return Err("a sum that is not a finite number".into()),
        };
        let digits = (4..4 + length)
            .map(|index| {
                word(index).and_then(|digit| {
                    if u128::from(digit) < BASE {
                        Ok(digit)
                    } else {
                        Err("a numeric digit past 9999".into())
                    }
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            negative,
            weight,
            digits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `numeric` of a decimal text, as PostgreSQL would send it.
    fn exact(text: &str) -> ExactSum {
        let (negative, text) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (integer, fraction) = text.split_once('.').unwrap_or((text, ""));
        // Pad both parts to whole base-10,000 digits.
        let integer = format!("{integer:0>width$}", width = integer.len().div_ceil(4) * 4);
        let fraction = format!(
            "{fraction:0<width$}",
            width = fraction.len().div_ceil(4) * 4
        );
        let all = format!("{integer}{fraction}");
        let digits: Vec<u16> = all
            .as_bytes()
            .chunks(4)
            .map(|chunk| std::str::from_utf8(chunk).unwrap().parse().unwrap())
            .collect();
        ExactSum {
            negative,
            weight: (integer.len() / 4) as i32 - 1,
            digits,
        }
    }

    #[test]
    fn averages_of_exact_sums() {
        for (sum, count, expected) in [
            ("0", 1, 0.0),
            ("45", 2, 22.5),
            ("0.75", 2, 0.375),
            ("-3", 4, -0.75),
            ("10", 3, 10.0 / 3.0),
            ("20.5", 1, 20.5),
            ("123456789.123456789", 1, 123_456_789.123_456_79),
            ("0.0001", 10_000, 1e-8),
            ("1", i64::MAX, 1.0 / 9_223_372_036_854_775_807.0),
        ] {
            assert_eq!(
                exact(sum).average(count).unwrap(),
                expected,
                "{sum} / {count}"
            );
        }
    }

    /// The sum multiplied by a small factor, digit by digit.
    fn times(sum: &ExactSum, factor: u32) -> ExactSum {
        let mut digits = Vec::with_capacity(sum.digits.len() + 1);
        let mut carry = 0;
        for digit in sum.digits.iter().rev() {
            let product = u32::from(*digit) * factor + carry;
            digits.push((product % 10_000) as u16);
            carry = product / 10_000;
        }
        let mut weight = sum.weight;
        if carry > 0 {
            digits.push(carry as u16);
            weight += 1;
        }
        digits.reverse();
        ExactSum {
            negative: sum.negative,
            weight,
            digits,
        }
    }

    #[test]
    fn averages_past_the_range_of_f64_sums() {
        // Rust writes the exact decimal expansion of an f64.
        let max = exact(&format!("{:.0}", f64::MAX));
        assert_eq!(max.average(1).unwrap(), f64::MAX);
        // f64::MAX three times: its sum overflows f64, its average does not.
        let three_max = times(&max, 3);
        assert_eq!(three_max.average(3).unwrap(), f64::MAX);
        let negative = ExactSum {
            negative: true,
            ..three_max
        };
        assert_eq!(negative.average(3).unwrap(), -f64::MAX);
        // The smallest subnormal, and a third of it: below it, 0.
        let smallest = exact(&format!("{:.1074}", 5e-324));
        assert_eq!(smallest.average(1).unwrap(), 5e-324);
        assert_eq!(smallest.average(3).unwrap(), 0.0);
    }

    #[test]
    fn no_values_have_no_average() {
        assert!(exact("1").average(0).is_err());
        assert!(exact("1").average(-1).is_err());
    }
}
