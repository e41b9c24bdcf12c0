//! Target registration error on landmark pairs, scored as ANHIR scores it: the error of each
//! fixed landmark mapped through the transform against its moving partner, relative to the
//! fixed image's diagonal (rTRE), and the robustness, the share of landmarks that got closer.

use crate::transform::Transform;

/// One landmark pair under a transform (pixels).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LandmarkError {
    /// Position in the files (0-based).
    pub index: usize,
    /// The fixed image's landmark `p`.
    pub fixed: [f64; 2],
    /// Its partner in the moving image.
    pub moving: [f64; 2],
    /// `T(p)`: where the transform puts the fixed landmark in the moving image.
    pub mapped: [f64; 2],
    /// `|p - moving|`: the error without registration.
    pub before_px: f64,
    /// `|T(p) - moving|`.
    pub after_px: f64,
}

/// The summary (`tre.json`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TreReport {
    /// Landmark pairs scored (the first `min(n_fixed, n_moving)` of each file, as ANHIR pairs
    /// them).
    pub pairs: usize,
    /// Landmarks left without a partner (the longer file's tail).
    pub unpaired: usize,
    /// The fixed image's diagonal in pixels, the unit of rTRE.
    pub diagonal: f64,
    /// Median rTRE after registration.
    pub rtre_median: f64,
    /// Mean rTRE after registration.
    pub rtre_mean: f64,
    /// Largest rTRE after registration.
    pub rtre_max: f64,
    /// Median rTRE before registration.
    pub rtre_before_median: f64,
    /// Mean rTRE before registration.
    pub rtre_before_mean: f64,
    /// Median TRE after registration, in pixels.
    pub tre_median_px: f64,
    /// Mean TRE after registration, in pixels.
    pub tre_mean_px: f64,
    /// Largest TRE after registration, in pixels.
    pub tre_max_px: f64,
    /// The share of landmarks whose error shrank (ANHIR's robustness).
    pub robustness: f64,
}

/// Scores the pairs `fixed[i]`, `moving[i]` under `transform`; `diagonal` is the fixed image's
/// diagonal. `None` when there is no pair.
pub fn landmark_errors(
    fixed: &[[f64; 2]],
    moving: &[[f64; 2]],
    transform: &dyn Transform,
    diagonal: f64,
) -> Option<(Vec<LandmarkError>, TreReport)> {
    let errors: Vec<LandmarkError> = fixed
        .iter()
        .zip(moving)
        .enumerate()
        .map(|(index, (&p, &m))| {
            let mapped = transform.map_point(p[0], p[1]);
            LandmarkError {
                index,
                fixed: p,
                moving: m,
                mapped,
                before_px: distance(p, m),
                after_px: distance(mapped, m),
            }
        })
        .collect();
    if errors.is_empty() {
        return None;
    }
    let after: Vec<f64> = errors.iter().map(|e| e.after_px).collect();
    let before: Vec<f64> = errors.iter().map(|e| e.before_px).collect();
    let n = errors.len() as f64;
    let improved = errors.iter().filter(|e| e.after_px < e.before_px).count();
    let report = TreReport {
        pairs: errors.len(),
        unpaired: fixed.len().max(moving.len()) - errors.len(),
        diagonal,
        rtre_median: median(&after) / diagonal,
        rtre_mean: mean(&after) / diagonal,
        rtre_max: after.iter().copied().fold(0.0, f64::max) / diagonal,
        rtre_before_median: median(&before) / diagonal,
        rtre_before_mean: mean(&before) / diagonal,
        tre_median_px: median(&after),
        tre_mean_px: mean(&after),
        tre_max_px: after.iter().copied().fold(0.0, f64::max),
        robustness: improved as f64 / n,
    };
    Some((errors, report))
}

fn distance(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// The median (the mean of the middle two for an even count).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::{Affine, Identity};

    #[test]
    fn a_known_shift_scores_as_computed_by_hand() {
        // Moving landmarks are the fixed ones shifted by (3, 4): 5 px before registration.
        let fixed = [[10.0, 10.0], [50.0, 20.0], [30.0, 70.0], [90.0, 90.0]];
        let moving: Vec<[f64; 2]> = fixed.iter().map(|p| [p[0] + 3.0, p[1] + 4.0]).collect();
        let diagonal = 100.0_f64.hypot(100.0);
        let (errors, identity) = landmark_errors(&fixed, &moving, &Identity, diagonal).unwrap();
        assert!(errors.iter().all(|e| (e.before_px - 5.0).abs() < 1e-12));
        assert_eq!(identity.robustness, 0.0);
        assert!((identity.rtre_median - 5.0 / diagonal).abs() < 1e-12);
        // A transform that gets it right except for one landmark moved a further 6 px.
        let mut moving_off = moving.clone();
        moving_off[3][0] += 6.0;
        let shift = Affine::from_matrix([1.0, 0.0, 0.0, 1.0], [3.0, 4.0], [0.0, 0.0]);
        let (errors, r) = landmark_errors(&fixed, &moving_off, &shift, diagonal).unwrap();
        assert!((errors[3].after_px - 6.0).abs() < 1e-9);
        assert!((errors[3].before_px - 9.0_f64.hypot(4.0)).abs() < 1e-9);
        assert!((r.tre_mean_px - 1.5).abs() < 1e-9);
        assert!(r.tre_median_px.abs() < 1e-9);
        assert!((r.rtre_max - 6.0 / diagonal).abs() < 1e-12);
        assert_eq!(r.robustness, 1.0);
        assert_eq!((r.pairs, r.unpaired), (4, 0));
        let (_, short) = landmark_errors(&fixed[..3], &moving, &shift, diagonal).unwrap();
        assert_eq!((short.pairs, short.unpaired), (3, 1));
        assert!(landmark_errors(&[], &moving, &shift, diagonal).is_none());
    }
}
