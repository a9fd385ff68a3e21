//! Screen layouts a simulated subscriber shows received video in, like the web app would: it
//! tells the server each video's display size (`video_size`) so the server forwards the
//! simulcast layer that fits, and hides (0×0) what does not fit on the screen.

use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoLayout {
    /// The first video large (1280×720), up to five more as 320×180 thumbnails.
    Speaker,
    /// Up to nine videos in a 3×3 grid on a 1280×720 screen.
    Grid3x3,
    /// Up to sixteen videos in a 4×4 grid on a 1280×720 screen.
    Grid4x4,
}

impl VideoLayout {
    /// How many videos are shown; later ones are hidden.
    pub fn capacity(self) -> usize {
        match self {
            VideoLayout::Speaker => 6,
            VideoLayout::Grid3x3 => 9,
            VideoLayout::Grid4x4 => 16,
        }
    }

    /// Display size of the `n`-th video to arrive (from 0); `(0, 0)`: not shown.
    pub fn size(self, n: usize) -> (u32, u32) {
        if n >= self.capacity() {
            return (0, 0);
        }
        match (self, n) {
            (VideoLayout::Speaker, 0) => (1280, 720),
            (VideoLayout::Speaker, _) => (320, 180),
            (VideoLayout::Grid3x3, _) => (426, 240),
            (VideoLayout::Grid4x4, _) => (320, 180),
        }
    }
}

impl FromStr for VideoLayout {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "speaker" => Ok(VideoLayout::Speaker),
            "3x3" => Ok(VideoLayout::Grid3x3),
            "4x4" => Ok(VideoLayout::Grid4x4),
            other => Err(format!(
                "unknown video layout {other:?}: use speaker, 3x3 or 4x4"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_show_what_fits() {
        let speaker: VideoLayout = "speaker".parse().unwrap();
        assert_eq!(speaker.size(0), (1280, 720));
        assert_eq!(speaker.size(5), (320, 180));
        assert_eq!(speaker.size(6), (0, 0));
        assert_eq!("3x3".parse::<VideoLayout>().unwrap().size(8), (426, 240));
        assert_eq!("4x4".parse::<VideoLayout>().unwrap().size(16), (0, 0));
        assert!("5x5".parse::<VideoLayout>().is_err());
    }
}
