//! What flows into a recording: coded frames and their codec configurations, from the pipeline's
//! appsinks (transcoded rungs, transcoded audio) or straight from ingest (the passthrough rung and
//! the publisher's AAC), plus session boundaries, thumbnails and failures.
//!
//! Every producer of one video writes into one bounded channel, so the recording sees a single
//! ordered stream: a session's frames never overtake its start, and a finish comes after every
//! frame sent before it. Plain values only; nothing here touches GStreamer or storage.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::package::VideoCodec;
use crate::recording::{Outcome, RenditionInfo};

/// Frames and codec changes of a few seconds of every rung fit; a recording further behind than
/// this has a stalled storage or database, and producers wait (pipelines) rather than grow memory.
pub const EVENT_CAPACITY: usize = 4096;

/// Nanoseconds on the session's media clock: zero at the session's first video frame.
pub type MediaTime = i64;

#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    pub dts: MediaTime,
    pub pts: MediaTime,
    pub keyframe: bool,
    /// Video: length-prefixed NAL units as the codec record declares; audio: one raw AAC frame.
    pub data: Bytes,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoConfig {
    pub codec: VideoCodec,
    /// AVCDecoderConfigurationRecord or HEVCDecoderConfigurationRecord.
    pub record: Bytes,
    pub width: u16,
    pub height: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioConfig {
    /// AAC AudioSpecificConfig.
    pub record: Bytes,
    pub sample_rate: u32,
    pub channels: u16,
}

#[derive(Debug)]
pub enum RecordingEvent {
    /// A new session (first publish, or a reconnect, or a file) with these renditions; what
    /// follows belongs to it.
    Session {
        renditions: Vec<RenditionInfo>,
    },
    VideoConfig {
        rung: Arc<str>,
        config: VideoConfig,
    },
    Video {
        rung: Arc<str>,
        frame: Frame,
    },
    /// The rungs that may stand in for a shed one (the CPU-aware ladder runs): their recent
    /// frames are kept, since a switch may be announced after the stand-in passed its boundary.
    StandIns {
        rungs: Vec<Arc<str>>,
    },
    /// The CPU-aware ladder moved rendition `rung` onto `source`'s frames (its own, or a lower
    /// rung's while it is shed) from media time `at` on (`recording/sources.rs`).
    /// `old_source_ended`: the frames it showed until now have all been sent.
    SourceSwitch {
        rung: Arc<str>,
        source: Arc<str>,
        at: MediaTime,
        old_source_ended: bool,
    },
    /// The audio every rendition carries.
    AudioConfig(AudioConfig),
    Audio(Frame),
    /// A JPEG of a recent picture.
    Thumbnail(Bytes),
    /// The pipeline stopped with an error; the recording fails with this reason at its end.
    Failed(String),
    /// Store what the cutters hold (the publisher left), then answer `done`: another node may
    /// continue the recording from what is stored.
    Flush {
        done: oneshot::Sender<()>,
    },
    /// The end: flush, write the VOD (or fail it), then answer `done`.
    Finish {
        outcome: Outcome,
        done: oneshot::Sender<()>,
    },
}
