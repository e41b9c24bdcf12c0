//! A seeded MSAC fit of a similarity or an affine to point correspondences, refined by least
//! squares on its inliers (locally optimised, as LO-RANSAC does), then fenced: inliers whose
//! residual is an outlier among the inliers' residuals (Tukey's fence, as VALIS filters its
//! matches) are dropped and the model refitted.

use crate::rng::SplitMix64;
use crate::transform::{Affine, Transform};

/// The model fitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    /// Rotation, uniform scale and translation (4 parameters).
    #[default]
    Similarity,
    /// A general affine (6 parameters).
    Affine,
}

/// A fit and its inliers.
#[derive(Debug, Clone, PartialEq)]
pub struct RobustFit {
    /// `q = A p + b` (centre at the origin).
    pub transform: Affine,
    /// Per correspondence: within the threshold.
    pub inliers: Vec<bool>,
    /// Root-mean-square residual of the inliers, pixels.
    pub rms_px: f64,
}

/// A correspondence: a fixed point and a moving point.
pub type Pair = ([f64; 2], [f64; 2]);

/// Samples drawn.
const ITERATIONS: usize = 2000;
/// Inlier threshold, pixels.
const THRESHOLD: f64 = 3.0;
/// The outlier fence (VALIS's, on the inliers' residuals) never drops residuals below this.
const FENCE_FLOOR: f64 = 1.0;

/// Tukey's upper fence of `residuals`, `Q3 + 1.5 (Q3 - Q1)`, at least [`FENCE_FLOOR`]: an
/// inlier beyond it sits near the threshold only because the fit leans towards it.
fn upper_fence(residuals: &[f64]) -> f64 {
    let mut sorted = residuals.to_vec();
    sorted.sort_by(f64::total_cmp);
    let quantile = |q: f64| {
        let at = q * (sorted.len() - 1) as f64;
        let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
        sorted[lo] + (at - lo as f64) * (sorted[hi] - sorted[lo])
    };
    let (q1, q3) = (quantile(0.25), quantile(0.75));
    (q3 + 1.5 * (q3 - q1)).max(FENCE_FLOOR)
}

/// `q = A p + b` as an [`Affine`] about the origin.
fn affine(a: [f64; 4], b: [f64; 2]) -> Affine {
    Affine::from_matrix(a, b, [0.0, 0.0])
}

/// Least-squares similarity over `pairs` (closed form on centred points).
fn least_squares_similarity(pairs: &[Pair]) -> Option<Affine> {
    let n = pairs.len() as f64;
    if pairs.len() < 2 {
        return None;
    }
    let mean = |f: fn(&Pair) -> [f64; 2]| {
        let s = pairs
            .iter()
            .map(f)
            .fold([0.0, 0.0], |a, p| [a[0] + p[0], a[1] + p[1]]);
        [s[0] / n, s[1] / n]
    };
    let (pm, qm) = (mean(|x| x.0), mean(|x| x.1));
    let (mut re, mut im, mut norm) = (0.0, 0.0, 0.0);
    for (p, q) in pairs {
        let (px, py) = (p[0] - pm[0], p[1] - pm[1]);
        let (qx, qy) = (q[0] - qm[0], q[1] - qm[1]);
        // α = Σ q conj(p) / Σ |p|²
        re += qx * px + qy * py;
        im += qy * px - qx * py;
        norm += px * px + py * py;
    }
    if norm < 1e-9 {
        return None;
    }
    let (a, b) = (re / norm, im / norm);
    let matrix = [a, -b, b, a];
    let t = [
        qm[0] - (a * pm[0] - b * pm[1]),
        qm[1] - (b * pm[0] + a * pm[1]),
    ];
    Some(affine(matrix, t))
}

/// Least-squares affine over `pairs` (normal equations, one per output coordinate).
fn least_squares_affine(pairs: &[Pair]) -> Option<Affine> {
    if pairs.len() < 3 {
        return None;
    }
    let mut m = [[0.0f64; 3]; 3];
    let (mut rx, mut ry) = ([0.0f64; 3], [0.0f64; 3]);
    for (p, q) in pairs {
        let v = [p[0], p[1], 1.0];
        for i in 0..3 {
            for j in 0..3 {
                m[i][j] += v[i] * v[j];
            }
            rx[i] += v[i] * q[0];
            ry[i] += v[i] * q[1];
        }
    }
    let solve = |r: [f64; 3]| -> Option<[f64; 3]> {
        // Cramer's rule on the 3 x 3 system.
        let det = |a: [[f64; 3]; 3]| {
            a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1])
                - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
                + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0])
        };
        let d = det(m);
        if d.abs() < 1e-9 {
            return None;
        }
        Some(std::array::from_fn(|k| {
            let mut a = m;
            for (row, value) in a.iter_mut().zip(r) {
                row[k] = value;
            }
            det(a) / d
        }))
    };
    let (x, y) = (solve(rx)?, solve(ry)?);
    Some(affine([x[0], x[1], y[0], y[1]], [x[2], y[2]]))
}

/// The MSAC fit of `model` to `pairs` (fixed point, moving point), seeded; `None` with too
/// few correspondences.
pub fn fit(pairs: &[Pair], model: Model, seed: u64) -> Option<RobustFit> {
    let sample = match model {
        Model::Similarity => 2,
        Model::Affine => 3,
    };
    if pairs.len() < sample {
        return None;
    }
    let estimate = |subset: &[Pair]| match model {
        Model::Similarity => least_squares_similarity(subset),
        Model::Affine => least_squares_affine(subset),
    };
    let cost = |t: &Affine| -> f64 {
        pairs
            .iter()
            .map(|(p, q)| {
                let r = t.map_point(p[0], p[1]);
                ((r[0] - q[0]).powi(2) + (r[1] - q[1]).powi(2)).min(THRESHOLD * THRESHOLD)
            })
            .sum()
    };
    let mut rng = SplitMix64::new(seed);
    let mut best: Option<(f64, Affine)> = None;
    let mut subset = Vec::with_capacity(sample);
    for _ in 0..ITERATIONS {
        subset.clear();
        while subset.len() < sample {
            let i = rng.below(pairs.len() as u64) as usize;
            if !subset.contains(&pairs[i]) {
                subset.push(pairs[i]);
            }
        }
        let Some(t) = estimate(&subset) else {
            continue;
        };
        let c = cost(&t);
        if best.as_ref().is_none_or(|(b, _)| c < *b) {
            best = Some((c, t));
        }
    }
    let (_, mut transform) = best?;
    let residual = |t: &Affine, (p, q): &Pair| {
        let r = t.map_point(p[0], p[1]);
        (r[0] - q[0]).hypot(r[1] - q[1])
    };
    let inliers_of = |t: &Affine| -> Vec<bool> {
        pairs
            .iter()
            .map(|pair| residual(t, pair) <= THRESHOLD)
            .collect()
    };
    let chosen = |mask: &[bool]| -> Vec<Pair> {
        pairs
            .iter()
            .zip(mask)
            .filter(|(_, i)| **i)
            .map(|(p, _)| *p)
            .collect()
    };
    // Local optimisation: refit on the inliers while that helps.
    for _ in 0..5 {
        let inside = chosen(&inliers_of(&transform));
        let refined = match model {
            Model::Similarity => least_squares_similarity(&inside),
            Model::Affine => least_squares_affine(&inside),
        };
        match refined {
            Some(t) if cost(&t) <= cost(&transform) => transform = t,
            _ => break,
        }
    }
    // The fence: inliers whose residual stands out from the others' are dropped, then the
    // model is refitted on the rest.
    let residuals: Vec<f64> = pairs
        .iter()
        .map(|pair| residual(&transform, pair))
        .collect();
    let mut inliers: Vec<bool> = residuals.iter().map(|&r| r <= THRESHOLD).collect();
    let inside: Vec<f64> = residuals
        .iter()
        .zip(&inliers)
        .filter(|(_, i)| **i)
        .map(|(r, _)| *r)
        .collect();
    if inside.len() > 2 * sample {
        let fence = upper_fence(&inside);
        let fenced: Vec<bool> = residuals
            .iter()
            .zip(&inliers)
            .map(|(&r, &i)| i && r <= fence)
            .collect();
        let kept = chosen(&fenced);
        if kept.len() >= sample
            && let Some(t) = estimate(&kept)
        {
            transform = t;
            inliers = fenced;
        }
    }
    let kept = chosen(&inliers);
    let sum: f64 = kept
        .iter()
        .map(|(p, q)| {
            let r = transform.map_point(p[0], p[1]);
            (r[0] - q[0]).powi(2) + (r[1] - q[1]).powi(2)
        })
        .sum();
    let count = kept.len();
    Some(RobustFit {
        transform,
        inliers,
        rms_px: if count > 0 {
            (sum / count as f64).sqrt()
        } else {
            0.0
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fence_drops_inliers_that_stand_out_among_the_residuals() {
        let truth = affine([0.8, -0.6, 0.6, 0.8], [5.0, -3.0]);
        let mut rng = SplitMix64::new(5);
        // 50 matches within 0.2 px, 5 that a wrong neighbour put 2.5 px off (inside the
        // threshold, so MSAC alone keeps them), 10 wild ones.
        let pairs: Vec<Pair> = (0..65)
            .map(|i| {
                let p = [rng.uniform(0.0, 200.0), rng.uniform(0.0, 200.0)];
                let q = truth.map_point(p[0], p[1]);
                let q = match i {
                    0..50 => [q[0] + rng.uniform(-0.1, 0.1), q[1] + rng.uniform(-0.1, 0.1)],
                    50..55 => [q[0] + 2.5, q[1]],
                    _ => [rng.uniform(0.0, 200.0), rng.uniform(0.0, 200.0)],
                };
                (p, q)
            })
            .collect();
        let f = fit(&pairs, Model::Similarity, 3).unwrap();
        assert!(f.inliers[..50].iter().all(|&i| i), "{:?}", f.inliers);
        assert!(f.inliers[50..].iter().all(|&i| !i), "{:?}", f.inliers);
        assert!(f.rms_px < 0.15, "{}", f.rms_px);
        assert_eq!(upper_fence(&[0.0, 0.0, 0.0, 0.0]), FENCE_FLOOR);
    }

    #[test]
    fn the_fit_ignores_outliers_and_is_reproducible() {
        let truth = affine([0.8, -0.6, 0.6, 0.8], [5.0, -3.0]);
        let mut rng = SplitMix64::new(4);
        let pairs: Vec<Pair> = (0..60)
            .map(|i| {
                let p = [rng.uniform(0.0, 200.0), rng.uniform(0.0, 200.0)];
                let q = if i % 3 == 0 {
                    [rng.uniform(0.0, 200.0), rng.uniform(0.0, 200.0)]
                } else {
                    truth.map_point(p[0], p[1])
                };
                (p, q)
            })
            .collect();
        for model in [Model::Similarity, Model::Affine] {
            let f = fit(&pairs, model, 9).unwrap();
            assert_eq!(f.inliers.iter().filter(|&&i| i).count(), 40, "{model:?}");
            assert!(f.rms_px < 1e-6);
            for (a, b) in f.transform.matrix.iter().zip(truth.matrix) {
                assert!((a - b).abs() < 1e-6);
            }
            assert_eq!(fit(&pairs, model, 9), Some(f));
        }
    }
}
