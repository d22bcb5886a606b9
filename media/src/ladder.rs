//! The transcoding ladder as a plan: given the configured rungs and a source's size, which
//! renditions to encode, at which sizes and bitrates, and whether to add a passthrough of the
//! source. The pipeline builds exactly what `plan` returns, for live feeds and uploaded files
//! alike. This module must never touch GStreamer, storage or a clock, and must never plan an
//! upscale, an odd encoded size (x264's 4:2:0 needs even ones) or a rung name that is unsafe as a
//! path component: rung names become directories and URLs (`/hls/{video_id}/{rung}/index.m3u8`).

use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt;

/// Name of the optional passthrough rendition.
pub const SOURCE_RUNG_NAME: &str = "source";

/// Names are path components and URL segments; a short cap keeps paths and logs readable.
pub const MAX_RUNG_NAME_LEN: usize = 32;

/// One configured rendition (`[[media.ladder]]` in the configuration). `width` is the nominal 16:9
/// width, kept for configuration and display; the planned width comes from the source's aspect
/// ratio so a 4:3 or ultra-wide source is not stretched.
pub use ferrocast_core::config::RungConfig as Rung;

/// What the pipeline does for a planned rendition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Encoding {
    /// Scale to the planned size and encode with x264 at this bitrate.
    Transcode { video_bitrate_kbps: u32 },
    /// The source's video as it came in: no scaling, no re-encode. Its size is the source's,
    /// which may be odd; nothing scales it.
    Passthrough,
}

/// One rendition the pipeline must produce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedRung {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub encoding: Encoding,
    /// The rung's frame-rate cap (see [`Rung::max_frame_rate`]); `None`: the source's rate.
    pub max_frame_rate: Option<u32>,
}

/// Rungs under this many lines are capped at [`DEFAULT_SMALL_RUNG_MAX_FRAME_RATE`] unless configured.
const FULL_RATE_MIN_LINES: u32 = 720;
const DEFAULT_SMALL_RUNG_MAX_FRAME_RATE: u32 = 30;

impl PlannedRung {
    /// Whether the ladder encodes this rung (rather than passing the source through).
    pub fn is_transcoded(&self) -> bool {
        matches!(self.encoding, Encoding::Transcode { .. })
    }

    /// How many source frames make one of this rung's: 1, or 2, 4… while the source's rate is
    /// above the cap (half a frame of slack, so 59.94 fps under a cap of 30 is halved once).
    pub fn frame_rate_divisor(&self, source_frame_rate: f64) -> u32 {
        let Some(cap) = self.max_frame_rate.filter(|c| *c > 0) else { return 1 };
        let mut divisor = 1u32;
        while source_frame_rate.is_finite() && source_frame_rate / f64::from(divisor) > f64::from(cap) + 0.5 && divisor < 64 {
            divisor *= 2;
        }
        divisor
    }

    /// This rung's frame rate for a source at `source_frame_rate`.
    pub fn frame_rate(&self, source_frame_rate: f64) -> f64 {
        source_frame_rate / f64::from(self.frame_rate_divisor(source_frame_rate))
    }
}

/// The names of the rungs a pipeline encodes, lowest first (a plan is ascending).
pub fn transcoded_names(rungs: &[PlannedRung]) -> Vec<std::sync::Arc<str>> {
    rungs.iter().filter(|r| r.is_transcoded()).map(|r| std::sync::Arc::from(r.name.as_str())).collect()
}

/// Why a ladder or a source cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LadderError {
    /// A ladder with no rungs would give viewers nothing to play.
    Empty,
    /// Not 1 to `MAX_RUNG_NAME_LEN` characters of `[a-z0-9_-]`.
    InvalidName(String),
    /// Two rungs (or a rung and the passthrough) would write into the same directory.
    DuplicateName(String),
    /// A width or height below 2 pixels, the smallest even size.
    InvalidSize {
        name: String,
        width: u32,
        height: u32,
    },
    ZeroBitrate(String),
    /// The source reported no picture; the caller has caps it should not have trusted.
    InvalidSource {
        width: u32,
        height: u32,
    },
}

impl fmt::Display for LadderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LadderError::Empty => write!(f, "the ladder has no rungs"),
            LadderError::InvalidName(name) => {
                write!(f, "rung name {name:?} must be 1 to {MAX_RUNG_NAME_LEN} characters of a-z, 0-9, '_' or '-'")
            }
            LadderError::DuplicateName(name) => write!(f, "rung name {name:?} is used twice"),
            LadderError::InvalidSize { name, width, height } => {
                write!(f, "rung {name:?} has size {width}x{height}; width and height must be at least 2")
            }
            LadderError::ZeroBitrate(name) => write!(f, "rung {name:?} has a zero video bitrate"),
            LadderError::InvalidSource { width, height } => write!(f, "source size {width}x{height} has no picture"),
        }
    }
}

impl std::error::Error for LadderError {}

/// low 640x360 at 800 kb/s, mid 854x480 at 1400 kb/s, high 1280x720 at 2800 kb/s.
pub fn default_ladder() -> Vec<Rung> {
    ferrocast_core::config::MediaConfig::default().ladder
}

/// Checks a configured ladder on its own, so configuration loading can refuse a bad one at
/// start-up instead of at the first publish.
pub fn validate(ladder: &[Rung]) -> Result<(), LadderError> {
    if ladder.is_empty() {
        return Err(LadderError::Empty);
    }
    let mut seen = HashSet::new();
    for rung in ladder {
        if !is_safe_name(&rung.name) {
            return Err(LadderError::InvalidName(rung.name.clone()));
        }
        if !seen.insert(rung.name.as_str()) {
            return Err(LadderError::DuplicateName(rung.name.clone()));
        }
        if rung.width < 2 || rung.height < 2 {
            return Err(LadderError::InvalidSize { name: rung.name.clone(), width: rung.width, height: rung.height });
        }
        if rung.video_bitrate_kbps == 0 {
            return Err(LadderError::ZeroBitrate(rung.name.clone()));
        }
    }
    Ok(())
}

/// The renditions for a source of `source_width` x `source_height` (display pixels; square pixels
/// assumed), lowest first, with the passthrough last when `include_source` is set.
///
/// A rung's `height` is its number of lines on the picture's short side, as "720p" is labelled
/// everywhere: a portrait source (a phone held upright, a vertical OBS canvas) gets a portrait
/// ladder, 720x1280 for the 720p rung, not a landscape rung squeezed to 406x720.
///
/// A rung taller than the source is skipped: upscaling costs CPU and bandwidth and shows nothing
/// new. A source smaller than every rung still gets the lowest rung, scaled down to the source's
/// height, so viewers always have an encoded rendition with keyframes on segment boundaries; its
/// bitrate shrinks with the pixel count, since a tiny picture cannot use the full budget.
pub fn plan(ladder: &[Rung], source_width: u32, source_height: u32, include_source: bool) -> Result<Vec<PlannedRung>, LadderError> {
    if source_width > 0 && source_height > source_width {
        // Plan the picture turned on its side, then turn every encoded rung back upright.
        let mut planned = plan_landscape(ladder, source_height, source_width, include_source)?;
        for rung in &mut planned {
            if rung.encoding != Encoding::Passthrough {
                std::mem::swap(&mut rung.width, &mut rung.height);
            } else {
                (rung.width, rung.height) = (source_width, source_height);
            }
        }
        return Ok(planned);
    }
    plan_landscape(ladder, source_width, source_height, include_source)
}

/// [`plan`] for a source at least as wide as it is tall.
fn plan_landscape(ladder: &[Rung], source_width: u32, source_height: u32, include_source: bool) -> Result<Vec<PlannedRung>, LadderError> {
    // An empty ladder with the source rung is a relay: the source is repackaged, nothing encoded.
    if !(ladder.is_empty() && include_source) {
        validate(ladder)?;
    }
    if source_width == 0 || source_height == 0 {
        return Err(LadderError::InvalidSource { width: source_width, height: source_height });
    }
    if include_source && ladder.iter().any(|r| r.name == SOURCE_RUNG_NAME) {
        return Err(LadderError::DuplicateName(SOURCE_RUNG_NAME.to_owned()));
    }

    // Configuration order is not trusted to be ascending; the plan always is.
    let mut rungs: Vec<&Rung> = ladder.iter().collect();
    rungs.sort_by_key(|r| (r.height, r.video_bitrate_kbps));

    let transcode = |rung: &Rung, height: u32, video_bitrate_kbps: u32| PlannedRung {
        name: rung.name.clone(),
        width: width_for(height, source_width, source_height),
        height,
        encoding: Encoding::Transcode { video_bitrate_kbps },
        max_frame_rate: rung.max_frame_rate.or((rung.height < FULL_RATE_MIN_LINES).then_some(DEFAULT_SMALL_RUNG_MAX_FRAME_RATE)),
    };

    let mut planned: Vec<PlannedRung> =
        rungs.iter().filter(|r| r.height <= source_height).map(|r| transcode(r, even_floor(r.height), r.video_bitrate_kbps)).collect();

    if planned.is_empty() {
        if let Some(lowest) = rungs.first() {
            let height = even_floor(source_height);
            // Same aspect ratio, so the pixel count scales with the square of the height.
            let scaled = u64::from(lowest.video_bitrate_kbps) * u64::from(height) * u64::from(height)
                / (u64::from(lowest.height) * u64::from(lowest.height));
            let bitrate = u32::try_from(scaled).unwrap_or(lowest.video_bitrate_kbps).max(1);
            planned.push(transcode(lowest, height, bitrate));
        }
    }

    if include_source {
        planned.push(PlannedRung {
            name: SOURCE_RUNG_NAME.to_owned(),
            width: source_width,
            height: source_height,
            encoding: Encoding::Passthrough,
            max_frame_rate: None,
        });
    }
    Ok(planned)
}

fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_RUNG_NAME_LEN
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// The largest even number not above `n`, and at least 2.
fn even_floor(n: u32) -> u32 {
    (n & !1).max(2)
}

/// The even width closest to the source's aspect ratio at `height`, never wider than the source:
/// rounding an odd source width up would be a one-pixel upscale.
fn width_for(height: u32, source_width: u32, source_height: u32) -> u32 {
    let (h, sw, sh) = (u64::from(height), u64::from(source_width), u64::from(source_height));
    // round(h * sw / sh / 2) * 2 in integers: floats would make 853.33 vs 853.5 depend on rounding.
    let nearest_even = (h * sw + sh) / (2 * sh) * 2;
    let nearest_even = u32::try_from(nearest_even).unwrap_or(u32::MAX);
    nearest_even.min(source_width & !1).max(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(planned: &[PlannedRung]) -> Vec<(&str, u32, u32)> {
        planned.iter().map(|r| (r.name.as_str(), r.width, r.height)).collect()
    }

    fn bitrate(rung: &PlannedRung) -> Option<u32> {
        match rung.encoding {
            Encoding::Transcode { video_bitrate_kbps } => Some(video_bitrate_kbps),
            Encoding::Passthrough => None,
        }
    }

    fn rung(name: &str, width: u32, height: u32, video_bitrate_kbps: u32) -> Rung {
        Rung { name: name.to_owned(), width, height, video_bitrate_kbps, max_frame_rate: None }
    }

    #[test]
    fn default_ladder_is_the_documented_one() {
        assert_eq!(default_ladder(), [rung("low", 640, 360, 800), rung("mid", 854, 480, 1400), rung("high", 1280, 720, 2800)]);
        assert_eq!(validate(&default_ladder()), Ok(()));
    }

    #[test]
    fn source_1080p_keeps_all_three() {
        let planned = plan(&default_ladder(), 1920, 1080, false).expect("plan");
        assert_eq!(sizes(&planned), [("low", 640, 360), ("mid", 854, 480), ("high", 1280, 720)]);
        assert_eq!(planned.iter().map(bitrate).collect::<Vec<_>>(), [Some(800), Some(1400), Some(2800)]);
    }

    #[test]
    fn source_720p_keeps_the_rung_of_its_own_height() {
        let planned = plan(&default_ladder(), 1280, 720, false).expect("plan");
        assert_eq!(sizes(&planned), [("low", 640, 360), ("mid", 854, 480), ("high", 1280, 720)]);
    }

    #[test]
    fn source_480p_keeps_low_and_mid() {
        let planned = plan(&default_ladder(), 854, 480, false).expect("plan");
        assert_eq!(sizes(&planned), [("low", 640, 360), ("mid", 854, 480)]);
    }

    #[test]
    fn source_240p_keeps_one_rung_scaled_to_240p() {
        let planned = plan(&default_ladder(), 426, 240, false).expect("plan");
        assert_eq!(sizes(&planned), [("low", 426, 240)]);
        // 800 kb/s for 640x360 scaled by (240/360)^2.
        assert_eq!(bitrate(&planned[0]), Some(355));
    }

    #[test]
    fn tiny_odd_source_gets_even_dimensions_within_the_source() {
        let planned = plan(&default_ladder(), 175, 99, false).expect("plan");
        assert_eq!(sizes(&planned), [("low", 174, 98)]);
        let planned = plan(&default_ladder(), 3, 1, false).expect("plan");
        assert_eq!(sizes(&planned), [("low", 2, 2)]);
    }

    #[test]
    fn four_by_three_source_widths_follow_the_source() {
        let planned = plan(&default_ladder(), 1440, 1080, false).expect("plan");
        assert_eq!(sizes(&planned), [("low", 480, 360), ("mid", 640, 480), ("high", 960, 720)]);
        let planned = plan(&default_ladder(), 640, 480, false).expect("plan");
        assert_eq!(sizes(&planned), [("low", 480, 360), ("mid", 640, 480)]);
    }

    #[test]
    fn planned_sizes_are_even_and_never_above_the_source() {
        for (w, h) in [(1920, 1080), (853, 480), (1279, 719), (2560, 1080), (720, 1280), (1001, 361), (7, 5)] {
            for r in plan(&default_ladder(), w, h, false).expect("plan") {
                assert!(r.width % 2 == 0 && r.height % 2 == 0, "{w}x{h} -> {r:?}");
                assert!(r.width <= w.max(2) && r.height <= h.max(2), "{w}x{h} -> {r:?}");
            }
        }
        // 853 wide at 480 would round to 854: clamped to the source's even width instead.
        assert_eq!(sizes(&plan(&default_ladder(), 853, 480, false).expect("plan"))[1], ("mid", 852, 480));
    }

    #[test]
    fn sixty_fps_is_kept_only_from_720_lines_up_unless_configured() {
        let rates = |ladder: &[Rung], source: f64| -> Vec<f64> {
            plan(ladder, 1920, 1080, true).expect("plan").iter().map(|r| (r.frame_rate(source) * 100.0).round() / 100.0).collect()
        };
        assert_eq!(rates(&default_ladder(), 60.0), [30.0, 30.0, 60.0, 60.0]);
        assert_eq!(rates(&default_ladder(), 50.0), [25.0, 25.0, 50.0, 50.0]);
        assert_eq!(rates(&default_ladder(), 59.94), [29.97, 29.97, 59.94, 59.94]);
        assert_eq!(rates(&default_ladder(), 30.0), [30.0, 30.0, 30.0, 30.0], "nothing to halve");
        assert_eq!(rates(&default_ladder(), 120.0), [30.0, 30.0, 120.0, 120.0]);
        let mut ladder = default_ladder();
        ladder[0].max_frame_rate = Some(60);
        ladder[2].max_frame_rate = Some(30);
        assert_eq!(rates(&ladder, 60.0), [60.0, 30.0, 30.0, 60.0], "a configured cap wins either way");
    }

    #[test]
    fn portrait_sources_get_portrait_rungs_by_their_short_side() {
        // A phone's 720x1280: "720p" is 720 wide, as the short side, not 406x720.
        let planned = plan(&default_ladder(), 720, 1280, true).expect("plan");
        assert_eq!(sizes(&planned), [("low", 360, 640), ("mid", 480, 854), ("high", 720, 1280), ("source", 720, 1280)]);
        let bitrates: Vec<_> = planned.iter().filter_map(bitrate).collect();
        assert_eq!(bitrates, [800, 1400, 2800], "the same pixels cost the same as landscape");
        // A vertical 1080x1920 canvas, and one only 600 wide (no upscale: 360 and 480 only).
        assert_eq!(
            sizes(&plan(&default_ladder(), 1080, 1920, false).expect("plan")),
            [("low", 360, 640), ("mid", 480, 854), ("high", 720, 1280)]
        );
        assert_eq!(sizes(&plan(&default_ladder(), 600, 1000, false).expect("plan")), [("low", 360, 600), ("mid", 480, 800)]);
        // Square stays square, planned as landscape.
        assert_eq!(sizes(&plan(&default_ladder(), 1080, 1080, false).expect("plan"))[2], ("high", 720, 720));
    }

    #[test]
    fn unsorted_configuration_still_plans_lowest_first() {
        let ladder = [rung("high", 1280, 720, 2800), rung("low", 640, 360, 800), rung("mid", 854, 480, 1400)];
        let planned = plan(&ladder, 1920, 1080, false).expect("plan");
        assert_eq!(planned.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["low", "mid", "high"]);
        // The fallback for a tiny source picks the lowest rung, not the first configured.
        assert_eq!(sizes(&plan(&ladder, 320, 180, false).expect("plan")), [("low", 320, 180)]);
    }

    #[test]
    fn an_empty_ladder_with_the_source_is_a_relay() {
        let planned = plan(&[], 1920, 1080, true).expect("plan");
        assert_eq!(
            planned,
            [PlannedRung { name: "source".into(), width: 1920, height: 1080, encoding: Encoding::Passthrough, max_frame_rate: None }]
        );
        assert_eq!(plan(&[], 1920, 1080, false), Err(LadderError::Empty));
    }

    #[test]
    fn include_source_appends_a_passthrough_last() {
        let planned = plan(&default_ladder(), 1280, 720, true).expect("plan");
        assert_eq!(sizes(&planned), [("low", 640, 360), ("mid", 854, 480), ("high", 1280, 720), ("source", 1280, 720)]);
        assert_eq!(planned[3].encoding, Encoding::Passthrough);
        assert!(planned[..3].iter().all(PlannedRung::is_transcoded));

        // The passthrough keeps the source's own size, even an odd one.
        let planned = plan(&default_ladder(), 333, 185, true).expect("plan");
        assert_eq!(sizes(&planned), [("low", 332, 184), ("source", 333, 185)]);
    }

    #[test]
    fn include_source_refuses_a_rung_already_named_source() {
        let ladder = [rung("source", 640, 360, 800)];
        assert_eq!(plan(&ladder, 1920, 1080, true), Err(LadderError::DuplicateName("source".into())));
        assert!(plan(&ladder, 1920, 1080, false).is_ok());
    }

    #[test]
    fn invalid_names_rejected() {
        let too_long = "a".repeat(MAX_RUNG_NAME_LEN + 1);
        for name in ["", "High", "a/b", "..", ".", "hd 720", "720p\n", "é", "a.b", "a\\b", too_long.as_str()] {
            let ladder = [rung(name, 640, 360, 800)];
            assert_eq!(validate(&ladder), Err(LadderError::InvalidName(name.to_owned())), "{name:?}");
            assert_eq!(plan(&ladder, 1920, 1080, false), Err(LadderError::InvalidName(name.to_owned())));
        }
        let longest = "a".repeat(MAX_RUNG_NAME_LEN);
        for name in ["low", "720p", "hd_720-60", longest.as_str()] {
            assert_eq!(validate(&[rung(name, 640, 360, 800)]), Ok(()), "{name:?}");
        }
    }

    #[test]
    fn duplicate_names_rejected() {
        let ladder = [rung("low", 640, 360, 800), rung("low", 854, 480, 1400)];
        assert_eq!(plan(&ladder, 1920, 1080, false), Err(LadderError::DuplicateName("low".into())));
    }

    #[test]
    fn zero_sizes_and_bitrates_rejected() {
        for (w, h) in [(0, 360), (640, 0), (1, 360)] {
            assert_eq!(validate(&[rung("low", w, h, 800)]), Err(LadderError::InvalidSize { name: "low".into(), width: w, height: h }));
        }
        assert_eq!(validate(&[rung("low", 640, 360, 0)]), Err(LadderError::ZeroBitrate("low".into())));
        assert_eq!(validate(&[]), Err(LadderError::Empty));
        for (w, h) in [(0, 1080), (1920, 0)] {
            assert_eq!(plan(&default_ladder(), w, h, false), Err(LadderError::InvalidSource { width: w, height: h }));
        }
    }

    #[test]
    fn errors_read_as_sentences() {
        let message = LadderError::InvalidName("Bad/Name".into()).to_string();
        assert!(message.contains("\"Bad/Name\"") && message.contains("a-z"), "{message}");
    }
}
