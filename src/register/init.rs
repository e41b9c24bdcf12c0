//! Initial alignment by phase correlation: robust to large translations (up to half the image)
//! and to intensity differences, since only the phase of the spectra is compared.

use crate::raster::GrayF32;
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

/// How the affine stage is initialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InitMethod {
    /// The identity, the phase correlation's translation, the feature fit (rotation, scale,
    /// a mirror) and the orientation search (every 5° turn, mirrored or not: across stains,
    /// where descriptors do not match) are scored on the coarsest level under the run's
    /// metric; the best wins (a turned start only by a margin). The default.
    #[default]
    Auto,
    /// The identity or the phase correlation's translation, whichever scores better.
    Phase,
    /// The feature fit (the phase correlation when it finds too few matches).
    Features,
    /// The identity.
    None,
}

impl std::str::FromStr for InitMethod {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "phase" => Ok(Self::Phase),
            "features" => Ok(Self::Features),
            "none" => Ok(Self::None),
            other => Err(format!(
                "unknown initialisation {other:?} (auto, phase, features or none)"
            )),
        }
    }
}

impl std::fmt::Display for InitMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Phase => "phase",
            Self::Features => "features",
            Self::None => "none",
        })
    }
}

/// Which initialisation the affine stage started from, and why (report.json's `init`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InitChoice {
    /// The method asked for.
    pub method: InitMethod,
    /// The candidate chosen: `identity`, `phase correlation`, `features` or `orientation
    /// search`.
    pub chosen: String,
    /// Each candidate's score on the coarsest level (the metric's cost: lower is better), and
    /// why a candidate is missing.
    pub why: String,
    /// How the moving image was found turned (through a multiple of 90°, or mirrored) and
    /// turned back pixel for pixel before the registration; absent when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turned_back: Option<String>,
}
use rustfft::num_complex::Complex;

/// The translation `d` (in the images' pixels) such that `moving(p + d) ≈ fixed(p)`, and the
/// height of the correlation peak (a confidence in `0..=1`).
pub fn phase_correlation(fixed: &GrayF32, moving: &GrayF32) -> ([f64; 2], f64) {
    let w = fixed.ncols().max(moving.ncols());
    let h = fixed.nrows().max(moving.nrows());
    PhaseCorrelator::new(fixed, w, h).correlate(moving)
}

/// Phase correlations of one fixed image against many moving images: the fixed image's
/// spectrum and the FFT plans are made once (the orientation search correlates 144 turns of
/// one moving image against the same fixed level).
pub struct PhaseCorrelator {
    /// The windowed fixed image's spectrum, `w x h`.
    spectrum: Vec<Complex<f64>>,
    w: usize,
    h: usize,
    forward: [Arc<dyn Fft<f64>>; 2],
    inverse: [Arc<dyn Fft<f64>>; 2],
}

impl PhaseCorrelator {
    /// The correlator of `fixed`, zero-padded to `w x h` (at least its size).
    pub fn new(fixed: &GrayF32, w: usize, h: usize) -> Self {
        let mut planner = FftPlanner::<f64>::new();
        let forward = [planner.plan_fft_forward(w), planner.plan_fft_forward(h)];
        let inverse = [planner.plan_fft_inverse(w), planner.plan_fft_inverse(h)];
        let mut spectrum = windowed(fixed, w, h);
        fft2(&mut spectrum, w, &forward);
        Self {
            spectrum,
            w,
            h,
            forward,
            inverse,
        }
    }

    /// The padded size, `(h, w)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.h, self.w)
    }

    /// [`phase_correlation`] of the fixed image with `moving` (at most `w x h`).
    pub fn correlate(&self, moving: &GrayF32) -> ([f64; 2], f64) {
        let (w, h) = (self.w, self.h);
        let mut m = windowed(moving, w, h);
        fft2(&mut m, w, &self.forward);
        let mut cross: Vec<Complex<f64>> = self
            .spectrum
            .iter()
            .zip(&m)
            .map(|(a, b)| {
                let c = b * a.conj();
                let n = c.norm();
                if n > 1e-12 {
                    c / n
                } else {
                    Complex::new(0.0, 0.0)
                }
            })
            .collect();
        fft2(&mut cross, w, &self.inverse);
        let norm = (w * h) as f64;
        let (mut best, mut best_i) = (f64::NEG_INFINITY, 0);
        for (i, c) in cross.iter().enumerate() {
            if c.re > best {
                best = c.re;
                best_i = i;
            }
        }
        let (px, py) = (best_i % w, best_i / w);
        let at = |x: isize, y: isize| {
            let xx = x.rem_euclid(w as isize) as usize;
            let yy = y.rem_euclid(h as isize) as usize;
            cross[yy * w + xx].re
        };
        // Parabolic sub-pixel refinement on each axis.
        let refine = |l: f64, c: f64, r: f64| {
            let den = l - 2.0 * c + r;
            if den.abs() > 1e-12 {
                (0.5 * (l - r) / den).clamp(-0.5, 0.5)
            } else {
                0.0
            }
        };
        let (pxi, pyi) = (px as isize, py as isize);
        let dx = refine(at(pxi - 1, pyi), best, at(pxi + 1, pyi));
        let dy = refine(at(pxi, pyi - 1), best, at(pxi, pyi + 1));
        let wrap = |p: usize, n: usize| {
            if p > n / 2 {
                p as f64 - n as f64
            } else {
                p as f64
            }
        };
        ([wrap(px, w) + dx, wrap(py, h) + dy], best / norm)
    }
}

/// The image minus its mean, times a Hann window, zero-padded to `w x h`.
fn windowed(img: &GrayF32, w: usize, h: usize) -> Vec<Complex<f64>> {
    let (ih, iw) = img.dim();
    let mean = img.iter().map(|&v| v as f64).sum::<f64>() / (iw * ih) as f64;
    let hann = |i: usize, n: usize| {
        if n < 2 {
            1.0
        } else {
            0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / (n - 1) as f64).cos()
        }
    };
    // The window along a row, once per image rather than once per pixel (a cosine each: the
    // orientation search windows 156 images).
    let hann_x: Vec<f64> = (0..iw).map(|x| hann(x, iw)).collect();
    let mut buf = vec![Complex::new(0.0, 0.0); w * h];
    for y in 0..ih {
        let wy = hann(y, ih);
        for (x, &wx) in hann_x.iter().enumerate() {
            buf[y * w + x] = Complex::new((img[[y, x]] as f64 - mean) * wy * wx, 0.0);
        }
    }
    buf
}

/// In-place 2D FFT of a `w`-wide buffer with `[row, column]` plans; unnormalised.
fn fft2(buf: &mut [Complex<f64>], w: usize, [row_fft, col_fft]: &[Arc<dyn Fft<f64>>; 2]) {
    let h = buf.len() / w;
    // One scratch for every row and column (`process` allocates one per call).
    let (row_scratch, col_scratch) = (
        row_fft.get_inplace_scratch_len(),
        col_fft.get_inplace_scratch_len(),
    );
    let mut scratch = vec![Complex::new(0.0, 0.0); row_scratch.max(col_scratch)];
    row_fft.process_with_scratch(buf, &mut scratch[..row_scratch]);
    let mut col = vec![Complex::new(0.0, 0.0); h];
    for x in 0..w {
        for y in 0..h {
            col[y] = buf[y * w + x];
        }
        col_fft.process_with_scratch(&mut col, &mut scratch[..col_scratch]);
        for y in 0..h {
            buf[y * w + x] = col[y];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texture(x: f64, y: f64) -> f32 {
        // Not periodic: a periodic texture makes any translation ambiguous.
        thread_local!(static TEX: crate::synth::Texture = crate::synth::Texture::procedural(128, 96, 7));
        TEX.with(|t| t.value(x, y) as f32)
    }

    #[test]
    fn recovers_large_translations_between_different_sizes() {
        let d = [17.4, -9.6];
        let fixed = GrayF32::from_shape_fn((96, 128), |(y, x)| texture(x as f64, y as f64));
        let moving = GrayF32::from_shape_fn((90, 120), |(y, x)| {
            texture(x as f64 - d[0], y as f64 - d[1])
        });
        let (est, peak) = phase_correlation(&fixed, &moving);
        assert!(
            (est[0] - d[0]).abs() < 0.6 && (est[1] - d[1]).abs() < 0.6,
            "{est:?}"
        );
        assert!(peak > 0.0);
    }
}
