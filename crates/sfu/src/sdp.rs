//! Reading what str0m does not expose from an SDP offer: the publisher's video codec
//! preference. Reads untrusted text; never panics.

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
}
