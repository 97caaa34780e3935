//! The loops a gateway runs beside its requests, each a named [`Task`], and [`Tasks`], which
//! owns them and stops them in order at shutdown.
//!
//! A task is aborted when its guard is dropped, so no way out of [`crate::run`] (a failed start
//! included) leaves a loop running against state that is being torn down.
//!
//! # Layout
//! - [`limiter_prune`]: drops idle keys from the per-IP and per-user token buckets.
//! - [`sold_out`]: sold-out marks checked against Redis, so a returned unit sells again.
//! - [`expiry`]: the expiry sweeper — unpaid orders past their deadline expire, and stock
//!   transfers a crash left half done are finished.
//! - [`hangup`]: SIGHUP reloads the config file.
//! - Started here from their own modules: the retirement task ([`crate::retirement::spawn`])
//!   and the archive task ([`crate::archive::spawn`]).
//! - Registered by [`crate::run`]: the admin listener ([`crate::admin::serve`]), and the node
//!   lease renewal ([`crate::node_lease::NodeLease::keep`]), a [`Task`] of its own because it
//!   runs from before the store opens until the lease is released, after every other task.

pub mod expiry;
pub mod hangup;
pub mod limiter_prune;
pub mod sold_out;

use std::future::Future;
use std::sync::Arc;

use tokio::signal::unix::Signal;
use tokio::task::JoinHandle;

use crate::app::App;

/// Starts every background loop of a running gateway, in the order [`Tasks::stop`] reverses.
/// `hangups` is the SIGHUP stream registered at the very start (see [`hangup::register`]).
pub fn start(app: &Arc<App>, hangups: Option<Signal>) -> Tasks {
    let mut tasks = Tasks::default();
    tasks.push(limiter_prune::spawn(app));
    tasks.push(sold_out::spawn(app));
    tasks.push(expiry::spawn(app));
    tasks.push(hangup::spawn(app, hangups));
    tasks.push(Task::new("retirement", crate::retirement::spawn(app)));
    if let Some(archive) = crate::archive::spawn(app) {
        tasks.push(Task::new("archive", archive));
    }
    tasks
}

/// A background task under a name (for the logs); aborted when dropped.
#[derive(Debug)]
pub struct Task {
    name: &'static str,
    handle: JoinHandle<()>,
}

impl Task {
    /// Runs `work` on the runtime as the task called `name`.
    pub fn spawn(name: &'static str, work: impl Future<Output = ()> + Send + 'static) -> Self {
        Self::new(name, tokio::spawn(work))
    }

    /// Takes charge of a task spawned elsewhere.
    pub fn new(name: &'static str, handle: JoinHandle<()>) -> Self {
        Self { name, handle }
    }

    /// What the task is called.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Aborts the task and waits until it has stopped: past this, nothing of it runs any more
    /// (an abort alone lets a task on another worker finish its current poll), and every
    /// handle it held on shared state is dropped.
    pub async fn stop(mut self) {
        self.handle.abort();
        match (&mut self.handle).await {
            Err(e) if e.is_panic() => {
                tracing::error!(task = self.name, "background task had panicked");
            }
            Ok(()) | Err(_) => tracing::debug!(task = self.name, "background task stopped"),
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// The background tasks of a gateway, in the order they were started.
#[derive(Debug, Default)]
pub struct Tasks {
    started: Vec<Task>,
}

impl Tasks {
    /// Adds a task; it is stopped before every task added earlier.
    pub fn push(&mut self, task: Task) {
        self.started.push(task);
    }

    /// The tasks' names, in the order they were started.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.started.iter().map(Task::name)
    }

    /// Stops every task, the last started first (a task may lean on one started before it,
    /// never on one started after), each stopped before the next is aborted.
    pub async fn stop(mut self) {
        while let Some(task) = self.started.pop() {
            task.stop().await;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::{Task, Tasks};

    /// Records its name when its future is dropped, i.e. when its task has stopped.
    struct Stopped(&'static str, Arc<Mutex<Vec<&'static str>>>);

    impl Drop for Stopped {
        fn drop(&mut self) {
            self.1.lock().unwrap().push(self.0);
        }
    }

    fn forever(name: &'static str, log: &Arc<Mutex<Vec<&'static str>>>) -> Task {
        let stopped = Stopped(name, log.clone());
        Task::spawn(name, async move {
            let _stopped = stopped;
            std::future::pending::<()>().await;
        })
    }

    #[tokio::test]
    async fn stop_stops_every_task_last_started_first() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Tasks::default();
        for name in ["first", "second", "third"] {
            tasks.push(forever(name, &log));
        }
        assert_eq!(
            tasks.names().collect::<Vec<_>>(),
            ["first", "second", "third"]
        );
        tasks.stop().await;
        assert_eq!(*log.lock().unwrap(), ["third", "second", "first"]);
    }

    #[tokio::test]
    async fn a_dropped_guard_aborts_its_tasks() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Tasks::default();
        tasks.push(forever("only", &log));
        drop(tasks);
        for _ in 0..100 {
            if !log.lock().unwrap().is_empty() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(*log.lock().unwrap(), ["only"]);
    }

    #[tokio::test]
    async fn a_task_that_already_ended_stops_quietly() {
        let task = Task::spawn("done", async {});
        tokio::task::yield_now().await;
        task.stop().await;
    }
}
