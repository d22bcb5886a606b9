//! CODECS strings for the renditions we encode.

/// CODECS for a rung we encode: x264 Main profile at the level its size needs at ≤ 30 fps, plus the
/// audio codec if there is audio.
pub fn encoded_codecs(width: u32, height: u32, frame_rate: f64, audio: Option<&str>) -> String {
    let macroblocks_per_second = f64::from(width.div_ceil(16) * height.div_ceil(16)) * frame_rate.max(1.0);
    // H.264 Table A-1: maximum macroblock rate per level.
    let level = match macroblocks_per_second {
        m if m <= 40_500.0 => 0x1e,  // 3.0
        m if m <= 108_000.0 => 0x1f, // 3.1
        m if m <= 216_000.0 => 0x20, // 3.2
        m if m <= 245_760.0 => 0x28, // 4.0
        m if m <= 522_240.0 => 0x2a, // 4.2
        _ => 0x33,                   // 5.1
    };
    let video = crate::playlist::avc1_codec(0x4d, 0x40, level);
    match audio {
        Some(audio) => format!("{video},{audio}"),
        None => video,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codecs_name_main_profile_at_the_level_the_size_needs() {
        assert_eq!(encoded_codecs(640, 360, 30.0, Some("mp4a.40.2")), "avc1.4d401e,mp4a.40.2");
        assert_eq!(encoded_codecs(854, 480, 30.0, None), "avc1.4d401f");
        assert_eq!(encoded_codecs(1280, 720, 30.0, None), "avc1.4d401f");
        assert_eq!(encoded_codecs(1280, 720, 60.0, None), "avc1.4d4020");
        assert_eq!(encoded_codecs(1920, 1080, 30.0, None), "avc1.4d4028");
    }
}
