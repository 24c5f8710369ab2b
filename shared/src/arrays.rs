//! PostgreSQL arrays in their binary form, decoded in one pass over their bytes.
//!
//! The network overview and the measurement aggregates read their answers as a few
//! rows of parallel arrays (hundreds of thousands of elements for an overview of 1,000
//! sensors) rather than a row a bucket: PostgreSQL sends a row and sqlx decodes it at a
//! cost per row, and sqlx's own array decoding goes through its generic machinery for
//! each element (and chrono for timestamps), which cost a quarter of the overview's
//! time.

use chrono::{DateTime, Utc};
use sqlx::error::BoxDynError;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgHasArrayType, PgTypeInfo, PgValueFormat, PgValueRef};
use sqlx::{Decode, Postgres, Type};

use crate::numeric::ExactSum;

/// A `timestamptz` as microseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EpochMicros(pub i64);

/// PostgreSQL counts `timestamptz` from 2000-01-01 00:00:00 UTC.
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

impl EpochMicros {
    /// Writes the seconds as `Timestamp` serializes them (a JSON number, as serde
    /// writes an `f64`): whole seconds, as every bucket's start is, as an integer and
    /// `.0`.
    pub fn write_seconds(self, json: &mut Vec<u8>, integers: &mut itoa::Buffer) {
        if self.0 % 1_000_000 == 0 {
            json.extend_from_slice(integers.format(self.0 / 1_000_000).as_bytes());
            json.extend_from_slice(b".0");
        } else {
            serde_json::to_writer(json, &(self.0 as f64 / 1e6))
                .expect("a finite number serializes into a Vec");
        }
    }
}

/// A `timestamptz[]`.
#[derive(Debug)]
pub struct Moments(pub Vec<EpochMicros>);

/// An `int8[]`.
#[derive(Debug)]
pub struct Integers(pub Vec<i64>);

/// A `float8[]`.
#[derive(Debug)]
pub struct Floats(pub Vec<f64>);

/// A `numeric[]` of finite numbers.
#[derive(Debug)]
pub struct Sums(pub Vec<ExactSum>);

impl Type<Postgres> for Moments {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as PgHasArrayType>::array_type_info()
    }
}

impl Type<Postgres> for Integers {
    fn type_info() -> PgTypeInfo {
        <i64 as PgHasArrayType>::array_type_info()
    }
}

impl Type<Postgres> for Floats {
    fn type_info() -> PgTypeInfo {
        <f64 as PgHasArrayType>::array_type_info()
    }
}

/// `numeric[]`'s type (`_numeric`).
const NUMERIC_ARRAY: Oid = Oid(1231);

impl Type<Postgres> for Sums {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(NUMERIC_ARRAY)
    }
}

impl<'r> Decode<'r, Postgres> for Moments {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        decode_each(value, |element| {
            i64::from_be_bytes(eight_bytes(element)?)
                .checked_add(POSTGRES_EPOCH_MICROS)
                .map(EpochMicros)
                .ok_or_else(|| "a timestamp out of range".into())
        })
        .map(Self)
    }
}

impl<'r> Decode<'r, Postgres> for Integers {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        decode_each(value, |element| {
            Ok(i64::from_be_bytes(eight_bytes(element)?))
        })
        .map(Self)
    }
}

impl<'r> Decode<'r, Postgres> for Floats {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        decode_each(value, |element| {
            Ok(f64::from_be_bytes(eight_bytes(element)?))
        })
        .map(Self)
    }
}

impl<'r> Decode<'r, Postgres> for Sums {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        decode_each(value, ExactSum::from_binary).map(Self)
    }
}

/// Each element of a one-dimensional array without nulls, decoded by `decode`, from
/// PostgreSQL's binary form (`array_send`): the count of dimensions, a null flag and the
/// element type, each dimension's length and lower bound, then each element's length
/// and bytes.
fn decode_each<T>(
    value: PgValueRef<'_>,
    decode: impl Fn(&[u8]) -> Result<T, BoxDynError>,
) -> Result<Vec<T>, BoxDynError> {
    if value.format() != PgValueFormat::Binary {
        return Err("an array in text form".into());
    }
    decode_elements(value.as_bytes()?, decode)
}

fn decode_elements<'a, T>(
    mut bytes: &'a [u8],
    decode: impl Fn(&'a [u8]) -> Result<T, BoxDynError>,
) -> Result<Vec<T>, BoxDynError> {
    let mut integer = || -> Result<i32, BoxDynError> {
        let (word, rest) = bytes
            .split_first_chunk::<4>()
            .ok_or("an array shorter than its header says")?;
        bytes = rest;
        Ok(i32::from_be_bytes(*word))
    };
    let (dimensions, _has_nulls, _element_type) = (integer()?, integer()?, integer()?);
    if dimensions == 0 {
        return Ok(Vec::new());
    }
    if dimensions != 1 {
        return Err("an array of more than one dimension".into());
    }
    let (length, _lower_bound) = (usize::try_from(integer()?)?, integer()?);
    let mut elements = Vec::with_capacity(length);
    for _ in 0..length {
        let (size, rest) = bytes
            .split_first_chunk::<4>()
            .ok_or("an array shorter than its length")?;
        let size = usize::try_from(i32::from_be_bytes(*size))
            .map_err(|_| "a null in an array that holds none")?;
        if rest.len() < size {
            return Err("an array element past the array's end".into());
        }
        let (element, rest) = rest.split_at(size);
        elements.push(decode(element)?);
        bytes = rest;
    }
    Ok(elements)
}

fn eight_bytes(element: &[u8]) -> Result<[u8; 8], BoxDynError> {
    element
        .try_into()
        .map_err(|_| "an array element of other than 8 bytes".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Timestamp;

    /// The elements' bytes, as they are.
    fn elements_of(bytes: &[u8]) -> Result<Vec<&[u8]>, BoxDynError> {
        decode_elements(bytes, Ok)
    }

    /// An array in PostgreSQL's binary form: one dimension from 1, of element type 20
    /// (`int8`), with the elements given, `None` a null.
    fn array(elements: &[Option<&[u8]>]) -> Vec<u8> {
        let mut bytes = Vec::new();
        let has_nulls = elements.iter().any(Option::is_none);
        for word in [1, i32::from(has_nulls), 20, elements.len() as i32, 1] {
            bytes.extend_from_slice(&word.to_be_bytes());
        }
        for element in elements {
            match element {
                Some(element) => {
                    bytes.extend_from_slice(&(element.len() as i32).to_be_bytes());
                    bytes.extend_from_slice(element);
                }
                None => bytes.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        bytes
    }

    #[test]
    fn arrays_are_read_element_by_element() {
        let (one, two) = (1i64.to_be_bytes(), (-2i64).to_be_bytes());
        let bytes = array(&[Some(&one), Some(&two), Some(b"abc")]);
        let elements = elements_of(&bytes).unwrap();
        assert_eq!(elements, [&one[..], &two[..], b"abc"]);
        assert_eq!(
            eight_bytes(elements[1]).map(i64::from_be_bytes).unwrap(),
            -2
        );
        assert!(eight_bytes(elements[2]).is_err());
        // An empty array has no dimensions.
        let empty = [0i32, 0, 20].map(i32::to_be_bytes).concat();
        assert_eq!(elements_of(&empty).unwrap(), Vec::<&[u8]>::new());
    }

    #[test]
    fn malformed_arrays_are_errors_not_panics() {
        let one = 1i64.to_be_bytes();
        let whole = array(&[Some(&one), Some(&one)]);
        for cut in 0..whole.len() {
            assert!(elements_of(&whole[..cut]).is_err(), "cut at {cut}");
        }
        assert!(elements_of(&array(&[Some(&one), None])).is_err());
        let mut two_dimensions = whole.clone();
        two_dimensions[..4].copy_from_slice(&2i32.to_be_bytes());
        assert!(elements_of(&two_dimensions).is_err());
    }

    #[test]
    fn bucket_seconds_are_written_as_timestamps_serialize() {
        let mut integers = itoa::Buffer::new();
        for micros in [
            0,
            1_000_000,
            1_764_460_800_000_000,
            2_147_483_647_000_000,
            1_683_645_000_123_456,
            1_500_000,
        ] {
            let mut written = Vec::new();
            EpochMicros(micros).write_seconds(&mut written, &mut integers);
            let timestamp =
                Timestamp::from_datetime(DateTime::from_timestamp_micros(micros).unwrap());
            assert_eq!(
                String::from_utf8(written).unwrap(),
                serde_json::to_string(&timestamp).unwrap(),
                "{micros}"
            );
        }
    }
}
