//! The Low-Latency HLS live view (RFC 8216bis): the live window with EXT-X-SERVER-CONTROL and
//! EXT-X-PART-INF, the parts of the segments at the live edge and of the open segment, a preload
//! hint for the next part, rendition reports, and the delta update (`_HLS_skip=YES`) that replaces
//! old segments with EXT-X-SKIP. Like the rest of `playlist` it never does I/O or reads a clock:
//! what the origin learned from the request (skip, hint, reports) comes in as [`LiveOptions`], with
//! its URIs checked when those values were built, so rendering cannot fail.
//!
//! The rules this view keeps, and why:
//! - **Parts near the live edge only.** RFC 8216bis section 6.2.2: EXT-X-PART tags SHOULD be
//!   removed once more than three target durations from the end of the playlist. A closed
//!   segment's parts are listed while the segment *starts* at most 3 × EXT-X-TARGETDURATION before
//!   the end of the playlist (the end of the open segment's last part), so no listed part is
//!   further than that by any reading. Whole segments' parts go at once, oldest first, as the RFC
//!   requires. (The origin must keep serving a part for three target durations after it left.)
//! - **Skip boundary.** CAN-SKIP-UNTIL is 6 × EXT-X-TARGETDURATION, the RFC's minimum. A delta update
//!   skips the window's segments whose *end* is more than that before the end of the last closed
//!   segment, so everything within the skip boundary is listed in full. When nothing is that old
//!   no EXT-X-SKIP tag is written (the response is the full window). EXT-X-SKIP replaces the
//!   skipped segments' lines and all their tags, DISCONTINUITY included, and changes neither
//!   MEDIA-SEQUENCE nor DISCONTINUITY-SEQUENCE (RFC 8216bis section 4.4.5.2); EXT-X-MAP is
//!   written again before the first segment after the skip. An ended playlist ignores the
//!   request, as the RFC requires.
//! - **PART-HOLD-BACK** is 3 × PART-TARGET (the RFC's SHOULD; its MUST is 2 ×). HOLD-BACK is left
//!   out: its default is 3 × the target duration, which is what we would write.
//! - **Ended**: no parts, no preload hint (a playlist with ENDLIST MUST NOT have one), ENDLIST last.

use super::{check_quoted_uri, decimal_millis, line, part_line, segment_tags, MediaPlaylist, PlaylistError, HLS_VERSION_LOW_LATENCY};

/// What the origin adds to one response of the low-latency view. `LiveOptions::default()` is a
/// plain reload: no skip, no hint, no reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct LiveOptions<'a> {
    /// The request asked for a delta update (`_HLS_skip=YES`).
    pub skip: bool,
    /// The next part, not yet produced, that players may request ahead (EXT-X-PRELOAD-HINT).
    pub preload_hint: Option<&'a PreloadHint>,
    /// The other renditions' progress, one EXT-X-RENDITION-REPORT each, in this order.
    pub rendition_reports: &'a [RenditionReport],
}

/// The URI of the next part for EXT-X-PRELOAD-HINT:TYPE=PART, checked when made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreloadHint {
    uri: String,
}

impl PreloadHint {
    /// `uri` must be what the part will be listed as: RFC 8216bis requires the hinted URI to match
    /// the later EXT-X-PART's.
    pub fn part(uri: impl Into<String>) -> Result<PreloadHint, PlaylistError> {
        let uri = uri.into();
        check_quoted_uri(&uri)?;
        Ok(PreloadHint { uri })
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }
}

/// Another rendition's progress for EXT-X-RENDITION-REPORT, checked when made. Build it from that
/// rendition's [`MediaPlaylist::last_msn_part`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenditionReport {
    uri: String,
    last_msn: u64,
    last_part: Option<u32>,
}

impl RenditionReport {
    /// `uri` is the other rendition's media playlist relative to this one, e.g.
    /// `../low/index.m3u8`; `last_part` is `None` when its last listed segment has no parts.
    pub fn new(uri: impl Into<String>, last_msn: u64, last_part: Option<u32>) -> Result<RenditionReport, PlaylistError> {
        let uri = uri.into();
        check_quoted_uri(&uri)?;
        Ok(RenditionReport { uri, last_msn, last_part })
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    pub fn last_msn(&self) -> u64 {
        self.last_msn
    }

    pub fn last_part(&self) -> Option<u32> {
        self.last_part
    }
}

impl MediaPlaylist {
    /// The low-latency live view of the last `window` segments (at least one), always version 9.
    /// A playlist made with [`MediaPlaylist::new`] gets the same view without EXT-X-PART-INF,
    /// parts or preload hint: blocking reload and delta updates still apply to it.
    pub fn render_live_ll(&self, window: usize, options: &LiveOptions<'_>) -> String {
        let first = self.window_start(window);
        let target = self.target_duration();
        let part_target = self.part_target_millis();
        let skip_until = u128::from(target) * 6;
        let mut out = String::new();
        line(&mut out, format_args!("#EXTM3U"));
        line(&mut out, format_args!("#EXT-X-VERSION:{HLS_VERSION_LOW_LATENCY}"));
        line(&mut out, format_args!("#EXT-X-TARGETDURATION:{target}"));
        let part_hold_back = part_target.map(|ms| format!(",PART-HOLD-BACK={}", decimal_millis(ms * 3))).unwrap_or_default();
        line(&mut out, format_args!("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={skip_until}.0{part_hold_back}"));
        if let Some(ms) = part_target {
            line(&mut out, format_args!("#EXT-X-PART-INF:PART-TARGET={}", decimal_millis(ms)));
        }
        line(&mut out, format_args!("#EXT-X-MEDIA-SEQUENCE:{first}"));
        line(&mut out, format_args!("#EXT-X-DISCONTINUITY-SEQUENCE:{}", self.discontinuity_sequence(first)));
        line(&mut out, format_args!("#EXT-X-INDEPENDENT-SEGMENTS"));

        let skipped = if options.skip && !self.ended { self.skippable(first, skip_until * 1000) } else { 0 };
        if skipped > 0 {
            line(&mut out, format_args!("#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}"));
        }
        let live_parts = part_target.is_some() && !self.ended;
        let parts_from = if live_parts { self.parts_from(first, u128::from(target) * 3000) } else { self.segments.len() };
        let map = self.render_segments(&mut out, first + skipped, parts_from);

        if live_parts {
            if let Some(open) = self.open.as_ref().filter(|open| !open.parts.is_empty()) {
                let start = &open.start;
                segment_tags(&mut out, map, start.discontinuity, start.map.as_deref(), start.program_date_time.as_deref());
                for part in &open.parts {
                    part_line(&mut out, part);
                }
            }
            if let Some(hint) = options.preload_hint {
                line(&mut out, format_args!("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"", hint.uri));
            }
        }
        for report in options.rendition_reports {
            let last_part = report.last_part.map(|part| format!(",LAST-PART={part}")).unwrap_or_default();
            line(&mut out, format_args!("#EXT-X-RENDITION-REPORT:URI=\"{}\",LAST-MSN={}{last_part}", report.uri, report.last_msn));
        }
        self.render_endlist(&mut out);
        out
    }

    /// How many of the window's segments (from `first`) end more than `boundary_ms` before the
    /// end of the last closed segment. Durations are positive, so they are a prefix.
    fn skippable(&self, first: usize, boundary_ms: u128) -> usize {
        let mut after_end = 0u128;
        for n in (first..self.segments.len()).rev() {
            if after_end > boundary_ms {
                return n + 1 - first;
            }
            after_end += super::millis(self.segments[n].duration);
        }
        0
    }

    /// The first of the window's segments (from `first`) whose parts are listed: those starting at
    /// most `limit_ms` before the end of the playlist, the open segment's parts included.
    fn parts_from(&self, first: usize, limit_ms: u128) -> usize {
        let mut from_start: u128 = self.open_parts().iter().map(|part| super::millis(part.duration)).sum();
        let mut parts_from = self.segments.len();
        for n in (first..self.segments.len()).rev() {
            from_start += super::millis(self.segments[n].duration);
            if from_start > limit_ms {
                break;
            }
            parts_from = n;
        }
        parts_from
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::tests::{cut, fmp4, ll_playlist, maps, part, start, tag, uris, INIT};
    use super::*;
    use crate::playlist::{Part, Segment, SegmentStart};

    fn parts_of(text: &str) -> Vec<&str> {
        text.lines().filter_map(|l| l.strip_prefix("#EXT-X-PART:")).collect()
    }

    /// The attribute `name` of the first `#TAG:` line, e.g. `PART-TARGET` of `#EXT-X-PART-INF`.
    fn attribute<'a>(text: &'a str, tag_name: &str, name: &str) -> Option<&'a str> {
        tag(text, tag_name)?.split(',').find_map(|a| a.strip_prefix(name)?.strip_prefix('='))
    }

    fn seconds(value: Option<&str>) -> f64 {
        value.expect("attribute present").parse().expect("a number")
    }

    fn part_durations(text: &str) -> Vec<f64> {
        parts_of(text).iter().map(|p| seconds(p.strip_prefix("DURATION=").and_then(|d| d.split(',').next()))).collect()
    }

    #[test]
    fn low_latency_live_playlist_exact_text() {
        let mut playlist = ll_playlist(3);
        playlist.open_segment(start(3, INIT)).expect("opens");
        playlist.push_part(part(3, 0, 0.5)).expect("valid");
        playlist.push_part(part(3, 1, 0.5)).expect("valid");
        let hint = PreloadHint::part("seg-000003.2.m4s").expect("valid");
        let reports = [
            RenditionReport::new("../low/index.m3u8", 3, Some(1)).expect("valid"),
            RenditionReport::new("../ts/index.m3u8", 2, None).expect("valid"),
        ];
        let options = LiveOptions { skip: false, preload_hint: Some(&hint), rendition_reports: &reports };
        let expected = concat!(
            "#EXTM3U\n",
            "#EXT-X-VERSION:9\n",
            "#EXT-X-TARGETDURATION:2\n",
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.0,PART-HOLD-BACK=1.500\n",
            "#EXT-X-PART-INF:PART-TARGET=0.500\n",
            "#EXT-X-MEDIA-SEQUENCE:0\n",
            "#EXT-X-DISCONTINUITY-SEQUENCE:0\n",
            "#EXT-X-INDEPENDENT-SEGMENTS\n",
            "#EXT-X-MAP:URI=\"init-0.mp4\"\n",
            // Starts 7 s before the end (6 s of segments + 1 s of open parts): beyond 3 × 2 s.
            "#EXT-X-PROGRAM-DATE-TIME:2025-01-01T12:00:00.000Z\n",
            "#EXTINF:2.000,\n",
            "seg-000000.m4s\n",
            "#EXT-X-PROGRAM-DATE-TIME:2025-01-01T12:00:01.000Z\n",
            "#EXT-X-PART:DURATION=0.500,URI=\"seg-000001.0.m4s\",INDEPENDENT=YES\n",
            "#EXT-X-PART:DURATION=0.500,URI=\"seg-000001.1.m4s\"\n",
            "#EXT-X-PART:DURATION=0.500,URI=\"seg-000001.2.m4s\"\n",
            "#EXT-X-PART:DURATION=0.500,URI=\"seg-000001.3.m4s\"\n",
            "#EXTINF:2.000,\n",
            "seg-000001.m4s\n",
            "#EXT-X-PROGRAM-DATE-TIME:2025-01-01T12:00:02.000Z\n",
            "#EXT-X-PART:DURATION=0.500,URI=\"seg-000002.0.m4s\",INDEPENDENT=YES\n",
            "#EXT-X-PART:DURATION=0.500,URI=\"seg-000002.1.m4s\"\n",
            "#EXT-X-PART:DURATION=0.500,URI=\"seg-000002.2.m4s\"\n",
            "#EXT-X-PART:DURATION=0.500,URI=\"seg-000002.3.m4s\"\n",
            "#EXTINF:2.000,\n",
            "seg-000002.m4s\n",
            "#EXT-X-PROGRAM-DATE-TIME:2025-01-01T12:00:03.000Z\n",
            "#EXT-X-PART:DURATION=0.500,URI=\"seg-000003.0.m4s\",INDEPENDENT=YES\n",
            "#EXT-X-PART:DURATION=0.500,URI=\"seg-000003.1.m4s\"\n",
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"seg-000003.2.m4s\"\n",
            "#EXT-X-RENDITION-REPORT:URI=\"../low/index.m3u8\",LAST-MSN=3,LAST-PART=1\n",
            "#EXT-X-RENDITION-REPORT:URI=\"../ts/index.m3u8\",LAST-MSN=2\n",
        );
        assert_eq!(playlist.render_live_ll(6, &options), expected);
    }

    #[test]
    fn forgetting_the_parts_of_segments_out_of_the_window_changes_no_view() {
        let mut playlist = ll_playlist(20);
        let views = |p: &MediaPlaylist| (p.render_live_ll(6, &LiveOptions::default()), p.render_full());
        let before = views(&playlist);
        playlist.forget_parts_before(14);
        playlist.forget_parts_before(3);
        assert_eq!(views(&playlist), before);
        assert!(playlist.segments()[..14].iter().all(|s| s.parts.is_empty()));
        assert!(playlist.segments()[14..].iter().all(|s| s.parts.len() == 4));
    }

    #[test]
    fn parts_are_listed_only_within_three_target_durations_of_the_end() {
        let mut playlist = ll_playlist(10);
        // Right after a segment closed: segments 7, 8 and 9 start 6, 4 and 2 s before the end.
        let text = playlist.render_live_ll(10, &LiveOptions::default());
        let parents: Vec<&str> = parts_of(&text).iter().filter_map(|p| p.split("URI=\"seg-").nth(1)?.get(..6)).collect();
        assert_eq!(
            parents,
            ["000007", "000007", "000007", "000007", "000008", "000008", "000008", "000008", "000009", "000009", "000009", "000009"]
        );
        assert_eq!(uris(&text).len(), 10);

        // One part into the next segment, segment 7 starts 6.5 s before the end: its parts go.
        playlist.open_segment(start(10, INIT)).expect("opens");
        playlist.push_part(part(10, 0, 0.5)).expect("valid");
        let text = playlist.render_live_ll(10, &LiveOptions::default());
        assert!(!text.contains("seg-000007.0.m4s"));
        assert!(text.contains("seg-000008.0.m4s"));
        assert!(text.ends_with("#EXT-X-PART:DURATION=0.500,URI=\"seg-000010.0.m4s\",INDEPENDENT=YES\n"));
        assert_eq!(parts_of(&text).len(), 9);

        // A window shorter than that lists the parts of its own segments only.
        let text = playlist.render_live_ll(1, &LiveOptions::default());
        assert_eq!(uris(&text), ["seg-000009.m4s"]);
        assert_eq!(parts_of(&text).len(), 5);
    }

    #[test]
    fn open_segment_after_a_reconnect_lists_discontinuity_and_map_before_its_first_part() {
        let mut playlist = ll_playlist(2);
        let reconnect = SegmentStart { discontinuity: true, ..start(2, "init-1.mp4") };
        playlist.open_segment(reconnect).expect("opens");
        playlist.push_part(part(2, 0, 0.5)).expect("valid");
        let open = playlist.render_live_ll(6, &LiveOptions::default());
        assert!(open.ends_with(concat!(
            "seg-000001.m4s\n",
            "#EXT-X-DISCONTINUITY\n",
            "#EXT-X-MAP:URI=\"init-1.mp4\"\n",
            "#EXT-X-PROGRAM-DATE-TIME:2025-01-01T12:00:02.000Z\n",
            "#EXT-X-PART:DURATION=0.500,URI=\"seg-000002.0.m4s\",INDEPENDENT=YES\n",
        )));

        // Closing the segment only appends: players that took the part see the same tags above it.
        playlist.push(Segment { discontinuity: true, ..fmp4(2, 0.5, "init-1.mp4") }).expect("closes");
        let closed = playlist.render_live_ll(6, &LiveOptions::default());
        assert_eq!(closed, format!("{open}#EXTINF:0.500,\nseg-000002.m4s\n"));
        assert_eq!(maps(&closed), [INIT, "init-1.mp4"]);
    }

    #[test]
    fn the_first_parts_of_a_stream_get_the_map() {
        let mut playlist = MediaPlaylist::with_parts(Duration::from_secs(2), Duration::from_millis(500));
        playlist.open_segment(start(0, INIT)).expect("opens");
        let empty = playlist.render_live_ll(6, &LiveOptions::default());
        assert!(empty.ends_with("#EXT-X-INDEPENDENT-SEGMENTS\n"));
        playlist.push_part(part(0, 0, 0.5)).expect("valid");
        let text = playlist.render_live_ll(6, &LiveOptions::default());
        assert!(text.ends_with(concat!(
            "#EXT-X-INDEPENDENT-SEGMENTS\n",
            "#EXT-X-MAP:URI=\"init-0.mp4\"\n",
            "#EXT-X-PROGRAM-DATE-TIME:2025-01-01T12:00:00.000Z\n",
            "#EXT-X-PART:DURATION=0.500,URI=\"seg-000000.0.m4s\",INDEPENDENT=YES\n",
        )));
    }

    #[test]
    fn independent_only_on_parts_that_start_with_a_keyframe() {
        let mut playlist = MediaPlaylist::with_parts(Duration::from_secs(2), Duration::from_millis(500));
        playlist.open_segment(start(0, INIT)).expect("opens");
        playlist.push_part(part(0, 0, 0.5)).expect("valid");
        playlist.push_part(part(0, 1, 0.5)).expect("valid");
        playlist.push_part(Part { independent: true, ..part(0, 2, 0.5) }).expect("valid");
        let text = playlist.render_live_ll(6, &LiveOptions::default());
        let independent: Vec<bool> = parts_of(&text).iter().map(|p| p.ends_with(",INDEPENDENT=YES")).collect();
        assert_eq!(independent, [true, false, true]);
    }

    /// 20 closed 2 s segments; segment 5 is a reconnect with a new init.
    fn reconnected_playlist() -> MediaPlaylist {
        let mut playlist = MediaPlaylist::with_parts(Duration::from_secs(2), Duration::from_millis(500));
        for n in 0..20 {
            let map = if n < 5 { INIT } else { "init-1.mp4" };
            let discontinuity = n == 5;
            playlist.open_segment(SegmentStart { discontinuity, ..start(n, map) }).expect("opens");
            for index in 0..4 {
                playlist.push_part(part(n, index, 0.5)).expect("valid");
            }
            playlist.push(Segment { discontinuity, ..fmp4(n, 2.0, map) }).expect("closes");
        }
        playlist
    }

    const SKIP: LiveOptions<'static> = LiveOptions { skip: true, preload_hint: None, rendition_reports: &[] };

    #[test]
    fn skip_replaces_the_segments_older_than_the_skip_boundary() {
        let playlist = reconnected_playlist();
        let full = playlist.render_live_ll(20, &LiveOptions::default());
        let delta = playlist.render_live_ll(20, &SKIP);
        // CAN-SKIP-UNTIL=12.0: segments 0..=12 end more than 12 s before the end. Segment 13 ends
        // exactly 12 s before it and is kept. MEDIA-SEQUENCE and DISCONTINUITY-SEQUENCE are those
        // of the full window; the skipped reconnect's DISCONTINUITY goes with it; the map in effect
        // is written again for the segments after the skip.
        let header_end = full.find("#EXT-X-MAP:").expect("map listed");
        let kept_from = full.find("#EXT-X-PROGRAM-DATE-TIME:2025-01-01T12:00:13.000Z").expect("segment 13 listed");
        let expected =
            format!("{}#EXT-X-SKIP:SKIPPED-SEGMENTS=13\n#EXT-X-MAP:URI=\"init-1.mp4\"\n{}", &full[..header_end], &full[kept_from..]);
        assert_eq!(delta, expected);
        assert_eq!(tag(&delta, "#EXT-X-MEDIA-SEQUENCE"), Some("0"));
        assert_eq!(tag(&delta, "#EXT-X-DISCONTINUITY-SEQUENCE"), Some("0"));
        assert!(!delta.contains("#EXT-X-DISCONTINUITY\n"));
        assert_eq!(uris(&delta), uris(&full)[13..]);
        // The parts at the live edge are all still there.
        assert_eq!(parts_of(&delta), parts_of(&full));
    }

    #[test]
    fn skip_counts_only_the_windows_segments() {
        let playlist = reconnected_playlist();
        let delta = playlist.render_live_ll(10, &SKIP);
        assert_eq!(tag(&delta, "#EXT-X-MEDIA-SEQUENCE"), Some("10"));
        assert_eq!(tag(&delta, "#EXT-X-DISCONTINUITY-SEQUENCE"), Some("1"));
        assert_eq!(tag(&delta, "#EXT-X-SKIP"), Some("SKIPPED-SEGMENTS=3"));
        assert_eq!(uris(&delta).first(), Some(&"seg-000013.m4s"));
        assert_eq!(maps(&delta), ["init-1.mp4"]);

        // A single-init stream keeps its map after the skip too.
        let delta = ll_playlist(20).render_live_ll(20, &SKIP);
        assert!(delta.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=13\n#EXT-X-MAP:URI=\"init-0.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:"));
    }

    #[test]
    fn nothing_is_skipped_from_a_window_within_the_skip_boundary() {
        let playlist = reconnected_playlist();
        // Seven segments: the oldest ends exactly at the boundary.
        for window in [1, 3, 7] {
            let full = playlist.render_live_ll(window, &LiveOptions::default());
            assert_eq!(playlist.render_live_ll(window, &SKIP), full, "window {window}");
            assert!(!full.contains("#EXT-X-SKIP"));
        }
        assert_eq!(tag(&playlist.render_live_ll(8, &SKIP), "#EXT-X-SKIP"), Some("SKIPPED-SEGMENTS=1"));
    }

    #[test]
    fn ended_view_has_endlist_and_no_parts_hint_or_skip() {
        let mut playlist = ll_playlist(20);
        playlist.open_segment(start(20, INIT)).expect("opens");
        playlist.push_part(part(20, 0, 0.5)).expect("valid");
        playlist.end();
        let hint = PreloadHint::part("seg-000020.1.m4s").expect("valid");
        let reports = [RenditionReport::new("../low/index.m3u8", 19, None).expect("valid")];
        let options = LiveOptions { skip: true, preload_hint: Some(&hint), rendition_reports: &reports };
        let text = playlist.render_live_ll(20, &options);
        assert!(text.ends_with("seg-000019.m4s\n#EXT-X-RENDITION-REPORT:URI=\"../low/index.m3u8\",LAST-MSN=19\n#EXT-X-ENDLIST\n"));
        assert!(!text.contains("#EXT-X-PART:"));
        assert!(!text.contains("#EXT-X-PRELOAD-HINT"));
        assert!(!text.contains("#EXT-X-SKIP"));
        assert_eq!(uris(&text).len(), 20);
        assert_eq!(text.matches("#EXT-X-ENDLIST").count(), 1);
        assert_eq!(tag(&text, "#EXT-X-VERSION"), Some("9"));
    }

    #[test]
    fn server_control_follows_the_target_and_part_target() {
        let mut playlist = MediaPlaylist::with_parts(Duration::from_secs(4), Duration::from_secs(1));
        let text = playlist.render_live_ll(6, &LiveOptions::default());
        assert_eq!(tag(&text, "#EXT-X-SERVER-CONTROL"), Some("CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=24.0,PART-HOLD-BACK=3.000"));
        assert_eq!(tag(&text, "#EXT-X-PART-INF"), Some("PART-TARGET=1.000"));

        // A long segment raises the target duration, and the skip boundary with it.
        playlist.push(fmp4(0, 5.2, INIT)).expect("valid");
        let text = playlist.render_live_ll(6, &LiveOptions::default());
        assert_eq!(tag(&text, "#EXT-X-TARGETDURATION"), Some("5"));
        assert_eq!(attribute(&text, "#EXT-X-SERVER-CONTROL", "CAN-SKIP-UNTIL"), Some("30.0"));
    }

    #[test]
    fn part_target_covers_every_listed_part() {
        let mut playlist = ll_playlist(2);
        playlist.open_segment(start(2, INIT)).expect("opens");
        playlist.push_part(part(2, 0, 0.5334)).expect("valid");
        playlist.push_part(part(2, 1, 0.4)).expect("valid");
        let text = playlist.render_live_ll(6, &LiveOptions::default());
        assert_eq!(tag(&text, "#EXT-X-PART-INF"), Some("PART-TARGET=0.533"));
        assert_eq!(attribute(&text, "#EXT-X-SERVER-CONTROL", "PART-HOLD-BACK"), Some("1.599"));

        playlist.push(fmp4(2, 0.9334, INIT)).expect("closes");
        cut(&mut playlist, 3, 4, INIT);
        let text = playlist.render_live_ll(6, &LiveOptions::default());
        let part_target = seconds(attribute(&text, "#EXT-X-PART-INF", "PART-TARGET"));
        let target = seconds(tag(&text, "#EXT-X-TARGETDURATION"));
        let durations = part_durations(&text);
        assert_eq!(durations.len(), 10);
        assert!(durations.iter().all(|d| *d <= part_target), "{durations:?} above {part_target}");
        // The RFC's relations between them (PART-HOLD-BACK compared in the milliseconds it prints).
        let ms = |seconds: f64| (seconds * 1000.0).round();
        assert!(ms(seconds(attribute(&text, "#EXT-X-SERVER-CONTROL", "PART-HOLD-BACK"))) >= 3.0 * ms(part_target));
        assert!(seconds(attribute(&text, "#EXT-X-SERVER-CONTROL", "CAN-SKIP-UNTIL")) >= 6.0 * target);
        assert!(target >= part_target);
    }

    #[test]
    fn a_playlist_without_parts_gets_blocking_reload_and_skip_only() {
        let mut playlist = MediaPlaylist::new(Duration::from_secs(2));
        for n in 0..10 {
            playlist.push(fmp4(n, 2.0, INIT)).expect("valid");
        }
        let hint = PreloadHint::part("seg-000010.0.m4s").expect("valid");
        let text = playlist.render_live_ll(10, &LiveOptions { skip: true, preload_hint: Some(&hint), rendition_reports: &[] });
        assert_eq!(tag(&text, "#EXT-X-VERSION"), Some("9"));
        assert_eq!(tag(&text, "#EXT-X-SERVER-CONTROL"), Some("CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.0"));
        assert_eq!(tag(&text, "#EXT-X-PART-INF"), None);
        assert_eq!(tag(&text, "#EXT-X-SKIP"), Some("SKIPPED-SEGMENTS=3"));
        assert!(!text.contains("#EXT-X-PRELOAD-HINT"));
    }

    #[test]
    fn hints_and_reports_that_would_break_the_playlist_are_rejected() {
        for uri in ["", "a\".m4s", "a.m4s\"\n#EXT-X-ENDLIST", "a b.m4s", "#a.m4s"] {
            assert_eq!(PreloadHint::part(uri), Err(PlaylistError::InvalidUri(uri.to_owned())), "{uri:?}");
            assert_eq!(RenditionReport::new(uri, 1, None), Err(PlaylistError::InvalidUri(uri.to_owned())), "{uri:?}");
        }
        let report = RenditionReport::new("../low/index.m3u8", 7, Some(2)).expect("valid");
        assert_eq!((report.uri(), report.last_msn(), report.last_part()), ("../low/index.m3u8", 7, Some(2)));
        assert_eq!(PreloadHint::part("seg-000001.0.m4s").expect("valid").uri(), "seg-000001.0.m4s");
    }

    #[test]
    fn reports_built_from_another_renditions_last_msn_part() {
        let mut low = ll_playlist(2);
        low.open_segment(start(2, INIT)).expect("opens");
        low.push_part(part(2, 0, 0.5)).expect("valid");
        let (msn, last_part) = low.last_msn_part().expect("something listed");
        let reports = [RenditionReport::new("../low/index.m3u8", msn, last_part).expect("valid")];
        let text = ll_playlist(2).render_live_ll(6, &LiveOptions { rendition_reports: &reports, ..LiveOptions::default() });
        assert!(text.ends_with("#EXT-X-RENDITION-REPORT:URI=\"../low/index.m3u8\",LAST-MSN=2,LAST-PART=0\n"));
    }
}
