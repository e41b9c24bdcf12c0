//! Dense displacement fields sampled on the fixed image's pixel grid.

use super::{RowMapper, Transform};
use crate::raster::{BilinearSampler, GrayF32};

/// A displacement `(u, v)` per fixed-image pixel: `T(x, y) = (x + u, y + v)`.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseField {
    /// x-displacement, shape `(height, width)`.
    pub u: GrayF32,
    /// y-displacement, shape `(height, width)`.
    pub v: GrayF32,
}

impl DenseField {
    /// A zero field.
    pub fn zeros(width: usize, height: usize) -> Self {
        Self {
            u: GrayF32::zeros((height, width)),
            v: GrayF32::zeros((height, width)),
        }
    }
    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.u.ncols()
    }
    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.u.nrows()
    }
}

impl Transform for DenseField {
    /// Between pixels the displacement is interpolated bilinearly; outside, the nearest edge
    /// value is used.
    fn map_point(&self, x: f64, y: f64) -> [f64; 2] {
        let cx = x.clamp(0.0, (self.width() - 1) as f64);
        let cy = y.clamp(0.0, (self.height() - 1) as f64);
        let u = BilinearSampler::new(self.u.view())
            .value(cx, cy)
            .unwrap_or(0.0);
        let v = BilinearSampler::new(self.v.view())
            .value(cx, cy)
            .unwrap_or(0.0);
        [x + u as f64, y + v as f64]
    }

    fn row_mapper(&self, x0: usize, width: usize) -> Box<dyn RowMapper + '_> {
        Box::new(DenseRows { f: self, x0, width })
    }
}

struct DenseRows<'a> {
    f: &'a DenseField,
    x0: usize,
    width: usize,
}

impl RowMapper for DenseRows<'_> {
    fn map_row(&self, y: usize, xs: &mut [f64], ys: &mut [f64]) {
        let yc = y.min(self.f.height() - 1);
        let (u, v) = (self.f.u.row(yc), self.f.v.row(yc));
        for i in 0..self.width.min(xs.len()) {
            let x = self.x0 + i;
            let xc = x.min(self.f.width() - 1);
            xs[i] = x as f64 + u[xc] as f64;
            ys[i] = y as f64 + v[xc] as f64;
        }
    }
}
