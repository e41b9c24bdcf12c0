//! The default definition's box maps (MSE, CORR, dm_MSE, and the fixed window's standard
//! deviation) in f32 from five window sums: the kernel that runs on the GPU
//! (`shaders/quality.wgsl`) and its CPU twin here, which sum in the same order.

use crate::Result;
use rayon::prelude::*;

/// Windows whose variance is at most this (a standard deviation of 0.001, a quarter of an 8-bit
/// step) count as flat: their correlation is 0.
pub const FLAT_VARIANCE: f32 = 1e-6;

/// Values are shifted by this before summing, which halves their magnitude for `[0, 1]` data
/// and so the cancellation in `E[f²] - E[f]²`; no map depends on a common shift.
pub const SHIFT: f32 = 0.5;

/// One band of the box-map kernel's input: luminance shifted by [`SHIFT`], the loaded rows
/// (output rows with their halos), row-major.
#[derive(Debug, Clone, Copy)]
pub struct BoxBand<'a> {
    /// Image width.
    pub width: usize,
    /// Loaded rows above the first output row.
    pub halo_above: usize,
    /// Output rows.
    pub rows: usize,
    /// Window radius.
    pub radius: usize,
    /// Fixed values of the loaded rows.
    pub fixed: &'a [f32],
    /// Moving values of the loaded rows.
    pub moving: &'a [f32],
}

impl BoxBand<'_> {
    /// Loaded rows.
    pub fn loaded_rows(&self) -> usize {
        self.fixed.len() / self.width
    }
}

/// A backend of the box maps: per output pixel `[mse, corr, dm_mse, fixed_std]`.
pub trait BoxMapKernel: Send + Sync {
    /// The backend's name for reports (`cpu`, `gpu`).
    fn backend(&self) -> &'static str;
    /// The adapter, for the GPU.
    fn adapter(&self) -> Option<String> {
        None
    }
    /// The most pixels (loaded rows times width) one band may hold.
    fn max_band_pixels(&self) -> usize {
        usize::MAX
    }
    /// Computes the maps of a band's output rows.
    fn run(&self, band: &BoxBand<'_>) -> Result<Vec<[f32; 4]>>;
}

/// The CPU twin (rayon over output rows).
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuBoxMaps;

impl BoxMapKernel for CpuBoxMaps {
    fn backend(&self) -> &'static str {
        "cpu"
    }

    fn run(&self, band: &BoxBand<'_>) -> Result<Vec<[f32; 4]>> {
        let w = band.width;
        let mut out = vec![[0f32; 4]; w * band.rows];
        out.par_chunks_mut(w).enumerate().for_each_init(
            || RowSums::new(w),
            |sums, (row, out)| sums.row_maps(band, row, out),
        );
        Ok(out)
    }
}

/// One output row's window sums, a plane per sum (`[Σf, Σm, Σf², Σm², Σfm]`) so that the adds
/// run across pixels in vector registers. Each pixel's sums are still added in the shader's
/// order (column sums top to bottom, then the window's columns left to right, from zero), so the
/// maps are those of the per-pixel loop bit for bit.
struct RowSums {
    columns: [Vec<f32>; 5],
    windows: [Vec<f32>; 5],
}

impl RowSums {
    fn new(width: usize) -> Self {
        Self {
            columns: std::array::from_fn(|_| vec![0.0; width]),
            windows: std::array::from_fn(|_| vec![0.0; width]),
        }
    }

    /// The maps of output row `row` of `band` into `out`.
    fn row_maps(&mut self, band: &BoxBand<'_>, row: usize, out: &mut [[f32; 4]]) {
        let (w, r) = (band.width, band.radius);
        let y = row + band.halo_above;
        let (top, bottom) = (y.saturating_sub(r), (y + r + 1).min(band.loaded_rows()));
        let [c0, c1, c2, c3, c4] = &mut self.columns;
        for c in [&mut *c0, &mut *c1, &mut *c2, &mut *c3, &mut *c4] {
            c.fill(0.0);
        }
        for yy in top..bottom {
            let (f, m) = (&band.fixed[yy * w..][..w], &band.moving[yy * w..][..w]);
            let planes = c0.iter_mut().zip(&mut *c1).zip(&mut *c2).zip(&mut *c3);
            for ((((((s0, s1), s2), s3), s4), &a), &b) in planes.zip(&mut *c4).zip(f).zip(m) {
                *s0 += a;
                *s1 += b;
                *s2 += a * a;
                *s3 += b * b;
                *s4 += a * b;
            }
        }
        // Interior pixels (none when the window is wider than the row): their whole window,
        // added column by column across the row.
        let interior = if w > 2 * r { r..w - r } else { 0..0 };
        let planes = self.windows.iter_mut().zip(&self.columns);
        for (window, column) in planes.filter(|_| !interior.is_empty()) {
            let window = &mut window[interior.clone()];
            window.fill(0.0);
            for j in 0..=2 * r {
                for (s, &c) in window.iter_mut().zip(&column[j..]) {
                    *s += c;
                }
            }
        }
        let rows = (bottom - top) as f32;
        let full = rows * (2 * r + 1) as f32;
        let [w0, w1, w2, w3, w4] = &self.windows;
        let sums = w0[interior.clone()].iter().zip(&w1[interior.clone()]);
        let sums = sums.zip(&w2[interior.clone()]).zip(&w3[interior.clone()]);
        for (o, ((((&s0, &s1), &s2), &s3), &s4)) in out[interior.clone()]
            .iter_mut()
            .zip(sums.zip(&w4[interior.clone()]))
        {
            *o = box_formulas([s0, s1, s2, s3, s4], full);
        }
        // The pixels whose window the row's ends clip.
        for x in (0..interior.start).chain(interior.end..w) {
            let (left, right) = (x.saturating_sub(r), (x + r + 1).min(w));
            let mut s = [0f32; 5];
            for c in left..right {
                for (k, s) in s.iter_mut().enumerate() {
                    *s += self.columns[k][c];
                }
            }
            out[x] = box_formulas(s, rows * (right - left) as f32);
        }
    }
}

/// The maps from the window sums `[Σf, Σm, Σf², Σm², Σfm]` over `n` pixels (the shader's
/// `formulas`, operation for operation).
#[inline]
pub fn box_formulas(s: [f32; 5], n: f32) -> [f32; 4] {
    let (mf, mm) = (s[0] / n, s[1] / n);
    let vf = (s[2] / n - mf * mf).max(0.0);
    let vm = (s[3] / n - mm * mm).max(0.0);
    let cov = s[4] / n - mf * mm;
    let mse = ((s[2] - 2.0 * s[4] + s[3]) / n).max(0.0);
    let dm_mse = (vf + vm - 2.0 * cov).max(0.0);
    let corr = if vf <= FLAT_VARIANCE || vm <= FLAT_VARIANCE {
        0.0
    } else {
        (cov / (vf * vm).sqrt()).clamp(-1.0, 1.0)
    };
    [mse, corr, dm_mse, vf.sqrt()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shader's loop, pixel by pixel: column sums top to bottom, then the window's columns
    /// left to right.
    fn per_pixel(band: &BoxBand<'_>) -> Vec<[f32; 4]> {
        let (w, loaded, r) = (band.width, band.loaded_rows(), band.radius);
        let mut out = Vec::new();
        for row in 0..band.rows {
            let y = row + band.halo_above;
            let (top, bottom) = (y.saturating_sub(r), (y + r + 1).min(loaded));
            let mut columns = vec![[0f32; 5]; w];
            for yy in top..bottom {
                for (x, c) in columns.iter_mut().enumerate() {
                    let (a, b) = (band.fixed[yy * w + x], band.moving[yy * w + x]);
                    *c = [c[0] + a, c[1] + b, c[2] + a * a, c[3] + b * b, c[4] + a * b];
                }
            }
            for x in 0..w {
                let (left, right) = (x.saturating_sub(r), (x + r + 1).min(w));
                let mut s = [0f32; 5];
                for c in &columns[left..right] {
                    for k in 0..5 {
                        s[k] += c[k];
                    }
                }
                out.push(box_formulas(s, ((bottom - top) * (right - left)) as f32));
            }
        }
        out
    }

    #[test]
    fn the_row_planes_give_the_per_pixel_sums_bit_for_bit() {
        let mut rng = crate::rng::SplitMix64::new(7);
        for (width, loaded, halo_above, rows, radius) in [
            (1, 5, 2, 1, 2),
            (5, 7, 3, 1, 3),
            (6, 9, 1, 5, 3),
            (7, 7, 0, 7, 3),
            (37, 12, 3, 6, 3),
            (64, 20, 2, 16, 1),
            (101, 15, 5, 5, 5),
        ] {
            let mut values =
                |n: usize| -> Vec<f32> { (0..n).map(|_| rng.next_f64() as f32 - SHIFT).collect() };
            let (fixed, moving) = (values(width * loaded), values(width * loaded));
            let band = BoxBand {
                width,
                halo_above,
                rows,
                radius,
                fixed: &fixed,
                moving: &moving,
            };
            let got = CpuBoxMaps.run(&band).unwrap();
            let want = per_pixel(&band);
            assert_eq!(got.len(), want.len());
            for (i, (g, e)) in got.iter().zip(&want).enumerate() {
                assert_eq!(
                    g.map(f32::to_bits),
                    e.map(f32::to_bits),
                    "width {width}, radius {radius}, pixel {i}: {g:?} against {e:?}"
                );
            }
        }
    }
}
