//! The anti-aliased Gaussian pyramid.
//!
//! Level `l` has pixel centres at full-resolution coordinates `2^l * (x, y)`: each level keeps the
//! even pixels of the one below after a Gaussian blur centred on them, so coordinates convert by a
//! pure scale. Level 0 is never copied: the first reduction reads the source image (8/16-bit or
//! float, any channel count) row by row and converts to luminance on the fly, so building the
//! pyramid of a 300-megapixel 8-bit image allocates only the quarter-size level 1 and below.

use super::{AnyImage, GrayF32, ROWS_PER_TASK};
use crate::job::CancelToken;
use crate::{Error, Result};
use ndarray::Axis;
use rayon::prelude::*;

/// How a pyramid is built.
#[derive(Debug, Clone)]
pub struct PyramidParams {
    /// Number of levels including level 0 (the source).
    pub levels: usize,
    /// Standard deviation (in the finer level's pixels) of the anti-aliasing blur before each
    /// factor-2 decimation. 1.0 suppresses content above the new Nyquist frequency to < 2 %.
    pub sigma: f32,
}

impl Default for PyramidParams {
    fn default() -> Self {
        Self {
            levels: 4,
            sigma: 1.0,
        }
    }
}

impl PyramidParams {
    /// Levels so that the coarsest level's shorter side is at least `min_side` pixels
    /// (and at most `max_levels` levels in all).
    pub fn levels_for(width: usize, height: usize, min_side: usize, max_levels: usize) -> usize {
        let mut levels = 1;
        let mut side = width.min(height);
        while levels < max_levels && side / 2 >= min_side {
            side = side.div_ceil(2);
            levels += 1;
        }
        levels
    }
}

/// Something a pyramid can be built from: a source of luminance rows.
pub trait RowSource: Sync {
    /// Width in pixels.
    fn width(&self) -> usize;
    /// Height in pixels.
    fn height(&self) -> usize;
    /// Writes row `y` (registration units) into `out`, `out.len() == width`.
    fn read_row(&self, y: usize, out: &mut [f32]);
}

impl RowSource for AnyImage {
    fn width(&self) -> usize {
        AnyImage::width(self)
    }
    fn height(&self) -> usize {
        AnyImage::height(self)
    }
    fn read_row(&self, y: usize, out: &mut [f32]) {
        self.luminance_row(y, out)
    }
}

impl RowSource for GrayF32 {
    fn width(&self) -> usize {
        self.ncols()
    }
    fn height(&self) -> usize {
        self.nrows()
    }
    fn read_row(&self, y: usize, out: &mut [f32]) {
        out.copy_from_slice(self.row(y).as_slice().expect("standard layout"));
    }
}

/// Levels 1.. of a pyramid (level 0 is the source image, kept by the caller).
#[derive(Debug, Clone)]
pub struct Pyramid {
    /// `reduced[i]` is level `i + 1`.
    pub reduced: Vec<GrayF32>,
}

impl Pyramid {
    /// Builds levels `1..params.levels` from `source`. Checks `cancel` between levels.
    pub fn build(
        source: &dyn RowSource,
        params: &PyramidParams,
        cancel: &CancelToken,
    ) -> Result<Pyramid> {
        let mut reduced: Vec<GrayF32> = Vec::with_capacity(params.levels.saturating_sub(1));
        for _ in 1..params.levels {
            cancel.check()?;
            let next = match reduced.last() {
                None => reduce(source, params.sigma),
                Some(prev) => reduce(prev, params.sigma),
            };
            if next.nrows() == 0 || next.ncols() == 0 {
                return Err(Error::InvalidArgument(
                    "pyramid level would be empty".into(),
                ));
            }
            reduced.push(next);
        }
        Ok(Pyramid { reduced })
    }

    /// Level `l >= 1`.
    pub fn level(&self, l: usize) -> &GrayF32 {
        &self.reduced[l - 1]
    }

    /// Bytes held by the reduced levels.
    pub fn byte_len(&self) -> usize {
        self.reduced.iter().map(|l| l.len() * 4).sum()
    }
}

/// Normalised Gaussian taps `w[-r..=r]` with `r = ceil(3 sigma)`.
pub fn gaussian_kernel(sigma: f32) -> Vec<f32> {
    let r = (3.0 * sigma).ceil().max(1.0) as i64;
    let mut k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let s: f32 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= s);
    k
}

/// Blurs with a Gaussian of `sigma` and keeps the even pixels: output size `ceil(w/2) x ceil(h/2)`.
/// Borders replicate the edge pixel. Parallel over bands of output rows; each band converts the
/// source rows it needs once.
#[must_use]
pub fn reduce(source: &(impl RowSource + ?Sized), sigma: f32) -> GrayF32 {
    let (w, h) = (source.width(), source.height());
    let (ow, oh) = (w.div_ceil(2), h.div_ceil(2));
    let kernel = gaussian_kernel(sigma);
    let r = kernel.len() / 2;
    let mut out = GrayF32::zeros((oh, ow));
    out.axis_chunks_iter_mut(Axis(0), ROWS_PER_TASK)
        .into_par_iter()
        .enumerate()
        .for_each(|(chunk, mut band)| {
            let oy0 = chunk * ROWS_PER_TASK;
            let rows = band.nrows();
            // Source rows [sy0, sy1) cover every tap of this band (before clamping).
            let sy0 = (2 * oy0) as i64 - r as i64;
            let sy1 = (2 * (oy0 + rows - 1) + r + 1) as i64;
            let n_src = (sy1 - sy0) as usize;
            let mut src = vec![0f32; n_src * w];
            for (i, row) in src.chunks_exact_mut(w).enumerate() {
                let sy = (sy0 + i as i64).clamp(0, h as i64 - 1) as usize;
                source.read_row(sy, row);
            }
            let mut vert = vec![0f32; w];
            for oy in 0..rows {
                let centre = 2 * oy + r; // index of source row 2*(oy0+oy) in `src`
                vert.fill(0.0);
                for (k, &wk) in kernel.iter().enumerate() {
                    let row = &src[(centre + k - r) * w..][..w];
                    vert.iter_mut().zip(row).for_each(|(v, &s)| *v += wk * s);
                }
                let out_row = band.row_mut(oy).into_slice().expect("standard layout");
                for (ox, o) in out_row.iter_mut().enumerate() {
                    let cx = 2 * ox;
                    let mut acc = 0.0;
                    if cx >= r && cx + r < w {
                        for (k, &wk) in kernel.iter().enumerate() {
                            acc += wk * vert[cx + k - r];
                        }
                    } else {
                        for (k, &wk) in kernel.iter().enumerate() {
                            let sx = (cx as i64 + k as i64 - r as i64).clamp(0, w as i64 - 1);
                            acc += wk * vert[sx as usize];
                        }
                    }
                    *o = acc;
                }
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raster::Raster;

    #[test]
    fn levels_for_stops_at_min_side() {
        assert_eq!(PyramidParams::levels_for(1024, 1024, 128, 10), 4);
        assert_eq!(PyramidParams::levels_for(1024, 1024, 128, 2), 2);
        assert_eq!(PyramidParams::levels_for(100, 1000, 128, 10), 1);
    }

    #[test]
    fn reduce_keeps_constant_images_constant_and_halves_size() {
        let img = GrayF32::from_elem((33, 20), 0.25);
        let r = reduce(&img, 1.0);
        assert_eq!(r.dim(), (17, 10));
        assert!(r.iter().all(|&v| (v - 0.25).abs() < 1e-6));
    }

    #[test]
    fn reduce_from_u8_equals_reduce_from_its_luminance() {
        let w = 37;
        let h = 41;
        let samples: Vec<u8> = (0..w * h * 3).map(|i| (i * 37 % 251) as u8).collect();
        let img = AnyImage::U8(Raster::from_interleaved(w, h, 3, samples).unwrap());
        let direct = reduce(&img, 1.0);
        let via_f32 = reduce(&img.luminance(), 1.0);
        assert!(
            direct
                .iter()
                .zip(via_f32.iter())
                .all(|(a, b)| (a - b).abs() < 1e-6)
        );
    }

    #[test]
    fn reduce_keeps_even_pixel_centres() {
        // A linear ramp stays a ramp with the same values at the kept (even) pixels.
        let img = GrayF32::from_shape_fn((64, 64), |(y, x)| x as f32 + 2.0 * y as f32);
        let r = reduce(&img, 1.0);
        for oy in 5..27 {
            for ox in 5..27 {
                let expect = 2.0 * ox as f32 + 4.0 * oy as f32;
                assert!(
                    (r[[oy, ox]] - expect).abs() < 1e-3,
                    "{} vs {}",
                    r[[oy, ox]],
                    expect
                );
            }
        }
    }

    #[test]
    fn build_makes_requested_levels_and_honours_cancel() {
        let img = GrayF32::from_elem((64, 64), 1.0);
        let p = Pyramid::build(
            &img,
            &PyramidParams {
                levels: 4,
                sigma: 1.0,
            },
            &CancelToken::new(),
        )
        .unwrap();
        assert_eq!(p.reduced.len(), 3);
        assert_eq!(p.level(3).dim(), (8, 8));
        let cancel = CancelToken::new();
        cancel.cancel();
        assert!(matches!(
            Pyramid::build(&img, &PyramidParams::default(), &cancel),
            Err(Error::Cancelled)
        ));
    }
}
