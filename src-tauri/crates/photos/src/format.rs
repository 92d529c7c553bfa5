//! What a file really is, from its first bytes rather than its name.

use serde::Serialize;
use ts_rs::TS;

/// Image formats told apart by their signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Jpeg,
    Png,
    Webp,
    Gif,
    Bmp,
    Tiff,
    /// HEIC/HEIF, the iPhone default, read by libheif.
    Heic,
    Avif,
}

impl Format {
    /// Reads the signature; `None` when the bytes are not an image format this app knows.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        let starts = |signature: &[u8]| bytes.starts_with(signature);
        if starts(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if starts(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if starts(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
            Some(Self::Webp)
        } else if starts(b"GIF87a") || starts(b"GIF89a") {
            Some(Self::Gif)
        } else if starts(b"BM") && bytes.len() > 26 {
            Some(Self::Bmp)
        } else if starts(b"II*\0") || starts(b"MM\0*") {
            Some(Self::Tiff)
        } else if bytes.get(4..8) == Some(b"ftyp") {
            match bytes.get(8..12)? {
                b"avif" | b"avis" => Some(Self::Avif),
                b"heic" | b"heix" | b"hevc" | b"hevx" | b"heim" | b"heis" | b"mif1" | b"msf1" => {
                    Some(Self::Heic)
                }
                _ => None,
            }
        } else {
            None
        }
    }

    /// Whether the format is an ISO-BMFF image container, read by libheif.
    pub fn is_heif(self) -> bool {
        matches!(self, Self::Heic | Self::Avif)
    }

    /// Whether a file name's extension fits this format.
    pub fn matches_extension(self, extension: &str) -> bool {
        let extension = extension.to_ascii_lowercase();
        let accepted: &[&str] = match self {
            Self::Jpeg => &["jpg", "jpeg", "jpe", "jfif"],
            Self::Png => &["png"],
            Self::Webp => &["webp"],
            Self::Gif => &["gif"],
            Self::Bmp => &["bmp", "dib"],
            Self::Tiff => &["tif", "tiff"],
            Self::Heic => &["heic", "heif", "hif"],
            Self::Avif => &["avif"],
        };
        accepted.contains(&extension.as_str())
    }

    pub(crate) fn image_format(self) -> Option<image::ImageFormat> {
        match self {
            Self::Jpeg => Some(image::ImageFormat::Jpeg),
            Self::Png => Some(image::ImageFormat::Png),
            Self::Webp => Some(image::ImageFormat::WebP),
            Self::Gif => Some(image::ImageFormat::Gif),
            Self::Bmp => Some(image::ImageFormat::Bmp),
            Self::Tiff => Some(image::ImageFormat::Tiff),
            Self::Heic | Self::Avif => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_decide_not_names() {
        assert_eq!(Format::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(Format::Jpeg));
        assert_eq!(Format::sniff(b"\x89PNG\r\n\x1a\n...."), Some(Format::Png));
        assert_eq!(Format::sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(Format::Webp));
        assert_eq!(Format::sniff(b"\0\0\0\x18ftypheic\0\0"), Some(Format::Heic));
        assert_eq!(Format::sniff(b"\0\0\0\x1cftypavif\0\0"), Some(Format::Avif));
        assert_eq!(
            Format::sniff(b"\0\0\0\x1cftypisom\0\0"),
            None,
            "an MP4 is not an image"
        );
        assert_eq!(Format::sniff(b"hello, I am text"), None);
        assert_eq!(Format::sniff(b""), None);
        assert!(Format::Jpeg.matches_extension("JPEG"));
        assert!(!Format::Png.matches_extension("jpg"));
        assert!(Format::Heic.is_heif() && Format::Avif.is_heif() && !Format::Jpeg.is_heif());
    }
}
