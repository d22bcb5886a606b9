//! The same ladder for a file: probe it, then decode it once through the shared ladder branches as
//! fast as the CPU allows (queues block instead of dropping: nothing may be lost), reporting
//! progress as a share of the duration. Encoded frames leave through appsinks into the same
//! recording (and so the same packager) as a live stream.
//!
//! Any container and codec GStreamer can decode works (decodebin picks the demuxer and decoder).
//! AAC audio (mono or stereo) stops at the parser and is passed through; other audio, and audio
//! with more than two channels, is decoded, downmixed to at most stereo and encoded once to AAC; a file without audio gives video-only renditions. A file without a decodable video
//! stream is refused with a plain message for its owner.

use std::path::Path;
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_pbutils as pbutils;
use gstreamer_pbutils::prelude::*;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::events::RecordingEvent;
use crate::ladder::PlannedRung;
use crate::pipeline::{ladder_branches, Built, EncoderQueue, LadderSettings};
use crate::MediaError;

/// The message a file without video fails with.
pub const NO_VIDEO: &str = "no decodable video stream";
/// How long probing a file may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
/// Raw frames queued in front of each rung's scaler of a file ladder (another few wait between
/// scaler and encoder, see `ladder_branches`).
const FILE_QUEUE_FRAMES: u32 = 4;
/// Decoded frames waiting for the tee: the decoder goes on decoding while the tee waits for the
/// slowest rung's queue to take the last frame.
const DECODED_QUEUE_FRAMES: u32 = 4;
/// How often progress is reported.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// What probing found in a file.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceInfo {
    pub duration: Duration,
    pub width: u32,
    pub height: u32,
    pub frame_rate: f64,
    pub audio: Option<SourceAudio>,
    /// The file says its pictures are shown turned or mirrored (an `image-orientation` tag other
    /// than `rotate-0`): the pipeline turns them upright.
    pub turned: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SourceAudio {
    /// Passed through; `codecs` is its CODECS entry (`mp4a.40.2`).
    Aac { codecs: String },
    /// Decoded and encoded once to AAC-LC.
    Other,
}

/// The size the picture is shown at, which the ladder is planned for: the coded width stretched by
/// the pixel aspect ratio (PAL 720x576 at 64:45 is 1024x576), then turned upright when the file
/// says it is displayed rotated by a quarter turn (a phone's display matrix, which GStreamer reads
/// as the `image-orientation` tag and `videoflip video-direction=auto` applies in the pipeline).
fn display_size(video: &pbutils::DiscovererVideoInfo, orientation: Option<&str>) -> (u32, u32) {
    let (width, height) = (video.width(), video.height());
    let par = video.par();
    let display_width = if par.numer() > 0 && par.denom() > 0 && par.numer() != par.denom() {
        let stretched = (u64::from(width) * par.numer() as u64 + par.denom() as u64 / 2) / par.denom() as u64;
        u32::try_from(stretched).unwrap_or(width).max(1)
    } else {
        width
    };
    if orientation.is_some_and(is_quarter_turn) {
        (height, display_width)
    } else {
        (display_width, height)
    }
}

/// Whether an `image-orientation` tag turns the picture on its side.
fn is_quarter_turn(orientation: &str) -> bool {
    matches!(orientation, "rotate-90" | "rotate-270" | "flip-rotate-90" | "flip-rotate-270")
}

/// Reads a file's streams (blocking; call it off the async runtime).
pub fn probe(path: &Path) -> Result<SourceInfo, MediaError> {
    crate::elements::init()?;
    let uri = gst::glib::filename_to_uri(path, None).map_err(|e| MediaError::Unsupported(e.to_string()))?;
    let discoverer = pbutils::Discoverer::new(gst::ClockTime::from_nseconds(PROBE_TIMEOUT.as_nanos() as u64))
        .map_err(|e| MediaError::Init(e.to_string()))?;
    let info = discoverer.discover_uri(&uri).map_err(|e| {
        tracing::info!(path = %path.display(), error = %e, "probe found no media");
        MediaError::Unsupported(NO_VIDEO.into())
    })?;
    let video = info
        .video_streams()
        .into_iter()
        .find(|v| !v.is_image() && v.width() > 0 && v.height() > 0)
        .ok_or_else(|| MediaError::Unsupported(NO_VIDEO.into()))?;
    let orientation = video.tags().and_then(|tags| tags.get::<gst::tags::ImageOrientation>().map(|o| o.get().to_string()));
    let (width, height) = display_size(&video, orientation.as_deref());
    let rate = video.framerate();
    let frame_rate = if rate.denom() > 0 && rate.numer() > 0 { f64::from(rate.numer()) / f64::from(rate.denom()) } else { 30.0 };
    let audio = info.audio_streams().into_iter().next().map(|a| {
        let is_aac = a.caps().and_then(|caps| {
            let s = caps.structure(0)?;
            Some(s.name() == "audio/mpeg" && s.get::<i32>("mpegversion").ok() == Some(4))
        });
        // More than two channels (5.1 from a camera or a film) is downmixed: players and phones
        // expect stereo, and a 5.1 AAC track is not what hls.js's audio path is tested with.
        if is_aac == Some(true) && a.channels() <= 2 {
            SourceAudio::Aac { codecs: crate::playlist::AAC_LC_CODEC.to_string() }
        } else {
            SourceAudio::Other
        }
    });
    Ok(SourceInfo {
        duration: info.duration().map_or(Duration::ZERO, |d| Duration::from_nanos(d.nseconds())),
        width,
        height,
        frame_rate,
        audio,
        turned: orientation.is_some_and(|o| o != "rotate-0"),
    })
}

#[derive(Clone, Debug)]
pub struct FileSettings {
    pub segment_duration: Duration,
    pub x264_preset: String,
}

/// The description: decodebin stops at AAC when it is passed through (mono or stereo) and decodes
/// everything else. `deinterlace` makes interlaced pictures progressive at the same frame rate
/// (one picture per frame, interpolated from its top field; progressive input passes untouched).
/// `videoflip video-direction=auto` turns pictures upright as the file's
/// orientation tag says; it is left out when there is none, as it copied every frame even then (1 %
/// of a 1080p job's CPU, docs/performance.md §5). The rungs' scaler (`media/scale/`) then scales to square pixels
/// at the planned size, so anamorphic sources come out at their display aspect. The sinks do not
/// preroll (see `ladder_branches`): waiting for them to did hang 1366×768 files.
pub fn describe(path: &Path, info: &SourceInfo, rungs: &[PlannedRung], settings: &FileSettings) -> String {
    let location = path.display().to_string().replace('"', "\\\"");
    let stop_at = match info.audio {
        Some(SourceAudio::Aac { .. }) => "video/x-raw(ANY); audio/x-raw(ANY); audio/mpeg, mpegversion=(int)4",
        _ => "video/x-raw(ANY); audio/x-raw(ANY)",
    };
    let upright = if info.turned { "videoflip video-direction=auto ! " } else { "" };
    let mut d = format!(
        "filesrc location=\"{location}\" ! decodebin name=d caps=\"{stop_at}\" \
         d. ! videoconvert ! deinterlace fields=top ! {upright}\
         queue max-size-buffers={DECODED_QUEUE_FRAMES} max-size-bytes=0 max-size-time=0 ! tee name=vt "
    );
    match info.audio {
        Some(SourceAudio::Aac { .. }) => d.push_str(&format!("d. ! aacparse ! {AAC_OUT} ")),
        Some(SourceAudio::Other) => {
            d.push_str(&format!("d. ! audioconvert ! audioresample ! audio/x-raw,channels=[1,2] ! avenc_aac ! aacparse ! {AAC_OUT} "))
        }
        None => {}
    }
    let ladder = LadderSettings {
        segment_duration: settings.segment_duration,
        x264_preset: settings.x264_preset.clone(),
        zero_latency: false,
        encoder_queue: EncoderQueue::Blocking(FILE_QUEUE_FRAMES),
        frame_rate: info.frame_rate,
        // Two thumbnails: the first frame, then one from the middle, which is kept.
        thumbnail_interval: (info.duration / 2).max(Duration::from_secs(1)),
        source_width: info.width,
        source_height: info.height,
    };
    d.push_str(&ladder_branches(rungs, &ladder));
    d
}

/// Where AAC leaves a file pipeline: raw frames with their AudioSpecificConfig in the caps.
const AAC_OUT: &str = "queue ! audio/mpeg,mpegversion=4,stream-format=raw ! appsink name=audio_out sync=false async=false";

/// What to transcode, and how.
pub struct TranscodeJob<'a> {
    pub path: &'a Path,
    pub info: &'a SourceInfo,
    pub rungs: &'a [PlannedRung],
    pub settings: &'a FileSettings,
}

/// Transcodes the file, publishing progress (0–100) to `progress` about once a second, until it is
/// done (every frame handed on), failed, or `cancel` fires. Frames and thumbnails go to `events`.
pub async fn transcode(
    job: TranscodeJob<'_>,
    events: mpsc::Sender<RecordingEvent>,
    progress: watch::Sender<f64>,
    cancel: CancellationToken,
) -> Result<Outcome, MediaError> {
    let TranscodeJob { path, info, rungs, settings } = job;
    let built = Built::new(&describe(path, info, rungs, settings), rungs, settings.segment_duration, None, events)?;
    built.play()?;
    let Built { pipeline, stats, mut ended } = built;
    let _stop = StopOnDrop(pipeline.clone());
    let mut tick = tokio::time::interval(PROGRESS_INTERVAL);
    loop {
        tokio::select! {
            _ = &mut ended => break,
            () = cancel.cancelled() => return Ok(Outcome::Cancelled),
            _ = tick.tick() => {
                let position = pipeline.query_position::<gst::ClockTime>().map_or(0, |p| p.nseconds());
                let total = info.duration.as_nanos().max(1) as f64;
                progress.send_replace((position as f64 / total * 100.0).clamp(0.0, 99.9));
            }
        }
    }
    if stats.failed.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(Outcome::Failed);
    }
    Ok(Outcome::Done)
}

/// How a file transcode ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every frame was handed to the recording.
    Done,
    /// The pipeline reported an error (the reason came as [`RecordingEvent::Failed`]).
    Failed,
    /// `cancel` fired.
    Cancelled,
}

struct StopOnDrop(gst::Pipeline);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = self.0.set_state(gst::State::Null);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ladder::{default_ladder, plan};

    fn info(audio: Option<SourceAudio>) -> SourceInfo {
        SourceInfo { duration: Duration::from_secs(60), width: 1920, height: 1080, frame_rate: 30.0, audio, turned: false }
    }

    #[test]
    fn file_ladder_passes_aac_through_and_never_drops() {
        let rungs = plan(&default_ladder(), 1920, 1080, false).expect("plan");
        let settings = FileSettings { segment_duration: Duration::from_secs(4), x264_preset: "veryfast".into() };
        let aac = describe(Path::new("/in/clip.mp4"), &info(Some(SourceAudio::Aac { codecs: "mp4a.40.2".into() })), &rungs, &settings);
        assert!(aac.contains("d. ! aacparse ! queue") && aac.contains("appsink name=audio_out") && !aac.contains("avenc_aac"), "{aac}");
        assert!(!aac.contains("leaky=downstream max-size-buffers=8"), "encoder queues block for files: {aac}");
        assert!(!aac.contains("zerolatency") && aac.contains("speed-preset=veryfast"));
        assert_eq!(aac.matches("! appsink name=").count(), 3 + 1 + 1, "three rungs, audio, thumbnail: {aac}");
        let other = describe(Path::new("/in/clip.mkv"), &info(Some(SourceAudio::Other)), &rungs, &settings);
        assert_eq!(other.matches("avenc_aac").count(), 1, "other audio is encoded once");
        let silent = describe(Path::new("/in/clip.webm"), &info(None), &rungs, &settings);
        assert!(!silent.contains("audio_out"));
        assert!(!aac.contains("videoflip"), "nothing to turn: {aac}");
        let phone = describe(Path::new("/in/phone.mp4"), &SourceInfo { turned: true, ..info(None) }, &rungs, &settings);
        assert!(phone.contains("deinterlace fields=top ! videoflip video-direction=auto ! queue"), "{phone}");
        crate::elements::init().expect("gstreamer");
        gst::parse::launch(&aac).expect("valid pipeline description");
    }

    #[test]
    fn probing_a_real_file_finds_its_video_and_aac() {
        let dir = std::env::temp_dir().join(format!("ferrocast-probe-{}", ferrocast_core::ids::new_id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("original");
        let made = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-f", "lavfi", "-i", "sine"])
            .args(["-t", "2", "-c:v", "libx264", "-c:a", "aac", "-f", "mp4"])
            .arg(&path)
            .status()
            .expect("ffmpeg");
        assert!(made.success());
        let info = probe(&path).expect("a video");
        assert_eq!((info.width, info.height, info.frame_rate), (640, 360, 25.0));
        assert!(matches!(info.audio, Some(SourceAudio::Aac { .. })), "{info:?}");
        assert!((info.duration.as_secs_f64() - 2.0).abs() < 0.2, "{info:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn probing_a_text_file_says_there_is_no_video() {
        let dir = std::env::temp_dir().join(format!("ferrocast-probe-{}", ferrocast_core::ids::new_id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("notes.mp4");
        std::fs::write(&path, "these are not the frames you are looking for\n".repeat(100)).expect("write");
        let err = probe(&path).expect_err("not a video");
        assert_eq!(err.to_string(), format!("unsupported input: {NO_VIDEO}"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
