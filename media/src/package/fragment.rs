//! One CMAF fragment: a `moof` describing runs of samples of one or more tracks, then one `mdat`
//! holding their bytes, track after track in the order given. Each traf has a tfhd with
//! default-base-is-moof (offsets count from the moof, so the fragment can be served alone), a
//! version 1 tfdt with the first sample's dts, and a version 1 trun with a data offset and, per
//! sample, its duration, size, flags and signed composition offset. It must never do I/O, touch
//! GStreamer or read a clock, and it checks every sample before writing a byte.

use bytes::{BufMut, Bytes};

use super::boxes::{write_box, write_full_box};
use super::{PackageError, Sample};

/// tfhd flag: base data offsets count from the start of the enclosing moof.
const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;

/// trun flags: data-offset, sample-duration, sample-size, sample-flags and
/// sample-composition-time-offset present.
const TRUN_FLAGS: u32 = 0x00_0001 | 0x00_0100 | 0x00_0200 | 0x00_0400 | 0x00_0800;

/// Sample flags of a sync sample: sample_depends_on = 2 (depends on no other sample).
pub const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
/// Sample flags of a non-sync sample: sample_depends_on = 1 and sample_is_non_sync_sample.
pub const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

/// The samples of one track in one fragment.
#[derive(Debug, Clone, Copy)]
pub struct TrackRun<'a> {
    /// As in the init segment: 1-based.
    pub track_id: u32,
    /// In decode order; dts never decreases. An empty run writes no traf.
    pub samples: &'a [Sample],
    /// The dts of the sample after the last one, which gives the last sample's duration. `None`
    /// when it is not known yet: the last sample then lasts as long as the one before it.
    pub next_dts: Option<i64>,
}

/// One sample's trun entry.
struct Entry {
    duration: u32,
    size: u32,
    flags: u32,
    composition_offset: i32,
}

/// One traf, checked and ready to write.
struct Traf<'a> {
    track_id: u32,
    base_media_decode_time: u64,
    entries: Vec<Entry>,
    samples: &'a [Sample],
    data_len: usize,
}

/// moof + mdat for the given runs. `sequence_number` goes into mfhd; give each fragment of a
/// rendition the next number.
pub fn fragment(sequence_number: u32, runs: &[TrackRun<'_>]) -> Result<Bytes, PackageError> {
    let mut trafs = Vec::with_capacity(runs.len());
    for (i, run) in runs.iter().enumerate() {
        if run.track_id == 0 {
            return Err(PackageError::UnknownTrack(0));
        }
        if runs[..i].iter().any(|other| other.track_id == run.track_id) {
            return Err(PackageError::DuplicateTrack(run.track_id));
        }
        if !run.samples.is_empty() {
            trafs.push(check_run(run)?);
        }
    }
    if trafs.is_empty() {
        return Err(PackageError::NoSamples);
    }

    let payload_len: usize = trafs.iter().map(|t| t.data_len).sum();
    let mdat_header = if u32::try_from(payload_len + 8).is_ok() { 8 } else { 16 };

    let mut out = Vec::with_capacity(64 + trafs.iter().map(|t| 64 + 16 * t.entries.len()).sum::<usize>() + mdat_header + payload_len);
    let mut data_offset_positions = Vec::with_capacity(trafs.len());
    write_box(&mut out, b"moof", |out| {
        write_full_box(out, b"mfhd", 0, 0, |out| out.put_u32(sequence_number));
        for traf in &trafs {
            write_box(out, b"traf", |out| {
                write_full_box(out, b"tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF, |out| out.put_u32(traf.track_id));
                write_full_box(out, b"tfdt", 1, 0, |out| out.put_u64(traf.base_media_decode_time));
                write_full_box(out, b"trun", 1, TRUN_FLAGS, |out| {
                    // check_run bounded the count.
                    out.put_u32(traf.entries.len() as u32);
                    data_offset_positions.push(out.len());
                    out.put_i32(0); // data_offset, patched below once the moof size is known
                    for entry in &traf.entries {
                        out.put_u32(entry.duration);
                        out.put_u32(entry.size);
                        out.put_u32(entry.flags);
                        out.put_i32(entry.composition_offset);
                    }
                });
            });
        }
    });

    // Offsets from the start of the moof (default-base-is-moof) to each traf's first sample.
    let mut data_start = out.len() + mdat_header;
    for (position, traf) in data_offset_positions.into_iter().zip(&trafs) {
        let offset = i32::try_from(data_start).map_err(|_| PackageError::TooLarge("a fragment's data offset"))?;
        out[position..position + 4].copy_from_slice(&offset.to_be_bytes());
        data_start += traf.data_len;
    }

    if mdat_header == 8 {
        // Fits: checked when choosing the header.
        out.put_u32((payload_len + 8) as u32);
        out.put_slice(b"mdat");
    } else {
        out.put_u32(1);
        out.put_slice(b"mdat");
        out.put_u64(payload_len as u64 + 16);
    }
    for traf in &trafs {
        for sample in traf.samples {
            out.put_slice(&sample.data);
        }
    }
    Ok(Bytes::from(out))
}

/// Checks one non-empty run and works out its trun entries.
fn check_run<'a>(run: &TrackRun<'a>) -> Result<Traf<'a>, PackageError> {
    let track_id = run.track_id;
    let samples = run.samples;
    u32::try_from(samples.len()).map_err(|_| PackageError::TooLarge("a run's sample count"))?;
    let mut entries = Vec::with_capacity(samples.len());
    let mut data_len = 0usize;
    for (i, sample) in samples.iter().enumerate() {
        if sample.dts < 0 {
            return Err(PackageError::NegativeDts { track_id, dts: sample.dts });
        }
        if sample.data.is_empty() {
            return Err(PackageError::EmptySample { track_id, dts: sample.dts });
        }
        let next_dts = match samples.get(i + 1) {
            Some(next) => Some(next.dts),
            None => run.next_dts,
        };
        let duration = match next_dts {
            Some(next_dts) => duration(track_id, sample.dts, next_dts)?,
            None => match entries.last() {
                Some(Entry { duration, .. }) => *duration,
                None => return Err(PackageError::UnknownLastDuration { track_id }),
            },
        };
        let composition_offset = sample
            .pts
            .checked_sub(sample.dts)
            .and_then(|offset| i32::try_from(offset).ok())
            .ok_or(PackageError::CompositionOffsetOverflow { track_id, dts: sample.dts, pts: sample.pts })?;
        let size = u32::try_from(sample.data.len()).map_err(|_| PackageError::TooLarge("a sample"))?;
        data_len = data_len.checked_add(sample.data.len()).ok_or(PackageError::TooLarge("a fragment"))?;
        entries.push(Entry {
            duration,
            size,
            flags: if sample.keyframe { SYNC_SAMPLE_FLAGS } else { NON_SYNC_SAMPLE_FLAGS },
            composition_offset,
        });
    }
    Ok(Traf {
        track_id,
        // Not negative: checked above.
        base_media_decode_time: samples[0].dts as u64,
        entries,
        samples,
        data_len,
    })
}

/// `next_dts - dts` as a trun duration: not negative (decode order) and within 32 bits.
pub(crate) fn duration(track_id: u32, dts: i64, next_dts: i64) -> Result<u32, PackageError> {
    if next_dts < dts {
        return Err(PackageError::DtsBackwards { track_id, previous: dts, dts: next_dts });
    }
    next_dts.checked_sub(dts).and_then(|d| u32::try_from(d).ok()).ok_or(PackageError::DurationOverflow { track_id, dts, next_dts })
}

#[cfg(test)]
mod tests {
    use super::super::boxes::reader::{parse, tree, BoxRef, Fields};
    use super::*;

    fn sample(dts: i64, pts: i64, keyframe: bool, data: &'static [u8]) -> Sample {
        Sample { dts, pts, keyframe, data: Bytes::from_static(data) }
    }

    /// A decoded trun: (data_offset, [(duration, size, flags, composition offset)]).
    fn trun(traf: &BoxRef<'_>) -> (i32, Vec<(u32, u32, u32, i32)>) {
        let trun = traf.child("trun");
        assert_eq!((trun.version(), trun.flags()), (1, 0xf01));
        let mut f = Fields::new(trun.payload);
        f.skip(4);
        let count = f.u32();
        let offset = f.i32();
        let entries = (0..count).map(|_| (f.u32(), f.u32(), f.u32(), f.i32())).collect();
        assert!(f.rest().is_empty());
        (offset, entries)
    }

    fn tfdt(traf: &BoxRef<'_>) -> u64 {
        let tfdt = traf.child("tfdt");
        assert_eq!(tfdt.version(), 1);
        Fields::new(tfdt.payload).skip(4).u64()
    }

    fn tfhd_track(traf: &BoxRef<'_>) -> u32 {
        let tfhd = traf.child("tfhd");
        assert_eq!(tfhd.flags(), 0x02_0000, "default-base-is-moof only");
        Fields::new(tfhd.payload).skip(4).u32()
    }

    /// A GOP with two B-frames in decode order I P B B P, 3000 ticks apart, pts shifted by 6000.
    fn b_frame_gop() -> Vec<Sample> {
        vec![
            sample(0, 6000, true, b"I-frame"),
            sample(3000, 15000, false, b"P1"),
            sample(6000, 9000, false, b"B1"),
            sample(9000, 12000, false, b"B2"),
            sample(12000, 21000, false, b"P2"),
        ]
    }

    #[test]
    fn box_tree_and_trun_of_a_muxed_fragment() {
        let video = b_frame_gop();
        let audio = [sample(1024, 1024, true, b"aac0"), sample(2048, 2048, true, b"aac1.")];
        let bytes = fragment(
            7,
            &[TrackRun { track_id: 1, samples: &video, next_dts: Some(15000) }, TrackRun { track_id: 2, samples: &audio, next_dts: None }],
        )
        .expect("valid runs");
        assert_eq!(tree(&bytes), "moof[mfhd traf[tfhd tfdt trun] traf[tfhd tfdt trun]] mdat");

        let boxes = parse(&bytes);
        let (moof, mdat) = (boxes[0], boxes[1]);
        assert_eq!(Fields::new(moof.child("mfhd").payload).skip(4).u32(), 7);
        let trafs = moof.children().into_iter().filter(|b| b.name() == "traf").collect::<Vec<_>>();

        assert_eq!(tfhd_track(&trafs[0]), 1);
        assert_eq!(tfdt(&trafs[0]), 0);
        let (offset, entries) = trun(&trafs[0]);
        assert_eq!(
            entries,
            [
                (3000, 7, SYNC_SAMPLE_FLAGS, 6000),
                (3000, 2, NON_SYNC_SAMPLE_FLAGS, 12000),
                (3000, 2, NON_SYNC_SAMPLE_FLAGS, 3000),
                (3000, 2, NON_SYNC_SAMPLE_FLAGS, 3000),
                (3000, 2, NON_SYNC_SAMPLE_FLAGS, 9000),
            ]
        );
        assert_eq!(offset as usize, moof.size + 8, "video data starts right after the mdat header");

        assert_eq!(tfhd_track(&trafs[1]), 2);
        assert_eq!(tfdt(&trafs[1]), 1024);
        let (audio_offset, entries) = trun(&trafs[1]);
        // The last duration repeats the one before it.
        assert_eq!(entries, [(1024, 4, SYNC_SAMPLE_FLAGS, 0), (1024, 5, SYNC_SAMPLE_FLAGS, 0)]);
        assert_eq!(audio_offset as usize, moof.size + 8 + 15);

        assert_eq!(mdat.payload, b"I-frameP1B1B2P2aac0aac1.");
        assert_eq!(&bytes[offset as usize..offset as usize + 7], b"I-frame");
        assert_eq!(&bytes[audio_offset as usize..audio_offset as usize + 4], b"aac0");
    }

    #[test]
    fn negative_composition_offsets_for_b_frames() {
        // The same GOP with pts starting at the first dts (an encoder without a decode delay):
        // B-frames come out before their dts.
        let video: Vec<Sample> = b_frame_gop().into_iter().map(|s| Sample { pts: s.pts - 6000, ..s }).collect();
        let bytes = fragment(1, &[TrackRun { track_id: 1, samples: &video, next_dts: Some(15000) }]).expect("valid run");
        let (_, entries) = trun(&parse(&bytes)[0].child("traf"));
        let offsets: Vec<i32> = entries.iter().map(|e| e.3).collect();
        assert_eq!(offsets, [0, 6000, -3000, -3000, 3000]);
    }

    #[test]
    fn last_duration_from_next_dts_or_previous_sample() {
        let video = [sample(90_000, 90_000, true, b"a"), sample(93_000, 93_000, false, b"b")];
        for (next_dts, last) in [(Some(96_003), 3003), (Some(93_000), 0), (None, 3000)] {
            let bytes = fragment(1, &[TrackRun { track_id: 1, samples: &video, next_dts }]).expect("valid run");
            let (_, entries) = trun(&parse(&bytes)[0].child("traf"));
            assert_eq!(entries[1].0, last, "{next_dts:?}");
            assert_eq!(tfdt(&parse(&bytes)[0].child("traf")), 90_000);
        }
        assert_eq!(
            fragment(1, &[TrackRun { track_id: 1, samples: &video[..1], next_dts: None }]),
            Err(PackageError::UnknownLastDuration { track_id: 1 })
        );
    }

    #[test]
    fn empty_runs_write_no_traf() {
        let audio = [sample(0, 0, true, b"x")];
        let bytes = fragment(
            3,
            &[TrackRun { track_id: 1, samples: &[], next_dts: None }, TrackRun { track_id: 2, samples: &audio, next_dts: Some(1024) }],
        )
        .expect("valid runs");
        assert_eq!(tree(&bytes), "moof[mfhd traf[tfhd tfdt trun]] mdat");
        assert_eq!(tfhd_track(&parse(&bytes)[0].child("traf")), 2);
        assert_eq!(fragment(1, &[TrackRun { track_id: 1, samples: &[], next_dts: None }]), Err(PackageError::NoSamples));
        assert_eq!(fragment(1, &[]), Err(PackageError::NoSamples));
    }

    #[test]
    fn bad_runs_are_refused() {
        let one = |dts, pts, data: &'static [u8]| vec![sample(dts, pts, true, data)];
        let run = |track_id, samples: &[Sample], next_dts| fragment(1, &[TrackRun { track_id, samples, next_dts }]);
        assert_eq!(run(0, &one(0, 0, b"x"), Some(1)), Err(PackageError::UnknownTrack(0)));
        assert_eq!(run(1, &one(-1, 0, b"x"), Some(1)), Err(PackageError::NegativeDts { track_id: 1, dts: -1 }));
        assert_eq!(run(1, &one(0, 0, b""), Some(1)), Err(PackageError::EmptySample { track_id: 1, dts: 0 }));
        assert_eq!(run(1, &one(5, 5, b"x"), Some(4)), Err(PackageError::DtsBackwards { track_id: 1, previous: 5, dts: 4 }));
        assert_eq!(run(1, &one(0, 0, b"x"), Some(1 << 32)), Err(PackageError::DurationOverflow { track_id: 1, dts: 0, next_dts: 1 << 32 }));
        assert_eq!(
            run(1, &one(0, 1 << 31, b"x"), Some(1)),
            Err(PackageError::CompositionOffsetOverflow { track_id: 1, dts: 0, pts: 1 << 31 })
        );
        let backwards = [sample(10, 10, true, b"x"), sample(9, 9, false, b"y")];
        assert_eq!(run(1, &backwards, Some(20)), Err(PackageError::DtsBackwards { track_id: 1, previous: 10, dts: 9 }));
        let x = one(0, 0, b"x");
        assert_eq!(
            fragment(
                1,
                &[TrackRun { track_id: 1, samples: &x, next_dts: Some(1) }, TrackRun { track_id: 1, samples: &x, next_dts: Some(1) }]
            ),
            Err(PackageError::DuplicateTrack(1))
        );
    }
}
