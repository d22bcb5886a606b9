//! `ferrocastscale`: the ladder's scaler, a GStreamer element of our own inside the binary.
//!
//! GStreamer 1.22's `videoscale` cost 2.5–5× what ffmpeg's swscale does for the same downscale
//! (docs/performance.md §1) and was most of the ladder's extra CPU; its 2-tap bilinear also skips
//! source pixels on large downscales, so it was not sharper either. This element resizes each plane
//! of an I420 frame: exact halvings by averaging 2×2 blocks, everything else with
//! `fast_image_resize`'s SIMD code (see [`resize_plane`] for which filter when).
//!
//! It takes I420 only: the encoders after it are x264 in the main profile (8-bit 4:2:0), and the
//! `videoconvert` in front of the tee turns anything else into I420 once for all rungs. Same size
//! in and out is a passthrough. Registered by `ferrocast_media::elements::init`; pipelines name it
//! like any element.

use std::sync::{LazyLock, Mutex};

use fast_image_resize::images::{TypedCroppedImage, TypedCroppedImageMut, TypedImage, TypedImageRef};
use fast_image_resize::pixels::{U8x4, U8};
use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer::subclass::prelude::*;
use gstreamer_base::subclass::prelude::*;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;
use gstreamer_video::subclass::prelude::*;

/// The element's name in pipeline descriptions.
pub const ELEMENT: &str = "ferrocastscale";

glib::wrapper! {
    pub struct FerrocastScale(ObjectSubclass<imp::FerrocastScale>) @extends gst_video::VideoFilter, gstreamer_base::BaseTransform, gst::Element, gst::Object;
}

/// Makes `ferrocastscale` available to pipelines in this process (once; later calls do nothing).
pub fn register() -> Result<(), glib::BoolError> {
    static REGISTERED: LazyLock<Result<(), glib::BoolError>> =
        LazyLock::new(|| gst::Element::register(None, ELEMENT, gst::Rank::NONE, FerrocastScale::static_type()));
    REGISTERED.clone()
}

/// What a scaler keeps between frames: the resizer's own buffers and the planes in between.
#[derive(Default)]
pub struct Scratch {
    resizer: Resizer,
    /// The plane resized vertically: the source's width, the destination's height.
    tall: Vec<u8>,
    /// `tall`'s rows four by four, interleaved (see [`resize_plane`]), before and after the
    /// horizontal pass.
    packed: Vec<u8>,
    narrowed: Vec<u8>,
}

/// Resizes `src` (a plane `src_stride` bytes per row) into `dst`; both are whole planes of one
/// component, `width`×`height` pixels of one byte.
///
/// Which filter, by how much the plane shrinks (the larger of the two ratios):
/// - exactly half in both directions (720p → 360p, 1080p → 540p, and their chroma): the average of
///   each 2×2 block, the cheapest correct downscale;
/// - up to half: bilinear interpolation between the two nearest source pixels, which at these
///   ratios still reads every source pixel;
/// - beyond half: a bilinear convolution whose kernel widens with the ratio, so that no source
///   pixel is skipped (the fault of `videoscale`'s 2-tap bilinear on big downscales);
/// - growing: Catmull-Rom.
///
/// The filters are `fast_image_resize`'s, run one direction at a time: first down the columns,
/// then along the rows, with four rows interleaved into one picture of four-byte pixels. Its
/// horizontal pass over a one-byte plane sums each output pixel's few taps in a SIMD register of
/// its own; over four-byte pixels it fills the register with four rows at once. The numbers are
/// the same (same weights, same rounding); perf on the 1080p file ladder put the one-byte
/// horizontal pass at 13.5 % of the job's CPU, most of the scaler's 19.8 % against swscale's 9 %
/// in ffmpeg (docs/performance.md §5).
pub fn resize_plane(
    scratch: &mut Scratch,
    src: &[u8],
    src_stride: usize,
    (src_width, src_height): (u32, u32),
    dst: &mut [u8],
    dst_stride: usize,
    (dst_width, dst_height): (u32, u32),
) -> Result<(), String> {
    if src_width == dst_width * 2 && src_height == dst_height * 2 {
        halve_plane(src, src_stride, dst, dst_stride, (dst_width as usize, dst_height as usize));
        return Ok(());
    }
    let algorithm = filter_for((src_width, src_height), (dst_width, dst_height));
    // `use_alpha(false)`: the fourth byte of a packed pixel is a row like the others, not an alpha
    // to multiply the first three by.
    let options = ResizeOptions::new().resize_alg(algorithm).use_alpha(false);
    let Scratch { resizer, tall, packed, narrowed } = scratch;

    // A plane is a picture as wide as its stride, of which the first `width` columns are shown.
    let whole_src = TypedImageRef::<U8>::from_buffer(stride_pixels(src_stride)?, src_height, src).map_err(|e| e.to_string())?;
    let src_view = TypedCroppedImage::from_ref(&whole_src, 0, 0, src_width, src_height).map_err(|e| e.to_string())?;
    if src_width == dst_width {
        let mut whole_dst = TypedImage::<U8>::from_buffer(stride_pixels(dst_stride)?, dst_height, dst).map_err(|e| e.to_string())?;
        let mut dst_view = TypedCroppedImageMut::from_ref(&mut whole_dst, 0, 0, dst_width, dst_height).map_err(|e| e.to_string())?;
        return resizer.resize_typed(&src_view, &mut dst_view, &options).map_err(|e| e.to_string());
    }

    // Down the columns (nothing to do when the height stays).
    let (tall, tall_stride): (&[u8], usize) = if src_height == dst_height {
        (src, src_stride)
    } else {
        tall.resize(src_width as usize * dst_height as usize, 0);
        let mut tall_image = TypedImage::<U8>::from_buffer(src_width, dst_height, tall).map_err(|e| e.to_string())?;
        resizer.resize_typed(&src_view, &mut tall_image, &options).map_err(|e| e.to_string())?;
        (tall, src_width as usize)
    };

    // Along the rows, four at a time.
    let groups = dst_height.div_ceil(4);
    packed.resize(4 * src_width as usize * groups as usize, 0);
    interleave_rows(tall, tall_stride, (src_width as usize, dst_height as usize), packed);
    narrowed.resize(4 * dst_width as usize * groups as usize, 0);
    let packed_image = TypedImageRef::<U8x4>::from_buffer(src_width, groups, packed).map_err(|e| e.to_string())?;
    let mut narrowed_image = TypedImage::<U8x4>::from_buffer(dst_width, groups, narrowed).map_err(|e| e.to_string())?;
    resizer.resize_typed(&packed_image, &mut narrowed_image, &options).map_err(|e| e.to_string())?;
    deinterleave_rows(narrowed, (dst_width as usize, dst_height as usize), dst, dst_stride);
    Ok(())
}

/// The filter for a resize other than an exact halving, by how much the plane shrinks (the larger
/// of the two ratios): see [`resize_plane`].
fn filter_for((src_width, src_height): (u32, u32), (dst_width, dst_height): (u32, u32)) -> ResizeAlg {
    let ratio = (f64::from(src_width) / f64::from(dst_width)).max(f64::from(src_height) / f64::from(dst_height));
    if ratio < 1.0 {
        ResizeAlg::Convolution(FilterType::CatmullRom)
    } else if ratio <= 2.0 {
        ResizeAlg::Interpolation(FilterType::Bilinear)
    } else {
        ResizeAlg::Convolution(FilterType::Bilinear)
    }
}

/// Packs the plane's rows (`width`×`height`, `stride` bytes apart) four by four: pixel `x` of
/// row `g` of `packed` is the four bytes at column `x` of rows `4g`…`4g+3`. A last group short of
/// four rows repeats its last row.
fn interleave_rows(plane: &[u8], stride: usize, (width, height): (usize, usize), packed: &mut [u8]) {
    for (group, out) in packed.chunks_exact_mut(4 * width).enumerate() {
        let row = |i: usize| &plane[(4 * group + i).min(height - 1) * stride..][..width];
        let (r0, r1, r2, r3) = (row(0), row(1), row(2), row(3));
        for ((((pixel, a), b), c), d) in out.chunks_exact_mut(4).zip(r0).zip(r1).zip(r2).zip(r3) {
            pixel.copy_from_slice(&[*a, *b, *c, *d]);
        }
    }
}

/// The inverse of [`interleave_rows`]: writes the `height` rows packed in `packed` (`width`
/// four-byte pixels per group) to `dst`, `dst_stride` bytes apart.
fn deinterleave_rows(packed: &[u8], (width, height): (usize, usize), dst: &mut [u8], dst_stride: usize) {
    for (y, row) in dst.chunks_mut(dst_stride).take(height).enumerate() {
        let group = &packed[y / 4 * 4 * width..][..4 * width];
        let lane = y % 4;
        for (pixel, quad) in row[..width].iter_mut().zip(group.chunks_exact(4)) {
            *pixel = quad[lane];
        }
    }
}

/// Each destination pixel is the rounded mean of the 2×2 source block it covers. Written over
/// plain slices so that the compiler vectorises it.
fn halve_plane(src: &[u8], src_stride: usize, dst: &mut [u8], dst_stride: usize, (width, height): (usize, usize)) {
    for (y, out) in dst.chunks_mut(dst_stride).take(height).enumerate() {
        let top = &src[2 * y * src_stride..][..2 * width];
        let bottom = &src[(2 * y + 1) * src_stride..][..2 * width];
        for ((pixel, top), bottom) in out[..width].iter_mut().zip(top.chunks_exact(2)).zip(bottom.chunks_exact(2)) {
            let sum = u16::from(top[0]) + u16::from(top[1]) + u16::from(bottom[0]) + u16::from(bottom[1]);
            *pixel = ((sum + 2) / 4) as u8;
        }
    }
}

fn stride_pixels(stride: usize) -> Result<u32, String> {
    u32::try_from(stride).map_err(|_| format!("a stride of {stride} bytes"))
}

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct FerrocastScale {
        /// Holds its scratch buffers between frames.
        scratch: Mutex<Scratch>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for FerrocastScale {
        const NAME: &'static str = "FerrocastScale";
        type Type = super::FerrocastScale;
        type ParentType = gst_video::VideoFilter;
    }

    impl ObjectImpl for FerrocastScale {}
    impl GstObjectImpl for FerrocastScale {}

    impl ElementImpl for FerrocastScale {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                gst::subclass::ElementMetadata::new(
                    "Ferrocast scaler",
                    "Filter/Converter/Video/Scaler",
                    "Resizes I420 video (2×2 means, bilinear, Catmull-Rom up)",
                    "Ferrocast",
                )
            });
            Some(&*METADATA)
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
                let caps = gst_video::VideoCapsBuilder::new().format(gst_video::VideoFormat::I420).build();
                [gst::PadDirection::Src, gst::PadDirection::Sink]
                    .into_iter()
                    .map(|direction| {
                        let name = if direction == gst::PadDirection::Src { "src" } else { "sink" };
                        gst::PadTemplate::new(name, direction, gst::PadPresence::Always, &caps).expect("a valid pad template")
                    })
                    .collect()
            });
            TEMPLATES.as_ref()
        }
    }

    impl BaseTransformImpl for FerrocastScale {
        const MODE: gstreamer_base::subclass::BaseTransformMode = gstreamer_base::subclass::BaseTransformMode::NeverInPlace;
        const PASSTHROUGH_ON_SAME_CAPS: bool = true;
        const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

        /// Any size on the other side; the same size first, so that equal caps pass through.
        fn transform_caps(&self, _direction: gst::PadDirection, caps: &gst::Caps, filter: Option<&gst::Caps>) -> Option<gst::Caps> {
            let mut any_size = caps.clone();
            for structure in any_size.make_mut().iter_mut() {
                structure.set("width", gst::IntRange::new(1, i32::MAX));
                structure.set("height", gst::IntRange::new(1, i32::MAX));
                // Output pixels are square whatever the input's were (the capsfilter after it says
                // so); the size it is given already accounts for the input's aspect.
                structure.remove_field("pixel-aspect-ratio");
            }
            let mut other = caps.clone();
            other.merge(any_size);
            Some(match filter {
                Some(filter) => filter.intersect_with_mode(&other, gst::CapsIntersectMode::First),
                None => other,
            })
        }
    }

    impl VideoFilterImpl for FerrocastScale {
        fn transform_frame(
            &self,
            input: &gst_video::VideoFrameRef<&gst::BufferRef>,
            output: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
        ) -> Result<gst::FlowSuccess, gst::FlowError> {
            let mut scratch = self.scratch.lock().map_err(|_| gst::FlowError::Error)?;
            for plane in 0..input.n_planes() {
                let from = (input.comp_width(plane), input.comp_height(plane));
                let to = (output.comp_width(plane), output.comp_height(plane));
                let src_stride = input.plane_stride()[plane as usize] as usize;
                let dst_stride = output.plane_stride()[plane as usize] as usize;
                let src = input.plane_data(plane).map_err(|_| gst::FlowError::Error)?;
                let dst = output.plane_data_mut(plane).map_err(|_| gst::FlowError::Error)?;
                if let Err(e) = resize_plane(&mut scratch, src, src_stride, from, dst, dst_stride, to) {
                    gst::element_imp_error!(self, gst::StreamError::Failed, ["resizing plane {}: {}", plane, e]);
                    return Err(gst::FlowError::Error);
                }
            }
            Ok(gst::FlowSuccess::Ok)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plane with a sharp vertical edge, resized to two thirds: the edge stays where it was (in
    /// proportion) and sharp, the flat areas keep their values exactly, and the padding past each
    /// row's width is neither read nor written.
    #[test]
    fn a_plane_shrinks_with_its_edge_in_place() {
        let (w, h, stride) = (90u32, 60u32, 96usize);
        let mut src = vec![7u8; stride * h as usize];
        for row in src.chunks_mut(stride) {
            for (x, pixel) in row.iter_mut().enumerate().take(w as usize) {
                *pixel = if x < 45 { 16 } else { 235 };
            }
        }
        let (dw, dh, dst_stride) = (60u32, 40u32, 64usize);
        let mut dst = vec![1u8; dst_stride * dh as usize];
        resize_plane(&mut Scratch::default(), &src, stride, (w, h), &mut dst, dst_stride, (dw, dh)).expect("resized");
        for row in dst.chunks(dst_stride) {
            assert_eq!(&row[..28], &[16; 28][..], "dark side");
            assert_eq!(&row[32..60], &[235; 28][..], "bright side");
            assert!(row[29] < 126 && row[30] > 126, "the edge at 30 of 60: {:?}", &row[27..33]);
            assert_eq!(&row[60..], &[1; 4][..], "padding untouched");
        }
    }

    /// Run one direction at a time, four rows interleaved, the filters give what
    /// `fast_image_resize` gives resizing the plane in one call: same weights, same rounding.
    #[test]
    fn the_passes_give_what_one_resize_gives() {
        let (w, h) = (96u32, 54u32);
        let src: Vec<u8> = (0..w * h).map(|i| ((i * 7919 + (i / w) * 31) % 251) as u8).collect();
        let mut scratch = Scratch::default();
        for (dw, dh) in [(64u32, 36u32), (42, 24), (32, 18), (96, 30), (40, 54), (150, 80)] {
            let algorithm = filter_for((w, h), (dw, dh));
            let whole = TypedImageRef::<U8>::from_buffer(w, h, &src).expect("source");
            let mut expected = TypedImage::<U8>::new(dw, dh);
            Resizer::new().resize_typed(&whole, &mut expected, &ResizeOptions::new().resize_alg(algorithm)).expect("resized");
            let expected: Vec<u8> = expected.pixels().iter().map(|p| p.0).collect();
            let mut dst = vec![0u8; (dw * dh) as usize];
            resize_plane(&mut scratch, &src, w as usize, (w, h), &mut dst, dw as usize, (dw, dh)).expect("resized");
            assert_eq!(dst, expected, "{w}x{h} to {dw}x{dh}");
        }
    }

    /// Exactly half: each pixel the rounded mean of its 2×2 block, padding left alone.
    #[test]
    fn a_plane_halves_to_the_means_of_its_blocks() {
        let (stride, dst_stride) = (8usize, 4usize);
        let mut src = vec![99u8; stride * 4];
        for y in 0..4 {
            for x in 0..6 {
                src[y * stride + x] = (10 * y + x) as u8;
            }
        }
        let mut dst = vec![1u8; dst_stride * 2];
        resize_plane(&mut Scratch::default(), &src, stride, (6, 4), &mut dst, dst_stride, (3, 2)).expect("halved");
        // Block (0,0): 0, 1, 10, 11 → 5.5 → 6; the others step by 2 across and 20 down.
        assert_eq!(dst, vec![6, 8, 10, 1, 26, 28, 30, 1]);
    }

    /// Shrinking by three: a one-pixel line is not skipped, it weighs in where it was.
    #[test]
    fn a_big_downscale_reads_every_source_pixel() {
        let (w, h) = (90u32, 6u32);
        for line in [0usize, 1, 2] {
            let mut src = vec![0u8; (w * h) as usize];
            for row in src.chunks_mut(w as usize) {
                row[line] = 240;
            }
            let mut dst = vec![0u8; 30 * 2];
            resize_plane(&mut Scratch::default(), &src, w as usize, (w, h), &mut dst, 30, (30, 2)).expect("resized");
            assert!(dst[0] > 20, "a line at column {line} shows in the first output column: {}", dst[0]);
        }
    }

    /// Through GStreamer: 1280×720 I420 frames become 640×360 ones, and a same-size link passes
    /// frames through untouched.
    #[test]
    fn the_element_negotiates_sizes_and_passes_equal_caps_through() {
        gst::init().expect("gstreamer");
        register().expect("registered");
        for (size, passthrough) in [((640, 360), false), ((1280, 720), true)] {
            let description = format!(
                "videotestsrc num-buffers=3 pattern=smpte ! video/x-raw,format=I420,width=1280,height=720 ! \
                 {ELEMENT} name=s ! video/x-raw,width={},height={},pixel-aspect-ratio=1/1 ! appsink name=out sync=false",
                size.0, size.1
            );
            let pipeline = gst::parse::launch(&description).expect("pipeline").downcast::<gst::Pipeline>().expect("a pipeline");
            let sink = pipeline.by_name("out").expect("sink").downcast::<gstreamer_app::AppSink>().expect("appsink");
            pipeline.set_state(gst::State::Playing).expect("playing");
            let sample = sink.pull_sample().expect("a frame");
            let info = gst_video::VideoInfo::from_caps(sample.caps().expect("caps")).expect("video caps");
            assert_eq!((info.width(), info.height()), size);
            let scaler = pipeline.by_name("s").expect("scaler").downcast::<gstreamer_base::BaseTransform>().expect("a transform");
            assert_eq!(scaler.is_passthrough(), passthrough);
            pipeline.set_state(gst::State::Null).expect("stopped");
        }
    }
}
