//! Recognising the first packet of a video keyframe in an RTP payload, so a new subscriber
//! starts on a decodable frame, and reading a VP8 keyframe's picture size, so simulcast
//! layers are matched to display sizes. Reads untrusted bytes; never panics.

/// Video codecs whose keyframes the SFU can recognise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    Vp8,
    H264,
}

/// Whether `payload` (RTP payload, no header) begins a keyframe.
pub fn starts_keyframe(codec: VideoCodec, payload: &[u8]) -> bool {
    match codec {
        VideoCodec::Vp8 => vp8_starts_keyframe(payload),
        VideoCodec::H264 => h264_starts_keyframe(payload),
    }
}

/// RFC 7741 §4.2 payload descriptor, then the VP8 frame tag's inverse key-frame bit.
fn vp8_starts_keyframe(p: &[u8]) -> bool {
    vp8_frame_start(p).is_some_and(|offset| matches!(p.get(offset), Some(tag) if tag & 0x01 == 0))
}

/// The offset of the VP8 frame header in a packet that starts partition 0 of a frame.
fn vp8_frame_start(p: &[u8]) -> Option<usize> {
    let first = *p.first()?;
    let extended = first & 0x80 != 0;
    let start_of_partition = first & 0x10 != 0;
    let partition_id = first & 0x07;
    if !start_of_partition || partition_id != 0 {
        return None;
    }
    let mut offset = 1;
    if extended {
        let ext = *p.get(1)?;
        offset = 2;
        if ext & 0x80 != 0 {
            // PictureID: 7 or 15 bits, by its M bit.
            let pid = *p.get(offset)?;
            offset += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            offset += 1; // TL0PICIDX
        }
        if ext & 0x30 != 0 {
            offset += 1; // TID/Y/KEYIDX
        }
    }
    Some(offset)
}

/// Width and height of a VP8 keyframe starting in this packet (RFC 6386 §9.1: a 3-byte
/// frame tag, the start code `9d 01 2a`, then 14-bit width and height).
pub fn vp8_keyframe_size(p: &[u8]) -> Option<(u16, u16)> {
    let offset = vp8_frame_start(p)?;
    let header = p.get(offset..offset + 10)?;
    if header[0] & 0x01 != 0 || header[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u16::from_le_bytes([header[6], header[7]]) & 0x3fff;
    let height = u16::from_le_bytes([header[8], header[9]]) & 0x3fff;
    Some((width, height))
}

const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_STAP_A: u8 = 24;
const NAL_FU_A: u8 = 28;

/// RFC 6184: a single NAL unit, an aggregation packet (STAP-A) containing an SPS or IDR, or
/// the first fragment (FU-A) of one.
fn h264_starts_keyframe(p: &[u8]) -> bool {
    let Some(&header) = p.first() else {
        return false;
    };
    match header & 0x1f {
        NAL_IDR | NAL_SPS => true,
        NAL_STAP_A => {
            let mut rest = &p[1..];
            while rest.len() >= 3 {
                let size = u16::from_be_bytes([rest[0], rest[1]]) as usize;
                if matches!(rest[2] & 0x1f, NAL_IDR | NAL_SPS) {
                    return true;
                }
                let Some(next) = rest.get(2 + size..) else {
                    return false;
                };
                rest = next;
            }
            false
        }
        NAL_FU_A => match p.get(1) {
            Some(&fu) => fu & 0x80 != 0 && matches!(fu & 0x1f, NAL_IDR | NAL_SPS),
            None => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframe_with_and_without_extensions() {
        // S=1, PID=0, no extension; frame tag with P=0.
        assert!(starts_keyframe(VideoCodec::Vp8, &[0x10, 0x50, 0x01, 0x2a]));
        // Same, P=1 (interframe).
        assert!(!starts_keyframe(VideoCodec::Vp8, &[0x10, 0x51]));
        // Continuation packet (S=0).
        assert!(!starts_keyframe(VideoCodec::Vp8, &[0x00, 0x9c]));
        // X=1, I=1 with a 15-bit picture id, L=1, T=1, then P=0.
        assert!(starts_keyframe(
            VideoCodec::Vp8,
            &[0x90, 0xe0, 0x80 | 0x12, 0x34, 0x05, 0x20, 0x50]
        ));
        assert!(!starts_keyframe(VideoCodec::Vp8, &[0x90, 0xe0, 0x81]));
    }

    #[test]
    fn vp8_keyframe_size_follows_the_start_code() {
        // Descriptor, frame tag (key), start code, 1280 | scale bits, 720.
        let key = [
            0x10, 0x50, 0x01, 0x00, 0x9d, 0x01, 0x2a, 0x00, 0x45, 0xd0, 0x02,
        ];
        assert_eq!(vp8_keyframe_size(&key), Some((1280, 720)));
        let mut delta = key;
        delta[1] |= 1;
        assert_eq!(vp8_keyframe_size(&delta), None);
        for n in 0..key.len() {
            assert_eq!(vp8_keyframe_size(&key[..n]), None);
        }
    }

    #[test]
    fn h264_keyframes_in_all_packetizations() {
        assert!(starts_keyframe(VideoCodec::H264, &[0x65, 0x88]));
        assert!(starts_keyframe(VideoCodec::H264, &[0x67, 0x42]));
        assert!(!starts_keyframe(VideoCodec::H264, &[0x41, 0x9a]));
        // STAP-A: SPS (len 2) then PPS.
        assert!(starts_keyframe(
            VideoCodec::H264,
            &[0x78, 0, 2, 0x67, 0x42, 0, 1, 0x68]
        ));
        // FU-A start of IDR, and a middle fragment.
        assert!(starts_keyframe(VideoCodec::H264, &[0x7c, 0x85, 0]));
        assert!(!starts_keyframe(VideoCodec::H264, &[0x7c, 0x05, 0]));
    }

    #[test]
    fn never_panics_on_short_input() {
        for codec in [VideoCodec::Vp8, VideoCodec::H264] {
            assert!(!starts_keyframe(codec, &[]));
            for b in 0..=255u8 {
                let _ = starts_keyframe(codec, &[b]);
                let _ = starts_keyframe(codec, &[b, 0xff]);
                let _ = starts_keyframe(codec, &[b, 0x80, 0x80]);
            }
        }
    }
}
