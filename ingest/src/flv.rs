//! FLV tag bodies: what the payload of an RTMP audio (8), video (9) or aggregate (22) message means.
//!
//! The RTMP session hands over each media message's payload and its millisecond timestamp; this
//! module turns them into typed events the live pipeline acts on: a codec configuration for the
//! appsrc caps (`codec_data`), a coded frame with its DTS and PTS, or a codec we cannot take, named
//! so the publish can end with a clear log line. It reads legacy FLV (AVC, AAC and the old codec
//! ids) and the Enhanced RTMP FourCC headers (HEVC, AV1, VP9, Opus, FLAC, ...), splits aggregate
//! messages into their sub-messages, and extends the wrapping 32-bit RTMP clock
//! ([`TimestampUnwrapper`]).
//!
//! It must never panic or slice out of bounds on what a publisher sends: every length is checked,
//! and a short or lying one is an [`FlvError`]. It never does I/O, never touches GStreamer and never
//! copies media: frames borrow from the message payload, so the caller decides when to copy.
//! Enhanced RTMP v2 multitrack messages are read, but only one track of each media type is taken
//! ([`TrackSelector`]); the others are skipped without error. ModEx packets are not supported yet;
//! they are reported as [`FlvError::NotSupportedYet`].

use std::fmt;

/// Why one message could not be read. Whether that ends the publish is the caller's decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlvError {
    /// The bytes end before a field the format says is there. `expected` and `actual` count from
    /// the start of the buffer being read (the message payload, or the codec record).
    #[error("{what} is truncated: need {expected} bytes, got {actual}")]
    TooShort { what: &'static str, expected: usize, actual: usize },
    /// A packet type the specifications leave reserved.
    #[error("unknown {what} packet type {packet_type}")]
    UnknownPacketType { what: &'static str, packet_type: u8 },
    /// Valid Enhanced RTMP that this module cannot read yet.
    #[error("{0} is not supported yet")]
    NotSupportedYet(&'static str),
    #[error("invalid AVCDecoderConfigurationRecord: {0}")]
    InvalidAvcConfig(&'static str),
    #[error("invalid AAC AudioSpecificConfig: {0}")]
    InvalidAacConfig(&'static str),
    #[error("invalid HEVCDecoderConfigurationRecord: {0}")]
    InvalidHevcConfig(&'static str),
    /// An Enhanced RTMP multitrack header the specification does not allow.
    #[error("invalid Enhanced RTMP multitrack packet: {0}")]
    InvalidMultitrack(&'static str),
    /// An aggregate sub-tag's trailing size disagrees with its header, so the framing of
    /// everything after it cannot be trusted.
    #[error("aggregate sub-tag at byte {offset} ends with previous-tag-size {found}, expected {expected}")]
    AggregateBackPointer { offset: usize, expected: u32, found: u32 },
}

// ---------------------------------------------------------------------------------------------
// Timestamps
// ---------------------------------------------------------------------------------------------

/// Extends RTMP's wrapping 32-bit millisecond timestamps into one unbounded timeline.
///
/// RTMP timestamps wrap after 2^32 ms (about 49.7 days), and a publisher may start its clock
/// anywhere, so even a short stream can cross the wrap; buffer times handed to GStreamer must not
/// leap back 49 days when it does. Each timestamp is taken as the point nearest to the previous
/// one modulo 2^32 (the wrapping difference read as a signed 32-bit step). A wrap therefore moves
/// forward by the real few milliseconds, and the small backwards steps that interleaved audio and
/// video messages carry stay small backwards steps, even right at the wrap, where the naive rule
/// "smaller than the last one means we wrapped" would jump 49 days ahead.
///
/// Values are not clamped to be non-decreasing: audio and video legitimately interleave a few
/// milliseconds out of order, and clamping would move real timestamps. The result is an `i64`
/// because a backwards step right after a start near zero is legitimately negative.
///
/// Use one per published stream and feed it every audio, video and aggregate sub-message
/// timestamp, since they all share one clock.
#[derive(Debug, Clone, Default)]
pub struct TimestampUnwrapper {
    last: Option<i64>,
}

impl TimestampUnwrapper {
    pub fn new() -> Self {
        Self::default()
    }

    /// The extended value of `timestamp_ms`, the RTMP message timestamp as received.
    pub fn extend(&mut self, timestamp_ms: u32) -> i64 {
        let extended = match self.last {
            None => i64::from(timestamp_ms),
            Some(last) => {
                // Truncating `last` keeps exactly the low 32 bits the publisher's clock shows.
                let step = timestamp_ms.wrapping_sub(last as u32) as i32;
                last + i64::from(step)
            }
        };
        self.last = Some(extended);
        extended
    }
}

// ---------------------------------------------------------------------------------------------
// Video
// ---------------------------------------------------------------------------------------------

/// A video codec, from a legacy FLV codec id or an Enhanced RTMP FourCC. `Display` names it for
/// log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// H.264: legacy codec id 7 or FourCC `avc1`.
    Avc,
    /// H.265: FourCC `hvc1`.
    Hevc,
    /// FourCC `av01`.
    Av1,
    /// FourCC `vp09`.
    Vp9,
    /// FourCC `vp08`.
    Vp8,
    /// Legacy codec id 2.
    SorensonH263,
    /// Legacy codec id 3.
    ScreenVideo,
    /// Legacy codec id 4.
    Vp6,
    /// Legacy codec id 5 (VP6 with an alpha channel).
    Vp6Alpha,
    /// Legacy codec id 6.
    ScreenVideoV2,
    /// A legacy codec id the FLV specification leaves reserved.
    UnknownId(u8),
    /// An Enhanced RTMP FourCC this module does not know.
    Other([u8; 4]),
}

impl VideoCodec {
    fn from_legacy_id(id: u8) -> Self {
        match id {
            2 => Self::SorensonH263,
            3 => Self::ScreenVideo,
            4 => Self::Vp6,
            5 => Self::Vp6Alpha,
            6 => Self::ScreenVideoV2,
            7 => Self::Avc,
            other => Self::UnknownId(other),
        }
    }

    fn from_fourcc(fourcc: [u8; 4]) -> Self {
        match &fourcc {
            b"avc1" => Self::Avc,
            b"hvc1" => Self::Hevc,
            b"av01" => Self::Av1,
            b"vp09" => Self::Vp9,
            b"vp08" => Self::Vp8,
            _ => Self::Other(fourcc),
        }
    }
}

impl fmt::Display for VideoCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Avc => f.write_str("H.264/AVC"),
            Self::Hevc => f.write_str("H.265/HEVC"),
            Self::Av1 => f.write_str("AV1"),
            Self::Vp9 => f.write_str("VP9"),
            Self::Vp8 => f.write_str("VP8"),
            Self::SorensonH263 => f.write_str("Sorenson H.263"),
            Self::ScreenVideo => f.write_str("Screen Video"),
            Self::Vp6 => f.write_str("On2 VP6"),
            Self::Vp6Alpha => f.write_str("On2 VP6 with alpha"),
            Self::ScreenVideoV2 => f.write_str("Screen Video v2"),
            Self::UnknownId(id) => write!(f, "unknown FLV video codec id {id}"),
            Self::Other(fourcc) => write!(f, "unknown video FourCC \"{}\"", fourcc.escape_ascii()),
        }
    }
}

/// The frame type nibble (three bits in an Enhanced RTMP header, four in a legacy one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameType {
    Key,
    Inter,
    /// H.263 only.
    DisposableInter,
    /// Reserved for servers; treated as a key frame.
    GeneratedKey,
    /// Video info or command frame: carries no picture.
    Command,
    Reserved(u8),
}

impl FrameType {
    fn from_bits(bits: u8) -> Self {
        match bits {
            1 => Self::Key,
            2 => Self::Inter,
            3 => Self::DisposableInter,
            4 => Self::GeneratedKey,
            5 => Self::Command,
            other => Self::Reserved(other),
        }
    }

    /// Whether a decoder can start here.
    pub fn is_key(self) -> bool {
        matches!(self, Self::Key | Self::GeneratedKey)
    }
}

/// The AVCDecoderConfigurationRecord fields a caller needs for caps and the HLS CODECS string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvcConfig {
    pub profile_idc: u8,
    pub profile_compatibility: u8,
    pub level_idc: u8,
    /// Bytes in each NAL unit's length prefix in the coded frames (1, 2 or 4; OBS sends 4).
    pub nal_length_size: u8,
}

impl AvcConfig {
    /// The RFC 6381 codec string, e.g. `avc1.64001f` for High profile level 3.1.
    pub fn codecs(&self) -> String {
        ferrocast_media::playlist::avc1_codec(self.profile_idc, self.profile_compatibility, self.level_idc)
    }
}

/// One coded video frame. `data` borrows from the message payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFrame<'a> {
    pub codec: VideoCodec,
    pub frame_type: FrameType,
    /// The message timestamp, as passed in.
    pub dts_ms: i64,
    /// `dts_ms` plus the composition time offset; differs from it only with B-frames.
    pub pts_ms: i64,
    /// For AVC and HEVC: length-prefixed NAL units (see [`AvcConfig::nal_length_size`]).
    pub data: &'a [u8],
}

/// What one video message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoTag<'a> {
    /// The decoder configuration record, which becomes the caps' `codec_data`. For AVC its
    /// fields are parsed too.
    SequenceStart {
        codec: VideoCodec,
        config: &'a [u8],
        avc: Option<AvcConfig>,
    },
    Frame(VideoFrame<'a>),
    SequenceEnd {
        codec: VideoCodec,
    },
    /// Enhanced RTMP only: AMF-encoded metadata such as HDR `colorInfo`; not a picture.
    Metadata {
        codec: VideoCodec,
        amf: &'a [u8],
    },
    /// Enhanced RTMP only: an MPEG-2 TS video descriptor that replaces the sequence start.
    Mpeg2TsSequenceStart {
        codec: VideoCodec,
        descriptor: &'a [u8],
    },
    /// A client-side seeking marker: no picture, safe to ignore.
    Command,
    /// A codec this module cannot read further; the body is left uninterpreted.
    Unsupported {
        codec: VideoCodec,
    },
    /// A message of tracks the [`TrackSelector`] does not take (`track_id` is its first one).
    OtherTrack {
        track_id: u8,
    },
}

/// The Enhanced RTMP video packet types this module reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExVideoPacket {
    SequenceStart,
    CodedFrames,
    SequenceEnd,
    CodedFramesX,
    Metadata,
    Mpeg2TsSequenceStart,
}

/// VideoPacketType.Multitrack: an AvMultitrackType and the packet type of every track follow.
const VIDEO_PACKET_MULTITRACK: u8 = 6;
/// VideoPacketType.ModEx.
const VIDEO_PACKET_MOD_EX: u8 = 7;
/// VideoPacketType.Metadata, the one packet type a command frame type does not turn into a command.
const VIDEO_PACKET_METADATA: u8 = 4;

impl ExVideoPacket {
    fn from_bits(bits: u8) -> Result<Self, FlvError> {
        match bits {
            0 => Ok(Self::SequenceStart),
            1 => Ok(Self::CodedFrames),
            2 => Ok(Self::SequenceEnd),
            3 => Ok(Self::CodedFramesX),
            4 => Ok(Self::Metadata),
            5 => Ok(Self::Mpeg2TsSequenceStart),
            VIDEO_PACKET_MULTITRACK => Err(FlvError::InvalidMultitrack("a track's video packet type is Multitrack again")),
            VIDEO_PACKET_MOD_EX => Err(FlvError::NotSupportedYet("Enhanced RTMP video ModEx")),
            other => Err(FlvError::UnknownPacketType { what: "Enhanced RTMP video", packet_type: other }),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Multitrack
// ---------------------------------------------------------------------------------------------

/// AvMultitrackType (E-RTMP v2): how the tracks of one multitrack message are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Multitrack {
    /// One track: FourCC once, then track id and body, no size.
    OneTrack,
    /// Several tracks of one codec: FourCC once, then per track an id, a 24-bit size and the body.
    ManyTracks,
    /// Several tracks, each with its own FourCC in front of its id, size and body.
    ManyTracksManyCodecs,
}

impl Multitrack {
    fn from_bits(bits: u8) -> Result<Self, FlvError> {
        match bits {
            0 => Ok(Self::OneTrack),
            1 => Ok(Self::ManyTracks),
            2 => Ok(Self::ManyTracksManyCodecs),
            _ => Err(FlvError::InvalidMultitrack("reserved AvMultitrackType")),
        }
    }
}

/// One track's part of a multitrack message.
struct Track<'a> {
    id: u8,
    fourcc: [u8; 4],
    /// Positioned at the track's body and ending with it, so errors still count from the start
    /// of the message payload.
    body: Reader<'a>,
}

/// Reads the tracks after a multitrack header byte (the FourCC, if shared, not yet read).
fn read_tracks<'a>(reader: &mut Reader<'a>, layout: Multitrack) -> Result<Vec<Track<'a>>, FlvError> {
    let shared_fourcc = match layout {
        Multitrack::ManyTracksManyCodecs => None,
        _ => Some(reader.array("Enhanced RTMP multitrack FourCC")?),
    };
    let mut tracks = Vec::new();
    loop {
        let fourcc = match shared_fourcc {
            Some(fourcc) => fourcc,
            None => reader.array("Enhanced RTMP track FourCC")?,
        };
        let id = reader.u8("Enhanced RTMP track id")?;
        let body = match layout {
            Multitrack::OneTrack => reader.take_rest(),
            // The size counts from right after itself to the next track's FourCC or id.
            _ => {
                let size = u24(reader.array("Enhanced RTMP track size")?);
                reader.take_reader(size as usize, "Enhanced RTMP track data")?
            }
        };
        tracks.push(Track { id, fourcc, body });
        if layout == Multitrack::OneTrack || reader.is_at_end() {
            return Ok(tracks);
        }
    }
}

/// Which track of an Enhanced RTMP multitrack stream a publish takes, one per media type.
///
/// The specification recommends track id 0 for the default track, and a message without a track
/// id (legacy FLV, single-track Enhanced RTMP) is that track. The first message fixes the choice:
/// track 0 if it carries one, otherwise its first track. Every other track is skipped from then
/// on, so frames of two tracks (two resolutions, two languages) never mix in one decoder.
#[derive(Debug, Clone, Default)]
pub struct TrackSelector {
    chosen: Option<u8>,
}

impl TrackSelector {
    pub fn new() -> Self {
        Self::default()
    }

    /// The track this selector takes, once a message has fixed it.
    pub fn chosen(&self) -> Option<u8> {
        self.chosen
    }

    /// The position in `ids` of the track to read, if the message carries it.
    fn pick(&mut self, ids: impl Iterator<Item = u8> + Clone) -> Option<usize> {
        let chosen = *self.chosen.get_or_insert_with(|| {
            let mut all = ids.clone();
            if all.clone().any(|id| id == 0) {
                0
            } else {
                all.next().unwrap_or(0)
            }
        });
        ids.into_iter().position(|id| id == chosen)
    }
}

/// Reads the payload of one RTMP video message. `timestamp_ms` is its timestamp after
/// [`TimestampUnwrapper::extend`], and becomes the frame's DTS. A multitrack message gives its
/// track 0, or its first track; a publish keeps one [`TrackSelector`] and calls
/// [`parse_video_track`] instead.
pub fn parse_video(payload: &[u8], timestamp_ms: i64) -> Result<VideoTag<'_>, FlvError> {
    parse_video_track(payload, timestamp_ms, &mut TrackSelector::new())
}

/// [`parse_video`] for the track `tracks` chose; a message without it is
/// [`VideoTag::OtherTrack`].
pub fn parse_video_track<'a>(payload: &'a [u8], timestamp_ms: i64, tracks: &mut TrackSelector) -> Result<VideoTag<'a>, FlvError> {
    let mut reader = Reader::new(payload);
    let first = reader.u8("video tag header")?;
    if first & 0x80 != 0 {
        parse_enhanced_video(first, reader, timestamp_ms, tracks)
    } else if tracks.pick(std::iter::once(0)).is_none() {
        Ok(VideoTag::OtherTrack { track_id: 0 })
    } else {
        parse_legacy_video(first, reader, timestamp_ms)
    }
}

fn parse_legacy_video(first: u8, mut reader: Reader<'_>, dts_ms: i64) -> Result<VideoTag<'_>, FlvError> {
    let frame_type = FrameType::from_bits(first >> 4);
    let codec = VideoCodec::from_legacy_id(first & 0x0F);
    if codec != VideoCodec::Avc {
        return Ok(VideoTag::Unsupported { codec });
    }
    // The FLV and Enhanced RTMP specifications disagree on where a command frame's command byte
    // sits; nothing here needs it, so the body is not read at all.
    if frame_type == FrameType::Command {
        return Ok(VideoTag::Command);
    }
    let packet_type = reader.u8("AVC video tag header")?;
    let composition_ms = i24(reader.array("AVC video tag header")?);
    match packet_type {
        0 => video_sequence_start(codec, reader.rest()),
        1 => Ok(VideoTag::Frame(VideoFrame { codec, frame_type, dts_ms, pts_ms: dts_ms + i64::from(composition_ms), data: reader.rest() })),
        2 => Ok(VideoTag::SequenceEnd { codec }),
        other => Err(FlvError::UnknownPacketType { what: "AVC", packet_type: other }),
    }
}

fn parse_enhanced_video<'a>(first: u8, mut reader: Reader<'a>, dts_ms: i64, tracks: &mut TrackSelector) -> Result<VideoTag<'a>, FlvError> {
    // Three bits of frame type, not four: the top bit is the IsExHeader flag.
    let frame_type = FrameType::from_bits((first >> 4) & 0x07);
    let packet_bits = first & 0x0F;
    match packet_bits {
        VIDEO_PACKET_MOD_EX => return Err(FlvError::NotSupportedYet("Enhanced RTMP video ModEx")),
        8.. => return Err(FlvError::UnknownPacketType { what: "Enhanced RTMP video", packet_type: packet_bits }),
        _ => {}
    }
    // A command frame has no FourCC or body (multitrack or not); a metadata packet ignores the
    // frame type.
    if frame_type == FrameType::Command && packet_bits != VIDEO_PACKET_METADATA {
        return Ok(VideoTag::Command);
    }
    if packet_bits != VIDEO_PACKET_MULTITRACK {
        let packet = ExVideoPacket::from_bits(packet_bits)?;
        let fourcc = reader.array("Enhanced RTMP video FourCC")?;
        if tracks.pick(std::iter::once(0)).is_none() {
            return Ok(VideoTag::OtherTrack { track_id: 0 });
        }
        return video_track_body(frame_type, packet, fourcc, reader, dts_ms);
    }
    // Multitrack: the high nibble is the layout, the low one the packet type of every track.
    let header = reader.u8("Enhanced RTMP multitrack header")?;
    let layout = Multitrack::from_bits(header >> 4)?;
    let packet = ExVideoPacket::from_bits(header & 0x0F)?;
    let mut all = read_tracks(&mut reader, layout)?;
    match tracks.pick(all.iter().map(|t| t.id)) {
        Some(index) => {
            let track = all.swap_remove(index);
            video_track_body(frame_type, packet, track.fourcc, track.body, dts_ms)
        }
        None => Ok(VideoTag::OtherTrack { track_id: all[0].id }),
    }
}

/// One track's body after its FourCC (and, in a multitrack message, its id and size).
fn video_track_body(
    frame_type: FrameType,
    packet: ExVideoPacket,
    fourcc: [u8; 4],
    mut reader: Reader<'_>,
    dts_ms: i64,
) -> Result<VideoTag<'_>, FlvError> {
    let codec = VideoCodec::from_fourcc(fourcc);
    if let VideoCodec::Other(_) = codec {
        // How an unknown codec lays out its coded frames (composition time or not) is unknown.
        return Ok(VideoTag::Unsupported { codec });
    }
    let body = reader.rest();
    match packet {
        ExVideoPacket::SequenceStart => video_sequence_start(codec, body),
        ExVideoPacket::CodedFrames | ExVideoPacket::CodedFramesX => {
            // Only codecs with B-frames in their FLV mapping carry a composition time, and
            // CodedFramesX exists to leave out a zero one.
            let carries_composition_time = packet == ExVideoPacket::CodedFrames && matches!(codec, VideoCodec::Avc | VideoCodec::Hevc);
            let composition_ms = if carries_composition_time { i24(reader.array("Enhanced RTMP composition time")?) } else { 0 };
            Ok(VideoTag::Frame(VideoFrame { codec, frame_type, dts_ms, pts_ms: dts_ms + i64::from(composition_ms), data: reader.rest() }))
        }
        ExVideoPacket::SequenceEnd => Ok(VideoTag::SequenceEnd { codec }),
        ExVideoPacket::Metadata => Ok(VideoTag::Metadata { codec, amf: body }),
        ExVideoPacket::Mpeg2TsSequenceStart => Ok(VideoTag::Mpeg2TsSequenceStart { codec, descriptor: body }),
    }
}

fn video_sequence_start(codec: VideoCodec, config: &[u8]) -> Result<VideoTag<'_>, FlvError> {
    let avc = if codec == VideoCodec::Avc { Some(parse_avc_config(config)?) } else { None };
    Ok(VideoTag::SequenceStart { codec, config, avc })
}

/// Reads an AVCDecoderConfigurationRecord (ISO/IEC 14496-15, 5.3.3.1).
pub fn parse_avc_config(record: &[u8]) -> Result<AvcConfig, FlvError> {
    let mut reader = Reader::new(record);
    let [version, profile_idc, profile_compatibility, level_idc, length_size, sps_count] = reader.array("AVCDecoderConfigurationRecord")?;
    if version != 1 {
        return Err(FlvError::InvalidAvcConfig("configurationVersion is not 1"));
    }
    // The parameter sets are walked only so that a record lying about their sizes is refused
    // here, by name, rather than by the decoder much later.
    for _ in 0..(sps_count & 0x1F) {
        let len = u16::from_be_bytes(reader.array("AVCDecoderConfigurationRecord SPS length")?);
        reader.take(usize::from(len), "AVCDecoderConfigurationRecord SPS")?;
    }
    let pps_count = reader.u8("AVCDecoderConfigurationRecord PPS count")?;
    for _ in 0..pps_count {
        let len = u16::from_be_bytes(reader.array("AVCDecoderConfigurationRecord PPS length")?);
        reader.take(usize::from(len), "AVCDecoderConfigurationRecord PPS")?;
    }
    // High profiles append chroma format and bit depths; the decoder reads those from codec_data.
    Ok(AvcConfig { profile_idc, profile_compatibility, level_idc, nal_length_size: (length_size & 0x03) + 1 })
}

/// The RFC 6381 codec string of an HEVCDecoderConfigurationRecord (ISO/IEC 14496-15, 8.3.3.1,
/// and its Annex E), e.g. `hvc1.1.6.L93.B0` for Main profile level 3.1.
pub fn hevc_codecs(record: &[u8]) -> Result<String, FlvError> {
    let mut reader = Reader::new(record);
    let [version, profile, compat_0, compat_1, compat_2, compat_3] = reader.array("HEVCDecoderConfigurationRecord")?;
    let constraints: [u8; 6] = reader.array("HEVCDecoderConfigurationRecord constraint flags")?;
    let level = reader.u8("HEVCDecoderConfigurationRecord level")?;
    if version != 1 {
        return Err(FlvError::InvalidHevcConfig("configurationVersion is not 1"));
    }
    let space = ["", "A", "B", "C"][usize::from(profile >> 6)];
    let tier = if profile & 0x20 != 0 { 'H' } else { 'L' };
    // The 32 compatibility flags are written in reverse bit order, as hex without leading zeros.
    let compatibility = u32::from_be_bytes([compat_0, compat_1, compat_2, compat_3]).reverse_bits();
    let mut codecs = format!("hvc1.{space}{}.{compatibility:X}.{tier}{level}", profile & 0x1F);
    // Constraint bytes up to the last non-zero one, each as hex.
    let used = constraints.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    for byte in &constraints[..used] {
        codecs.push_str(&format!(".{byte:X}"));
    }
    Ok(codecs)
}

// ---------------------------------------------------------------------------------------------
// Audio
// ---------------------------------------------------------------------------------------------

/// An audio codec, from a legacy FLV sound format or an Enhanced RTMP FourCC. `Display` names it
/// for log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    /// Sound format 0.
    LinearPcmPlatformEndian,
    /// Sound format 1.
    Adpcm,
    /// Sound format 2 or FourCC `.mp3`.
    Mp3,
    /// Sound format 3.
    LinearPcmLittleEndian,
    /// Sound format 4.
    Nellymoser16kMono,
    /// Sound format 5.
    Nellymoser8kMono,
    /// Sound format 6.
    Nellymoser,
    /// Sound format 7.
    G711ALaw,
    /// Sound format 8.
    G711MuLaw,
    /// Sound format 10 or FourCC `mp4a`.
    Aac,
    /// Sound format 11.
    Speex,
    /// Sound format 14.
    Mp3At8kHz,
    /// Sound format 15.
    DeviceSpecific,
    /// FourCC `Opus`.
    Opus,
    /// FourCC `fLaC`.
    Flac,
    /// FourCC `ac-3`.
    Ac3,
    /// FourCC `ec-3`.
    Eac3,
    /// A legacy sound format the FLV specification leaves reserved (12, 13).
    UnknownFormat(u8),
    /// An Enhanced RTMP FourCC this module does not know.
    Other([u8; 4]),
}

impl AudioCodec {
    fn from_sound_format(format: u8) -> Self {
        match format {
            0 => Self::LinearPcmPlatformEndian,
            1 => Self::Adpcm,
            2 => Self::Mp3,
            3 => Self::LinearPcmLittleEndian,
            4 => Self::Nellymoser16kMono,
            5 => Self::Nellymoser8kMono,
            6 => Self::Nellymoser,
            7 => Self::G711ALaw,
            8 => Self::G711MuLaw,
            10 => Self::Aac,
            11 => Self::Speex,
            14 => Self::Mp3At8kHz,
            15 => Self::DeviceSpecific,
            other => Self::UnknownFormat(other),
        }
    }

    fn from_fourcc(fourcc: [u8; 4]) -> Self {
        match &fourcc {
            b"mp4a" => Self::Aac,
            b"Opus" => Self::Opus,
            b".mp3" => Self::Mp3,
            b"fLaC" => Self::Flac,
            b"ac-3" => Self::Ac3,
            b"ec-3" => Self::Eac3,
            _ => Self::Other(fourcc),
        }
    }
}

impl fmt::Display for AudioCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LinearPcmPlatformEndian => f.write_str("linear PCM (platform endian)"),
            Self::Adpcm => f.write_str("ADPCM"),
            Self::Mp3 => f.write_str("MP3"),
            Self::LinearPcmLittleEndian => f.write_str("linear PCM (little endian)"),
            Self::Nellymoser16kMono => f.write_str("Nellymoser 16 kHz mono"),
            Self::Nellymoser8kMono => f.write_str("Nellymoser 8 kHz mono"),
            Self::Nellymoser => f.write_str("Nellymoser"),
            Self::G711ALaw => f.write_str("G.711 A-law"),
            Self::G711MuLaw => f.write_str("G.711 mu-law"),
            Self::Aac => f.write_str("AAC"),
            Self::Speex => f.write_str("Speex"),
            Self::Mp3At8kHz => f.write_str("MP3 8 kHz"),
            Self::DeviceSpecific => f.write_str("device-specific sound"),
            Self::Opus => f.write_str("Opus"),
            Self::Flac => f.write_str("FLAC"),
            Self::Ac3 => f.write_str("AC-3"),
            Self::Eac3 => f.write_str("E-AC-3"),
            Self::UnknownFormat(format) => write!(f, "unknown FLV sound format {format}"),
            Self::Other(fourcc) => write!(f, "unknown audio FourCC \"{}\"", fourcc.escape_ascii()),
        }
    }
}

/// The AudioSpecificConfig fields a caller needs for caps and the HLS CODECS string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AacConfig {
    /// 2 is AAC-LC. For explicitly signalled HE-AAC this is 5 and the core's values follow; the
    /// SBR extension fields are not read.
    pub object_type: u8,
    pub sample_rate_hz: u32,
    /// 1 = mono, 2 = stereo, up to 7; 0 means the layout is in a program config element.
    pub channel_config: u8,
}

impl AacConfig {
    /// The RFC 6381 codec string, e.g. `mp4a.40.2` for AAC-LC.
    pub fn codecs(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }
}

/// One coded audio frame. `data` borrows from the message payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioFrame<'a> {
    pub codec: AudioCodec,
    /// The message timestamp, as passed in.
    pub timestamp_ms: i64,
    /// For AAC: one raw access unit, without an ADTS header.
    pub data: &'a [u8],
}

/// What one audio message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioTag<'a> {
    /// Codec configuration (AAC AudioSpecificConfig, Opus or FLAC headers), which becomes the
    /// caps' `codec_data`. For AAC its fields are parsed too.
    SequenceStart {
        codec: AudioCodec,
        config: &'a [u8],
        aac: Option<AacConfig>,
    },
    /// A frame of any recognised codec: the pipeline decides whether it can take it.
    Frame(AudioFrame<'a>),
    SequenceEnd {
        codec: AudioCodec,
    },
    /// Enhanced RTMP only: a channel order and count for codecs that do not carry their own.
    MultichannelConfig {
        codec: AudioCodec,
        data: &'a [u8],
    },
    /// An empty message: RTMP's audio silence signal (documented in Enhanced RTMP).
    Silence,
    /// A codec this module cannot read further; the body is left uninterpreted.
    Unsupported {
        codec: AudioCodec,
    },
    /// A message of tracks the [`TrackSelector`] does not take (`track_id` is its first one).
    OtherTrack {
        track_id: u8,
    },
}

/// The Enhanced RTMP audio packet types this module reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExAudioPacket {
    SequenceStart,
    CodedFrames,
    SequenceEnd,
    MultichannelConfig,
}

/// AudioPacketType.Multitrack.
const AUDIO_PACKET_MULTITRACK: u8 = 5;
/// AudioPacketType.ModEx.
const AUDIO_PACKET_MOD_EX: u8 = 7;

impl ExAudioPacket {
    fn from_bits(bits: u8) -> Result<Self, FlvError> {
        match bits {
            0 => Ok(Self::SequenceStart),
            1 => Ok(Self::CodedFrames),
            2 => Ok(Self::SequenceEnd),
            4 => Ok(Self::MultichannelConfig),
            AUDIO_PACKET_MULTITRACK => Err(FlvError::InvalidMultitrack("a track's audio packet type is Multitrack again")),
            AUDIO_PACKET_MOD_EX => Err(FlvError::NotSupportedYet("Enhanced RTMP audio ModEx")),
            other => Err(FlvError::UnknownPacketType { what: "Enhanced RTMP audio", packet_type: other }),
        }
    }
}

/// Sound format 9 is reserved in legacy FLV; Enhanced RTMP uses it to announce a FourCC header.
const SOUND_FORMAT_EX_HEADER: u8 = 9;

/// Reads the payload of one RTMP audio message. `timestamp_ms` is its timestamp after
/// [`TimestampUnwrapper::extend`]. A multitrack message gives its track 0, or its first track; a
/// publish keeps one [`TrackSelector`] and calls [`parse_audio_track`] instead.
pub fn parse_audio(payload: &[u8], timestamp_ms: i64) -> Result<AudioTag<'_>, FlvError> {
    parse_audio_track(payload, timestamp_ms, &mut TrackSelector::new())
}

/// [`parse_audio`] for the track `tracks` chose; a message without it is
/// [`AudioTag::OtherTrack`].
pub fn parse_audio_track<'a>(payload: &'a [u8], timestamp_ms: i64, tracks: &mut TrackSelector) -> Result<AudioTag<'a>, FlvError> {
    if payload.is_empty() {
        return Ok(AudioTag::Silence);
    }
    let mut reader = Reader::new(payload);
    let first = reader.u8("audio tag header")?;
    let sound_format = first >> 4;
    if sound_format == SOUND_FORMAT_EX_HEADER {
        return parse_enhanced_audio(first & 0x0F, reader, timestamp_ms, tracks);
    }
    if tracks.pick(std::iter::once(0)).is_none() {
        return Ok(AudioTag::OtherTrack { track_id: 0 });
    }
    // The low four bits (rate, size, channels) are not exposed: AAC ignores them in favour of its
    // AudioSpecificConfig, MP3 frames describe themselves, and the rest are not taken anyway.
    let codec = AudioCodec::from_sound_format(sound_format);
    match codec {
        AudioCodec::Aac => match reader.u8("AAC audio tag header")? {
            0 => audio_sequence_start(codec, reader.rest()),
            1 => Ok(AudioTag::Frame(AudioFrame { codec, timestamp_ms, data: reader.rest() })),
            other => Err(FlvError::UnknownPacketType { what: "AAC", packet_type: other }),
        },
        AudioCodec::UnknownFormat(_) => Ok(AudioTag::Unsupported { codec }),
        _ => Ok(AudioTag::Frame(AudioFrame { codec, timestamp_ms, data: reader.rest() })),
    }
}

fn parse_enhanced_audio<'a>(
    packet_bits: u8,
    mut reader: Reader<'a>,
    timestamp_ms: i64,
    tracks: &mut TrackSelector,
) -> Result<AudioTag<'a>, FlvError> {
    if packet_bits != AUDIO_PACKET_MULTITRACK {
        // Checked before the FourCC is read, because ModEx moves it.
        let packet = ExAudioPacket::from_bits(packet_bits)?;
        let fourcc = reader.array("Enhanced RTMP audio FourCC")?;
        if tracks.pick(std::iter::once(0)).is_none() {
            return Ok(AudioTag::OtherTrack { track_id: 0 });
        }
        return audio_track_body(packet, fourcc, reader, timestamp_ms);
    }
    // Multitrack: the high nibble is the layout, the low one the packet type of every track.
    let header = reader.u8("Enhanced RTMP multitrack header")?;
    let layout = Multitrack::from_bits(header >> 4)?;
    let packet = ExAudioPacket::from_bits(header & 0x0F)?;
    let mut all = read_tracks(&mut reader, layout)?;
    match tracks.pick(all.iter().map(|t| t.id)) {
        Some(index) => {
            let track = all.swap_remove(index);
            audio_track_body(packet, track.fourcc, track.body, timestamp_ms)
        }
        None => Ok(AudioTag::OtherTrack { track_id: all[0].id }),
    }
}

/// One track's body after its FourCC (and, in a multitrack message, its id and size).
fn audio_track_body(packet: ExAudioPacket, fourcc: [u8; 4], reader: Reader<'_>, timestamp_ms: i64) -> Result<AudioTag<'_>, FlvError> {
    let codec = AudioCodec::from_fourcc(fourcc);
    if let AudioCodec::Other(_) = codec {
        return Ok(AudioTag::Unsupported { codec });
    }
    let body = reader.rest();
    match packet {
        ExAudioPacket::SequenceStart => audio_sequence_start(codec, body),
        ExAudioPacket::CodedFrames => Ok(AudioTag::Frame(AudioFrame { codec, timestamp_ms, data: body })),
        ExAudioPacket::SequenceEnd => Ok(AudioTag::SequenceEnd { codec }),
        ExAudioPacket::MultichannelConfig => Ok(AudioTag::MultichannelConfig { codec, data: body }),
    }
}

fn audio_sequence_start(codec: AudioCodec, config: &[u8]) -> Result<AudioTag<'_>, FlvError> {
    let aac = if codec == AudioCodec::Aac { Some(parse_aac_config(config)?) } else { None };
    Ok(AudioTag::SequenceStart { codec, config, aac })
}

/// Sampling frequencies by index (ISO/IEC 14496-3, 1.6.3.3); 13 and 14 are reserved and 15 means
/// an explicit 24-bit frequency follows.
const AAC_SAMPLE_RATES: [u32; 13] = [96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000, 7_350];

/// Reads the start of an AAC AudioSpecificConfig (ISO/IEC 14496-3, 1.6.2.1).
pub fn parse_aac_config(config: &[u8]) -> Result<AacConfig, FlvError> {
    let mut bits = BitReader::new(config);
    let mut object_type = bits.read(5)?;
    if object_type == 31 {
        object_type = 32 + bits.read(6)?;
    }
    if object_type == 0 {
        return Err(FlvError::InvalidAacConfig("audio object type 0 is the null object"));
    }
    let frequency_index = bits.read(4)?;
    let sample_rate_hz = if frequency_index == 15 {
        bits.read(24)?
    } else {
        *AAC_SAMPLE_RATES.get(frequency_index as usize).ok_or(FlvError::InvalidAacConfig("reserved sampling frequency index"))?
    };
    let channel_config = bits.read(4)?;
    // Both fit: the object type is at most 32 + 63 and the channel configuration is four bits.
    Ok(AacConfig { object_type: object_type as u8, sample_rate_hz, channel_config: channel_config as u8 })
}

// ---------------------------------------------------------------------------------------------
// Aggregate messages
// ---------------------------------------------------------------------------------------------

/// The RTMP message type of an aggregate sub-message (the FLV tag type byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// 8.
    Audio,
    /// 9.
    Video,
    /// 18: AMF0 data such as `@setDataFrame`/`onMetaData`.
    Amf0Data,
    /// Anything else, including tags with the FLV encryption filter bit (0x20) set.
    Other(u8),
}

impl MessageType {
    pub fn from_id(id: u8) -> Self {
        match id {
            8 => Self::Audio,
            9 => Self::Video,
            18 => Self::Amf0Data,
            other => Self::Other(other),
        }
    }
}

/// One message carried inside an aggregate message. `payload` borrows from the aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubMessage<'a> {
    pub message_type: MessageType,
    /// Already moved onto the aggregate message's clock; still a wrapping RTMP timestamp, to be
    /// fed to the same [`TimestampUnwrapper`] as ordinary messages.
    pub timestamp_ms: u32,
    pub payload: &'a [u8],
}

/// Type, data size, timestamp, extended timestamp, stream id.
const TAG_HEADER_LEN: u32 = 11;

/// Splits the payload of an RTMP aggregate message (type 22) into its sub-messages.
///
/// Each sub-message is an FLV tag: an 11-byte header, the data, then a 4-byte previous-tag-size
/// that must equal 11 plus the data size. Sub-message timestamps are on the sender's own clock;
/// per the RTMP specification the first one maps to the aggregate's `timestamp_ms` and the rest
/// keep their distance from it. A malformed sub-tag fails the whole message, because nothing
/// after a broken length can be trusted.
pub fn split_aggregate(payload: &[u8], timestamp_ms: u32) -> Result<Vec<SubMessage<'_>>, FlvError> {
    if payload.is_empty() {
        return Err(FlvError::TooShort { what: "aggregate message", expected: TAG_HEADER_LEN as usize, actual: 0 });
    }
    let mut reader = Reader::new(payload);
    let mut messages = Vec::new();
    let mut clock_offset = None;
    while !reader.is_at_end() {
        let tag_start = reader.position();
        // The stream id is ignored: the aggregate's own message stream id overrides it.
        let [tag_type, size_0, size_1, size_2, ts_0, ts_1, ts_2, ts_extended, _, _, _] = reader.array("aggregate sub-tag header")?;
        let data_size = u24([size_0, size_1, size_2]);
        // The extended byte holds the top eight bits of the 32-bit timestamp.
        let tag_timestamp = u32::from_be_bytes([ts_extended, ts_0, ts_1, ts_2]);
        let data = reader.take(data_size as usize, "aggregate sub-tag data")?;
        let back_pointer = u32::from_be_bytes(reader.array("aggregate sub-tag previous-tag-size")?);
        let expected = TAG_HEADER_LEN + data_size;
        if back_pointer != expected {
            return Err(FlvError::AggregateBackPointer { offset: tag_start, expected, found: back_pointer });
        }
        // Wrapping arithmetic: both clocks are 32-bit and either may have wrapped.
        let offset = *clock_offset.get_or_insert(timestamp_ms.wrapping_sub(tag_timestamp));
        messages.push(SubMessage {
            message_type: MessageType::from_id(tag_type),
            timestamp_ms: tag_timestamp.wrapping_add(offset),
            payload: data,
        });
    }
    Ok(messages)
}

// ---------------------------------------------------------------------------------------------
// Byte and bit readers
// ---------------------------------------------------------------------------------------------

/// A cursor over untrusted bytes; every read is bounds-checked and names what it was reading.
struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, position: 0 }
    }

    fn position(&self) -> usize {
        self.position
    }

    fn is_at_end(&self) -> bool {
        self.position >= self.bytes.len()
    }

    fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], FlvError> {
        let end = self.position.checked_add(len);
        match end.and_then(|end| self.bytes.get(self.position..end)) {
            Some(taken) => {
                self.position += len;
                Ok(taken)
            }
            None => Err(FlvError::TooShort { what, expected: self.position.saturating_add(len), actual: self.bytes.len() }),
        }
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], FlvError> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N, what)?);
        Ok(array)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, FlvError> {
        let [byte] = self.array(what)?;
        Ok(byte)
    }

    /// Everything not read yet.
    fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.position..).unwrap_or_default()
    }

    /// A reader over everything not read yet, which this one then skips.
    fn take_rest(&mut self) -> Reader<'a> {
        let rest = Reader { bytes: self.bytes, position: self.position };
        self.position = self.bytes.len();
        rest
    }

    /// A reader over the next `len` bytes, positioned at their start but counting from the start
    /// of this reader's buffer, which this one then skips.
    fn take_reader(&mut self, len: usize, what: &'static str) -> Result<Reader<'a>, FlvError> {
        let start = self.position;
        self.take(len, what)?;
        Ok(Reader { bytes: self.bytes.get(..self.position).unwrap_or_default(), position: start })
    }
}

/// A most-significant-bit-first reader, for the AudioSpecificConfig's unaligned fields.
struct BitReader<'a> {
    bytes: &'a [u8],
    bit_position: usize,
}

impl<'a> BitReader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, bit_position: 0 }
    }

    /// The next `count` bits (at most 32) as an unsigned number.
    fn read(&mut self, count: u32) -> Result<u32, FlvError> {
        let mut value = 0u32;
        for _ in 0..count {
            let byte_index = self.bit_position / 8;
            let byte = self.bytes.get(byte_index).ok_or(FlvError::TooShort {
                what: "AAC AudioSpecificConfig",
                expected: byte_index + 1,
                actual: self.bytes.len(),
            })?;
            let bit = (byte >> (7 - self.bit_position % 8)) & 1;
            value = (value << 1) | u32::from(bit);
            self.bit_position += 1;
        }
        Ok(value)
    }
}

fn u24(bytes: [u8; 3]) -> u32 {
    u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]])
}

/// A signed 24-bit big-endian number (the composition time offset).
fn i24(bytes: [u8; 3]) -> i32 {
    // Moving the 24 bits to the top and shifting back arithmetically copies their sign bit.
    ((u24(bytes) << 8) as i32) >> 8
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A complete AVCDecoderConfigurationRecord as OBS/x264 send it: High profile (100), level
    /// 3.1, 4-byte NAL lengths, one SPS, one PPS, then the High-profile chroma/bit-depth tail.
    fn avc_record() -> Vec<u8> {
        let sps = [
            0x67, 0x64, 0x00, 0x1F, 0xAC, 0xD9, 0x40, 0x50, 0x05, 0xBB, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03,
            0xC0, 0xF1, 0x83, 0x19, 0x60,
        ];
        let pps = [0x68, 0xEB, 0xE3, 0xCB, 0x22, 0xC0];
        let mut record = vec![
            0x01, // configurationVersion
            0x64, // AVCProfileIndication: High
            0x00, // profile_compatibility
            0x1F, // AVCLevelIndication: 3.1
            0xFF, // reserved 111111 + lengthSizeMinusOne 3
            0xE1, // reserved 111 + one SPS
        ];
        record.extend_from_slice(&(sps.len() as u16).to_be_bytes());
        record.extend_from_slice(&sps);
        record.push(0x01); // one PPS
        record.extend_from_slice(&(pps.len() as u16).to_be_bytes());
        record.extend_from_slice(&pps);
        record.extend_from_slice(&[0xFD, 0xF8, 0xF8, 0x00]); // chroma 4:2:0, 8-bit, no SPS ext
        record
    }

    /// The start of a Main-profile HEVCDecoderConfigurationRecord; this module passes it through.
    const HEVC_RECORD: &[u8] = &[
        0x01, 0x01, 0x60, 0x00, 0x00, 0x00, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x5D, 0xF0, 0x00, 0xFC, 0xFD, 0xF8, 0xF8, 0x00, 0x00, 0x0F,
        0x03,
    ];

    /// One FLV tag as it appears inside an aggregate message.
    fn flv_tag(tag_type: u8, timestamp: u32, data: &[u8]) -> Vec<u8> {
        let size = (data.len() as u32).to_be_bytes();
        let ts = timestamp.to_be_bytes();
        let mut tag = vec![tag_type, size[1], size[2], size[3], ts[1], ts[2], ts[3], ts[0], 0, 0, 0];
        tag.extend_from_slice(data);
        tag.extend_from_slice(&(TAG_HEADER_LEN + data.len() as u32).to_be_bytes());
        tag
    }

    fn enhanced_video(first: u8, fourcc: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut payload = vec![first];
        payload.extend_from_slice(fourcc);
        payload.extend_from_slice(body);
        payload
    }

    #[test]
    fn avc_sequence_header_gives_codec_data_and_profile_level() -> Result<(), FlvError> {
        let record = avc_record();
        let mut payload = vec![0x17, 0x00, 0x00, 0x00, 0x00];
        payload.extend_from_slice(&record);

        let tag = parse_video(&payload, 0)?;
        let expected_config = AvcConfig { profile_idc: 100, profile_compatibility: 0, level_idc: 31, nal_length_size: 4 };
        assert_eq!(tag, VideoTag::SequenceStart { codec: VideoCodec::Avc, config: &record, avc: Some(expected_config) });
        assert_eq!(expected_config.codecs(), "avc1.64001f");
        Ok(())
    }

    #[test]
    fn avc_config_with_wrong_version_or_lying_sps_length_is_refused() {
        let mut record = avc_record();
        record[0] = 0;
        assert!(matches!(parse_avc_config(&record), Err(FlvError::InvalidAvcConfig(_))));

        let mut record = avc_record();
        record[6..8].copy_from_slice(&500u16.to_be_bytes());
        assert_eq!(
            parse_avc_config(&record),
            Err(FlvError::TooShort { what: "AVCDecoderConfigurationRecord SPS", expected: 508, actual: record.len() })
        );

        assert!(matches!(parse_avc_config(&[0x01, 0x64, 0x00]), Err(FlvError::TooShort { expected: 6, actual: 3, .. })));
    }

    #[test]
    fn avc_key_frame_with_positive_composition_time() -> Result<(), FlvError> {
        let payload = [0x17, 0x01, 0x00, 0x00, 0x42, 0x00, 0x00, 0x00, 0x02, 0x65, 0x88];
        let tag = parse_video(&payload, 1_000)?;
        assert_eq!(
            tag,
            VideoTag::Frame(VideoFrame {
                codec: VideoCodec::Avc,
                frame_type: FrameType::Key,
                dts_ms: 1_000,
                pts_ms: 1_066,
                data: &[0x00, 0x00, 0x00, 0x02, 0x65, 0x88],
            })
        );
        Ok(())
    }

    #[test]
    fn avc_b_frame_with_negative_composition_time() -> Result<(), FlvError> {
        // -33 ms as a signed 24-bit number.
        let payload = [0x27, 0x01, 0xFF, 0xFF, 0xDF, 0x00, 0x00, 0x00, 0x01, 0x01];
        let VideoTag::Frame(frame) = parse_video(&payload, 1_000)? else { panic!("expected a frame") };
        assert_eq!(frame.frame_type, FrameType::Inter);
        assert!(!frame.frame_type.is_key());
        assert_eq!((frame.dts_ms, frame.pts_ms), (1_000, 967));
        Ok(())
    }

    #[test]
    fn avc_composition_time_uses_all_24_bits() -> Result<(), FlvError> {
        // 0x7FFFFF is the largest positive offset and 0x800000 the most negative.
        let VideoTag::Frame(frame) = parse_video(&[0x27, 0x01, 0x7F, 0xFF, 0xFF], 0)? else { panic!("expected a frame") };
        assert_eq!(frame.pts_ms, 8_388_607);
        let VideoTag::Frame(frame) = parse_video(&[0x27, 0x01, 0x80, 0x00, 0x00], 0)? else { panic!("expected a frame") };
        assert_eq!(frame.pts_ms, -8_388_608);
        Ok(())
    }

    #[test]
    fn avc_end_of_sequence_and_unknown_packet_type() -> Result<(), FlvError> {
        assert_eq!(parse_video(&[0x17, 0x02, 0x00, 0x00, 0x00], 5)?, VideoTag::SequenceEnd { codec: VideoCodec::Avc });
        assert_eq!(parse_video(&[0x17, 0x03, 0x00, 0x00, 0x00], 5), Err(FlvError::UnknownPacketType { what: "AVC", packet_type: 3 }));
        Ok(())
    }

    #[test]
    fn avc_header_cut_short_is_too_short() {
        assert_eq!(parse_video(&[0x17, 0x01, 0x00], 0), Err(FlvError::TooShort { what: "AVC video tag header", expected: 5, actual: 3 }));
    }

    #[test]
    fn legacy_codecs_other_than_avc_are_unsupported_and_named() -> Result<(), FlvError> {
        let cases = [
            (0x12, VideoCodec::SorensonH263, "Sorenson H.263"),
            (0x13, VideoCodec::ScreenVideo, "Screen Video"),
            (0x14, VideoCodec::Vp6, "On2 VP6"),
            (0x15, VideoCodec::Vp6Alpha, "On2 VP6 with alpha"),
            (0x16, VideoCodec::ScreenVideoV2, "Screen Video v2"),
            (0x1C, VideoCodec::UnknownId(12), "unknown FLV video codec id 12"),
        ];
        for (first, codec, name) in cases {
            assert_eq!(parse_video(&[first, 0xAA, 0xBB], 0)?, VideoTag::Unsupported { codec });
            assert_eq!(codec.to_string(), name);
        }
        Ok(())
    }

    #[test]
    fn command_frames_carry_no_picture() -> Result<(), FlvError> {
        assert_eq!(parse_video(&[0x57, 0x00], 0)?, VideoTag::Command);
        // Enhanced: frame type 5 with CodedFrames.
        assert_eq!(parse_video(&[0xD1, 0x00], 0)?, VideoTag::Command);
        Ok(())
    }

    #[test]
    fn enhanced_hvc1_sequence_start_passes_the_record_through() -> Result<(), FlvError> {
        // IsExHeader | key frame | SequenceStart.
        let payload = enhanced_video(0x90, b"hvc1", HEVC_RECORD);
        assert_eq!(parse_video(&payload, 0)?, VideoTag::SequenceStart { codec: VideoCodec::Hevc, config: HEVC_RECORD, avc: None });
        Ok(())
    }

    #[test]
    fn enhanced_hvc1_coded_frames_carry_composition_time() -> Result<(), FlvError> {
        // IsExHeader | key frame | CodedFrames, composition time +40 ms.
        let payload = enhanced_video(0x91, b"hvc1", &[0x00, 0x00, 0x28, 0x00, 0x00, 0x00, 0x02, 0x26, 0x01]);
        assert_eq!(
            parse_video(&payload, 2_000)?,
            VideoTag::Frame(VideoFrame {
                codec: VideoCodec::Hevc,
                frame_type: FrameType::Key,
                dts_ms: 2_000,
                pts_ms: 2_040,
                data: &[0x00, 0x00, 0x00, 0x02, 0x26, 0x01],
            })
        );

        // IsExHeader | inter frame | CodedFrames, composition time -40 ms.
        let payload = enhanced_video(0xA1, b"hvc1", &[0xFF, 0xFF, 0xD8, 0x00, 0x00, 0x00, 0x02, 0x02, 0x01]);
        let VideoTag::Frame(frame) = parse_video(&payload, 2_000)? else { panic!("expected a frame") };
        assert_eq!((frame.frame_type, frame.pts_ms, frame.data.len()), (FrameType::Inter, 1_960, 6));
        Ok(())
    }

    #[test]
    fn enhanced_coded_frames_x_has_no_composition_time() -> Result<(), FlvError> {
        // IsExHeader | inter frame | CodedFramesX: the frame starts right after the FourCC.
        let payload = enhanced_video(0xA3, b"hvc1", &[0x00, 0x00, 0x00, 0x02, 0x02, 0x01]);
        assert_eq!(
            parse_video(&payload, 3_000)?,
            VideoTag::Frame(VideoFrame {
                codec: VideoCodec::Hevc,
                frame_type: FrameType::Inter,
                dts_ms: 3_000,
                pts_ms: 3_000,
                data: &[0x00, 0x00, 0x00, 0x02, 0x02, 0x01],
            })
        );
        Ok(())
    }

    #[test]
    fn enhanced_av1_and_vp9_coded_frames_have_no_composition_time() -> Result<(), FlvError> {
        for (fourcc, codec) in [(b"av01", VideoCodec::Av1), (b"vp09", VideoCodec::Vp9)] {
            let payload = enhanced_video(0x91, fourcc, &[0x12, 0x00, 0x0A]);
            let VideoTag::Frame(frame) = parse_video(&payload, 7)? else { panic!("expected a frame") };
            assert_eq!((frame.codec, frame.pts_ms, frame.data), (codec, 7, &[0x12, 0x00, 0x0A][..]));
        }
        Ok(())
    }

    #[test]
    fn enhanced_avc1_sequence_start_is_parsed_like_legacy_avc() -> Result<(), FlvError> {
        let record = avc_record();
        let payload = enhanced_video(0x90, b"avc1", &record);
        let VideoTag::SequenceStart { codec, avc: Some(avc), .. } = parse_video(&payload, 0)? else {
            panic!("expected an AVC sequence start")
        };
        assert_eq!((codec, avc.codecs()), (VideoCodec::Avc, "avc1.64001f".to_string()));
        Ok(())
    }

    #[test]
    fn enhanced_sequence_end_metadata_and_mpeg2ts_start() -> Result<(), FlvError> {
        assert_eq!(parse_video(&enhanced_video(0x92, b"av01", &[]), 0)?, VideoTag::SequenceEnd { codec: VideoCodec::Av1 });
        // Metadata ignores the frame type, even a command one.
        let amf = [0x02, 0x00, 0x09, b'c', b'o', b'l', b'o', b'r', b'I', b'n', b'f', b'o'];
        assert_eq!(parse_video(&enhanced_video(0xD4, b"hvc1", &amf), 0)?, VideoTag::Metadata { codec: VideoCodec::Hevc, amf: &amf });
        assert_eq!(
            parse_video(&enhanced_video(0x95, b"av01", &[0x80, 0x04]), 0)?,
            VideoTag::Mpeg2TsSequenceStart { codec: VideoCodec::Av1, descriptor: &[0x80, 0x04] }
        );
        Ok(())
    }

    #[test]
    fn enhanced_unknown_fourcc_is_unsupported_and_named() -> Result<(), FlvError> {
        let payload = enhanced_video(0x91, b"vvc1", &[0x00, 0x00, 0x00, 0x01]);
        assert_eq!(parse_video(&payload, 0)?, VideoTag::Unsupported { codec: VideoCodec::Other(*b"vvc1") });
        assert_eq!(VideoCodec::Other(*b"vvc1").to_string(), "unknown video FourCC \"vvc1\"");
        assert_eq!(VideoCodec::Other([0, b'a', 0xFF, b'"']).to_string(), "unknown video FourCC \"\\x00a\\xff\\\"\"");
        Ok(())
    }

    #[test]
    fn enhanced_modex_and_reserved_packet_types_are_errors() {
        assert_eq!(parse_video(&[0x97, 0x00], 0), Err(FlvError::NotSupportedYet("Enhanced RTMP video ModEx")));
        assert_eq!(parse_video(&[0x98], 0), Err(FlvError::UnknownPacketType { what: "Enhanced RTMP video", packet_type: 8 }));
    }

    /// One track of a ManyTracks / ManyTracksManyCodecs message: [FourCC], id, UI24 size, body.
    fn sized_track(fourcc: Option<&[u8; 4]>, id: u8, body: &[u8]) -> Vec<u8> {
        let mut track = fourcc.map(|f| f.to_vec()).unwrap_or_default();
        track.push(id);
        track.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        track.extend_from_slice(body);
        track
    }

    #[test]
    fn multitrack_one_track_reads_the_track_after_its_id() -> Result<(), FlvError> {
        // IsExHeader | key frame | Multitrack; OneTrack | CodedFrames; "hvc1"; track 0; no size;
        // composition time +40 ms; one length-prefixed NAL unit.
        let payload = [0x96, 0x01, b'h', b'v', b'c', b'1', 0x00, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00, 0x02, 0x26, 0x01];
        assert_eq!(
            parse_video(&payload, 1_000)?,
            VideoTag::Frame(VideoFrame {
                codec: VideoCodec::Hevc,
                frame_type: FrameType::Key,
                dts_ms: 1_000,
                pts_ms: 1_040,
                data: &[0x00, 0x00, 0x00, 0x02, 0x26, 0x01],
            })
        );
        Ok(())
    }

    #[test]
    fn multitrack_many_tracks_takes_track_zero_wherever_it_is() -> Result<(), FlvError> {
        // ManyTracks | SequenceStart, shared "hvc1": track 1 (a junk record) first, then track 0.
        let mut payload = vec![0x96, 0x10, b'h', b'v', b'c', b'1'];
        payload.extend(sized_track(None, 1, &[0xAA, 0xBB, 0xCC]));
        payload.extend(sized_track(None, 0, HEVC_RECORD));
        assert_eq!(parse_video(&payload, 0)?, VideoTag::SequenceStart { codec: VideoCodec::Hevc, config: HEVC_RECORD, avc: None });
        Ok(())
    }

    #[test]
    fn multitrack_many_codecs_reads_each_tracks_fourcc() -> Result<(), FlvError> {
        // IsExHeader | inter frame | Multitrack; ManyTracksManyCodecs | CodedFrames.
        let mut payload = vec![0xA6, 0x21];
        payload.extend(sized_track(Some(b"av01"), 2, &[0x12, 0x00, 0x0A]));
        payload.extend(sized_track(Some(b"hvc1"), 0, &[0xFF, 0xFF, 0xD8, 0x00, 0x00, 0x00, 0x01, 0x02]));
        payload.extend(sized_track(Some(b"vp09"), 1, &[0x82]));
        let VideoTag::Frame(frame) = parse_video(&payload, 500)? else { panic!("expected a frame") };
        assert_eq!((frame.codec, frame.frame_type, frame.pts_ms), (VideoCodec::Hevc, FrameType::Inter, 460));
        assert_eq!(frame.data, &[0x00, 0x00, 0x00, 0x01, 0x02]);
        Ok(())
    }

    #[test]
    fn without_track_zero_the_first_track_is_kept_for_the_whole_publish() -> Result<(), FlvError> {
        let mut tracks = TrackSelector::new();
        // ManyTracks | CodedFramesX, "av01": tracks 3 and 5.
        let mut first = vec![0x96, 0x13, b'a', b'v', b'0', b'1'];
        first.extend(sized_track(None, 3, &[0x30]));
        first.extend(sized_track(None, 5, &[0x50]));
        let VideoTag::Frame(frame) = parse_video_track(&first, 0, &mut tracks)? else { panic!("expected a frame") };
        assert_eq!((frame.codec, frame.data), (VideoCodec::Av1, &[0x30][..]));
        assert_eq!(tracks.chosen(), Some(3));

        // Later messages of other tracks are skipped, a single-track message (track 0) too.
        let track_5 = [0xA6, 0x03, b'a', b'v', b'0', b'1', 5, 0x51];
        assert_eq!(parse_video_track(&track_5, 33, &mut tracks)?, VideoTag::OtherTrack { track_id: 5 });
        let plain = enhanced_video(0xA3, b"av01", &[0x00]);
        assert_eq!(parse_video_track(&plain, 33, &mut tracks)?, VideoTag::OtherTrack { track_id: 0 });
        let track_3 = [0xA6, 0x03, b'a', b'v', b'0', b'1', 3, 0x31];
        assert!(matches!(parse_video_track(&track_3, 33, &mut tracks)?, VideoTag::Frame(VideoFrame { data: &[0x31], .. })));

        // A publish that starts without multitrack stays on track 0.
        let mut tracks = TrackSelector::new();
        assert!(matches!(parse_video_track(&plain, 0, &mut tracks)?, VideoTag::Frame(_)));
        assert_eq!(parse_video_track(&track_3, 33, &mut tracks)?, VideoTag::OtherTrack { track_id: 3 });
        Ok(())
    }

    #[test]
    fn malformed_multitrack_is_an_error_naming_the_field() {
        // A track size reaching past the message.
        let mut payload = vec![0x96, 0x11, b'h', b'v', b'c', b'1'];
        payload.extend(sized_track(None, 0, &[0x00, 0x00, 0x00, 0x01]));
        payload[9] = 0x09;
        assert_eq!(parse_video(&payload, 0), Err(FlvError::TooShort { what: "Enhanced RTMP track data", expected: 19, actual: 14 }));
        // A composition time cut short inside a sized track counts from the start of the message.
        let mut payload = vec![0x96, 0x11, b'h', b'v', b'c', b'1'];
        payload.extend(sized_track(None, 0, &[0x00, 0x00]));
        payload.extend(sized_track(None, 1, &[0x00, 0x00, 0x00]));
        assert_eq!(parse_video(&payload, 0), Err(FlvError::TooShort { what: "Enhanced RTMP composition time", expected: 13, actual: 12 }));
        // Reserved AvMultitrackType, nested multitrack, and a header cut before the track id.
        assert_eq!(parse_video(&[0x96, 0x31, b'h', b'v', b'c', b'1'], 0), Err(FlvError::InvalidMultitrack("reserved AvMultitrackType")));
        assert!(matches!(parse_video(&[0x96, 0x06, b'h', b'v', b'c', b'1', 0], 0), Err(FlvError::InvalidMultitrack(_))));
        assert_eq!(
            parse_video(&[0x96, 0x00], 0),
            Err(FlvError::TooShort { what: "Enhanced RTMP multitrack FourCC", expected: 6, actual: 2 })
        );
        assert_eq!(
            parse_video(&[0x96, 0x20, b'h', b'v', b'c', b'1'], 0),
            Err(FlvError::TooShort { what: "Enhanced RTMP track id", expected: 7, actual: 6 })
        );
        // A command frame carries no tracks, multitrack or not.
        assert_eq!(parse_video(&[0xD6, 0x00], 0), Ok(VideoTag::Command));
    }

    #[test]
    fn multitrack_audio_takes_track_zero() -> Result<(), FlvError> {
        // ExHeader | Multitrack; OneTrack | CodedFrames; "Opus"; track 0; one Opus packet.
        let payload = [0x95, 0x01, b'O', b'p', b'u', b's', 0x00, 0xFC, 0xFF, 0xFE];
        assert_eq!(
            parse_audio(&payload, 20)?,
            AudioTag::Frame(AudioFrame { codec: AudioCodec::Opus, timestamp_ms: 20, data: &[0xFC, 0xFF, 0xFE] })
        );
        // ManyTracks | SequenceStart, shared "mp4a": track 1 at 44.1 kHz, track 0 at 48 kHz.
        let mut payload = vec![0x95, 0x10, b'm', b'p', b'4', b'a'];
        payload.extend(sized_track(None, 1, &[0x12, 0x10]));
        payload.extend(sized_track(None, 0, &[0x11, 0x90]));
        let AudioTag::SequenceStart { aac: Some(aac), .. } = parse_audio(&payload, 0)? else { panic!("expected an AAC sequence start") };
        assert_eq!(aac.sample_rate_hz, 48_000);
        // ManyTracksManyCodecs: "Opus" track 4 then ".mp3" track 7; no track 0, so the first.
        let mut tracks = TrackSelector::new();
        let mut payload = vec![0x95, 0x21];
        payload.extend(sized_track(Some(b"Opus"), 4, &[0x01]));
        payload.extend(sized_track(Some(b".mp3"), 7, &[0x02]));
        assert_eq!(
            parse_audio_track(&payload, 0, &mut tracks)?,
            AudioTag::Frame(AudioFrame { codec: AudioCodec::Opus, timestamp_ms: 0, data: &[0x01] })
        );
        assert_eq!(parse_audio_track(&[0xAF, 0x01, 0x21], 0, &mut tracks)?, AudioTag::OtherTrack { track_id: 0 });
        assert_eq!(parse_audio(&[0x95, 0x41, b'O', b'p', b'u', b's', 0], 0), Err(FlvError::InvalidMultitrack("reserved AvMultitrackType")));
        Ok(())
    }

    #[test]
    fn hevc_codec_string_from_the_record() -> Result<(), FlvError> {
        // Main profile (1), compatibility flags 0x60000000 (reversed: 6), level 93 (3.1).
        assert_eq!(hevc_codecs(HEVC_RECORD)?, "hvc1.1.6.L93.90");
        // Main 10 in the high tier with profile space 1 and no constraint flags.
        let mut record = HEVC_RECORD.to_vec();
        record[1] = 0x40 | 0x20 | 0x02;
        record[2..6].copy_from_slice(&0x2000_0000u32.to_be_bytes());
        record[6..12].fill(0);
        record[12] = 120;
        assert_eq!(hevc_codecs(&record)?, "hvc1.A2.4.H120");
        assert!(matches!(hevc_codecs(&HEVC_RECORD[..12]), Err(FlvError::TooShort { .. })));
        Ok(())
    }

    #[test]
    fn enhanced_header_cut_short_is_too_short() {
        assert_eq!(
            parse_video(&[0x91, b'h', b'v'], 0),
            Err(FlvError::TooShort { what: "Enhanced RTMP video FourCC", expected: 5, actual: 3 })
        );
        assert_eq!(
            parse_video(&[0x91, b'h', b'v', b'c', b'1', 0x00], 0),
            Err(FlvError::TooShort { what: "Enhanced RTMP composition time", expected: 8, actual: 6 })
        );
    }

    #[test]
    fn empty_video_and_aggregate_payloads_are_errors() {
        assert_eq!(parse_video(&[], 0), Err(FlvError::TooShort { what: "video tag header", expected: 1, actual: 0 }));
        assert_eq!(split_aggregate(&[], 0), Err(FlvError::TooShort { what: "aggregate message", expected: 11, actual: 0 }));
    }

    #[test]
    fn empty_audio_payload_is_the_silence_message() -> Result<(), FlvError> {
        assert_eq!(parse_audio(&[], 0)?, AudioTag::Silence);
        Ok(())
    }

    #[test]
    fn aac_sequence_header_44100_hz_stereo() -> Result<(), FlvError> {
        // AAC, 44 kHz, 16-bit, stereo | AACPacketType 0 | LC, index 4, 2 channels.
        let payload = [0xAF, 0x00, 0x12, 0x10];
        let expected = AacConfig { object_type: 2, sample_rate_hz: 44_100, channel_config: 2 };
        assert_eq!(
            parse_audio(&payload, 0)?,
            AudioTag::SequenceStart { codec: AudioCodec::Aac, config: &[0x12, 0x10], aac: Some(expected) }
        );
        assert_eq!(expected.codecs(), "mp4a.40.2");
        Ok(())
    }

    #[test]
    fn aac_config_48000_hz_stereo_and_mono() -> Result<(), FlvError> {
        assert_eq!(parse_aac_config(&[0x11, 0x90])?, AacConfig { object_type: 2, sample_rate_hz: 48_000, channel_config: 2 });
        assert_eq!(parse_aac_config(&[0x11, 0x88])?, AacConfig { object_type: 2, sample_rate_hz: 48_000, channel_config: 1 });
        Ok(())
    }

    #[test]
    fn aac_config_escaped_object_type_and_explicit_frequency() -> Result<(), FlvError> {
        // Object type 31 + 6 bits (10 -> 42), index 15, then 22_050 in 24 bits, then 1 channel.
        // Bits: 11111 001010 1111 000000000101011000100010 0001
        let config = [0xF9, 0x5E, 0x00, 0xAC, 0x44, 0x20];
        assert_eq!(parse_aac_config(&config)?, AacConfig { object_type: 42, sample_rate_hz: 22_050, channel_config: 1 });
        Ok(())
    }

    #[test]
    fn aac_config_reserved_index_null_object_and_truncation_are_errors() {
        // LC with sampling frequency index 13.
        assert_eq!(parse_aac_config(&[0x16, 0x90]), Err(FlvError::InvalidAacConfig("reserved sampling frequency index")));
        assert!(matches!(parse_aac_config(&[0x01, 0x90]), Err(FlvError::InvalidAacConfig(_))));
        assert_eq!(parse_aac_config(&[0x12]), Err(FlvError::TooShort { what: "AAC AudioSpecificConfig", expected: 2, actual: 1 }));
        // A sequence header without its AudioSpecificConfig.
        assert!(matches!(parse_audio(&[0xAF, 0x00], 0), Err(FlvError::TooShort { .. })));
    }

    #[test]
    fn aac_raw_frame() -> Result<(), FlvError> {
        let payload = [0xAF, 0x01, 0x21, 0x10, 0x04];
        assert_eq!(
            parse_audio(&payload, 4_321)?,
            AudioTag::Frame(AudioFrame { codec: AudioCodec::Aac, timestamp_ms: 4_321, data: &[0x21, 0x10, 0x04] })
        );
        assert_eq!(parse_audio(&[0xAF, 0x02, 0x00], 0), Err(FlvError::UnknownPacketType { what: "AAC", packet_type: 2 }));
        Ok(())
    }

    #[test]
    fn mp3_is_recognised_as_a_frame() -> Result<(), FlvError> {
        // MP3, 44 kHz, 16-bit, stereo, followed by an MPEG audio frame header.
        let payload = [0x2F, 0xFF, 0xFB, 0x90, 0x64];
        let AudioTag::Frame(frame) = parse_audio(&payload, 10)? else { panic!("expected a frame") };
        assert_eq!((frame.codec, frame.data), (AudioCodec::Mp3, &[0xFF, 0xFB, 0x90, 0x64][..]));
        assert_eq!(frame.codec.to_string(), "MP3");
        Ok(())
    }

    #[test]
    fn other_legacy_sound_formats_are_named() -> Result<(), FlvError> {
        let cases = [
            (0x0E, AudioCodec::LinearPcmPlatformEndian),
            (0x1E, AudioCodec::Adpcm),
            (0x3E, AudioCodec::LinearPcmLittleEndian),
            (0x42, AudioCodec::Nellymoser16kMono),
            (0x52, AudioCodec::Nellymoser8kMono),
            (0x62, AudioCodec::Nellymoser),
            (0x72, AudioCodec::G711ALaw),
            (0x82, AudioCodec::G711MuLaw),
            (0xB2, AudioCodec::Speex),
            (0xE2, AudioCodec::Mp3At8kHz),
            (0xF2, AudioCodec::DeviceSpecific),
        ];
        for (first, codec) in cases {
            let payload = [first, 0x01];
            assert_eq!(parse_audio(&payload, 0)?, AudioTag::Frame(AudioFrame { codec, timestamp_ms: 0, data: &[0x01] }));
        }
        assert_eq!(AudioCodec::Speex.to_string(), "Speex");
        assert_eq!(parse_audio(&[0xC2, 0x01], 0)?, AudioTag::Unsupported { codec: AudioCodec::UnknownFormat(12) });
        Ok(())
    }

    #[test]
    fn enhanced_audio_fourccs() -> Result<(), FlvError> {
        let opus_head = b"OpusHead\x01\x02\x38\x01\x80\xBB\x00\x00\x00\x00\x00";
        let mut payload = vec![0x90];
        payload.extend_from_slice(b"Opus");
        payload.extend_from_slice(opus_head);
        assert_eq!(parse_audio(&payload, 0)?, AudioTag::SequenceStart { codec: AudioCodec::Opus, config: opus_head, aac: None });

        let aac_start = [0x90, b'm', b'p', b'4', b'a', 0x11, 0x90];
        let AudioTag::SequenceStart { aac: Some(aac), .. } = parse_audio(&aac_start, 0)? else { panic!("expected an AAC sequence start") };
        assert_eq!(aac.sample_rate_hz, 48_000);

        for (fourcc, codec) in
            [(b".mp3", AudioCodec::Mp3), (b"fLaC", AudioCodec::Flac), (b"ac-3", AudioCodec::Ac3), (b"ec-3", AudioCodec::Eac3)]
        {
            let mut payload = vec![0x91];
            payload.extend_from_slice(fourcc);
            payload.push(0x42);
            assert_eq!(parse_audio(&payload, 9)?, AudioTag::Frame(AudioFrame { codec, timestamp_ms: 9, data: &[0x42] }));
        }

        assert_eq!(parse_audio(b"\x92Opus", 0)?, AudioTag::SequenceEnd { codec: AudioCodec::Opus });
        assert_eq!(parse_audio(b"\x94Opus\x01\x06", 0)?, AudioTag::MultichannelConfig { codec: AudioCodec::Opus, data: &[0x01, 0x06] });
        Ok(())
    }

    #[test]
    fn enhanced_audio_unknown_fourcc_and_unsupported_packet_types() -> Result<(), FlvError> {
        assert_eq!(parse_audio(b"\x91vorb\x00", 0)?, AudioTag::Unsupported { codec: AudioCodec::Other(*b"vorb") });
        assert_eq!(AudioCodec::Other(*b"vorb").to_string(), "unknown audio FourCC \"vorb\"");
        assert!(matches!(parse_audio(&[0x95, 0x00], 0), Err(FlvError::TooShort { what: "Enhanced RTMP multitrack FourCC", .. })));
        assert_eq!(parse_audio(&[0x97, 0x00], 0), Err(FlvError::NotSupportedYet("Enhanced RTMP audio ModEx")));
        assert_eq!(parse_audio(&[0x93], 0), Err(FlvError::UnknownPacketType { what: "Enhanced RTMP audio", packet_type: 3 }));
        assert_eq!(parse_audio(b"\x91Op", 0), Err(FlvError::TooShort { what: "Enhanced RTMP audio FourCC", expected: 5, actual: 3 }));
        Ok(())
    }

    #[test]
    fn aggregate_with_three_sub_tags_gets_relative_timestamps() -> Result<(), FlvError> {
        let video_key = [0x17, 0x01, 0x00, 0x00, 0x00, 0xAA];
        let audio = [0xAF, 0x01, 0xBB];
        let video_inter = [0x27, 0x01, 0x00, 0x00, 0x00, 0xCC];
        let mut payload = flv_tag(9, 5_000, &video_key);
        payload.extend(flv_tag(8, 5_023, &audio));
        payload.extend(flv_tag(9, 5_040, &video_inter));

        let messages = split_aggregate(&payload, 100)?;
        assert_eq!(
            messages,
            vec![
                SubMessage { message_type: MessageType::Video, timestamp_ms: 100, payload: &video_key },
                SubMessage { message_type: MessageType::Audio, timestamp_ms: 123, payload: &audio },
                SubMessage { message_type: MessageType::Video, timestamp_ms: 140, payload: &video_inter },
            ]
        );
        // The sub-message payloads are ordinary message payloads.
        assert!(matches!(parse_video(messages[2].payload, 140)?, VideoTag::Frame(VideoFrame { pts_ms: 140, .. })));
        Ok(())
    }

    #[test]
    fn aggregate_reads_the_extended_timestamp_byte_and_wraps() -> Result<(), FlvError> {
        // Sub-tag clock near the top of the 32-bit range (needs the extended byte), crossing the
        // wrap between the two sub-tags; the aggregate itself is at 1_000.
        let mut payload = flv_tag(8, 0xFFFF_FFF0, &[0xAF, 0x01]);
        payload.extend(flv_tag(8, 0x0000_0010, &[0xAF, 0x01]));
        payload.extend(flv_tag(18, 0x0000_0010, &[0x02]));
        let stamps: Vec<_> = split_aggregate(&payload, 1_000)?.iter().map(|m| (m.message_type, m.timestamp_ms)).collect();
        assert_eq!(stamps, vec![(MessageType::Audio, 1_000), (MessageType::Audio, 1_032), (MessageType::Amf0Data, 1_032)]);
        Ok(())
    }

    #[test]
    fn truncated_aggregate_is_an_error() {
        let mut payload = flv_tag(9, 0, &[0x17, 0x01, 0x00, 0x00, 0x00, 0xAA]);
        payload.extend(flv_tag(8, 10, &[0xAF, 0x01, 0xBB]));

        // Cut inside the second tag's data.
        let cut = &payload[..payload.len() - 6];
        assert_eq!(split_aggregate(cut, 0), Err(FlvError::TooShort { what: "aggregate sub-tag data", expected: 35, actual: 33 }));
        // Cut inside the second tag's header.
        assert!(matches!(split_aggregate(&payload[..25], 0), Err(FlvError::TooShort { what: "aggregate sub-tag header", .. })));
        // Missing the final previous-tag-size.
        assert!(matches!(
            split_aggregate(&payload[..payload.len() - 4], 0),
            Err(FlvError::TooShort { what: "aggregate sub-tag previous-tag-size", .. })
        ));
    }

    #[test]
    fn aggregate_with_a_lying_data_size_is_an_error() {
        let mut payload = flv_tag(8, 0, &[0xAF, 0x01, 0xBB, 0xCC]);
        payload.extend(flv_tag(8, 10, &[0xAF, 0x01, 0xBB]));

        // A size far beyond the message.
        let mut too_big = payload.clone();
        too_big[1..4].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
        assert!(matches!(split_aggregate(&too_big, 0), Err(FlvError::TooShort { what: "aggregate sub-tag data", .. })));

        // A size one short: caught by the previous-tag-size instead of misreading what follows.
        let mut too_small = payload;
        too_small[3] -= 1;
        assert!(matches!(split_aggregate(&too_small, 0), Err(FlvError::AggregateBackPointer { offset: 0, .. })));
    }

    #[test]
    fn every_truncation_is_an_error_or_a_shorter_frame_never_a_panic() {
        let record = avc_record();
        let mut avc_start = vec![0x17, 0x00, 0x00, 0x00, 0x00];
        avc_start.extend_from_slice(&record);
        let video = [avc_start, enhanced_video(0x91, b"hvc1", &[0, 0, 0x28, 1, 2, 3]), vec![0x27, 0x01, 0xFF, 0xFF, 0xDF, 9]];
        for payload in &video {
            for len in 0..payload.len() {
                let _ = parse_video(&payload[..len], 0);
            }
        }
        // A truncated AVC sequence header must never pass as a valid one.
        for len in 0..video[0].len() - 4 {
            assert!(parse_video(&video[0][..len], 0).is_err(), "accepted {len} bytes");
        }

        let mut aggregate = flv_tag(9, 0, &[0x17, 0x01, 0x00, 0x00, 0x00, 0xAA]);
        let boundary = aggregate.len();
        aggregate.extend(flv_tag(8, 10, &[0xAF, 0x01, 0xBB]));
        for len in 0..aggregate.len() {
            let result = split_aggregate(&aggregate[..len], 0);
            assert_eq!(result.is_ok(), len == boundary, "prefix of {len} bytes");
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        // A fixed xorshift sequence keeps the test reproducible.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..5_000 {
            let len = (next() % 48) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = parse_video(&bytes, 0);
            let _ = parse_audio(&bytes, 0);
            let _ = split_aggregate(&bytes, 0);
            let _ = parse_avc_config(&bytes);
            let _ = parse_aac_config(&bytes);
        }
    }

    #[test]
    fn timestamp_unwrapper_extends_across_the_wrap() {
        let mut clock = TimestampUnwrapper::new();
        assert_eq!(clock.extend(u32::MAX - 20), 4_294_967_275);
        assert_eq!(clock.extend(u32::MAX), 4_294_967_295);
        assert_eq!(clock.extend(12), 4_294_967_308);
        assert_eq!(clock.extend(1_000), 4_294_968_296);
    }

    #[test]
    fn timestamp_unwrapper_keeps_small_backwards_jitter_small() {
        let mut clock = TimestampUnwrapper::new();
        assert_eq!(clock.extend(5_000), 5_000);
        assert_eq!(clock.extend(4_990), 4_990);
        assert_eq!(clock.extend(5_023), 5_023);

        // Jitter back across the wrap must not be read as a 49-day jump forward...
        let mut clock = TimestampUnwrapper::new();
        assert_eq!(clock.extend(3), 3);
        assert_eq!(clock.extend(u32::MAX - 1), -2);
        assert_eq!(clock.extend(40), 40);

        // ...and after a real wrap, a step back before it stays just before it.
        let mut clock = TimestampUnwrapper::new();
        clock.extend(u32::MAX - 5);
        assert_eq!(clock.extend(4), 4_294_967_300);
        assert_eq!(clock.extend(u32::MAX - 2), 4_294_967_293);
    }
}
