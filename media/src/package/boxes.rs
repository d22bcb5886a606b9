//! ISO-BMFF (ISO/IEC 14496-12) box writing: the size-and-type header every box starts with, the
//! version-and-flags header of a "full box", and the constants several boxes share. Callers write a
//! box's body into a closure and this module fills in the size afterwards, so no caller computes a
//! box size by hand. It only appends to a `Vec<u8>`: it must never do I/O, touch GStreamer or read
//! a clock, and it must never fail: a box too large for a 32-bit size gets the 64-bit `largesize`
//! form instead.

use bytes::BufMut;

/// The identity transformation matrix of `mvhd` and `tkhd` (16.16 and 2.30 fixed point).
pub(crate) const UNITY_MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// Writes one box: an 8-byte header (32-bit size, four-character type), then whatever `body`
/// appends. If the finished box is larger than a 32-bit size can say, the header becomes the
/// 16-byte form (size 1, type, 64-bit largesize), as section 4.2 of the specification allows.
pub(crate) fn write_box(out: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.put_u32(0);
    out.put_slice(kind);
    body(out);
    let size = out.len() - start;
    match u32::try_from(size) {
        Ok(size) => out[start..start + 4].copy_from_slice(&size.to_be_bytes()),
        Err(_) => {
            out[start..start + 4].copy_from_slice(&1u32.to_be_bytes());
            // usize always fits in u64 on the platforms Rust supports.
            let large = size as u64 + 8;
            out.splice(start + 8..start + 8, large.to_be_bytes());
        }
    }
}

/// Writes one full box: a box whose body starts with an 8-bit version and 24-bit flags.
pub(crate) fn write_full_box(out: &mut Vec<u8>, kind: &[u8; 4], version: u8, flags: u32, body: impl FnOnce(&mut Vec<u8>)) {
    write_box(out, kind, |out| {
        out.put_u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
        body(out);
    });
}

/// A tiny box reader for tests: walks what the writers produced so tests can assert the box tree
/// and read fields back. It panics on malformed input, which in a test is a failure to report.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod reader {
    /// One box found in a buffer.
    #[derive(Debug, Clone, Copy)]
    pub(crate) struct BoxRef<'a> {
        pub kind: [u8; 4],
        pub size: usize,
        /// Everything after the header.
        pub payload: &'a [u8],
        /// Offset of `payload` in the buffer given to [`parse`].
        pub payload_start: usize,
    }

    impl<'a> BoxRef<'a> {
        pub fn name(&self) -> &str {
            std::str::from_utf8(&self.kind).unwrap()
        }

        pub fn version(&self) -> u8 {
            self.payload[0]
        }

        pub fn flags(&self) -> u32 {
            u32::from_be_bytes([0, self.payload[1], self.payload[2], self.payload[3]])
        }

        /// The children of a container box, skipping the fixed fields some boxes have before
        /// their children (sample entries, `stsd`, `dref`).
        pub fn children(&self) -> Vec<BoxRef<'a>> {
            let skip = match &self.kind {
                b"moov" | b"trak" | b"mdia" | b"minf" | b"dinf" | b"stbl" | b"mvex" | b"moof" | b"traf" => 0,
                b"stsd" | b"dref" => 8,
                b"avc1" | b"hvc1" => 78,
                b"mp4a" => 28,
                _ => return Vec::new(),
            };
            parse_at(&self.payload[skip..], self.payload_start + skip)
        }

        /// The first direct child of this kind.
        pub fn child(&self, kind: &str) -> BoxRef<'a> {
            let children = self.children();
            *children.iter().find(|b| b.name() == kind).unwrap_or_else(|| panic!("no {kind} in {}", self.name()))
        }
    }

    /// The sibling boxes filling `data` exactly.
    pub(crate) fn parse(data: &[u8]) -> Vec<BoxRef<'_>> {
        parse_at(data, 0)
    }

    fn parse_at(data: &[u8], base: usize) -> Vec<BoxRef<'_>> {
        let mut boxes = Vec::new();
        let mut at = 0;
        while at < data.len() {
            assert!(data.len() - at >= 8, "truncated box header at {}", base + at);
            let size32 = u32::from_be_bytes(data[at..at + 4].try_into().unwrap());
            let (size, header) = match size32 {
                1 => (usize::try_from(u64::from_be_bytes(data[at + 8..at + 16].try_into().unwrap())).unwrap(), 16),
                0 => (data.len() - at, 8),
                n => (n as usize, 8),
            };
            assert!(size >= header && at + size <= data.len(), "box at {} claims {size} bytes", base + at);
            boxes.push(BoxRef {
                kind: data[at + 4..at + 8].try_into().unwrap(),
                size,
                payload: &data[at + header..at + size],
                payload_start: base + at + header,
            });
            at += size;
        }
        boxes
    }

    /// The box tree as text, e.g. `moof[mfhd traf[tfhd tfdt trun]] mdat`.
    pub(crate) fn tree(data: &[u8]) -> String {
        fn render(boxes: &[BoxRef<'_>]) -> String {
            let parts: Vec<String> = boxes
                .iter()
                .map(|b| {
                    let children = b.children();
                    if children.is_empty() {
                        b.name().to_owned()
                    } else {
                        format!("{}[{}]", b.name(), render(&children))
                    }
                })
                .collect();
            parts.join(" ")
        }
        render(&parse(data))
    }

    /// Big-endian field reader over a box payload.
    pub(crate) struct Fields<'a> {
        data: &'a [u8],
        at: usize,
    }

    impl<'a> Fields<'a> {
        pub fn new(data: &'a [u8]) -> Self {
            Fields { data, at: 0 }
        }

        pub fn skip(&mut self, n: usize) -> &mut Self {
            self.at += n;
            self
        }

        pub fn bytes(&mut self, n: usize) -> &'a [u8] {
            let out = &self.data[self.at..self.at + n];
            self.at += n;
            out
        }

        pub fn u16(&mut self) -> u16 {
            u16::from_be_bytes(self.bytes(2).try_into().unwrap())
        }

        pub fn u32(&mut self) -> u32 {
            u32::from_be_bytes(self.bytes(4).try_into().unwrap())
        }

        pub fn i32(&mut self) -> i32 {
            i32::from_be_bytes(self.bytes(4).try_into().unwrap())
        }

        pub fn u64(&mut self) -> u64 {
            u64::from_be_bytes(self.bytes(8).try_into().unwrap())
        }

        pub fn rest(&mut self) -> &'a [u8] {
            self.bytes(self.data.len() - self.at)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::reader::{parse, tree};
    use super::*;

    #[test]
    fn box_size_is_filled_in() {
        let mut out = Vec::new();
        write_box(&mut out, b"moov", |out| {
            write_full_box(out, b"mvhd", 1, 0x02_0001, |out| out.put_u16(7));
            write_box(out, b"free", |_| {});
        });
        assert_eq!(out.len(), 8 + 14 + 8);
        assert_eq!(&out[..8], b"\0\0\0\x1emoov");
        assert_eq!(&out[8..22], b"\0\0\0\x0emvhd\x01\x02\x00\x01\x00\x07");
        assert_eq!(&out[22..], b"\0\0\0\x08free");
        assert_eq!(tree(&out), "moov[mvhd free]");
        let moov = parse(&out)[0];
        assert_eq!(moov.child("mvhd").version(), 1);
        assert_eq!(moov.child("mvhd").flags(), 0x02_0001);
    }

    #[test]
    fn full_box_flags_keep_to_24_bits() {
        let mut out = Vec::new();
        write_full_box(&mut out, b"tfhd", 0, 0xff02_0000, |_| {});
        assert_eq!(out, b"\0\0\0\x0ctfhd\x00\x02\x00\x00");
    }
}
