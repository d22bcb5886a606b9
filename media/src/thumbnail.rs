//! A JPEG from one coded keyframe, decoded by a short-lived pipeline: how a stream that is not
//! transcoded (a relay, a passthrough-only ladder) gets its thumbnails without a decoder standing
//! by for the whole stream. Blocking: call it from `spawn_blocking`.

use std::time::Duration;

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::events::VideoConfig;
use crate::package::VideoCodec;
use crate::pipeline::thumbnail_size;
use crate::MediaError;

/// How long one decode may take before it is given up.
const DECODE_TIMEOUT: Duration = Duration::from_secs(5);

/// Decodes `keyframe` (length-prefixed NAL units of an IDR picture) with the codec record of
/// `config` and encodes it as a 480-wide JPEG.
pub fn from_keyframe(config: &VideoConfig, keyframe: &Bytes) -> Result<Bytes, MediaError> {
    crate::elements::init()?;
    let (caps_name, format, parse, decode) = match config.codec {
        VideoCodec::Avc => ("video/x-h264", "avc", "h264parse", "avdec_h264"),
        VideoCodec::Hevc => ("video/x-h265", "hvc1", "h265parse", "avdec_h265"),
    };
    let (width, height) = thumbnail_size(u32::from(config.width), u32::from(config.height));
    let description = format!(
        "appsrc name=src format=time ! {parse} ! {decode} ! videoconvert ! {scale} ! \
         video/x-raw,width={width},height={height},pixel-aspect-ratio=1/1 ! jpegenc quality=80 ! appsink name=sink sync=false",
        scale = ferrocast_scale::ELEMENT,
    );
    let pipeline = gst::parse::launch(&description)
        .map_err(|e| MediaError::Build(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| MediaError::Build("not a pipeline".into()))?;
    let stop = StopOnDrop(pipeline.clone());
    let src = stop
        .0
        .by_name("src")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .ok_or_else(|| MediaError::Build("thumbnail appsrc".into()))?;
    let sink = stop
        .0
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| MediaError::Build("thumbnail appsink".into()))?;
    src.set_caps(Some(
        &gst::Caps::builder(caps_name)
            .field("stream-format", format)
            .field("alignment", "au")
            .field("codec_data", gst::Buffer::from_slice(config.record.clone()))
            .build(),
    ));
    pipeline.set_state(gst::State::Playing).map_err(|e| MediaError::Pipeline(format!("thumbnail: {e}")))?;
    let mut buffer = gst::Buffer::from_slice(keyframe.clone());
    if let Some(b) = buffer.get_mut() {
        b.set_pts(gst::ClockTime::ZERO);
        b.set_dts(gst::ClockTime::ZERO);
    }
    let _ = src.push_buffer(buffer);
    let _ = src.end_of_stream();
    let sample = sink
        .try_pull_sample(gst::ClockTime::from_nseconds(DECODE_TIMEOUT.as_nanos() as u64))
        .ok_or_else(|| MediaError::Pipeline("the keyframe did not decode into a thumbnail".into()))?;
    let buffer = sample.buffer().ok_or_else(|| MediaError::Pipeline("empty thumbnail".into()))?;
    let map = buffer.map_readable().map_err(|e| MediaError::Pipeline(e.to_string()))?;
    Ok(Bytes::copy_from_slice(map.as_slice()))
}

struct StopOnDrop(gst::Pipeline);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = self.0.set_state(gst::State::Null);
    }
}
