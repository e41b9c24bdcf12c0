//! Bands of rows of a pair, read as f64 luminance with the halo a window needs, so that maps of
//! any size are computed with bounded memory.

use crate::raster::{AnyImage, Band, Raster, Sample, luminance_f64};
use crate::transform::Transform;
use crate::transform::warp::{Interpolation, warp_band};
use crate::{Error, Result};
use ndarray::Array2;
use rayon::prelude::*;

/// The two images of a pair on the fixed image's grid: the moving image either already resampled
/// there (a `warped.tif`) or warped band by band through a transform.
#[derive(Debug, Clone, Copy)]
pub struct PairSource<'a> {
    /// The fixed image.
    pub fixed: &'a AnyImage,
    /// The moving image.
    pub moving: &'a AnyImage,
    /// Maps fixed pixels into `moving`; `None` when `moving` is already on the fixed grid.
    pub transform: Option<&'a dyn Transform>,
    /// Pixels to score (on the fixed grid); `None`: all.
    pub mask: Option<&'a Array2<bool>>,
}

/// Rows `y .. y + rows` of a pair with `halo_above` rows before and `halo_below` after (the
/// rows a window around them reaches, clipped to the image).
#[derive(Debug, Clone)]
pub struct BandRows {
    /// Image width.
    pub width: usize,
    /// First output row in the image.
    pub y: usize,
    /// Output rows.
    pub rows: usize,
    /// Loaded rows above the first output row.
    pub halo_above: usize,
    /// Fixed luminance of the loaded rows, row-major.
    pub fixed: Vec<f64>,
    /// Moving luminance of the loaded rows, on the fixed grid.
    pub moving: Vec<f64>,
    /// Per output pixel: inside the mask and (with a transform) mapped inside the moving image.
    pub valid: Vec<bool>,
}

impl BandRows {
    /// Rows held (output rows and halos).
    pub fn loaded_rows(&self) -> usize {
        self.fixed.len() / self.width
    }
}

impl PairSource<'_> {
    /// Width and height of the fixed grid.
    pub fn size(&self) -> (usize, usize) {
        (self.fixed.width(), self.fixed.height())
    }

    /// Checks that the images (and the mask) fit together.
    pub fn validate(&self) -> Result<()> {
        let (w, h) = self.size();
        if self.transform.is_none() && (self.moving.width(), self.moving.height()) != (w, h) {
            return Err(Error::InvalidArgument(format!(
                "the moving image is {} x {} but the fixed image is {w} x {h}; without a transform the two must share one grid (a fixed image and its warped.tif)",
                self.moving.width(),
                self.moving.height()
            )));
        }
        if let Some(m) = self.mask
            && m.dim() != (h, w)
        {
            return Err(Error::InvalidArgument(format!(
                "the mask is {} x {} but the fixed image is {w} x {h}",
                m.ncols(),
                m.nrows()
            )));
        }
        Ok(())
    }

    /// Per pixel of rows `y .. y + rows`: inside the mask and, with a transform, mapped inside
    /// the moving image.
    pub fn valid(&self, y: usize, rows: usize) -> Vec<bool> {
        let w = self.fixed.width();
        let mut valid = vec![true; w * rows];
        if let Some(t) = self.transform {
            mark_outside(self.moving, t, y, w, &mut valid);
        }
        if let Some(mask) = self.mask {
            for (r, v) in valid.chunks_exact_mut(w).enumerate() {
                for (x, v) in v.iter_mut().enumerate() {
                    *v &= mask[[y + r, x]];
                }
            }
        }
        valid
    }

    /// Loads output rows `y .. y + rows` with `halo` rows either side (clipped).
    pub fn load(&self, y: usize, rows: usize, halo: usize) -> BandRows {
        let (w, h) = self.size();
        let top = y.saturating_sub(halo);
        let bottom = (y + rows + halo).min(h);
        let loaded = bottom - top;
        let luminance = |image: &AnyImage, rows: &mut [f64]| {
            rows.par_chunks_exact_mut(w)
                .enumerate()
                .for_each(|(r, out)| image.luminance_row_f64(top + r, out));
        };
        let mut fixed = vec![0.0; w * loaded];
        luminance(self.fixed, &mut fixed);
        let mut moving = vec![0.0; w * loaded];
        match self.transform {
            None => luminance(self.moving, &mut moving),
            Some(t) => {
                let band = Band {
                    y: top,
                    rows: loaded,
                };
                crate::with_raster!(self.moving, r => warp_luminance(r, t, band, w, &mut moving));
            }
        }
        let valid = self.valid(y, rows);
        BandRows {
            width: w,
            y,
            rows,
            halo_above: y - top,
            fixed,
            moving,
            valid,
        }
    }
}

/// Warps a band of rows through `t` (linear interpolation, in the moving image's own depth, as
/// `warped.tif` would hold it) and writes its luminance.
fn warp_luminance<T: Sample>(
    src: &Raster<T>,
    t: &dyn Transform,
    band: Band,
    width: usize,
    out: &mut [f64],
) {
    let c = src.channels();
    let mapper = t.row_mapper(0, width);
    let mut samples = vec![T::default(); band.rows * width * c];
    warp_band(
        src,
        mapper.as_ref(),
        band,
        width,
        Interpolation::Linear,
        &mut samples,
    );
    samples
        .par_chunks_exact(width * c)
        .zip(out.par_chunks_exact_mut(width))
        .for_each(|(row, o)| luminance_f64(row, c, o));
}

/// Clears `valid` where `t` maps a pixel outside the moving image (by more than half a pixel).
fn mark_outside(moving: &AnyImage, t: &dyn Transform, y: usize, w: usize, valid: &mut [bool]) {
    let (max_x, max_y) = (moving.width() as f64 - 0.5, moving.height() as f64 - 0.5);
    let mapper = t.row_mapper(0, w);
    valid.par_chunks_exact_mut(w).enumerate().for_each_init(
        || (vec![0.0; w], vec![0.0; w]),
        |(xs, ys), (r, v)| {
            mapper.map_row(y + r, xs, ys);
            for ((v, &qx), &qy) in v.iter_mut().zip(&*xs).zip(&*ys) {
                *v &= qx >= -0.5 && qy >= -0.5 && qx <= max_x && qy <= max_y;
            }
        },
    );
}
