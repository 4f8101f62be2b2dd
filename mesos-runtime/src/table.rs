//! The table of live containers every runtime keeps: who is running, who asked for a kill,
//! and a watch channel per container that carries its termination to any number of waiters.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use mesos_core::ids::TaskId;
use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::error::RuntimeError;
use crate::termination::Termination;

/// One container: the runtime's handle plus the shared bits every runtime needs.
pub(crate) struct Slot<H> {
    pub task_id: TaskId,
    pub handle: H,
    kill_requested: AtomicBool,
    done: watch::Sender<Option<Termination>>,
}

impl<H> Slot<H> {
    pub(crate) fn kill_requested(&self) -> bool {
        self.kill_requested.load(Ordering::SeqCst)
    }

    pub(crate) fn request_kill(&self) {
        self.kill_requested.store(true, Ordering::SeqCst);
    }

    /// Publishes the termination (first one wins).
    pub(crate) fn finish(&self, t: Termination) {
        self.done.send_if_modified(|cur| {
            if cur.is_none() {
                tracing::info!(task = %self.task_id, state = ?t.state, message = %t.message, "container terminated");
                *cur = Some(t);
                true
            } else {
                false
            }
        });
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.done.borrow().is_some()
    }

    /// Resolves once the container has terminated.
    pub(crate) async fn terminated(&self) {
        let mut rx = self.done.subscribe();
        let _ = rx.wait_for(Option::is_some).await;
    }
}

/// Live containers by task id, with reservations for launches in flight and the abort handles
/// of the watcher tasks (aborted when the runtime is dropped: containers outlive the runtime,
/// watchers do not).
pub(crate) struct Table<H> {
    slots: Mutex<HashMap<TaskId, Arc<Slot<H>>>>,
    launching: Mutex<HashSet<TaskId>>,
    watchers: Mutex<Vec<AbortHandle>>,
}

/// Holds a task id reserved while its launch is in flight; released on drop.
pub(crate) struct Reservation<'a, H> {
    table: &'a Table<H>,
    task_id: TaskId,
}

impl<H> Drop for Reservation<'_, H> {
    fn drop(&mut self) {
        lock(&self.table.launching).remove(&self.task_id);
    }
}

// A std Mutex, not tokio's: it is never held across an await, and std's is cheaper.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<H: Send + Sync + 'static> Table<H> {
    pub(crate) fn new() -> Self {
        Table {
            slots: Mutex::new(HashMap::new()),
            launching: Mutex::new(HashSet::new()),
            watchers: Mutex::new(Vec::new()),
        }
    }

    /// Reserves `task_id` for a launch; fails if it has a container or a launch in flight.
    pub(crate) fn reserve(&self, task_id: &TaskId) -> Result<Reservation<'_, H>, RuntimeError> {
        let slots = lock(&self.slots);
        let mut launching = lock(&self.launching);
        if slots.contains_key(task_id) || !launching.insert(task_id.clone()) {
            return Err(RuntimeError::AlreadyLaunched(task_id.clone()));
        }
        Ok(Reservation {
            table: self,
            task_id: task_id.clone(),
        })
    }

    /// Adds a container; returns its slot for the watcher.
    pub(crate) fn insert(&self, task_id: TaskId, handle: H) -> Arc<Slot<H>> {
        let (done, _) = watch::channel(None);
        let slot = Arc::new(Slot {
            task_id: task_id.clone(),
            handle,
            kill_requested: AtomicBool::new(false),
            done,
        });
        lock(&self.slots).insert(task_id, slot.clone());
        slot
    }

    /// Spawns a watcher task, remembered so that dropping the runtime aborts it.
    pub(crate) fn spawn_watcher<F>(&self, fut: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let handle = tokio::spawn(fut).abort_handle();
        let mut watchers = lock(&self.watchers);
        watchers.retain(|h| !h.is_finished());
        watchers.push(handle);
    }

    pub(crate) fn get(&self, task_id: &TaskId) -> Result<Arc<Slot<H>>, RuntimeError> {
        lock(&self.slots)
            .get(task_id)
            .cloned()
            .ok_or_else(|| RuntimeError::UnknownContainer(task_id.clone()))
    }

    /// Every container in the table.
    pub(crate) fn all(&self) -> Vec<Arc<Slot<H>>> {
        lock(&self.slots).values().cloned().collect()
    }

    pub(crate) fn contains(&self, task_id: &TaskId) -> bool {
        lock(&self.slots).contains_key(task_id)
    }

    /// Waits for the termination, then forgets the container. `on_collected` runs once, for the
    /// waiter that removed it (e.g. to delete the checkpoint).
    pub(crate) async fn wait(
        &self,
        task_id: &TaskId,
        on_collected: impl FnOnce(),
    ) -> Result<Termination, RuntimeError> {
        let (slot_ptr, mut rx) = {
            let slot = self.get(task_id)?;
            (Arc::as_ptr(&slot) as usize, slot.done.subscribe())
        };
        let t = match rx.wait_for(Option::is_some).await {
            Ok(t) => t.clone(),
            Err(_) => None,
        };
        let Some(t) = t else {
            return Err(RuntimeError::Shutdown(task_id.clone()));
        };
        let removed = {
            let mut slots = lock(&self.slots);
            match slots.get(task_id) {
                Some(s) if Arc::as_ptr(s) as usize == slot_ptr => slots.remove(task_id).is_some(),
                _ => false,
            }
        };
        if removed {
            on_collected();
        }
        Ok(t)
    }
}

impl<H> Drop for Table<H> {
    fn drop(&mut self) {
        for h in lock(&self.watchers).drain(..) {
            h.abort();
        }
    }
}
