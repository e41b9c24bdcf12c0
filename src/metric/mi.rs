//! Mattes mutual information (Mattes et al. 2003): a joint histogram with a zero-order Parzen
//! window on the fixed intensities and a cubic B-spline window on the moving intensities, which
//! makes the value smooth in the transform parameters and the gradient analytic.

use rayon::prelude::*;

use super::{MI_BINS, Probe, SampleSet};

/// Centred cubic B-spline kernel.
#[inline]
fn bspline3(t: f64) -> f64 {
    let a = t.abs();
    if a < 1.0 {
        (4.0 - 6.0 * a * a + 3.0 * a * a * a) / 6.0
    } else if a < 2.0 {
        let b = 2.0 - a;
        b * b * b / 6.0
    } else {
        0.0
    }
}

/// Derivative of [`bspline3`].
#[inline]
fn bspline3_derivative(t: f64) -> f64 {
    let a = t.abs();
    let s = t.signum();
    if a < 1.0 {
        s * (-2.0 * a + 1.5 * a * a)
    } else if a < 2.0 {
        let b = 2.0 - a;
        -s * 0.5 * b * b
    } else {
        0.0
    }
}

/// Samples per histogram task. Chunks are fixed in size and summed in order, so the value does
/// not depend on the number of threads.
const SAMPLES_PER_CHUNK: usize = 8192;

/// Returns `-MI` and appends `d(-MI)/dM_i` for every sample to `weights`.
pub(super) fn mattes(
    samples: &SampleSet,
    probes: &[Probe],
    valid: usize,
    moving_range: (f64, f64),
    weights: &mut Vec<f64>,
) -> f64 {
    let bins = MI_BINS;
    // Moving bins are padded by two on each side for the cubic window's support.
    let mbins = bins + 4;
    let (flo, fhi) = samples
        .points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), s| {
            (a.min(s.value as f64), b.max(s.value as f64))
        });
    let fscale = (bins - 1) as f64 / (fhi - flo).max(1e-12);
    let (mlo, mhi) = moving_range;
    let mdelta = (mhi - mlo).max(1e-12) / (bins - 1) as f64;
    let fixed_bin = |f: f32| (((f as f64 - flo) * fscale).round() as usize).min(bins - 1);
    let moving_pos = |m: f64| ((m - mlo) / mdelta + 2.0).clamp(2.0, (bins + 1) as f64);

    let n = valid as f64;
    let chunk_histograms: Vec<Vec<f64>> = samples
        .points
        .par_chunks(SAMPLES_PER_CHUNK)
        .zip(probes.par_chunks(SAMPLES_PER_CHUNK))
        .map(|(points, probes)| {
            let mut joint = vec![0.0f64; bins * mbins];
            for (s, p) in points.iter().zip(probes) {
                let Some((m, _, _)) = p else { continue };
                let fb = fixed_bin(s.value);
                let eta = moving_pos(*m);
                let k0 = eta.floor() as usize - 1;
                for k in k0..k0 + 4 {
                    joint[fb * mbins + k] += bspline3(k as f64 - eta);
                }
            }
            joint
        })
        .collect();
    let mut joint = vec![0.0f64; bins * mbins];
    for histogram in &chunk_histograms {
        joint.iter_mut().zip(histogram).for_each(|(j, h)| *j += h);
    }
    joint.iter_mut().for_each(|j| *j /= n);
    let mut pf = vec![0.0; bins];
    let mut pm = vec![0.0; mbins];
    for f in 0..bins {
        for k in 0..mbins {
            pf[f] += joint[f * mbins + k];
            pm[k] += joint[f * mbins + k];
        }
    }
    let mut mi = 0.0;
    // ln(p(f, k) / pm(k)) per bin, 0 where a probability vanishes: the sample weights below
    // look it up instead of taking four logarithms per sample.
    let mut log_conditional = vec![0.0f64; bins * mbins];
    for f in 0..bins {
        for k in 0..mbins {
            let p = joint[f * mbins + k];
            if p > 1e-16 {
                mi += p * (p / (pf[f] * pm[k])).ln();
                if pm[k] > 1e-16 {
                    log_conditional[f * mbins + k] = (p / pm[k]).ln();
                }
            }
        }
    }
    // d(-MI)/dM_i = (1 / (n * delta)) * sum_k B3'(k - eta_i) * ln(p(f_i, k) / pm(k))
    // (the derivative of eta is 1/delta and B3(k - eta) differentiates to -B3'(k - eta)).
    let weight = |s: &super::samples::Sample, p: &Probe| {
        let Some((m, _, _)) = p else { return 0.0 };
        let eta = (m - mlo) / mdelta + 2.0;
        if eta <= 2.0 || eta >= (bins + 1) as f64 {
            return 0.0; // clamped: locally constant
        }
        let row = &log_conditional[fixed_bin(s.value) * mbins..][..mbins];
        let k0 = eta.floor() as usize - 1;
        let acc: f64 = (k0..k0 + 4)
            .map(|k| bspline3_derivative(k as f64 - eta) * row[k])
            .sum();
        acc / (n * mdelta)
    };
    weights.par_extend(
        samples
            .points
            .par_iter()
            .zip(probes.par_iter())
            .map(|(s, p)| weight(s, p)),
    );
    -mi
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_is_a_partition_of_unity_with_matching_derivative() {
        for eta in [2.0f64, 2.3, 7.5, 10.99] {
            let k0 = eta.floor() as usize - 1;
            let s: f64 = (k0..k0 + 4).map(|k| bspline3(k as f64 - eta)).sum();
            assert!((s - 1.0).abs() < 1e-12);
        }
        for t in [-1.7, -0.4, 0.3, 1.2] {
            let h = 1e-6;
            let numeric = (bspline3(t + h) - bspline3(t - h)) / (2.0 * h);
            assert!((numeric - bspline3_derivative(t)).abs() < 1e-6);
        }
    }
}
