//! The CMAF initialization segment (ftyp + moov) of one rendition: what a player needs before the
//! first fragment, namely the tracks, their timescales and the codec configuration records. The
//! sample tables are empty, as in every fragmented file; samples live in the fragments, and `mvex`
//! says so. It must never do I/O, touch GStreamer or read a clock, and it checks each track before
//! writing a byte, so a returned init segment is complete.

use bytes::{BufMut, Bytes};

use super::boxes::{write_box, write_full_box, UNITY_MATRIX};
use super::{PackageError, TrackConfig, VideoCodec};

/// ftyp brands. The major brand is `iso6` (minor version 0), which covers everything we write:
/// trun version 1 with signed composition offsets, tfdt version 1. `isom` and `mp41` keep older
/// demuxers happy.
const BRANDS: [&[u8; 4]; 3] = [b"iso6", b"isom", b"mp41"];

/// The CMAF structural brand (one moof + one mdat per fragment, tfdt in every traf,
/// default-base-is-moof). CMAF also requires one track per file, so it is declared only for a
/// single-track init segment: our muxed audio + video renditions follow every other CMAF rule but
/// not that one, and claiming it would mislead strict validators. Players do not look.
const CMAF_BRAND: &[u8; 4] = b"cmfc";

/// The timescale of `mvhd`. Nothing uses the movie timescale in a fragmented file with zero
/// duration; milliseconds is the common choice.
const MOVIE_TIMESCALE: u32 = 1000;

/// ISO 639-2 "und" packed into 15 bits (three 5-bit letters, each minus 0x60), for `mdhd`.
const LANGUAGE_UNDETERMINED: u16 = 0x55c4;

/// The largest length an MPEG-4 descriptor (ISO/IEC 14496-1 `expandableClass`) can say in four
/// 7-bit groups.
const MAX_DESCRIPTOR_LEN: usize = (1 << 28) - 1;

/// ISO/IEC 14496-1 objectTypeIndication for MPEG-4 audio (AAC), and streamType 5 (audio) shifted
/// over the upStream bit, with the reserved bit set.
const OBJECT_TYPE_MPEG4_AUDIO: u8 = 0x40;
const STREAM_TYPE_AUDIO: u8 = (0x05 << 2) | 0x01;

/// The initialization segment for `tracks`; track ids are 1..=n in slice order.
pub fn init_segment(tracks: &[TrackConfig]) -> Result<Bytes, PackageError> {
    if tracks.is_empty() {
        return Err(PackageError::NoTracks);
    }
    let count = u32::try_from(tracks.len()).ok().filter(|n| *n < u32::MAX).ok_or(PackageError::TooLarge("the track count"))?;
    for (track_id, track) in (1..).zip(tracks) {
        check_track(track_id, track)?;
    }

    let mut out = Vec::with_capacity(768 + tracks.iter().map(config_len).sum::<usize>());
    write_box(&mut out, b"ftyp", |out| {
        out.put_slice(BRANDS[0]);
        out.put_u32(0);
        out.put_slice(BRANDS[0]);
        if tracks.len() == 1 {
            out.put_slice(CMAF_BRAND);
        }
        for brand in &BRANDS[1..] {
            out.put_slice(*brand);
        }
    });
    write_box(&mut out, b"moov", |out| {
        write_mvhd(out, count + 1);
        for (track_id, track) in (1..).zip(tracks) {
            write_trak(out, track_id, track);
        }
        write_box(out, b"mvex", |out| {
            for track_id in 1..=count {
                // trex: defaults are all zero; every trun carries its own durations, sizes and flags.
                write_full_box(out, b"trex", 0, 0, |out| {
                    out.put_u32(track_id);
                    out.put_u32(1); // default_sample_description_index
                    out.put_u32(0); // default_sample_duration
                    out.put_u32(0); // default_sample_size
                    out.put_u32(0); // default_sample_flags
                });
            }
        });
    });
    Ok(Bytes::from(out))
}

fn config_len(track: &TrackConfig) -> usize {
    match track {
        TrackConfig::Video { config_record, .. } => config_record.len(),
        TrackConfig::Audio { codec_config, .. } => codec_config.len(),
    }
}

fn check_track(track_id: u32, track: &TrackConfig) -> Result<(), PackageError> {
    let invalid = |reason| Err(PackageError::InvalidTrack { track_id, reason });
    match track {
        TrackConfig::Video { config_record, width, height, timescale, .. } => {
            // Both AVCDecoderConfigurationRecord and HEVCDecoderConfigurationRecord start with
            // configurationVersion 1; anything else is usually an FLV body passed with its header.
            match config_record.first() {
                None => return invalid("the decoder configuration record is empty"),
                Some(1) => {}
                Some(_) => return invalid("the decoder configuration record does not start with configurationVersion 1"),
            }
            if *width == 0 || *height == 0 {
                return invalid("width and height must not be zero");
            }
            if *timescale == 0 {
                return invalid("the timescale must not be zero");
            }
        }
        TrackConfig::Audio { codec_config, sample_rate, channels } => {
            if codec_config.len() < 2 {
                return invalid("an AudioSpecificConfig has at least two bytes");
            }
            // The descriptors around it add at most 3 * 5 + 13 + 3 bytes.
            if codec_config.len() > MAX_DESCRIPTOR_LEN - 64 {
                return invalid("the AudioSpecificConfig is too large for an esds descriptor");
            }
            if *sample_rate == 0 {
                return invalid("the sample rate must not be zero");
            }
            if *channels == 0 {
                return invalid("the channel count must not be zero");
            }
        }
    }
    Ok(())
}

fn write_mvhd(out: &mut Vec<u8>, next_track_id: u32) {
    write_full_box(out, b"mvhd", 0, 0, |out| {
        out.put_u32(0); // creation_time: unknown, and a clock read would make output non-deterministic
        out.put_u32(0); // modification_time
        out.put_u32(MOVIE_TIMESCALE);
        out.put_u32(0); // duration: unknown in a fragmented file
        out.put_u32(0x0001_0000); // rate 1.0
        out.put_u16(0x0100); // volume 1.0
        out.put_slice(&[0; 10]); // reserved
        for value in UNITY_MATRIX {
            out.put_u32(value);
        }
        out.put_slice(&[0; 24]); // pre_defined
        out.put_u32(next_track_id);
    });
}

fn write_trak(out: &mut Vec<u8>, track_id: u32, track: &TrackConfig) {
    write_box(out, b"trak", |out| {
        write_tkhd(out, track_id, track);
        write_box(out, b"mdia", |out| {
            write_full_box(out, b"mdhd", 0, 0, |out| {
                out.put_u32(0); // creation_time
                out.put_u32(0); // modification_time
                out.put_u32(track.timescale());
                out.put_u32(0); // duration
                out.put_u16(LANGUAGE_UNDETERMINED);
                out.put_u16(0); // pre_defined
            });
            let (handler, name): (&[u8; 4], &[u8]) =
                if track.is_video() { (b"vide", b"VideoHandler\0") } else { (b"soun", b"SoundHandler\0") };
            write_full_box(out, b"hdlr", 0, 0, |out| {
                out.put_u32(0); // pre_defined
                out.put_slice(handler);
                out.put_slice(&[0; 12]); // reserved
                out.put_slice(name);
            });
            write_box(out, b"minf", |out| {
                if track.is_video() {
                    // vmhd flags must be 1; graphicsmode copy, opcolor unused.
                    write_full_box(out, b"vmhd", 0, 1, |out| out.put_slice(&[0; 8]));
                } else {
                    // smhd: balance 0 (centre), reserved.
                    write_full_box(out, b"smhd", 0, 0, |out| out.put_u32(0));
                }
                write_box(out, b"dinf", |out| {
                    write_full_box(out, b"dref", 0, 0, |out| {
                        out.put_u32(1); // entry_count
                                        // Flag 1: the media data is in this same file.
                        write_full_box(out, b"url ", 0, 1, |_| {});
                    });
                });
                write_box(out, b"stbl", |out| {
                    write_full_box(out, b"stsd", 0, 0, |out| {
                        out.put_u32(1); // entry_count
                        write_sample_entry(out, track_id, track);
                    });
                    write_full_box(out, b"stts", 0, 0, |out| out.put_u32(0));
                    write_full_box(out, b"stsc", 0, 0, |out| out.put_u32(0));
                    write_full_box(out, b"stsz", 0, 0, |out| {
                        out.put_u32(0); // sample_size
                        out.put_u32(0); // sample_count
                    });
                    write_full_box(out, b"stco", 0, 0, |out| out.put_u32(0));
                });
            });
        });
    });
}

fn write_tkhd(out: &mut Vec<u8>, track_id: u32, track: &TrackConfig) {
    // Flags: track_enabled | track_in_movie.
    write_full_box(out, b"tkhd", 0, 0x00_0003, |out| {
        out.put_u32(0); // creation_time
        out.put_u32(0); // modification_time
        out.put_u32(track_id);
        out.put_u32(0); // reserved
        out.put_u32(0); // duration
        out.put_slice(&[0; 8]); // reserved
        out.put_u16(0); // layer
        out.put_u16(0); // alternate_group
        out.put_u16(if track.is_video() { 0 } else { 0x0100 }); // volume
        out.put_u16(0); // reserved
        for value in UNITY_MATRIX {
            out.put_u32(value);
        }
        let (width, height) = match track {
            TrackConfig::Video { width, height, .. } => (*width, *height),
            TrackConfig::Audio { .. } => (0, 0),
        };
        // 16.16 fixed point.
        out.put_u32(u32::from(width) << 16);
        out.put_u32(u32::from(height) << 16);
    });
}

fn write_sample_entry(out: &mut Vec<u8>, track_id: u32, track: &TrackConfig) {
    match track {
        TrackConfig::Video { codec, config_record, width, height, .. } => {
            // hvc1/avc1 (not hev1/avc3): parameter sets are in the configuration record, which is
            // what FLV carries and what Safari requires for HEVC.
            let (entry, config_box): (&[u8; 4], &[u8; 4]) = match codec {
                VideoCodec::Avc => (b"avc1", b"avcC"),
                VideoCodec::Hevc => (b"hvc1", b"hvcC"),
            };
            write_box(out, entry, |out| {
                out.put_slice(&[0; 6]); // reserved
                out.put_u16(1); // data_reference_index
                out.put_u16(0); // pre_defined
                out.put_u16(0); // reserved
                out.put_slice(&[0; 12]); // pre_defined
                out.put_u16(*width);
                out.put_u16(*height);
                out.put_u32(0x0048_0000); // horizresolution 72 dpi
                out.put_u32(0x0048_0000); // vertresolution 72 dpi
                out.put_u32(0); // reserved
                out.put_u16(1); // frame_count
                out.put_slice(&[0; 32]); // compressorname: empty Pascal string
                out.put_u16(0x0018); // depth: colour, no alpha
                out.put_i16(-1); // pre_defined
                write_box(out, config_box, |out| out.put_slice(config_record));
            });
        }
        TrackConfig::Audio { codec_config, sample_rate, channels } => {
            write_box(out, b"mp4a", |out| {
                out.put_slice(&[0; 6]); // reserved
                out.put_u16(1); // data_reference_index
                out.put_slice(&[0; 8]); // reserved
                out.put_u16(*channels);
                out.put_u16(16); // samplesize
                out.put_u16(0); // pre_defined
                out.put_u16(0); // reserved
                                // 16.16 fixed point; rates above 65535 Hz cannot be said here and are written as 0,
                                // the AudioSpecificConfig carries the real rate.
                out.put_u32(u16::try_from(*sample_rate).map_or(0, |rate| u32::from(rate) << 16));
                write_esds(out, track_id, codec_config);
            });
        }
    }
}

/// The `esds` box: an ISO/IEC 14496-1 ES_Descriptor holding a DecoderConfigDescriptor (with the
/// AudioSpecificConfig as its DecoderSpecificInfo) and an SLConfigDescriptor.
fn write_esds(out: &mut Vec<u8>, track_id: u32, codec_config: &[u8]) {
    let mut decoder_config = Vec::with_capacity(13 + 5 + codec_config.len());
    decoder_config.put_u8(OBJECT_TYPE_MPEG4_AUDIO);
    decoder_config.put_u8(STREAM_TYPE_AUDIO);
    decoder_config.put_slice(&[0; 3]); // bufferSizeDB: unknown
    decoder_config.put_u32(0); // maxBitrate: unknown
    decoder_config.put_u32(0); // avgBitrate: unknown (variable)
    write_descriptor(&mut decoder_config, 0x05, codec_config); // DecSpecificInfo

    let mut es = Vec::with_capacity(3 + 5 + decoder_config.len() + 3);
    // ES_ID: the track's, truncated as ffmpeg does; players ignore it in MP4.
    es.put_u16(track_id as u16);
    es.put_u8(0); // no streamDependence, URL or OCR stream
    write_descriptor(&mut es, 0x04, &decoder_config); // DecoderConfigDescriptor
    write_descriptor(&mut es, 0x06, &[0x02]); // SLConfigDescriptor, predefined 2 (MP4)

    write_full_box(out, b"esds", 0, 0, |out| write_descriptor(out, 0x03, &es)); // ES_Descriptor
}

/// A descriptor: tag, then the length in 7-bit groups (high bit set on all but the last), then
/// the body. The length was bounded by `check_track` through `MAX_DESCRIPTOR_LEN`.
fn write_descriptor(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.put_u8(tag);
    let len = body.len().min(MAX_DESCRIPTOR_LEN);
    let groups = match len {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        0x4000..=0x1f_ffff => 3,
        _ => 4,
    };
    for i in (0..groups).rev() {
        let byte = ((len >> (7 * i)) & 0x7f) as u8;
        out.put_u8(if i == 0 { byte } else { byte | 0x80 });
    }
    out.put_slice(body);
}

#[cfg(test)]
mod tests {
    use super::super::boxes::reader::{parse, tree, Fields};
    use super::*;

    const AVCC: &[u8] = &[0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x04, 0x67, 0x64, 0x00, 0x1f, 0x01, 0x00, 0x02, 0x68, 0xee];
    const ASC: &[u8] = &[0x12, 0x10]; // AAC-LC, 44100 Hz, 2 channels

    fn video(codec: VideoCodec) -> TrackConfig {
        TrackConfig::Video { codec, config_record: Bytes::from_static(AVCC), width: 1280, height: 720, timescale: 90_000 }
    }

    fn audio() -> TrackConfig {
        TrackConfig::Audio { codec_config: Bytes::from_static(ASC), sample_rate: 44_100, channels: 2 }
    }

    const TRAK_TREE: &str = "mdia[mdhd hdlr minf[{mhd} dinf[dref[url ]] stbl[stsd[{entry}] stts stsc stsz stco]]]";

    fn trak_tree(mhd: &str, entry: &str) -> String {
        format!("trak[tkhd {}]", TRAK_TREE.replace("{mhd}", mhd).replace("{entry}", entry))
    }

    #[test]
    fn box_tree_of_a_muxed_rendition() {
        let init = init_segment(&[video(VideoCodec::Avc), audio()]).expect("valid tracks");
        let expected = format!("ftyp moov[mvhd {} {} mvex[trex trex]]", trak_tree("vmhd", "avc1[avcC]"), trak_tree("smhd", "mp4a[esds]"));
        assert_eq!(tree(&init), expected);
        let boxes = parse(&init);
        assert_eq!(boxes.iter().map(|b| b.size).sum::<usize>(), init.len());
    }

    #[test]
    fn ftyp_brands() {
        let init = init_segment(&[audio()]).expect("valid track");
        assert_eq!(parse(&init)[0].payload, b"iso6\0\0\0\0iso6cmfcisommp41");
        // Muxed audio and video is not a CMAF track.
        let init = init_segment(&[video(VideoCodec::Avc), audio()]).expect("valid tracks");
        assert_eq!(parse(&init)[0].payload, b"iso6\0\0\0\0iso6isommp41");
    }

    #[test]
    fn hevc_uses_hvc1_and_hvcc() {
        let init = init_segment(&[video(VideoCodec::Hevc)]).expect("valid track");
        assert_eq!(tree(&init), format!("ftyp moov[mvhd {} mvex[trex]]", trak_tree("vmhd", "hvc1[hvcC]")));
    }

    #[test]
    fn track_ids_timescales_and_dimensions() {
        let init = init_segment(&[video(VideoCodec::Avc), audio()]).expect("valid tracks");
        let moov = parse(&init)[1];
        let mvhd = moov.child("mvhd");
        assert_eq!(mvhd.size, 108);
        assert_eq!(Fields::new(mvhd.payload).skip(4 + 92).u32(), 3, "next_track_ID");

        let traks: Vec<_> = moov.children().into_iter().filter(|b| b.name() == "trak").collect();
        assert_eq!(traks.len(), 2);
        for (trak, (id, timescale, handler, width, height, volume)) in
            traks.iter().zip([(1, 90_000, b"vide", 1280, 720, 0), (2, 44_100, b"soun", 0, 0, 0x0100)])
        {
            let tkhd = trak.child("tkhd");
            assert_eq!(tkhd.size, 92);
            assert_eq!(tkhd.flags(), 3);
            let mut f = Fields::new(tkhd.payload);
            f.skip(4 + 8);
            assert_eq!(f.u32(), id);
            f.skip(4 + 4 + 8 + 4);
            assert_eq!(f.u16(), volume);
            f.skip(2 + 36);
            assert_eq!(f.u32(), width << 16);
            assert_eq!(f.u32(), height << 16);

            let mdia = trak.child("mdia");
            let mdhd = mdia.child("mdhd");
            assert_eq!(Fields::new(mdhd.payload).skip(12).u32(), timescale);
            assert_eq!(Fields::new(mdhd.payload).skip(20).u16(), 0x55c4, "und");
            assert_eq!(&mdia.child("hdlr").payload[8..12], handler);

            let stbl = mdia.child("minf").child("stbl");
            for (name, size) in [("stts", 16), ("stsc", 16), ("stsz", 20), ("stco", 16)] {
                let table = stbl.child(name);
                assert_eq!(table.size, size, "{name}");
                assert!(table.payload[4..].iter().all(|b| *b == 0), "{name} is empty");
            }
        }

        let trex: Vec<u32> = moov.child("mvex").children().iter().map(|t| Fields::new(t.payload).skip(4).u32()).collect();
        assert_eq!(trex, [1, 2]);
    }

    #[test]
    fn avc1_sample_entry_carries_the_record_untouched() {
        let init = init_segment(&[video(VideoCodec::Avc)]).expect("valid track");
        let moov = parse(&init)[1];
        let stsd = moov.child("trak").child("mdia").child("minf").child("stbl").child("stsd");
        let avc1 = stsd.child("avc1");
        let mut f = Fields::new(avc1.payload);
        f.skip(6);
        assert_eq!(f.u16(), 1, "data_reference_index");
        f.skip(16);
        assert_eq!((f.u16(), f.u16()), (1280, 720));
        f.skip(8 + 4);
        assert_eq!(f.u16(), 1, "frame_count");
        f.skip(32);
        assert_eq!(f.u16(), 0x18);
        assert_eq!(f.u16(), 0xffff);
        assert_eq!(avc1.child("avcC").payload, AVCC);
    }

    /// Reads one descriptor: (tag, body, rest).
    fn descriptor(data: &[u8]) -> (u8, &[u8], &[u8]) {
        let tag = data[0];
        let mut len = 0usize;
        let mut at = 1;
        loop {
            let byte = data[at];
            at += 1;
            len = (len << 7) | usize::from(byte & 0x7f);
            if byte & 0x80 == 0 {
                break;
            }
        }
        (tag, &data[at..at + len], &data[at + len..])
    }

    #[test]
    fn mp4a_and_esds_descriptors() {
        let init = init_segment(&[video(VideoCodec::Avc), audio()]).expect("valid tracks");
        let moov = parse(&init)[1];
        let trak = moov.children().into_iter().filter(|b| b.name() == "trak").nth(1).expect("audio trak");
        let mp4a = trak.child("mdia").child("minf").child("stbl").child("stsd").child("mp4a");
        let mut f = Fields::new(mp4a.payload);
        f.skip(6);
        assert_eq!(f.u16(), 1, "data_reference_index");
        f.skip(8);
        assert_eq!(f.u16(), 2, "channelcount");
        assert_eq!(f.u16(), 16, "samplesize");
        f.skip(4);
        assert_eq!(f.u32(), 44_100 << 16);

        let esds = mp4a.child("esds");
        assert_eq!((esds.version(), esds.flags()), (0, 0));
        let (tag, es, rest) = descriptor(&esds.payload[4..]);
        assert_eq!((tag, rest.len()), (0x03, 0));
        assert_eq!(&es[..3], &[0x00, 0x02, 0x00], "ES_ID 2, no flags");
        let (tag, decoder_config, rest) = descriptor(&es[3..]);
        assert_eq!(tag, 0x04);
        assert_eq!(decoder_config[0], 0x40, "MPEG-4 audio");
        assert_eq!(decoder_config[1], 0x15, "audio stream");
        let (tag, specific, after) = descriptor(&decoder_config[13..]);
        assert_eq!((tag, specific, after.len()), (0x05, ASC, 0));
        let (tag, sl, after) = descriptor(rest);
        assert_eq!((tag, sl, after.len()), (0x06, &[0x02][..], 0));
    }

    #[test]
    fn long_descriptor_lengths_use_more_groups() {
        for (len, header) in [(0x7f, vec![0x05, 0x7f]), (0x80, vec![0x05, 0x81, 0x00]), (0x4000, vec![0x05, 0x81, 0x80, 0x00])] {
            let mut out = Vec::new();
            write_descriptor(&mut out, 0x05, &vec![0xaa; len]);
            assert_eq!(&out[..header.len()], &header[..], "{len}");
            let (_, body, rest) = descriptor(&out);
            assert_eq!((body.len(), rest.len()), (len, 0));
        }
    }

    #[test]
    fn high_sample_rates_leave_the_entry_rate_zero() {
        let init =
            init_segment(&[TrackConfig::Audio { codec_config: Bytes::from_static(&[0x13, 0x08]), sample_rate: 96_000, channels: 1 }])
                .expect("valid track");
        let moov = parse(&init)[1];
        let mp4a = moov.child("trak").child("mdia").child("minf").child("stbl").child("stsd").child("mp4a");
        assert_eq!(Fields::new(mp4a.payload).skip(24).u32(), 0);
        assert_eq!(Fields::new(moov.child("trak").child("mdia").child("mdhd").payload).skip(12).u32(), 96_000);
    }

    #[test]
    fn bad_tracks_are_refused() {
        assert_eq!(init_segment(&[]), Err(PackageError::NoTracks));
        let cases = [
            TrackConfig::Video { codec: VideoCodec::Avc, config_record: Bytes::new(), width: 2, height: 2, timescale: 90_000 },
            // An FLV video body (frame type, packet type, composition time) instead of the record.
            TrackConfig::Video {
                codec: VideoCodec::Avc,
                config_record: Bytes::from_static(&[0x17, 0, 0, 0, 1]),
                width: 2,
                height: 2,
                timescale: 90_000,
            },
            TrackConfig::Video { codec: VideoCodec::Avc, config_record: Bytes::from_static(AVCC), width: 0, height: 2, timescale: 90_000 },
            TrackConfig::Video { codec: VideoCodec::Hevc, config_record: Bytes::from_static(AVCC), width: 2, height: 2, timescale: 0 },
            TrackConfig::Audio { codec_config: Bytes::from_static(&[0x12]), sample_rate: 44_100, channels: 2 },
            TrackConfig::Audio { codec_config: Bytes::from_static(ASC), sample_rate: 0, channels: 2 },
            TrackConfig::Audio { codec_config: Bytes::from_static(ASC), sample_rate: 44_100, channels: 0 },
        ];
        for track in cases {
            let result = init_segment(&[audio(), track.clone()]);
            assert!(matches!(result, Err(PackageError::InvalidTrack { track_id: 2, .. })), "{track:?}: {result:?}");
        }
    }
}
