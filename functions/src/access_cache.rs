//! Access decisions that let a request through, remembered for a short while, so that
//! a client paging through a sensor's data costs one query per page instead of two.
//!
//! Only positive decisions are kept: a 401, 403 or 404 is always decided afresh, so a
//! network or sensor created a moment ago is found at once. Tokens, permissions and
//! the network of a sensor never change once granted (there is no logout, revocation
//! or move), and the time to live bounds how stale a decision can get should that
//! change, as API Gateway's authorizer cache does.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sensorium_shared::domain::Identifier;

/// How long a decision is trusted.
pub const ACCESS_CACHE_TIME_TO_LIVE: Duration = Duration::from_secs(60);
/// Most decisions kept; beyond, the expired ones go, and if none has expired, all.
const CAPACITY: usize = 10_000;

/// The hash of an access token, and the network and sensor it was allowed on (none
/// for routes that only need a user).
pub type AccessKey = (Vec<u8>, Option<Identifier>, Option<Identifier>);

pub struct AccessCache {
    time_to_live: Duration,
    decisions: Mutex<HashMap<AccessKey, (Identifier, Instant)>>,
}

impl AccessCache {
    pub fn new(time_to_live: Duration) -> Self {
        Self {
            time_to_live,
            decisions: Mutex::new(HashMap::new()),
        }
    }

    /// The user that `key` let through, if that was decided within the time to live.
    pub fn get(&self, key: &AccessKey) -> Option<Identifier> {
        let decisions = self
            .decisions
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        decisions
            .get(key)
            .filter(|(_, decided)| decided.elapsed() < self.time_to_live)
            .map(|(user_identifier, _)| *user_identifier)
    }

    pub fn insert(&self, key: AccessKey, user_identifier: Identifier) {
        let mut decisions = self
            .decisions
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if decisions.len() >= CAPACITY {
            decisions.retain(|_, (_, decided)| decided.elapsed() < self.time_to_live);
            if decisions.len() >= CAPACITY {
                decisions.clear();
            }
        }
        decisions.insert(key, (user_identifier, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> AccessKey {
        (vec![7; 32], Some(Identifier::new()), None)
    }

    #[test]
    fn decisions_are_remembered_for_their_time_to_live() {
        let cache = AccessCache::new(Duration::from_secs(60));
        let (key, user) = (key(), Identifier::new());
        assert_eq!(cache.get(&key), None);
        cache.insert(key.clone(), user);
        assert_eq!(cache.get(&key), Some(user));
        assert_eq!(
            cache.get(&(key.0.clone(), key.1, Some(Identifier::new()))),
            None
        );
    }

    #[test]
    fn expired_decisions_are_not_used() {
        let cache = AccessCache::new(Duration::ZERO);
        let key = key();
        cache.insert(key.clone(), Identifier::new());
        assert_eq!(cache.get(&key), None);
    }

    #[test]
    fn a_full_cache_makes_room() {
        let cache = AccessCache::new(Duration::from_secs(60));
        for _ in 0..CAPACITY + 1 {
            cache.insert(key(), Identifier::new());
        }
        let length = cache.decisions.lock().unwrap().len();
        assert!((1..=CAPACITY).contains(&length), "{length}");
    }
}
