//! 8-bit luminance pyramids for display, each level cut into square tiles for the GPU.

use crate::raster::AnyImage;
use rayon::prelude::*;

/// Side of a display tile in pixels: within every device's texture limit (WebGPU guarantees
/// 2048), so no level ever needs a texture larger than the device allows.
pub const TILE: usize = 2048;

/// Longest side of the coarsest level.
const COARSEST_SIDE: usize = 256;

/// One level: luminance, one byte per pixel, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width * height` bytes.
    pub pixels: Vec<u8>,
}

impl Level {
    /// Tiles across and down.
    pub fn tiles(&self) -> [usize; 2] {
        [self.width.div_ceil(TILE), self.height.div_ceil(TILE)]
    }

    /// The pixel rectangle `(x, y, width, height)` of tile `(tx, ty)`.
    pub fn tile_rect(&self, tx: usize, ty: usize) -> [usize; 4] {
        let (x, y) = (tx * TILE, ty * TILE);
        [x, y, TILE.min(self.width - x), TILE.min(self.height - y)]
    }

    /// Half the size, each pixel the mean of (up to) 2 x 2.
    fn half(&self) -> Level {
        let (w, h) = (self.width.div_ceil(2), self.height.div_ceil(2));
        let mut pixels = vec![0u8; w * h];
        let row = |y: usize| &self.pixels[y * self.width..][..self.width];
        pixels.par_chunks_mut(w).enumerate().for_each(|(y, out)| {
            let (top, bottom) = (row(2 * y), row((2 * y + 1).min(self.height - 1)));
            // Whole 2 x 2 blocks over slices (no per-pixel index checks), then an odd last
            // column on its own.
            let pairs = self.width / 2;
            for ((o, t), b) in out
                .iter_mut()
                .zip(top.chunks_exact(2))
                .zip(bottom.chunks_exact(2))
            {
                let sum = t[0] as u32 + t[1] as u32 + b[0] as u32 + b[1] as u32;
                *o = ((sum + 2) / 4) as u8;
            }
            if pairs < w {
                let last = self.width - 1;
                let sum = 2 * (top[last] as u32 + bottom[last] as u32);
                out[pairs] = ((sum + 2) / 4) as u8;
            }
        });
        Level {
            width: w,
            height: h,
            pixels,
        }
    }
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
    /// The display pyramid of `image`'s luminance.
    pub fn of(image: &AnyImage) -> Self {
        let (w, h) = (image.width(), image.height());
        let mut pixels = vec![0u8; w * h];
        pixels.par_chunks_mut(w).enumerate().for_each_init(
            || vec![0f32; w],
            |row, (y, out)| {
                image.luminance_row(y, row);
                for (o, v) in out.iter_mut().zip(row.iter()) {
                    // Non-negative after the clamp, so adding a half and truncating rounds
                    // (and avoids a libm call per pixel).
                    *o = (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
                }
            },
        );
        Self::from_level(
            Level {
                width: w,
                height: h,
                pixels,
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

    /// Bytes held by every level.
    pub fn bytes(&self) -> usize {
        self.levels.iter().map(|l| l.pixels.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raster::GrayF32;

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
        // A checkerboard of 0 and 255 averages to mid-gray.
        assert_eq!(p.levels[1].pixels[0], 128);
    }

    /// The slice-wise halving against the definition (the rounded mean of up to 2 x 2, edge
    /// pixels repeated), on odd and even sizes.
    #[test]
    fn halving_is_the_rounded_mean_of_each_block() {
        for (width, height) in [(7, 5), (8, 6), (1, 3), (9, 1)] {
            let level = Level {
                width,
                height,
                pixels: (0..width * height).map(|i| (i * 37 % 251) as u8).collect(),
            };
            let half = level.half();
            for y in 0..half.height {
                for x in 0..half.width {
                    let p = |x: usize, y: usize| {
                        level.pixels[y.min(height - 1) * width + x.min(width - 1)] as u32
                    };
                    let sum = p(2 * x, 2 * y)
                        + p(2 * x + 1, 2 * y)
                        + p(2 * x, 2 * y + 1)
                        + p(2 * x + 1, 2 * y + 1);
                    assert_eq!(
                        half.pixels[y * half.width + x] as u32,
                        (sum + 2) / 4,
                        "{width} x {height} at ({x}, {y})"
                    );
                }
            }
        }
    }
}
