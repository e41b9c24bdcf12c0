//! Control points that nothing in the fixed image constrains (a clean, empty slide around a
//! section): after each B-spline level their coefficients are replaced by a membrane fill from
//! the constrained ones, so the field there follows its neighbours instead of the noise that
//! moved them.

use crate::raster::GrayF32;
use crate::transform::BSplineTransform;
use ndarray::Array2;
use rayon::prelude::*;

/// The fixed image's squared gradient measured on the finest registered level (where the
/// noise of a scanned or photographed flat region shows, and a clean slide's absence of it),
/// averaged down to [`LEVELS_COARSER`] levels below each B-spline level: `levels[k]` is pyramid
/// level `finest + LEVELS_COARSER + k`, each pixel the mean over its block (of every other
/// pixel of the finest level along each axis: a quarter of the work for an estimate of the
/// same mean that the control points' wide supports average further). It holds
/// a sixteenth of the finest level's pixels and a third more.
pub struct GradientEnergy {
    finest: usize,
    levels: Vec<Array2<f32>>,
}

/// The mean of `value` over block `[y, x]` of `block x block` pixels of an `(h, w)` image
/// (clipped at its edges), every `step`-th pixel along each axis, summed row by row.
fn block_mean(
    [y, x]: [usize; 2],
    block: usize,
    step: usize,
    (h, w): (usize, usize),
    value: impl Fn(usize, usize) -> f32,
) -> f32 {
    let xs = (block * x..(block * x + block).min(w)).step_by(step);
    let (sum, n) = (block * y..(block * y + block).min(h))
        .step_by(step)
        .flat_map(|yy| xs.clone().map(move |xx| (yy, xx)))
        .fold((0.0f32, 0.0f32), |(s, n), (yy, xx)| {
            (s + value(yy, xx), n + 1.0)
        });
    sum / n
}

/// How many levels coarser than a B-spline level its control points' information is measured
/// ([`GradientEnergy`]): the grid's spacing is at least 16 of the level's pixels, so still 4 of
/// these.
const LEVELS_COARSER: usize = 2;

impl GradientEnergy {
    /// From the fixed image's finest registered level `finest` (pyramid level) with its mask,
    /// for B-spline levels down to `coarsest`.
    pub fn new(
        finest_image: &GrayF32,
        mask: Option<&Array2<bool>>,
        finest: usize,
        coarsest: usize,
    ) -> Self {
        let (h, w) = finest_image.dim();
        let energy = |y: usize, x: usize| {
            if x == 0 || y == 0 || x + 1 >= w || y + 1 >= h || mask.is_some_and(|m| !m[[y, x]]) {
                return 0.0;
            }
            let gx = 0.5 * (finest_image[[y, x + 1]] - finest_image[[y, x - 1]]);
            let gy = 0.5 * (finest_image[[y + 1, x]] - finest_image[[y - 1, x]]);
            gx * gx + gy * gy
        };
        let block = 1usize << LEVELS_COARSER;
        let mut first = Array2::<f32>::zeros((h.div_ceil(block), w.div_ceil(block)));
        first
            .axis_iter_mut(ndarray::Axis(0))
            .into_par_iter()
            .enumerate()
            .for_each(|(y, mut row)| {
                for (x, out) in row.iter_mut().enumerate() {
                    *out = block_mean([y, x], block, 2, (h, w), energy);
                }
            });
        let mut levels = vec![first];
        while finest + levels.len() <= coarsest {
            let last = levels.last().expect("one level at least");
            let (h, w) = last.dim();
            let next = Array2::from_shape_fn((h.div_ceil(2), w.div_ceil(2)), |(y, x)| {
                block_mean([y, x], 2, 1, (h, w), |yy, xx| last[[yy, xx]])
            });
            levels.push(next);
        }
        Self { finest, levels }
    }

    /// The energy image for B-spline level `level` and the scale of the level it is held at.
    fn at(&self, level: usize) -> (&Array2<f32>, f64) {
        let k = level.saturating_sub(self.finest).min(self.levels.len() - 1);
        (
            &self.levels[k],
            (1u64 << (self.finest + LEVELS_COARSER + k)) as f64,
        )
    }

    /// How much the fixed image has to say about each control point of `grid` on pyramid level
    /// `level`: the mean gradient energy weighted by the point's squared cubic weight (the
    /// diagonal of a sum-of-squares metric's Gauss–Newton matrix, up to the moving image's
    /// gradient, over the same with a unit gradient, so that a point at the image's edge, which
    /// few pixels reach, counts as much as one inside). Shape `(ny, nx)` like the
    /// coefficients, 0 for points no pixel reaches.
    pub fn control_point_information(&self, grid: &BSplineTransform, level: usize) -> Array2<f64> {
        let (energy, scale) = self.at(level);
        let (h, w) = energy.dim();
        let [nx, ny] = grid.grid();
        // Fixed bands of rows, summed in order: the same sums on any number of threads.
        let band = (h / 64).max(16);
        let partials: Vec<(Array2<f64>, Array2<f64>)> = (0..h.div_ceil(band))
            .into_par_iter()
            .map(|b| {
                let mut info = Array2::<f64>::zeros((ny, nx));
                let mut reach = Array2::<f64>::zeros((ny, nx));
                for y in b * band..((b + 1) * band).min(h) {
                    for x in 0..w {
                        let at = |v: usize| (v as f64 + 0.5) * scale - 0.5;
                        let ([ix, iy], wx, wy) = grid.support(at(x), at(y));
                        let e = f64::from(energy[[y, x]]);
                        for (j, wy) in wy.iter().enumerate() {
                            for (i, wx) in wx.iter().enumerate() {
                                let w2 = (wx * wy) * (wx * wy);
                                info[[iy + j, ix + i]] += e * w2;
                                reach[[iy + j, ix + i]] += w2;
                            }
                        }
                    }
                }
                (info, reach)
            })
            .collect();
        let (info, reach): (Array2<f64>, Array2<f64>) = partials.into_iter().fold(
            (Array2::zeros((ny, nx)), Array2::zeros((ny, nx))),
            |(info, reach), (i, r)| (info + i, reach + r),
        );
        ndarray::Zip::from(&info)
            .and(&reach)
            .map_collect(|&i, &r| if r > 0.0 { i / r } else { 0.0 })
    }
}

/// The control points constrained at least `share` as strongly as the [`REFERENCE_QUANTILE`]
/// of the points some pixel reaches; `None` when every such point is (nothing to fill). Points
/// no pixel reaches are not constrained: they move nothing at this level, but the next level's
/// refinement mixes them into points that do, so they are filled too.
pub fn constrained(information: &Array2<f64>, share: f64) -> Option<Array2<bool>> {
    let mut sorted: Vec<f64> = information.iter().copied().filter(|&i| i > 0.0).collect();
    sorted.sort_by(f64::total_cmp);
    let reference =
        *sorted.get(((sorted.len() as f64 - 1.0) * REFERENCE_QUANTILE).round() as usize)?;
    let threshold = share * reference;
    information
        .iter()
        .any(|&i| i > 0.0 && i < threshold)
        .then(|| information.mapv(|i| i >= threshold && i > 0.0))
}

/// The share of the reference information below which a control point is filled.
///
/// Measured with the energy of the finest level (`docs/benchmarks.md`): the rat kidney's clean
/// slide sits at 10⁻⁴–10⁻³ of the reference, and the sections' edges between that and 10⁻²;
/// the flat parts of the generated pairs (the cameraman's sky, the mosaic's plain tiles) hold
/// their added noise, 0.0097 and more. On the kidney's 14 scale and overlap cases every share
/// from 0.006 to 0.1 brought the largest mean EPE from 0.73 px (no fill) to 0.08–0.16 px, 0.004
/// left two above 0.3 px; on the 1024 matrix shares of 0.05 and more filled the noisy flat
/// parts and cost the cameraman and the mosaic up to 3.4× their EPE, 0.008 changed nothing.
/// Hence the middle of that window.
pub const SHARE: f64 = 0.007;

/// The quantile of the control points' information that [`constrained`] compares with: a
/// textured point's, however small the textured part of the image.
pub const REFERENCE_QUANTILE: f64 = 0.9;

/// Replaces the coefficients of the points not `constrained` by the membrane (Laplace) fill
/// from the constrained ones: each the mean of its grid neighbours.
pub fn fill_unconstrained(bspline: &mut BSplineTransform, constrained: &Array2<bool>) {
    for coefficients in [&mut bspline.u, &mut bspline.v] {
        membrane_fill(coefficients, constrained);
    }
}

/// Successive over-relaxation on the free points (Neumann at the grid's edges) until the
/// largest change is below a millionth of the largest constrained coefficient: with the
/// relaxation factor that is optimal for the grid's size it takes sweeps in proportion to the
/// grid's side, not to its square as plain Gauss–Seidel would.
fn membrane_fill(c: &mut Array2<f64>, fixed: &Array2<bool>) {
    let (ny, nx) = c.dim();
    let largest = c
        .iter()
        .zip(fixed)
        .filter(|&(_, &f)| f)
        .fold(0.0f64, |m, (v, _)| m.max(v.abs()))
        .max(1e-12);
    let free: Vec<(usize, usize)> = fixed
        .indexed_iter()
        .filter(|&(_, &f)| !f)
        .map(|(at, _)| at)
        .collect();
    let side = nx.max(ny) as f64;
    let relaxation = 2.0 / (1.0 + (std::f64::consts::PI / side).sin());
    for _ in 0..MAX_SWEEPS_PER_POINT * nx.max(ny) {
        let mut change = 0.0f64;
        for &(y, x) in &free {
            let mut sum = 0.0;
            let mut n = 0.0;
            for (dy, dx) in [(-1isize, 0isize), (1, 0), (0, -1), (0, 1)] {
                let (yy, xx) = (y as isize + dy, x as isize + dx);
                if yy >= 0 && xx >= 0 && (yy as usize) < ny && (xx as usize) < nx {
                    sum += c[[yy as usize, xx as usize]];
                    n += 1.0;
                }
            }
            let step = relaxation * (sum / n - c[[y, x]]);
            change = change.max(step.abs());
            c[[y, x]] += step;
        }
        if change < 1e-6 * largest {
            break;
        }
    }
}

/// Sweeps of [`membrane_fill`] at most, per grid point along the grid's longer side.
const MAX_SWEEPS_PER_POINT: usize = 50;

#[cfg(test)]
mod tests {
    use super::*;

    /// Noise on the left half of a 256 × 192 image, flat on the right.
    fn half_textured() -> GrayF32 {
        let mut rng = crate::rng::SplitMix64::new(3);
        GrayF32::from_shape_fn((192, 256), |(_, x)| {
            if x < 128 {
                rng.uniform(0.0, 1.0) as f32
            } else {
                0.5
            }
        })
    }

    fn noise(seed: u64) -> GrayF32 {
        let mut rng = crate::rng::SplitMix64::new(seed);
        GrayF32::from_shape_fn((192, 256), |_| rng.uniform(0.0, 1.0) as f32)
    }

    /// The information of `grid`'s points on `image` (the finest level, level 0).
    fn information(
        image: &GrayF32,
        mask: Option<&Array2<bool>>,
        grid: &BSplineTransform,
    ) -> Array2<f64> {
        GradientEnergy::new(image, mask, 0, 0).control_point_information(grid, 0)
    }

    /// Points over the texture (left of x = 128) are constrained, those over the rest are not
    /// (a point's support reaches two spacings either side; point i sits at x = 32 (i - 1)).
    fn assert_filled_right_of_the_texture(info: &Array2<f64>) {
        let constrained = constrained(info, SHARE).expect("a flat part to fill");
        for (y, row) in constrained.rows().into_iter().enumerate() {
            for (i, &c) in row.iter().enumerate() {
                let x = 32.0 * (i as f64 - 1.0);
                if x <= 128.0 - 32.0 {
                    assert!(c, "point ({i}, {y}) at x = {x} is over texture");
                }
                if x >= 128.0 + 64.0 {
                    assert!(!c, "point ({i}, {y}) at x = {x} is over the rest");
                }
            }
        }
    }

    #[test]
    fn points_over_a_flat_part_are_unconstrained_and_those_over_texture_are_not() {
        let grid = BSplineTransform::new(256, 192, [32.0, 32.0]);
        assert_filled_right_of_the_texture(&information(&half_textured(), None, &grid));
    }

    #[test]
    fn nothing_is_filled_on_texture_edge_to_edge_even_at_the_grids_rim() {
        // A refined grid reaches past the image, so some points no pixel reaches.
        let grid = BSplineTransform::new(256, 192, [80.0, 80.0]).refined();
        let info = information(&noise(4), None, &grid);
        assert!(info.iter().any(|&i| i == 0.0), "points beyond the image");
        assert_eq!(constrained(&info, SHARE), None);
    }

    #[test]
    fn masked_pixels_constrain_nothing() {
        let mask = Array2::from_shape_fn((192, 256), |(_, x)| x < 128);
        let grid = BSplineTransform::new(256, 192, [32.0, 32.0]);
        assert_filled_right_of_the_texture(&information(&noise(5), Some(&mask), &grid));
    }

    #[test]
    fn a_coarser_level_reads_the_finest_levels_energy_averaged_down() {
        // Noise on the finest level that its own 2x2 means would almost smooth away: the
        // coarse level's information is still the fine level's energy, at every level.
        let energy = GradientEnergy::new(&noise(6), None, 0, 3);
        let fine = BSplineTransform::new(256, 192, [32.0, 32.0]);
        let coarse = BSplineTransform::new(256, 192, [128.0, 128.0]);
        let mean = |info: Array2<f64>| {
            let reached: Vec<f64> = info.iter().copied().filter(|&i| i > 0.0).collect();
            reached.iter().sum::<f64>() / reached.len() as f64
        };
        let (at_0, at_3) = (
            mean(energy.control_point_information(&fine, 0)),
            mean(energy.control_point_information(&coarse, 3)),
        );
        assert!((at_3 / at_0 - 1.0).abs() < 0.1, "{at_0} against {at_3}");
    }

    #[test]
    fn the_fill_keeps_constrained_points_and_is_linear_between_two_columns() {
        let mut grid = BSplineTransform::new(256, 192, [32.0, 32.0]);
        let [nx, ny] = grid.grid();
        grid.u.column_mut(0).fill(1.0);
        grid.u.column_mut(nx - 1).fill(1.0 + (nx - 1) as f64);
        grid.v.fill(7.0);
        grid.v[[ny / 2, nx / 2]] = -50.0;
        let edges = Array2::from_shape_fn((ny, nx), |(_, x)| x == 0 || x == nx - 1);
        fill_unconstrained(&mut grid, &edges);
        for ((_, x), &u) in grid.u.indexed_iter() {
            assert!((u - (1.0 + x as f64)).abs() < 1e-3, "u at column {x}: {u}");
        }
        assert!(
            grid.v.iter().all(|&v| (v - 7.0).abs() < 1e-3),
            "{:?}",
            grid.v
        );
    }
}
