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
        let (w, loaded, r) = (band.width, band.loaded_rows(), band.radius);
        let mut out = vec![[0f32; 4]; w * band.rows];
        out.par_chunks_mut(w).enumerate().for_each_init(
            || vec![[0f32; 5]; w],
            |columns, (row, out)| {
                let y = row + band.halo_above;
                let (top, bottom) = (y.saturating_sub(r), (y + r + 1).min(loaded));
                // Column sums over the window's rows, top to bottom (as the shader adds them).
                columns.fill([0.0; 5]);
                for yy in top..bottom {
                    let (f, m) = (&band.fixed[yy * w..][..w], &band.moving[yy * w..][..w]);
                    for ((c, &a), &b) in columns.iter_mut().zip(f).zip(m) {
                        c[0] += a;
                        c[1] += b;
                        c[2] += a * a;
                        c[3] += b * b;
                        c[4] += a * b;
                    }
                }
                let rows = (bottom - top) as f32;
                for (x, o) in out.iter_mut().enumerate() {
                    let (left, right) = (x.saturating_sub(r), (x + r + 1).min(w));
                    let mut s = [0f32; 5];
                    for c in &columns[left..right] {
                        for k in 0..5 {
                            s[k] += c[k];
                        }
                    }
                    *o = box_formulas(s, rows * (right - left) as f32);
                }
            },
        );
        Ok(out)
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
