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

    fn as_dense(&self) -> Option<(&DenseField, f64)> {
        Some((self, 1.0))
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

/// A displacement field stored at a coarser pyramid level: `T(p) = p + s * w(p / s)` with `w`
/// interpolated bilinearly on its own grid and `s = 2^level`. Pyramid level `l` has its pixel
/// centres at full-resolution coordinates `2^l * (x, y)`, so no offset is needed.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaledField {
    /// The field on the coarse grid, in coarse pixels.
    pub field: DenseField,
    /// Full-resolution pixels per coarse pixel.
    pub scale: f64,
}

impl ScaledField {
    fn displacement(&self, x: f64, y: f64) -> [f64; 2] {
        let (w, h) = (self.field.width(), self.field.height());
        let cx = (x / self.scale).clamp(0.0, (w - 1) as f64);
        let cy = (y / self.scale).clamp(0.0, (h - 1) as f64);
        let u = BilinearSampler::new(self.field.u.view()).value(cx, cy);
        let v = BilinearSampler::new(self.field.v.view()).value(cx, cy);
        [
            self.scale * u.unwrap_or(0.0) as f64,
            self.scale * v.unwrap_or(0.0) as f64,
        ]
    }
}

impl Transform for ScaledField {
    fn map_point(&self, x: f64, y: f64) -> [f64; 2] {
        let [u, v] = self.displacement(x, y);
        [x + u, y + v]
    }

    fn as_dense(&self) -> Option<(&DenseField, f64)> {
        Some((&self.field, self.scale))
    }

    fn row_mapper(&self, x0: usize, width: usize) -> Box<dyn RowMapper + '_> {
        Box::new(ScaledRows { f: self, x0, width })
    }
}

struct ScaledRows<'a> {
    f: &'a ScaledField,
    x0: usize,
    width: usize,
}

impl RowMapper for ScaledRows<'_> {
    fn map_row(&self, y: usize, xs: &mut [f64], ys: &mut [f64]) {
        let field = &self.f.field;
        let (w, h) = (field.width(), field.height());
        let s = self.f.scale;
        let cy = (y as f64 / s).clamp(0.0, (h - 1) as f64);
        let j0 = cy.floor() as usize;
        let j1 = (j0 + 1).min(h - 1);
        let fy = (cy - j0 as f64) as f32;
        let (u0, u1) = (field.u.row(j0), field.u.row(j1));
        let (v0, v1) = (field.v.row(j0), field.v.row(j1));
        for i in 0..self.width.min(xs.len()) {
            let x = self.x0 + i;
            let cx = (x as f64 / s).clamp(0.0, (w - 1) as f64);
            let k0 = cx.floor() as usize;
            let k1 = (k0 + 1).min(w - 1);
            let fx = (cx - k0 as f64) as f32;
            let lerp2 = |a0: f32, a1: f32, b0: f32, b1: f32| {
                let top = a0 + fx * (a1 - a0);
                let bottom = b0 + fx * (b1 - b0);
                top + fy * (bottom - top)
            };
            let u = lerp2(u0[k0], u0[k1], u1[k0], u1[k1]);
            let v = lerp2(v0[k0], v0[k1], v1[k0], v1[k1]);
            xs[i] = x as f64 + s * u as f64;
            ys[i] = y as f64 + s * v as f64;
        }
    }
}

/// A dense field stored at `scale` full-resolution pixels per field pixel, as a transform: the
/// field itself on the fixed grid (`scale` 1), else a [`ScaledField`].
pub fn dense_transform(field: DenseField, scale: f64) -> Box<dyn Transform> {
    if scale == 1.0 {
        Box::new(field)
    } else {
        Box::new(ScaledField { field, scale })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_field_rows_agree_with_points_and_scale_the_displacement() {
        let mut coarse = DenseField::zeros(9, 7);
        for ((j, i), u) in coarse.u.indexed_iter_mut() {
            *u = 0.3 * i as f32 - 0.1 * j as f32;
        }
        coarse.v.fill(1.5);
        let field = ScaledField {
            field: coarse,
            scale: 4.0,
        };
        // A linear coarse field is reproduced exactly, times the scale.
        let p = field.map_point(10.0, 6.0);
        assert!((p[0] - (10.0 + 4.0 * (0.3 * 2.5 - 0.1 * 1.5))).abs() < 1e-5);
        assert!((p[1] - (6.0 + 6.0)).abs() < 1e-6);
        let (mut xs, mut ys) = (vec![0.0; 36], vec![0.0; 36]);
        for y in [0, 5, 27, 40] {
            field.row_mapper(0, 36).map_row(y, &mut xs, &mut ys);
            for x in 0..36 {
                let q = field.map_point(x as f64, y as f64);
                assert!((q[0] - xs[x]).abs() < 1e-4 && (q[1] - ys[x]).abs() < 1e-4);
            }
        }
    }
}
