//! The server side of the RTMP handshake (RTMP 1.0 section 5.2): C0+C1 in, S0+S1+S2 out, C2 in.
//!
//! We answer with the plain handshake: S1 carries our (zero) time and filler bytes, S2 echoes C1.
//! Publishers — OBS (librtmp), ffmpeg, GStreamer's rtmp2sink, hardware encoders — accept it; the
//! digest ("Flash 9") variant only matters to players that verify a server's S1, and we serve no
//! RTMP playback. C2 is read and not checked, as the spec leaves its use to the implementation.
//! Nothing here allocates more than one C1 and one C2, so a half handshake costs 3 KiB at most.

/// Size of C1, C2, S1 and S2.
pub const PACKET_SIZE: usize = 1536;
/// RTMP protocol version in C0/S0. 6 would be RTMPE (encrypted), which we do not offer.
const VERSION: u8 = 3;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("client asked for RTMP version {0}, only 3 is served (is this RTMP at all?)")]
    Version(u8),
}

#[derive(Debug)]
enum Stage {
    /// Waiting for C0 and C1 (1 + 1536 bytes).
    C0C1,
    /// S0+S1+S2 sent, waiting for C2.
    C2,
    Done,
}

#[derive(Debug)]
pub struct Handshake {
    stage: Stage,
    received: Vec<u8>,
}

/// What one call to [`Handshake::feed`] produced.
#[derive(Debug, Default)]
pub struct HandshakeProgress {
    /// Bytes to send to the client.
    pub send: Vec<u8>,
    /// Set once C2 has arrived: the bytes after it belong to the chunk stream.
    pub done: Option<Vec<u8>>,
}

impl Default for Handshake {
    fn default() -> Self {
        Self { stage: Stage::C0C1, received: Vec::with_capacity(1 + PACKET_SIZE) }
    }
}

impl Handshake {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<HandshakeProgress, HandshakeError> {
        let mut progress = HandshakeProgress::default();
        loop {
            let needed = match self.stage {
                Stage::C0C1 => 1 + PACKET_SIZE,
                Stage::C2 => PACKET_SIZE,
                Stage::Done => {
                    progress.done = Some(bytes.to_vec());
                    return Ok(progress);
                }
            };
            if self.received.is_empty() && matches!(self.stage, Stage::C0C1) {
                // Refuse a wrong version at the first byte, not after 1.5 KiB of garbage.
                if let Some(&version) = bytes.first() {
                    if version != VERSION {
                        return Err(HandshakeError::Version(version));
                    }
                }
            }
            let take = (needed - self.received.len()).min(bytes.len());
            self.received.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.received.len() < needed {
                return Ok(progress);
            }
            match self.stage {
                Stage::C0C1 => {
                    let c1 = &self.received[1..];
                    progress.send.push(VERSION);
                    progress.send.extend_from_slice(&s1(c1));
                    progress.send.extend_from_slice(c1);
                    self.stage = Stage::C2;
                }
                Stage::C2 | Stage::Done => self.stage = Stage::Done,
            }
            self.received.clear();
        }
    }
}

/// S1: time 0, four zero bytes, then 1528 filler bytes. They need not be secret (nothing is signed
/// with them); a simple generator seeded from C1 keeps this free of clocks and randomness.
fn s1(c1: &[u8]) -> [u8; PACKET_SIZE] {
    let mut s1 = [0u8; PACKET_SIZE];
    let mut state = c1.iter().fold(0x9e37_79b9_7f4a_7c15u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)) | 1;
    for byte in &mut s1[8..] {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = state as u8;
    }
    s1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_c1_and_hands_over_what_follows_c2() {
        let mut handshake = Handshake::new();
        let mut c0c1 = vec![3u8];
        c0c1.extend((0..PACKET_SIZE).map(|i| (i * 7) as u8));
        // Split reads: the answer comes once C1 is complete.
        let first = handshake.feed(&c0c1[..100]).expect("part");
        assert!(first.send.is_empty() && first.done.is_none());
        let answer = handshake.feed(&c0c1[100..]).expect("c1");
        assert_eq!(answer.send.len(), 1 + 2 * PACKET_SIZE);
        assert_eq!(answer.send[0], 3);
        assert_eq!(&answer.send[1..5], &[0, 0, 0, 0], "S1 time");
        assert_eq!(&answer.send[1 + PACKET_SIZE..], &c0c1[1..], "S2 echoes C1");
        // C2 plus the first chunk bytes in one read.
        let mut c2 = vec![0u8; PACKET_SIZE];
        c2.extend([0x03, 0xaa]);
        let done = handshake.feed(&c2).expect("c2");
        assert_eq!(done.done.as_deref(), Some(&[0x03, 0xaa][..]));
    }

    #[test]
    fn everything_in_one_read() {
        let mut bytes = vec![3u8];
        bytes.extend(vec![1u8; 2 * PACKET_SIZE]);
        bytes.push(0x42);
        let progress = Handshake::new().feed(&bytes).expect("all");
        assert_eq!(progress.send.len(), 1 + 2 * PACKET_SIZE);
        assert_eq!(progress.done.as_deref(), Some(&[0x42][..]));
    }

    #[test]
    fn wrong_version_is_refused_at_the_first_byte() {
        assert_eq!(Handshake::new().feed(b"GET / HTTP/1.1\r\n").map(|_| ()), Err(HandshakeError::Version(b'G')));
        assert_eq!(Handshake::new().feed(&[6]).map(|_| ()), Err(HandshakeError::Version(6)));
    }
}
