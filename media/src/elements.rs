//! GStreamer start-up: initialise once and make sure every element the ladder uses is installed,
//! naming the Debian package that provides a missing one. Checked when the server starts, so a
//! missing plugin is a clear start-up error rather than a failed stream later.

use crate::MediaError;

/// (element, Debian package that provides it)
const REQUIRED: &[(&str, &str)] = &[
    ("appsrc", "gstreamer1.0-plugins-base"),
    ("appsink", "gstreamer1.0-plugins-base"),
    ("videoconvert", "gstreamer1.0-plugins-base"),
    ("videorate", "gstreamer1.0-plugins-base"),
    ("videoflip", "gstreamer1.0-plugins-good"),
    ("deinterlace", "gstreamer1.0-plugins-good"),
    ("audioconvert", "gstreamer1.0-plugins-base"),
    ("audioresample", "gstreamer1.0-plugins-base"),
    ("decodebin", "gstreamer1.0-plugins-base"),
    ("tee", "libgstreamer1.0-0"),
    ("queue", "libgstreamer1.0-0"),
    ("aacparse", "gstreamer1.0-plugins-good"),
    ("jpegenc", "gstreamer1.0-plugins-good"),
    ("splitmuxsink", "gstreamer1.0-plugins-good"),
    ("mpegaudioparse", "gstreamer1.0-plugins-good"),
    ("h264parse", "gstreamer1.0-plugins-bad"),
    ("h265parse", "gstreamer1.0-plugins-bad"),
    ("mpegtsmux", "gstreamer1.0-plugins-bad"),
    ("x264enc", "gstreamer1.0-plugins-ugly"),
    ("avdec_h264", "gstreamer1.0-libav"),
    ("avdec_h265", "gstreamer1.0-libav"),
    ("avenc_aac", "gstreamer1.0-libav"),
];

/// Initialises GStreamer and checks the elements; the error lists what to `apt-get install`.
pub fn init() -> Result<(), MediaError> {
    gstreamer::init().map_err(|e| MediaError::Init(e.to_string()))?;
    // Our own elements, built into the binary.
    ferrocast_scale::register().map_err(|e| MediaError::Init(e.to_string()))?;
    let missing: Vec<String> = REQUIRED
        .iter()
        .filter(|(element, _)| gstreamer::ElementFactory::find(element).is_none())
        .map(|(element, package)| format!("{element} (from {package})"))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(MediaError::MissingElements(missing.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_required_element_is_installed() {
        super::init().expect("GStreamer elements (run `make test`, which installs them)");
    }
}
