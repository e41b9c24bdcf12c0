//! TIFF and BigTIFF through the `tiff` crate: every page as a layer on read; streamed, strip by
//! strip, on write (BigTIFF chosen automatically past 4 GiB).

use super::{ImageInfo, check_dimensions, decode_error};
use crate::io::AtomicFile;
use crate::raster::{AnyImage, Band, Raster, Sample, SampleDepth};
use crate::{Error, Result};
use std::fs::File;
use std::io::{BufReader, Seek, Write};
use std::path::Path;
use tiff::decoder::{Decoder, DecodingResult, Limits};
use tiff::encoder::{TiffEncoder, TiffKind, TiffKindBig, TiffKindStandard, TiffValue, colortype};
use tiff::tags::Tag;
use tiff::{ColorType, TiffError};

fn tiff_error(path: &Path, e: TiffError) -> Error {
    match e {
        TiffError::IoError(io) => {
            let eof = io.kind() == std::io::ErrorKind::UnexpectedEof;
            decode_error(path, io.to_string(), eof)
        }
        TiffError::UnsupportedError(u) => Error::Unsupported {
            path: path.into(),
            detail: u.to_string(),
        },
        TiffError::LimitsExceeded => Error::Unsupported {
            path: path.into(),
            detail: "a TIFF structure exceeds the decoder's limits".into(),
        },
        other => {
            let text = other.to_string();
            let eof = text.contains("end of file") || text.contains("EOF");
            decode_error(path, text, eof)
        }
    }
}

fn open(path: &Path) -> Result<(Decoder<BufReader<File>>, Limits)> {
    let file = super::open_input(path)?;
    let file_len = file.metadata().map_err(|e| Error::read(path, e))?.len();
    // Tags: no tag holds more values than the file has bytes, so the decoder may reserve at
    // most that many values (it reserves what a tag's count claims before reading them: a
    // corrupt count asked for 37 GiB). The first page's tags are read by `Decoder::new` under
    // the crate's default limit (256 MiB).
    let mut tags = Limits::default();
    let values = usize::try_from(file_len).unwrap_or(usize::MAX).max(1 << 16);
    tags.decoding_buffer_size =
        values.saturating_mul(std::mem::size_of::<tiff::decoder::ifd::Value>());
    // A chunk's compressed bytes lie in the file too (a corrupt byte count would be reserved).
    tags.intermediate_buffer_size = values;
    tags.ifd_value_size = 256 << 20;
    let decoder = Decoder::new(BufReader::new(file)).map_err(|e| tiff_error(path, e))?;
    Ok((decoder.with_limits(tags.clone()), tags))
}

/// Limits while a page's samples are decoded: whole images are decoded at once, and their
/// size has been checked against the pixel limit and the memory available from the header
/// (`check_dimensions`).
fn sample_limits(tags: &Limits) -> Limits {
    let mut limits = tags.clone();
    limits.decoding_buffer_size = usize::MAX;
    limits
}

fn page_info(path: &Path, d: &mut Decoder<BufReader<File>>) -> Result<ImageInfo> {
    let (width, height) = d.dimensions().map_err(|e| tiff_error(path, e))?;
    let colortype = d.colortype().map_err(|e| tiff_error(path, e))?;
    let unsupported = |detail: String| Error::Unsupported {
        path: path.into(),
        detail,
    };
    let (channels, bits) = match colortype {
        ColorType::Gray(b) => (1, b),
        ColorType::GrayA(b) => (2, b),
        ColorType::RGB(b) => (3, b),
        ColorType::RGBA(b) => (4, b),
        ColorType::Multiband {
            bit_depth,
            num_samples,
        } if (1..=4).contains(&num_samples) => (num_samples as usize, bit_depth),
        other => return Err(unsupported(format!("colour type {other:?}"))),
    };
    let planar = d
        .find_tag_unsigned::<u16>(Tag::PlanarConfiguration)
        .map_err(|e| tiff_error(path, e))?
        .unwrap_or(1);
    if planar == 2 && channels > 1 {
        return Err(unsupported("planar (separate-plane) sample layout".into()));
    }
    // SampleFormat holds one value per sample; they agree in every file this reads.
    let float = d
        .find_tag_unsigned_vec::<u16>(Tag::SampleFormat)
        .map_err(|e| tiff_error(path, e))?
        .and_then(|v| v.first().copied())
        .unwrap_or(1)
        == 3;
    let depth = match (bits, float) {
        (8, false) => SampleDepth::U8,
        (16, false) => SampleDepth::U16,
        (32 | 64, true) => SampleDepth::F32,
        (b, f) => {
            return Err(unsupported(format!(
                "{b}-bit {} samples (8/16-bit integer and 32/64-bit float are read)",
                if f { "float" } else { "integer" }
            )));
        }
    };
    Ok(ImageInfo {
        width: width as usize,
        height: height as usize,
        channels,
        depth,
    })
}

/// Header of the first page.
pub(super) fn probe(path: &Path) -> Result<ImageInfo> {
    let (mut d, _) = open(path)?;
    page_info(path, &mut d)
}

/// Micrometres per pixel of the first page, from its resolution tags: `XResolution` with a
/// `ResolutionUnit` of inch or centimetre, or ImageJ's `unit=micron` (or `um`, `µm`) in the
/// image description with no unit; `None` without them or when they do not parse.
pub(super) fn pixel_size_um(path: &Path) -> Option<f64> {
    let (mut d, _) = open(path).ok()?;
    let resolution = match d.find_tag(Tag::XResolution).ok()?? {
        tiff::decoder::ifd::Value::Rational(n, den) if n > 0 && den > 0 => n as f64 / den as f64,
        other => other.into_f64().ok().filter(|v| *v > 0.0)?,
    };
    let unit = d
        .find_tag_unsigned::<u16>(Tag::ResolutionUnit)
        .ok()
        .flatten()
        .unwrap_or(2);
    let micrometres_per_unit = match unit {
        2 => 25_400.0,
        3 => 10_000.0,
        _ => {
            let description = d.get_tag_ascii_string(Tag::ImageDescription).ok()?;
            let imagej_microns = description.lines().any(|l| {
                matches!(
                    l.trim(),
                    "unit=micron" | "unit=um" | "unit=µm" | "unit=\\u00B5m"
                )
            });
            if !imagej_microns {
                return None;
            }
            1.0
        }
    };
    Some(micrometres_per_unit / resolution)
}

/// Decodes up to `max_pages` pages (all when `None`).
pub(super) fn load(path: &Path, max_pages: Option<usize>) -> Result<Vec<AnyImage>> {
    let (mut d, tags) = open(path)?;
    let mut layers = Vec::new();
    loop {
        let info = page_info(path, &mut d)?;
        // A 64-bit float page is decoded as f64 before conversion: check that size.
        let decoded_bytes = match d.colortype() {
            Ok(ColorType::Gray(64) | ColorType::RGB(64) | ColorType::RGBA(64)) => 8,
            _ => info.depth.bytes(),
        };
        check_dimensions(
            path,
            info.width as u64,
            info.height as u64,
            info.channels as u64,
            decoded_bytes,
        )?;
        let (w, h, c) = (info.width, info.height, info.channels);
        let wrong_len = || Error::Corrupt {
            path: path.into(),
            detail: "decoded sample count does not match the header".into(),
        };
        d = d.with_limits(sample_limits(&tags));
        let decoded = d.read_image().map_err(|e| tiff_error(path, e));
        d = d.with_limits(tags.clone());
        let image = match decoded? {
            DecodingResult::U8(v) => {
                AnyImage::U8(Raster::from_interleaved(w, h, c, v).ok_or_else(wrong_len)?)
            }
            DecodingResult::U16(v) => {
                AnyImage::U16(Raster::from_interleaved(w, h, c, v).ok_or_else(wrong_len)?)
            }
            DecodingResult::F32(v) => {
                AnyImage::F32(Raster::from_interleaved(w, h, c, v).ok_or_else(wrong_len)?)
            }
            DecodingResult::F64(v) => {
                let v = v.into_iter().map(|x| x as f32).collect();
                AnyImage::F32(Raster::from_interleaved(w, h, c, v).ok_or_else(wrong_len)?)
            }
            _ => {
                return Err(Error::Unsupported {
                    path: path.into(),
                    detail: "sample type (8/16-bit integer and 32/64-bit float are read)".into(),
                });
            }
        };
        layers.push(image);
        if max_pages.is_some_and(|m| layers.len() >= m) || !d.more_images() {
            break;
        }
        d.next_image().map_err(|e| tiff_error(path, e))?;
    }
    Ok(layers)
}

/// Shape of a TIFF to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TiffSpec {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Channels: 1 (gray), 3 (RGB) or 4 (RGBA); 2 (gray + alpha) is written as RGBA.
    pub channels: usize,
    /// Sample depth.
    pub depth: SampleDepth,
}

impl TiffSpec {
    fn row_samples(&self) -> usize {
        self.width * self.channels
    }
    fn bytes(&self) -> u64 {
        (self.width * self.height * self.channels) as u64 * self.depth.bytes()
    }
}

/// A band of samples to fill, typed by depth.
#[derive(Debug)]
pub enum BandBuffer<'a> {
    /// 8-bit samples.
    U8(&'a mut [u8]),
    /// 16-bit samples.
    U16(&'a mut [u16]),
    /// Float samples.
    F32(&'a mut [f32]),
}

trait WrapBand: Sample {
    fn wrap(buf: &mut [Self]) -> BandBuffer<'_>;
}
impl WrapBand for u8 {
    fn wrap(buf: &mut [Self]) -> BandBuffer<'_> {
        BandBuffer::U8(buf)
    }
}
impl WrapBand for u16 {
    fn wrap(buf: &mut [Self]) -> BandBuffer<'_> {
        BandBuffer::U16(buf)
    }
}
impl WrapBand for f32 {
    fn wrap(buf: &mut [Self]) -> BandBuffer<'_> {
        BandBuffer::F32(buf)
    }
}

/// BigTIFF past this many sample bytes (4 GiB less room for tags and strip tables).
const BIGTIFF_THRESHOLD: u64 = (4 << 30) - (64 << 20);
/// Target bytes per strip: small enough to stream, large enough for few strip-table entries.
const STRIP_BYTES: usize = 1 << 20;
/// Target bytes per band handed to the filler (a multiple of whole strips).
const BAND_BYTES: usize = 32 << 20;

/// Writes a TIFF band by band: `fill(band, buffer)` must fill `band.rows` rows of interleaved
/// samples (`spec.channels` per pixel, or 2 for a 2-channel spec, which is expanded to RGBA).
/// Only one band is in memory at a time. The file appears under `path` only when complete.
pub fn write_tiff_streaming(
    path: &Path,
    spec: TiffSpec,
    fill: &mut (dyn FnMut(Band, BandBuffer<'_>) -> Result<()> + Send),
) -> Result<()> {
    if spec.width == 0 || spec.height == 0 || !(1..=4).contains(&spec.channels) {
        return Err(Error::write(
            path,
            format!(
                "cannot write a {}x{}x{} image",
                spec.width, spec.height, spec.channels
            ),
        ));
    }
    let mut file = AtomicFile::create(path)?;
    let big = spec.bytes() > BIGTIFF_THRESHOLD;
    let w = file.writer();
    if big {
        let mut enc =
            TiffEncoder::<_, TiffKindBig>::new_generic(w).map_err(|e| Error::write(path, e))?;
        dispatch(&mut enc, path, spec, fill)?;
    } else {
        let mut enc = TiffEncoder::<_, TiffKindStandard>::new_generic(w)
            .map_err(|e| Error::write(path, e))?;
        dispatch(&mut enc, path, spec, fill)?;
    }
    file.writer().flush().map_err(|e| Error::write(path, e))?;
    file.commit()
}

fn dispatch<W: Write + Seek + Send, K: TiffKind<OffsetType: Send> + Send>(
    enc: &mut TiffEncoder<W, K>,
    path: &Path,
    spec: TiffSpec,
    fill: &mut (dyn FnMut(Band, BandBuffer<'_>) -> Result<()> + Send),
) -> Result<()> {
    use SampleDepth::*;
    match (spec.channels, spec.depth) {
        (1, U8) => encode::<colortype::Gray8, _, _>(enc, path, spec, fill),
        (1, U16) => encode::<colortype::Gray16, _, _>(enc, path, spec, fill),
        (1, F32) => encode::<colortype::Gray32Float, _, _>(enc, path, spec, fill),
        (3, U8) => encode::<colortype::RGB8, _, _>(enc, path, spec, fill),
        (3, U16) => encode::<colortype::RGB16, _, _>(enc, path, spec, fill),
        (3, F32) => encode::<colortype::RGB32Float, _, _>(enc, path, spec, fill),
        (_, U8) => encode::<colortype::RGBA8, _, _>(enc, path, spec, fill),
        (_, U16) => encode::<colortype::RGBA16, _, _>(enc, path, spec, fill),
        (_, F32) => encode::<colortype::RGBA32Float, _, _>(enc, path, spec, fill),
    }
}

fn encode<C, W, K>(
    enc: &mut TiffEncoder<W, K>,
    path: &Path,
    spec: TiffSpec,
    fill: &mut (dyn FnMut(Band, BandBuffer<'_>) -> Result<()> + Send),
) -> Result<()>
where
    C: tiff::encoder::colortype::ColorType + Send,
    C::Inner: WrapBand,
    [C::Inner]: TiffValue,
    W: Write + Seek + Send,
    K: TiffKind + Send,
    K::OffsetType: Send,
{
    let werr = |e: TiffError| Error::write(path, e);
    let mut image = enc
        .new_image::<C>(spec.width as u32, spec.height as u32)
        .map_err(werr)?;
    let out_channels = C::BITS_PER_SAMPLE.len();
    let row_bytes = spec.width * out_channels * spec.depth.bytes() as usize;
    let rows_per_strip = (STRIP_BYTES / row_bytes).clamp(1, spec.height);
    image.rows_per_strip(rows_per_strip as u32).map_err(werr)?;
    let strips_per_band = (BAND_BYTES / (row_bytes * rows_per_strip)).max(1);
    // No taller than the image: the two band buffers are allocated whole.
    let band_rows = (rows_per_strip * strips_per_band).min(spec.height);
    let expand = spec.channels == 2 && out_channels == 4;
    let strip_samples = rows_per_strip * spec.row_samples();
    let mut expanded = if expand {
        vec![C::Inner::default(); rows_per_strip * spec.width * 4]
    } else {
        Vec::new()
    };
    let mut write_band = |samples: &[C::Inner]| -> Result<()> {
        for strip in samples.chunks(strip_samples) {
            if expand {
                let out = &mut expanded[..strip.len() * 2];
                for (o, px) in out.chunks_exact_mut(4).zip(strip.chunks_exact(2)) {
                    o.copy_from_slice(&[px[0], px[0], px[0], px[1]]);
                }
                image.write_strip(out).map_err(werr)?;
            } else {
                image.write_strip(strip).map_err(werr)?;
            }
        }
        Ok(())
    };
    // Double buffering: band i+1 is filled (in parallel, by the caller's closure) while band i
    // is encoded and written, so computation and disk overlap. The filling stays on the calling
    // thread, which may be one of rayon's: a thread of its own outside the pool would hand every
    // parallel step of the fill to the pool while this worker sat in the writing (a 1024² warp
    // took 0.03 s instead of 0.01).
    let bands: Vec<Band> = crate::raster::tiles::bands(spec.height, band_rows).collect();
    let band_len = |b: &Band| b.rows * spec.row_samples();
    let mut ready = vec![C::Inner::default(); band_rows * spec.row_samples()];
    let mut next = if bands.len() > 1 {
        ready.clone()
    } else {
        Vec::new()
    };
    fill(bands[0], C::Inner::wrap(&mut ready[..band_len(&bands[0])]))?;
    for i in 0..bands.len() {
        let current = &ready[..band_len(&bands[i])];
        let (written, filled) = match bands.get(i + 1) {
            Some(b) => {
                let buf = &mut next[..band_len(b)];
                let write_band = &mut write_band;
                std::thread::scope(|scope| {
                    let writer = std::thread::Builder::new()
                        .name("alinify-band-write".into())
                        .spawn_scoped(scope, move || write_band(current))
                        .map_err(|e| Error::Internal(format!("cannot start a thread: {e}")))?;
                    let filled = fill(*b, C::Inner::wrap(buf));
                    let written = writer
                        .join()
                        .unwrap_or_else(|_| Err(Error::Internal("band writer panicked".into())));
                    Ok::<_, Error>((written, filled))
                })?
            }
            None => (write_band(current), Ok(())),
        };
        written?;
        filled?;
        std::mem::swap(&mut ready, &mut next);
    }
    image.finish().map_err(werr)
}

/// Writes a whole in-memory image.
pub(super) fn save(path: &Path, image: &AnyImage) -> Result<()> {
    let spec = TiffSpec {
        width: image.width(),
        height: image.height(),
        channels: image.channels(),
        depth: image.depth(),
    };
    let row = spec.row_samples();
    write_tiff_streaming(path, spec, &mut |band, buffer| {
        let rows = band.y * row..(band.y + band.rows) * row;
        match (image, buffer) {
            (AnyImage::U8(r), BandBuffer::U8(b)) => b.copy_from_slice(&samples(r)[rows]),
            (AnyImage::U16(r), BandBuffer::U16(b)) => b.copy_from_slice(&samples(r)[rows]),
            (AnyImage::F32(r), BandBuffer::F32(b)) => b.copy_from_slice(&samples(r)[rows]),
            _ => {
                return Err(Error::Internal(
                    "band buffer depth differs from the image".into(),
                ));
            }
        }
        Ok(())
    })
}

fn samples<T: Sample>(r: &Raster<T>) -> &[T] {
    r.data.as_slice().expect("standard layout")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{load_image, load_layers, save_image};
    use tiff::encoder::compression::DeflateLevel;

    fn gradient_u16(w: usize, h: usize, c: usize) -> AnyImage {
        let v = (0..w * h * c).map(|i| (i * 977 % 65536) as u16).collect();
        AnyImage::U16(Raster::from_interleaved(w, h, c, v).unwrap())
    }

    #[test]
    fn tiff_round_trips_every_depth_and_channel_count() {
        let dir = tempfile::tempdir().unwrap();
        for c in [1, 3, 4] {
            let images = [
                gradient_u16(37, 19, c),
                AnyImage::U8(
                    Raster::from_interleaved(
                        37,
                        19,
                        c,
                        (0..37 * 19 * c).map(|i| i as u8).collect(),
                    )
                    .unwrap(),
                ),
                AnyImage::F32(
                    Raster::from_interleaved(
                        37,
                        19,
                        c,
                        (0..37 * 19 * c).map(|i| i as f32 * 0.5).collect(),
                    )
                    .unwrap(),
                ),
            ];
            for img in images {
                let p = dir.path().join(format!("t{c}-{:?}.tif", img.depth()));
                save_image(&p, &img).unwrap();
                assert_eq!(load_image(&p).unwrap(), img);
            }
        }
    }

    #[test]
    fn gray_alpha_is_written_as_rgba_without_loss() {
        let dir = tempfile::tempdir().unwrap();
        let img = AnyImage::U8(
            Raster::from_interleaved(3, 2, 2, vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]).unwrap(),
        );
        let p = dir.path().join("ga.tif");
        save_image(&p, &img).unwrap();
        let back = load_image(&p).unwrap();
        assert_eq!(back.channels(), 4);
        let AnyImage::U8(r) = back else { panic!() };
        assert_eq!(&r.row(0)[..8], &[1, 1, 1, 2, 3, 3, 3, 4]);
    }

    /// Writes a TIFF with the given compression through the `tiff` encoder directly.
    fn write_compressed(path: &Path, compression: tiff::encoder::Compression, pages: usize) {
        let f = File::create(path).unwrap();
        let mut enc = TiffEncoder::new(f).unwrap().with_compression(compression);
        for p in 0..pages {
            let data: Vec<u8> = (0..64 * 48).map(|i| (i % 200 + p) as u8).collect();
            enc.write_image::<colortype::Gray8>(64, 48, &data).unwrap();
        }
    }

    #[test]
    fn the_pixel_size_comes_from_the_resolution_tags() {
        use tiff::encoder::Rational;
        use tiff::tags::ResolutionUnit;
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, unit: Option<ResolutionUnit>| {
            let path = dir.path().join(name);
            let mut enc = TiffEncoder::new(File::create(&path).unwrap()).unwrap();
            let mut image = enc.new_image::<colortype::Gray8>(8, 8).unwrap();
            if let Some(unit) = unit {
                image.resolution(unit, Rational { n: 20_000, d: 1 });
            }
            image.write_data(&[0u8; 64]).unwrap();
            path
        };
        let cm = write("cm.tif", Some(ResolutionUnit::Centimeter));
        assert!((pixel_size_um(&cm).unwrap() - 0.5).abs() < 1e-9);
        let inch = write("inch.tif", Some(ResolutionUnit::Inch));
        assert!((pixel_size_um(&inch).unwrap() - 1.27).abs() < 1e-9);
        // The encoder's default: resolution 1 with no unit, which says nothing.
        assert_eq!(pixel_size_um(&write("none.tif", None)), None);
    }

    #[test]
    fn compressed_and_multi_page_tiffs_load_as_layers() {
        let dir = tempfile::tempdir().unwrap();
        for (i, comp) in [
            tiff::encoder::Compression::Lzw,
            tiff::encoder::Compression::Deflate(DeflateLevel::Fast),
            tiff::encoder::Compression::Packbits,
        ]
        .into_iter()
        .enumerate()
        {
            let p = dir.path().join(format!("c{i}.tif"));
            write_compressed(&p, comp, 3);
            let layers = load_layers(&p).unwrap();
            assert_eq!(layers.len(), 3);
            let AnyImage::U8(r) = &layers[2] else {
                panic!()
            };
            assert_eq!(r.row(0)[5], 7);
        }
    }

    #[test]
    fn a_single_strip_larger_than_the_decoders_default_buffer_loads() {
        // 12000 x 12000 bytes in one strip: 137 MiB, over `tiff`'s 128 MiB intermediate buffer.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("one-strip.tif");
        let (w, h) = (12000u32, 12000u32);
        {
            let f = File::create(&p).unwrap();
            let mut enc = TiffEncoder::new(std::io::BufWriter::new(f)).unwrap();
            let mut image = enc.new_image::<colortype::Gray8>(w, h).unwrap();
            image.rows_per_strip(h).unwrap();
            let data: Vec<u8> = (0..(w * h) as usize)
                .map(|i| (i / w as usize) as u8)
                .collect();
            image.write_data(&data).unwrap();
        }
        let AnyImage::U8(r) = load_image(&p).unwrap() else {
            panic!()
        };
        assert_eq!(r.data[[11999, 3, 0]], (11999 % 256) as u8);
    }

    #[test]
    fn bigtiff_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.tif");
        let f = File::create(&p).unwrap();
        let mut enc = TiffEncoder::new_big(f).unwrap();
        let data: Vec<u16> = (0..30 * 20).map(|i| i as u16).collect();
        enc.write_image::<colortype::Gray16>(30, 20, &data).unwrap();
        let AnyImage::U16(r) = load_image(&p).unwrap() else {
            panic!()
        };
        assert_eq!(r.row(1)[0], 30);
    }
}
