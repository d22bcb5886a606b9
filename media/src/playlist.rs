//! HLS playlists (RFC 8216) as plain values. A `MediaPlaylist` holds one rendition's segments, appended
//! as the pipeline finishes them, and renders the live window, the full event playlist while live, and
//! the VOD playlist once ended. A `MasterPlaylist` lists the renditions. Helpers measure bandwidth
//! from real segments and format CODECS strings. This module must never do I/O, touch GStreamer or
//! read a clock: every line it writes comes from its arguments, so a unit test can check every view.
//! It must also never write a line that a caller smuggled in: a URI, a query or a date that would
//! break or inject a playlist line is rejected when it comes in, so rendering cannot fail.

use std::fmt;
use std::fmt::Write as _;
use std::time::Duration;

/// Why 3: EXTINF durations with decimals need version 3 (RFC 8216 section 7), and nothing else we
/// write needs more. MPEG-TS segments carry their own codec headers, so there is no EXT-X-MAP
/// (versions 5/6), and there are no byte ranges or I-frame playlists (version 4). A low version
/// keeps old players (TVs, set-top boxes) working. fMP4/CMAF segments will need EXT-X-MAP and 6+.
pub const HLS_VERSION: u32 = 3;

/// The CODECS entry for AAC-LC audio: object type 0x40 (MPEG-4 audio), audio object type 2 (LC).
/// The ladder passes the source AAC through untouched, and OBS sends LC.
pub const AAC_LC_CODEC: &str = "mp4a.40.2";

/// Why a media playlist or a variant could not take a value. Every variant is a caller bug or bad
/// input caught at the door; rendering itself never fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaylistError {
    /// The playlist already carries EXT-X-ENDLIST; players stop reloading, so a later segment
    /// would never be seen.
    Ended,
    /// Empty, not printable ASCII, containing whitespace, or starting with `#` (which would turn
    /// the URI line into a tag or a comment).
    InvalidUri(String),
    /// Not an RFC 3339 date-time such as `2025-01-01T12:00:00.000Z`.
    InvalidProgramDateTime(String),
    /// A segment with no media would divide by zero in the bandwidth measurement and confuses
    /// players' buffer arithmetic.
    ZeroDuration { uri: String },
    /// A variant whose attributes would be wrong or unparseable in EXT-X-STREAM-INF.
    InvalidVariant { uri: String, reason: &'static str },
}

impl fmt::Display for PlaylistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlaylistError::Ended => write!(f, "the playlist has ended; no more segments can be added"),
            PlaylistError::InvalidUri(uri) => write!(f, "invalid playlist URI {uri:?}"),
            PlaylistError::InvalidProgramDateTime(value) => write!(f, "invalid program date-time {value:?}, expected RFC 3339"),
            PlaylistError::ZeroDuration { uri } => write!(f, "segment {uri:?} has zero duration"),
            PlaylistError::InvalidVariant { uri, reason } => write!(f, "invalid variant {uri:?}: {reason}"),
        }
    }
}

impl std::error::Error for PlaylistError {}

/// One finished media segment, already written to storage.
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

/// Peak and average bit rates of a rendition, in bits per second, for EXT-X-STREAM-INF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bandwidth {
    /// BANDWIDTH: the peak segment bit rate.
    pub peak_bps: u64,
    /// AVERAGE-BANDWIDTH: total bits over total duration.
    pub average_bps: u64,
}

/// One rendition's playlist, from the first segment of a live video to its ENDLIST.
///
/// It keeps every segment (not only the live window) because the full event/VOD view lists them
/// all; at a few dozen bytes per segment, a long stream costs well under a megabyte.
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
}

impl MediaPlaylist {
    /// `segment_duration` is the configured (keyframe-aligned) segment length; the target duration
    /// never goes below it, so players size their reload interval from the start.
    pub fn new(segment_duration: Duration) -> Self {
        MediaPlaylist { segment_duration, segments: Vec::new(), longest_rounded_secs: 0, ended: false }
    }

    /// Appends a finished segment. Call this only after the segment is in storage: a listed segment
    /// that 404s stalls every player.
    pub fn push(&mut self, segment: Segment) -> Result<(), PlaylistError> {
        if self.ended {
            return Err(PlaylistError::Ended);
        }
        check_uri(&segment.uri)?;
        if segment.duration.is_zero() {
            return Err(PlaylistError::ZeroDuration { uri: segment.uri });
        }
        if let Some(date) = &segment.program_date_time {
            if !is_rfc3339_date_time(date) {
                return Err(PlaylistError::InvalidProgramDateTime(date.clone()));
            }
        }
        self.longest_rounded_secs = self.longest_rounded_secs.max(rounded_secs(segment.duration));
        self.segments.push(segment);
        Ok(())
    }

    /// Marks the stream as over: every view gets EXT-X-ENDLIST and the full view becomes VOD.
    /// Idempotent, because unpublish and shutdown may both get here.
    pub fn end(&mut self) {
        self.ended = true;
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// EXT-X-TARGETDURATION in whole seconds: at least the configured segment duration rounded
    /// up, at least every appended segment's EXTINF rounded to the nearest second, and at least 1
    /// so a playlist with no segments yet still tells players a sane reload interval.
    pub fn target_duration(&self) -> u64 {
        ceil_secs(self.segment_duration).max(self.longest_rounded_secs).max(1)
    }

    /// Measured bandwidth of everything appended so far; `None` before the first segment.
    pub fn bandwidth(&self) -> Option<Bandwidth> {
        measure_bandwidth(&self.segments, Duration::from_secs(self.target_duration()))
    }

    /// The sliding live playlist: the last `window` segments (at least one). MEDIA-SEQUENCE counts
    /// the segments that slid out, DISCONTINUITY-SEQUENCE the discontinuities that slid out with
    /// them. There is no PLAYLIST-TYPE, because a sliding window is neither EVENT nor VOD. Once
    /// ended, it gets ENDLIST too, so players watching live stop reloading.
    pub fn render_live(&self, window: usize) -> String {
        let first = self.segments.len().saturating_sub(window.max(1));
        let discontinuity_sequence = self.segments[..first].iter().filter(|s| s.discontinuity).count();
        let mut out = self.header(first);
        line(&mut out, format_args!("#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuity_sequence}"));
        line(&mut out, format_args!("#EXT-X-INDEPENDENT-SEGMENTS"));
        self.render_segments(&mut out, first);
        out
    }

    /// The whole recording: `EVENT` while live (players may seek back to the start, and the list
    /// only grows), `VOD` with ENDLIST once ended (the list is final and may be cached forever).
    pub fn render_full(&self) -> String {
        let mut out = self.header(0);
        let playlist_type = if self.ended { "VOD" } else { "EVENT" };
        line(&mut out, format_args!("#EXT-X-PLAYLIST-TYPE:{playlist_type}"));
        line(&mut out, format_args!("#EXT-X-INDEPENDENT-SEGMENTS"));
        self.render_segments(&mut out, 0);
        out
    }

    fn header(&self, media_sequence: usize) -> String {
        let mut out = String::new();
        line(&mut out, format_args!("#EXTM3U"));
        line(&mut out, format_args!("#EXT-X-VERSION:{HLS_VERSION}"));
        line(&mut out, format_args!("#EXT-X-TARGETDURATION:{}", self.target_duration()));
        line(&mut out, format_args!("#EXT-X-MEDIA-SEQUENCE:{media_sequence}"));
        out
    }

    /// INDEPENDENT-SEGMENTS (written by the callers) is honest because the ladder forces a keyframe
    /// at every segment start (fixed GOP = segment duration), and the passthrough rung is split at
    /// the source's keyframes.
    fn render_segments(&self, out: &mut String, first: usize) {
        for segment in &self.segments[first..] {
            if segment.discontinuity {
                line(out, format_args!("#EXT-X-DISCONTINUITY"));
            }
            if let Some(date) = &segment.program_date_time {
                line(out, format_args!("#EXT-X-PROGRAM-DATE-TIME:{date}"));
            }
            line(out, format_args!("#EXTINF:{},", extinf(segment.duration)));
            line(out, format_args!("{}", segment.uri));
        }
        if self.ended {
            line(out, format_args!("#EXT-X-ENDLIST"));
        }
    }
}

/// One rendition as the master playlist announces it.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// The rendition's media playlist, relative to the master, e.g. `high/index.m3u8`.
    pub uri: String,
    /// Peak bits per second, audio included (BANDWIDTH).
    pub bandwidth: u64,
    /// Average bits per second, audio included (AVERAGE-BANDWIDTH).
    pub average_bandwidth: u64,
    pub width: u32,
    pub height: u32,
    pub frame_rate: f64,
    /// The full CODECS value, e.g. `avc1.64001f,mp4a.40.2`.
    pub codecs: String,
}

/// The master playlist: one EXT-X-STREAM-INF per rendition.
#[derive(Debug, Clone, Default)]
pub struct MasterPlaylist {
    variants: Vec<Variant>,
}

impl MasterPlaylist {
    pub fn new() -> Self {
        MasterPlaylist::default()
    }

    pub fn push(&mut self, variant: Variant) -> Result<(), PlaylistError> {
        check_uri(&variant.uri)?;
        let invalid = |reason| Err(PlaylistError::InvalidVariant { uri: variant.uri.clone(), reason });
        if self.variants.iter().any(|v| v.uri == variant.uri) {
            return invalid("duplicate URI");
        }
        if variant.bandwidth == 0 {
            return invalid("BANDWIDTH must be positive");
        }
        if variant.average_bandwidth > variant.bandwidth {
            return invalid("AVERAGE-BANDWIDTH above BANDWIDTH");
        }
        if variant.width == 0 || variant.height == 0 {
            return invalid("RESOLUTION must be positive");
        }
        if !(variant.frame_rate.is_finite() && variant.frame_rate > 0.0) {
            return invalid("FRAME-RATE must be a positive number");
        }
        // CODECS is a quoted string: a quote would end it early, and a space or a line break has
        // no place in a codec list.
        if variant.codecs.is_empty() || !variant.codecs.chars().all(|c| c.is_ascii_graphic() && c != '"') {
            return invalid("CODECS must be a non-empty list without quotes or spaces");
        }
        self.variants.push(variant);
        Ok(())
    }

    pub fn variants(&self) -> &[Variant] {
        &self.variants
    }

    /// Variants are listed by ascending BANDWIDTH. Players that start with the first listed
    /// variant (Apple's native players do) then start on the lowest rung: the first segment
    /// arrives fast on any network and ABR climbs within a few segments, whereas starting high
    /// stalls a phone on a weak link before the first frame. Players that measure first pick
    /// their own start and are not affected by the order.
    pub fn render(&self) -> String {
        let mut variants: Vec<&Variant> = self.variants.iter().collect();
        variants.sort_by_key(|v| v.bandwidth);
        let mut out = String::new();
        line(&mut out, format_args!("#EXTM3U"));
        line(&mut out, format_args!("#EXT-X-VERSION:{HLS_VERSION}"));
        line(&mut out, format_args!("#EXT-X-INDEPENDENT-SEGMENTS"));
        for v in variants {
            line(
                &mut out,
                format_args!(
                    "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},RESOLUTION={}x{},FRAME-RATE={:.3},CODECS=\"{}\"",
                    v.bandwidth, v.average_bandwidth, v.width, v.height, v.frame_rate, v.codecs
                ),
            );
            line(&mut out, format_args!("{}", v.uri));
        }
        out
    }
}

/// Measures BANDWIDTH and AVERAGE-BANDWIDTH from real segments, rounding up so the announced
/// values are never below what a player will have to download.
///
/// The peak follows RFC 8216 section 4.3.4.2: the highest bit rate of any run of consecutive
/// segments lasting between half and one and a half target durations. While segments are close to
/// the target duration that is simply the highest single-segment rate; the difference is the short
/// last segment of a stream stopped mid-GOP, which is mostly keyframe and would otherwise announce
/// a peak no viewer ever needs. If no run qualifies, the highest single-segment rate is used. The
/// peak is never below the average. `None` when there is no media to measure.
pub fn measure_bandwidth(segments: &[Segment], target_duration: Duration) -> Option<Bandwidth> {
    let total_bits: u128 = segments.iter().map(|s| u128::from(s.bytes) * 8).sum();
    let total_nanos: u128 = segments.iter().map(|s| s.duration.as_nanos()).sum();
    if total_nanos == 0 {
        return None;
    }
    let average = bits_per_second(total_bits, total_nanos);

    let shortest_run = target_duration.as_nanos() / 2;
    let longest_run = target_duration.as_nanos() * 3 / 2;
    let mut run_peak: Option<u64> = None;
    for start in 0..segments.len() {
        let (mut bits, mut nanos) = (0u128, 0u128);
        for segment in &segments[start..] {
            bits += u128::from(segment.bytes) * 8;
            nanos += segment.duration.as_nanos();
            if nanos > longest_run {
                break;
            }
            if nanos > 0 && nanos >= shortest_run {
                run_peak = run_peak.max(Some(bits_per_second(bits, nanos)));
            }
        }
    }
    let peak = run_peak.unwrap_or_else(|| {
        segments
            .iter()
            .filter(|s| !s.duration.is_zero())
            .map(|s| bits_per_second(u128::from(s.bytes) * 8, s.duration.as_nanos()))
            .max()
            .unwrap_or(average)
    });
    Some(Bandwidth { peak_bps: peak.max(average), average_bps: average })
}

/// The CODECS entry for an H.264 stream: `avc1.` then profile_idc, the constraint-flag byte and
/// level_idc as two hex digits each (RFC 6381 section 3.3), e.g. High 3.1 = `avc1.64001f`. The
/// three values are bytes 1..4 of the AVCDecoderConfigurationRecord (or of the SPS).
pub fn avc1_codec(profile_idc: u8, constraint_flags: u8, level_idc: u8) -> String {
    format!("avc1.{profile_idc:02x}{constraint_flags:02x}{level_idc:02x}")
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

/// Durations are quantised to the millisecond that EXTINF prints, and everything else (the target
/// duration's rounding) is derived from that same number: rounding the raw duration could give
/// 2 for 2.4996 s while the playlist says `2.500`, which a player rounds to 3.
fn millis(duration: Duration) -> u128 {
    (duration.as_nanos() + 500_000) / 1_000_000
}

fn extinf(duration: Duration) -> String {
    let ms = millis(duration);
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

fn bits_per_second(bits: u128, nanos: u128) -> u64 {
    u64::try_from((bits * 1_000_000_000).div_ceil(nanos)).unwrap_or(u64::MAX)
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

    fn seg(n: usize, secs: f64) -> Segment {
        Segment {
            uri: format!("seg-{n:06}.ts"),
            duration: Duration::from_secs_f64(secs),
            bytes: 500_000,
            program_date_time: Some(format!("2025-01-01T12:00:{:02}.000Z", n % 60)),
            discontinuity: false,
        }
    }

    fn playlist_with(durations: &[f64]) -> MediaPlaylist {
        let mut playlist = MediaPlaylist::new(Duration::from_secs(2));
        for (n, secs) in durations.iter().enumerate() {
            playlist.push(seg(n, *secs)).expect("valid segment");
        }
        playlist
    }

    /// The value of a `#TAG:value` line, or `None` when the tag is absent.
    fn tag<'a>(text: &'a str, name: &str) -> Option<&'a str> {
        text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
    }

    fn uris(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    fn extinfs(text: &str) -> Vec<f64> {
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

    fn variant(uri: &str, bandwidth: u64, width: u32, height: u32) -> Variant {
        Variant {
            uri: uri.to_owned(),
            bandwidth,
            average_bandwidth: bandwidth * 3 / 4,
            width,
            height,
            frame_rate: 30_000.0 / 1_001.0,
            codecs: format!("{},{AAC_LC_CODEC}", avc1_codec(0x64, 0x00, 0x1f)),
        }
    }

    #[test]
    fn master_exact_text_sorted_by_ascending_bandwidth() {
        let mut master = MasterPlaylist::new();
        master.push(variant("high/index.m3u8", 3_128_000, 1280, 720)).expect("valid");
        master.push(variant("low/index.m3u8", 1_000_000, 640, 360)).expect("valid");
        master.push(Variant { frame_rate: 60.0, ..variant("mid/index.m3u8", 1_600_000, 854, 480) }).expect("valid");
        let expected = concat!(
            "#EXTM3U\n",
            "#EXT-X-VERSION:3\n",
            "#EXT-X-INDEPENDENT-SEGMENTS\n",
            "#EXT-X-STREAM-INF:BANDWIDTH=1000000,AVERAGE-BANDWIDTH=750000,",
            "RESOLUTION=640x360,FRAME-RATE=29.970,CODECS=\"avc1.64001f,mp4a.40.2\"\n",
            "low/index.m3u8\n",
            "#EXT-X-STREAM-INF:BANDWIDTH=1600000,AVERAGE-BANDWIDTH=1200000,",
            "RESOLUTION=854x480,FRAME-RATE=60.000,CODECS=\"avc1.64001f,mp4a.40.2\"\n",
            "mid/index.m3u8\n",
            "#EXT-X-STREAM-INF:BANDWIDTH=3128000,AVERAGE-BANDWIDTH=2346000,",
            "RESOLUTION=1280x720,FRAME-RATE=29.970,CODECS=\"avc1.64001f,mp4a.40.2\"\n",
            "high/index.m3u8\n",
        );
        assert_eq!(master.render(), expected);
        assert_eq!(master.variants().len(), 3);
    }

    #[test]
    fn master_rejects_variants_it_cannot_describe() {
        let mut master = MasterPlaylist::new();
        master.push(variant("low/index.m3u8", 1_000_000, 640, 360)).expect("valid");
        let bad = [
            variant("low/index.m3u8", 2_000_000, 640, 360),
            variant("a/index.m3u8", 0, 640, 360),
            Variant { average_bandwidth: 2_000_001, ..variant("b/index.m3u8", 2_000_000, 640, 360) },
            variant("c/index.m3u8", 1_000_000, 0, 360),
            Variant { frame_rate: f64::NAN, ..variant("d/index.m3u8", 1_000_000, 640, 360) },
            Variant { frame_rate: 0.0, ..variant("e/index.m3u8", 1_000_000, 640, 360) },
            Variant { codecs: "avc1.64001f\",x".into(), ..variant("f/index.m3u8", 1_000_000, 640, 360) },
            Variant { codecs: String::new(), ..variant("g/index.m3u8", 1_000_000, 640, 360) },
        ];
        for v in bad {
            let uri = v.uri.clone();
            assert!(matches!(master.push(v), Err(PlaylistError::InvalidVariant { uri: u, .. }) if u == uri), "{uri}");
        }
        assert_eq!(master.push(variant("x\n#EXTINF", 1_000_000, 640, 360)), Err(PlaylistError::InvalidUri("x\n#EXTINF".into())));
        assert_eq!(master.variants().len(), 1);
    }

    fn sized(n: usize, secs: f64, bytes: u64) -> Segment {
        Segment { bytes, ..seg(n, secs) }
    }

    #[test]
    fn bandwidth_peak_and_average_from_segments() {
        // 2 s segments of 250, 750 and 250 kB: 1, 3 and 1 Mb/s; 10 Mb over 6 s on average.
        let segments = [sized(0, 2.0, 250_000), sized(1, 2.0, 750_000), sized(2, 2.0, 250_000)];
        let measured = measure_bandwidth(&segments, Duration::from_secs(2)).expect("measured");
        assert_eq!(measured, Bandwidth { peak_bps: 3_000_000, average_bps: 1_666_667 });
    }

    #[test]
    fn bandwidth_rounds_up() {
        let segments = [sized(0, 3.0, 1)];
        assert_eq!(measure_bandwidth(&segments, Duration::from_secs(3)), Some(Bandwidth { peak_bps: 3, average_bps: 3 }));
    }

    #[test]
    fn short_last_segment_does_not_inflate_the_peak() {
        // A stream stopped 0.2 s into a GOP: the last segment is mostly keyframe (8 Mb/s alone).
        let segments = [sized(0, 2.0, 500_000), sized(1, 2.0, 500_000), sized(2, 0.2, 200_000)];
        let measured = measure_bandwidth(&segments, Duration::from_secs(2)).expect("measured");
        // Measured over the last 2.2 s instead: 5.6 Mb over 2.2 s.
        assert_eq!(measured.peak_bps, 2_545_455);
        assert_eq!(measured.average_bps, 2_285_715);
        assert!(measured.peak_bps < 8_000_000);
    }

    #[test]
    fn peak_is_never_below_average() {
        let measured = measure_bandwidth(&[sized(0, 0.5, 100_000)], Duration::from_secs(2)).expect("measured");
        assert_eq!(measured, Bandwidth { peak_bps: 1_600_000, average_bps: 1_600_000 });
        for m in [
            measure_bandwidth(&[sized(0, 2.0, 100), sized(1, 0.9, 900_000)], Duration::from_secs(1)),
            measure_bandwidth(&[sized(0, 1.49, 100), sized(1, 0.4, 900_000)], Duration::from_secs(1)),
        ] {
            let m = m.expect("measured");
            assert!(m.peak_bps >= m.average_bps, "{m:?}");
        }
    }

    #[test]
    fn bandwidth_of_nothing_is_none() {
        assert_eq!(measure_bandwidth(&[], Duration::from_secs(2)), None);
        assert_eq!(MediaPlaylist::new(Duration::from_secs(2)).bandwidth(), None);
    }

    #[test]
    fn playlist_bandwidth_uses_its_own_segments() {
        let playlist = playlist_with(&[2.0, 2.0]);
        assert_eq!(playlist.bandwidth(), Some(Bandwidth { peak_bps: 2_000_000, average_bps: 2_000_000 }));
    }

    #[test]
    fn avc1_codec_strings() {
        assert_eq!(avc1_codec(100, 0x00, 31), "avc1.64001f");
        assert_eq!(avc1_codec(66, 0xe0, 30), "avc1.42e01e");
        assert_eq!(avc1_codec(77, 0x40, 40), "avc1.4d4028");
        assert_eq!(AAC_LC_CODEC, "mp4a.40.2");
    }
}
