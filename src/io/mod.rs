//! Loading and saving: PNG, JPEG and TIFF images (8/16-bit, float; gray, RGB, RGBA; strips and
//! tiles; none/LZW/Deflate/PackBits; BigTIFF; multi-page TIFF as layers), Middlebury `.flo`
//! displacement fields, `transform.json` files, the elastix interchange, streamed warps into
//! TIFFs, and atomic writes.
//!
//! Every loader checks the dimensions in the file's header, in 64-bit arithmetic, against the
//! pixel limit and the memory available *before* allocating, and every failure is an
//! [`Error`] naming the file and the problem. Every writer writes to a temporary name beside the
//! target and renames it into place, so a failed write never leaves a partial file.

mod atomic;
mod codecs;
pub mod elastix;
pub mod flo;
pub mod landmarks;
mod ownership;
mod paths;
mod row_stream;
pub mod tiff;
mod transform_file;
mod warp_tiff;

pub use atomic::{AtomicFile, ensure_output_dir, write_atomic, write_text_atomic};
pub use ownership::{DirLock, LOCK_FILE, ScratchDir, sweep_stale_partials};
pub use paths::{
    Labelled, check_folder_outputs, check_outputs, check_regular, open_input, read_input_text,
};
pub use row_stream::RowStreamTiff;
pub use tiff::{TiffSpec, write_tiff_streaming};
pub use transform_file::{ImageSize, TransformFile, TransformSpec};
pub use warp_tiff::warp_to_tiff;

use crate::raster::{AnyImage, Sample, SampleDepth};
use crate::{Error, Result};
use std::io::Read;
use std::path::Path;

/// The formats Alinify reads, recognised by their first bytes (not the file name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// PNG.
    Png,
    /// JPEG.
    Jpeg,
    /// TIFF or BigTIFF.
    Tiff,
}

/// What a file's header says about its image, read without decoding pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Channels per pixel.
    pub channels: usize,
    /// Sample depth.
    pub depth: SampleDepth,
}

/// The largest image accepted, in pixels, unless `ALINIFY_MAX_PIXELS` says otherwise:
/// 2^32 pixels (65536 x 65536), far beyond the 300-megapixel images Alinify is built for but
/// small enough to reject headers that claim absurd sizes.
pub const DEFAULT_MAX_PIXELS: u64 = 1 << 32;

/// The pixel limit in force (`ALINIFY_MAX_PIXELS` or [`DEFAULT_MAX_PIXELS`]).
pub fn max_pixels() -> u64 {
    std::env::var("ALINIFY_MAX_PIXELS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MAX_PIXELS)
}

/// Checks a header's claim before anything is allocated: non-zero, under the pixel limit, and
/// fitting in the memory available. Returns the byte size of the decoded samples.
pub fn check_dimensions(
    path: &Path,
    width: u64,
    height: u64,
    channels: u64,
    bytes_per_sample: u64,
) -> Result<u64> {
    if width == 0 || height == 0 {
        return Err(Error::Empty {
            path: path.into(),
            what: format!("image has zero width or height ({width} x {height})"),
        });
    }
    let too_large = |bytes: Option<u64>, limit: String| Error::TooLarge {
        path: path.into(),
        width,
        height,
        channels,
        needed_mib: bytes.map_or(u64::MAX, |b| b >> 20),
        limit,
    };
    let bytes = crate::memory::checked_product(&[width, height, channels, bytes_per_sample]);
    let pixels = width.checked_mul(height);
    let limit = max_pixels();
    if pixels.is_none_or(|p| p > limit) {
        return Err(too_large(
            bytes,
            format!(
                "over the limit of {} megapixels (set ALINIFY_MAX_PIXELS to change it)",
                limit / 1_000_000
            ),
        ));
    }
    let bytes = bytes.ok_or_else(|| too_large(None, "size overflows 64 bits".into()))?;
    if let Some(available) = crate::memory::available_bytes()
        && bytes > available
    {
        return Err(too_large(
            Some(bytes),
            format!("more than the {} MiB of memory available", available >> 20),
        ));
    }
    Ok(bytes)
}

/// Recognises the format from the first bytes of `path`.
pub fn sniff(path: &Path) -> Result<Format> {
    let mut file = open_input(path)?;
    let meta = file.metadata().map_err(|e| Error::read(path, e))?;
    if meta.len() == 0 {
        return Err(Error::Empty {
            path: path.into(),
            what: "file is empty (0 bytes)".into(),
        });
    }
    let mut head = [0u8; 8];
    let n = read_up_to(&mut file, &mut head).map_err(|e| Error::read(path, e))?;
    let head = &head[..n];
    if head.starts_with(b"\x89PNG") {
        Ok(Format::Png)
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Ok(Format::Jpeg)
    } else if head.starts_with(b"II*\0")
        || head.starts_with(b"MM\0*")
        || head.starts_with(b"II+\0")
        || head.starts_with(b"MM\0+")
    {
        Ok(Format::Tiff)
    } else {
        Err(Error::Corrupt {
            path: path.into(),
            detail: "not a PNG, JPEG or TIFF file (unrecognised header)".into(),
        })
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Reads the header of an image file: size, channels and depth of its first page.
pub fn probe(path: &Path) -> Result<ImageInfo> {
    match sniff(path)? {
        Format::Tiff => tiff::probe(path),
        format => codecs::probe(path, format),
    }
}

/// A path's file name for display (the whole path when it has none).
pub fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Micrometres per pixel from the file's resolution tags (TIFF), when it has them.
pub fn pixel_size_um(path: &Path) -> Option<f64> {
    match sniff(path).ok()? {
        Format::Tiff => tiff::pixel_size_um(path),
        _ => None,
    }
}

/// Loads the first page of an image file.
pub fn load_image(path: &Path) -> Result<AnyImage> {
    let mut layers = load_pages(path, Some(1))?;
    Ok(layers.remove(0))
}

/// Loads every page of an image file as a layer (one layer for PNG and JPEG).
pub fn load_layers(path: &Path) -> Result<Vec<AnyImage>> {
    load_pages(path, None)
}

fn load_pages(path: &Path, max_pages: Option<usize>) -> Result<Vec<AnyImage>> {
    let layers = match sniff(path)? {
        Format::Tiff => tiff::load(path, max_pages)?,
        format => vec![codecs::load(path, format)?],
    };
    for layer in &layers {
        check_finite(path, layer)?;
    }
    Ok(layers)
}

/// Rejects float images holding NaN or infinite samples: no metric can use them.
fn check_finite(path: &Path, image: &AnyImage) -> Result<()> {
    if let AnyImage::F32(r) = image {
        use rayon::prelude::*;
        let bad = r
            .data
            .as_slice()
            .expect("standard layout")
            .par_chunks(1 << 16)
            .map(|c| c.iter().filter(|v| !v.is_finite()).count())
            .sum::<usize>();
        if bad > 0 {
            return Err(Error::InvalidData {
                path: path.into(),
                detail: format!("{bad} of {} samples are NaN or infinite", r.data.len()),
            });
        }
    }
    Ok(())
}

/// Loads a mask: an image whose non-zero pixels (first channel) are `true`.
pub fn load_mask(path: &Path) -> Result<ndarray::Array2<bool>> {
    let image = load_image(path)?;
    Ok(crate::with_raster!(&image, r => r.channel(0).mapv(|v| v.to_unit() != 0.0)))
}

/// Saves an image; the format follows the extension (`.tif`/`.tiff` or `.png`).
pub fn save_image(path: &Path, image: &AnyImage) -> Result<()> {
    match extension(path).as_deref() {
        Some("tif" | "tiff") => tiff::save(path, image),
        Some("png") => codecs::save_png(path, image),
        _ => Err(Error::write(
            path,
            "unknown output format: use a .tif, .tiff or .png file name",
        )),
    }
}

fn extension(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
}

/// Maps a decoder's message to truncated / corrupt.
fn decode_error(path: &Path, detail: String, eof: bool) -> Error {
    if eof {
        Error::Truncated {
            path: path.into(),
            detail,
        }
    } else {
        Error::Corrupt {
            path: path.into(),
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_absurd_dimensions_are_rejected_before_allocation() {
        let p = Path::new("x.tif");
        assert!(matches!(
            check_dimensions(p, 0, 0, 1, 1),
            Err(Error::Empty { .. })
        ));
        let e = check_dimensions(p, 100_000, 100_000, 3, 1).unwrap_err();
        assert!(matches!(e, Error::TooLarge { .. }), "{e}");
        assert!(e.to_string().contains("x.tif"));
        assert!(check_dimensions(p, u64::MAX, u64::MAX, 4, 4).is_err());
        assert_eq!(check_dimensions(p, 10, 20, 3, 2).unwrap(), 1200);
    }
}
