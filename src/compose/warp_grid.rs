//! A transform sampled on a coarse grid, for warping layers on the fly (viewer and export).

use crate::io::{TransformFile, TransformSpec};
use crate::transform::Transform;
use rayon::prelude::*;

/// The most grid points a side of a registration's grid for the viewer and the export.
pub const VIEW_GRID_MAX_SIDE: usize = 2048;

/// Displacements `T(p) - p` at the grid points `p = scale * (i, j)` of the fixed image, in
/// full-resolution pixels; between points they are interpolated bilinearly, beyond the grid
/// the nearest edge is used. For a dense field stored at the same scale this is exact.
#[derive(Debug, Clone, PartialEq)]
pub struct WarpGrid {
    /// Grid points across.
    pub width: usize,
    /// Grid points down.
    pub height: usize,
    /// Full-resolution pixels between grid points (a power of two).
    pub scale: f64,
    /// `(dx, dy)` per grid point, row-major.
    pub displacement: Vec<[f32; 2]>,
}

impl WarpGrid {
    /// Samples `t` over a `fixed = [width, height]` image on the finest power-of-two grid whose
    /// sides are at most `max_side` points (at least `min_scale` pixels apart).
    pub fn of(t: &dyn Transform, fixed: [usize; 2], min_scale: usize, max_side: usize) -> Self {
        let mut scale = min_scale.max(1).next_power_of_two();
        let points = |n: usize, s: usize| (n.max(1) - 1).div_ceil(s) + 1;
        while points(fixed[0], scale).max(points(fixed[1], scale)) > max_side.max(2) {
            scale *= 2;
        }
        let (width, height) = (points(fixed[0], scale), points(fixed[1], scale));
        let s = scale as f64;
        let mut displacement = vec![[0f32; 2]; width * height];
        displacement
            .par_chunks_mut(width)
            .enumerate()
            .for_each(|(j, row)| {
                for (i, d) in row.iter_mut().enumerate() {
                    let (x, y) = (i as f64 * s, j as f64 * s);
                    let [mx, my] = t.map_point(x, y);
                    *d = [(mx - x) as f32, (my - y) as f32];
                }
            });
        Self {
            width,
            height,
            scale: s,
            displacement,
        }
    }

    /// `transform`, described by `spec`, on a grid of at most [`VIEW_GRID_MAX_SIDE`] points a
    /// side over a `fixed = [width, height]` image (at the field's own scale for a dense field,
    /// so that it is exact).
    pub fn of_registration(
        transform: &dyn Transform,
        spec: &TransformSpec,
        fixed: [usize; 2],
    ) -> Self {
        let min_scale = match spec {
            TransformSpec::Dense { scale, .. } => *scale as usize,
            TransformSpec::Composed { steps } => steps
                .iter()
                .find_map(|s| match s {
                    // A turned-back fast or demons run stores its field, then the turn.
                    TransformSpec::Velocity { scale, .. } | TransformSpec::Dense { scale, .. } => {
                        Some(*scale as usize)
                    }
                    _ => None,
                })
                .unwrap_or(4),
            _ => 4,
        };
        Self::of(transform, fixed, min_scale, VIEW_GRID_MAX_SIDE)
    }

    /// The transform saved in a `transform.json`, as [`WarpGrid::of_registration`] samples it.
    pub fn from_transform_file(path: &std::path::Path) -> crate::Result<Self> {
        let file = TransformFile::load(path)?;
        let base = path.parent().unwrap_or(std::path::Path::new("."));
        let transform = file.build(base)?;
        Ok(Self::of_registration(
            transform.as_ref(),
            &file.transform,
            [file.fixed.width, file.fixed.height],
        ))
    }

    /// `T(p)`: where fixed-image point `p` lands in the warped layer.
    #[inline]
    pub fn map(&self, p: [f64; 2]) -> [f64; 2] {
        let cx = (p[0] / self.scale).clamp(0.0, (self.width - 1) as f64);
        let cy = (p[1] / self.scale).clamp(0.0, (self.height - 1) as f64);
        let (i0, j0) = (cx as usize, cy as usize); // non-negative: truncation is the floor
        let (i1, j1) = ((i0 + 1).min(self.width - 1), (j0 + 1).min(self.height - 1));
        let (fx, fy) = ((cx - i0 as f64) as f32, (cy - j0 as f64) as f32);
        let d = |i: usize, j: usize| self.displacement[j * self.width + i];
        let mut out = [0f64; 2];
        for (k, o) in out.iter_mut().enumerate() {
            let top = d(i0, j0)[k] + fx * (d(i1, j0)[k] - d(i0, j0)[k]);
            let bottom = d(i0, j1)[k] + fx * (d(i1, j1)[k] - d(i0, j1)[k]);
            *o = p[k] + (top + fy * (bottom - top)) as f64;
        }
        out
    }
}

/// The grid is a transform in its own right: what the viewer draws, points follow.
impl Transform for WarpGrid {
    fn map_point(&self, x: f64, y: f64) -> [f64; 2] {
        self.map([x, y])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::Affine;

    #[test]
    fn an_affine_is_reproduced_between_grid_points() {
        let t = Affine::similarity(0.05, 1.02, [3.0, -2.0], [200.0, 150.0]);
        let grid = WarpGrid::of(&t, [400, 300], 1, 64);
        assert_eq!(grid.scale, 8.0);
        assert_eq!([grid.width, grid.height], [51, 39]);
        for p in [[0.0, 0.0], [123.4, 77.7], [399.0, 299.0]] {
            let (a, b) = (grid.map(p), t.map_point(p[0], p[1]));
            assert!(
                (a[0] - b[0]).abs() < 1e-3 && (a[1] - b[1]).abs() < 1e-3,
                "{a:?} {b:?}"
            );
        }
    }
}
