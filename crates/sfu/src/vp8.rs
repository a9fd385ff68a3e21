//! Continuity of the VP8 payload descriptor (RFC 7741 §4.2) across source switches.
//!
//! Receivers order and relate VP8 frames by PictureID and TL0PICIDX. Each simulcast layer
//! (and each publisher) numbers its own frames, so after a switch the new source's numbers
//! can be behind the old ones: a browser takes such frames for stale ones and drops them,
//! keyframes included, and the picture freezes. A subscriber's down-track therefore maps the
//! numbers of each run of one source onto a continuation of what it already sent.

/// The byte offsets of the rewritable fields of one VP8 payload descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fields {
    /// Offset and width of the PictureID: 7 or 15 bits.
    picture_id: Option<(usize, bool)>,
    tl0picidx: Option<usize>,
}

fn fields(payload: &[u8]) -> Option<Fields> {
    let first = *payload.first()?;
    if first & 0x80 == 0 {
        return Some(Fields {
            picture_id: None,
            tl0picidx: None,
        });
    }
    let ext = *payload.get(1)?;
    let mut at = 2;
    let picture_id = if ext & 0x80 != 0 {
        let long = payload.get(at)? & 0x80 != 0;
        let field = (at, long);
        at += if long { 2 } else { 1 };
        Some(field)
    } else {
        None
    };
    let tl0picidx = if ext & 0x40 != 0 {
        at += 1;
        Some(at - 1)
    } else {
        None
    };
    // TID/Y/KEYIDX byte.
    if ext & 0x30 != 0 {
        at += 1;
    }
    // The descriptor must be followed by VP8 data.
    if at >= payload.len() {
        return None;
    }
    Some(Fields {
        picture_id,
        tl0picidx,
    })
}

fn read_picture_id(payload: &[u8], (at, long): (usize, bool)) -> u16 {
    if long {
        (u16::from(payload[at] & 0x7f) << 8) | u16::from(payload[at + 1])
    } else {
        u16::from(payload[at] & 0x7f)
    }
}

fn write_picture_id(payload: &mut [u8], (at, long): (usize, bool), id: u16) {
    if long {
        payload[at] = 0x80 | ((id >> 8) as u8 & 0x7f);
        payload[at + 1] = id as u8;
    } else {
        payload[at] = id as u8 & 0x7f;
    }
}

/// Per down-track mapping of PictureID (mod 2^15, or 2^7 for short ones) and TL0PICIDX.
#[derive(Debug, Clone, Default)]
pub struct Vp8Rewriter {
    picture_offset: u16,
    tl0_offset: u8,
    last_picture: Option<u16>,
    last_tl0: Option<u8>,
    /// The next packet starts a new run: its numbers continue the last ones written.
    restarting: bool,
}

impl Vp8Rewriter {
    /// The source changes: the next packet's numbers continue from the last written.
    pub fn restart(&mut self) {
        self.restarting = true;
    }

    /// The payload with its descriptor rewritten, or `None` when it is unchanged (nothing to
    /// map, or a zero offset) or too short to carry a descriptor.
    pub fn rewrite(&mut self, payload: &[u8]) -> Option<Vec<u8>> {
        let f = fields(payload)?;
        let restarting = std::mem::take(&mut self.restarting);
        let mut out: Option<Vec<u8>> = None;
        if let Some(pid_field) = f.picture_id {
            let modulus: u16 = if pid_field.1 { 0x8000 } else { 0x80 };
            let input = read_picture_id(payload, pid_field);
            if restarting {
                if let Some(last) = self.last_picture {
                    let next = (last + 1) % modulus;
                    self.picture_offset = next.wrapping_sub(input) % modulus;
                }
            }
            let mapped = (input + self.picture_offset) % modulus;
            self.last_picture = Some(mapped);
            if mapped != input {
                let buf = out.get_or_insert_with(|| payload.to_vec());
                write_picture_id(buf, pid_field, mapped);
            }
        }
        if let Some(at) = f.tl0picidx {
            let input = payload[at];
            if restarting {
                if let Some(last) = self.last_tl0 {
                    self.tl0_offset = last.wrapping_add(1).wrapping_sub(input);
                }
            }
            let mapped = input.wrapping_add(self.tl0_offset);
            self.last_tl0 = Some(mapped);
            if mapped != input {
                out.get_or_insert_with(|| payload.to_vec())[at] = mapped;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A descriptor with a 15-bit PictureID and a TL0PICIDX, then two payload bytes.
    fn packet(picture_id: u16, tl0: u8) -> Vec<u8> {
        vec![
            0x90,
            0xc0,
            0x80 | (picture_id >> 8) as u8,
            picture_id as u8,
            tl0,
            0x9d,
            0x01,
        ]
    }

    fn ids(p: &[u8]) -> (u16, u8) {
        (read_picture_id(p, (2, true)), p[4])
    }

    #[test]
    fn a_switch_continues_the_numbers_of_the_previous_source() {
        let mut r = Vp8Rewriter::default();
        assert_eq!(
            r.rewrite(&packet(30000, 200)),
            None,
            "first source passes as is"
        );
        assert_eq!(r.rewrite(&packet(30001, 201)), None);
        r.restart();
        // The new layer is far behind: it must continue at 30002 / 202.
        let out = r.rewrite(&packet(100, 7)).unwrap();
        assert_eq!(ids(&out), (30002, 202));
        assert_eq!(&out[5..], &[0x9d, 0x01], "the VP8 payload is untouched");
        assert_eq!(
            ids(&r.rewrite(&packet(100, 7)).unwrap()),
            (30002, 202),
            "same frame"
        );
        assert_eq!(ids(&r.rewrite(&packet(101, 8)).unwrap()), (30003, 203));
        // Wrapping: 15-bit PictureID and 8-bit TL0PICIDX.
        r.restart();
        r.last_picture = Some(0x7fff);
        r.last_tl0 = Some(255);
        assert_eq!(ids(&r.rewrite(&packet(5, 5)).unwrap()), (0, 0));
    }

    #[test]
    fn short_ids_missing_fields_and_garbage() {
        let mut r = Vp8Rewriter::default();
        // 7-bit PictureID, no TL0PICIDX.
        assert_eq!(r.rewrite(&[0x90, 0x80, 0x10, 0x00]), None);
        r.restart();
        assert_eq!(
            r.rewrite(&[0x90, 0x80, 0x70, 0x00]).unwrap(),
            vec![0x90, 0x80, 0x11, 0x00]
        );
        // No extension byte: nothing to map.
        assert_eq!(r.rewrite(&[0x10, 0x9d]), None);
        // Truncated descriptors are left alone, never panic.
        for bad in [
            &[][..],
            &[0x90],
            &[0x90, 0xc0],
            &[0x90, 0xc0, 0x80],
            &[0x90, 0xc0, 0x80, 1, 2],
        ] {
            assert_eq!(r.rewrite(bad), None);
        }
    }
}
