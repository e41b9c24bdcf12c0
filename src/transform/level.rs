//! A full-resolution transform seen from a pyramid level, for maps and scores computed on a
//! level instead of the whole image.

use super::{RowMapper, Transform};

/// `T` seen from pyramid level `level`: `p -> T(p * s) / s` with `s = 2^level` (level pixel
/// centres sit at full-resolution `s * p`).
#[derive(Debug)]
pub struct AtLevel<'a> {
    transform: &'a dyn Transform,
    scale: f64,
}

impl<'a> AtLevel<'a> {
    /// `transform` (full-resolution coordinates) on pyramid level `level`.
    pub fn new(transform: &'a dyn Transform, level: usize) -> Self {
        Self {
            transform,
            scale: (1u64 << level) as f64,
        }
    }
}

impl Transform for AtLevel<'_> {
    fn map_point(&self, x: f64, y: f64) -> [f64; 2] {
        let [qx, qy] = self.transform.map_point(x * self.scale, y * self.scale);
        [qx / self.scale, qy / self.scale]
    }

    /// The full-resolution transform's own row mapper (a dense field's reads its rows instead
    /// of interpolating point by point), on every `scale`-th pixel of every `scale`-th row.
    fn row_mapper(&self, x0: usize, width: usize) -> Box<dyn RowMapper + '_> {
        let step = self.scale as usize;
        if step == 1 {
            return self.transform.row_mapper(x0, width);
        }
        let full_width = width.saturating_sub(1) * step + 1;
        Box::new(LevelRows {
            full: self.transform.row_mapper(x0 * step, full_width),
            full_width,
            step,
            scale: self.scale,
            width,
        })
    }
}

/// [`AtLevel`]'s rows: full-resolution rows subsampled and scaled down.
struct LevelRows<'a> {
    full: Box<dyn RowMapper + 'a>,
    full_width: usize,
    step: usize,
    scale: f64,
    width: usize,
}

impl RowMapper for LevelRows<'_> {
    fn map_row(&self, y: usize, xs: &mut [f64], ys: &mut [f64]) {
        let (mut full_xs, mut full_ys) = (vec![0.0; self.full_width], vec![0.0; self.full_width]);
        self.full.map_row(y * self.step, &mut full_xs, &mut full_ys);
        for i in 0..self.width.min(xs.len()) {
            xs[i] = full_xs[i * self.step] / self.scale;
            ys[i] = full_ys[i * self.step] / self.scale;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::{DenseField, ScaledField};

    #[test]
    fn a_level_row_maps_like_the_level_point_by_point() {
        let mut field = DenseField::zeros(20, 12);
        for ((y, x), u) in field.u.indexed_iter_mut() {
            *u = (x as f32 * 0.37 + y as f32 * 0.11).sin() * 3.0;
        }
        for ((y, x), v) in field.v.indexed_iter_mut() {
            *v = (x as f32 * 0.23 - y as f32 * 0.19).cos() * 2.0;
        }
        let scaled = ScaledField {
            field: field.clone(),
            scale: 2.0,
        };
        let transforms: [&dyn Transform; 2] = [&field, &scaled];
        for transform in transforms {
            for level in 0..3 {
                let at_level = AtLevel::new(transform, level);
                let (x0, width) = (1, 7);
                let mapper = at_level.row_mapper(x0, width);
                let (mut xs, mut ys) = (vec![0.0; width], vec![0.0; width]);
                for y in 0..5 {
                    mapper.map_row(y, &mut xs, &mut ys);
                    for i in 0..width {
                        let [px, py] = at_level.map_point((x0 + i) as f64, y as f64);
                        // A scaled field's rows interpolate in f32, its points in the sampler's
                        // own arithmetic: the same bilinear value to f32 rounding.
                        assert!((xs[i] - px).abs() < 1e-5 && (ys[i] - py).abs() < 1e-5);
                    }
                }
            }
        }
    }
}
