//! Cursor pages by creation time, as the measurement and log routes answer them.

use serde_json::Value;

/// Microseconds apart from whole seconds, to prove cursors keep them.
pub const BASE: f64 = 1_683_645_000.123_456;

/// The `creation_timestamp` of every element of a page.
pub fn creation_timestamps(page: &Value) -> Vec<f64> {
    page.as_array()
        .unwrap()
        .iter()
        .map(|element| element["creation_timestamp"].as_f64().unwrap())
        .collect()
}

/// Timestamps half a second apart from [`BASE`], by index.
pub fn timestamps(range: std::ops::Range<usize>) -> Vec<f64> {
    range.map(|index| BASE + index as f64 * 0.5).collect()
}
