//! Cursor pages (docs/rest.md, "Pages"): at most 64 elements, always ascending by the cursor field;
//! `next` reads forwards from the cursor, `previous` backwards, the cursor excluded.
//! Timestamps are no unique cursor: a page that ends inside a run of elements with
//! one timestamp holds the whole run, or the next page (after that timestamp) would
//! skip the rest. Such a page reads up to the 64th element's timestamp inclusive.
//!
//! Each direction is its own query, a plain range scan of the primary key: one query
//! for both with a CASE in ORDER BY defeats the index.

use chrono::{DateTime, TimeDelta, Utc};

use crate::domain::{Revision, Timestamp};
use crate::limits::{REVISION_LIMIT, TIMESTAMP_LIMIT};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Towards newer elements; without a cursor, the first (oldest) page.
    #[default]
    Next,
    /// Towards older elements; without a cursor, the last (newest) page.
    Previous,
}

/// Which page to read: a direction and, optionally, the cursor to start from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageRequest<C> {
    pub direction: Direction,
    pub cursor: Option<C>,
}

impl PageRequest<Timestamp> {
    /// The exclusive bound of the range scan. Without a cursor it lies just outside
    /// the contract's range of timestamps, so the same query reads the first or last page.
    pub fn timestamp_bound(&self) -> DateTime<Utc> {
        match (self.cursor, self.direction) {
            (Some(cursor), _) => cursor.as_datetime(),
            (None, Direction::Next) => DateTime::UNIX_EPOCH - TimeDelta::seconds(1),
            (None, Direction::Previous) => {
                DateTime::UNIX_EPOCH + TimeDelta::seconds(TIMESTAMP_LIMIT as i64)
            }
        }
    }

    /// The far end of the range scan, exclusive: just outside the contract's range of
    /// timestamps in the page's direction, so that the scan reaches every element.
    pub fn timestamp_limit(&self) -> DateTime<Utc> {
        let opposite = Self {
            direction: match self.direction {
                Direction::Next => Direction::Previous,
                Direction::Previous => Direction::Next,
            },
            cursor: None,
        };
        opposite.timestamp_bound()
    }
}

impl PageRequest<Revision> {
    /// The exclusive bound of the range scan, as `timestamp_bound` for revisions.
    pub fn revision_bound(&self) -> i64 {
        match (self.cursor, self.direction) {
            (Some(cursor), _) => i64::from(cursor.get()),
            (None, Direction::Next) => -1,
            (None, Direction::Previous) => REVISION_LIMIT,
        }
    }
}

/// Puts a page read in descending order (the `previous` direction) into the ascending
/// order every page has.
pub fn ascending<T>(direction: Direction, mut rows: Vec<T>) -> Vec<T> {
    if direction == Direction::Previous {
        rows.reverse();
    }
    rows
}
