//! Coalesced reads: concurrent requests for the same answer share one query.
//!
//! A request never gets an answer older than itself: it joins the query that starts
//! next for its key, never one already running, so everything stored before it arrived
//! is in its answer. While one query for a key runs, every request for that key waits
//! for the next one, which starts when the running one ends and answers them all. Under
//! load a key therefore costs at most one query at a time, and a request waits at most
//! for the end of the running query and for its own.
//!
//! In a Lambda function, which serves one request at a time, every query serves one
//! request; in the harness (or any long-running server) concurrent requests share.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

/// What one query answered, shared by every request it serves.
pub type Answer<T, E> = Result<T, Arc<E>>;

type Query<K, T, E> = dyn Fn(K) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send>> + Send + Sync;

/// Where a query's answer is sent, and where its requests wait for it.
type Flight<T, E> = watch::Sender<Option<Answer<T, E>>>;

/// Runs `query` for a key once for all the requests that wait for it together.
pub struct Coalescer<K, T, E> {
    query: Box<Query<K, T, E>>,
    /// A key is here while a query for it runs, with the flight that starts after it
    /// once a request waits for that.
    running: Mutex<HashMap<K, Option<Flight<T, E>>>>,
}

impl<K, T, E> Coalescer<K, T, E>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    pub fn new<F, Fut>(query: F) -> Arc<Self>
    where
        F: Fn(K) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        Arc::new(Self {
            query: Box::new(move |key| Box::pin(query(key))),
            running: Mutex::new(HashMap::new()),
        })
    }

    /// The answer of a query for `key` that starts after this call; `None` if that
    /// query's task ended without one (it panicked).
    pub async fn get(self: &Arc<Self>, key: K) -> Option<Answer<T, E>> {
        let mut receiver = {
            let mut running = self.lock();
            match running.get_mut(&key) {
                Some(Some(next)) => next.subscribe(),
                Some(waiting @ None) => waiting.insert(watch::channel(None).0).subscribe(),
                None => {
                    running.insert(key.clone(), None);
                    let (flight, receiver) = watch::channel(None);
                    tokio::spawn(Arc::clone(self).fly(key, flight));
                    receiver
                }
            }
        };
        let answer = receiver.wait_for(Option::is_some).await.ok()?;
        answer.clone()
    }

    /// Runs the query for `key` and the ones requests waited for after it, one after
    /// another, until none waits.
    async fn fly(self: Arc<Self>, key: K, mut flight: Flight<T, E>) {
        // Should the query panic, the key is freed (and the flights' requests get
        // `None`); otherwise requests would wait for a query that never runs.
        let mut landing = Landing {
            coalescer: &self,
            key: &key,
            landed: false,
        };
        loop {
            let answer = (self.query)(key.clone()).await.map_err(Arc::new);
            flight.send_replace(Some(answer));
            let mut running = self.lock();
            match running.get_mut(&key).and_then(Option::take) {
                Some(next) => flight = next,
                None => {
                    running.remove(&key);
                    landing.landed = true;
                    return;
                }
            }
        }
    }
}

impl<K, T, E> Coalescer<K, T, E> {
    fn lock(&self) -> MutexGuard<'_, HashMap<K, Option<Flight<T, E>>>> {
        // The map is consistent between statements: a panic elsewhere leaves it usable.
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Frees the key of a query task that ended before it landed (it panicked).
struct Landing<'a, K: Eq + Hash, T, E> {
    coalescer: &'a Coalescer<K, T, E>,
    key: &'a K,
    landed: bool,
}

impl<K: Eq + Hash, T, E> Drop for Landing<'_, K, T, E> {
    fn drop(&mut self) {
        if !self.landed {
            self.coalescer.lock().remove(self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::Semaphore;

    use super::*;

    /// A coalescer whose query answers its own number (1 for the first to start) once
    /// `gate` lets it, or fails for the numbers in `failing`; and the count of queries
    /// started.
    fn numbering(
        gate: &Arc<Semaphore>,
        failing: &'static [usize],
    ) -> (Arc<Coalescer<u8, usize, String>>, Arc<AtomicUsize>) {
        let started = Arc::new(AtomicUsize::new(0));
        let coalescer = Coalescer::new({
            let (gate, started) = (Arc::clone(gate), Arc::clone(&started));
            move |_key| {
                let (gate, started) = (Arc::clone(&gate), Arc::clone(&started));
                async move {
                    let number = started.fetch_add(1, Ordering::SeqCst) + 1;
                    gate.acquire().await.expect("the gate stays open").forget();
                    if failing.contains(&number) {
                        Err(format!("query {number} failed"))
                    } else {
                        Ok(number)
                    }
                }
            }
        });
        (coalescer, started)
    }

    /// Lets the other tasks of this (single-threaded) runtime run until they wait.
    async fn let_others_run() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    fn answered(answer: Option<Answer<usize, String>>) -> Result<usize, String> {
        answer
            .expect("the query answered")
            .map_err(|error| error.to_string())
    }

    /// A request for `key`, in a task of its own.
    fn spawn_get(
        coalescer: &Arc<Coalescer<u8, usize, String>>,
        key: u8,
    ) -> tokio::task::JoinHandle<Result<usize, String>> {
        let coalescer = Arc::clone(coalescer);
        tokio::spawn(async move { answered(coalescer.get(key).await) })
    }

    #[tokio::test]
    async fn requests_during_a_query_share_the_next_one() {
        let gate = Arc::new(Semaphore::new(0));
        let (coalescer, started) = numbering(&gate, &[]);
        let get = |key| spawn_get(&coalescer, key);
        let first = get(1);
        let_others_run().await;
        // Three requests while the first query runs, and one for another key.
        let during: Vec<_> = (0..3).map(|_| get(1)).collect();
        let other = get(2);
        let_others_run().await;
        assert_eq!(started.load(Ordering::SeqCst), 2, "one query a key runs");
        gate.add_permits(2);
        assert_eq!(first.await.unwrap(), Ok(1));
        assert_eq!(other.await.unwrap(), Ok(2));
        // The requests that came while the first ran do not get its answer, which may
        // lack what was stored before they came, but the next query's.
        gate.add_permits(1);
        for request in during {
            assert_eq!(request.await.unwrap(), Ok(3));
        }
        assert_eq!(started.load(Ordering::SeqCst), 3);
        // The key is free again: the next request starts a query of its own.
        gate.add_permits(1);
        assert_eq!(get(1).await.unwrap(), Ok(4));
    }

    #[tokio::test]
    async fn a_failure_is_every_waiting_requests_and_the_next_query_runs_anew() {
        let gate = Arc::new(Semaphore::new(0));
        let (coalescer, _) = numbering(&gate, &[2]);
        let get = |key| spawn_get(&coalescer, key);
        let first = get(7);
        let_others_run().await;
        let during = [get(7), get(7)];
        gate.add_permits(2);
        assert_eq!(first.await.unwrap(), Ok(1));
        for request in during {
            assert_eq!(request.await.unwrap(), Err("query 2 failed".to_owned()));
        }
        gate.add_permits(1);
        assert_eq!(get(7).await.unwrap(), Ok(3));
    }

    #[tokio::test]
    async fn a_query_that_panics_frees_its_key() {
        let calls = Arc::new(AtomicUsize::new(0));
        let coalescer = Coalescer::new({
            let calls = Arc::clone(&calls);
            move |_key: u8| {
                let call = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    assert!(call > 0, "the first query panics");
                    Ok::<_, String>(call)
                }
            }
        });
        assert!(coalescer.get(0).await.is_none());
        assert_eq!(answered(coalescer.get(0).await), Ok(1));
    }
}
