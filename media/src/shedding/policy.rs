//! When to shed a rung and when to try it again, from one reading a second of how many frames
//! the encoders dropped and how many the decoder made. Pure: no clock, no GStreamer.
//!
//! Falling behind means the dropped frames over the last [`WINDOW_TICKS`] readings reach
//! `drop_percent` of the decoded ones (two at least), in two readings of them at least. Then the top rung still encoded is shed;
//! never the lowest, so viewers always have a picture. After any change the readings are ignored
//! for `settle_ticks` (the change waits for the next segment boundary and the queues drain).
//! A shed rung is tried again after `restore_after` quiet readings; if the encoders fall behind
//! within [`PROBATION_TICKS`] of that, it is shed again and the wait doubles, up to
//! [`MAX_RESTORE_AFTER_TICKS`]; a try that lasts resets the wait.

use std::collections::VecDeque;

/// Readings (seconds) the drop rate is measured over.
pub const WINDOW_TICKS: usize = 3;
/// How long after a restore falling behind again counts as the restore's fault.
pub const PROBATION_TICKS: u64 = 15;
pub const MAX_RESTORE_AFTER_TICKS: u64 = 600;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Stop encoding the top rung still encoded.
    Shed,
    /// Encode the lowest shed rung again.
    Restore,
}

#[derive(Clone, Copy, Debug)]
pub struct PolicySettings {
    /// Transcoded rungs in the ladder.
    pub rungs: usize,
    pub drop_percent: u32,
    pub restore_after: u64,
    pub settle_ticks: u64,
}

#[derive(Debug)]
pub struct ShedPolicy {
    settings: PolicySettings,
    shed: usize,
    /// (dropped, decoded) of the last readings, newest last.
    window: VecDeque<(u64, u64)>,
    /// Readings left to ignore after a change.
    settling: u64,
    /// Readings in a row that did not fall behind.
    quiet: u64,
    restore_after: u64,
    /// Set after a restore until it has lasted [`PROBATION_TICKS`] quiet readings.
    on_probation: bool,
}

impl ShedPolicy {
    pub fn new(settings: PolicySettings) -> Self {
        ShedPolicy {
            settings,
            shed: 0,
            window: VecDeque::with_capacity(WINDOW_TICKS),
            settling: settings.settle_ticks,
            quiet: 0,
            restore_after: settings.restore_after,
            on_probation: false,
        }
    }

    /// How many of the top rungs are shed.
    pub fn shed(&self) -> usize {
        self.shed
    }

    /// One reading: frames dropped and decoded since the last one.
    pub fn tick(&mut self, dropped: u64, decoded: u64) -> Option<Change> {
        // What happens while a change waits for its boundary and the queues drain says nothing.
        if self.settling > 0 {
            self.settling -= 1;
            return None;
        }
        if self.window.len() == WINDOW_TICKS {
            self.window.pop_front();
        }
        self.window.push_back((dropped, decoded));
        if self.falling_behind() {
            self.quiet = 0;
            if self.on_probation {
                self.on_probation = false;
                self.restore_after = (self.restore_after * 2).min(MAX_RESTORE_AFTER_TICKS);
            }
            if self.shed + 1 < self.settings.rungs {
                self.shed += 1;
                return Some(self.changed(Change::Shed));
            }
            return None;
        }
        self.quiet += 1;
        if self.on_probation && self.quiet >= PROBATION_TICKS {
            self.on_probation = false;
            self.restore_after = self.settings.restore_after;
        }
        if self.shed > 0 && self.quiet >= self.restore_after {
            self.shed -= 1;
            self.on_probation = true;
            return Some(self.changed(Change::Restore));
        }
        None
    }

    fn falling_behind(&self) -> bool {
        let (dropped, decoded) = self.window.iter().fold((0, 0), |(d, f), (dd, df)| (d + dd, f + df));
        // A single bad second (a job starting, a page-cache flush) is a hiccup, not a trend.
        let seconds_with_drops = self.window.iter().filter(|(d, _)| *d > 0).count();
        self.window.len() == WINDOW_TICKS
            && seconds_with_drops >= 2
            && dropped >= 2
            && dropped * 100 >= decoded * u64::from(self.settings.drop_percent)
    }

    fn changed(&mut self, change: Change) -> Change {
        self.quiet = 0;
        self.window.clear();
        self.settling = self.settings.settle_ticks;
        change
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(rungs: usize) -> ShedPolicy {
        ShedPolicy::new(PolicySettings { rungs, drop_percent: 5, restore_after: 10, settle_ticks: 4 })
    }

    /// Feeds `n` readings; returns the changes with the reading (1-based) that made them.
    fn run(p: &mut ShedPolicy, n: usize, dropped: u64, decoded: u64) -> Vec<(usize, Change)> {
        (1..=n).filter_map(|i| p.tick(dropped, decoded).map(|c| (i, c))).collect()
    }

    #[test]
    fn keeping_up_changes_nothing() {
        let mut p = policy(3);
        assert_eq!(run(&mut p, 100, 0, 30), vec![]);
        assert_eq!(run(&mut p, 100, 1, 30), vec![], "a frame now and then is not falling behind (1 of 90 < 5 %)");
        assert_eq!(p.shed(), 0);
    }

    #[test]
    fn one_bad_second_is_a_hiccup() {
        let mut p = policy(3);
        run(&mut p, 10, 0, 30);
        assert_eq!(run(&mut p, 1, 60, 30), vec![]);
        assert_eq!(run(&mut p, 10, 0, 30), vec![]);
        assert_eq!(run(&mut p, 2, 5, 30), vec![(2, Change::Shed)], "two in a row are a trend");
    }

    #[test]
    fn falling_behind_sheds_one_rung_at_a_time_and_never_the_lowest() {
        let mut p = policy(3);
        // 4 settling readings at start, then three to fill the window.
        assert_eq!(run(&mut p, 7, 10, 30), vec![(7, Change::Shed)]);
        // The next shed waits for the change to settle and a fresh window.
        assert_eq!(run(&mut p, 7, 10, 30), vec![(7, Change::Shed)]);
        assert_eq!(run(&mut p, 50, 10, 30), vec![], "the lowest rung stays");
        assert_eq!(p.shed(), 2);
    }

    #[test]
    fn a_shed_rung_comes_back_after_quiet_and_backs_off_when_it_fails() {
        let mut p = policy(2);
        assert_eq!(run(&mut p, 7, 10, 30), vec![(7, Change::Shed)]);
        // 4 settling, then 10 quiet readings.
        assert_eq!(run(&mut p, 14, 0, 30), vec![(14, Change::Restore)]);
        // It falls behind again: shed at once after settling, and the next try waits twice as long.
        assert_eq!(run(&mut p, 7, 10, 30), vec![(7, Change::Shed)]);
        assert_eq!(run(&mut p, 24, 0, 30), vec![(24, Change::Restore)]);
        // This try lasts: the wait is back to 10 for the next time.
        assert_eq!(run(&mut p, 4 + PROBATION_TICKS as usize, 0, 30), vec![]);
        // A third of the frames dropped for two seconds is enough, with nothing settling.
        assert_eq!(run(&mut p, 2, 10, 30), vec![(2, Change::Shed)]);
        assert_eq!(run(&mut p, 14, 0, 30), vec![(14, Change::Restore)]);
    }

    #[test]
    fn the_wait_before_a_try_is_capped() {
        let mut p = ShedPolicy::new(PolicySettings { rungs: 2, drop_percent: 5, restore_after: 200, settle_ticks: 0 });
        assert_eq!(run(&mut p, 3, 10, 30), vec![(3, Change::Shed)]);
        let mut waits = Vec::new();
        for _ in 0..4 {
            waits.push((1..=1000).find(|_| p.tick(0, 30) == Some(Change::Restore)).expect("a restore"));
            assert_eq!(run(&mut p, 3, 10, 30), vec![(3, Change::Shed)], "every try falls behind at once");
        }
        assert_eq!(waits, vec![200, 400, 600, 600]);
    }

    #[test]
    fn a_ladder_of_one_rung_is_never_shed() {
        let mut p = policy(1);
        assert_eq!(run(&mut p, 50, 30, 30), vec![]);
    }
}
