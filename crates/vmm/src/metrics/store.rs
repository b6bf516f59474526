//! The two kinds of counters, Firecracker's: [`SharedIncMetric`] counts
//! events and is flushed as the delta since the previous flush;
//! [`SharedStoreMetric`] holds a value (a duration, a size) and is flushed
//! as it is. Both are lock-free atomics any thread may update; only the
//! VMM thread flushes ([`super::Metrics::flush`]).
//!
//! [`metric_group!`] declares a group of them (`vcpu`, `block`, …): a
//! struct with one counter per field, a `const fn new`, and a `take` that
//! reads every field for a flush, in declaration order.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::ser::{Serialize, SerializeMap, Serializer};

/// A counter of events, flushed as the delta since the last flush.
///
/// Two atomics, as in Firecracker: the running count, only ever
/// incremented by the threads that see the events, and the count at the
/// last flush, only written by the flushing thread. Incrementing never
/// waits for a flush and a flush never resets what another thread writes.
#[derive(Debug, Default)]
pub struct SharedIncMetric {
    count: AtomicU64,
    flushed: AtomicU64,
}

impl SharedIncMetric {
    /// A counter at zero.
    pub const fn new() -> Self {
        SharedIncMetric {
            count: AtomicU64::new(0),
            flushed: AtomicU64::new(0),
        }
    }

    /// Counts one event.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Counts `n` events (or bytes).
    pub fn add(&self, n: u64) {
        // Relaxed: a counter orders nothing else; fetch_add is still one
        // atomic read-modify-write, so no increment is lost.
        self.count.fetch_add(n, Ordering::Relaxed);
    }

    /// Everything counted since the VMM started.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// What was counted since the previous call, which it marks as
    /// flushed. Only the flushing thread calls it.
    pub fn take_delta(&self) -> u64 {
        let now = self.count.load(Ordering::Relaxed);
        let before = self.flushed.swap(now, Ordering::Relaxed);
        now.wrapping_sub(before)
    }
}

/// A value, flushed as it is (not reset).
#[derive(Debug, Default)]
pub struct SharedStoreMetric(AtomicU64);

impl SharedStoreMetric {
    /// A value of zero.
    pub const fn new() -> Self {
        SharedStoreMetric(AtomicU64::new(0))
    }

    /// Sets the value.
    pub fn store(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }

    /// The value.
    pub fn fetch(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What a flush reads from a counter.
pub trait Flush {
    /// The number written for this counter in a flush.
    fn flush_value(&self) -> u64;
}

impl Flush for SharedIncMetric {
    fn flush_value(&self) -> u64 {
        self.take_delta()
    }
}

impl Flush for SharedStoreMetric {
    fn flush_value(&self) -> u64 {
        self.fetch()
    }
}

/// One group's values in a flush, field names in declaration order.
pub type GroupValues = Vec<(&'static str, u64)>;

/// Declares a group of counters: the struct, `new` and `take`.
macro_rules! metric_group {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* $field:ident : $kind:ident ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Default)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $crate::metrics::store::$kind, )*
        }

        impl $name {
            /// Every counter at zero.
            pub const fn new() -> Self {
                $name { $( $field: $crate::metrics::store::$kind::new(), )* }
            }

            /// Reads every counter for a flush (deltas for counts).
            pub fn take(&self) -> $crate::metrics::store::GroupValues {
                use $crate::metrics::store::Flush;
                vec![ $( (stringify!($field), self.$field.flush_value()), )* ]
            }
        }
    };
}
pub(crate) use metric_group;

/// One flushed line: the time, then each group's values. Plain data:
/// serializing it changes no counter (the deltas were taken when it was
/// made), so it can be printed, compared and retried freely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flushed {
    /// Milliseconds since the Unix epoch at the flush.
    pub utc_timestamp_ms: u64,
    /// `(group, values)` in the order they are written.
    pub groups: Vec<(&'static str, GroupValues)>,
}

impl Flushed {
    /// The values of `group`, if it is in the flush.
    pub fn group(&self, group: &str) -> Option<&GroupValues> {
        self.groups
            .iter()
            .find(|(g, _)| *g == group)
            .map(|(_, v)| v)
    }

    /// One value, if it is in the flush.
    pub fn value(&self, group: &str, field: &str) -> Option<u64> {
        self.group(group)?
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, v)| *v)
    }
}

struct Fields<'a>(&'a GroupValues);

impl Serialize for Fields<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl Serialize for Flushed {
    /// `{"utc_timestamp_ms": …, "group": {"field": n, …}, …}`: the
    /// timestamp first, as in Firecracker.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.groups.len() + 1))?;
        map.serialize_entry("utc_timestamp_ms", &self.utc_timestamp_ms)?;
        for (group, values) in &self.groups {
            map.serialize_entry(group, &Fields(values))?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    metric_group! {
        /// A group for the tests.
        pub struct TestGroup {
            /// A count.
            events: SharedIncMetric,
            /// A value.
            size: SharedStoreMetric,
        }
    }

    #[test]
    fn counts_are_deltas_since_the_last_flush_and_values_are_kept() {
        let g = TestGroup::new();
        assert_eq!(g.take(), vec![("events", 0), ("size", 0)]);
        g.events.inc();
        g.events.add(4);
        g.size.store(7);
        assert_eq!(g.take(), vec![("events", 5), ("size", 7)]);
        // Nothing new: the count flushes as 0, the value stays.
        assert_eq!(g.take(), vec![("events", 0), ("size", 7)]);
        g.events.inc();
        assert_eq!(g.take(), vec![("events", 1), ("size", 7)]);
        // The running total is still there for whoever wants it.
        assert_eq!(g.events.count(), 6);
    }

    #[test]
    fn increments_from_many_threads_are_all_counted_once() {
        let g = std::sync::Arc::new(TestGroup::new());
        let mut flushed = 0;
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let g = g.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        g.events.inc();
                    }
                })
            })
            .collect();
        // Flushing while the others count loses nothing and counts
        // nothing twice.
        while threads.iter().any(|t| !t.is_finished()) {
            flushed += g.events.take_delta();
        }
        for t in threads {
            t.join().expect("thread");
        }
        flushed += g.events.take_delta();
        assert_eq!(flushed, 40_000);
    }

    #[test]
    fn a_flush_serializes_as_one_json_object_with_the_timestamp_first() {
        let g = TestGroup::new();
        g.events.add(3);
        let flushed = Flushed {
            utc_timestamp_ms: 1_700_000_000_123,
            groups: vec![("test", g.take()), ("empty", Vec::new())],
        };
        let line = serde_json::to_string(&flushed).expect("json");
        assert_eq!(
            line,
            r#"{"utc_timestamp_ms":1700000000123,"test":{"events":3,"size":0},"empty":{}}"#
        );
        assert_eq!(flushed.value("test", "events"), Some(3));
        assert_eq!(flushed.value("test", "nope"), None);
        assert_eq!(flushed.value("nope", "events"), None);
        // Serializing again changes nothing: the deltas were taken once.
        assert_eq!(serde_json::to_string(&flushed).expect("json"), line);
    }
}
