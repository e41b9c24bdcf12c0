//! Pixel data: typed images over ndarray, luminance views, the Gaussian pyramid, interpolation,
//! gradients and tile iteration for images too big to process at once.

mod dihedral;
mod image;
pub mod interpolate;
mod prepared;
pub mod pyramid;
pub mod tiles;

pub use dihedral::Dihedral;
pub use image::{AnyImage, Raster, Sample, SampleDepth, luminance_f64};
pub use interpolate::{BilinearSampler, CubicBSplineSampler};
pub use prepared::PreparedImage;
pub use pyramid::{Pyramid, PyramidParams};
pub use tiles::{Band, Tile, TileGrid};

use ndarray::{Array2, Axis};
use rayon::prelude::*;

/// A single-channel `f32` image, indexed `[row, column]`. Registration works on these.
pub type GrayF32 = Array2<f32>;

/// Rows handed to one rayon task in row-parallel kernels. At 16 rows a task costs far more than
/// rayon's scheduling overhead (~1 µs) even for 256-pixel-wide levels, and tasks stay small enough
/// to balance over two to sixty-four cores.
pub const ROWS_PER_TASK: usize = 16;

/// Central-difference gradients `(d/dx, d/dy)` of an image; one-sided at the borders.
#[must_use]
pub fn gradients(image: &GrayF32) -> (GrayF32, GrayF32) {
    let (h, w) = image.dim();
    let mut gx = GrayF32::zeros((h, w));
    let mut gy = GrayF32::zeros((h, w));
    gx.axis_chunks_iter_mut(Axis(0), ROWS_PER_TASK)
        .into_par_iter()
        .zip(
            gy.axis_chunks_iter_mut(Axis(0), ROWS_PER_TASK)
                .into_par_iter(),
        )
        .enumerate()
        .for_each(|(chunk, (mut gx, mut gy))| {
            let y0 = chunk * ROWS_PER_TASK;
            for r in 0..gx.nrows() {
                let y = y0 + r;
                let (ya, yb) = (y.saturating_sub(1), (y + 1).min(h - 1));
                let dy = (yb - ya).max(1) as f32;
                for x in 0..w {
                    let (xa, xb) = (x.saturating_sub(1), (x + 1).min(w - 1));
                    let dx = (xb - xa).max(1) as f32;
                    gx[[r, x]] = (image[[y, xb]] - image[[y, xa]]) / dx;
                    gy[[r, x]] = (image[[yb, x]] - image[[ya, x]]) / dy;
                }
            }
        });
    (gx, gy)
}

/// Normalised cross-correlation of two equally sized images over the pixels where `mask` (when
/// given) is true. Returns 0 where either image is constant. The bands' sums are added in
/// order, so the value is the same bit for bit on any number of threads and beside other work.
pub fn ncc(a: &GrayF32, b: &GrayF32, mask: Option<&Array2<bool>>) -> f64 {
    assert_eq!(a.dim(), b.dim(), "ncc needs equally sized images");
    let bands = a
        .axis_chunks_iter(Axis(0), ROWS_PER_TASK)
        .into_par_iter()
        .zip(b.axis_chunks_iter(Axis(0), ROWS_PER_TASK).into_par_iter())
        .enumerate()
        .map(|(chunk, (ra, rb))| {
            let mut sums = NccSums::default();
            for ((r, c), &va) in ra.indexed_iter() {
                if mask.is_none_or(|m| m[[chunk * ROWS_PER_TASK + r, c]]) {
                    sums.add(va, rb[[r, c]]);
                }
            }
            sums
        })
        .collect();
    NccSums::ncc_of_bands(bands)
}

/// The sums an NCC needs, `[n, Σa, Σb, Σa², Σb², Σab]` in f64, over pairs added one by one.
#[derive(Debug, Clone, Copy, Default)]
pub struct NccSums([f64; 6]);

impl NccSums {
    /// Adds one pair of values.
    #[inline]
    pub fn add(&mut self, a: f32, b: f32) {
        let (a, b) = (f64::from(a), f64::from(b));
        let s = &mut self.0;
        s[0] += 1.0;
        s[1] += a;
        s[2] += b;
        s[3] += a * a;
        s[4] += b * b;
        s[5] += a * b;
    }

    /// The NCC of bands' sums added in the order given (0 with fewer than two pairs or where
    /// either side is constant).
    pub fn ncc_of_bands(bands: Vec<NccSums>) -> f64 {
        let sums = bands
            .into_iter()
            .fold([0f64; 6], |x, y| std::array::from_fn(|i| x[i] + y.0[i]));
        let n = sums[0];
        if n < 2.0 {
            return 0.0;
        }
        let va = sums[3] - sums[1] * sums[1] / n;
        let vb = sums[4] - sums[2] * sums[2] / n;
        let cov = sums[5] - sums[1] * sums[2] / n;
        if va <= 0.0 || vb <= 0.0 {
            return 0.0;
        }
        cov / (va * vb).sqrt()
    }
}

/// Mean of `f(pixel)` over the `(2 radius + 1)^2` window clipped to the image, by running
/// sums (cost independent of the radius).
pub fn box_mean(image: &GrayF32, radius: usize, f: impl Fn(f32) -> f32 + Sync) -> GrayF32 {
    let (h, w) = image.dim();
    let mut out = GrayF32::zeros((h, w));
    box_mean_rows(&mut vec![0.0; h * w], &mut out, radius, |y, values| {
        for (v, &p) in values.iter_mut().zip(image.row(y)) {
            *v = f(p);
        }
    });
    out
}

/// [`box_mean`] of the values `fill(y, row)` writes for each row, into `out`, without a
/// full-size image of them: f64 running sums along each row, then f32 sums down the window's
/// rows. `horizontal` is scratch of `out`'s size, so that a caller computing many such means
/// (the flow's search, one per offset) allocates it once.
pub fn box_mean_rows(
    horizontal: &mut [f32],
    out: &mut GrayF32,
    radius: usize,
    fill: impl Fn(usize, &mut [f32]) + Sync,
) {
    let (h, w) = out.dim();
    horizontal.par_chunks_mut(w).enumerate().for_each_init(
        || (vec![0f32; w], vec![0f64; w + 1]),
        |(values, prefix), (y, means)| {
            fill(y, values);
            row_box_mean(values, prefix, means, radius);
        },
    );
    let horizontal = &*horizontal;
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(y, mut row)| {
            let row = row.as_slice_mut().expect("standard layout");
            column_box_mean(horizontal, h, y, row, radius);
        });
}

/// [`box_mean_rows`] on the calling thread, for callers that run many small ones in parallel
/// (the same values, bit for bit).
pub fn box_mean_rows_serial(
    horizontal: &mut [f32],
    out: &mut GrayF32,
    radius: usize,
    mut fill: impl FnMut(usize, &mut [f32]),
) {
    let (h, w) = out.dim();
    let (mut values, mut prefix) = (vec![0f32; w], vec![0f64; w + 1]);
    for (y, means) in horizontal.chunks_mut(w).enumerate() {
        fill(y, &mut values);
        row_box_mean(&values, &mut prefix, means, radius);
    }
    for (y, mut row) in out.axis_iter_mut(Axis(0)).enumerate() {
        let row = row.as_slice_mut().expect("standard layout");
        column_box_mean(horizontal, h, y, row, radius);
    }
}

/// The means of `values` over windows of `radius` along the row, clipped to it, by f64 running
/// sums in `prefix` (one longer than the row).
fn row_box_mean(values: &[f32], prefix: &mut [f64], means: &mut [f32], radius: usize) {
    let w = values.len();
    for (x, &v) in values.iter().enumerate() {
        prefix[x + 1] = prefix[x] + v as f64;
    }
    let clipped = |x: usize| {
        let (a, b) = (x.saturating_sub(radius), (x + radius + 1).min(w));
        ((prefix[b] - prefix[a]) / (b - a) as f64) as f32
    };
    // Windows inside the row have one width: plain slices, so that the divisions vectorise
    // (the same values as `clipped`).
    let n = (2 * radius + 1) as f64;
    let interior_end = w.saturating_sub(radius);
    if radius < interior_end {
        means[radius..interior_end]
            .iter_mut()
            .zip(&prefix[2 * radius + 1..])
            .zip(prefix.iter())
            .for_each(|((m, &hi), &lo)| *m = ((hi - lo) / n) as f32);
    }
    let left = radius.min(w);
    for x in (0..left).chain(interior_end.max(left)..w) {
        means[x] = clipped(x);
    }
}

/// Row `y` of the means of the `h` rows of `horizontal` over windows of `radius` down the
/// columns, clipped to the image, into `row`.
fn column_box_mean(horizontal: &[f32], h: usize, y: usize, row: &mut [f32], radius: usize) {
    let w = row.len();
    let (a, b) = (y.saturating_sub(radius), (y + radius + 1).min(h));
    row.fill(0.0);
    for yy in a..b {
        row.iter_mut()
            .zip(&horizontal[yy * w..][..w])
            .for_each(|(s, v)| *s += v);
    }
    let n = (b - a) as f32;
    row.iter_mut().for_each(|s| *s /= n);
}

/// `image`'s luminance on a `[gw, gh]` grid spanning it: the mean of the pixels in each cell,
/// or the nearest pixel where a cell holds none (an image smaller than the grid). Reads one
/// row at a time: no full-size float copy.
pub fn area_mean(image: &AnyImage, [gw, gh]: [usize; 2]) -> GrayF32 {
    let (w, h) = (image.width(), image.height());
    let mut sums = vec![0f64; gw * gh];
    let mut counts = vec![0u32; gw * gh];
    let mut row = vec![0f32; w];
    for y in 0..h {
        image.luminance_row(y, &mut row);
        let cy = y * gh / h;
        for (x, &v) in row.iter().enumerate() {
            let c = cy * gw + x * gw / w;
            sums[c] += v as f64;
            counts[c] += 1;
        }
    }
    let mut out = GrayF32::zeros((gh, gw));
    for cy in 0..gh {
        for cx in 0..gw {
            let c = cy * gw + cx;
            out[[cy, cx]] = if counts[c] > 0 {
                (sums[c] / counts[c] as f64) as f32
            } else {
                let (x, y) = ((cx * w + w / 2) / gw, (cy * h + h / 2) / gh);
                image.luminance_row(y.min(h - 1), &mut row);
                row[x.min(w - 1)]
            };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ncc_is_the_same_bit_for_bit_on_one_thread_and_on_several() {
        let mut rng = crate::rng::SplitMix64::new(3);
        let mut image =
            || GrayF32::from_shape_fn((40 * ROWS_PER_TASK, 33), |_| rng.next_f64() as f32);
        let (a, b) = (image(), image());
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| ncc(&a, &b, None))
        };
        let one = on(1);
        for threads in [2, 3, 5] {
            assert_eq!(on(threads).to_bits(), one.to_bits(), "{threads} threads");
        }
    }

    #[test]
    fn gradients_of_a_ramp_are_constant() {
        let img = GrayF32::from_shape_fn((20, 30), |(y, x)| 2.0 * x as f32 - 0.5 * y as f32);
        let (gx, gy) = gradients(&img);
        assert!(gx.iter().all(|&g| (g - 2.0).abs() < 1e-5));
        assert!(gy.iter().all(|&g| (g + 0.5).abs() < 1e-5));
    }

    #[test]
    fn box_mean_is_the_mean_over_the_window_clipped_to_the_image() {
        let img = GrayF32::from_shape_fn((23, 41), |(y, x)| {
            ((x * 7919 + y * 104_729) % 1000) as f32 / 1000.0
        });
        let r = 2;
        let mean = box_mean(&img, r, |v| v * v);
        for ((y, x), &m) in mean.indexed_iter() {
            let (ys, xs) = (
                y.saturating_sub(r)..(y + r + 1).min(23),
                x.saturating_sub(r)..(x + r + 1).min(41),
            );
            let n = (ys.len() * xs.len()) as f64;
            let direct: f64 = ys
                .flat_map(|yy| xs.clone().map(move |xx| (yy, xx)))
                .map(|(yy, xx)| (img[[yy, xx]] * img[[yy, xx]]) as f64)
                .sum::<f64>()
                / n;
            assert!(
                (m as f64 - direct).abs() < 1e-6,
                "({x}, {y}): {m} against {direct}"
            );
        }
    }

    #[test]
    fn a_row_box_mean_is_the_mean_of_each_window_clipped_to_the_row() {
        for w in 1..24 {
            let values: Vec<f32> = (0..w).map(|x| ((x * 7919) % 101) as f32 / 7.0).collect();
            for radius in 0..8 {
                let (mut prefix, mut means) = (vec![0f64; w + 1], vec![f32::NAN; w]);
                row_box_mean(&values, &mut prefix, &mut means, radius);
                for (x, m) in means.iter().enumerate() {
                    let window = x.saturating_sub(radius)..(x + radius + 1).min(w);
                    let count = window.len() as f64;
                    let sum = values[window].iter().fold(0f64, |s, &v| s + v as f64);
                    let expected = (sum / count) as f32;
                    assert!(
                        (m - expected).abs() < 1e-6,
                        "width {w}, radius {radius}, x {x}: {m} against {expected}"
                    );
                }
            }
        }
    }

    #[test]
    fn ncc_is_one_for_affine_intensity_change_and_respects_mask() {
        let a = GrayF32::from_shape_fn((40, 40), |(y, x)| ((x * 7 + y * 13) % 17) as f32);
        let b = a.mapv(|v| 3.0 * v + 1.0);
        assert!((ncc(&a, &b, None) - 1.0).abs() < 1e-9);
        let mut c = b.clone();
        c[[0, 0]] = -1000.0;
        let mut mask = Array2::from_elem((40, 40), true);
        mask[[0, 0]] = false;
        assert!(ncc(&a, &c, None) < 0.99);
        assert!((ncc(&a, &c, Some(&mask)) - 1.0).abs() < 1e-9);
    }
}
