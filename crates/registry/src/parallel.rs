//! A few worker threads over a list of blobs. The first failure stops the
//! others at their next read (they return `Cancelled`), and is the error
//! reported.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::error::RegistryError;

/// Run `work(item, cancelled)` for every item on up to `jobs` threads.
pub(crate) fn run<T: Sync>(
    items: &[T],
    jobs: usize,
    work: impl Fn(&T, &AtomicBool) -> Result<(), RegistryError> + Sync,
) -> Result<(), RegistryError> {
    let next = AtomicUsize::new(0);
    let cancelled = AtomicBool::new(false);
    let first: Mutex<Option<RegistryError>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= items.len() || cancelled.load(Ordering::Relaxed) {
                    break;
                }
                if let Err(e) = work(&items[i], &cancelled) {
                    cancelled.store(true, Ordering::Relaxed);
                    let mut slot = first.lock().unwrap_or_else(|p| p.into_inner());
                    // A real cause beats the `Cancelled` of the others.
                    if slot.is_none() || matches!(*slot, Some(RegistryError::Cancelled)) {
                        *slot = Some(e);
                    }
                }
            });
        }
    });
    match first.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
