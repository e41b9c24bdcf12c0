//! Display pyramids: each level keeps the image's colour (gray or RGB) and depth (8 bits, or 16
//! for 16-bit and float images, whose detail a per-layer window brings out), cut into square
//! tiles for the GPU.

use crate::raster::{AnyImage, Raster, Sample};
use rayon::prelude::*;

/// Side of a display tile in pixels: within every device's texture limit (WebGPU guarantees
/// 2048), so no level ever needs a texture larger than the device allows.
pub const TILE: usize = 2048;

/// Longest side of the coarsest level.
const COARSEST_SIDE: usize = 256;

/// A level's samples, interleaved by pixel, row-major: bytes (8-bit images, heatmaps) or
/// 16-bit words (16-bit and float images, as `round(65535 v)`).
#[derive(Debug, Clone, PartialEq)]
pub enum Samples {
    /// One byte per sample; value `v / 255`.
    U8(Vec<u8>),
    /// One word per sample; value `v / 65535`.
    U16(Vec<u16>),
}

impl Samples {
    /// How many samples.
    pub fn len(&self) -> usize {
        match self {
            Samples::U8(s) => s.len(),
            Samples::U16(s) => s.len(),
        }
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes per sample.
    pub fn sample_bytes(&self) -> usize {
        match self {
            Samples::U8(_) => 1,
            Samples::U16(_) => 2,
        }
    }

    /// The largest sample value (`255` or `65535`): a value is its sample over this.
    pub fn max_value(&self) -> f32 {
        match self {
            Samples::U8(_) => 255.0,
            Samples::U16(_) => 65535.0,
        }
    }
}

/// One level of a display pyramid.
#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Samples per pixel: 1 (gray) or 3 (RGB).
    pub channels: usize,
    /// `width * height * channels` samples.
    pub samples: Samples,
}

/// A sample type of a level: widened to `u32` to average.
trait Word: Copy + Default + Send + Sync {
    fn widen(self) -> u32;
    fn narrow(v: u32) -> Self;
}

impl Word for u8 {
    #[inline]
    fn widen(self) -> u32 {
        self as u32
    }
    #[inline]
    fn narrow(v: u32) -> Self {
        v as u8
    }
}

impl Word for u16 {
    #[inline]
    fn widen(self) -> u32 {
        self as u32
    }
    #[inline]
    fn narrow(v: u32) -> Self {
        v as u16
    }
}

impl Level {
    /// A gray 8-bit level of `pixels` (`width * height` bytes).
    pub fn gray(width: usize, height: usize, pixels: Vec<u8>) -> Self {
        debug_assert_eq!(pixels.len(), width * height);
        Self {
            width,
            height,
            channels: 1,
            samples: Samples::U8(pixels),
        }
    }

    /// True for an RGB level.
    pub fn is_rgb(&self) -> bool {
        self.channels == 3
    }

    /// Tiles across and down.
    pub fn tiles(&self) -> [usize; 2] {
        [self.width.div_ceil(TILE), self.height.div_ceil(TILE)]
    }

    /// The pixel rectangle `(x, y, width, height)` of tile `(tx, ty)`.
    pub fn tile_rect(&self, tx: usize, ty: usize) -> [usize; 4] {
        let (x, y) = (tx * TILE, ty * TILE);
        [x, y, TILE.min(self.width - x), TILE.min(self.height - y)]
    }

    /// Half the size, each sample the rounded mean of (up to) 2 x 2.
    fn half(&self) -> Level {
        let size = [self.width, self.height];
        let samples = match &self.samples {
            Samples::U8(s) => Samples::U8(half_samples(s, size, self.channels)),
            Samples::U16(s) => Samples::U16(half_samples(s, size, self.channels)),
        };
        Level {
            width: self.width.div_ceil(2),
            height: self.height.div_ceil(2),
            channels: self.channels,
            samples,
        }
    }
}

/// [`Level::half`] of interleaved `samples` with `channels` per pixel.
fn half_samples<T: Word>(samples: &[T], [width, height]: [usize; 2], channels: usize) -> Vec<T> {
    let (w, h) = (width.div_ceil(2), height.div_ceil(2));
    let c = channels;
    let mut out = vec![T::default(); w * h * c];
    let row = |y: usize| &samples[y * width * c..][..width * c];
    out.par_chunks_mut(w * c).enumerate().for_each(|(y, out)| {
        let (top, bottom) = (row(2 * y), row((2 * y + 1).min(height - 1)));
        // Whole 2 x 2 blocks over slices (no per-pixel index checks), then an odd last
        // column on its own.
        let pairs = width / 2;
        for ((o, t), b) in out
            .chunks_exact_mut(c)
            .zip(top.chunks_exact(2 * c))
            .zip(bottom.chunks_exact(2 * c))
        {
            for k in 0..c {
                let sum = t[k].widen() + t[c + k].widen() + b[k].widen() + b[c + k].widen();
                o[k] = T::narrow((sum + 2) / 4);
            }
        }
        if pairs < w {
            let last = (width - 1) * c;
            for k in 0..c {
                let sum = 2 * (top[last + k].widen() + bottom[last + k].widen());
                out[pairs * c + k] = T::narrow((sum + 2) / 4);
            }
        }
    });
    out
}

/// The first level of `raster`: RGB from the first three channels of a colour image, else
/// the gray channel (alpha ignored), each sample through `convert`.
fn finest_samples<T: Sample, W: Word>(raster: &Raster<T>, convert: fn(T) -> W) -> (usize, Vec<W>) {
    let (w, h, c) = (raster.width(), raster.height(), raster.channels());
    let kept = if c >= 3 { 3 } else { 1 };
    let mut out = vec![W::default(); w * h * kept];
    out.par_chunks_mut(w * kept)
        .enumerate()
        .for_each(|(y, out)| {
            for (o, px) in out
                .chunks_exact_mut(kept)
                .zip(raster.row(y).chunks_exact(c))
            {
                for (o, &v) in o.iter_mut().zip(px) {
                    *o = convert(v);
                }
            }
        });
    (kept, out)
}

/// Levels from full resolution (level 0) down, each half the previous, until the longest side
/// is at most 256 pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Pyramid {
    /// Level `l` has `2^(base + l)` full-resolution pixels per pixel.
    pub levels: Vec<Level>,
    /// The scale of the finest level, as a power of two: 0 for an image's own pyramid, more
    /// for a layer known only coarsely (a quality map's block means).
    pub base: usize,
}

impl Pyramid {
    /// The display pyramid of `image`: RGB for a colour image, gray otherwise; 8-bit images
    /// keep their bytes, 16-bit and float ones become 16-bit words (floats clamped to `0..=1`).
    pub fn of(image: &AnyImage) -> Self {
        let (width, height) = (image.width(), image.height());
        let (channels, samples) = match image {
            AnyImage::U8(r) => {
                let (c, s) = finest_samples(r, |v: u8| v);
                (c, Samples::U8(s))
            }
            AnyImage::U16(r) => {
                let (c, s) = finest_samples(r, |v: u16| v);
                (c, Samples::U16(s))
            }
            AnyImage::F32(r) => {
                let (c, s) = finest_samples(r, <u16 as Sample>::from_unit);
                (c, Samples::U16(s))
            }
        };
        Self::from_level(
            Level {
                width,
                height,
                channels,
                samples,
            },
            0,
        )
    }

    /// The pyramid whose finest level is `finest`, with `2^base` full-resolution pixels per
    /// pixel.
    pub fn from_level(finest: Level, base: usize) -> Self {
        let mut levels = vec![finest];
        while let Some(last) = levels.last()
            && last.width.max(last.height) > COARSEST_SIDE
        {
            let next = last.half();
            levels.push(next);
        }
        Self { levels, base }
    }

    /// Full-resolution pixels per pixel of level `l` (a power of two).
    pub fn scale(&self, l: usize) -> f64 {
        (1u64 << (self.base + l)) as f64
    }

    /// The level whose pixels are closest to (and not smaller than) one output pixel of
    /// `view`, or the finest.
    pub fn level_for(&self, view: &super::ViewRect) -> usize {
        let full = view.step.max(1.0).log2().floor() as usize;
        full.saturating_sub(self.base).min(self.levels.len() - 1)
    }

    /// Full-resolution width and height (of the finest level times its scale).
    pub fn size(&self) -> [usize; 2] {
        let s = 1usize << self.base;
        [self.levels[0].width * s, self.levels[0].height * s]
    }

    /// True for an RGB pyramid.
    pub fn is_rgb(&self) -> bool {
        self.levels[0].is_rgb()
    }

    /// Bytes held by every level.
    pub fn bytes(&self) -> usize {
        self.levels
            .iter()
            .map(|l| l.samples.len() * l.samples.sample_bytes())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raster::GrayF32;

    fn bytes(level: &Level) -> &[u8] {
        match &level.samples {
            Samples::U8(s) => s,
            Samples::U16(_) => panic!("8-bit level expected"),
        }
    }

    #[test]
    fn levels_halve_down_to_the_coarsest_side_and_tiles_cover_each_level() {
        let image = AnyImage::from_gray_f32(GrayF32::from_shape_fn((1000, 4100), |(y, x)| {
            ((x + y) % 2) as f32
        }));
        let p = Pyramid::of(&image);
        let sizes: Vec<[usize; 2]> = p.levels.iter().map(|l| [l.width, l.height]).collect();
        assert_eq!(sizes[..3], [[4100, 1000], [2050, 500], [1025, 250]]);
        assert_eq!(*sizes.last().unwrap(), [129, 32]);
        let level = &p.levels[0];
        assert_eq!(level.tiles(), [3, 1]);
        assert_eq!(level.tile_rect(2, 0), [4096, 0, 4, 1000]);
        // A float image keeps 16 bits: a checkerboard of 0 and 1 averages to mid-gray.
        assert_eq!(p.levels[1].samples, Samples::U16(vec![32768; 2050 * 500]));
    }

    /// The slice-wise halving against the definition (the rounded mean of up to 2 x 2, edge
    /// pixels repeated), on odd and even sizes, gray and RGB.
    #[test]
    fn halving_is_the_rounded_mean_of_each_block() {
        for channels in [1, 3] {
            for (width, height) in [(7, 5), (8, 6), (1, 3), (9, 1)] {
                let n = width * height * channels;
                let level = Level {
                    width,
                    height,
                    channels,
                    samples: Samples::U8((0..n).map(|i| (i * 37 % 251) as u8).collect()),
                };
                let (half, source) = (level.half(), bytes(&level));
                for y in 0..half.height {
                    for x in 0..half.width {
                        for k in 0..channels {
                            let p = |x: usize, y: usize| {
                                let i = y.min(height - 1) * width + x.min(width - 1);
                                source[i * channels + k] as u32
                            };
                            let sum = p(2 * x, 2 * y)
                                + p(2 * x + 1, 2 * y)
                                + p(2 * x, 2 * y + 1)
                                + p(2 * x + 1, 2 * y + 1);
                            assert_eq!(
                                bytes(&half)[(y * half.width + x) * channels + k] as u32,
                                (sum + 2) / 4,
                                "{width} x {height} x {channels} at ({x}, {y}, {k})"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn colour_and_depth_survive_into_the_pyramid() {
        let rgba =
            Raster::<u8>::from_interleaved(2, 1, 4, vec![10, 20, 30, 255, 40, 50, 60, 0]).unwrap();
        let p = Pyramid::of(&AnyImage::U8(rgba));
        assert!(p.is_rgb());
        assert_eq!(
            p.levels[0].samples,
            Samples::U8(vec![10, 20, 30, 40, 50, 60])
        );
        let gray16 = Raster::<u16>::from_interleaved(2, 1, 1, vec![1000, 60000]).unwrap();
        let p = Pyramid::of(&AnyImage::U16(gray16));
        assert!(!p.is_rgb());
        assert_eq!(p.levels[0].samples, Samples::U16(vec![1000, 60000]));
        assert_eq!(
            crate::compose::sample(&p.levels[0], 1.0, 1.0, 0.0),
            Some([60000.0 / 65535.0; 3])
        );
    }
}
