//! The CMAF packager: encoded access units in, fragmented MP4 bytes out. `init` writes the
//! initialization segment (ftyp + moov) of one rendition, `fragment` writes one moof + mdat, and
//! `cutter` decides where segments and LL-HLS parts begin and end, emitting each as soon as it is
//! decided. `boxes` is the ISO-BMFF box writer they share.
//!
//! Everything here is plain Rust over plain values: it must never do I/O, never touch GStreamer and
//! never read a clock. Every time comes from the samples' own timestamps, so the same input always
//! gives the same bytes, and every output can be checked in a unit test. Input that would make a
//! wrong file (a backwards timestamp, a composition offset that does not fit) is a
//! [`PackageError`], never a panic.

mod boxes;
pub mod cutter;
pub mod fragment;
pub mod init;

use bytes::Bytes;

pub use cutter::{Cutter, CutterEvent, CutterSettings, DEFAULT_PART_TARGET, DEFAULT_SEGMENT_TARGET};
pub use fragment::{fragment, TrackRun};
pub use init::init_segment;

/// The video codecs the packager can describe in an init segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// H.264: sample entry `avc1` with an `avcC` box.
    Avc,
    /// H.265: sample entry `hvc1` with an `hvcC` box.
    Hevc,
}

/// What one track of a rendition carries, as the init segment describes it. Track ids are the
/// 1-based positions in the slice given to [`init_segment`] or [`Cutter::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackConfig {
    Video {
        codec: VideoCodec,
        /// The AVCDecoderConfigurationRecord or HEVCDecoderConfigurationRecord exactly as received
        /// in the FLV sequence header (it starts with configurationVersion 1).
        config_record: Bytes,
        width: u16,
        height: u16,
        /// Ticks per second of the samples' dts and pts; 90000 by convention.
        timescale: u32,
    },
    /// AAC. The track's timescale is the sample rate, so each frame of 1024 samples lasts 1024 ticks.
    Audio {
        /// The AudioSpecificConfig exactly as received in the FLV AAC sequence header.
        codec_config: Bytes,
        sample_rate: u32,
        channels: u16,
    },
}

impl TrackConfig {
    /// Ticks per second of this track's sample timestamps.
    pub fn timescale(&self) -> u32 {
        match self {
            TrackConfig::Video { timescale, .. } => *timescale,
            TrackConfig::Audio { sample_rate, .. } => *sample_rate,
        }
    }

    pub fn is_video(&self) -> bool {
        matches!(self, TrackConfig::Video { .. })
    }
}

/// One access unit of one track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Decode time in the track's timescale; never negative (tfdt is unsigned).
    pub dts: i64,
    /// Presentation time in the track's timescale; `pts - dts` must fit in 32 bits.
    pub pts: i64,
    /// A sync sample: an IDR (or CRA/BLA) picture for video; every AAC frame is one.
    pub keyframe: bool,
    /// AVC/HEVC: the NAL units, each with a 4-byte big-endian length prefix (as in FLV).
    /// AAC: one raw frame, without ADTS header.
    pub data: Bytes,
}

/// Why the packager refused its input. Every variant is bad input caught before any byte is
/// written; packaging valid input never fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageError {
    #[error("an init segment needs at least one track")]
    NoTracks,
    #[error("track {track_id}: {reason}")]
    InvalidTrack { track_id: u32, reason: &'static str },
    #[error("a cutter needs exactly one video track, got {0}")]
    VideoTrackCount(usize),
    #[error("invalid cutter settings: {0}")]
    InvalidSettings(&'static str),
    #[error("track id {0} is not a track of this rendition")]
    UnknownTrack(u32),
    #[error("track {0} appears twice in one fragment")]
    DuplicateTrack(u32),
    #[error("a fragment needs at least one sample")]
    NoSamples,
    #[error("track {track_id}: sample at dts {dts} has no data")]
    EmptySample { track_id: u32, dts: i64 },
    #[error("track {track_id}: dts {dts} is negative")]
    NegativeDts { track_id: u32, dts: i64 },
    /// A discontinuity: the caller starts a new [`Cutter`].
    #[error("track {track_id}: dts went backwards from {previous} to {dts}")]
    DtsBackwards { track_id: u32, previous: i64, dts: i64 },
    #[error("track {track_id}: the step from dts {dts} to {next_dts} does not fit a 32-bit duration")]
    DurationOverflow { track_id: u32, dts: i64, next_dts: i64 },
    #[error("track {track_id}: composition offset pts {pts} - dts {dts} does not fit in 32 bits")]
    CompositionOffsetOverflow { track_id: u32, dts: i64, pts: i64 },
    /// The last sample of a run needs either the next dts or a previous sample to copy from.
    #[error("track {track_id}: a single sample with no next dts has no duration")]
    UnknownLastDuration { track_id: u32 },
    #[error("{0} is too large for its field in the file")]
    TooLarge(&'static str),
}
