//! Photos of complaints: only JPEG and PNG, at most [`MAX_PHOTO_BYTES`],
//! stored on disk with a thumbnail at most [`THUMB_SIZE`] pixels on a side.

use std::path::{Path, PathBuf};

/// Largest photo accepted.
pub const MAX_PHOTO_BYTES: usize = 5 << 20;
/// Longest side of a thumbnail.
pub const THUMB_SIZE: u32 = 320;
/// Largest image decoded, so a small file cannot unpack into gigabytes.
const MAX_PIXELS: u64 = 40_000_000;

/// Why a photo was refused.
#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    /// Over the size limit.
    #[error("the photo is {0} bytes; at most {MAX_PHOTO_BYTES} are accepted")]
    TooLarge(usize),
    /// Not a JPEG or PNG file.
    #[error("only JPEG and PNG photos are accepted")]
    NotAnImage,
    /// It claims to be an image but does not decode.
    #[error("the image cannot be read: {0}")]
    Broken(String),
    /// Writing to disk failed.
    #[error("cannot store the photo: {0}")]
    Io(#[from] std::io::Error),
}

/// The content type of JPEG or PNG bytes, by their signature.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else {
        None
    }
}

/// A stored photo's two files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// `image/jpeg` or `image/png`.
    pub content_type: &'static str,
    /// The original, as uploaded.
    pub path: PathBuf,
    /// The PNG thumbnail.
    pub thumb_path: PathBuf,
}

/// Checks, decodes and writes a photo under `dir/{complaint_id}/{name}`.
/// Blocking: call it from a blocking thread.
pub fn store(
    dir: &Path,
    complaint_id: i64,
    name: &str,
    bytes: &[u8],
) -> Result<Stored, PhotoError> {
    if bytes.len() > MAX_PHOTO_BYTES {
        return Err(PhotoError::TooLarge(bytes.len()));
    }
    let content_type = sniff(bytes).ok_or(PhotoError::NotAnImage)?;
    let format = if content_type == "image/png" {
        image::ImageFormat::Png
    } else {
        image::ImageFormat::Jpeg
    };
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_PIXELS * 4);
    reader.limits(limits);
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| PhotoError::Broken(e.to_string()))?;
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(PhotoError::Broken(format!("{w}×{h} pixels is too large")));
    }
    let image = image::load_from_memory_with_format(bytes, format)
        .map_err(|e| PhotoError::Broken(e.to_string()))?;
    let thumb = image.thumbnail(THUMB_SIZE, THUMB_SIZE);
    let folder = dir.join(complaint_id.to_string());
    std::fs::create_dir_all(&folder)?;
    let ext = if content_type == "image/png" {
        "png"
    } else {
        "jpg"
    };
    let path = folder.join(format!("{name}.{ext}"));
    let thumb_path = folder.join(format!("{name}.thumb.png"));
    std::fs::write(&path, bytes)?;
    thumb
        .save_with_format(&thumb_path, image::ImageFormat::Png)
        .map_err(|e| PhotoError::Io(std::io::Error::other(e.to_string())))?;
    Ok(Stored {
        content_type,
        path,
        thumb_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        image::RgbImage::from_pixel(w, h, image::Rgb([200, 30, 30]))
            .write_to(&mut out, image::ImageFormat::Png)
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn a_photo_is_stored_with_a_small_thumbnail() {
        let dir = tempfile::tempdir().unwrap();
        let stored = store(dir.path(), 42, "p1", &png(1000, 500)).unwrap();
        assert_eq!(stored.content_type, "image/png");
        let thumb = image::open(&stored.thumb_path).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (320, 160));
        assert!(stored.path.starts_with(dir.path().join("42")));
    }

    #[test]
    fn other_files_and_broken_images_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            store(dir.path(), 1, "a", b"GIF89a...."),
            Err(PhotoError::NotAnImage)
        ));
        let mut broken = png(10, 10);
        broken.truncate(30);
        assert!(matches!(
            store(dir.path(), 1, "b", &broken),
            Err(PhotoError::Broken(_))
        ));
        let huge = vec![0xFF; MAX_PHOTO_BYTES + 1];
        assert!(matches!(
            store(dir.path(), 1, "c", &huge),
            Err(PhotoError::TooLarge(_))
        ));
    }
}
