//! ChannelData messages (RFC 8656 §12.4) and the framing of STUN and ChannelData messages in a
//! TCP or TLS byte stream (RFC 8656 §12.5), for the I/O layer that splits the stream.

use crate::stun::{padded, HEADER_LEN};

/// Channel numbers a client may bind.
/// RFC 8656 narrowed the range to 0x4000-0x4FFF, but clients written for RFC 5766 (coturn's
/// among them) still use 0x4000-0x7FFF, which ChannelData framing can carry; both are accepted.
pub const CHANNELS: std::ops::RangeInclusive<u16> = 0x4000..=0x7FFF;
/// Length of the ChannelData header (channel number and length).
pub const CHANNEL_HEADER_LEN: usize = 4;

/// What the start of a TCP/TLS stream buffer says about its next message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameLen {
    /// Fewer than 4 bytes: the length is not known yet.
    NeedHeader,
    /// The next message (STUN, or ChannelData with its padding) is this many bytes long; the
    /// buffer may hold fewer yet.
    Len(usize),
    /// Neither STUN nor ChannelData: the stream is garbage and should be closed.
    Invalid,
}

/// The length of the next STUN or ChannelData message at the start of a TCP/TLS stream buffer.
/// ChannelData is padded to a multiple of 4 over TCP, and the length includes that padding.
pub fn frame_len(buf: &[u8]) -> FrameLen {
    let Some(head) = buf.get(..4) else {
        return FrameLen::NeedHeader;
    };
    let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    match head[0] >> 6 {
        0b00 if len % 4 == 0 => FrameLen::Len(HEADER_LEN + len),
        0b01 => FrameLen::Len(CHANNEL_HEADER_LEN + padded(len)),
        _ => FrameLen::Invalid,
    }
}

/// Whether a message starting with this byte is ChannelData (first two bits 01).
pub(crate) fn is_channel_data(first: u8) -> bool {
    first >> 6 == 0b01
}

/// The channel number and payload of a ChannelData message. Bytes after the payload (padding)
/// are ignored; a payload longer than the input is rejected.
pub(crate) fn parse(data: &[u8]) -> Option<(u16, &[u8])> {
    let head = data.get(..CHANNEL_HEADER_LEN)?;
    let number = u16::from_be_bytes([head[0], head[1]]);
    let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    let payload = data.get(CHANNEL_HEADER_LEN..CHANNEL_HEADER_LEN + len)?;
    Some((number, payload))
}

/// Writes a ChannelData message into `out`, padded to 4 bytes if `pad` (TCP and TLS).
/// Returns its length, or `None` if it does not fit.
pub(crate) fn write(out: &mut [u8], number: u16, payload: &[u8], pad: bool) -> Option<usize> {
    let len = u16::try_from(payload.len()).ok()?;
    let body_end = CHANNEL_HEADER_LEN + payload.len();
    let end = if pad {
        CHANNEL_HEADER_LEN + padded(payload.len())
    } else {
        body_end
    };
    let frame = out.get_mut(..end)?;
    frame[..2].copy_from_slice(&number.to_be_bytes());
    frame[2..4].copy_from_slice(&len.to_be_bytes());
    frame[CHANNEL_HEADER_LEN..body_end].copy_from_slice(payload);
    frame[body_end..].fill(0);
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn channel_data_round_trips_with_and_without_padding() {
        let mut out = [0xAAu8; 16];
        assert_eq!(write(&mut out, 0x4001, b"hello", false), Some(9));
        assert_eq!(parse(&out[..9]), Some((0x4001, &b"hello"[..])));
        assert_eq!(write(&mut out, 0x4001, b"hello", true), Some(12));
        assert_eq!(&out[9..12], &[0, 0, 0]);
        assert_eq!(parse(&out[..12]), Some((0x4001, &b"hello"[..])));
        assert_eq!(frame_len(&out), FrameLen::Len(12));
    }

    #[test]
    fn short_inputs_are_rejected() {
        assert_eq!(parse(&[0x40, 0x00, 0x00]), None);
        assert_eq!(parse(&[0x40, 0x00, 0x00, 0x05, 1, 2]), None);
        assert_eq!(write(&mut [0u8; 6], 0x4000, b"abc", false), None);
    }

    #[test]
    fn frame_len_reads_stun_and_channel_headers() {
        assert_eq!(frame_len(&[0x00, 0x01]), FrameLen::NeedHeader);
        assert_eq!(frame_len(&[0x00, 0x01, 0x00, 0x08]), FrameLen::Len(28));
        assert_eq!(frame_len(&[0x00, 0x01, 0x00, 0x07]), FrameLen::Invalid);
        assert_eq!(frame_len(&[0x40, 0x00, 0x00, 0x05, 9]), FrameLen::Len(12));
        assert_eq!(frame_len(&[0x40, 0x00, 0x00, 0x00]), FrameLen::Len(4));
        assert_eq!(frame_len(&[0x80, 0, 0, 0]), FrameLen::Invalid);
        assert_eq!(frame_len(&[0x16, 0x03, 0x01, 0x02]), FrameLen::Invalid);
    }

    proptest! {
        #[test]
        fn frame_len_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            let _ = frame_len(&bytes);
            let _ = parse(&bytes);
        }
    }
}
