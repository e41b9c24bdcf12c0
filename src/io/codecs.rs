//! PNG and JPEG through the `image` crate, with the header checked before decoding.

use super::{Format, ImageInfo, check_dimensions, decode_error};
use crate::io::write_atomic;
use crate::raster::{AnyImage, Raster, SampleDepth};
use crate::{Error, Result};
use image::{ColorType, DynamicImage, ImageDecoder, ImageError};
use std::io::BufReader;
use std::path::Path;

fn image_error(path: &Path, e: ImageError) -> Error {
    match e {
        ImageError::IoError(io) => {
            let eof = io.kind() == std::io::ErrorKind::UnexpectedEof;
            decode_error(path, io.to_string(), eof)
        }
        ImageError::Unsupported(u) => Error::Unsupported {
            path: path.into(),
            detail: u.to_string(),
        },
        ImageError::Limits(l) => Error::TooLarge {
            path: path.into(),
            width: 0,
            height: 0,
            channels: 0,
            needed_mib: 0,
            limit: l.to_string(),
        },
        other => {
            let text = other.to_string();
            let lower = text.to_ascii_lowercase();
            let eof =
                lower.contains("eof") || lower.contains("end of") || lower.contains("truncat");
            decode_error(path, text, eof)
        }
    }
}

fn info_of(color: ColorType, width: u32, height: u32) -> Option<ImageInfo> {
    let (channels, depth) = match color {
        ColorType::L8 => (1, SampleDepth::U8),
        ColorType::La8 => (2, SampleDepth::U8),
        ColorType::Rgb8 => (3, SampleDepth::U8),
        ColorType::Rgba8 => (4, SampleDepth::U8),
        ColorType::L16 => (1, SampleDepth::U16),
        ColorType::La16 => (2, SampleDepth::U16),
        ColorType::Rgb16 => (3, SampleDepth::U16),
        ColorType::Rgba16 => (4, SampleDepth::U16),
        ColorType::Rgb32F => (3, SampleDepth::F32),
        ColorType::Rgba32F => (4, SampleDepth::F32),
        _ => return None,
    };
    Some(ImageInfo {
        width: width as usize,
        height: height as usize,
        channels,
        depth,
    })
}

fn with_decoder<T>(
    path: &Path,
    format: Format,
    f: impl FnOnce(Box<dyn ImageDecoder + '_>) -> Result<T>,
) -> Result<T> {
    let reader = BufReader::new(super::open_input(path)?);
    let mut decoder: Box<dyn ImageDecoder> = match format {
        Format::Png => {
            Box::new(image::codecs::png::PngDecoder::new(reader).map_err(|e| image_error(path, e))?)
        }
        Format::Jpeg => Box::new(
            image::codecs::jpeg::JpegDecoder::new(reader).map_err(|e| image_error(path, e))?,
        ),
        Format::Tiff => unreachable!("TIFF goes through io::tiff"),
    };
    // Sizes are checked from the header against the pixel limit and the memory available;
    // the decoder's own allocation cap (512 MiB by default) would refuse 300-megapixel images.
    let mut limits = image::Limits::no_limits();
    limits.max_alloc = crate::memory::available_bytes();
    decoder
        .set_limits(limits)
        .map_err(|e| image_error(path, e))?;
    f(decoder)
}

pub(super) fn probe(path: &Path, format: Format) -> Result<ImageInfo> {
    with_decoder(path, format, |d| {
        let (w, h) = d.dimensions();
        info_of(d.color_type(), w, h).ok_or_else(|| Error::Unsupported {
            path: path.into(),
            detail: format!("colour type {:?}", d.color_type()),
        })
    })
}

/// Bytes at the end of a JPEG searched for its end-of-image marker.
const JPEG_TAIL: u64 = 64 << 10;

/// Refuses a JPEG cut short. The decoder fills the missing rows with a constant instead of
/// failing, so the end is checked first: the last end-of-image marker (`FF D9`) must follow the
/// last start-of-scan marker (`FF DA`) in the file's tail. Neither byte pair can occur inside
/// the entropy-coded data (an `FF` there is always stuffed as `FF 00`).
fn check_jpeg_complete(path: &Path) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = super::open_input(path)?;
    let len = file.metadata().map_err(|e| Error::read(path, e))?.len();
    let start = len.saturating_sub(JPEG_TAIL);
    file.seek(SeekFrom::Start(start))
        .map_err(|e| Error::read(path, e))?;
    let mut tail = Vec::with_capacity((len - start) as usize);
    file.read_to_end(&mut tail)
        .map_err(|e| Error::read(path, e))?;
    let last = |marker: u8| tail.windows(2).rposition(|w| w == [0xFF, marker]);
    match (last(0xD9), last(0xDA)) {
        (Some(end), Some(scan)) if end > scan => Ok(()),
        (Some(_), None) => Ok(()),
        _ => Err(Error::Truncated {
            path: path.into(),
            detail:
                "the JPEG has no end-of-image marker after its last scan: the file is cut short"
                    .into(),
        }),
    }
}

pub(super) fn load(path: &Path, format: Format) -> Result<AnyImage> {
    if format == Format::Jpeg {
        check_jpeg_complete(path)?;
    }
    with_decoder(path, format, |d| {
        let (w, h) = d.dimensions();
        let info = info_of(d.color_type(), w, h).ok_or_else(|| Error::Unsupported {
            path: path.into(),
            detail: format!("colour type {:?}", d.color_type()),
        })?;
        check_dimensions(
            path,
            w as u64,
            h as u64,
            info.channels as u64,
            info.depth.bytes(),
        )?;
        let image = DynamicImage::from_decoder(d).map_err(|e| image_error(path, e))?;
        let (w, h) = (w as usize, h as usize);
        let c = info.channels;
        let wrap = |r: Option<AnyImage>| {
            r.ok_or_else(|| Error::Corrupt {
                path: path.into(),
                detail: "decoded sample count does not match the header".into(),
            })
        };
        wrap(match image {
            DynamicImage::ImageLuma8(i) => {
                Raster::from_interleaved(w, h, c, i.into_raw()).map(AnyImage::U8)
            }
            DynamicImage::ImageLumaA8(i) => {
                Raster::from_interleaved(w, h, c, i.into_raw()).map(AnyImage::U8)
            }
            DynamicImage::ImageRgb8(i) => {
                Raster::from_interleaved(w, h, c, i.into_raw()).map(AnyImage::U8)
            }
            DynamicImage::ImageRgba8(i) => {
                Raster::from_interleaved(w, h, c, i.into_raw()).map(AnyImage::U8)
            }
            DynamicImage::ImageLuma16(i) => {
                Raster::from_interleaved(w, h, c, i.into_raw()).map(AnyImage::U16)
            }
            DynamicImage::ImageLumaA16(i) => {
                Raster::from_interleaved(w, h, c, i.into_raw()).map(AnyImage::U16)
            }
            DynamicImage::ImageRgb16(i) => {
                Raster::from_interleaved(w, h, c, i.into_raw()).map(AnyImage::U16)
            }
            DynamicImage::ImageRgba16(i) => {
                Raster::from_interleaved(w, h, c, i.into_raw()).map(AnyImage::U16)
            }
            DynamicImage::ImageRgb32F(i) => {
                Raster::from_interleaved(w, h, c, i.into_raw()).map(AnyImage::F32)
            }
            DynamicImage::ImageRgba32F(i) => {
                Raster::from_interleaved(w, h, c, i.into_raw()).map(AnyImage::F32)
            }
            _ => None,
        })
    })
}

/// Writes 8- or 16-bit images as PNG (float images need TIFF).
pub(super) fn save_png(path: &Path, image: &AnyImage) -> Result<()> {
    let (w, h, c) = (
        image.width() as u32,
        image.height() as u32,
        image.channels(),
    );
    let color = match (image.depth(), c) {
        (SampleDepth::U8, 1) => image::ExtendedColorType::L8,
        (SampleDepth::U8, 2) => image::ExtendedColorType::La8,
        (SampleDepth::U8, 3) => image::ExtendedColorType::Rgb8,
        (SampleDepth::U8, 4) => image::ExtendedColorType::Rgba8,
        (SampleDepth::U16, 1) => image::ExtendedColorType::L16,
        (SampleDepth::U16, 2) => image::ExtendedColorType::La16,
        (SampleDepth::U16, 3) => image::ExtendedColorType::Rgb16,
        (SampleDepth::U16, 4) => image::ExtendedColorType::Rgba16,
        _ => {
            return Err(Error::write(
                path,
                "PNG holds 8- or 16-bit images; write float images as .tif",
            ));
        }
    };
    let bytes: Vec<u8> = match image {
        AnyImage::U8(r) => r.data.as_slice().expect("standard layout").to_vec(),
        AnyImage::U16(r) => r.data.iter().flat_map(|v| v.to_ne_bytes()).collect(),
        AnyImage::F32(_) => unreachable!("rejected above"),
    };
    write_atomic(path, |w_| {
        use image::ImageEncoder;
        image::codecs::png::PngEncoder::new(w_)
            .write_image(&bytes, w, h, color)
            .map_err(|e| Error::write(path, e))
    })
}

#[cfg(test)]
mod tests {
    use crate::io::{load_image, probe, save_image};
    use crate::raster::{AnyImage, Raster};

    #[test]
    fn png_round_trips_8_and_16_bit() {
        let dir = tempfile::tempdir().unwrap();
        let a = AnyImage::U8(Raster::from_interleaved(5, 3, 3, (0..45).collect()).unwrap());
        let b = AnyImage::U16(
            Raster::from_interleaved(4, 2, 1, vec![0, 1, 256, 65535, 7, 8, 9, 10]).unwrap(),
        );
        for (i, img) in [a, b].into_iter().enumerate() {
            let p = dir.path().join(format!("{i}.png"));
            save_image(&p, &img).unwrap();
            assert_eq!(load_image(&p).unwrap(), img);
            assert_eq!(probe(&p).unwrap().width, img.width());
        }
    }

    #[test]
    fn jpeg_files_load_as_8_bit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.jpg");
        let img = image::RgbImage::from_fn(16, 8, |x, y| {
            image::Rgb([(x * 10) as u8, (y * 20) as u8, 100])
        });
        img.save(&p).unwrap();
        let loaded = load_image(&p).unwrap();
        assert_eq!(
            (loaded.width(), loaded.height(), loaded.channels()),
            (16, 8, 3)
        );
    }

    #[test]
    fn a_jpeg_cut_short_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cut.jpg");
        let img = image::GrayImage::from_fn(128, 128, |x, y| {
            image::Luma([(crate::rng::hash64((x as u64) << 32 | y as u64) & 0xFF) as u8])
        });
        img.save(&p).unwrap();
        load_image(&p).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        let e = load_image(&p).unwrap_err();
        assert!(matches!(e, crate::Error::Truncated { .. }), "{e}");
    }
}
