//! The threads tool calls continue on, apart from the threads that speak the protocol.
//!
//! A guest that spins until its timeout holds the thread it runs on, yielding only at each epoch tick. On the
//! threads that also read requests and write responses, two such guests on 2 CPUs delayed every step of every
//! other client's request (BENCHMARKS.md: an HTTP call went from 240 µs to 17 ms p50). A call therefore starts on
//! the protocol thread that received it and, if it does not finish in that first step (it yielded at an epoch
//! tick, or waits for I/O or a timer), continues on a runtime of its own. A small call finishes in its first step
//! and never pays the hop between threads (about 40 µs on this machine); a spinning guest holds a protocol
//! thread for at most one epoch tick, then competes with the protocol only for CPU time, which the kernel shares.

use std::future::Future;
use std::task::Poll;
use tokio::runtime::{Handle, Runtime};
use tokio::task::{JoinError, JoinHandle};

/// A multi-threaded tokio runtime, one worker per CPU, for guest calls.
pub struct GuestThreads {
    handle: Handle,
    /// Owned here; taken when dropped, to shut it down without blocking (dropping a runtime in async code would
    /// wait for its threads).
    runtime: Option<Runtime>,
}

impl GuestThreads {
    /// Start the worker threads (`are-guest`).
    ///
    /// # Errors
    /// When the threads cannot be started.
    pub fn start() -> std::io::Result<GuestThreads> {
        let workers = std::thread::available_parallelism().map_or(2, usize::from);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("are-guest")
            .enable_all()
            .build()?;
        Ok(GuestThreads {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    /// Run `call`: its first step here, the rest (if any) on the guest threads. Dropping the returned future
    /// (the client went away) cancels the call, as it would without the hop.
    ///
    /// # Errors
    /// When the call panicked on the guest threads.
    pub async fn run<F>(&self, call: F) -> Result<F::Output, JoinError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let mut call = Box::pin(call);
        if let Poll::Ready(output) =
            std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await
        {
            return Ok(output);
        }
        let mut task = AbortOnDrop(self.handle.spawn(call));
        (&mut task.0).await
    }
}

impl Drop for GuestThreads {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Aborts its task when dropped before the task ends.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn runs_calls_on_its_own_threads_and_cancels_dropped_ones() {
        let guests = GuestThreads::start().unwrap();
        let here = std::thread::current().id();
        // A call that finishes in its first step runs where it was asked for.
        let thread = guests
            .run(async { std::thread::current().id() })
            .await
            .unwrap();
        assert_eq!(thread, here);
        // One that waits continues on the guest threads.
        let name = guests
            .run(async {
                tokio::task::yield_now().await;
                std::thread::current().name().map(str::to_string)
            })
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("are-guest"));

        // A dropped call is cancelled: its future never gets past its sleep.
        let finished = Arc::new(AtomicBool::new(false));
        let flag = finished.clone();
        let call = guests.run(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            flag.store(true, Ordering::SeqCst);
        });
        let _ = tokio::time::timeout(Duration::from_millis(20), call).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(!finished.load(Ordering::SeqCst));

        // A panicking call is an error, not a crash.
        let panicked = guests
            .run(async {
                tokio::task::yield_now().await;
                panic!("guest call bug")
            })
            .await;
        assert!(panicked.unwrap_err().is_panic());
        drop(guests);
    }
}
