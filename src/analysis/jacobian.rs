//! The Jacobian determinant of a transform and the checks built on it: folding (det ≤ 0), the
//! spread of log|J|, and extreme stretch, which is what a discontinuity in a field looks like
//! (a region locked one period off on a repeating pattern ends in a band of huge stretch).

use super::flags::{self, BlockGrid, Flag};
use crate::Result;
use crate::job::CancelToken;
use crate::transform::{DenseField, Transform};
use rayon::prelude::*;

/// A stretch (largest singular value of the Jacobian) above this, or a squeeze (smallest)
/// below its inverse, is extreme: smooth deformations of tissue, fabric or scenes stay well
/// inside (a 180 px smooth warp of a 2000 px image stretches by about 1.3).
pub const EXTREME_STRETCH: f64 = 3.0;

/// Samples of the Jacobian map on the longer side at most, for transforms evaluated
/// analytically (dense fields use their own grid).
pub const MAX_SIDE: usize = 4096;

/// What `jacobian.json` holds.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JacobianReport {
    /// Samples across.
    pub width: usize,
    /// Samples down.
    pub height: usize,
    /// Fixed-image pixels between samples.
    pub step: f64,
    /// How the Jacobian was found: `analytic` or `finite differences (dense field)`.
    pub method: String,
    /// Smallest determinant.
    pub min: f64,
    /// Largest determinant.
    pub max: f64,
    /// Share of samples with det ≤ 0.
    pub folded_fraction: f64,
    /// Standard deviation of ln(det) over the unfolded samples.
    pub std_log: f64,
    /// Largest stretch (singular value of the Jacobian).
    pub stretch_max: f64,
    /// Folded regions and regions of extreme stretch.
    pub flags: Vec<Flag>,
}

/// The determinant map (row-major, `width x height` samples) and its report.
#[derive(Debug, Clone)]
pub struct JacobianResult {
    /// Statistics and flags.
    pub report: JacobianReport,
    /// Determinant per sample.
    pub det: Vec<f32>,
    /// Largest singular value per sample.
    pub stretch: Vec<f32>,
}

/// The Jacobian of `t` over a `width x height` fixed grid: on a dense field's own grid (with the
/// four one-sided difference schemes, so a checkerboard fold that central differences average
/// away is still seen), else analytically every `step` pixels (`None`: so that the longer side
/// has at most [`MAX_SIDE`] samples).
pub fn jacobian_qc(
    t: &dyn Transform,
    width: usize,
    height: usize,
    step: Option<usize>,
    cancel: &CancelToken,
) -> Result<JacobianResult> {
    let (det, stretch, w, h, step, method) = if let Some((field, scale)) = t.as_dense() {
        let (det, stretch) = dense_jacobian(field);
        let method = "finite differences (dense field, four one-sided schemes)";
        (det, stretch, field.width(), field.height(), scale, method)
    } else {
        let step = step
            .unwrap_or_else(|| width.max(height).div_ceil(MAX_SIDE))
            .max(1);
        let (w, h) = (width.div_ceil(step), height.div_ceil(step));
        let mut det = vec![0f32; w * h];
        let mut stretch = vec![0f32; w * h];
        det.par_chunks_mut(w)
            .zip(stretch.par_chunks_mut(w))
            .enumerate()
            .try_for_each(|(y, (d, s))| {
                cancel.check()?;
                for x in 0..w {
                    let j = t.jacobian((x * step) as f64, (y * step) as f64);
                    d[x] = det2(j) as f32;
                    s[x] = singular_max(j) as f32;
                }
                Ok::<_, crate::Error>(())
            })?;
        (det, stretch, w, h, step as f64, "analytic")
    };
    let report = summarise(&det, &stretch, w, h, step, method);
    Ok(JacobianResult {
        report,
        det,
        stretch,
    })
}

fn det2(j: [[f64; 2]; 2]) -> f64 {
    j[0][0] * j[1][1] - j[0][1] * j[1][0]
}

/// The largest singular value of a 2 x 2 matrix.
fn singular_max(j: [[f64; 2]; 2]) -> f64 {
    singular_max_squared(j).sqrt()
}

/// The square of [`singular_max`]: the largest of several matrices' is the square root of the
/// largest of these, one root instead of one each (the root is monotone, so the same value).
fn singular_max_squared(j: [[f64; 2]; 2]) -> f64 {
    let s = j[0][0].powi(2) + j[0][1].powi(2) + j[1][0].powi(2) + j[1][1].powi(2);
    let d = det2(j);
    (s + (s * s - 4.0 * d * d).max(0.0).sqrt()) / 2.0
}

/// Per field pixel: the determinant (central differences, or the most negative of the four
/// one-sided schemes where any of them folds) and the largest stretch over the schemes.
fn dense_jacobian(field: &DenseField) -> (Vec<f32>, Vec<f32>) {
    let (w, h) = (field.width(), field.height());
    let mut det = vec![0f32; w * h];
    let mut stretch = vec![0f32; w * h];
    let (u, v) = (&field.u, &field.v);
    det.par_chunks_mut(w)
        .zip(stretch.par_chunks_mut(w))
        .enumerate()
        .for_each(|(y, (d, s))| {
            for x in 0..w {
                let at = |a: &crate::raster::GrayF32, xx: usize, yy: usize| f64::from(a[[yy, xx]]);
                // One-sided differences (the missing side at a border repeats the other).
                let dx = |a: &crate::raster::GrayF32| {
                    let f = (x + 1 < w).then(|| at(a, x + 1, y) - at(a, x, y));
                    let b = (x > 0).then(|| at(a, x, y) - at(a, x - 1, y));
                    let f = f.or(b).unwrap_or(0.0);
                    (f, b.unwrap_or(f))
                };
                let dy = |a: &crate::raster::GrayF32| {
                    let f = (y + 1 < h).then(|| at(a, x, y + 1) - at(a, x, y));
                    let b = (y > 0).then(|| at(a, x, y) - at(a, x, y - 1));
                    let f = f.or(b).unwrap_or(0.0);
                    (f, b.unwrap_or(f))
                };
                let ((uxf, uxb), (uyf, uyb)) = (dx(u), dy(u));
                let ((vxf, vxb), (vyf, vyb)) = (dx(v), dy(v));
                let jac = |ux: f64, uy: f64, vx: f64, vy: f64| [[1.0 + ux, uy], [vx, 1.0 + vy]];
                let central = jac(
                    0.5 * (uxf + uxb),
                    0.5 * (uyf + uyb),
                    0.5 * (vxf + vxb),
                    0.5 * (vyf + vyb),
                );
                let (mut worst, mut most) = (f64::INFINITY, singular_max_squared(central));
                for (ux, vx) in [(uxf, vxf), (uxb, vxb)] {
                    for (uy, vy) in [(uyf, vyf), (uyb, vyb)] {
                        let j = jac(ux, uy, vx, vy);
                        worst = worst.min(det2(j));
                        most = most.max(singular_max_squared(j));
                    }
                }
                let c = det2(central);
                d[x] = if worst <= 0.0 { worst.min(c) } else { c } as f32;
                s[x] = most.sqrt() as f32;
            }
        });
    (det, stretch)
}

fn summarise(
    det: &[f32],
    stretch: &[f32],
    w: usize,
    h: usize,
    step: f64,
    method: &str,
) -> JacobianReport {
    // Each row's statistics in parallel (a logarithm per sample made this most of the QC's
    // Jacobian), added up row after row: the same sums on any number of threads.
    let rows: Vec<RowStats> = det
        .par_chunks(w.max(1))
        .map(|row| {
            let mut r = RowStats::default();
            for &d in row {
                let d = f64::from(d);
                r.min = r.min.min(d);
                r.max = r.max.max(d);
                if d <= 0.0 {
                    r.folded += 1;
                } else {
                    let l = d.ln();
                    r.sum += l;
                    r.sum2 += l * l;
                    r.n += 1;
                }
            }
            r
        })
        .collect();
    let (mut min, mut max, mut folded) = (f64::INFINITY, f64::NEG_INFINITY, 0usize);
    let (mut sum, mut sum2, mut n) = (0.0, 0.0, 0usize);
    for r in &rows {
        min = min.min(r.min);
        max = max.max(r.max);
        folded += r.folded;
        sum += r.sum;
        sum2 += r.sum2;
        n += r.n;
    }
    let std_log = if n > 0 {
        (sum2 / n as f64 - (sum / n as f64).powi(2)).max(0.0).sqrt()
    } else {
        0.0
    };
    let stretch_max = stretch.par_iter().copied().reduce(|| 0f32, f32::max) as f64;
    JacobianReport {
        width: w,
        height: h,
        step,
        method: method.to_string(),
        min,
        max,
        folded_fraction: folded as f64 / det.len().max(1) as f64,
        std_log,
        stretch_max,
        flags: jacobian_flags(det, stretch, w, h, step),
    }
}

/// One row's share of the determinant's statistics.
struct RowStats {
    min: f64,
    max: f64,
    folded: usize,
    /// Sum of the logarithms of the positive determinants, of their squares, and their count.
    sum: f64,
    sum2: f64,
    n: usize,
}

impl Default for RowStats {
    fn default() -> Self {
        Self {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            folded: 0,
            sum: 0.0,
            sum2: 0.0,
            n: 0,
        }
    }
}

/// Folded cells and cells of extreme stretch (not folded), each grouped into regions; cells
/// are about 1/64 of the longer side (at least 4 samples).
fn jacobian_flags(det: &[f32], stretch: &[f32], w: usize, h: usize, step: f64) -> Vec<Flag> {
    let cell = w.max(h).div_ceil(64).max(4);
    let mut folded = BlockGrid::new(w, h, cell);
    // Per cell: the largest stretch and the smallest squeeze (smallest singular value) of its
    // unfolded samples.
    let (cols, rows) = (w.div_ceil(cell), h.div_ceil(cell));
    let mut most = vec![0f64; cols * rows];
    let mut least = vec![f64::INFINITY; cols * rows];
    for y in 0..h {
        let (d, s) = (&det[y * w..(y + 1) * w], &stretch[y * w..(y + 1) * w]);
        let fold: Vec<f32> = d.iter().map(|&d| f32::from(u8::from(d <= 0.0))).collect();
        folded.add_row(y, &fold);
        for (x, (&d, &s)) in d.iter().zip(s).enumerate().filter(|(_, (d, _))| **d > 0.0) {
            let i = (y / cell) * cols + x / cell;
            let (s, d) = (f64::from(s), f64::from(d));
            most[i] = most[i].max(s);
            least[i] = least[i].min(if s > 0.0 { d / s } else { 0.0 });
        }
    }
    let n = cols * rows;
    let fold_cells: Vec<bool> = (0..n)
        .map(|i| folded.mean(i % cols, i / cols).is_some_and(|v| v > 0.0))
        .collect();
    // A cell is extreme when one of its unfolded samples is: its largest stretch or smallest
    // squeeze is past the limit.
    let ext_cells: Vec<bool> = (0..n)
        .map(|i| (most[i] > EXTREME_STRETCH || least[i] < 1.0 / EXTREME_STRETCH) && !fold_cells[i])
        .collect();
    let to_pixels = |r: [usize; 4]| {
        [
            (r[0] as f64 * step) as usize,
            (r[1] as f64 * step) as usize,
            (r[2] as f64 * step).ceil() as usize,
            (r[3] as f64 * step).ceil() as usize,
        ]
    };
    let mut out = Vec::new();
    for group in flags::components(&fold_cells, cols, rows) {
        let share = group
            .iter()
            .map(|&i| folded.mean(i % cols, i / cols).unwrap_or(0.0))
            .sum::<f64>()
            / group.len() as f64;
        let [x, y, fw, fh] = to_pixels(folded.rect(flags::bounds(&group, cols), w, h));
        out.push(Flag {
            x,
            y,
            width: fw,
            height: fh,
            score: share,
            reason: format!(
                "folding: {:.1} % of the region has det J ≤ 0 (the transform is not invertible there)",
                100.0 * share
            ),
        });
    }
    for group in flags::components(&ext_cells, cols, rows) {
        let peak = group.iter().map(|&i| most[i]).fold(0.0, f64::max);
        let low = group
            .iter()
            .map(|&i| least[i])
            .fold(f64::INFINITY, f64::min);
        let [x, y, fw, fh] = to_pixels(folded.rect(flags::bounds(&group, cols), w, h));
        let (score, what) = if peak > EXTREME_STRETCH {
            (
                peak,
                format!("stretched by up to {peak:.1}× (limit {EXTREME_STRETCH})"),
            )
        } else {
            (
                low,
                format!("squeezed to {low:.2}× (limit 1/{EXTREME_STRETCH})"),
            )
        };
        out.push(Flag {
            x,
            y,
            width: fw,
            height: fh,
            score,
            reason: format!("discontinuity: the field is {what} here: a jump or a tear"),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::Affine;

    /// `u = a sin(kx x) sin(ky y)`, `v = b cos(kx x) sin(ky y)` with a known determinant.
    fn analytic_field(w: usize, h: usize, a: f64, b: f64) -> (DenseField, Vec<f64>) {
        let (kx, ky) = (
            2.0 * std::f64::consts::PI / 40.0,
            2.0 * std::f64::consts::PI / 56.0,
        );
        let mut f = DenseField::zeros(w, h);
        let mut det = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let (xf, yf) = (x as f64, y as f64);
                f.u[[y, x]] = (a * (kx * xf).sin() * (ky * yf).sin()) as f32;
                f.v[[y, x]] = (b * (kx * xf).cos() * (ky * yf).sin()) as f32;
                let ux = a * kx * (kx * xf).cos() * (ky * yf).sin();
                let uy = a * ky * (kx * xf).sin() * (ky * yf).cos();
                let vx = -b * kx * (kx * xf).sin() * (ky * yf).sin();
                let vy = b * ky * (kx * xf).cos() * (ky * yf).cos();
                det.push((1.0 + ux) * (1.0 + vy) - uy * vx);
            }
        }
        (f, det)
    }

    #[test]
    fn dense_jacobian_matches_the_analytic_determinant_including_folds() {
        // a = 9 folds where 1 + ux < 0 (a kx ≈ 1.41); a = 3 does not fold.
        for (a, b) in [(3.0, 2.0), (9.0, 4.0)] {
            let (field, truth) = analytic_field(160, 112, a, b);
            let r = jacobian_qc(&field, 160, 112, None, &CancelToken::new()).unwrap();
            let inner = |i: usize| {
                let (x, y) = (i % 160, i / 160);
                x > 0 && y > 0 && x < 159 && y < 111
            };
            // Away from the folds, central differences of a smooth field: error O(k² a).
            let worst = (0..truth.len())
                .filter(|&i| inner(i) && truth[i] > 0.2 && r.det[i] > 0.0)
                .map(|i| (f64::from(r.det[i]) - truth[i]).abs())
                .fold(0.0, f64::max);
            assert!(worst < 0.12, "a={a}: worst error {worst}");
            let truth_folded =
                truth.iter().filter(|&&d| d <= 0.0).count() as f64 / truth.len() as f64;
            let diff = (r.report.folded_fraction - truth_folded).abs();
            assert!(
                diff < 0.02,
                "a={a}: folded {} vs {truth_folded}",
                r.report.folded_fraction
            );
            assert_eq!(truth_folded > 0.0, !r.report.flags.is_empty(), "a={a}");
        }
    }

    #[test]
    fn a_checkerboard_fold_that_central_differences_miss_is_found() {
        let mut field = DenseField::zeros(32, 32);
        for y in 12..20 {
            for x in 12..20 {
                let s = if (x + y) % 2 == 0 { 0.8 } else { -0.8 };
                field.u[[y, x]] = s;
                field.v[[y, x]] = s;
            }
        }
        let r = jacobian_qc(&field, 32, 32, None, &CancelToken::new()).unwrap();
        assert!(
            r.report.folded_fraction > 0.04,
            "{}",
            r.report.folded_fraction
        );
        assert!(
            r.report
                .flags
                .iter()
                .any(|f| f.reason.starts_with("folding"))
        );
    }

    #[test]
    fn an_affine_jacobian_is_its_determinant_everywhere_without_flags() {
        let t = Affine::from_matrix([1.1, 0.2, -0.1, 0.9], [3.0, -2.0], [50.0, 40.0]);
        let r = jacobian_qc(&t, 100, 80, Some(2), &CancelToken::new()).unwrap();
        let want = 1.1 * 0.9 + 0.2 * 0.1;
        assert_eq!((r.report.width, r.report.height), (50, 40));
        assert!((r.report.min - want).abs() < 1e-6 && (r.report.max - want).abs() < 1e-6);
        assert!(r.report.std_log < 1e-6 && r.report.flags.is_empty());
    }

    #[test]
    fn a_region_one_period_off_is_flagged_as_a_discontinuity() {
        // The top-right quarter displaced by a whole period (40 px) with a 6 px transition.
        let (w, h) = (256, 256);
        let mut field = DenseField::zeros(w, h);
        let ramp = |t: f64| ((t + 3.0) / 6.0).clamp(0.0, 1.0);
        for y in 0..h {
            for x in 0..w {
                let s = ramp(x as f64 - 160.0) * ramp(96.0 - y as f64);
                field.u[[y, x]] = (40.0 * s) as f32;
            }
        }
        let r = jacobian_qc(&field, w, h, None, &CancelToken::new()).unwrap();
        let flags = &r.report.flags;
        assert!(!flags.is_empty());
        for f in flags {
            // Every flag lies on the region's border (x ≈ 160 or y ≈ 96).
            let near_x = f.x <= 164 && f.x + f.width >= 156;
            let near_y = f.y <= 100 && f.y + f.height >= 92;
            assert!(near_x || near_y, "{f:?}");
        }
        let covered: usize = flags.iter().map(|f| f.width * f.height).sum();
        assert!(covered < w * h / 4, "flags cover {covered} px");
    }
}
