//! What the payloads of all sensor topics share, parsed element by element: the
//! object `{"<key>": [element, ...]}` must be exactly right, while a bad element only
//! costs itself. Each topic's element type lives with its topic.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::error::Category;
use serde_json::value::RawValue;

/// Why a whole payload was refused.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("not a JSON object with the single key {0:?}")]
    WrongShape(&'static str),
    #[error("{0:?} does not hold a non-empty array")]
    NotAList(&'static str),
}

/// The elements of a payload `{"<key>": [...]}`, each parsed on its own: `Ok` for a
/// good element, `Err` with the reason for a bad one, in payload order.
pub fn parse_elements<T: Element>(payload: &[u8]) -> Result<Vec<Result<T, String>>, PayloadError> {
    // The elements are first borrowed as raw JSON text, without building a tree of
    // the whole payload, and then parsed one at a time. serde_json checks UTF-8
    // itself, so bytes that are not UTF-8 are "not JSON".
    let Object(object) =
        serde_json::from_slice(payload).map_err(|error| match error.classify() {
            Category::Data => PayloadError::WrongShape(T::KEY),
            _ => PayloadError::NotJson(error),
        })?;
    let mut entries = object.into_iter();
    let (Some((key, elements)), None) = (entries.next(), entries.next()) else {
        return Err(PayloadError::WrongShape(T::KEY));
    };
    if key != T::KEY {
        return Err(PayloadError::WrongShape(T::KEY));
    }
    match serde_json::from_str::<Vec<&RawValue>>(elements.get()) {
        Ok(elements) if !elements.is_empty() => Ok(elements.into_iter().map(T::parse).collect()),
        _ => Err(PayloadError::NotAList(T::KEY)),
    }
}

/// A payload's object, its values borrowed as raw JSON text. A key given twice makes it
/// the wrong shape: it holds two keys, not one.
#[derive(Deserialize)]
#[serde(transparent)]
struct Object<'a>(
    #[serde(borrow, deserialize_with = "unique_keys")] BTreeMap<String, &'a RawValue>,
);

/// Deserializes an object into a map, refusing a key that appears twice: serde's maps
/// silently keep the last value, while which one the sensor meant is anyone's guess.
pub(super) fn unique_keys<'de, D, K, V>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
{
    struct UniqueKeys<K, V>(PhantomData<(K, V)>);

    impl<'de, K, V> Visitor<'de> for UniqueKeys<K, V>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
    {
        type Value = BTreeMap<K, V>;

        fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
            formatter.write_str("an object with no key twice")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut object: A) -> Result<Self::Value, A::Error> {
            let mut map = BTreeMap::new();
            while let Some((key, value)) = object.next_entry()? {
                if map.insert(key, value).is_some() {
                    return Err(serde::de::Error::custom("a key appears twice"));
                }
            }
            Ok(map)
        }
    }

    deserializer.deserialize_map(UniqueKeys(PhantomData))
}

/// One element type of a sensor topic.
pub trait Element: Sized {
    /// The payload's single key.
    const KEY: &'static str;

    fn parse(element: &RawValue) -> Result<Self, String>;
}

/// Longest reason logged for a bad element: serde's message quotes the offending
/// value, which a sensor may make a megabyte long.
const MAXIMUM_REASON_LENGTH: usize = 200;

pub(super) fn deserialize<'a, T: Deserialize<'a>>(element: &'a RawValue) -> Result<T, String> {
    serde_json::from_str(element.get()).map_err(|error| {
        let mut reason = error.to_string();
        cut(&mut reason, MAXIMUM_REASON_LENGTH);
        reason
    })
}

/// Cuts `text` to `length` characters (not bytes: never inside a character).
pub(super) fn cut(text: &mut String, length: usize) {
    if let Some((index, _)) = text.char_indices().nth(length) {
        text.truncate(index);
    }
}

#[cfg(test)]
pub(super) mod tests {
    use serde_json::json;

    use super::*;
    use crate::topics::heartbeats::Heartbeat;
    use crate::topics::measurements::Measurement;

    pub(crate) fn parse<T: Element>(payload: serde_json::Value) -> Vec<Result<T, String>> {
        parse_elements(payload.to_string().as_bytes()).unwrap()
    }

    pub(crate) fn accepted<T: Element>(element: serde_json::Value) -> bool {
        parse::<T>(json!({ T::KEY: [element] }))[0].is_ok()
    }

    #[test]
    fn payloads_must_be_an_object_with_the_one_key_holding_a_non_empty_array() {
        let refused: [&[u8]; 11] = [
            b"\xff\xfe",
            b"not json",
            b"[]",
            b"[{\"measurements\": []}]",
            b"{}",
            b"{\"measurements\": []}",
            b"{\"measurements\": {}}",
            b"{\"log_messages\": [{}]}",
            b"{\"measurements\": [{}], \"other\": 1}",
            b"{\"measurements\": [{}], \"measurements\": [{}]}",
            b"null",
        ];
        for payload in refused {
            assert!(
                parse_elements::<Measurement>(payload).is_err(),
                "{payload:?} was accepted"
            );
        }
        let elements = parse::<Measurement>(json!({"measurements": [{}, 1]}));
        assert_eq!(elements.len(), 2);
        assert!(elements.iter().all(Result::is_err));
    }

    #[test]
    fn refused_payloads_say_whether_they_are_json_of_the_wrong_shape_or_not_json() {
        let reason = |payload: &[u8]| parse_elements::<Measurement>(payload).unwrap_err();
        for payload in [&b"[]"[..], b"null", b"{\"log_messages\": [{}]}"] {
            assert!(matches!(reason(payload), PayloadError::WrongShape(_)));
        }
        for payload in [&b"{\"measurements\": 1}"[..], b"{\"measurements\": []}"] {
            assert!(matches!(reason(payload), PayloadError::NotAList(_)));
        }
        for payload in [&b"{\"measurements\": [1"[..], b"\xff", b""] {
            assert!(matches!(reason(payload), PayloadError::NotJson(_)));
        }
    }

    #[test]
    fn reasons_for_bad_elements_stay_short() {
        let huge = "x".repeat(1 << 20);
        let elements = parse::<Heartbeat>(json!({"heartbeats": [{"revision": huge}]}));
        let reason = elements[0].as_ref().unwrap_err();
        assert!(
            reason.chars().count() <= MAXIMUM_REASON_LENGTH,
            "{}",
            reason.len()
        );
    }
}
