//! What live and file pipelines share: the ladder branches after the source (scale → x264 →
//! splitmuxsink per rung, audio to every rung, a thumbnail branch), and running a pipeline: bus
//! read as an async stream, thumbnails and dropped-frame counts, events on a bounded channel.
//!
//! Element names in every description: `vt` (decoded video tee), `at` (AAC tee), `vin` (coded
//! video tee, live only), `q_{rung}` (encoder queues), `{rung}` (splitmuxsinks), `thumbnail`.
//! Nothing here touches storage, playlists or the database.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tokio::sync::{mpsc, oneshot};

use crate::ladder::{Encoding, PlannedRung};
use crate::MediaError;

/// What a running pipeline reports.
#[derive(Debug)]
pub enum PipelineEvent {
    /// A segment file is complete on local disk (the spool); `start`/`end` are running times.
    SegmentClosed { rung: String, path: PathBuf, start: Duration, end: Duration },
    /// A JPEG of the current picture.
    Thumbnail(Bytes),
    /// The pipeline stopped with an error; no more events follow.
    Failed(String),
}

/// Shared counters the owner can read while the pipeline runs.
#[derive(Default)]
pub struct PipelineStats {
    /// Raw frames dropped in front of encoders, plus frames dropped at the input.
    pub dropped_frames: AtomicU64,
    pub failed: AtomicBool,
}

/// What happens when an encoder falls behind.
#[derive(Clone, Copy, Debug)]
pub enum EncoderQueue {
    /// Live: keep at most this many raw frames, drop the oldest beyond (counted): the source
    /// never waits.
    Leaky(u32),
    /// Files: keep at most this many and make the decoder wait: nothing is dropped.
    Blocking(u32),
}

#[derive(Clone, Debug)]
pub struct LadderSettings {
    pub segment_duration: Duration,
    pub x264_preset: String,
    /// `zerolatency` for live; files can afford look-ahead.
    pub zero_latency: bool,
    pub encoder_queue: EncoderQueue,
    /// Source frame rate, for the keyframe backstop.
    pub frame_rate: f64,
    pub thumbnail_interval: Duration,
    /// Source size, for the thumbnail's aspect.
    pub source_width: u32,
    pub source_height: u32,
}

const THUMBNAIL_WIDTH: u32 = 480;

/// A 480-wide thumbnail with the source's aspect (even height), 16:9 when the source size is unknown.
pub fn thumbnail_size(width: u32, height: u32) -> (u32, u32) {
    if width == 0 || height == 0 {
        return (THUMBNAIL_WIDTH, THUMBNAIL_WIDTH * 9 / 16);
    }
    let h = (u64::from(THUMBNAIL_WIDTH) * u64::from(height) / u64::from(width)) as u32;
    (THUMBNAIL_WIDTH, (h / 2 * 2).max(2))
}

/// Everything after `vt`/`at`/`vin`: one branch per rung and the thumbnail branch.
/// `passthrough_parse` re-parses the coded source for a `source` rung (live only).
pub fn ladder_branches(rungs: &[PlannedRung], settings: &LadderSettings, audio: bool, passthrough_parse: &str, spool: &Path) -> String {
    let mut d = String::new();
    let segment_ns = settings.segment_duration.as_nanos();
    // A backstop only: splitmuxsink requests a keyframe at every split, so all rungs cut at the
    // same instants even when frames are dropped.
    let key_int_max = ((settings.frame_rate.max(1.0) * settings.segment_duration.as_secs_f64() * 2.0).round() as u32).max(2);
    let (leaky, queue_frames) = match settings.encoder_queue {
        EncoderQueue::Leaky(frames) => (" leaky=downstream", frames),
        EncoderQueue::Blocking(frames) => ("", frames),
    };
    let tune = if settings.zero_latency { " tune=zerolatency" } else { "" };
    for rung in rungs {
        let name = &rung.name;
        match rung.encoding {
            Encoding::Transcode { video_bitrate_kbps } => d.push_str(&format!(
                "vt. ! queue name=q_{name}{leaky} max-size-buffers={queue_frames} max-size-bytes=0 max-size-time=0 ! \
                 videoscale ! video/x-raw,width={w},height={h},pixel-aspect-ratio=1/1 ! \
                 x264enc speed-preset={preset}{tune} key-int-max={key_int_max} bframes=0 bitrate={video_bitrate_kbps} \
                 option-string=scenecut=0 ! video/x-h264,profile=main ! h264parse config-interval=-1 ! queue ! {name}.video ",
                w = rung.width,
                h = rung.height,
                preset = settings.x264_preset,
            )),
            Encoding::Passthrough => d.push_str(&format!(
                "vin. ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=3000000000 ! {passthrough_parse} config-interval=-1 ! {name}.video "
            )),
        }
        if audio {
            d.push_str(&format!("at. ! queue ! {name}.audio_0 "));
        }
        d.push_str(&format!(
            "splitmuxsink name={name} muxer=mpegtsmux max-size-time={segment_ns} send-keyframe-requests=true location={location} ",
            location = spool.join(format!("{name}_%05d.ts")).display(),
        ));
    }
    let (thumb_w, thumb_h) = thumbnail_size(settings.source_width, settings.source_height);
    d.push_str(&format!(
        "vt. ! queue leaky=downstream max-size-buffers=1 max-size-bytes=0 max-size-time=0 ! videorate drop-only=true ! \
         video/x-raw,framerate=1/{interval} ! videoscale ! video/x-raw,width={thumb_w},height={thumb_h},pixel-aspect-ratio=1/1 ! \
         jpegenc quality=80 ! appsink name=thumbnail sync=false max-buffers=1 drop=true",
        interval = settings.thumbnail_interval.as_secs().max(1),
    ));
    d
}

/// A parsed pipeline, wired to report, not yet playing.
pub struct Built {
    pub pipeline: gst::Pipeline,
    pub stats: Arc<PipelineStats>,
    /// Fires when the bus saw end-of-stream or an error.
    pub ended: oneshot::Receiver<()>,
}

impl Built {
    /// Parses `description`, counts drops at the leaky rung queues, sends thumbnails and segment
    /// events to `events`, and starts reading the bus.
    pub fn new(description: &str, rungs: &[PlannedRung], events: mpsc::Sender<PipelineEvent>) -> Result<Built, MediaError> {
        let pipeline = gst::parse::launch(description)
            .map_err(|e| MediaError::Build(e.to_string()))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| MediaError::Build("not a pipeline".into()))?;
        let stats = Arc::new(PipelineStats::default());
        for rung in rungs.iter().filter(|r| matches!(r.encoding, Encoding::Transcode { .. })) {
            let counter = stats.clone();
            by_name(&pipeline, &format!("q_{}", rung.name))?.connect("overrun", false, move |_| {
                counter.dropped_frames.fetch_add(1, Ordering::Relaxed);
                None
            });
        }
        let thumbnails = events.clone();
        let thumbnail_sink = by_name(&pipeline, "thumbnail")?
            .downcast::<gst_app::AppSink>()
            .map_err(|_| MediaError::Build("thumbnail is not an appsink".into()))?;
        thumbnail_sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if let Some(buffer) = sample.buffer() {
                        if let Ok(map) = buffer.map_readable() {
                            // Dropping a thumbnail when the channel is full is harmless: another comes.
                            let _ = thumbnails.try_send(PipelineEvent::Thumbnail(Bytes::copy_from_slice(map.as_slice())));
                        }
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        let bus = pipeline.bus().ok_or_else(|| MediaError::Build("pipeline without a bus".into()))?;
        let (ended_tx, ended) = oneshot::channel();
        tokio::spawn(watch_bus(bus, events, stats.clone(), ended_tx));
        Ok(Built { pipeline, stats, ended })
    }

    pub fn play(&self) -> Result<(), MediaError> {
        self.pipeline.set_state(gst::State::Playing).map_err(|e| MediaError::Pipeline(format!("cannot start: {e}")))?;
        Ok(())
    }
}

pub fn by_name(pipeline: &gst::Pipeline, name: &str) -> Result<gst::Element, MediaError> {
    pipeline.by_name(name).ok_or_else(|| MediaError::Build(format!("no element {name}")))
}

/// Reads the bus until end-of-stream or an error, turning splitmuxsink's fragment messages into
/// [`PipelineEvent::SegmentClosed`].
async fn watch_bus(bus: gst::Bus, events: mpsc::Sender<PipelineEvent>, stats: Arc<PipelineStats>, ended: oneshot::Sender<()>) {
    let mut opened: HashMap<String, Duration> = HashMap::new();
    let mut messages = bus.stream();
    while let Some(message) = messages.next().await {
        use gst::MessageView;
        match message.view() {
            MessageView::Element(element) => {
                let (Some(structure), Some(source)) = (element.structure(), element.src()) else { continue };
                let rung = source.name().to_string();
                let running_time = structure.get::<u64>("running-time").map(Duration::from_nanos);
                match (structure.name().as_str(), running_time) {
                    ("splitmuxsink-fragment-opened", Ok(at)) => {
                        opened.insert(rung, at);
                    }
                    ("splitmuxsink-fragment-closed", Ok(end)) => {
                        let Ok(location) = structure.get::<String>("location") else { continue };
                        let start = opened.remove(&rung).unwrap_or(end);
                        let closed = PipelineEvent::SegmentClosed { rung, path: PathBuf::from(location), start, end };
                        if events.send(closed).await.is_err() {
                            break;
                        }
                    }
                    _ => {}
                }
            }
            MessageView::Error(error) => {
                let source = error.src().map(|s| s.name().to_string()).unwrap_or_default();
                let reason = format!("{source}: {}", error.error());
                tracing::warn!(%reason, debug = ?error.debug(), "pipeline failed");
                stats.failed.store(true, Ordering::Relaxed);
                let _ = events.send(PipelineEvent::Failed(reason)).await;
                break;
            }
            MessageView::Eos(_) => break,
            _ => {}
        }
    }
    let _ = ended.send(());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnails_keep_the_source_aspect() {
        assert_eq!(thumbnail_size(1280, 720), (480, 270));
        assert_eq!(thumbnail_size(640, 480), (480, 360));
        assert_eq!(thumbnail_size(0, 0), (480, 270));
    }
}
