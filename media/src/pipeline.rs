//! What live and file pipelines share: the ladder branches after the decoded source (scale → x264 →
//! h264parse → appsink per rung, and a thumbnail branch), keyframes forced at the same instants on
//! every rung, and running a pipeline: appsinks and the bus turned into [`RecordingEvent`]s.
//!
//! GStreamer does pixels only. Each rung's encoded access units leave the pipeline through an
//! appsink (AVC, access-unit aligned, PTS/DTS kept) and are packaged in Rust (`package/`); audio
//! that needs encoding leaves through the appsink `audio_out`. A passthrough rung never enters a
//! pipeline. Element names in every description: `vt` (decoded video tee), `q_{rung}` (encoder
//! queues), `{rung}` (appsinks), `audio_out`, `thumbnail`. Nothing here touches storage,
//! playlists or the database.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use tokio::sync::{mpsc, oneshot};

use crate::events::{AudioConfig, Frame, MediaTime, RecordingEvent, VideoConfig};
use crate::ladder::{Encoding, PlannedRung};
use crate::package::VideoCodec;
use crate::shedding::Gates;
use crate::MediaError;

/// Shared counters the owner can read while the pipeline runs.
#[derive(Default)]
pub struct PipelineStats {
    /// Raw frames dropped in front of encoders, plus frames dropped at the input.
    pub dropped_frames: AtomicU64,
    /// Frames out of the decoder (live) or demuxer-decoder (files), before the ladder's tee.
    pub decoded_frames: AtomicU64,
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

/// Everything after `vt`: one encoder branch per transcoded rung and the thumbnail branch.
/// Passthrough rungs are left out: their frames never enter GStreamer.
///
/// Every appsink is `async=false`: the pipeline must not wait for each sink's first buffer
/// (preroll) before it plays. The branches reach their first output after different numbers of
/// decoded frames (x264's lookahead and frame threads; a half-rate rung needs twice as many; the
/// thumbnail wants one every few seconds), so a file pipeline waiting to preroll deadlocked: the
/// first sink to preroll blocked its branch, its queue filled, the tee stopped, and a branch that
/// needed more frames never got them. A 1366×768 upload and any 60 fps upload with a half-rate
/// rung hung before their first segment that way. (Live pipelines never preroll.)
pub fn ladder_branches(rungs: &[PlannedRung], settings: &LadderSettings) -> String {
    let mut d = String::new();
    // A backstop only: keyframes are forced at every segment boundary (see `force_keyframes`), so
    // all rungs cut at the same instants even when frames are dropped.
    let key_int_max = ((settings.frame_rate.max(1.0) * settings.segment_duration.as_secs_f64() * 2.0).round() as u32).max(2);
    let (leaky, queue_frames) = match settings.encoder_queue {
        EncoderQueue::Leaky(frames) => (" leaky=downstream", frames),
        EncoderQueue::Blocking(frames) => ("", frames),
    };
    // Files: a second queue between scaler and encoder, so that each rung's scaling and encoding
    // run on threads of their own and the two cores stay busy (the file ladder kept 1.65 of 2
    // busy with both on one thread, docs/performance.md §5). Live keeps one queue per rung: there
    // the leaky queue in front of the scaler is where a late frame is dropped, and one more
    // queue would only add latency.
    let scaled_queue = match settings.encoder_queue {
        EncoderQueue::Leaky(_) => String::new(),
        EncoderQueue::Blocking(_) => format!("queue max-size-buffers={SCALED_QUEUE_FRAMES} max-size-bytes=0 max-size-time=0 ! "),
    };
    let tune = if settings.zero_latency { " tune=zerolatency" } else { "" };
    let threads = match settings.zero_latency {
        true => encoder_threads(rungs.iter().filter(|r| r.is_transcoded()).count(), ferrocast_core::cores::available()),
        // Files: x264's frame threads pipeline well and only the wall time matters.
        false => 0,
    };
    for rung in rungs {
        let Encoding::Transcode { video_bitrate_kbps } = rung.encoding else { continue };
        // A rung at a fraction of the source's rate drops frames before scaling them.
        let decimate = match rung.frame_rate_divisor(settings.frame_rate) {
            1 => String::new(),
            _ => {
                let rate = gst::Fraction::approximate_f64(rung.frame_rate(settings.frame_rate)).unwrap_or(gst::Fraction::new(30, 1));
                format!("videorate drop-only=true ! video/x-raw,framerate={}/{} ! ", rate.numer(), rate.denom())
            }
        };
        d.push_str(&format!(
            "vt. ! queue name=q_{name}{leaky} max-size-buffers={queue_frames} max-size-bytes=0 max-size-time=0 ! \
             {decimate}{scale} name={scaler} ! video/x-raw,width={w},height={h},pixel-aspect-ratio=1/1 ! \
             {scaled_queue}x264enc threads={threads} speed-preset={preset}{tune} key-int-max={key_int_max} bframes=0 bitrate={video_bitrate_kbps} \
             option-string=scenecut=0 ! video/x-h264,profile=main ! h264parse ! \
             video/x-h264,stream-format=avc,alignment=au ! appsink name={name} sync=false async=false ",
            name = rung.name,
            w = rung.width,
            h = rung.height,
            preset = settings.x264_preset,
            scale = ferrocast_scale::ELEMENT,
            scaler = scaler_name(&rung.name),
        ));
    }
    let (thumb_w, thumb_h) = thumbnail_size(settings.source_width, settings.source_height);
    d.push_str(&format!(
        "vt. ! queue leaky=downstream max-size-buffers=1 max-size-bytes=0 max-size-time=0 ! videorate drop-only=true ! \
         video/x-raw,framerate=1/{interval} ! {scale} ! video/x-raw,width={thumb_w},height={thumb_h},pixel-aspect-ratio=1/1 ! \
         jpegenc quality=80 ! appsink name=thumbnail sync=false async=false max-buffers=1 drop=true",
        interval = settings.thumbnail_interval.as_secs().max(1),
        scale = ferrocast_scale::ELEMENT,
    ));
    d
}

/// Scaled frames a file rung's encoder may have waiting (see `scaled_queue` in
/// [`ladder_branches`]).
const SCALED_QUEUE_FRAMES: u32 = 3;

/// The name of a rung's scaler: where the CPU-aware ladder's gate sits (`shedding/`).
pub fn scaler_name(rung: &str) -> String {
    format!("scale_{rung}")
}

/// x264 threads per live encoder: one when there are at least as many encoders as cores (they
/// already run side by side, and zerolatency's sliced threads only add hand-offs: on the 2-core
/// machine the live 720p ladder took 0.53 CPU s per media s with x264's default and 0.49 with one
/// thread each, docs/performance.md §1); otherwise x264's own choice (0), so that a lone big rung
/// can use the cores it has.
fn encoder_threads(encoders: usize, cores: usize) -> u32 {
    if encoders >= cores {
        1
    } else {
        0
    }
}

/// A parsed pipeline, wired to report, not yet playing.
pub struct Built {
    pub pipeline: gst::Pipeline,
    pub stats: Arc<PipelineStats>,
    /// Fires when the bus saw end-of-stream or an error.
    pub ended: oneshot::Receiver<()>,
}

impl Built {
    /// Parses `description`, counts drops at the leaky rung queues, forces keyframes at every
    /// `segment_duration` of the decoded video (where `gates`, the CPU-aware ladder's, may stop
    /// or restart a rung), turns every appsink's output into events on `events`, and starts
    /// reading the bus.
    ///
    /// Appsink callbacks run on GStreamer's streaming threads and wait when the channel is full:
    /// a stalled recording backs up into the (leaky, counted) encoder queues, never into memory.
    pub fn new(
        description: &str,
        rungs: &[PlannedRung],
        segment_duration: Duration,
        gates: Option<Arc<Gates>>,
        events: mpsc::Sender<RecordingEvent>,
    ) -> Result<Built, MediaError> {
        let pipeline = gst::parse::launch(description)
            .map_err(|e| MediaError::Build(e.to_string()))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| MediaError::Build("not a pipeline".into()))?;
        let stats = Arc::new(PipelineStats::default());
        for rung in rungs.iter().filter(|r| r.is_transcoded()) {
            // A leaky queue's overrun drops a frame; a blocking one's (files) only makes the
            // decoder wait.
            let queue = by_name(&pipeline, &format!("q_{}", rung.name))?;
            let leaky = gst::glib::EnumValue::from_value(&queue.property_value("leaky")).is_some_and(|(_, leaky)| leaky.value() != 0);
            if leaky {
                let counter = stats.clone();
                queue.connect("overrun", false, move |_| {
                    counter.dropped_frames.fetch_add(1, Ordering::Relaxed);
                    None
                });
            }
            let sink = appsink(&pipeline, &rung.name)?;
            sink.set_callbacks(video_callbacks(Arc::from(rung.name.as_str()), events.clone()));
        }
        if let Some(audio) = pipeline.by_name("audio_out") {
            let sink = audio.downcast::<gst_app::AppSink>().map_err(|_| MediaError::Build("audio_out is not an appsink".into()))?;
            sink.set_callbacks(audio_callbacks(events.clone()));
        }
        if let Some(decoded) = pipeline.by_name("vt") {
            let first = Arc::new(OnceLock::new());
            count_decoded(&decoded, stats.clone(), first.clone())?;
            let transcoded = rungs.iter().filter(|r| r.is_transcoded());
            for (index, rung) in transcoded.enumerate() {
                let scaler = by_name(&pipeline, &scaler_name(&rung.name))?;
                force_keyframes(&scaler, index, segment_duration, first.clone(), gates.clone())?;
            }
        }
        let thumbnails = events.clone();
        appsink(&pipeline, "thumbnail")?.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if let Some(buffer) = sample.buffer() {
                        if let Ok(map) = buffer.map_readable() {
                            // Dropping a thumbnail when the channel is full is harmless: another comes.
                            let _ = thumbnails.try_send(RecordingEvent::Thumbnail(Bytes::copy_from_slice(map.as_slice())));
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

fn appsink(pipeline: &gst::Pipeline, name: &str) -> Result<gst_app::AppSink, MediaError> {
    by_name(pipeline, name)?.downcast::<gst_app::AppSink>().map_err(|_| MediaError::Build(format!("{name} is not an appsink")))
}

/// Counts the decoded frames and notes the first one's time: segment boundaries are counted
/// from it, where the packager's first segment starts.
fn count_decoded(tee: &gst::Element, stats: Arc<PipelineStats>, first: Arc<OnceLock<gst::ClockTime>>) -> Result<(), MediaError> {
    let sink = tee.static_pad("sink").ok_or_else(|| MediaError::Build("vt has no sink pad".into()))?;
    sink.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        stats.decoded_frames.fetch_add(1, Ordering::Relaxed);
        if let Some(pts) = info.buffer().and_then(|b| b.pts()) {
            first.get_or_init(|| pts);
        }
        gst::PadProbeReturn::Ok
    });
    Ok(())
}

/// In front of rung `index`'s scaler: sends a downstream force-key-unit event before the rung's
/// first frame at or past every multiple of `segment_duration` (counted from the first decoded
/// frame), so all rungs cut at the same instants even when their queues drop frames, and lets
/// the CPU-aware ladder's gate (`gates`, live only) stop or restart the rung at those instants.
///
/// It sits after the rung's leaky queue, not before the tee: a leaky queue drops non-sticky
/// events with the buffers it leaks, so a rung that fell behind lost its keyframe requests and
/// made segments up to twice as long as the others (numbered out of step with them).
/// The first frame is a keyframe anyway and is not asked for: GStreamer 1.22's encoder base
/// class records the first request at x264enc's shifted running time (+1000 h) and then
/// throttles every later request as "too soon" after it.
fn force_keyframes(
    scaler: &gst::Element,
    index: usize,
    segment_duration: Duration,
    first: Arc<OnceLock<gst::ClockTime>>,
    gates: Option<Arc<Gates>>,
) -> Result<(), MediaError> {
    let sink = scaler.static_pad("sink").ok_or_else(|| MediaError::Build(format!("{} has no sink pad", scaler.name())))?;
    let upstream = sink.peer().ok_or_else(|| MediaError::Build(format!("{} is not linked", scaler.name())))?;
    let step = gst::ClockTime::from_nseconds(segment_duration.as_nanos().max(1) as u64);
    // (next boundary, keyframes forced so far); only this branch's streaming thread touches it.
    let state = std::sync::Mutex::new((None::<gst::ClockTime>, 0u32));
    upstream.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(pts) = info.buffer().and_then(|b| b.pts()) else { return gst::PadProbeReturn::Ok };
        let Some(&first) = first.get() else { return gst::PadProbeReturn::Ok };
        let crossed = {
            let Ok(mut guard) = state.lock() else { return gst::PadProbeReturn::Ok };
            let (next, count) = &mut *guard;
            let next = next.get_or_insert(first + step);
            if pts < *next {
                None
            } else {
                let mut boundary = *next;
                while *next <= pts {
                    boundary = *next;
                    *next += step;
                }
                *count += 1;
                Some((boundary, *count))
            }
        };
        if let Some(gates) = &gates {
            if !gates.frame(index, crossed.map(|(boundary, _)| media_nanos(boundary))) {
                return gst::PadProbeReturn::Drop;
            }
        }
        if let Some((_, count)) = crossed {
            let event =
                gst_video::DownstreamForceKeyUnitEvent::builder().timestamp(pts).running_time(pts).all_headers(true).count(count).build();
            pad.push_event(event);
        }
        gst::PadProbeReturn::Ok
    });
    Ok(())
}

fn media_nanos(t: gst::ClockTime) -> MediaTime {
    i64::try_from(t.nseconds()).unwrap_or(i64::MAX)
}

/// A sample's payload without a copy: the mapped GStreamer buffer is the owner of the bytes.
fn payload(buffer: &gst::BufferRef) -> Option<Bytes> {
    let owned = buffer.to_owned().into_mapped_buffer_readable().ok()?;
    Some(Bytes::from_owner(owned))
}

/// A buffer time as running time, the clock the whole session shares. Encoders may shift their
/// output timestamps (x264enc adds 1000 hours so a DTS before the first PTS stays positive) and
/// say so in the segment; running time undoes that.
fn media_time(sample: &gst::SampleRef, t: Option<gst::ClockTime>) -> Option<i64> {
    let t = t?;
    let nanos = |c: gst::ClockTime| i64::try_from(c.nseconds()).unwrap_or(i64::MAX);
    let segment = sample.segment().and_then(|s| s.downcast_ref::<gst::ClockTime>());
    match segment.map(|s| s.to_running_time_full(t)) {
        Some(Some(gst::Signed::Positive(rt))) => Some(nanos(rt)),
        Some(Some(gst::Signed::Negative(rt))) => Some(-nanos(rt)),
        Some(None) => None,
        None => Some(nanos(t)),
    }
}

fn video_callbacks(rung: Arc<str>, events: mpsc::Sender<RecordingEvent>) -> gst_app::AppSinkCallbacks {
    let config_rung = rung.clone();
    sink_callbacks(
        events,
        move |caps| video_config(caps).map(|config| RecordingEvent::VideoConfig { rung: config_rung.clone(), config }),
        move |frame| RecordingEvent::Video { rung: rung.clone(), frame },
    )
}

fn audio_callbacks(events: mpsc::Sender<RecordingEvent>) -> gst_app::AppSinkCallbacks {
    sink_callbacks(events, |caps| audio_config(caps).map(RecordingEvent::AudioConfig), RecordingEvent::Audio)
}

/// An appsink's output as events: a configuration event whenever the caps change (`config`), then
/// one event per coded frame (`frame`), on running time.
fn sink_callbacks(
    events: mpsc::Sender<RecordingEvent>,
    config: impl Fn(&gst::CapsRef) -> Option<RecordingEvent> + Send + 'static,
    frame: impl Fn(Frame) -> RecordingEvent + Send + 'static,
) -> gst_app::AppSinkCallbacks {
    let mut last_caps: Option<gst::Caps> = None;
    gst_app::AppSinkCallbacks::builder()
        .new_sample(move |sink| {
            let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
            if let Some(caps) = sample.caps().filter(|c| last_caps.as_ref().is_none_or(|last| last.as_ref() != *c)) {
                last_caps = Some(caps.to_owned());
                if let Some(event) = config(caps) {
                    let _ = events.blocking_send(event);
                }
            }
            let Some(buffer) = sample.buffer() else { return Ok(gst::FlowSuccess::Ok) };
            let (Some(pts), Some(data)) = (media_time(&sample, buffer.pts()), payload(buffer)) else { return Ok(gst::FlowSuccess::Ok) };
            let dts = media_time(&sample, buffer.dts()).unwrap_or(pts);
            let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
            // Closed means the recording is gone: nothing left to do with frames.
            if events.blocking_send(frame(Frame { dts, pts, keyframe, data })).is_err() {
                return Err(gst::FlowError::Eos);
            }
            Ok(gst::FlowSuccess::Ok)
        })
        .build()
}

fn codec_data(structure: &gst::StructureRef) -> Option<Bytes> {
    let buffer = structure.get::<gst::Buffer>("codec_data").ok()?;
    let map = buffer.map_readable().ok()?;
    Some(Bytes::copy_from_slice(map.as_slice()))
}

/// The codec record and size from `video/x-h264,stream-format=avc` (or `x-h265,hvc1`) caps.
fn video_config(caps: &gst::CapsRef) -> Option<VideoConfig> {
    let s = caps.structure(0)?;
    let codec = match s.name().as_str() {
        "video/x-h264" => VideoCodec::Avc,
        "video/x-h265" => VideoCodec::Hevc,
        _ => return None,
    };
    let dimension = |name: &str| s.get::<i32>(name).ok().and_then(|v| u16::try_from(v).ok()).unwrap_or(0);
    Some(VideoConfig { codec, record: codec_data(s)?, width: dimension("width"), height: dimension("height") })
}

/// The AudioSpecificConfig, rate and channels from `audio/mpeg,mpegversion=4,stream-format=raw` caps.
fn audio_config(caps: &gst::CapsRef) -> Option<AudioConfig> {
    let s = caps.structure(0)?;
    let rate = s.get::<i32>("rate").ok().and_then(|r| u32::try_from(r).ok())?;
    let channels = s.get::<i32>("channels").ok().and_then(|c| u16::try_from(c).ok()).unwrap_or(2);
    Some(AudioConfig { record: codec_data(s)?, sample_rate: rate, channels })
}

pub fn by_name(pipeline: &gst::Pipeline, name: &str) -> Result<gst::Element, MediaError> {
    pipeline.by_name(name).ok_or_else(|| MediaError::Build(format!("no element {name}")))
}

/// Reads the bus until end-of-stream or an error; an error is reported as
/// [`RecordingEvent::Failed`].
async fn watch_bus(bus: gst::Bus, events: mpsc::Sender<RecordingEvent>, stats: Arc<PipelineStats>, ended: oneshot::Sender<()>) {
    let mut messages = bus.stream();
    while let Some(message) = messages.next().await {
        use gst::MessageView;
        match message.view() {
            MessageView::Error(error) => {
                let source = error.src().map(|s| s.name().to_string()).unwrap_or_default();
                let reason = format!("{source}: {}", error.error());
                tracing::warn!(%reason, debug = ?error.debug(), "pipeline failed");
                stats.failed.store(true, Ordering::Relaxed);
                let _ = events.send(RecordingEvent::Failed(reason)).await;
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

    #[test]
    fn encoders_that_fill_the_cores_get_one_thread_each() {
        assert_eq!(encoder_threads(3, 2), 1);
        assert_eq!(encoder_threads(2, 2), 1);
        assert_eq!(encoder_threads(1, 2), 0, "a lone rung may use every core");
        assert_eq!(encoder_threads(3, 8), 0);
    }
}
