//! Which frames feed which rendition while the CPU-aware ladder has shed rungs.
//!
//! Normally every rendition is packaged from its own encoder's frames. When a rung is shed (its
//! encoder stops at a segment boundary), its rendition goes on with a lower rung's frames from
//! that boundary — its stand-in — and when it is restored, with its own frames again from the
//! boundary where its encoder started. A switch is a new init segment and a discontinuity in the
//! rendition, never a gap: its viewers keep playing, at the stand-in's size for a while.
//!
//! Segment numbers stay aligned with the other renditions because both sources cut at the same
//! forced keyframes: the old source is fed up to the boundary, the new one from it. Frames arrive
//! from several encoders in any order, so a switch waits for the old source to reach the
//! boundary (or for its end, when the old source is the rung being shed: its encoder had sent
//! its last frame before it announced the shed) while the new source's frames from the boundary
//! on are held; the last two GOPs of every source are kept, since the new source may have passed
//! the boundary before the switch is announced. Pure: the recording applies what comes out.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::events::{Frame, MediaTime};

/// A switch waiting longer than this (media time held from the new source) is made anyway: the
/// old source stopped without reaching the boundary.
const MAX_HOLD: MediaTime = 3_000_000_000;
/// Frames kept per source for switches announced late; bounds memory if keyframes stop coming.
const MAX_RECENT: usize = 1024;

/// What the recording must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Routed {
    /// Package this frame in `rung`.
    Feed { rung: Arc<str>, frame: Frame },
    /// End `rung`'s current segment and cutter here; what follows is `source`'s video (its codec
    /// configuration), after a discontinuity.
    Switch { rung: Arc<str>, source: Arc<str> },
}

#[derive(Debug)]
struct PendingSwitch {
    to: Arc<str>,
    at: MediaTime,
    held: Vec<Frame>,
}

#[derive(Debug)]
struct Route {
    source: Arc<str>,
    pending: Option<PendingSwitch>,
}

#[derive(Debug, Default)]
pub struct FrameRouter {
    /// Renditions not fed by their own encoder, or switching; every other one is.
    routes: HashMap<Arc<str>, Route>,
    /// Per rung that may stand in for another: its frames since the keyframe before its latest
    /// one. No other rung's frames are kept (a relay keeps none).
    recent: HashMap<Arc<str>, VecDeque<Frame>>,
}

impl FrameRouter {
    /// Renditions currently showing another rung's picture (after a switch is made).
    pub fn stood_in(&self) -> impl Iterator<Item = &Arc<str>> {
        self.routes.iter().filter(|(rung, route)| route.source != **rung).map(|(rung, _)| rung)
    }

    /// The renditions among `rungs` packaged from `source`'s frames now.
    pub fn fed_by<'a>(&self, source: &str, rungs: impl Iterator<Item = &'a String>) -> Vec<String> {
        rungs
            .filter(|rung| self.routes.get(rung.as_str()).map_or(rung.as_str() == source, |route| &*route.source == source))
            .cloned()
            .collect()
    }

    /// A new session: every rendition is its own encoder's again.
    pub fn reset(&mut self) {
        self.routes.clear();
        self.recent.clear();
    }

    /// These rungs may stand in for shed ones from now on: keep their recent frames.
    pub fn stand_ins(&mut self, rungs: &[Arc<str>]) {
        for rung in rungs {
            self.recent.entry(rung.clone()).or_default();
        }
    }

    /// `rung` is fed by `source` from media time `at` on. `old_source_ended`: the rung it was fed
    /// by has sent its last frame already (it is the one being shed).
    pub fn switch(&mut self, rung: &Arc<str>, source: &Arc<str>, at: MediaTime, old_source_ended: bool) -> Vec<Routed> {
        let mut out = Vec::new();
        let route = self.routes.entry(rung.clone()).or_insert_with(|| Route { source: rung.clone(), pending: None });
        if let Some(pending) = route.pending.take() {
            complete(rung, route, pending, &mut out);
        }
        if route.source == *source {
            return out;
        }
        let held = self.recent.get(source).map(|frames| frames.iter().filter(|f| f.pts >= at).cloned().collect()).unwrap_or_default();
        let pending = PendingSwitch { to: source.clone(), at, held };
        if old_source_ended {
            complete(rung, route, pending, &mut out);
        } else {
            route.pending = Some(pending);
        }
        self.forget_own_routes();
        out
    }

    /// One frame from `source`'s encoder: what to package where.
    pub fn frame(&mut self, source: &Arc<str>, frame: Frame) -> Vec<Routed> {
        let mut out = Vec::new();
        self.remember(source, &frame);
        if !self.routes.contains_key(source) {
            out.push(Routed::Feed { rung: source.clone(), frame: frame.clone() });
        }
        for (rung, route) in &mut self.routes {
            let Some(pending) = route.pending.as_mut() else {
                if route.source == *source {
                    out.push(Routed::Feed { rung: rung.clone(), frame: frame.clone() });
                }
                continue;
            };
            if pending.to == *source {
                if frame.pts >= pending.at {
                    pending.held.push(frame.clone());
                    let span = pending.held.last().map_or(0, |f| f.pts) - pending.held.first().map_or(0, |f| f.pts);
                    if span > MAX_HOLD {
                        let pending = route.pending.take().expect("pending");
                        complete(rung, route, pending, &mut out);
                    }
                }
            } else if route.source == *source {
                if frame.pts < pending.at {
                    out.push(Routed::Feed { rung: rung.clone(), frame: frame.clone() });
                } else {
                    let pending = route.pending.take().expect("pending");
                    complete(rung, route, pending, &mut out);
                }
            }
        }
        self.forget_own_routes();
        out
    }

    /// Routes back to their own encoder with nothing pending need no entry.
    fn forget_own_routes(&mut self) {
        self.routes.retain(|rung, route| route.source != *rung || route.pending.is_some());
    }

    fn remember(&mut self, source: &Arc<str>, frame: &Frame) {
        let Some(recent) = self.recent.get_mut(source) else { return };
        if frame.keyframe {
            // Keep the GOP before this keyframe too.
            let keyframes: Vec<usize> = recent.iter().enumerate().filter(|(_, f)| f.keyframe).map(|(i, _)| i).collect();
            if let Some(&newest) = keyframes.last() {
                recent.drain(..newest);
            }
        }
        recent.push_back(frame.clone());
        if recent.len() > MAX_RECENT {
            recent.pop_front();
        }
    }
}

fn complete(rung: &Arc<str>, route: &mut Route, pending: PendingSwitch, out: &mut Vec<Routed>) {
    out.push(Routed::Switch { rung: rung.clone(), source: pending.to.clone() });
    route.source = pending.to;
    out.extend(pending.held.into_iter().map(|frame| Routed::Feed { rung: rung.clone(), frame }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    const FRAME: MediaTime = 33_333_333;
    const GOP: i64 = 60;

    fn frame(n: i64) -> Frame {
        Frame { dts: n * FRAME, pts: n * FRAME, keyframe: n % GOP == 0, data: Bytes::new() }
    }

    fn name(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    /// What `rung` was fed, as frame numbers, with `S` for a switch.
    fn fed(out: &[Routed], rung: &str) -> Vec<String> {
        out.iter()
            .filter_map(|r| match r {
                Routed::Feed { rung: to, frame } if &**to == rung => Some((frame.pts / FRAME).to_string()),
                Routed::Switch { rung: to, source } if &**to == rung => Some(format!("S:{source}")),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn every_rendition_is_its_own_encoder_until_a_switch() {
        let mut router = FrameRouter::default();
        let out = router.frame(&name("high"), frame(0));
        assert_eq!(out, vec![Routed::Feed { rung: name("high"), frame: frame(0) }]);
        assert_eq!(router.stood_in().count(), 0);
    }

    #[test]
    fn a_shed_rung_continues_with_the_stand_in_from_the_boundary_even_if_it_came_first() {
        let (high, mid) = (name("high"), name("mid"));
        let mut router = FrameRouter::default();
        router.stand_ins(std::slice::from_ref(&mid));
        let mut out = Vec::new();
        for n in 0..GOP {
            out.extend(router.frame(&high, frame(n)));
        }
        // The stand-in is ahead: it already sent the boundary keyframe and two more.
        for n in 0..GOP + 3 {
            out.extend(router.frame(&mid, frame(n)));
        }
        out.extend(router.switch(&high, &mid, GOP * FRAME, true));
        out.extend(router.frame(&mid, frame(GOP + 3)));
        let high_fed = fed(&out, "high");
        let expected: Vec<String> =
            (0..GOP).map(|n| n.to_string()).chain(["S:mid".to_string()]).chain((GOP..GOP + 4).map(|n| n.to_string())).collect();
        assert_eq!(high_fed, expected);
        assert_eq!(fed(&out, "mid").len(), (GOP + 4) as usize, "the stand-in goes on as it was");
        assert_eq!(router.stood_in().cloned().collect::<Vec<_>>(), vec![high.clone()]);
        // Its own encoder is off; were a late frame to come, it is nobody's.
        assert_eq!(fed(&router.frame(&high, frame(GOP + 1)), "high"), Vec::<String>::new());
    }

    #[test]
    fn a_restored_rung_waits_for_the_stand_in_to_reach_the_boundary() {
        let (high, mid) = (name("high"), name("mid"));
        let mut router = FrameRouter::default();
        router.switch(&high, &mid, 0, true);
        let restore_at = 2 * GOP * FRAME;
        let mut out = Vec::new();
        for n in GOP..2 * GOP - 2 {
            out.extend(router.frame(&mid, frame(n)));
        }
        out.extend(router.switch(&high, &high, restore_at, false));
        // Its own encoder is quicker than the stand-in this time.
        for n in 2 * GOP..2 * GOP + 3 {
            out.extend(router.frame(&high, frame(n)));
        }
        for n in 2 * GOP - 2..2 * GOP + 1 {
            out.extend(router.frame(&mid, frame(n)));
        }
        let expected: Vec<String> = (GOP..2 * GOP)
            .map(|n| n.to_string())
            .chain(["S:high".to_string()])
            .chain((2 * GOP..2 * GOP + 3).map(|n| n.to_string()))
            .collect();
        assert_eq!(fed(&out, "high"), expected);
        assert_eq!(router.stood_in().count(), 0);
        assert_eq!(fed(&router.frame(&high, frame(2 * GOP + 3)), "high"), vec![(2 * GOP + 3).to_string()]);
    }

    #[test]
    fn when_the_stand_in_is_shed_too_its_renditions_move_down_together() {
        let (high, mid, low) = (name("high"), name("mid"), name("low"));
        let mut router = FrameRouter::default();
        router.switch(&high, &mid, 0, true);
        let at = GOP * FRAME;
        let mut out = Vec::new();
        for n in 0..GOP {
            out.extend(router.frame(&mid, frame(n)));
            out.extend(router.frame(&low, frame(n)));
        }
        out.extend(router.switch(&mid, &low, at, true));
        out.extend(router.switch(&high, &low, at, true));
        out.extend(router.frame(&low, frame(GOP)));
        for rung in ["high", "mid"] {
            let got = fed(&out, rung);
            assert_eq!(got[GOP as usize..], ["S:low".to_string(), GOP.to_string()], "{rung}: {got:?}");
        }
        assert_eq!(router.stood_in().count(), 2);
    }

    #[test]
    fn a_switch_whose_old_source_stops_is_made_after_a_while() {
        let (high, mid) = (name("high"), name("mid"));
        let mut router = FrameRouter::default();
        router.switch(&high, &mid, 0, true);
        router.switch(&high, &high, GOP * FRAME, false);
        let mut out = Vec::new();
        for n in GOP..GOP + 200 {
            out.extend(router.frame(&high, frame(n)));
        }
        let got = fed(&out, "high");
        assert_eq!(got.first().map(String::as_str), Some("S:high"), "{got:?}");
        assert_eq!(got.len(), 201, "every held frame is fed once the switch is made");
    }

    #[test]
    fn recent_frames_reach_back_two_gops_at_most_and_only_for_stand_ins() {
        let mut router = FrameRouter::default();
        let (mid, high) = (name("mid"), name("high"));
        router.stand_ins(std::slice::from_ref(&mid));
        router.frame(&high, frame(0));
        assert!(!router.recent.contains_key(&high), "the top rung never stands in: nothing of it is kept");
        for n in 0..5 * GOP + 10 {
            router.frame(&mid, frame(n));
        }
        let recent = &router.recent[&mid];
        assert_eq!(recent.front().map(|f| f.pts / FRAME), Some(4 * GOP));
        assert_eq!(recent.len(), (GOP + 10) as usize);
    }
}
