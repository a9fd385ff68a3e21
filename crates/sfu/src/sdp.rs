//! Reading what str0m does not expose from an SDP offer (the publisher's video codec
//! preference, whether any codec is supported) and making third-party offers acceptable to
//! str0m. Reads untrusted text; never panics.

use std::borrow::Cow;

/// The codecs the SFU forwards, as rtpmap names.
const SUPPORTED: [&str; 3] = ["opus", "VP8", "H264"];

/// Whether the first video m-line of `sdp` lists H.264 before VP8.
pub fn prefers_h264(sdp: &str) -> bool {
    let mut in_video = false;
    let mut order: Vec<&str> = Vec::new();
    let mut names: Vec<(&str, &str)> = Vec::new();
    for line in sdp.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            if in_video {
                break;
            }
            in_video = m.starts_with("video ");
            if in_video {
                order = m.split_whitespace().skip(3).collect();
            }
        } else if in_video {
            if let Some(rest) = line.strip_prefix("a=rtpmap:") {
                let mut parts = rest.splitn(2, ' ');
                if let (Some(pt), Some(codec)) = (parts.next(), parts.next()) {
                    names.push((pt, codec.split('/').next().unwrap_or("")));
                }
            }
        }
    }
    let codec_of = |pt: &str| {
        names
            .iter()
            .find(|(p, _)| *p == pt)
            .map(|(_, c)| c.to_ascii_uppercase())
    };
    order
        .iter()
        .filter_map(|pt| codec_of(pt))
        .find(|c| c == "VP8" || c == "H264")
        .is_some_and(|c| c == "H264")
}

/// The offer with `opus/48000` rtpmaps completed to `opus/48000/2`: RFC 7587 requires the
/// channel count, some clients (GStreamer's whepsrc) leave it out, and str0m then finds no
/// matching codec.
pub fn normalize_offer(sdp: &str) -> Cow<'_, str> {
    let lacks_channels = |line: &str| {
        line.strip_prefix("a=rtpmap:")
            .and_then(|rest| rest.split_once(' '))
            .is_some_and(|(_, codec)| codec.trim_end().eq_ignore_ascii_case("opus/48000"))
    };
    if !sdp.lines().any(lacks_channels) {
        return Cow::Borrowed(sdp);
    }
    let mut out = String::with_capacity(sdp.len() + 8);
    for line in sdp.split_inclusive('\n') {
        let content = line.trim_end_matches(['\r', '\n']);
        if lacks_channels(content) {
            out.push_str(content.trim_end());
            out.push_str("/2");
            out.push_str(&line[content.len()..]);
        } else {
            out.push_str(line);
        }
    }
    Cow::Owned(out)
}

/// `Err` with the codecs offered when no audio or video m-line offers a codec the SFU
/// supports and there is no data channel either.
pub fn check_codecs(sdp: &str) -> Result<(), String> {
    let mut offered: Vec<String> = Vec::new();
    let mut usable = false;
    let mut formats: Vec<&str> = Vec::new();
    let mut names: Vec<(&str, &str)> = Vec::new();
    let mut settle = |formats: &mut Vec<&str>, names: &mut Vec<(&str, &str)>| {
        for pt in formats.drain(..) {
            let name = names
                .iter()
                .find(|(p, _)| *p == pt)
                .map(|(_, n)| n.to_string())
                .unwrap_or_else(|| format!("payload type {pt}"));
            usable |= SUPPORTED.iter().any(|s| s.eq_ignore_ascii_case(&name));
            if !offered.contains(&name) {
                offered.push(name);
            }
        }
        names.clear();
    };
    for line in sdp.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            settle(&mut formats, &mut names);
            let mut fields = m.split_whitespace();
            let kind = fields.next().unwrap_or("");
            let port = fields.next().unwrap_or("0");
            if kind == "application" && port != "0" {
                return Ok(());
            }
            if (kind == "audio" || kind == "video") && port != "0" {
                formats = fields.skip(1).collect();
            }
        } else if let Some(rest) = line.strip_prefix("a=rtpmap:") {
            if let Some((pt, codec)) = rest.split_once(' ') {
                names.push((pt, codec.split('/').next().unwrap_or("")));
            }
        }
    }
    settle(&mut formats, &mut names);
    if usable {
        Ok(())
    } else if offered.is_empty() {
        Err("the offer has no audio or video".into())
    } else {
        Err(format!(
            "the offer has no codec the server supports (Opus, VP8, H.264); it offers {}",
            offered.join(", ")
        ))
    }
}

/// The answer with the msid stream id of each m-section replaced by what `stream_for` says
/// for it (called in order with each m-section's media type), so that one publisher's audio
/// and video form one MediaStream at the receiver, which browsers synchronise.
pub fn set_stream_ids(answer: &str, mut stream_for: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(answer.len() + 64);
    for (i, section) in split_sections(answer).into_iter().enumerate() {
        let kind = section
            .strip_prefix("m=")
            .and_then(|m| m.split(' ').next())
            .filter(|_| i > 0);
        let stream = kind.and_then(&mut stream_for);
        let Some(stream) = stream else {
            out.push_str(section);
            continue;
        };
        for line in section.split_inclusive('\n') {
            let content = line.trim_end_matches(['\r', '\n']);
            let ending = &line[content.len()..];
            let msid = content
                .strip_prefix("a=msid:")
                .map(|v| ("a=msid:".to_string(), v));
            let ssrc_msid = content.strip_prefix("a=ssrc:").and_then(|v| {
                let (ssrc, rest) = v.split_once(' ')?;
                rest.strip_prefix("msid:")
                    .map(|v| (format!("a=ssrc:{ssrc} msid:"), v))
            });
            match msid.or(ssrc_msid) {
                Some((head, value)) => {
                    let track = value.split_once(' ').map_or("", |(_, t)| t);
                    out.push_str(&format!("{head}{stream} {track}{ending}"));
                }
                None => out.push_str(line),
            }
        }
    }
    out
}

/// The session part and each m-section of an SDP, in order, with their line endings.
fn split_sections(sdp: &str) -> Vec<&str> {
    let mut starts: Vec<usize> = sdp.match_indices("\nm=").map(|(i, _)| i + 1).collect();
    starts.insert(0, 0);
    starts.push(sdp.len());
    starts.windows(2).map(|w| &sdp[w[0]..w[1]]).collect()
}

/// The session's `a=ice-ufrag` and `a=ice-pwd` (the first of each), if both are there.
pub fn ice_credentials(sdp: &str) -> Option<(String, String)> {
    let value = |name: &str| {
        sdp.lines()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
    };
    Some((value("a=ice-ufrag:")?, value("a=ice-pwd:")?))
}

/// What a trickle-ICE SDP fragment (RFC 8840) carries.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct IceFragment {
    pub credentials: Option<(String, String)>,
    /// `candidate:` attributes, without `a=`.
    pub candidates: Vec<String>,
}

/// Reads a trickle-ICE SDP fragment: `a=ice-ufrag`/`a=ice-pwd`, `a=candidate` lines; other
/// lines (`a=mid`, `m=`, `a=end-of-candidates`, ...) are skipped.
pub fn ice_fragment(text: &str) -> Result<IceFragment, String> {
    let mut frag = IceFragment {
        credentials: ice_credentials(text),
        candidates: Vec::new(),
    };
    let has = |name: &str| text.lines().any(|l| l.trim().starts_with(name));
    if frag.credentials.is_none() && (has("a=ice-ufrag:") || has("a=ice-pwd:")) {
        return Err("a=ice-ufrag and a=ice-pwd must come together".into());
    }
    for line in text.lines().map(str::trim) {
        if let Some(c) = line.strip_prefix("a=candidate:") {
            frag.candidates.push(format!("candidate:{c}"));
        }
    }
    Ok(frag)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 102 96\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:102 H264/90000\r\n";

    #[test]
    fn follows_the_first_video_line_order() {
        assert!(prefers_h264(OFFER));
        assert!(!prefers_h264(&OFFER.replace("102 96", "96 102")));
        assert!(!prefers_h264("v=0\r\nm=audio 9 x 111\r\n"));
        assert!(!prefers_h264(""));
        assert!(!prefers_h264("m=video\r\na=rtpmap:\r\na=rtpmap:1"));
    }

    #[test]
    fn sets_stream_ids_by_mid() {
        let answer = "v=0\r\na=msid-semantic: WMS x y\r\nm=audio 9 P 111\r\na=mid:0\r\n\
            a=msid:x t1\r\na=ssrc:5 msid:x t1\r\nm=video 9 P 96\r\na=msid:y t2\r\na=mid:1\r\n\
            m=video 9 P 96\r\na=mid:2\r\na=msid:z t3\r\n";
        let mut n = 0;
        let out = set_stream_ids(answer, |_| {
            n += 1;
            (n < 3).then(|| "p7".to_string())
        });
        assert_eq!(
            out,
            answer
                .replace("msid:x", "msid:p7")
                .replace("msid:y", "msid:p7")
                .replace("WMS p7 p7", "WMS x y")
        );
        assert_eq!(set_stream_ids("", |_| Some("x".into())), "");
        let kinds = std::cell::RefCell::new(Vec::new());
        set_stream_ids(answer, |k| {
            kinds.borrow_mut().push(k.to_string());
            None
        });
        assert_eq!(kinds.into_inner(), ["audio", "video", "video"]);
    }

    #[test]
    fn reads_ice_fragments() {
        let frag = "a=ice-ufrag:abc\r\na=ice-pwd:secret\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n\
            a=candidate:1 1 udp 2130706431 10.0.0.2 5000 typ host\r\na=end-of-candidates\r\n";
        let f = ice_fragment(frag).unwrap();
        assert_eq!(f.credentials, Some(("abc".into(), "secret".into())));
        assert_eq!(
            f.candidates,
            ["candidate:1 1 udp 2130706431 10.0.0.2 5000 typ host"]
        );
        assert_eq!(ice_fragment("").unwrap(), IceFragment::default());
        assert!(ice_fragment("a=ice-ufrag:abc\r\n").is_err());
    }

    #[test]
    fn completes_opus_channels() {
        let gst = OFFER.replace("opus/48000/2", "opus/48000");
        assert_eq!(normalize_offer(&gst), OFFER);
        assert!(matches!(normalize_offer(OFFER), Cow::Borrowed(_)));
        assert_eq!(
            normalize_offer("a=rtpmap:9 OPUS/48000"),
            "a=rtpmap:9 OPUS/48000/2"
        );
    }

    #[test]
    fn finds_supported_codecs() {
        assert_eq!(check_codecs(OFFER), Ok(()));
        let pcmu = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0 8\r\na=rtpmap:0 PCMU/8000\r\n";
        let err = check_codecs(pcmu).unwrap_err();
        assert!(err.ends_with("PCMU, payload type 8"), "{err}");
        let rejected = "m=audio 0 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n";
        assert!(check_codecs(rejected).is_err());
        assert_eq!(
            check_codecs("m=application 9 UDP/DTLS/SCTP webrtc-datachannel"),
            Ok(())
        );
        assert!(check_codecs("").is_err());
    }
}
