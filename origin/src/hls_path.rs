//! Typed HLS request paths: `/hls/{video_id}/master.m3u8`, `/hls/{video_id}/thumbnail.jpg`,
//! `/hls/{video_id}/{rendition}/index.m3u8` (the live window, or the whole video once it ended),
//! `/hls/{video_id}/{rendition}/recording.m3u8` (everything since the start, also while live) and
//! segment files beside them.
//!
//! Anything else — `..`, other extensions, ids that are not ours, names with odd characters — parses
//! to `None`, which the server answers with 404. Parsing never touches the filesystem.

use ferrocast_core::ids::is_valid_id;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HlsPath {
    Master { video_id: String },
    Thumbnail { video_id: String },
    MediaPlaylist { video_id: String, rendition: String, kind: PlaylistKind },
    Segment { video_id: String, rendition: String, file: String, kind: SegmentKind },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaylistKind {
    /// `index.m3u8`: the sliding window while live, the full VOD playlist afterwards.
    Index,
    /// `recording.m3u8`: every segment since the start (EVENT while live).
    Recording,
}

impl PlaylistKind {
    pub fn file_name(self) -> &'static str {
        match self {
            PlaylistKind::Index => "index.m3u8",
            PlaylistKind::Recording => "recording.m3u8",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentKind {
    /// MPEG-TS (`.ts`), served as `video/mp2t`.
    MpegTs,
    /// fMP4/CMAF media or init segment (`.m4s`, `.mp4`), served as `video/mp4`.
    Fmp4,
}

impl SegmentKind {
    pub fn content_type(self) -> &'static str {
        match self {
            SegmentKind::MpegTs => "video/mp2t",
            SegmentKind::Fmp4 => "video/mp4",
        }
    }
}

impl HlsPath {
    pub fn video_id(&self) -> &str {
        match self {
            HlsPath::Master { video_id }
            | HlsPath::Thumbnail { video_id }
            | HlsPath::MediaPlaylist { video_id, .. }
            | HlsPath::Segment { video_id, .. } => video_id,
        }
    }
}

const MAX_NAME_LEN: usize = 64;

/// A rendition or file stem: 1–64 of `[a-z0-9_-]`, so it is always one harmless path component.
fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Parses the part of a request path after `/hls/`.
pub fn parse(path: &str) -> Option<HlsPath> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        [video_id, "master.m3u8"] if is_valid_id(video_id) => Some(HlsPath::Master { video_id: video_id.to_string() }),
        [video_id, "thumbnail.jpg"] if is_valid_id(video_id) => Some(HlsPath::Thumbnail { video_id: video_id.to_string() }),
        [video_id, rendition, playlist @ ("index.m3u8" | "recording.m3u8")] if is_valid_id(video_id) && is_safe_name(rendition) => {
            let kind = if *playlist == "index.m3u8" { PlaylistKind::Index } else { PlaylistKind::Recording };
            Some(HlsPath::MediaPlaylist { video_id: video_id.to_string(), rendition: rendition.to_string(), kind })
        }
        [video_id, rendition, file] if is_valid_id(video_id) && is_safe_name(rendition) => {
            let (stem, extension) = file.rsplit_once('.')?;
            let kind = match extension {
                "ts" => SegmentKind::MpegTs,
                "m4s" | "mp4" => SegmentKind::Fmp4,
                _ => return None,
            };
            is_safe_name(stem).then(|| HlsPath::Segment {
                video_id: video_id.to_string(),
                rendition: rendition.to_string(),
                file: file.to_string(),
                kind,
            })
        }
        _ => None,
    }
}

/// The segment number and part index of an LL-HLS part file name (`00000012-p3.m4s`).
pub fn part_of(file: &str) -> Option<(u64, u32)> {
    let (segment, part) = file.strip_suffix(".m4s")?.split_once("-p")?;
    Some((segment.parse().ok()?, part.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0190f0e0a0b07c0d8e0f0a0b0c0d0e0f";

    #[test]
    fn known_shapes_parse() {
        assert_eq!(parse(&format!("{ID}/master.m3u8")), Some(HlsPath::Master { video_id: ID.into() }));
        assert_eq!(
            parse(&format!("/{ID}/high/index.m3u8")),
            Some(HlsPath::MediaPlaylist { video_id: ID.into(), rendition: "high".into(), kind: PlaylistKind::Index })
        );
        assert_eq!(
            parse(&format!("{ID}/high/recording.m3u8")),
            Some(HlsPath::MediaPlaylist { video_id: ID.into(), rendition: "high".into(), kind: PlaylistKind::Recording })
        );
        assert_eq!(parse(&format!("{ID}/thumbnail.jpg")), Some(HlsPath::Thumbnail { video_id: ID.into() }));
        assert_eq!(
            parse(&format!("{ID}/low/00000042.ts")),
            Some(HlsPath::Segment { video_id: ID.into(), rendition: "low".into(), file: "00000042.ts".into(), kind: SegmentKind::MpegTs })
        );
    }

    #[test]
    fn part_names_give_their_segment_and_index() {
        assert_eq!(part_of("00000012-p3.m4s"), Some((12, 3)));
        assert_eq!(part_of("00000012.m4s"), None);
        assert_eq!(part_of("init-00000000.mp4"), None);
        assert_eq!(part_of("x-p1.m4s"), None);
        assert!(matches!(parse(&format!("{ID}/low/00000012-p3.m4s")), Some(HlsPath::Segment { kind: SegmentKind::Fmp4, .. })));
    }

    #[test]
    fn traversal_odd_extensions_and_foreign_ids_are_rejected() {
        for bad in [
            format!("{ID}/../master.m3u8"),
            format!("{ID}/low/../../etc/passwd"),
            format!("../{ID}/master.m3u8"),
            format!("{ID}/low/..ts"),
            format!("{ID}/low/segment.exe"),
            format!("{ID}/thumbnail.png"),
            format!("{ID}/low/thumbnail.jpg"),
            format!("{ID}/low/other.m3u8"),
            format!("{ID}/low/.ts"),
            format!("{ID}/Low/index.m3u8"),
            format!("{ID}/low/index.m3u8/extra"),
            format!("{ID}/low/a%2f.ts"),
            "not-an-id/master.m3u8".to_string(),
            String::new(),
        ] {
            assert_eq!(parse(&bad), None, "{bad}");
        }
    }
}
