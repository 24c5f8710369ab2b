//! The time range of a measurement aggregation (API.md): buckets of `interval` seconds
//! aligned to the epoch, from `from` to before `to`, parsed at the boundary so the
//! query only sees a range it can answer.

use chrono::{DateTime, TimeDelta, Utc};

use crate::domain::{ParseError, Timestamp};
use crate::limits::AGGREGATION_WINDOW_DAYS;

/// Bounds of the bucket width, in seconds: a minute to 30 days.
pub const MINIMUM_INTERVAL_SECONDS: i64 = 60;
pub const MAXIMUM_INTERVAL_SECONDS: i64 = 30 * 24 * 60 * 60;
pub const DEFAULT_INTERVAL_SECONDS: i64 = 60 * 60;
/// Most buckets one attribute of an aggregation may span.
pub const MAXIMUM_BUCKET_COUNT: i64 = 10_000;
const HOUR_SECONDS: i64 = 60 * 60;
const DAY_SECONDS: i64 = 24 * HOUR_SECONDS;

/// A valid aggregation range: `from < to`, an interval in bounds, at most
/// [`MAXIMUM_BUCKET_COUNT`] buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggregationRange {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    interval_seconds: i64,
}

impl AggregationRange {
    /// The range the parameters give, with the contract's defaults: the last 28 days
    /// before `now`, in hours.
    pub fn parse(
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        interval_seconds: Option<i64>,
        now: Timestamp,
    ) -> Result<Self, ParseError> {
        let to = to.unwrap_or(now).as_datetime();
        let from = match from {
            Some(from) => from.as_datetime(),
            None => now.as_datetime() - TimeDelta::days(AGGREGATION_WINDOW_DAYS),
        };
        let interval_seconds = interval_seconds.unwrap_or(DEFAULT_INTERVAL_SECONDS);
        if !(MINIMUM_INTERVAL_SECONDS..=MAXIMUM_INTERVAL_SECONDS).contains(&interval_seconds) {
            return Err(ParseError {
                kind: "interval",
                reason: "not a whole number of seconds from 60 to 2592000",
            });
        }
        if from >= to {
            return Err(ParseError {
                kind: "range",
                reason: "from is not before to",
            });
        }
        let range = Self {
            from,
            to,
            interval_seconds,
        };
        if range.bucket_count() > MAXIMUM_BUCKET_COUNT {
            return Err(ParseError {
                kind: "range",
                reason: "more than 10000 buckets",
            });
        }
        Ok(range)
    }

    /// How many buckets of the interval the range touches.
    pub fn bucket_count(&self) -> i64 {
        let width = self.interval_seconds * 1_000_000;
        let first = self.from.timestamp_micros().div_euclid(width);
        let last = (self.to.timestamp_micros() - 1).div_euclid(width);
        last - first + 1
    }

    pub fn from(&self) -> DateTime<Utc> {
        self.from
    }

    pub fn to(&self) -> DateTime<Utc> {
        self.to
    }

    pub fn interval_seconds(&self) -> i64 {
        self.interval_seconds
    }

    /// Whether every bucket is made of whole hours, so the rollups can answer.
    pub fn is_hourly(&self) -> bool {
        self.interval_seconds % HOUR_SECONDS == 0
    }

    /// How the range splits between the rollups (see [`RollupSpans`]): the whole hours
    /// inside it, and, when every bucket is made of whole days, the whole days inside
    /// those.
    pub fn rollup_spans(&self) -> RollupSpans {
        let hours = whole_units(self.from, self.to, HOUR_SECONDS);
        let days = if self.interval_seconds % DAY_SECONDS == 0 {
            whole_units(hours.0, hours.1, DAY_SECONDS)
        } else {
            (hours.1, hours.1)
        };
        RollupSpans {
            hours,
            days,
            day_rows_are_buckets: self.interval_seconds == DAY_SECONDS,
            hour_rows_are_buckets: self.interval_seconds == HOUR_SECONDS,
        }
    }
}

/// The parts of an aggregation range that each source answers, nested as
/// `from <= hours.0 <= days.0 <= days.1 <= hours.1 <= to`: the daily rollup answers
/// `days`, the hourly rollup the rest of `hours`, and the rows the partial hours at the
/// range's edges. An empty span has equal ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollupSpans {
    pub hours: (DateTime<Utc>, DateTime<Utc>),
    pub days: (DateTime<Utc>, DateTime<Utc>),
    /// Buckets of one day: each daily rollup row of `days` is a bucket of its own, and
    /// the hours and rows at the edges make up the partial days at the range's ends.
    pub day_rows_are_buckets: bool,
    /// Buckets of one hour: each hourly rollup row is a bucket of its own (`days` is
    /// empty), and the rows at the edges make up the partial hours.
    pub hour_rows_are_buckets: bool,
}

/// The whole units of `unit_seconds` (aligned to the epoch) inside `[from, to)`; empty,
/// at `to`, when it holds none.
fn whole_units(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    unit_seconds: i64,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let unit = unit_seconds * 1_000_000;
    let start = -(-from.timestamp_micros()).div_euclid(unit) * unit;
    let end = to.timestamp_micros().div_euclid(unit) * unit;
    if start < end {
        (micros(start), micros(end))
    } else {
        (to, to)
    }
}

fn micros(value: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(value).expect("within the range of the bounds")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: f64) -> Timestamp {
        Timestamp::parse(seconds).unwrap()
    }

    #[test]
    fn defaults_are_the_28_days_before_now_in_hours() {
        let now = at(1_700_000_000.0);
        let range = AggregationRange::parse(None, None, None, now).unwrap();
        assert_eq!(range.to(), now.as_datetime());
        assert_eq!(range.from(), now.as_datetime() - TimeDelta::days(28));
        assert_eq!(range.interval_seconds(), 3600);
        assert!(range.is_hourly());
    }

    #[test]
    fn buckets_are_counted_from_the_epoch() {
        let now = at(2_000_000_000.0);
        // [0, 60) is one bucket of a minute, [0, 60.000001) two, [59, 61) two.
        for (from, to, expected) in [
            (0.0, 60.0, 1),
            (0.0, 60.000_001, 2),
            (59.0, 61.0, 2),
            (0.0, 600_000.0, 10_000),
        ] {
            let range = AggregationRange::parse(Some(at(from)), Some(at(to)), Some(60), now);
            assert_eq!(range.unwrap().bucket_count(), expected, "{from}..{to}");
        }
        let too_many = AggregationRange::parse(Some(at(0.0)), Some(at(600_000.5)), Some(60), now);
        assert_eq!(too_many.unwrap_err().reason, "more than 10000 buckets");
    }

    #[test]
    fn empty_ranges_and_intervals_out_of_bounds_are_refused() {
        let now = at(2_000_000_000.0);
        for (from, to, interval) in [
            (10.0, 10.0, 60),
            (11.0, 10.0, 60),
            (0.0, 3600.0, 59),
            (0.0, 3600.0, 2_592_001),
        ] {
            let range = AggregationRange::parse(Some(at(from)), Some(at(to)), Some(interval), now);
            assert!(range.is_err(), "{from}..{to} by {interval}");
        }
        assert!(AggregationRange::parse(Some(at(0.0)), None, Some(2_592_000), now).is_ok());
    }

    #[test]
    fn whole_hours_leave_the_partial_hours_at_the_edges() {
        let now = at(2_000_000_000.0);
        let range =
            AggregationRange::parse(Some(at(1800.0)), Some(at(3.5 * 3600.0)), None, now).unwrap();
        let spans = range.rollup_spans();
        assert_eq!(
            spans.hours,
            (at(3600.0).as_datetime(), at(3.0 * 3600.0).as_datetime())
        );
        // Hourly buckets take nothing from the daily rollup.
        assert_eq!(spans.days, (spans.hours.1, spans.hours.1));
        assert!(spans.hour_rows_are_buckets && !spans.day_rows_are_buckets);
        let inside =
            AggregationRange::parse(Some(at(1800.0)), Some(at(3000.0)), None, now).unwrap();
        let spans = inside.rollup_spans();
        assert_eq!(
            spans.hours,
            (at(3000.0).as_datetime(), at(3000.0).as_datetime())
        );
        assert_eq!(spans.days, spans.hours);
    }

    #[test]
    fn whole_days_nest_inside_the_whole_hours() {
        let now = at(2_000_000_000.0);
        let day = 86_400.0;
        // From half past midnight of day 1 to a quarter past 2 on day 4, in days.
        let range = AggregationRange::parse(
            Some(at(day + 1800.0)),
            Some(at(4.0 * day + 2.25 * 3600.0)),
            Some(86_400),
            now,
        )
        .unwrap();
        let spans = range.rollup_spans();
        assert_eq!(
            spans.hours,
            (
                at(day + 3600.0).as_datetime(),
                at(4.0 * day + 2.0 * 3600.0).as_datetime()
            )
        );
        assert_eq!(
            spans.days,
            (at(2.0 * day).as_datetime(), at(4.0 * day).as_datetime())
        );
        assert!(spans.day_rows_are_buckets && !spans.hour_rows_are_buckets);
        // Less than a whole day inside: the hours answer it all.
        let short = AggregationRange::parse(
            Some(at(day + 1800.0)),
            Some(at(1.5 * day)),
            Some(86_400),
            now,
        )
        .unwrap();
        let spans = short.rollup_spans();
        assert_eq!(spans.days, (spans.hours.1, spans.hours.1));
        // Buckets of 2 days are whole days too; of 36 hours, not.
        let two_days =
            AggregationRange::parse(Some(at(0.0)), Some(at(4.0 * day)), Some(172_800), now)
                .unwrap();
        let spans = two_days.rollup_spans();
        assert_eq!(
            spans.days,
            (at(0.0).as_datetime(), at(4.0 * day).as_datetime())
        );
        assert!(!spans.day_rows_are_buckets && !spans.hour_rows_are_buckets);
        let hours_36 =
            AggregationRange::parse(Some(at(0.0)), Some(at(4.0 * day)), Some(129_600), now)
                .unwrap();
        let spans = hours_36.rollup_spans();
        assert_eq!(spans.days, (spans.hours.1, spans.hours.1));
    }
}
