//! Event loops of their own for viewers' connections: one thread per core, each a single-threaded
//! runtime that answers the `/hls/` requests of the connections given to it, in the order they
//! become readable, and never hands one to another thread.
//!
//! On the shared runtime a thousand viewers' connections moved between its workers: one worker's
//! poll for readiness woke more connection tasks than its own queue held, the rest waited in the
//! shared queue or were stolen, and the slowest requests waited behind several rounds of others
//! (the playlist p99 at 1,000 connections was 1.34–1.56× nginx's, whose workers each keep their own
//! connections; docs/performance.md §8). The listener still accepts on the shared runtime, where it
//! counts and admits connections, then gives each new one to the next loop in turn. A connection
//! that asks for anything but `/hls/` goes back to the shared runtime and to hyper
//! (`http_server.rs`).
//!
//! What a request needs from the node's connection pools (a video row, a segment from S3, a live
//! answer from another node) is fetched on the shared runtime (`origin/src/pooled_io.rs`), so that
//! no pooled socket is tied to a viewer thread's reactor. The loops run for the rest of the
//! process: stopping is per connection, each one tracked by the server's `Shutdown` and closed as
//! on the shared runtime; an idle loop costs a parked thread.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;

/// The loops, handed out in turn.
pub struct HlsLoops {
    handles: Vec<Handle>,
    next: AtomicUsize,
}

impl HlsLoops {
    /// Starts `threads` loops, or one per core when `threads` is 0.
    pub fn start(threads: usize) -> io::Result<Self> {
        let count = match threads {
            0 => ferrocast_core::cores::available(),
            n => n,
        };
        let handles = (0..count).map(start_loop).collect::<io::Result<_>>()?;
        Ok(Self { handles, next: AtomicUsize::new(0) })
    }

    /// The loop the next connection goes to.
    pub fn next(&self) -> &Handle {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        &self.handles[turn % self.handles.len()]
    }
}

fn start_loop(index: usize) -> io::Result<Handle> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new().name(format!("ferrocast-hls-{index}")).spawn(move || {
        // Drives the loop's tasks, timers and sockets until the process exits.
        runtime.block_on(std::future::pending::<()>());
    })?;
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_go_to_each_loop_in_turn_and_run_there() {
        let loops = HlsLoops::start(2).expect("loops");
        let names: Vec<String> = (0..4)
            .map(|_| {
                let (tx, rx) = std::sync::mpsc::channel();
                loops.next().spawn(async move { tx.send(std::thread::current().name().map(String::from)) });
                rx.recv().expect("ran").expect("named thread")
            })
            .collect();
        assert_eq!(names, ["ferrocast-hls-0", "ferrocast-hls-1", "ferrocast-hls-0", "ferrocast-hls-1"]);
    }
}
