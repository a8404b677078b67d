//! The bounded table of a proxy's worker names ([`WorkerRegistry`]): looked up under a mutex at authorize
//! time only; past its cap, idle names make room or new names share one `other` entry.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::clock::millis;
use super::worker::WorkerStats;

/// Worker names of one proxy, bounded: past `cap` distinct names, new names share one `other` entry, so a
/// hostile miner cannot grow the number of series. Looked up at authorize time only (a mutex, not on the hot
/// path); the miner keeps the `Arc` and updates it without locks.
#[derive(Debug)]
pub struct WorkerRegistry {
    cap: usize,
    names: Mutex<Names>,
    other: Arc<WorkerStats>,
    /// Authorizations counted in `other` because the registry was full.
    pub overflowed: AtomicU64,
}

#[derive(Debug, Default)]
struct Names {
    map: HashMap<Box<str>, Arc<WorkerStats>>,
    next_evict_scan: u64,
}

/// A name nobody uses for this long may be dropped to make room for a new one.
const WORKER_RETAIN_MS: u64 = 3600 * 1000;

impl Default for WorkerRegistry {
    fn default() -> WorkerRegistry {
        WorkerRegistry::new(WorkerRegistry::DEFAULT_CAP)
    }
}

impl WorkerRegistry {
    /// Default number of names kept.
    pub const DEFAULT_CAP: usize = 1000;
    /// The name of the overflow bucket (also the label value in metrics).
    pub const OTHER: &'static str = super::worker::OTHER;

    /// A registry keeping at most `cap` names.
    pub fn new(cap: usize) -> WorkerRegistry {
        let now = Instant::now();
        WorkerRegistry {
            cap,
            names: Mutex::new(Names::default()),
            other: Arc::new(WorkerStats::new(WorkerRegistry::OTHER, now)),
            overflowed: AtomicU64::new(0),
        }
    }

    /// The cap.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// The stats for `name`, counting one more miner connected under it (call `detach` when it leaves).
    /// Beyond the cap, names nobody has used for an hour are dropped to make room; failing that the shared
    /// `other` entry is returned.
    pub fn attach(&self, name: &str, now: Instant) -> Arc<WorkerStats> {
        let w = self.lookup(name, now);
        w.connected.fetch_add(1, Relaxed);
        w
    }

    fn lookup(&self, name: &str, now: Instant) -> Arc<WorkerStats> {
        if name == WorkerRegistry::OTHER {
            return self.other.clone();
        }
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = names.map.get(name) {
            return w.clone();
        }
        let ms = millis(now);
        if names.map.len() >= self.cap && ms >= names.next_evict_scan {
            // At most one scan a second, so a flood of new names costs little.
            names.next_evict_scan = ms + 1000;
            let idle = names
                .map
                .iter()
                .find(|(_, w)| {
                    Arc::strong_count(w) == 1
                        && ms.saturating_sub(w.last_activity()) >= WORKER_RETAIN_MS
                })
                .map(|(k, _)| k.clone());
            if let Some(k) = idle {
                names.map.remove(&k);
            }
        }
        if names.map.len() >= self.cap {
            self.overflowed.fetch_add(1, Relaxed);
            return self.other.clone();
        }
        let w = Arc::new(WorkerStats::new(name, now));
        names.map.insert(name.into(), w.clone());
        w
    }

    /// Names tracked (the `other` entry not included).
    pub fn len(&self) -> usize {
        self.names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .len()
    }

    /// True when no name is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every tracked worker sorted by name, then the `other` entry (for scrapes; takes the lock briefly).
    pub fn all(&self) -> Vec<Arc<WorkerStats>> {
        let mut v: Vec<Arc<WorkerStats>> = self
            .names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.name().cmp(b.name()));
        v.push(self.other.clone());
        v
    }

    /// The overflow entry.
    pub fn other(&self) -> &Arc<WorkerStats> {
        &self.other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn registry_is_bounded_and_shares_names() {
        let reg = WorkerRegistry::new(3);
        let now = Instant::now();
        let a = reg.attach("a", now);
        let a2 = reg.attach("a", now);
        assert!(Arc::ptr_eq(&a, &a2));
        assert_eq!(a.connected.load(Relaxed), 2);
        let ws: Vec<_> = (0..10).map(|i| reg.attach(&format!("w{i}"), now)).collect();
        assert_eq!(reg.len(), 3);
        assert!(ws[5].is_other());
        assert_eq!(reg.overflowed.load(Relaxed), 8);
        assert!(reg.attach(WorkerRegistry::OTHER, now).is_other());
        assert_eq!(reg.all().len(), 4);
        a.detach();
        a2.detach();
        assert_eq!(a.connected.load(Relaxed), 0);
    }

    #[test]
    fn idle_names_make_room() {
        let reg = WorkerRegistry::new(2);
        let now = Instant::now();
        drop(reg.attach("old1", now));
        let held = reg.attach("old2", now);
        let later = now + Duration::from_secs(2 * 3600);
        let n = reg.attach("new", later);
        assert!(
            !n.is_other(),
            "an idle, unheld name is dropped for a new one"
        );
        assert!(reg.attach("newer", later).is_other(), "a held name is kept");
        assert_eq!(held.name(), "old2");
    }
}
