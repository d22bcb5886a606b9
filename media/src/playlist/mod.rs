//! HLS playlists (RFC 8216, and RFC 8216bis for low latency) as plain values. A `MediaPlaylist`
//! holds one rendition's segments, appended as the pipeline finishes them, and renders the live
//! window, the full event playlist while live, the VOD playlist once ended, and (`low_latency`) the
//! LL-HLS live view with parts, delta updates, preload hints and rendition reports. A
//! `MasterPlaylist` lists the renditions (`master`). MPEG-TS renditions (old recordings) and
//! fragmented-MP4 renditions (a segment with an EXT-X-MAP) render from the same model.
//!
//! This module must never do I/O, touch GStreamer or read a clock: every line it writes comes from
//! its arguments, so a unit test can check every view. It must also never write a line that a
//! caller smuggled in: a URI, a query or a date that would break or inject a playlist line is
//! rejected when it comes in, so rendering cannot fail.

use std::fmt;
use std::fmt::Write as _;
use std::time::Duration;

mod low_latency;
mod master;

pub use low_latency::{LiveOptions, PreloadHint, RenditionReport};
pub use master::{avc1_codec, measure_bandwidth, Bandwidth, MasterPlaylist, Variant, AAC_LC_CODEC};

/// Why 3: EXTINF durations with decimals need version 3 (RFC 8216 section 7), and nothing else an
/// MPEG-TS playlist or the master playlist needs more. MPEG-TS segments carry their own codec
/// headers, so there is no EXT-X-MAP, and there are no byte ranges or I-frame playlists (version
/// 4). A low version keeps old players (TVs, set-top boxes) working.
pub const HLS_VERSION: u32 = 3;

/// A media playlist whose segments are fragmented MP4 lists EXT-X-MAP, which needs version 6
/// (version 5 allows it only in I-frame playlists).
pub const HLS_VERSION_MAP: u32 = 6;

/// The low-latency live view: EXT-X-SKIP needs version 9 (RFC 8216bis section 8). The view says 9
/// whether or not this response skips, so a delta update and a full reload never disagree.
pub const HLS_VERSION_LOW_LATENCY: u32 = 9;

/// Why a media playlist or a variant could not take a value. Every variant is a caller bug or bad
/// input caught at the door; rendering itself never fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaylistError {
    /// The playlist already carries EXT-X-ENDLIST; players stop reloading, so a later segment
    /// would never be seen.
    Ended,
    /// Empty, not printable ASCII, containing whitespace, or starting with `#` (which would turn
    /// the URI line into a tag or a comment); in a quoted attribute (EXT-X-MAP, EXT-X-PART, ...)
    /// also containing `"`, which would end the attribute early.
    InvalidUri(String),
    /// Not an RFC 3339 date-time such as `2025-01-01T12:00:00.000Z`.
    InvalidProgramDateTime(String),
    /// A segment or part with no media would divide by zero in the bandwidth measurement and
    /// confuses players' buffer arithmetic.
    ZeroDuration { uri: String },
    /// A variant whose attributes would be wrong or unparseable in EXT-X-STREAM-INF.
    InvalidVariant { uri: String, reason: &'static str },
    /// Parts were given to a playlist made without [`MediaPlaylist::with_parts`]: it has no part
    /// target to announce, so it could never list them.
    NotLowLatency,
    /// [`MediaPlaylist::push_part`] before [`MediaPlaylist::open_segment`]: a part's segment must
    /// say which init segment, date and discontinuity its first part starts with.
    NoOpenSegment,
    /// [`MediaPlaylist::open_segment`] while the open segment already has listed parts: they
    /// would be orphaned. Close it with [`MediaPlaylist::push`] first.
    SegmentInProgress,
    /// The segment that closes the open segment disagrees with what its listed parts were
    /// announced with (`field` is `map`, `discontinuity`, `program_date_time` or `parts`).
    /// Players already downloaded those parts under the announced tags.
    OpenSegmentMismatch { uri: String, field: &'static str },
    /// A segment without EXT-X-MAP after segments with one: HLS has no way to stop a map from
    /// applying, so an MPEG-TS segment cannot follow fMP4 ones in one playlist.
    MissingMap { previous: String },
}

impl fmt::Display for PlaylistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlaylistError::Ended => write!(f, "the playlist has ended; no more segments can be added"),
            PlaylistError::InvalidUri(uri) => write!(f, "invalid playlist URI {uri:?}"),
            PlaylistError::InvalidProgramDateTime(value) => write!(f, "invalid program date-time {value:?}, expected RFC 3339"),
            PlaylistError::ZeroDuration { uri } => write!(f, "segment or part {uri:?} has zero duration"),
            PlaylistError::InvalidVariant { uri, reason } => write!(f, "invalid variant {uri:?}: {reason}"),
            PlaylistError::NotLowLatency => write!(f, "parts given to a playlist made without a part target"),
            PlaylistError::NoOpenSegment => write!(f, "a part was pushed before its segment was opened"),
            PlaylistError::SegmentInProgress => write!(f, "a segment was opened while the open one has listed parts"),
            PlaylistError::OpenSegmentMismatch { uri, field } => {
                write!(f, "segment {uri:?} disagrees with its open segment's {field}")
            }
            PlaylistError::MissingMap { previous } => write!(f, "a segment without EXT-X-MAP follows one with map {previous:?}"),
        }
    }
}

impl std::error::Error for PlaylistError {}

/// One finished media segment, already written to storage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Segment {
    /// Relative to the media playlist, e.g. `seg-000042.ts`.
    pub uri: String,
    pub duration: Duration,
    /// Size of the segment file, for bandwidth measurement.
    pub bytes: u64,
    /// Wall-clock time of the segment's first sample, preformatted as RFC 3339
    /// (`2025-01-01T12:00:00.000Z`). Set it on every segment: this module cannot compute a date
    /// for a segment that lacks one, and once older segments slide out of the live window the
    /// first listed segment still needs one for players that sync on it. At the very least, set it
    /// on the first segment and on every discontinuity.
    pub program_date_time: Option<String>,
    /// True for the first segment after the encoder restarted (a publisher that reconnected within
    /// the grace period): timestamps and codec parameters may jump here.
    pub discontinuity: bool,
    /// URI of the init segment (EXT-X-MAP) this fragmented-MP4 segment is decoded with, relative
    /// to the media playlist; `None` for an MPEG-TS segment. A reconnect brings a new init: set
    /// `discontinuity` and the new URI on its first segment.
    pub map: Option<String>,
    /// The LL-HLS parts this segment was made of, as they were listed while it was open. Leave
    /// it empty when pushing a segment that was opened with [`MediaPlaylist::open_segment`]: the
    /// listed parts are taken over (see [`MediaPlaylist::push`]). Empty for MPEG-TS and VOD input.
    pub parts: Vec<Part>,
}

/// One LL-HLS partial segment (RFC 8216bis section 4.4.4.9): a CMAF chunk of the open segment,
/// listed as soon as it is in storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Relative to the media playlist, e.g. `seg-000042.3.m4s`.
    pub uri: String,
    pub duration: Duration,
    /// The part starts with a keyframe (INDEPENDENT=YES): players join and switch there.
    pub independent: bool,
}

/// The tags a segment's first part is listed after (RFC 8216bis: EXT-X-DISCONTINUITY, EXT-X-MAP
/// and EXT-X-PROGRAM-DATE-TIME of a parent segment must come before its first EXT-X-PART), given
/// when the segment opens, before any part of it exists. The [`Segment`] that closes it must
/// repeat `map` and `discontinuity`, and `program_date_time` unless it is `None` here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentStart {
    pub map: Option<String>,
    pub program_date_time: Option<String>,
    pub discontinuity: bool,
}

/// The segment being cut: its start tags and the parts listed so far.
#[derive(Debug, Clone)]
struct OpenSegment {
    start: SegmentStart,
    parts: Vec<Part>,
}

/// One rendition's playlist, from the first segment of a live video to its ENDLIST.
///
/// It keeps every segment (not only the live window) because the full event/VOD view lists them
/// all: a few dozen bytes per segment. Parts are listed only near the live edge, so the owner
/// forgets those of older segments ([`MediaPlaylist::forget_parts_before`]): kept, they were
/// a few hundred bytes more per segment for the whole stream (0.07 MB a minute of a three-rung
/// ladder, the largest growing item in an hour's heap profile, docs/performance.md §4).
///
/// Media sequence numbers are positions in [`MediaPlaylist::segments`]: the first segment ever
/// pushed is 0, and the open segment (low latency) is `segments().len()`.
#[derive(Debug, Clone)]
pub struct MediaPlaylist {
    segment_duration: Duration,
    segments: Vec<Segment>,
    /// Largest rounded EXTINF of every segment ever appended, not only of those in the live
    /// window: RFC 8216 section 6.2.1 forbids changing EXT-X-TARGETDURATION, and a value taken
    /// over the window alone would drop back when a long segment slid out. Taking the maximum
    /// over the whole history keeps it from ever going down and still covers every listed segment.
    longest_rounded_secs: u64,
    ended: bool,
    /// Some segment has an EXT-X-MAP (and so, by [`PlaylistError::MissingMap`], every later one).
    has_map: bool,
    /// `Some` for a low-latency playlist: the configured part target in whole milliseconds.
    configured_part_millis: Option<u128>,
    /// Longest printed part duration ever listed, in milliseconds; like the target duration, the
    /// part target follows it up and never comes back down.
    longest_part_millis: u128,
    open: Option<OpenSegment>,
    /// Segments below this have had their parts forgotten.
    parts_forgotten_below: usize,
}

impl MediaPlaylist {
    /// `segment_duration` is the configured (keyframe-aligned) segment length; the target duration
    /// never goes below it, so players size their reload interval from the start.
    pub fn new(segment_duration: Duration) -> Self {
        MediaPlaylist {
            segment_duration,
            segments: Vec::new(),
            longest_rounded_secs: 0,
            ended: false,
            has_map: false,
            configured_part_millis: None,
            longest_part_millis: 0,
            open: None,
            parts_forgotten_below: 0,
        }
    }

    /// A low-latency playlist: like [`MediaPlaylist::new`], and it takes parts
    /// ([`MediaPlaylist::open_segment`], [`MediaPlaylist::push_part`]) for the LL-HLS view.
    /// `part_target` is the cutter's configured part length; it is rounded up to the millisecond
    /// (and to at least 1 ms) for EXT-X-PART-INF.
    pub fn with_parts(segment_duration: Duration, part_target: Duration) -> Self {
        let millis = part_target.as_nanos().div_ceil(1_000_000).max(1);
        MediaPlaylist { configured_part_millis: Some(millis), ..MediaPlaylist::new(segment_duration) }
    }

    /// Appends a finished segment. Call this only after the segment is in storage: a listed segment
    /// that 404s stalls every player.
    ///
    /// If a segment is open ([`MediaPlaylist::open_segment`]), this closes it: `segment.map` and
    /// `discontinuity` must be what it was opened with, and so must `program_date_time` if it was
    /// opened with one (if not, the segment's own date is listed from now on: a date added above
    /// listed parts does not change how they decode). Its parts are the parts listed while it was
    /// open. Leave `segment.parts` empty to take them over (the
    /// usual call); if it is not empty it must equal them, so a caller that keeps its own list is
    /// checked rather than silently overruled. Without an open segment, `segment.parts` is taken
    /// as given (rebuilding a low-latency playlist), and must be empty in a playlist made without
    /// [`MediaPlaylist::with_parts`].
    pub fn push(&mut self, mut segment: Segment) -> Result<(), PlaylistError> {
        if self.ended {
            return Err(PlaylistError::Ended);
        }
        check_uri(&segment.uri)?;
        if segment.duration.is_zero() {
            return Err(PlaylistError::ZeroDuration { uri: segment.uri });
        }
        check_date(segment.program_date_time.as_deref())?;
        self.check_map(segment.map.as_deref())?;
        for part in &segment.parts {
            self.check_part(part)?;
        }
        if let Some(open) = &self.open {
            let mismatch = |field| Err(PlaylistError::OpenSegmentMismatch { uri: segment.uri.clone(), field });
            if segment.map != open.start.map {
                return mismatch("map");
            }
            if segment.discontinuity != open.start.discontinuity {
                return mismatch("discontinuity");
            }
            if open.start.program_date_time.is_some() && segment.program_date_time != open.start.program_date_time {
                return mismatch("program_date_time");
            }
            if !segment.parts.is_empty() && segment.parts != open.parts {
                return mismatch("parts");
            }
        }
        if let Some(open) = self.open.take() {
            segment.parts = open.parts;
        }
        for part in &segment.parts {
            self.longest_part_millis = self.longest_part_millis.max(millis(part.duration));
        }
        self.longest_rounded_secs = self.longest_rounded_secs.max(rounded_secs(segment.duration));
        self.has_map |= segment.map.is_some();
        self.segments.push(segment);
        Ok(())
    }

    /// Opens the next segment (media sequence number `segments().len()`) of a low-latency
    /// playlist, before its first part: its parts are listed after these tags. Opening again
    /// before any part was pushed replaces the tags (nothing was listed yet).
    pub fn open_segment(&mut self, start: SegmentStart) -> Result<(), PlaylistError> {
        if self.ended {
            return Err(PlaylistError::Ended);
        }
        if self.configured_part_millis.is_none() {
            return Err(PlaylistError::NotLowLatency);
        }
        if self.open.as_ref().is_some_and(|open| !open.parts.is_empty()) {
            return Err(PlaylistError::SegmentInProgress);
        }
        check_date(start.program_date_time.as_deref())?;
        self.check_map(start.map.as_deref())?;
        self.open = Some(OpenSegment { start, parts: Vec::new() });
        Ok(())
    }

    /// Lists one more part of the open segment. Call it only once the part is in storage (a
    /// preload hint is the way to announce a part before that).
    pub fn push_part(&mut self, part: Part) -> Result<(), PlaylistError> {
        if self.ended {
            return Err(PlaylistError::Ended);
        }
        self.check_part(&part)?;
        let open = self.open.as_mut().ok_or(PlaylistError::NoOpenSegment)?;
        self.longest_part_millis = self.longest_part_millis.max(millis(part.duration));
        open.parts.push(part);
        Ok(())
    }

    /// Forgets the parts of the segments before media sequence number `msn` (they have left the
    /// live window; no view lists them again). Cheap to call after every segment.
    pub fn forget_parts_before(&mut self, msn: usize) {
        let end = msn.min(self.segments.len());
        for segment in self.segments[self.parts_forgotten_below.min(end)..end].iter_mut() {
            segment.parts = Vec::new();
        }
        self.parts_forgotten_below = self.parts_forgotten_below.max(end);
    }

    /// Forgets the open segment and its listed parts: the segment could not be stored, and the
    /// next one must be able to open.
    pub fn abandon_open_segment(&mut self) {
        self.open = None;
    }

    /// Marks the stream as over: every view gets EXT-X-ENDLIST and the full view becomes VOD.
    /// Parts of a segment left open are dropped with it (the ended views list no parts).
    /// Idempotent, because unpublish and shutdown may both get here.
    pub fn end(&mut self) {
        self.ended = true;
        self.open = None;
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// The closed segments; the open segment's parts are [`MediaPlaylist::open_parts`].
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Parts listed so far of the open segment; empty when no segment is open.
    pub fn open_parts(&self) -> &[Part] {
        self.open.as_ref().map_or(&[], |open| &open.parts)
    }

    /// EXT-X-TARGETDURATION in whole seconds: at least the configured segment duration rounded
    /// up, at least every appended segment's EXTINF rounded to the nearest second, and at least 1
    /// so a playlist with no segments yet still tells players a sane reload interval. In a
    /// low-latency playlist also at least the part target rounded up, since a part is never
    /// longer than the segment it belongs to (players reject a PART-TARGET above the target).
    pub fn target_duration(&self) -> u64 {
        let part_secs = self.part_target_millis().map_or(0, |ms| u64::try_from(ms.div_ceil(1000)).unwrap_or(u64::MAX));
        ceil_secs(self.segment_duration).max(self.longest_rounded_secs).max(part_secs).max(1)
    }

    /// PART-TARGET of a low-latency playlist, `None` otherwise. RFC 8216bis requires every part
    /// to be at most PART-TARGET, and the cutter may make a part one frame longer than its
    /// target, so this is the configured part target or the longest part ever listed (as
    /// printed, to the millisecond), whichever is longer. Like the target duration, it never
    /// goes back down.
    pub fn part_target(&self) -> Option<Duration> {
        self.part_target_millis().map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX)))
    }

    /// Measured bandwidth of everything appended so far; `None` before the first segment.
    pub fn bandwidth(&self) -> Option<Bandwidth> {
        measure_bandwidth(&self.segments, Duration::from_secs(self.target_duration()))
    }

    /// The newest thing listed, for EXT-X-RENDITION-REPORT (RFC 8216bis section 4.4.5.4): the
    /// media sequence number of the last segment that has anything listed, and the index of its
    /// last listed part.
    ///
    /// - The open segment has parts: `(its number, Some(index of its last part))`.
    /// - Otherwise the last closed segment: `(its number, Some(index of its last part))` if it
    ///   has parts (a just-closed segment is at the live edge, so they are listed), `(its number,
    ///   None)` if it has none or the playlist has ended (ended views list no parts).
    /// - `None` while nothing at all is listed.
    pub fn last_msn_part(&self) -> Option<(u64, Option<u32>)> {
        let closed = count(self.segments.len());
        let open_parts = self.open_parts();
        if !open_parts.is_empty() {
            return Some((closed, Some(last_index(open_parts))));
        }
        let last = self.segments.last()?;
        let part = (!self.ended && !last.parts.is_empty()).then(|| last_index(&last.parts));
        Some((closed - 1, part))
    }

    /// Whether a blocking playlist reload for `_HLS_msn=msn` (and `_HLS_part=part`) can be
    /// answered, i.e. whether the playlist lists that segment or part, or anything after it
    /// (RFC 8216bis section 6.2.5.2: "a Media Sequence Number of M or later").
    ///
    /// - `part: None`: segment `msn` is closed.
    /// - `part: Some(p)`: part `p` of segment `msn` is listed. A part index past the last part of
    ///   a closed segment means part 0 of the next segment, as the RFC requires of servers. A
    ///   closed segment counts as holding all its parts even once they have left the view.
    ///
    /// It does not look at [`MediaPlaylist::is_ended`]: the origin must answer an ended
    /// playlist at once whatever it asks for, since the RFC has servers ignore `_HLS_msn` then.
    pub fn has(&self, msn: u64, part: Option<u32>) -> bool {
        let closed = count(self.segments.len());
        let open_parts = count(self.open_parts().len());
        match part {
            None => msn < closed,
            Some(part) if msn < closed => {
                let parts = count(self.segments[usize::try_from(msn).unwrap_or(usize::MAX)].parts.len());
                u64::from(part) < parts || msn + 1 < closed || open_parts > 0
            }
            Some(part) => msn == closed && u64::from(part) < open_parts,
        }
    }

    /// The sliding live playlist: the last `window` segments (at least one). MEDIA-SEQUENCE counts
    /// the segments that slid out, DISCONTINUITY-SEQUENCE the discontinuities that slid out with
    /// them. There is no PLAYLIST-TYPE, because a sliding window is neither EVENT nor VOD. Once
    /// ended, it gets ENDLIST too, so players watching live stop reloading. It never lists parts:
    /// that is [`MediaPlaylist::render_live_ll`].
    pub fn render_live(&self, window: usize) -> String {
        let first = self.window_start(window);
        let mut out = self.header(self.version(), first);
        line(&mut out, format_args!("#EXT-X-DISCONTINUITY-SEQUENCE:{}", self.discontinuity_sequence(first)));
        line(&mut out, format_args!("#EXT-X-INDEPENDENT-SEGMENTS"));
        self.render_segments(&mut out, first, self.segments.len());
        self.render_endlist(&mut out);
        out
    }

    /// The whole recording: `EVENT` while live (players may seek back to the start, and the list
    /// only grows), `VOD` with ENDLIST once ended (the list is final and may be cached forever).
    /// No parts: they are a live-edge device.
    pub fn render_full(&self) -> String {
        let mut out = self.header(self.version(), 0);
        let playlist_type = if self.ended { "VOD" } else { "EVENT" };
        line(&mut out, format_args!("#EXT-X-PLAYLIST-TYPE:{playlist_type}"));
        line(&mut out, format_args!("#EXT-X-INDEPENDENT-SEGMENTS"));
        self.render_segments(&mut out, 0, self.segments.len());
        self.render_endlist(&mut out);
        out
    }

    /// 3 for MPEG-TS, 6 once segments carry EXT-X-MAP (the low-latency view says 9 itself).
    fn version(&self) -> u32 {
        if self.has_map {
            HLS_VERSION_MAP
        } else {
            HLS_VERSION
        }
    }

    fn part_target_millis(&self) -> Option<u128> {
        self.configured_part_millis.map(|configured| configured.max(self.longest_part_millis))
    }

    fn window_start(&self, window: usize) -> usize {
        self.segments.len().saturating_sub(window.max(1))
    }

    fn discontinuity_sequence(&self, first: usize) -> usize {
        self.segments[..first].iter().filter(|s| s.discontinuity).count()
    }

    fn header(&self, version: u32, media_sequence: usize) -> String {
        let mut out = String::new();
        line(&mut out, format_args!("#EXTM3U"));
        line(&mut out, format_args!("#EXT-X-VERSION:{version}"));
        line(&mut out, format_args!("#EXT-X-TARGETDURATION:{}", self.target_duration()));
        line(&mut out, format_args!("#EXT-X-MEDIA-SEQUENCE:{media_sequence}"));
        out
    }

    /// Lists segments `first..`, with the parts of segments `parts_from..`, and returns the map
    /// in effect after them. EXT-X-MAP is written before the first listed segment that has one
    /// and again wherever it changes, so every view (a delta update included) stands alone.
    ///
    /// INDEPENDENT-SEGMENTS (written by the callers) is honest because the ladder forces a keyframe
    /// at every segment start (fixed GOP = segment duration), and the passthrough rung is split at
    /// the source's keyframes.
    fn render_segments<'s>(&'s self, out: &mut String, first: usize, parts_from: usize) -> Option<&'s str> {
        let mut map = None;
        for (n, segment) in self.segments.iter().enumerate().skip(first) {
            map = segment_tags(out, map, segment.discontinuity, segment.map.as_deref(), segment.program_date_time.as_deref());
            if n >= parts_from {
                for part in &segment.parts {
                    part_line(out, part);
                }
            }
            line(out, format_args!("#EXTINF:{},", extinf(segment.duration)));
            line(out, format_args!("{}", segment.uri));
        }
        map
    }

    fn render_endlist(&self, out: &mut String) {
        if self.ended {
            line(out, format_args!("#EXT-X-ENDLIST"));
        }
    }

    /// Once a segment has a map, every later one needs one (see [`PlaylistError::MissingMap`]).
    fn check_map(&self, map: Option<&str>) -> Result<(), PlaylistError> {
        match (map, self.segments.last().and_then(|s| s.map.as_deref())) {
            (Some(uri), _) => check_quoted_uri(uri),
            (None, Some(previous)) => Err(PlaylistError::MissingMap { previous: previous.to_owned() }),
            (None, None) => Ok(()),
        }
    }

    fn check_part(&self, part: &Part) -> Result<(), PlaylistError> {
        if self.configured_part_millis.is_none() {
            return Err(PlaylistError::NotLowLatency);
        }
        check_quoted_uri(&part.uri)?;
        if part.duration.is_zero() {
            return Err(PlaylistError::ZeroDuration { uri: part.uri.clone() });
        }
        Ok(())
    }
}

/// Writes the tags that open a segment (or the open segment's first part) and returns the map in
/// effect from there on; `map` is the one in effect before (`None` at the top of a view).
fn segment_tags<'s>(
    out: &mut String,
    map: Option<&'s str>,
    discontinuity: bool,
    segment_map: Option<&'s str>,
    program_date_time: Option<&str>,
) -> Option<&'s str> {
    if discontinuity {
        line(out, format_args!("#EXT-X-DISCONTINUITY"));
    }
    if let Some(uri) = segment_map.filter(|uri| map != Some(*uri)) {
        line(out, format_args!("#EXT-X-MAP:URI=\"{uri}\""));
    }
    if let Some(date) = program_date_time {
        line(out, format_args!("#EXT-X-PROGRAM-DATE-TIME:{date}"));
    }
    segment_map.or(map)
}

fn part_line(out: &mut String, part: &Part) {
    let independent = if part.independent { ",INDEPENDENT=YES" } else { "" };
    line(out, format_args!("#EXT-X-PART:DURATION={},URI=\"{}\"{independent}", extinf(part.duration), part.uri));
}

/// Appends one playlist line. Writing into a `String` cannot fail, so the `fmt::Result` carries no
/// information.
fn line(out: &mut String, args: fmt::Arguments<'_>) {
    let _ = out.write_fmt(args);
    out.push('\n');
}

fn check_uri(uri: &str) -> Result<(), PlaylistError> {
    if uri.is_empty() || uri.starts_with('#') || !uri.chars().all(|c| c.is_ascii_graphic()) {
        return Err(PlaylistError::InvalidUri(uri.to_owned()));
    }
    Ok(())
}

/// A URI written inside `URI="..."`: a quote would end the attribute and let the rest of the
/// value be read as more attributes.
fn check_quoted_uri(uri: &str) -> Result<(), PlaylistError> {
    check_uri(uri)?;
    if uri.contains('"') {
        return Err(PlaylistError::InvalidUri(uri.to_owned()));
    }
    Ok(())
}

fn check_date(date: Option<&str>) -> Result<(), PlaylistError> {
    match date {
        Some(date) if !is_rfc3339_date_time(date) => Err(PlaylistError::InvalidProgramDateTime(date.to_owned())),
        _ => Ok(()),
    }
}

fn count(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

/// Index of the last of a non-empty list of parts.
fn last_index(parts: &[Part]) -> u32 {
    u32::try_from(parts.len().saturating_sub(1)).unwrap_or(u32::MAX)
}

/// Durations are quantised to the millisecond that EXTINF prints, and everything else (the target
/// duration's rounding, the part target, the part and skip windows) is derived from that same
/// number: rounding the raw duration could give 2 for 2.4996 s while the playlist says `2.500`,
/// which a player rounds to 3.
fn millis(duration: Duration) -> u128 {
    (duration.as_nanos() + 500_000) / 1_000_000
}

fn extinf(duration: Duration) -> String {
    decimal_millis(millis(duration))
}

/// Milliseconds as seconds with three decimals, e.g. `1500` as `1.500`.
fn decimal_millis(ms: u128) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// Rounded half up: a half second more in the target duration is harmless, one less breaks the
/// RFC's "rounded EXTINF <= target duration" for players that round half up.
fn rounded_secs(duration: Duration) -> u64 {
    u64::try_from((millis(duration) + 500) / 1000).unwrap_or(u64::MAX)
}

fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`: the shape, not the calendar. The caller
/// formats the date with a real date library; this only catches a value that is not a date at all
/// (an epoch number, an empty string, a line break).
fn is_rfc3339_date_time(value: &str) -> bool {
    let b = value.as_bytes();
    let digits = |bytes: &[u8]| !bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit);
    if b.len() < 20 {
        return false;
    }
    let date_time_ok = digits(&b[0..4])
        && b[4] == b'-'
        && digits(&b[5..7])
        && b[7] == b'-'
        && digits(&b[8..10])
        && b[10] == b'T'
        && digits(&b[11..13])
        && b[13] == b':'
        && digits(&b[14..16])
        && b[16] == b':'
        && digits(&b[17..19]);
    if !date_time_ok {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    match rest {
        b"Z" => true,
        [sign, hh @ .., b':', m1, m2] if hh.len() == 2 => (*sign == b'+' || *sign == b'-') && digits(hh) && digits(&[*m1, *m2]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn seg(n: usize, secs: f64) -> Segment {
        Segment {
            uri: format!("seg-{n:06}.ts"),
            duration: Duration::from_secs_f64(secs),
            bytes: 500_000,
            program_date_time: Some(format!("2025-01-01T12:00:{:02}.000Z", n % 60)),
            discontinuity: false,
            map: None,
            parts: Vec::new(),
        }
    }

    pub(super) fn playlist_with(durations: &[f64]) -> MediaPlaylist {
        let mut playlist = MediaPlaylist::new(Duration::from_secs(2));
        for (n, secs) in durations.iter().enumerate() {
            playlist.push(seg(n, *secs)).expect("valid segment");
        }
        playlist
    }

    /// The value of a `#TAG:value` line, or `None` when the tag is absent.
    pub(super) fn tag<'a>(text: &'a str, name: &str) -> Option<&'a str> {
        text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
    }

    pub(super) fn uris(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    pub(super) fn extinfs(text: &str) -> Vec<f64> {
        text.lines()
            .filter_map(|l| l.strip_prefix("#EXTINF:"))
            .map(|v| v.trim_end_matches(',').parse().expect("EXTINF is a number"))
            .collect()
    }

    #[test]
    fn live_playlist_exact_text() {
        let mut playlist = MediaPlaylist::new(Duration::from_secs(2));
        playlist.push(seg(0, 2.0)).expect("valid");
        playlist.push(Segment { program_date_time: None, ..seg(1, 1.9996) }).expect("valid");
        let expected = "#EXTM3U\n\
                        #EXT-X-VERSION:3\n\
                        #EXT-X-TARGETDURATION:2\n\
                        #EXT-X-MEDIA-SEQUENCE:0\n\
                        #EXT-X-DISCONTINUITY-SEQUENCE:0\n\
                        #EXT-X-INDEPENDENT-SEGMENTS\n\
                        #EXT-X-PROGRAM-DATE-TIME:2025-01-01T12:00:00.000Z\n\
                        #EXTINF:2.000,\n\
                        seg-000000.ts\n\
                        #EXTINF:2.000,\n\
                        seg-000001.ts\n";
        assert_eq!(playlist.render_live(6), expected);
    }

    #[test]
    fn window_slide_moves_media_sequence() {
        let mut playlist = playlist_with(&[2.0; 3]);
        let text = playlist.render_live(3);
        assert_eq!(tag(&text, "#EXT-X-MEDIA-SEQUENCE"), Some("0"));
        assert_eq!(uris(&text), ["seg-000000.ts", "seg-000001.ts", "seg-000002.ts"]);

        playlist.push(seg(3, 2.0)).expect("valid");
        playlist.push(seg(4, 2.0)).expect("valid");
        let text = playlist.render_live(3);
        assert_eq!(tag(&text, "#EXT-X-MEDIA-SEQUENCE"), Some("2"));
        assert_eq!(uris(&text), ["seg-000002.ts", "seg-000003.ts", "seg-000004.ts"]);
    }

    #[test]
    fn window_of_zero_still_lists_the_newest_segment() {
        let text = playlist_with(&[2.0; 4]).render_live(0);
        assert_eq!(uris(&text), ["seg-000003.ts"]);
        assert_eq!(tag(&text, "#EXT-X-MEDIA-SEQUENCE"), Some("3"));
    }

    #[test]
    fn discontinuity_sliding_out_increments_discontinuity_sequence() {
        let mut playlist = playlist_with(&[2.0; 3]);
        playlist.push(Segment { discontinuity: true, ..seg(3, 2.0) }).expect("valid");
        playlist.push(seg(4, 2.0)).expect("valid");

        // Still listed: the tag is in the window and the sequence has not moved.
        let text = playlist.render_live(3);
        assert_eq!(tag(&text, "#EXT-X-DISCONTINUITY-SEQUENCE"), Some("0"));
        let lines: Vec<&str> = text.lines().collect();
        let tag_at = lines.iter().position(|l| *l == "#EXT-X-DISCONTINUITY").expect("tag listed");
        let uri_at = lines.iter().position(|l| *l == "seg-000003.ts").expect("segment listed");
        assert!(tag_at < uri_at && lines[tag_at + 1..uri_at].iter().all(|l| l.starts_with('#')));

        // The discontinuity segment is now the first listed: its tag stays, the count does not move.
        playlist.push(seg(5, 2.0)).expect("valid");
        let text = playlist.render_live(3);
        assert_eq!(tag(&text, "#EXT-X-DISCONTINUITY-SEQUENCE"), Some("0"));
        assert!(text.contains("#EXT-X-DISCONTINUITY\n"));

        // Slid out: the tag is gone, so the sequence counts it.
        playlist.push(seg(6, 2.0)).expect("valid");
        let text = playlist.render_live(3);
        assert_eq!(tag(&text, "#EXT-X-MEDIA-SEQUENCE"), Some("4"));
        assert_eq!(tag(&text, "#EXT-X-DISCONTINUITY-SEQUENCE"), Some("1"));
        assert!(!text.contains("#EXT-X-DISCONTINUITY\n"));
    }

    #[test]
    fn discontinuity_sequence_counts_every_discontinuity_that_slid_out() {
        let mut playlist = MediaPlaylist::new(Duration::from_secs(2));
        for n in 0..10 {
            playlist.push(Segment { discontinuity: n % 3 == 1, ..seg(n, 2.0) }).expect("valid");
        }
        // Segments 1, 4 and 7 are discontinuities; a window of 2 lists 8 and 9.
        assert_eq!(tag(&playlist.render_live(2), "#EXT-X-DISCONTINUITY-SEQUENCE"), Some("3"));
        // The full view removes nothing, so it keeps every tag and needs no sequence.
        let full = playlist.render_full();
        assert_eq!(full.matches("#EXT-X-DISCONTINUITY\n").count(), 3);
        assert_eq!(tag(&full, "#EXT-X-DISCONTINUITY-SEQUENCE"), None);
    }

    #[test]
    fn target_duration_covers_every_rounded_extinf() {
        // 2.4996 s prints as 2.500, which rounds to 3: the target must follow the printed value.
        let mut playlist = playlist_with(&[2.0, 2.4996, 1.2, 3.49, 2.0]);
        playlist.end();
        for text in [playlist.render_live(3), playlist.render_live(10), playlist.render_full()] {
            let target: f64 = tag(&text, "#EXT-X-TARGETDURATION").expect("target listed").parse().expect("integer");
            let durations = extinfs(&text);
            assert!(!durations.is_empty());
            for d in durations {
                assert!(d.round() <= target, "EXTINF {d} rounds above target {target}");
            }
        }
        assert_eq!(playlist.target_duration(), 3);
    }

    #[test]
    fn target_duration_rounds_the_printed_extinf() {
        assert_eq!(playlist_with(&[2.4996]).target_duration(), 3);
        assert_eq!(playlist_with(&[2.4994]).target_duration(), 2);
    }

    #[test]
    fn target_duration_never_below_configured_segment_duration() {
        let mut playlist = MediaPlaylist::new(Duration::from_secs(4));
        assert_eq!(tag(&playlist.render_live(3), "#EXT-X-TARGETDURATION"), Some("4"));
        playlist.push(seg(0, 1.0)).expect("valid");
        assert_eq!(tag(&playlist.render_live(3), "#EXT-X-TARGETDURATION"), Some("4"));
        // A fractional configuration rounds up, never down.
        assert_eq!(MediaPlaylist::new(Duration::from_millis(2500)).target_duration(), 3);
    }

    #[test]
    fn target_duration_does_not_drop_when_a_long_segment_leaves_the_window() {
        let mut playlist = playlist_with(&[2.0, 5.2, 2.0]);
        assert_eq!(tag(&playlist.render_live(3), "#EXT-X-TARGETDURATION"), Some("5"));
        for n in 3..8 {
            playlist.push(seg(n, 2.0)).expect("valid");
        }
        let text = playlist.render_live(3);
        assert!(!uris(&text).contains(&"seg-000001.ts"));
        assert_eq!(tag(&text, "#EXT-X-TARGETDURATION"), Some("5"));
    }

    #[test]
    fn extinf_has_three_decimals() {
        let text = playlist_with(&[2.0, 1.5, 2.002_002, 0.0334]).render_full();
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("#EXTINF:")).collect();
        assert_eq!(lines, ["#EXTINF:2.000,", "#EXTINF:1.500,", "#EXTINF:2.002,", "#EXTINF:0.033,"]);
    }

    #[test]
    fn endlist_only_when_ended() {
        let mut playlist = playlist_with(&[2.0; 4]);
        assert!(!playlist.render_live(3).contains("#EXT-X-ENDLIST"));
        assert!(!playlist.render_full().contains("#EXT-X-ENDLIST"));
        playlist.end();
        playlist.end();
        assert!(playlist.is_ended());
        for text in [playlist.render_live(3), playlist.render_full()] {
            assert_eq!(text.matches("#EXT-X-ENDLIST").count(), 1);
            assert!(text.ends_with("seg-000003.ts\n#EXT-X-ENDLIST\n"));
        }
    }

    #[test]
    fn full_view_is_event_while_live_and_vod_once_ended() {
        let mut playlist = playlist_with(&[2.0; 5]);
        let text = playlist.render_full();
        assert_eq!(tag(&text, "#EXT-X-PLAYLIST-TYPE"), Some("EVENT"));
        assert_eq!(tag(&text, "#EXT-X-MEDIA-SEQUENCE"), Some("0"));
        assert_eq!(uris(&text).len(), 5);

        playlist.end();
        let text = playlist.render_full();
        assert_eq!(tag(&text, "#EXT-X-PLAYLIST-TYPE"), Some("VOD"));
        assert_eq!(uris(&text).len(), 5);
    }

    #[test]
    fn live_window_has_no_playlist_type() {
        let mut playlist = playlist_with(&[2.0; 5]);
        assert_eq!(tag(&playlist.render_live(3), "#EXT-X-PLAYLIST-TYPE"), None);
        playlist.end();
        assert_eq!(tag(&playlist.render_live(3), "#EXT-X-PLAYLIST-TYPE"), None);
    }

    #[test]
    fn every_view_has_the_common_header() {
        let mut playlist = playlist_with(&[2.0; 3]);
        let live = [playlist.render_live(2), playlist.render_full()];
        playlist.end();
        for text in live.into_iter().chain([playlist.render_live(2), playlist.render_full()]) {
            assert!(text.starts_with("#EXTM3U\n#EXT-X-VERSION:3\n"));
            assert!(tag(&text, "#EXT-X-TARGETDURATION").is_some());
            assert!(text.contains("\n#EXT-X-INDEPENDENT-SEGMENTS\n"));
        }
    }

    #[test]
    fn program_date_time_on_each_segment_that_has_one() {
        let mut playlist = MediaPlaylist::new(Duration::from_secs(2));
        playlist.push(seg(0, 2.0)).expect("valid");
        playlist.push(Segment { program_date_time: None, ..seg(1, 2.0) }).expect("valid");
        playlist
            .push(Segment { discontinuity: true, program_date_time: Some("2025-01-01T12:05:00.250+01:00".into()), ..seg(2, 2.0) })
            .expect("valid");
        let text = playlist.render_full();
        let dates: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:")).collect();
        assert_eq!(dates, ["2025-01-01T12:00:00.000Z", "2025-01-01T12:05:00.250+01:00"]);
        assert!(
            text.contains("#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2025-01-01T12:05:00.250+01:00\n#EXTINF:2.000,\nseg-000002.ts\n")
        );
    }

    #[test]
    fn segments_that_would_break_the_playlist_are_rejected() {
        let mut playlist = MediaPlaylist::new(Duration::from_secs(2));
        for uri in ["", "#EXT-X-ENDLIST", "a.ts\n#EXT-X-ENDLIST", "a b.ts", "ä.ts"] {
            let result = playlist.push(Segment { uri: uri.to_owned(), ..seg(0, 2.0) });
            assert_eq!(result, Err(PlaylistError::InvalidUri(uri.to_owned())));
        }
        for date in ["1735732800", "", "2025-01-01 12:00:00Z", "2025-01-01T12:00:00", "2025-01-01T12:00:00.Z", "2025-01-01T12:00:00Z\n"] {
            let result = playlist.push(Segment { program_date_time: Some(date.to_owned()), ..seg(0, 2.0) });
            assert_eq!(result, Err(PlaylistError::InvalidProgramDateTime(date.to_owned())), "{date:?}");
        }
        assert_eq!(
            playlist.push(Segment { duration: Duration::ZERO, ..seg(0, 2.0) }),
            Err(PlaylistError::ZeroDuration { uri: "seg-000000.ts".into() })
        );
        assert!(playlist.segments().is_empty());
        for date in ["2025-01-01T12:00:00Z", "2025-01-01T12:00:00.123456Z", "2025-01-01T12:00:00-05:30"] {
            playlist.push(Segment { program_date_time: Some(date.to_owned()), ..seg(0, 2.0) }).expect(date);
        }
    }

    #[test]
    fn no_segment_after_end() {
        let mut playlist = playlist_with(&[2.0]);
        playlist.end();
        assert_eq!(playlist.push(seg(1, 2.0)), Err(PlaylistError::Ended));
        assert_eq!(playlist.segments().len(), 1);
    }

    // fMP4 (EXT-X-MAP) and the low-latency model: parts, open segments, what is listed.

    pub(super) const INIT: &str = "init-0.mp4";

    pub(super) fn fmp4(n: usize, secs: f64, map: &str) -> Segment {
        Segment { uri: format!("seg-{n:06}.m4s"), map: Some(map.to_owned()), ..seg(n, secs) }
    }

    pub(super) fn part(n: usize, index: u32, secs: f64) -> Part {
        Part { uri: format!("seg-{n:06}.{index}.m4s"), duration: Duration::from_secs_f64(secs), independent: index == 0 }
    }

    pub(super) fn start(n: usize, map: &str) -> SegmentStart {
        SegmentStart { map: Some(map.to_owned()), program_date_time: seg(n, 2.0).program_date_time, discontinuity: false }
    }

    /// Opens segment `n`, lists `parts` parts of 0.5 s and closes it, as the live pipeline does.
    pub(super) fn cut(playlist: &mut MediaPlaylist, n: usize, parts: u32, map: &str) {
        playlist.open_segment(start(n, map)).expect("opens");
        for index in 0..parts {
            playlist.push_part(part(n, index, 0.5)).expect("valid part");
        }
        playlist.push(fmp4(n, 0.5 * f64::from(parts), map)).expect("closes");
    }

    /// A low-latency playlist (2 s segments, 0.5 s parts) of `segments` closed 4-part segments.
    pub(super) fn ll_playlist(segments: usize) -> MediaPlaylist {
        let mut playlist = MediaPlaylist::with_parts(Duration::from_secs(2), Duration::from_millis(500));
        for n in 0..segments {
            cut(&mut playlist, n, 4, INIT);
        }
        playlist
    }

    pub(super) fn maps(text: &str) -> Vec<&str> {
        text.lines().filter_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\"")?.strip_suffix('"')).collect()
    }

    #[test]
    fn fmp4_live_playlist_exact_text() {
        let mut playlist = MediaPlaylist::new(Duration::from_secs(2));
        playlist.push(fmp4(0, 2.0, INIT)).expect("valid");
        playlist.push(fmp4(1, 2.0, INIT)).expect("valid");
        let expected = "#EXTM3U\n\
                        #EXT-X-VERSION:6\n\
                        #EXT-X-TARGETDURATION:2\n\
                        #EXT-X-MEDIA-SEQUENCE:0\n\
                        #EXT-X-DISCONTINUITY-SEQUENCE:0\n\
                        #EXT-X-INDEPENDENT-SEGMENTS\n\
                        #EXT-X-MAP:URI=\"init-0.mp4\"\n\
                        #EXT-X-PROGRAM-DATE-TIME:2025-01-01T12:00:00.000Z\n\
                        #EXTINF:2.000,\n\
                        seg-000000.m4s\n\
                        #EXT-X-PROGRAM-DATE-TIME:2025-01-01T12:00:01.000Z\n\
                        #EXTINF:2.000,\n\
                        seg-000001.m4s\n";
        assert_eq!(playlist.render_live(6), expected);
    }

    #[test]
    fn fmp4_vod_exact_text() {
        let mut playlist = MediaPlaylist::new(Duration::from_secs(2));
        playlist.push(Segment { program_date_time: None, ..fmp4(0, 2.0, INIT) }).expect("valid");
        playlist.push(Segment { program_date_time: None, ..fmp4(1, 1.5, INIT) }).expect("valid");
        playlist.end();
        let expected = "#EXTM3U\n\
                        #EXT-X-VERSION:6\n\
                        #EXT-X-TARGETDURATION:2\n\
                        #EXT-X-MEDIA-SEQUENCE:0\n\
                        #EXT-X-PLAYLIST-TYPE:VOD\n\
                        #EXT-X-INDEPENDENT-SEGMENTS\n\
                        #EXT-X-MAP:URI=\"init-0.mp4\"\n\
                        #EXTINF:2.000,\n\
                        seg-000000.m4s\n\
                        #EXTINF:1.500,\n\
                        seg-000001.m4s\n\
                        #EXT-X-ENDLIST\n";
        assert_eq!(playlist.render_full(), expected);
    }

    #[test]
    fn version_is_3_for_ts_and_6_for_fmp4_in_every_plain_view() {
        let mut ts = playlist_with(&[2.0; 3]);
        let mut fmp4_playlist = ll_playlist(3);
        for (playlist, version) in [(&mut ts, "3"), (&mut fmp4_playlist, "6")] {
            assert_eq!(tag(&playlist.render_live(2), "#EXT-X-VERSION"), Some(version));
            assert_eq!(tag(&playlist.render_full(), "#EXT-X-VERSION"), Some(version));
            playlist.end();
            assert_eq!(tag(&playlist.render_full(), "#EXT-X-VERSION"), Some(version));
        }
        assert!(!ts.render_full().contains("#EXT-X-MAP"));
    }

    #[test]
    fn map_tops_every_view_even_after_the_window_slides() {
        let playlist = ll_playlist(5);
        for text in [playlist.render_live(2), playlist.render_live(1), playlist.render_full()] {
            assert_eq!(maps(&text), [INIT]);
            let lines: Vec<&str> = text.lines().collect();
            let map_at = lines.iter().position(|l| l.starts_with("#EXT-X-MAP:")).expect("map listed");
            let first_extinf = lines.iter().position(|l| l.starts_with("#EXTINF:")).expect("segments listed");
            assert!(map_at < first_extinf);
        }
        // The plain live view of a low-latency playlist lists no parts.
        assert!(!playlist.render_live(5).contains("#EXT-X-PART"));
        assert!(!playlist.render_full().contains("#EXT-X-PART"));
    }

    #[test]
    fn a_reconnect_with_a_new_init_gets_its_own_map_after_the_discontinuity() {
        let mut playlist = MediaPlaylist::new(Duration::from_secs(2));
        playlist.push(fmp4(0, 2.0, INIT)).expect("valid");
        playlist.push(fmp4(1, 2.0, INIT)).expect("valid");
        playlist.push(Segment { discontinuity: true, ..fmp4(2, 2.0, "init-1.mp4") }).expect("valid");
        playlist.push(fmp4(3, 2.0, "init-1.mp4")).expect("valid");

        let full = playlist.render_full();
        assert_eq!(maps(&full), [INIT, "init-1.mp4"]);
        assert!(full.contains(
            "seg-000001.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-1.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2025-01-01T12:00:02.000Z\n#EXTINF:2.000,\nseg-000002.m4s\n"
        ));
        // A window starting at the reconnect lists only the new init.
        assert_eq!(maps(&playlist.render_live(2)), ["init-1.mp4"]);
        // A window past it still lists it at the top, without the discontinuity it slid out with.
        let text = playlist.render_live(1);
        assert_eq!(maps(&text), ["init-1.mp4"]);
        assert_eq!(tag(&text, "#EXT-X-DISCONTINUITY-SEQUENCE"), Some("1"));
        assert!(!text.contains("#EXT-X-DISCONTINUITY\n"));
    }

    #[test]
    fn a_new_init_without_discontinuity_is_listed_too() {
        let mut playlist = MediaPlaylist::new(Duration::from_secs(2));
        playlist.push(fmp4(0, 2.0, INIT)).expect("valid");
        playlist.push(fmp4(1, 2.0, "init-1.mp4")).expect("valid");
        playlist.push(fmp4(2, 2.0, "init-1.mp4")).expect("valid");
        assert_eq!(maps(&playlist.render_full()), [INIT, "init-1.mp4"]);
    }

    #[test]
    fn bad_maps_are_rejected() {
        let mut playlist = MediaPlaylist::new(Duration::from_secs(2));
        for map in ["", "init\".mp4", "init.mp4\"\n#EXT-X-ENDLIST", "in it.mp4", "#init.mp4"] {
            assert_eq!(playlist.push(fmp4(0, 2.0, map)), Err(PlaylistError::InvalidUri(map.to_owned())), "{map:?}");
        }
        assert!(playlist.segments().is_empty());
        // MPEG-TS before fMP4 is expressible (the map starts applying); the reverse is not.
        playlist.push(seg(0, 2.0)).expect("valid");
        playlist.push(fmp4(1, 2.0, INIT)).expect("valid");
        assert_eq!(playlist.push(seg(2, 2.0)), Err(PlaylistError::MissingMap { previous: INIT.to_owned() }));
        assert_eq!(playlist.segments().len(), 2);
    }

    #[test]
    fn push_takes_over_the_open_segments_parts() {
        let mut playlist = MediaPlaylist::with_parts(Duration::from_secs(2), Duration::from_millis(500));
        playlist.open_segment(start(0, INIT)).expect("opens");
        playlist.push_part(part(0, 0, 0.5)).expect("valid");
        playlist.push_part(part(0, 1, 0.5)).expect("valid");
        assert_eq!(playlist.open_parts(), [part(0, 0, 0.5), part(0, 1, 0.5)]);
        playlist.push(fmp4(0, 1.0, INIT)).expect("closes");
        assert_eq!(playlist.segments()[0].parts, [part(0, 0, 0.5), part(0, 1, 0.5)]);
        assert!(playlist.open_parts().is_empty());

        // A caller that repeats the parts is checked, not overruled.
        playlist.open_segment(start(1, INIT)).expect("opens");
        playlist.push_part(part(1, 0, 0.5)).expect("valid");
        let wrong = Segment { parts: vec![part(1, 0, 0.4)], ..fmp4(1, 0.5, INIT) };
        assert_eq!(playlist.push(wrong), Err(PlaylistError::OpenSegmentMismatch { uri: "seg-000001.m4s".into(), field: "parts" }));
        playlist.push(Segment { parts: vec![part(1, 0, 0.5)], ..fmp4(1, 0.5, INIT) }).expect("same parts");
        assert_eq!(playlist.segments()[1].parts, [part(1, 0, 0.5)]);

        // Without an open segment, a segment's parts are taken as given (rebuilding a playlist).
        playlist.push(Segment { parts: vec![part(2, 0, 0.5)], ..fmp4(2, 0.5, INIT) }).expect("valid");
        assert_eq!(playlist.segments()[2].parts, [part(2, 0, 0.5)]);
    }

    #[test]
    fn the_closing_segment_must_repeat_what_its_parts_were_announced_with() {
        let mut playlist = ll_playlist(1);
        playlist.open_segment(start(1, INIT)).expect("opens");
        playlist.push_part(part(1, 0, 0.5)).expect("valid");
        let mismatch = |field| Err(PlaylistError::OpenSegmentMismatch { uri: "seg-000001.m4s".into(), field });
        assert_eq!(playlist.push(fmp4(1, 0.5, "init-1.mp4")), mismatch("map"));
        assert_eq!(playlist.push(Segment { discontinuity: true, ..fmp4(1, 0.5, INIT) }), mismatch("discontinuity"));
        assert_eq!(playlist.push(Segment { program_date_time: None, ..fmp4(1, 0.5, INIT) }), mismatch("program_date_time"));
        assert_eq!(playlist.segments().len(), 1);
        assert_eq!(playlist.open_parts().len(), 1);
        playlist.push(fmp4(1, 0.5, INIT)).expect("matches");

        // Opened without a date: the closing segment's date is taken.
        playlist.open_segment(SegmentStart { program_date_time: None, ..start(2, INIT) }).expect("opens");
        playlist.push_part(part(2, 0, 0.5)).expect("valid");
        let open = playlist.render_full();
        playlist.push(fmp4(2, 0.5, INIT)).expect("closes");
        assert_eq!(playlist.segments()[2].program_date_time, seg(2, 0.5).program_date_time);
        assert!(playlist.render_full().starts_with(open.as_str()));
        assert!(playlist.render_full().ends_with("#EXT-X-PROGRAM-DATE-TIME:2025-01-01T12:00:02.000Z\n#EXTINF:0.500,\nseg-000002.m4s\n"));
    }

    #[test]
    fn parts_that_would_break_the_playlist_are_rejected() {
        let mut playlist = MediaPlaylist::with_parts(Duration::from_secs(2), Duration::from_millis(500));
        assert_eq!(playlist.push_part(part(0, 0, 0.5)), Err(PlaylistError::NoOpenSegment));
        playlist.open_segment(start(0, INIT)).expect("opens");
        for uri in ["", "p\".m4s", "p.m4s\",INDEPENDENT=YES", "p.m4s\n#EXT-X-ENDLIST", "#p.m4s", "p q.m4s"] {
            let result = playlist.push_part(Part { uri: uri.to_owned(), ..part(0, 0, 0.5) });
            assert_eq!(result, Err(PlaylistError::InvalidUri(uri.to_owned())), "{uri:?}");
        }
        assert_eq!(playlist.push_part(part(0, 0, 0.0)), Err(PlaylistError::ZeroDuration { uri: "seg-000000.0.m4s".into() }));
        assert!(playlist.open_parts().is_empty());
        assert_eq!(
            playlist.push(Segment { parts: vec![part(0, 0, 0.0)], ..fmp4(0, 2.0, INIT) }),
            Err(PlaylistError::ZeroDuration { uri: "seg-000000.0.m4s".into() })
        );
        assert_eq!(
            playlist.open_segment(SegmentStart { program_date_time: Some("noon".into()), ..start(0, INIT) }),
            Err(PlaylistError::InvalidProgramDateTime("noon".into()))
        );
        assert_eq!(playlist.open_segment(start(0, "a\"b")), Err(PlaylistError::InvalidUri("a\"b".into())));
        assert!(playlist.segments().is_empty());
    }

    #[test]
    fn parts_need_a_low_latency_playlist() {
        let mut playlist = MediaPlaylist::new(Duration::from_secs(2));
        assert_eq!(playlist.open_segment(start(0, INIT)), Err(PlaylistError::NotLowLatency));
        assert_eq!(playlist.push_part(part(0, 0, 0.5)), Err(PlaylistError::NotLowLatency));
        assert_eq!(playlist.push(Segment { parts: vec![part(0, 0, 0.5)], ..fmp4(0, 2.0, INIT) }), Err(PlaylistError::NotLowLatency));
        assert!(playlist.segments().is_empty());
        assert_eq!(playlist.part_target(), None);
    }

    #[test]
    fn an_open_segment_with_listed_parts_cannot_be_reopened() {
        let mut playlist = ll_playlist(1);
        playlist.open_segment(start(1, INIT)).expect("opens");
        // Nothing listed yet: reopening replaces the tags (a reconnect before the first part).
        playlist.open_segment(SegmentStart { discontinuity: true, ..start(1, "init-1.mp4") }).expect("reopens");
        playlist.push_part(part(1, 0, 0.5)).expect("valid");
        assert_eq!(playlist.open_segment(start(2, INIT)), Err(PlaylistError::SegmentInProgress));
        assert_eq!(
            playlist.push(fmp4(1, 0.5, INIT)),
            Err(PlaylistError::OpenSegmentMismatch { uri: "seg-000001.m4s".into(), field: "map" })
        );
        playlist.push(Segment { discontinuity: true, ..fmp4(1, 0.5, "init-1.mp4") }).expect("closes");
        // An open segment must keep the map too.
        assert_eq!(
            playlist.open_segment(SegmentStart { map: None, ..start(2, INIT) }),
            Err(PlaylistError::MissingMap { previous: "init-1.mp4".into() })
        );
    }

    #[test]
    fn nothing_after_end_and_open_parts_are_dropped() {
        let mut playlist = ll_playlist(1);
        playlist.open_segment(start(1, INIT)).expect("opens");
        playlist.push_part(part(1, 0, 0.5)).expect("valid");
        playlist.end();
        assert!(playlist.open_parts().is_empty());
        assert_eq!(playlist.push_part(part(1, 1, 0.5)), Err(PlaylistError::Ended));
        assert_eq!(playlist.open_segment(start(1, INIT)), Err(PlaylistError::Ended));
        assert_eq!(playlist.push(fmp4(1, 0.5, INIT)), Err(PlaylistError::Ended));
        assert_eq!(playlist.segments().len(), 1);
    }

    #[test]
    fn last_msn_part_and_has_from_empty_to_ended() {
        let mut playlist = MediaPlaylist::with_parts(Duration::from_secs(2), Duration::from_millis(500));
        // Empty, and opened with nothing listed yet.
        for _ in 0..2 {
            assert_eq!(playlist.last_msn_part(), None);
            assert!(!playlist.has(0, None));
            assert!(!playlist.has(0, Some(0)));
            playlist.open_segment(start(0, INIT)).expect("opens");
        }

        // Parts only.
        playlist.push_part(part(0, 0, 0.5)).expect("valid");
        playlist.push_part(part(0, 1, 0.5)).expect("valid");
        assert_eq!(playlist.last_msn_part(), Some((0, Some(1))));
        assert!(playlist.has(0, Some(0)) && playlist.has(0, Some(1)));
        assert!(!playlist.has(0, Some(2)));
        assert!(!playlist.has(0, None));

        // Segment just closed: its last part is still the newest thing.
        playlist.push_part(part(0, 2, 0.5)).expect("valid");
        playlist.push_part(part(0, 3, 0.5)).expect("valid");
        playlist.push(fmp4(0, 2.0, INIT)).expect("closes");
        assert_eq!(playlist.last_msn_part(), Some((0, Some(3))));
        assert!(playlist.has(0, None) && playlist.has(0, Some(3)));
        // Past the last part of a closed segment means part 0 of the next one, not listed yet.
        assert!(!playlist.has(0, Some(4)));
        assert!(!playlist.has(1, Some(0)));
        assert!(!playlist.has(1, None));

        // The next segment's first part.
        playlist.open_segment(start(1, INIT)).expect("opens");
        assert_eq!(playlist.last_msn_part(), Some((0, Some(3))));
        playlist.push_part(part(1, 0, 0.5)).expect("valid");
        assert_eq!(playlist.last_msn_part(), Some((1, Some(0))));
        assert!(playlist.has(0, Some(4)) && playlist.has(0, Some(100)));
        assert!(playlist.has(1, Some(0)));
        assert!(!playlist.has(1, Some(1)) && !playlist.has(1, None) && !playlist.has(2, Some(0)));

        // After a discontinuity with a new init: numbering goes on.
        playlist.push(fmp4(1, 0.5, INIT)).expect("closes");
        playlist.open_segment(SegmentStart { discontinuity: true, ..start(2, "init-1.mp4") }).expect("opens");
        playlist.push_part(part(2, 0, 0.5)).expect("valid");
        assert_eq!(playlist.last_msn_part(), Some((2, Some(0))));
        assert!(playlist.has(1, None) && playlist.has(1, Some(1)) && playlist.has(2, Some(0)));
        assert!(!playlist.has(2, None) && !playlist.has(3, None));

        // A segment closed without parts has no LAST-PART.
        playlist.push(Segment { discontinuity: true, ..fmp4(2, 0.5, "init-1.mp4") }).expect("closes");
        playlist.push(fmp4(3, 2.0, "init-1.mp4")).expect("valid");
        assert_eq!(playlist.last_msn_part(), Some((3, None)));
        assert!(playlist.has(3, None) && !playlist.has(3, Some(0)) && !playlist.has(4, None));

        // Ended views list no parts, so the report has none either.
        let mut ended = ll_playlist(2);
        assert_eq!(ended.last_msn_part(), Some((1, Some(3))));
        ended.end();
        assert_eq!(ended.last_msn_part(), Some((1, None)));
        assert!(ended.has(1, Some(3)) && ended.has(1, None) && !ended.has(2, None));

        // An MPEG-TS playlist: segments only.
        let ts = playlist_with(&[2.0; 3]);
        assert_eq!(ts.last_msn_part(), Some((2, None)));
        assert!(ts.has(2, None) && !ts.has(3, None) && !ts.has(2, Some(0)) && ts.has(1, Some(0)));
    }

    #[test]
    fn part_target_covers_every_part_and_never_drops() {
        let mut playlist = MediaPlaylist::with_parts(Duration::from_secs(2), Duration::from_micros(499_800));
        assert_eq!(playlist.part_target(), Some(Duration::from_millis(500)));
        playlist.open_segment(start(0, INIT)).expect("opens");
        playlist.push_part(part(0, 0, 0.4)).expect("valid");
        assert_eq!(playlist.part_target(), Some(Duration::from_millis(500)));
        // A part one frame longer than the target (the cutter allows that): prints as 0.533.
        playlist.push_part(part(0, 1, 0.5334)).expect("valid");
        assert_eq!(playlist.part_target(), Some(Duration::from_millis(533)));
        playlist.push_part(part(0, 2, 0.5)).expect("valid");
        playlist.push(fmp4(0, 1.4334, INIT)).expect("closes");
        cut(&mut playlist, 1, 4, INIT);
        assert_eq!(playlist.part_target(), Some(Duration::from_millis(533)));
        // The target duration is never below the part target.
        let long_parts = MediaPlaylist::with_parts(Duration::from_secs(1), Duration::from_millis(1500));
        assert_eq!(long_parts.target_duration(), 2);
        assert_eq!(MediaPlaylist::with_parts(Duration::from_secs(2), Duration::ZERO).part_target(), Some(Duration::from_millis(1)));
    }
}
