//! A map whose entries are used for a bounded time, shared by the request handlers of
//! a process: the mechanism of [`crate::access_cache`] and [`crate::count_days_cache`].

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub struct ExpiringMap<K, V> {
    time_to_live: Duration,
    /// Most entries kept; beyond, the expired ones go, and if none has expired, all.
    capacity: usize,
    /// Each entry and until when it may be used.
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash, V: Clone> ExpiringMap<K, V> {
    pub fn new(time_to_live: Duration, capacity: usize) -> Self {
        Self {
            time_to_live,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The value of `key`, unless it has expired.
    pub fn get(&self, key: &K) -> Option<V> {
        self.lock()
            .get(key)
            .filter(|(_, valid_until)| Instant::now() < *valid_until)
            .map(|(value, _)| value.clone())
    }

    /// Keeps `value` for the time to live.
    pub fn insert(&self, key: K, value: V) {
        self.insert_for(key, value, self.time_to_live);
    }

    /// Keeps `value` for `lifetime`, or the time to live if that is shorter.
    pub fn insert_for(&self, key: K, value: V, lifetime: Duration) {
        let now = Instant::now();
        let valid_until = now + self.time_to_live.min(lifetime);
        let mut entries = self.lock();
        if entries.len() >= self.capacity {
            entries.retain(|_, (_, valid_until)| now < *valid_until);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, (value, valid_until));
    }

    /// Forgets the entries whose keys `keep` refuses.
    pub fn retain(&self, mut keep: impl FnMut(&K) -> bool) {
        self.lock().retain(|key, _| keep(key));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, (V, Instant)>> {
        self.entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_used_for_their_time_to_live_or_a_shorter_lifetime() {
        let map = ExpiringMap::new(Duration::from_millis(40), 10);
        assert_eq!(map.get(&1), None);
        map.insert(1, "one");
        map.insert_for(2, "two", Duration::from_secs(3600));
        map.insert_for(3, "three", Duration::ZERO);
        assert_eq!(map.get(&1), Some("one"));
        assert_eq!(map.get(&2), Some("two"));
        assert_eq!(map.get(&3), None);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(map.get(&1), None);
        assert_eq!(map.get(&2), None, "the time to live bounds every lifetime");
    }

    #[test]
    fn retain_forgets_the_refused_keys_only() {
        let map = ExpiringMap::new(Duration::from_secs(60), 10);
        for key in 0..4 {
            map.insert(key, key);
        }
        map.retain(|key| key % 2 == 0);
        assert_eq!(
            (0..4).map(|key| map.get(&key)).collect::<Vec<_>>(),
            [Some(0), None, Some(2), None]
        );
    }

    #[test]
    fn a_full_map_makes_room() {
        let map = ExpiringMap::new(Duration::from_secs(60), 100);
        for key in 0..101 {
            map.insert(key, ());
        }
        assert!((1..=100).contains(&map.len()), "{}", map.len());
        assert_eq!(map.get(&100), Some(()), "the newest entry is kept");
    }
}
