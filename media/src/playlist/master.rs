//! The master playlist (one EXT-X-STREAM-INF per rendition) and what its attributes are made of:
//! bandwidth measured from real segments and CODECS strings. Like the rest of `playlist`, it never
//! does I/O and rejects on the way in whatever it could not write correctly.

use std::time::Duration;

use super::{check_uri, line, PlaylistError, Segment, HLS_VERSION};

/// The CODECS entry for AAC-LC audio: object type 0x40 (MPEG-4 audio), audio object type 2 (LC).
/// The ladder passes the source AAC through untouched, and OBS sends LC.
pub const AAC_LC_CODEC: &str = "mp4a.40.2";

/// Peak and average bit rates of a rendition, in bits per second, for EXT-X-STREAM-INF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bandwidth {
    /// BANDWIDTH: the peak segment bit rate.
    pub peak_bps: u64,
    /// AVERAGE-BANDWIDTH: total bits over total duration.
    pub average_bps: u64,
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

fn bits_per_second(bits: u128, nanos: u128) -> u64 {
    u64::try_from((bits * 1_000_000_000).div_ceil(nanos)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{playlist_with, seg};
    use super::*;
    use crate::playlist::MediaPlaylist;

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
