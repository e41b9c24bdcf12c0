//! Per-window kernels in f64: R2M2's exact definitions (`--r2m2`), and the window mutual
//! information that the default definition runs at a coarser level.
//!
//! A window is the `(2r + 1)²` square around a pixel, clipped at the image border. The values
//! of a window are visited in row-major order, always the same way, so that results depend only
//! on the definition and not on how the work is split.

use super::band::BandRows;

/// The R2M2 box maps of one pixel (MSE, CORR, dm_MSE; dm_CORR equals CORR) and the fixed
/// window's standard deviation (for the texture rule of the flags).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WindowMaps {
    /// `mean((f - m)²)`.
    pub mse: f64,
    /// Pearson's correlation; 0 when either window is flat.
    pub corr: f64,
    /// `mean(((f - mean f) - (m - mean m))²)`.
    pub dm_mse: f64,
    /// The fixed window's standard deviation.
    pub fixed_std: f64,
}

/// The window of a pixel as row and column ranges of a band (loaded rows, full width).
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// First and one-past-last loaded row.
    pub rows: (usize, usize),
    /// First and one-past-last column.
    pub cols: (usize, usize),
}

impl Window {
    /// The clipped window of pixel `(x, row)` (row in loaded-band coordinates).
    pub fn around(x: usize, row: usize, radius: usize, width: usize, loaded: usize) -> Self {
        Self {
            rows: (row.saturating_sub(radius), (row + radius + 1).min(loaded)),
            cols: (x.saturating_sub(radius), (x + radius + 1).min(width)),
        }
    }

    /// Number of pixels.
    pub fn len(&self) -> usize {
        (self.rows.1 - self.rows.0) * (self.cols.1 - self.cols.0)
    }

    /// Whether the window holds no pixel.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies the window's values of `data` (row-major, `width` wide) into `out`, row-major.
    pub fn gather(&self, data: &[f64], width: usize, out: &mut Vec<f64>) {
        out.clear();
        for y in self.rows.0..self.rows.1 {
            out.extend_from_slice(&data[y * width + self.cols.0..y * width + self.cols.1]);
        }
    }
}

/// A window's values summed in order, their min and max.
#[derive(Debug, Clone, Copy)]
pub struct WindowStats {
    sum: f64,
    lo: f64,
    hi: f64,
}

impl WindowStats {
    /// The statistics of a window's values.
    pub fn of(values: &[f64]) -> Self {
        let (mut sum, mut lo, mut hi) = (0.0, f64::INFINITY, f64::NEG_INFINITY);
        for &v in values {
            sum += v;
            lo = lo.min(v);
            hi = hi.max(v);
        }
        Self { sum, lo, hi }
    }
}

/// R2M2's box maps of one window pair (`f` and `m` hold the windows' values, row-major).
pub fn window_maps(f: &[f64], m: &[f64]) -> WindowMaps {
    window_maps_with(f, m, WindowStats::of(f), WindowStats::of(m))
}

fn window_maps_with(f: &[f64], m: &[f64], fs: WindowStats, ms: WindowStats) -> WindowMaps {
    let n = f.len() as f64;
    let (sf, f_lo, f_hi) = (fs.sum, fs.lo, fs.hi);
    let (sm, m_lo, m_hi) = (ms.sum, ms.lo, ms.hi);
    let (mf, mm) = (sf / n, sm / n);
    let (mut se, mut sdd, mut sff, mut smm, mut sfm) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (&a, &b) in f.iter().zip(m) {
        let e = a - b;
        let (da, db) = (a - mf, b - mm);
        let d = da - db;
        se += e * e;
        sdd += d * d;
        sff += da * da;
        smm += db * db;
        sfm += da * db;
    }
    let flat = f_hi == f_lo || m_hi == m_lo;
    WindowMaps {
        mse: se / n,
        corr: if flat { 0.0 } else { sfm / (sff * smm).sqrt() },
        dm_mse: sdd / n,
        fixed_std: if f_hi == f_lo { 0.0 } else { (sff / n).sqrt() },
    }
}

/// Scratch space of the window mutual information, reused from pixel to pixel.
#[derive(Debug, Clone)]
pub struct MiScratch {
    bins: usize,
    joint: Vec<u32>,
    fixed: Vec<u32>,
    moving: Vec<u32>,
    cells: Vec<usize>,
    fixed_bins: Vec<u32>,
    moving_bins: Vec<u32>,
    /// `(k + 1) ln(k + 1) - k ln k` for every count a window can reach.
    k_ln_k_step: Vec<f64>,
}

impl MiScratch {
    /// Scratch for `bins` bins and windows of up to `max_len` values.
    pub fn new(bins: usize, max_len: usize) -> Self {
        Self {
            bins,
            joint: vec![0; bins * bins],
            fixed: vec![0; bins],
            moving: vec![0; bins],
            cells: Vec::with_capacity(max_len),
            fixed_bins: Vec::with_capacity(max_len),
            moving_bins: Vec::with_capacity(max_len),
            k_ln_k_step: (0..=max_len)
                .map(|k| {
                    let k_ln_k = |k: usize| {
                        if k == 0 {
                            0.0
                        } else {
                            k as f64 * (k as f64).ln()
                        }
                    };
                    k_ln_k(k + 1) - k_ln_k(k)
                })
                .collect(),
        }
    }
}

/// R2M2's bins of `values` less `centre`: `trunc((v - c - lo) / range * (bins - 1))`, in a loop
/// of its own so that it vectorises (the divisions dominate otherwise).
#[inline]
fn bins_of(values: &[f64], centre: f64, lo: f64, range: f64, last: f64, out: &mut Vec<u32>) {
    out.clear();
    // Through i32: the values are in 0..bins, and x86 converts f64 to i32 in one instruction.
    out.extend(
        values
            .iter()
            .map(|&v| (((v - centre) - lo) / range * last) as i32 as u32),
    );
}

/// Mutual information (natural log) of two windows' values with a `bins`² joint histogram over
/// each window's own min and max; 0 when either window is flat. With `demean`, each window's
/// mean (its values summed in order, over their count) is subtracted first (dm_MI).
pub fn window_mi(f: &[f64], m: &[f64], demean: bool, s: &mut MiScratch) -> f64 {
    window_mi_with(f, m, WindowStats::of(f), WindowStats::of(m), demean, s)
}

fn window_mi_with(
    f: &[f64],
    m: &[f64],
    fs: WindowStats,
    ms: WindowStats,
    demean: bool,
    s: &mut MiScratch,
) -> f64 {
    let n = f.len();
    let (sf, f_lo, f_hi) = (fs.sum, fs.lo, fs.hi);
    let (sm, m_lo, m_hi) = (ms.sum, ms.lo, ms.hi);
    if f_hi == f_lo || m_hi == m_lo {
        return 0.0;
    }
    let (cf, cm) = if demean {
        (sf / n as f64, sm / n as f64)
    } else {
        (0.0, 0.0)
    };
    // Demeaned min and max: subtraction is monotonic, so min(v - c) = min(v) - c exactly.
    let (f_lo, f_hi, m_lo, m_hi) = if demean {
        (f_lo - cf, f_hi - cf, m_lo - cm, m_hi - cm)
    } else {
        (f_lo, f_hi, m_lo, m_hi)
    };
    let (f_range, m_range) = (f_hi - f_lo, m_hi - m_lo);
    if f_range == 0.0 || m_range == 0.0 {
        return 0.0;
    }
    let bins = s.bins;
    let last = (bins - 1) as f64;
    // Without demeaning the centre is 0, and v - 0 is v exactly.
    bins_of(f, cf, f_lo, f_range, last, &mut s.fixed_bins);
    bins_of(m, cm, m_lo, m_range, last, &mut s.moving_bins);
    // MI = ln n + (sum c ln c - sum cf ln cf - sum cm ln cm) / n over the final counts, summed
    // as the counts grow: a count going from c to c + 1 adds (c + 1) ln(c + 1) - c ln c.
    // (Profiled: a second pass reading and clearing the counts took most of the time.)
    let step = &s.k_ln_k_step;
    // Three sums, so that the additions do not wait on one another.
    let (mut joint, mut fixed, mut moving) = (0.0, 0.0, 0.0);
    s.cells.clear();
    for (&i, &j) in s.fixed_bins.iter().zip(&s.moving_bins) {
        let (i, j) = ((i as usize).min(bins - 1), (j as usize).min(bins - 1));
        let cell = i * bins + j;
        let (c, cf, cm) = (&mut s.joint[cell], &mut s.fixed[i], &mut s.moving[j]);
        joint += step[*c as usize];
        fixed += step[*cf as usize];
        moving += step[*cm as usize];
        (*c, *cf, *cm) = (*c + 1, *cf + 1, *cm + 1);
        s.cells.push(cell);
    }
    for &cell in &s.cells {
        s.joint[cell] = 0;
    }
    s.fixed.fill(0);
    s.moving.fill(0);
    (n as f64).ln() + (joint - fixed - moving) / n as f64
}

/// R2M2's maps of every output row of a band, computed pixel by pixel (parallel over rows).
/// `out` receives, per output pixel, `[mse, corr, dm_mse, mi, dm_mi, fixed_std]`; MI is left at
/// 0 unless `mi`/`dm_mi` are asked for.
pub fn r2m2_band(
    band: &BandRows,
    radius: usize,
    bins: usize,
    mi: bool,
    dm_mi: bool,
) -> Vec<[f64; 6]> {
    use rayon::prelude::*;
    let (w, loaded) = (band.width, band.loaded_rows());
    let side = 2 * radius + 1;
    let mut out = vec![[0.0; 6]; w * band.rows];
    out.par_chunks_mut(w).enumerate().for_each_init(
        || {
            (
                Vec::with_capacity(side * side),
                Vec::with_capacity(side * side),
                MiScratch::new(bins, side * side),
            )
        },
        |(fw, mw, scratch), (r, row)| {
            let y = r + band.halo_above;
            for (x, o) in row.iter_mut().enumerate() {
                let window = Window::around(x, y, radius, w, loaded);
                window.gather(&band.fixed, w, fw);
                window.gather(&band.moving, w, mw);
                let (fs, ms) = (WindowStats::of(fw), WindowStats::of(mw));
                let maps = window_maps_with(fw, mw, fs, ms);
                let mut mi_of = |demean| window_mi_with(fw, mw, fs, ms, demean, scratch);
                *o = [
                    maps.mse,
                    maps.corr,
                    maps.dm_mse,
                    if mi { mi_of(false) } else { 0.0 },
                    if dm_mi { mi_of(true) } else { 0.0 },
                    maps.fixed_std,
                ];
            }
        },
    );
    out
}

/// Window mutual information of a whole (small) image pair held in memory, as used by the
/// default definition at a coarser level: `f` and `m` are `width x height`, row-major.
pub fn mi_image(
    f: &[f64],
    m: &[f64],
    width: usize,
    height: usize,
    radius: usize,
    bins: usize,
) -> Vec<f32> {
    use rayon::prelude::*;
    let side = 2 * radius + 1;
    let mut out = vec![0f32; width * height];
    out.par_chunks_mut(width).enumerate().for_each_init(
        || {
            (
                Vec::with_capacity(side * side),
                Vec::with_capacity(side * side),
                MiScratch::new(bins, side * side),
            )
        },
        |(fw, mw, scratch), (y, row)| {
            for (x, o) in row.iter_mut().enumerate() {
                let window = Window::around(x, y, radius, width, height);
                window.gather(f, width, fw);
                window.gather(m, width, mw);
                *o = window_mi(fw, mw, false, scratch) as f32;
            }
        },
    );
    out
}
