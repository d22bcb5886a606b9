//! The CPU-aware ladder: when a live ladder's encoders cannot keep real time, its top rung stops
//! being encoded on purpose, instead of every rung dropping frames; it is encoded again once the
//! others keep up.
//!
//! Three parts: the policy (`policy.rs`, pure) reads once a second how many frames the encoders
//! dropped and the decoder made, and says shed or restore; the [`Gates`], consulted by the probe
//! in front of each rung's scaler that forces keyframes (`pipeline.rs`), drop a shed rung's
//! frames there, so its scaler and x264 do no work; and every change is made at a segment
//! boundary and announced to the recording as [`RecordingEvent::SourceSwitch`]es: a shed rung's
//! rendition goes on with the highest rung still encoded below it (its stand-in), and the master
//! playlist and the stream's health say which are shed (`recording/sources.rs`). The lowest rung
//! is never shed. Files are never shed: their queues block instead of dropping.

pub mod policy;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::events::{MediaTime, RecordingEvent};
use crate::pipeline::PipelineStats;
use policy::{PolicySettings, ShedPolicy};

#[derive(Clone, Copy, Debug)]
pub struct ShedSettings {
    pub drop_percent: u32,
    pub restore_after: Duration,
}

/// The gates of one live pipeline's transcoded rungs, lowest first.
pub struct Gates {
    rungs: Vec<Arc<str>>,
    state: Mutex<GateState>,
    events: mpsc::Sender<RecordingEvent>,
}

#[derive(Debug)]
struct GateState {
    /// What each rung's gate does now, and what the policy asks of it from the next boundary.
    open: Vec<bool>,
    wanted: Vec<bool>,
}

impl GateState {
    /// Which rung's frames a rendition shows: its own, or the highest open one below it.
    fn sources(&self) -> Vec<usize> {
        (0..self.open.len()).map(|i| (0..=i).rev().find(|j| self.open[*j]).unwrap_or(0)).collect()
    }
}

impl Gates {
    pub fn new(rungs: Vec<Arc<str>>, events: mpsc::Sender<RecordingEvent>) -> Arc<Gates> {
        let n = rungs.len();
        let state = Mutex::new(GateState { open: vec![true; n], wanted: vec![true; n] });
        Arc::new(Gates { rungs, state, events })
    }

    /// A frame of rung `index` reached its scaler; `boundary`: it is the rung's first past that
    /// segment boundary. Whether the frame goes on to the scaler and encoder.
    pub fn frame(&self, index: usize, boundary: Option<MediaTime>) -> bool {
        if index == 0 {
            return true;
        }
        if let Some(at) = boundary {
            self.boundary(index, at);
        }
        self.state.lock().map_or(true, |s| s.open[index])
    }

    /// Rung `index` crossed the segment boundary at `at`: the change the policy asked for, if
    /// any, is made here.
    fn boundary(&self, index: usize, at: MediaTime) {
        let switches = {
            let Ok(mut state) = self.state.lock() else { return };
            if state.open[index] == state.wanted[index] {
                return;
            }
            let before = state.sources();
            state.open[index] = state.wanted[index];
            let after = state.sources();
            let shed = !state.open[index];
            before
                .iter()
                .zip(&after)
                .enumerate()
                .filter(|(_, (b, a))| b != a)
                .map(|(rung, (b, a))| RecordingEvent::SourceSwitch {
                    rung: self.rungs[rung].clone(),
                    source: self.rungs[*a].clone(),
                    at,
                    // The gate is upstream of the encoder on the same thread, and zerolatency x264
                    // holds no frames: everything before this boundary has been sent already.
                    old_source_ended: shed && *b == index,
                })
                .collect::<Vec<_>>()
        };
        let rung = &self.rungs[index];
        match switches.first() {
            Some(RecordingEvent::SourceSwitch { old_source_ended: true, .. }) => {
                tracing::warn!(%rung, "the encoders cannot keep real time: this rung is shed; its viewers get the next rung's picture")
            }
            _ => tracing::info!(%rung, "the encoders keep up again: this rung is encoded again"),
        }
        for switch in switches {
            // Closed: the recording is gone, nothing is listening.
            let _ = self.events.blocking_send(switch);
        }
    }

    /// The policy's wish: the top `count` rungs shed.
    fn shed_top(&self, count: usize) {
        if let Ok(mut state) = self.state.lock() {
            let n = state.wanted.len();
            for (i, wanted) in state.wanted.iter_mut().enumerate() {
                *wanted = i == 0 || i + count < n;
            }
        }
    }
}

/// Starts the policy for `gates`; nothing to do for a single rung. The task runs until the
/// returned handle is aborted.
pub fn govern(
    gates: Arc<Gates>,
    stats: Arc<PipelineStats>,
    settings: ShedSettings,
    segment_duration: Duration,
) -> Option<tokio::task::JoinHandle<()>> {
    if gates.rungs.len() < 2 {
        return None;
    }
    let policy = ShedPolicy::new(PolicySettings {
        rungs: gates.rungs.len(),
        drop_percent: settings.drop_percent,
        restore_after: settings.restore_after.as_secs().max(1),
        settle_ticks: segment_duration.as_secs() + 3,
    });
    Some(tokio::spawn(read_load(gates, stats, policy)))
}

/// Reads the counters once a second and hands them to the policy.
async fn read_load(gates: Arc<Gates>, stats: Arc<PipelineStats>, mut policy: ShedPolicy) {
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let read = || (stats.dropped_frames.load(Ordering::Relaxed), stats.decoded_frames.load(Ordering::Relaxed));
    let mut last = read();
    loop {
        ticks.tick().await;
        let now = read();
        let (dropped, decoded) = (now.0.saturating_sub(last.0), now.1.saturating_sub(last.1));
        last = now;
        if let Some(change) = policy.tick(dropped, decoded) {
            tracing::debug!(?change, dropped, decoded, shed = policy.shed(), "ladder load");
            gates.shed_top(policy.shed());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gates(n: usize) -> (Arc<Gates>, mpsc::Receiver<RecordingEvent>) {
        let (events, rx) = mpsc::channel(16);
        let rungs = ["low", "mid", "high"].iter().take(n).map(|s| Arc::from(*s)).collect();
        (Gates::new(rungs, events), rx)
    }

    fn switches(rx: &mut mpsc::Receiver<RecordingEvent>) -> Vec<(String, String, MediaTime, bool)> {
        let mut out = Vec::new();
        while let Ok(event) = rx.try_recv() {
            if let RecordingEvent::SourceSwitch { rung, source, at, old_source_ended } = event {
                out.push((rung.to_string(), source.to_string(), at, old_source_ended));
            }
        }
        out
    }

    #[test]
    fn a_gate_changes_only_at_its_next_boundary_and_announces_every_moved_rendition() {
        let (gates, mut rx) = gates(3);
        gates.shed_top(1);
        assert!(gates.frame(2, None), "nothing changes before the boundary");
        assert!(gates.frame(1, Some(20)));
        assert_eq!(switches(&mut rx), vec![], "mid was not asked to change");
        assert!(!gates.frame(2, Some(20)), "the boundary's frame is the first one shed");
        assert_eq!(switches(&mut rx), vec![("high".into(), "mid".into(), 20, true)]);
        assert!(!gates.frame(2, None));
        // Mid goes too: high moves down with it.
        gates.shed_top(2);
        assert!(!gates.frame(1, Some(40)));
        assert_eq!(switches(&mut rx), vec![("mid".into(), "low".into(), 40, true), ("high".into(), "low".into(), 40, true)]);
        // Mid comes back: high follows it; the old source (low) goes on, so its end is waited for.
        gates.shed_top(1);
        assert!(gates.frame(1, Some(60)), "the boundary's frame is the first one encoded again");
        assert_eq!(switches(&mut rx), vec![("mid".into(), "mid".into(), 60, false), ("high".into(), "mid".into(), 60, false)]);
    }

    #[test]
    fn the_lowest_rung_is_always_open() {
        let (gates, _rx) = gates(2);
        gates.shed_top(5);
        assert!(gates.frame(0, Some(10)));
        assert!(gates.frame(0, None));
    }
}
