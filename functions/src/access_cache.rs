//! Access decisions that let a request through, remembered for a short while, so that
//! a client paging through a sensor's data costs one query per page instead of two.
//!
//! Only positive decisions are kept: a 401, 403 or 404 is always decided afresh, so a
//! network or sensor created a moment ago is found at once. Permissions and the
//! network of a sensor never change once granted, but tokens end: a decision is never
//! used past its token's expiration, and a logout removes its token's decisions from
//! the cache of the process that served it at once. Other processes (other Lambda
//! instances) share nothing with it, so there the time to live bounds how long a
//! revoked token still works: see [`ACCESS_CACHE_TIME_TO_LIVE`].

use std::time::Duration;

use chrono::Utc;
use sensorium_shared::domain::{Identifier, Timestamp};

use crate::expiring::ExpiringMap;

/// How long a decision is trusted: 5 seconds. The contract says a revoked token "stops
/// working" and allows no grace, so the bound is as short as keeps the cache worth
/// having: a client paging through data sends its pages back to back, milliseconds
/// apart, and 5 s still spares it nearly every access query; a token revoked on
/// another instance works there for at most 5 s more, less than a client takes to
/// notice its logout, and far less than API Gateway's authorizer cache (300 s by
/// default) would allow.
pub const ACCESS_CACHE_TIME_TO_LIVE: Duration = Duration::from_secs(5);
/// Most decisions kept.
const CAPACITY: usize = 10_000;

/// The hash of an access token, and the network and sensor it was allowed on (none
/// for routes that only need a user).
pub type AccessKey = (Vec<u8>, Option<Identifier>, Option<Identifier>);

/// The user each key let through.
pub struct AccessCache(ExpiringMap<AccessKey, Identifier>);

impl AccessCache {
    pub fn new(time_to_live: Duration) -> Self {
        Self(ExpiringMap::new(time_to_live, CAPACITY))
    }

    /// The user that `key` let through, if that was decided within the time to live
    /// and the token has not expired since.
    pub fn get(&self, key: &AccessKey) -> Option<Identifier> {
        self.0.get(key)
    }

    /// Remembers that `key` let `user_identifier` through, with a token that expires at
    /// `expiration_timestamp`.
    pub fn insert(
        &self,
        key: AccessKey,
        user_identifier: Identifier,
        expiration_timestamp: Timestamp,
    ) {
        let Ok(token_lifetime) = (expiration_timestamp.as_datetime() - Utc::now()).to_std() else {
            return;
        };
        self.0.insert_for(key, user_identifier, token_lifetime);
    }

    /// Forgets every decision taken for the token of `token_hash` (it was revoked).
    pub fn remove_token(&self, token_hash: &[u8]) {
        self.0.retain(|(hash, _, _)| hash != token_hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> AccessKey {
        (vec![7; 32], Some(Identifier::new()), None)
    }

    /// A token expiring `seconds` from now.
    fn expiring_in(seconds: i64) -> Timestamp {
        Timestamp::from_datetime(Utc::now() + chrono::TimeDelta::seconds(seconds))
    }

    #[test]
    fn decisions_are_remembered_for_their_time_to_live() {
        let cache = AccessCache::new(Duration::from_secs(60));
        let (key, user) = (key(), Identifier::new());
        assert_eq!(cache.get(&key), None);
        cache.insert(key.clone(), user, expiring_in(3600));
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
        cache.insert(key.clone(), Identifier::new(), expiring_in(3600));
        assert_eq!(cache.get(&key), None);
    }

    #[test]
    fn decisions_are_not_used_past_their_tokens_expiration() {
        let cache = AccessCache::new(Duration::from_secs(60));
        let key = key();
        cache.insert(key.clone(), Identifier::new(), expiring_in(-1));
        assert_eq!(cache.get(&key), None);
        let soon = Timestamp::from_datetime(Utc::now() + chrono::TimeDelta::milliseconds(50));
        cache.insert(key.clone(), Identifier::new(), soon);
        assert!(cache.get(&key).is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get(&key), None);
    }

    #[test]
    fn removing_a_token_forgets_all_its_decisions_and_only_them() {
        let cache = AccessCache::new(Duration::from_secs(60));
        let (revoked, other) = (vec![1; 32], vec![2; 32]);
        let network = Some(Identifier::new());
        let keys = [
            (revoked.clone(), None, None),
            (revoked.clone(), network, None),
            (revoked.clone(), network, Some(Identifier::new())),
        ];
        for key in &keys {
            cache.insert(key.clone(), Identifier::new(), expiring_in(3600));
        }
        cache.insert(
            (other.clone(), network, None),
            Identifier::new(),
            expiring_in(3600),
        );
        cache.remove_token(&revoked);
        for key in &keys {
            assert_eq!(cache.get(key), None);
        }
        assert!(cache.get(&(other, network, None)).is_some());
    }
}
