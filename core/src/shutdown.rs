//! The one shutdown primitive every task selects on.
//!
//! [`Shutdown`] pairs a cancellation signal (fired once, on SIGINT/SIGTERM or by a test) with a task
//! tracker that tells when the last tracked task has finished, so the binary can drain: stop
//! accepting, let live work finish cleanly, then exit.

use std::future::Future;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    tasks: TaskTracker,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every task to stop. Calling it again does nothing.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once shutdown has been asked for.
    pub fn signalled(&self) -> impl Future<Output = ()> + Send + 'static {
        self.token.clone().cancelled_owned()
    }

    /// Runs `task` on the runtime and counts it among the tasks [`Shutdown::drained`] waits for.
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tasks.spawn(task)
    }

    /// [`Shutdown::spawn`] on the runtime of `handle`.
    pub fn spawn_on<F>(&self, task: F, handle: &tokio::runtime::Handle) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tasks.spawn_on(task, handle)
    }

    /// Resolves when shutdown was asked for and every tracked task has returned.
    pub async fn drained(&self) {
        self.token.cancelled().await;
        self.tasks.close();
        self.tasks.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn drained_waits_for_tasks_to_finish_after_the_signal() {
        let shutdown = Shutdown::new();
        let finished = Arc::new(AtomicBool::new(false));
        let (signal, flag) = (shutdown.signalled(), finished.clone());
        shutdown.spawn(async move {
            signal.await;
            tokio::task::yield_now().await;
            flag.store(true, Ordering::SeqCst);
        });
        shutdown.trigger();
        shutdown.drained().await;
        assert!(finished.load(Ordering::SeqCst));
    }
}
