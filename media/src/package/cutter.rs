//! The segment and part cutter of one rendition: samples of all its tracks go in, in decode order
//! per track, and finished LL-HLS parts and HLS segments come out the moment they are decided.
//! Video drives every cut; audio is muxed into the same fragments (one muxed A/V fMP4 per rendition,
//! so the playlists stay simple and audio needs no rendition group of its own).
//!
//! It must never do I/O, touch GStreamer or read a clock: every decision comes from the samples'
//! timestamps, so the same input always gives the same events. It never waits for a frame it does
//! not need: a segment is cut, and a part closed, when the sample that decides it is pushed.
//!
//! The rules, all in video decode time:
//! - **Segments** start at a video keyframe. The first starts at the first keyframe; samples before
//!   it are dropped and counted ([`Cutter::dropped`]). A new segment starts at the first keyframe
//!   whose dts is at or past the open segment's start + `segment_target`, less a tenth of the
//!   target: the ladder forces keyframes on a fixed grid, and when a loaded encoder drops the
//!   frame on a grid point its keyframe lands a frame or two late; without the slack the next
//!   grid keyframe would then be "too early" and the segment would run to twice the target.
//! - **Parts** are closed at every segment cut and, inside a segment, when a pushed video sample
//!   shows that the buffered video already covers `part_target`, or would cover more than it with
//!   this sample added (the sample's own duration is taken to be the step just measured). So parts
//!   are at most `part_target` long wherever frame timing allows, and never longer than
//!   `part_target` + one frame (a single frame longer than the target is a part of its own).
//! - A part's time range runs from its first video dts to the next part's first video dts. An
//!   **audio** sample goes into the first part closed after it arrives whose end is after the
//!   audio's dts: audio that arrives ahead of video waits for its part, and audio that arrives
//!   late (after its part closed) goes into the next part rather than being lost. Audio before the
//!   first keyframe is dropped and counted like video. At most [`MAX_PENDING_AUDIO`] audio samples
//!   per track wait; beyond that the oldest are dropped and counted, so a stalled video track
//!   cannot grow memory without bound.
//! - Each part is one fragment (moof + mdat); a segment's bytes are exactly its parts' bytes
//!   concatenated, so the origin can serve a segment and its parts as byte ranges of one another.

use std::time::Duration;

use bytes::Bytes;

use super::fragment::{duration, fragment, TrackRun};
use super::init::init_segment;
use super::{PackageError, Sample, TrackConfig};

/// How long a segment should be: it ends at the first keyframe at or past this.
pub const DEFAULT_SEGMENT_TARGET: Duration = Duration::from_secs(2);
/// How long an LL-HLS part should be at most.
pub const DEFAULT_PART_TARGET: Duration = Duration::from_millis(500);
/// Audio samples a track may hold while waiting for video; about 21 s of 48 kHz AAC.
pub const MAX_PENDING_AUDIO: usize = 1024;

/// Samples per AAC frame: the duration of an audio sample before a second one has been seen.
const AAC_FRAME_SAMPLES: u32 = 1024;
/// The frame rate assumed for the last video frame of a stream that had only one.
const FALLBACK_FRAME_RATE: u32 = 30;

/// What a cutter cuts to, and where its numbering starts. A cutter that replaces another after a
/// discontinuity continues the numbering of the one it replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CutterSettings {
    pub segment_target: Duration,
    pub part_target: Duration,
    /// Media sequence number of the first segment.
    pub first_segment: u64,
    /// mfhd sequence number of the first fragment (part).
    pub first_fragment: u32,
}

impl Default for CutterSettings {
    fn default() -> Self {
        CutterSettings { segment_target: DEFAULT_SEGMENT_TARGET, part_target: DEFAULT_PART_TARGET, first_segment: 0, first_fragment: 1 }
    }
}

/// What the cutter has finished.
#[derive(Debug, Clone, PartialEq)]
pub enum CutterEvent {
    /// One LL-HLS part: one moof + mdat. The last part of a segment comes right before that
    /// segment's `Segment` event.
    Part {
        /// The media sequence number of the segment the part belongs to.
        segment: u64,
        /// 0-based position in the segment.
        index: u32,
        bytes: Bytes,
        /// Seconds of video the part covers.
        duration: f64,
        /// The part starts with a keyframe and can be decoded alone (after the init segment).
        independent: bool,
    },
    /// One whole segment, starting with a keyframe: its parts' bytes, which back to back are the
    /// segment's file. They are not copied into one buffer: storage writes them as they are, and a
    /// live stream's memory would otherwise hold every segment twice while it is stored.
    Segment { sequence: u64, parts: Vec<Bytes>, duration: f64 },
}

#[derive(Debug)]
struct Track {
    id: u32,
    timescale: u32,
    /// Last dts pushed, to refuse one that goes backwards.
    last_dts: Option<i64>,
    /// Last non-zero step between two pushed dts; the guess for a last sample's duration.
    last_step: Option<u32>,
    /// Video: the open part's samples. Audio: samples not yet in a part.
    pending: Vec<Sample>,
}

impl Track {
    /// The duration to give a last sample whose successor is unknown.
    fn guessed_duration(&self, video: bool) -> u32 {
        match self.last_step {
            Some(step) => step,
            None if video => (self.timescale / FALLBACK_FRAME_RATE).max(1),
            None => AAC_FRAME_SAMPLES,
        }
    }
}

#[derive(Debug)]
struct OpenSegment {
    sequence: u64,
    /// Dts of its first (key)frame.
    start: i64,
    parts: Vec<Bytes>,
}

/// Cuts one rendition into parts and segments. Create it with the rendition's tracks, push every
/// sample, and call [`Cutter::flush`] at the end of the stream.
#[derive(Debug)]
pub struct Cutter {
    init: Bytes,
    tracks: Vec<Track>,
    /// Index of the video track in `tracks`.
    video: usize,
    segment_ticks: i64,
    part_ticks: i64,
    next_segment: u64,
    next_fragment: u32,
    segment: Option<OpenSegment>,
    dropped: u64,
}

impl Cutter {
    /// A cutter for `tracks` (track ids 1..=n in this order), which must hold exactly one video
    /// track. The init segment is written here, so bad tracks are refused before any sample.
    pub fn new(tracks: &[TrackConfig], settings: CutterSettings) -> Result<Self, PackageError> {
        let init = init_segment(tracks)?;
        let videos: Vec<usize> = tracks.iter().enumerate().filter(|(_, t)| t.is_video()).map(|(i, _)| i).collect();
        let [video] = videos[..] else {
            return Err(PackageError::VideoTrackCount(videos.len()));
        };
        if settings.part_target.is_zero() || settings.segment_target.is_zero() {
            return Err(PackageError::InvalidSettings("targets must not be zero"));
        }
        if settings.part_target > settings.segment_target {
            return Err(PackageError::InvalidSettings("the part target must not exceed the segment target"));
        }
        let timescale = tracks[video].timescale();
        let segment_ticks = ticks(settings.segment_target, timescale)?;
        // See the module documentation: a keyframe a tenth of the target early still cuts.
        let segment_ticks = segment_ticks - segment_ticks / 10;
        let part_ticks = ticks(settings.part_target, timescale)?;
        let tracks = (1..)
            .zip(tracks)
            .map(|(id, t)| Track { id, timescale: t.timescale(), last_dts: None, last_step: None, pending: Vec::new() })
            .collect();
        Ok(Cutter {
            init,
            tracks,
            video,
            segment_ticks,
            part_ticks,
            next_segment: settings.first_segment,
            next_fragment: settings.first_fragment,
            segment: None,
            dropped: 0,
        })
    }

    /// The rendition's init segment (ftyp + moov), the EXT-X-MAP of every segment and part.
    pub fn init(&self) -> Bytes {
        self.init.clone()
    }

    /// Samples dropped so far: before the first video keyframe, and audio beyond
    /// [`MAX_PENDING_AUDIO`].
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The media sequence number the next segment will get.
    pub fn next_segment(&self) -> u64 {
        self.next_segment
    }

    /// The mfhd sequence number the next fragment will get.
    pub fn next_fragment(&self) -> u32 {
        self.next_fragment
    }

    /// Takes one sample of track `track_id` and returns what it finished, in order: at most one
    /// part, or a part then its segment. An error leaves the cutter as it was: the sample is not
    /// taken. [`PackageError::DtsBackwards`] is a discontinuity; start a new cutter.
    pub fn push(&mut self, track_id: u32, sample: Sample) -> Result<Vec<CutterEvent>, PackageError> {
        let index = self.tracks.iter().position(|t| t.id == track_id).ok_or(PackageError::UnknownTrack(track_id))?;
        let step = self.check(index, &sample)?;
        let dts = sample.dts;
        let mut events = Vec::new();
        if index == self.video {
            self.push_video(sample, &mut events)?;
        } else {
            self.push_audio(index, sample);
        }
        let track = &mut self.tracks[index];
        track.last_dts = Some(dts);
        if let Some(step) = step.filter(|s| *s > 0) {
            track.last_step = Some(step);
        }
        Ok(events)
    }

    /// Closes the last part and segment at the end of the stream. The last video frame lasts as
    /// long as the one before it. Audio still waiting goes into that last part. Pushing again
    /// afterwards starts a new segment at the next keyframe.
    pub fn flush(&mut self) -> Result<Vec<CutterEvent>, PackageError> {
        let mut events = Vec::new();
        if self.segment.is_some() {
            let video = &self.tracks[self.video];
            if let Some(last) = video.pending.last() {
                let end = last.dts.saturating_add(i64::from(video.guessed_duration(true)));
                self.close_part(end, true, &mut events)?;
                self.close_segment(end, &mut events);
            }
        }
        // Without an open segment, waiting audio has no keyframe to start with.
        for track in &mut self.tracks {
            self.dropped += track.pending.len() as u64;
            track.pending.clear();
        }
        self.segment = None;
        Ok(events)
    }

    /// Checks a sample against its track, returning the step from the track's previous dts.
    fn check(&self, index: usize, sample: &Sample) -> Result<Option<u32>, PackageError> {
        let track = &self.tracks[index];
        let track_id = track.id;
        if sample.dts < 0 {
            return Err(PackageError::NegativeDts { track_id, dts: sample.dts });
        }
        if sample.data.is_empty() {
            return Err(PackageError::EmptySample { track_id, dts: sample.dts });
        }
        if sample.pts.checked_sub(sample.dts).and_then(|offset| i32::try_from(offset).ok()).is_none() {
            return Err(PackageError::CompositionOffsetOverflow { track_id, dts: sample.dts, pts: sample.pts });
        }
        track.last_dts.map(|previous| duration(track_id, previous, sample.dts)).transpose()
    }

    fn push_video(&mut self, sample: Sample, events: &mut Vec<CutterEvent>) -> Result<(), PackageError> {
        let Some(segment) = &self.segment else {
            if sample.keyframe {
                self.open_segment(sample.dts);
                self.tracks[self.video].pending.push(sample);
            } else {
                self.dropped += 1;
            }
            return Ok(());
        };
        let pending = &self.tracks[self.video].pending;
        // An open segment always holds at least the frame that opened its current part.
        let (Some(first), Some(last)) = (pending.first(), pending.last()) else {
            self.tracks[self.video].pending.push(sample);
            return Ok(());
        };
        if sample.keyframe && sample.dts - segment.start >= self.segment_ticks {
            self.close_part(sample.dts, false, events)?;
            self.close_segment(sample.dts, events);
            self.open_segment(sample.dts);
        } else {
            let covered = sample.dts - first.dts;
            let step = sample.dts - last.dts;
            if covered >= self.part_ticks || covered + step > self.part_ticks {
                self.close_part(sample.dts, false, events)?;
            }
        }
        self.tracks[self.video].pending.push(sample);
        Ok(())
    }

    fn push_audio(&mut self, index: usize, sample: Sample) {
        let track = &mut self.tracks[index];
        if track.pending.len() >= MAX_PENDING_AUDIO {
            let excess = track.pending.len() + 1 - MAX_PENDING_AUDIO;
            track.pending.drain(..excess);
            self.dropped += excess as u64;
        }
        track.pending.push(sample);
    }

    /// Starts a segment (and its first part) at the keyframe with dts `start`. Audio waiting from
    /// before it cannot be in any segment and is dropped.
    fn open_segment(&mut self, start: i64) {
        let video_timescale = self.tracks[self.video].timescale;
        for (i, track) in self.tracks.iter_mut().enumerate() {
            if i != self.video {
                let before = track.pending.iter().take_while(|s| earlier(s.dts, track.timescale, start, video_timescale)).count();
                track.pending.drain(..before);
                self.dropped += before as u64;
            }
        }
        self.segment = Some(OpenSegment { sequence: self.next_segment, start, parts: Vec::new() });
        self.next_segment += 1;
    }

    /// Closes the open part at video time `end` (the next part's first dts): all buffered video,
    /// and the audio before `end` (or all audio when `last`).
    fn close_part(&mut self, end: i64, last: bool, events: &mut Vec<CutterEvent>) -> Result<(), PackageError> {
        let Some(segment) = &mut self.segment else {
            return Ok(());
        };
        let video_timescale = self.tracks[self.video].timescale;
        let mut takes = Vec::with_capacity(self.tracks.len());
        let mut runs = Vec::with_capacity(self.tracks.len());
        for (i, track) in self.tracks.iter().enumerate() {
            let is_video = i == self.video;
            let take = if is_video || last {
                track.pending.len()
            } else {
                track.pending.iter().take_while(|s| earlier(s.dts, track.timescale, end, video_timescale)).count()
            };
            takes.push(take);
            let samples = &track.pending[..take];
            let Some(final_sample) = samples.last() else {
                continue;
            };
            let next_dts = if is_video {
                end
            } else {
                match track.pending.get(take) {
                    Some(next) => next.dts,
                    None => final_sample.dts.saturating_add(i64::from(track.guessed_duration(false))),
                }
            };
            runs.push(TrackRun { track_id: track.id, samples, next_dts: Some(next_dts) });
        }
        let Some(first) = self.tracks[self.video].pending.first() else {
            return Ok(());
        };
        let (start, independent) = (first.dts, first.keyframe);
        let bytes = fragment(self.next_fragment, &runs)?;
        // Nothing below fails: the samples leave their buffers only once the fragment exists.
        for (track, take) in self.tracks.iter_mut().zip(takes) {
            track.pending.drain(..take);
        }
        self.next_fragment = self.next_fragment.wrapping_add(1);
        let index = u32::try_from(segment.parts.len()).unwrap_or(u32::MAX);
        segment.parts.push(bytes.clone());
        events.push(CutterEvent::Part {
            segment: segment.sequence,
            index,
            bytes,
            duration: seconds(end - start, video_timescale),
            independent,
        });
        Ok(())
    }

    /// Emits the open segment, ending at video time `end`.
    fn close_segment(&mut self, end: i64, events: &mut Vec<CutterEvent>) {
        let Some(segment) = self.segment.take() else {
            return;
        };
        events.push(CutterEvent::Segment {
            sequence: segment.sequence,
            duration: seconds(end - segment.start, self.tracks[self.video].timescale),
            parts: segment.parts,
        });
    }
}

/// `target` in ticks of `timescale`, rounded to the nearest tick and at least one.
fn ticks(target: Duration, timescale: u32) -> Result<i64, PackageError> {
    let ticks = (target.as_nanos() * u128::from(timescale) + 500_000_000) / 1_000_000_000;
    i64::try_from(ticks.max(1)).map_err(|_| PackageError::InvalidSettings("a target is too long"))
}

/// Whether `dts` in `timescale` is strictly before `other` in `other_timescale`, compared exactly.
fn earlier(dts: i64, timescale: u32, other: i64, other_timescale: u32) -> bool {
    i128::from(dts) * i128::from(other_timescale) < i128::from(other) * i128::from(timescale)
}

fn seconds(ticks: i64, timescale: u32) -> f64 {
    ticks as f64 / f64::from(timescale)
}

#[cfg(test)]
mod tests {
    use super::super::boxes::reader::{parse, Fields};
    use super::super::fragment::{NON_SYNC_SAMPLE_FLAGS, SYNC_SAMPLE_FLAGS};
    use super::super::VideoCodec;
    use super::*;

    const VIDEO: u32 = 1;
    const AUDIO: u32 = 2;
    const AVCC: &[u8] = &[0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x00, 0x01, 0x00, 0x00];

    fn tracks() -> Vec<TrackConfig> {
        vec![
            TrackConfig::Video {
                codec: VideoCodec::Avc,
                config_record: Bytes::from_static(AVCC),
                width: 320,
                height: 240,
                timescale: 90_000,
            },
            TrackConfig::Audio { codec_config: Bytes::from_static(&[0x11, 0x90]), sample_rate: 48_000, channels: 2 },
        ]
    }

    fn cutter() -> Cutter {
        Cutter::new(&tracks(), CutterSettings::default()).expect("valid tracks and settings")
    }

    /// Video frame `n` at `step` ticks per frame, with a constant decode delay of two frames.
    fn frame(n: i64, step: i64, keyframe: bool) -> Sample {
        Sample { dts: n * step, pts: (n + 2) * step, keyframe, data: Bytes::from(format!("v{n}")) }
    }

    /// AAC frame `n` at 48 kHz.
    fn aac(n: i64) -> Sample {
        Sample { dts: n * 1024, pts: n * 1024, keyframe: true, data: Bytes::from(format!("a{n}")) }
    }

    /// A part or segment as plain values, for comparing.
    #[derive(Debug, Clone, PartialEq)]
    enum Cut {
        Part { segment: u64, index: u32, duration: f64, independent: bool },
        Segment { sequence: u64, duration: f64, parts: u32 },
    }

    fn cut(event: &CutterEvent) -> Cut {
        match *event {
            CutterEvent::Part { segment, index, duration, independent, .. } => Cut::Part { segment, index, duration, independent },
            CutterEvent::Segment { sequence, duration, ref parts } => Cut::Segment { sequence, duration, parts: parts.len() as u32 },
        }
    }

    /// Pushes `frames` video frames at 30 fps (or `step`), keyframes where `keyframe(n)`, then
    /// flushes. Returns every event with the frame number whose push returned it (`None` for flush).
    fn run_video(cutter: &mut Cutter, frames: i64, step: i64, keyframe: impl Fn(i64) -> bool) -> Vec<(Option<i64>, CutterEvent)> {
        let mut out = Vec::new();
        for n in 0..frames {
            for event in cutter.push(VIDEO, frame(n, step, keyframe(n))).expect("valid frame") {
                out.push((Some(n), event));
            }
        }
        for event in cutter.flush().expect("flush") {
            out.push((None, event));
        }
        out
    }

    fn segments(events: &[(Option<i64>, CutterEvent)]) -> Vec<(Option<i64>, Cut)> {
        events.iter().filter(|(_, e)| matches!(e, CutterEvent::Segment { .. })).map(|(n, e)| (*n, cut(e))).collect()
    }

    fn parts(events: &[(Option<i64>, CutterEvent)]) -> Vec<Cut> {
        events.iter().filter(|(_, e)| matches!(e, CutterEvent::Part { .. })).map(|(_, e)| cut(e)).collect()
    }

    fn part(segment: u64, index: u32, duration: f64, independent: bool) -> Cut {
        Cut::Part { segment, index, duration, independent }
    }

    /// The trafs of one fragment: (track id, tfdt, [(duration, size, flags, composition offset)]).
    type Traf = (u32, u64, Vec<(u32, u32, u32, i32)>);

    fn trafs(bytes: &[u8]) -> Vec<Traf> {
        let boxes = parse(bytes);
        assert_eq!(boxes.len(), 2, "one moof and one mdat");
        boxes[0]
            .children()
            .into_iter()
            .filter(|b| b.name() == "traf")
            .map(|traf| {
                let track_id = Fields::new(traf.child("tfhd").payload).skip(4).u32();
                let tfdt = Fields::new(traf.child("tfdt").payload).skip(4).u64();
                let mut f = Fields::new(traf.child("trun").payload);
                f.skip(4);
                let count = f.u32();
                f.skip(4);
                (track_id, tfdt, (0..count).map(|_| (f.u32(), f.u32(), f.u32(), f.i32())).collect())
            })
            .collect()
    }

    fn mfhd_sequence(bytes: &[u8]) -> u32 {
        Fields::new(parse(bytes)[0].child("mfhd").payload).skip(4).u32()
    }

    #[test]
    fn segments_cut_at_the_keyframe_that_reaches_the_target() {
        for gop in [30, 60] {
            let events = run_video(&mut cutter(), 180, 3000, |n| n % gop == 0);
            // The segment is emitted by the very push of the keyframe at 2 s and 4 s, not later.
            assert_eq!(
                segments(&events),
                [
                    (Some(60), Cut::Segment { sequence: 0, duration: 2.0, parts: 4 }),
                    (Some(120), Cut::Segment { sequence: 1, duration: 2.0, parts: 4 }),
                    (None, Cut::Segment { sequence: 2, duration: 2.0, parts: 4 }),
                ],
                "gop {gop}"
            );
            // Every part is exactly 0.5 s (15 frames); parts starting on a keyframe are independent.
            let expected: Vec<Cut> =
                (0..3).flat_map(|s| (0..4).map(move |i| part(s, i, 0.5, (s as i64 * 60 + i64::from(i) * 15) % gop == 0))).collect();
            assert_eq!(parts(&events), expected, "gop {gop}");
            // Each segment's last part comes right before it.
            for (i, (_, event)) in events.iter().enumerate() {
                if let CutterEvent::Segment { sequence, parts, .. } = event {
                    assert_eq!(cut(&events[i - 1].1), part(*sequence, parts.len() as u32 - 1, 0.5, false));
                }
            }
        }
    }

    #[test]
    fn a_keyframe_forced_on_the_grid_still_cuts_after_a_late_segment_start() {
        // Keyframes on a 2 s grid, but the one at 2 s came two frames late (frames dropped in
        // front of a loaded encoder): the grid keyframe at 4 s is 1.93 s after it and still cuts.
        let events = run_video(&mut cutter(), 180, 3000, |n| [0, 62, 120].contains(&n));
        let cuts: Vec<Option<i64>> = segments(&events).iter().map(|(n, _)| *n).collect();
        assert_eq!(cuts, vec![Some(62), Some(120), None]);
        // A keyframe more than a tenth early does not.
        let events = run_video(&mut cutter(), 120, 3000, |n| [0, 50, 60].contains(&n));
        assert_eq!(segments(&events).first().map(|(n, _)| *n), Some(Some(60)));
    }

    #[test]
    fn irregular_gops() {
        let keyframes = [0, 45, 70, 100, 130, 200, 250];
        let events = run_video(&mut cutter(), 260, 3000, |n| keyframes.contains(&n));
        // 45 is too early (1.5 s); 70 is the first at or past 2 s. From 70, 130 is exactly 2 s
        // later (at counts); from 130, the first at or past 190 is 200; 250 is too early.
        assert_eq!(
            segments(&events),
            [
                (Some(70), Cut::Segment { sequence: 0, duration: 70.0 / 30.0, parts: 5 }),
                (Some(130), Cut::Segment { sequence: 1, duration: 2.0, parts: 4 }),
                (Some(200), Cut::Segment { sequence: 2, duration: 70.0 / 30.0, parts: 5 }),
                (None, Cut::Segment { sequence: 3, duration: 2.0, parts: 4 }),
            ]
        );
        let durations: Vec<f64> =
            parts(&events).iter().filter_map(|p| if let Cut::Part { duration, .. } = p { Some(duration * 30.0) } else { None }).collect();
        let rounded: Vec<i64> = durations.iter().map(|d| d.round() as i64).collect();
        assert_eq!(rounded, [15, 15, 15, 15, 10, 15, 15, 15, 15, 15, 15, 15, 15, 10, 15, 15, 15, 15]);
        // Parts start every 15 frames from each segment's start: 0 15 30 45 60 | 70 85 100 115 |
        // 130 ... | 200 215 230 245 260. Besides segment starts, 45 and 100 are keyframes; 250
        // falls inside a part.
        let independent: Vec<(u64, u32)> = parts(&events)
            .iter()
            .filter_map(|p| match p {
                Cut::Part { segment, index, independent: true, .. } => Some((*segment, *index)),
                _ => None,
            })
            .collect();
        assert_eq!(independent, [(0, 0), (0, 3), (1, 0), (1, 2), (2, 0), (3, 0)]);
    }

    #[test]
    fn parts_stay_within_the_target_at_29_97_fps() {
        // 3003 ticks per frame: 15 frames would be 0.5005 s, so parts close after 14 (0.467 s).
        let events = run_video(&mut cutter(), 300, 3003, |n| n % 60 == 0);
        let frames: Vec<i64> = parts(&events)
            .iter()
            .filter_map(|p| if let Cut::Part { duration, .. } = p { Some((duration * 90_000.0 / 3003.0).round() as i64) } else { None })
            .collect();
        assert_eq!(frames, [14, 14, 14, 14, 4].repeat(5));
        for p in parts(&events) {
            if let Cut::Part { duration, .. } = p {
                assert!(duration <= 0.5, "{duration}");
            }
        }
        assert_eq!(segments(&events).len(), 5);
    }

    #[test]
    fn a_frame_longer_than_the_part_target_is_a_part_of_its_own() {
        // 1 fps, keyframe every 2 s: each part is one frame of 1 s (target + one frame at most).
        let events = run_video(&mut cutter(), 6, 90_000, |n| n % 2 == 0);
        assert_eq!(
            parts(&events),
            [
                part(0, 0, 1.0, true),
                part(0, 1, 1.0, false),
                part(1, 0, 1.0, true),
                part(1, 1, 1.0, false),
                part(2, 0, 1.0, true),
                part(2, 1, 1.0, false)
            ]
        );
    }

    #[test]
    fn segment_bytes_are_its_parts_concatenated() {
        let settings = CutterSettings { first_segment: 41, first_fragment: 7, ..CutterSettings::default() };
        let mut cutter = Cutter::new(&tracks(), settings).expect("valid");
        let mut pending_parts = Vec::new();
        let mut fragment_numbers = Vec::new();
        let mut sequences = Vec::new();
        let mut audio = 0;
        let mut events = Vec::new();
        for n in 0..150 {
            events.extend(cutter.push(VIDEO, frame(n, 3000, n % 30 == 0)).expect("valid"));
            while audio * 1024 * 90_000 / 48_000 <= n * 3000 {
                events.extend(cutter.push(AUDIO, aac(audio)).expect("valid"));
                audio += 1;
            }
        }
        events.extend(cutter.flush().expect("flush"));
        for event in events {
            match event {
                CutterEvent::Part { bytes, segment, .. } => {
                    fragment_numbers.push(mfhd_sequence(&bytes));
                    pending_parts.push((segment, bytes));
                }
                CutterEvent::Segment { sequence, parts, .. } => {
                    assert!(pending_parts.iter().all(|(s, _)| *s == sequence));
                    let listed: Vec<Bytes> = pending_parts.drain(..).map(|(_, b)| b).collect();
                    assert_eq!(parts, listed, "segment {sequence}");
                    let bytes = parts.concat();
                    // The segment starts with a keyframe.
                    let boxes = parse(&bytes);
                    let first_part = trafs(&bytes[..boxes[0].size + boxes[1].size]);
                    assert_eq!(first_part[0].0, VIDEO);
                    assert_eq!(first_part[0].2[0].2, SYNC_SAMPLE_FLAGS);
                    sequences.push(sequence);
                }
            }
        }
        assert!(pending_parts.is_empty());
        assert_eq!(sequences, [41, 42, 43]);
        assert_eq!(fragment_numbers, (7..7 + 10).collect::<Vec<u32>>());
        assert_eq!(cutter.next_segment(), 44);
        assert_eq!(cutter.next_fragment(), 17);
    }

    /// Video at 30 fps (keyframe every second) and 48 kHz AAC, interleaved by time with the audio
    /// pushed `audio_lead` seconds ahead of the video, then flushed. Returns the events and the
    /// number of AAC frames pushed.
    fn run_av(frames: i64, audio_lead: f64) -> (Vec<CutterEvent>, i64) {
        let mut cutter = cutter();
        let mut events = Vec::new();
        let mut audio = 0;
        for n in 0..frames {
            let video_time = n as f64 / 30.0;
            while (audio as f64 * 1024.0 / 48_000.0) < video_time + audio_lead {
                events.extend(cutter.push(AUDIO, aac(audio)).expect("valid audio"));
                audio += 1;
            }
            events.extend(cutter.push(VIDEO, frame(n, 3000, n % 30 == 0)).expect("valid video"));
        }
        events.extend(cutter.flush().expect("flush"));
        assert_eq!(cutter.dropped(), 0);
        (events, audio)
    }

    /// For each part: (video start, video end, audio dts) in seconds.
    fn audio_placement(events: &[CutterEvent]) -> Vec<(f64, f64, Vec<f64>)> {
        let mut out = Vec::new();
        for event in events {
            if let CutterEvent::Part { bytes, duration, .. } = event {
                let trafs = trafs(bytes);
                assert_eq!(trafs[0].0, VIDEO, "video first");
                let start = trafs[0].1 as f64 / 90_000.0;
                let mut audio = Vec::new();
                for (track, tfdt, entries) in trafs.iter().skip(1) {
                    assert_eq!(*track, AUDIO);
                    let mut dts = *tfdt;
                    for (duration, _, flags, offset) in entries {
                        assert_eq!((*flags, *offset), (SYNC_SAMPLE_FLAGS, 0));
                        audio.push(dts as f64 / 48_000.0);
                        dts += u64::from(*duration);
                    }
                }
                out.push((start, start + duration, audio));
            }
        }
        out
    }

    #[test]
    fn audio_goes_into_the_part_covering_its_dts() {
        // Audio interleaved by time, slightly ahead (10 ms) and well ahead (0.7 s: more than a
        // part) of the video: the placement is the same, decided by dts alone.
        for lead in [0.0, 0.01, 0.7] {
            let (events, pushed) = run_av(90, lead);
            let placement = audio_placement(&events);
            assert_eq!(placement.len(), 6);
            let mut total = 0;
            for (i, (start, end, audio)) in placement.iter().enumerate() {
                total += audio.len();
                let last = i == placement.len() - 1;
                for dts in audio {
                    // The last part also takes the audio that ran past the last video frame.
                    assert!(*dts >= *start - 1e-9 && (last || *dts < *end - 1e-9), "lead {lead}: {dts} in part {start}..{end}");
                }
                if !last {
                    // No gap: the part holds every AAC frame of its range.
                    let expected = ((end * 48_000.0 / 1024.0).ceil() - (start * 48_000.0 / 1024.0).ceil()) as usize;
                    assert_eq!(audio.len(), expected, "lead {lead}, part {i}");
                }
            }
            assert_eq!(total as i64, pushed, "lead {lead}: no audio lost");
        }
    }

    #[test]
    fn audio_durations_come_from_the_next_frame_even_across_parts() {
        let (events, _) = run_av(30, 0.0);
        for event in &events {
            if let CutterEvent::Part { bytes, .. } = event {
                for (track, _, entries) in trafs(bytes) {
                    if track == AUDIO {
                        assert!(entries.iter().all(|e| e.0 == 1024), "{entries:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn late_audio_goes_into_the_next_part() {
        let mut cutter = cutter();
        for n in 0..15 {
            assert!(cutter.push(VIDEO, frame(n, 3000, n == 0)).expect("valid").is_empty());
        }
        // Frame 15 (0.5 s) closes part 0 before any audio arrived.
        let events = cutter.push(VIDEO, frame(15, 3000, false)).expect("valid");
        let [CutterEvent::Part { bytes, .. }] = &events[..] else { panic!("{events:?}") };
        assert_eq!(trafs(bytes).len(), 1, "video only");
        // Audio from 0.1 s arrives late: it goes into part 1 with its own dts.
        cutter.push(AUDIO, aac(5)).expect("valid");
        cutter.push(AUDIO, aac(6)).expect("valid");
        let events = cutter.push(VIDEO, frame(30, 3000, false)).expect("valid");
        let [CutterEvent::Part { bytes, index: 1, .. }] = &events[..] else { panic!("{events:?}") };
        let trafs = trafs(bytes);
        assert_eq!(trafs.len(), 2);
        assert_eq!((trafs[1].0, trafs[1].1, trafs[1].2.len()), (AUDIO, 5 * 1024, 2));
    }

    #[test]
    fn samples_before_the_first_keyframe_are_dropped() {
        let mut cutter = cutter();
        for n in 0..10 {
            cutter.push(AUDIO, aac(n)).expect("valid");
            assert!(cutter.push(VIDEO, frame(n, 1000, false)).expect("valid").is_empty());
        }
        // The keyframe at 10000 ticks (111 ms = 5333 audio ticks): audio before it is dropped,
        // audio 6 to 9 (6144 ticks on) is kept.
        cutter.push(VIDEO, frame(10, 1000, true)).expect("valid");
        assert_eq!(cutter.dropped(), 10 + 6);
        let events = cutter.flush().expect("flush");
        let [CutterEvent::Part { bytes, independent: true, .. }, CutterEvent::Segment { parts, .. }] = &events[..] else {
            panic!("{events:?}")
        };
        assert_eq!(parts.len(), 1);
        let trafs = trafs(bytes);
        assert_eq!((trafs[0].1, trafs[0].2.len(), trafs[0].2[0].2), (10_000, 1, SYNC_SAMPLE_FLAGS));
        assert_eq!((trafs[1].1, trafs[1].2.len()), (6 * 1024, 4));
    }

    #[test]
    fn non_sync_flags_and_decode_delay_are_kept() {
        let mut cutter = cutter();
        let events = run_video(&mut cutter, 20, 3000, |n| n == 0);
        let CutterEvent::Part { bytes, .. } = &events[0].1 else { panic!("{events:?}") };
        let entries = &trafs(bytes)[0].2;
        assert_eq!(entries.len(), 15);
        assert_eq!(entries[0], (3000, 2, SYNC_SAMPLE_FLAGS, 6000));
        assert!(entries[1..].iter().all(|e| e.2 == NON_SYNC_SAMPLE_FLAGS && e.3 == 6000));
    }

    #[test]
    fn flush() {
        let mut cutter = cutter();
        assert!(cutter.flush().expect("flush").is_empty(), "nothing to flush");
        // Audio without any video is dropped at the end.
        cutter.push(AUDIO, aac(0)).expect("valid");
        assert!(cutter.flush().expect("flush").is_empty());
        assert_eq!(cutter.dropped(), 1);

        let mut events = Vec::new();
        for n in 0..20 {
            events.extend(cutter.push(VIDEO, frame(n, 3000, n == 0)).expect("valid"));
        }
        cutter.push(AUDIO, aac(40)).expect("valid");
        assert_eq!(events.len(), 1, "part 0 at frame 15");
        // The last frame lasts as long as the one before it: 5 frames, 1/6 s.
        let events = cutter.flush().expect("flush");
        let cuts: Vec<Cut> = events.iter().map(cut).collect();
        assert_eq!(cuts, [part(0, 1, 5.0 / 30.0, false), Cut::Segment { sequence: 0, duration: 20.0 / 30.0, parts: 2 }]);
        // The audio after the last video frame went into the last part.
        let CutterEvent::Part { bytes, .. } = &events[0] else { panic!() };
        let trafs = trafs(bytes);
        assert_eq!((trafs[0].2.last().map(|e| e.0), trafs[1].1), (Some(3000), 40 * 1024));
        assert!(cutter.flush().expect("flush").is_empty(), "flushing twice is harmless");

        // Pushing afterwards starts a new segment at the next keyframe, continuing the numbers.
        assert!(cutter.push(VIDEO, frame(20, 3000, false)).expect("valid").is_empty());
        cutter.push(VIDEO, frame(21, 3000, true)).expect("valid");
        let cuts: Vec<Cut> = cutter.flush().expect("flush").iter().map(cut).collect();
        assert_eq!(cuts, [part(1, 0, 1.0 / 30.0, true), Cut::Segment { sequence: 1, duration: 1.0 / 30.0, parts: 1 }]);
        assert_eq!(cutter.dropped(), 2);
    }

    #[test]
    fn a_single_frame_gets_a_default_duration() {
        let mut cutter = cutter();
        cutter.push(VIDEO, frame(0, 3000, true)).expect("valid");
        let cuts: Vec<Cut> = cutter.flush().expect("flush").iter().map(cut).collect();
        assert_eq!(cuts, [part(0, 0, 1.0 / 30.0, true), Cut::Segment { sequence: 0, duration: 1.0 / 30.0, parts: 1 }]);
    }

    #[test]
    fn bad_samples_are_refused_and_change_nothing() {
        let mut cutter = cutter();
        cutter.push(VIDEO, frame(0, 3000, true)).expect("valid");
        cutter.push(VIDEO, frame(1, 3000, false)).expect("valid");
        assert_eq!(cutter.push(VIDEO, frame(0, 3000, false)), Err(PackageError::DtsBackwards { track_id: VIDEO, previous: 3000, dts: 0 }));
        assert_eq!(cutter.push(3, frame(2, 3000, false)), Err(PackageError::UnknownTrack(3)));
        assert_eq!(cutter.push(0, frame(2, 3000, false)), Err(PackageError::UnknownTrack(0)));
        assert_eq!(
            cutter.push(VIDEO, Sample { pts: 1 << 40, ..frame(2, 3000, false) }),
            Err(PackageError::CompositionOffsetOverflow { track_id: VIDEO, dts: 6000, pts: 1 << 40 })
        );
        assert_eq!(
            cutter.push(VIDEO, Sample { data: Bytes::new(), ..frame(2, 3000, false) }),
            Err(PackageError::EmptySample { track_id: VIDEO, dts: 6000 })
        );
        assert_eq!(
            cutter.push(VIDEO, frame(1 << 22, 3000, false)),
            Err(PackageError::DurationOverflow { track_id: VIDEO, dts: 3000, next_dts: 3000 << 22 })
        );
        assert_eq!(cutter.push(AUDIO, Sample { dts: -1, ..aac(0) }), Err(PackageError::NegativeDts { track_id: AUDIO, dts: -1 }));
        // Audio has its own timeline: dts 0 is fine there; an equal dts is not backwards.
        cutter.push(AUDIO, aac(0)).expect("valid");
        cutter.push(VIDEO, frame(1, 3000, false)).expect("equal dts");
        cutter.push(VIDEO, frame(2, 3000, false)).expect("valid");
        let cuts: Vec<Cut> = cutter.flush().expect("flush").iter().map(cut).collect();
        assert_eq!(cuts, [part(0, 0, 0.1, true), Cut::Segment { sequence: 0, duration: 0.1, parts: 1 }]);
    }

    #[test]
    fn construction_checks_tracks_and_settings() {
        let [video, audio] = <[TrackConfig; 2]>::try_from(tracks()).expect("two tracks");
        let settings = CutterSettings::default();
        assert_eq!(Cutter::new(std::slice::from_ref(&audio), settings).err(), Some(PackageError::VideoTrackCount(0)));
        assert_eq!(Cutter::new(&[video.clone(), video.clone()], settings).err(), Some(PackageError::VideoTrackCount(2)));
        assert_eq!(Cutter::new(&[], settings).err(), Some(PackageError::NoTracks));
        for bad in [
            CutterSettings { part_target: Duration::ZERO, ..settings },
            CutterSettings { segment_target: Duration::from_millis(400), ..settings },
        ] {
            assert!(matches!(Cutter::new(std::slice::from_ref(&video), bad), Err(PackageError::InvalidSettings(_))), "{bad:?}");
        }
        // Video alone, and audio before video in the track list (the video track is then 2).
        assert_eq!(Cutter::new(&tracks()[..1], settings).map(|c| c.dropped()), Ok(0));
        let mut cutter = Cutter::new(&[audio, video], settings).expect("valid");
        assert_eq!(crate::package::boxes::reader::tree(&cutter.init()).matches("trak").count(), 2);
        cutter.push(2, frame(0, 3000, true)).expect("video");
        cutter.push(1, aac(0)).expect("audio");
        let events = cutter.flush().expect("flush");
        let CutterEvent::Part { bytes, independent: true, .. } = &events[0] else { panic!("{events:?}") };
        let ids: Vec<u32> = trafs(bytes).iter().map(|t| t.0).collect();
        assert_eq!(ids, [1, 2], "trafs in track order");
    }
}
