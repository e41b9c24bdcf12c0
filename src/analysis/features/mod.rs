//! Feature-based initialisation: oriented binary keypoints on a coarse level of both images
//! (`keypoints`), mutual nearest neighbours with a ratio test, and a seeded MSAC fit of a
//! similarity (or an affine) from fixed to moving points (`robust`), with the mirror case
//! tried too. Rotation-, scale- and flip-invariant, for sections mounted at any angle.

mod images;
mod keypoints;
mod robust;

pub use images::{ImageMatches, MatchPoint};
pub use keypoints::{Keypoint, hamming, keypoints};
pub use robust::{Model, Pair, RobustFit, fit};

use crate::raster::GrayF32;
use crate::transform::Affine;

/// A match: a fixed and a moving keypoint (indices) and the descriptors' distance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Match {
    /// Index into the fixed keypoints.
    pub fixed: usize,
    /// Index into the moving keypoints.
    pub moving: usize,
    /// Hamming distance of their descriptors.
    pub distance: u32,
}

/// Lowe's ratio: the best distance must be below this share of the second best.
const RATIO: f64 = 0.85;

/// Mutual nearest neighbours (Hamming) passing the ratio test on both sides.
pub fn match_descriptors(fixed: &[Keypoint], moving: &[Keypoint]) -> Vec<Match> {
    let best_two = |a: &Keypoint, others: &[Keypoint]| {
        let (mut best, mut second) = ((u32::MAX, usize::MAX), u32::MAX);
        for (j, b) in others.iter().enumerate() {
            let d = hamming(&a.descriptor, &b.descriptor);
            if d < best.0 {
                second = best.0;
                best = (d, j);
            } else if d < second {
                second = d;
            }
        }
        (best, second)
    };
    let forward: Vec<_> = fixed.iter().map(|k| best_two(k, moving)).collect();
    let backward: Vec<_> = moving.iter().map(|k| best_two(k, fixed)).collect();
    let passes = |d: u32, second: u32| (d as f64) < RATIO * second as f64;
    forward
        .iter()
        .enumerate()
        .filter_map(|(i, &((d, j), second))| {
            let ((back_d, back_i), back_second) = *backward.get(j)?;
            (back_i == i && passes(d, second) && passes(back_d, back_second)).then_some(Match {
                fixed: i,
                moving: j,
                distance: d,
            })
        })
        .collect()
}

/// The outcome of a feature-based initialisation.
#[derive(Debug, Clone)]
pub struct FeatureInit {
    /// Fixed to moving (`q = A p + b`, full-resolution pixels of the images given).
    pub transform: Affine,
    /// Whether the moving image is a mirror image of the fixed one.
    pub mirrored: bool,
    /// Keypoints found in each image.
    pub keypoints: [usize; 2],
    /// The fixed keypoints' positions.
    pub fixed_points: Vec<[f64; 2]>,
    /// The moving keypoints' positions (in the moving image, not its mirror image).
    pub moving_points: Vec<[f64; 2]>,
    /// The matches the fit saw, and which of them are inliers.
    pub matches: Vec<(Match, bool)>,
    /// Root-mean-square residual of the inliers, pixels.
    pub rms_px: f64,
    /// Inliers.
    pub inliers: usize,
}

/// Fewest inliers for a fit to count.
pub const MIN_INLIERS: usize = 8;

/// Longest side, pixels, of the coarse copies (pyramid levels) keypoints are found on by
/// default: the registration's feature initialisation, `analyze features` and the GUI's
/// matches view.
pub const MATCH_SIDE: usize = 512;

/// The robust fit of `model` to matches (fixed point, moving point, both in their images'
/// pixels): when `mirrored`, fitted to the moving points flipped left–right in an image `width`
/// pixels wide, the flip composed after, so a similarity can map onto a mirror image.
pub fn fit_matches(
    pairs: &[Pair],
    mirrored: bool,
    width: usize,
    model: Model,
    seed: u64,
) -> Option<RobustFit> {
    let flip = |x: f64| (width as f64 - 1.0) - x;
    let frame: Vec<Pair> = pairs
        .iter()
        .map(|&(p, q)| (p, if mirrored { [flip(q[0]), q[1]] } else { q }))
        .collect();
    fit(&frame, model, seed).map(|mut f| {
        if mirrored {
            let t = &mut f.transform;
            t.matrix[0] = -t.matrix[0];
            t.matrix[1] = -t.matrix[1];
            t.translation[0] = flip(t.translation[0]);
        }
        f
    })
}

/// A fit at least this many inliers strong, and with at least half its matches inliers, is
/// confident ([`FeatureInit::is_confident`]).
pub const CONFIDENT_INLIERS: usize = 60;

impl FeatureInit {
    /// Whether the fit has at least [`CONFIDENT_INLIERS`] and at least half its matches are
    /// inliers: most matches agree on one transform. The registration then trusts it for the
    /// orientation and skips the orientation search (meant for pairs whose keypoints do not
    /// match, such as different stains, where fits have 9 to 11 inliers of 18 to 29 matches).
    pub fn is_confident(&self) -> bool {
        is_confident(self.inliers, self.matches.len())
    }
}

fn is_confident(inliers: usize, matches: usize) -> bool {
    inliers >= CONFIDENT_INLIERS && 2 * inliers >= matches
}

/// Matches `fixed` against `moving` and, unless that fit is confident, against its mirror
/// image; the fit with more inliers wins. `None` (with the reason) when neither has
/// [`MIN_INLIERS`]. (A confident fit leaves the mirror image too few matches to beat it: most
/// of the moving keypoints already match one transform.)
pub fn feature_init(
    fixed: &GrayF32,
    moving: &GrayF32,
    model: Model,
    seed: u64,
) -> Result<FeatureInit, String> {
    const COUNT: usize = 1500;
    let (h, w) = moving.dim();
    let (kf, plain) = rayon::join(|| keypoints(fixed, COUNT), || keypoints(moving, COUNT));
    let attempt = |km: Vec<Keypoint>, mirrored: bool| {
        let matches = match_descriptors(&kf, &km);
        // The moving points in the moving image, not its mirror image.
        let points: Vec<[f64; 2]> = km
            .iter()
            .map(|k| [if mirrored { (w - 1) as f64 - k.x } else { k.x }, k.y])
            .collect();
        let pairs: Vec<Pair> = matches
            .iter()
            .map(|m| ([kf[m.fixed].x, kf[m.fixed].y], points[m.moving]))
            .collect();
        let fit = fit_matches(&pairs, mirrored, w, model, seed);
        (points, matches, fit, mirrored)
    };
    let inliers = |a: &(Vec<[f64; 2]>, Vec<Match>, Option<RobustFit>, bool)| {
        a.2.as_ref()
            .map_or(0, |f| f.inliers.iter().filter(|&&i| i).count())
    };
    let plain = attempt(plain, false);
    let best = if is_confident(inliers(&plain), plain.1.len()) {
        plain
    } else {
        let mirror = GrayF32::from_shape_fn((h, w), |(y, x)| moving[[y, w - 1 - x]]);
        let flipped = attempt(keypoints(&mirror, COUNT), true);
        if inliers(&flipped) > inliers(&plain) {
            flipped
        } else {
            plain
        }
    };
    let count = inliers(&best);
    let (moving_points, matches, fit, mirrored) = best;
    let moving_keypoints = moving_points.len();
    let fit = fit.filter(|_| count >= MIN_INLIERS).ok_or_else(|| {
        format!(
            "{count} inlier matches (at least {MIN_INLIERS} needed) among {} matches of {} and {moving_keypoints} keypoints",
            matches.len(),
            kf.len()
        )
    })?;
    Ok(FeatureInit {
        transform: fit.transform,
        mirrored,
        keypoints: [kf.len(), moving_keypoints],
        fixed_points: kf.iter().map(|k| [k.x, k.y]).collect(),
        moving_points,
        matches: matches
            .into_iter()
            .zip(fit.inliers.iter().copied())
            .collect(),
        rms_px: fit.rms_px,
        inliers: count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::Texture;
    use crate::transform::Transform;

    /// A 256² textured image, and the image of it through the map `q = T(p)` (so that
    /// `moving(T(p)) = fixed(p)`).
    fn pair(angle_deg: f64, scale: f64, mirror: bool) -> (GrayF32, GrayF32, Affine) {
        let n = 256;
        let texture = Texture::procedural(n, n, 3);
        let fixed =
            GrayF32::from_shape_fn((n, n), |(y, x)| texture.value(x as f64, y as f64) as f32);
        let c = (n as f64 - 1.0) / 2.0;
        let mut t = Affine::similarity(angle_deg.to_radians(), scale, [3.0, -2.0], [c, c]);
        if mirror {
            // Then x -> n - 1 - x.
            let [a, b, cc, d] = t.matrix;
            t = Affine::from_matrix(
                [-a, -b, cc, d],
                [-t.translation[0], t.translation[1]],
                [c, c],
            );
        }
        let inverse = t.inverse().unwrap();
        let moving = GrayF32::from_shape_fn((n, n), |(y, x)| {
            let [px, py] = inverse.map_point(x as f64, y as f64);
            texture.value(px, py) as f32
        });
        (fixed, moving, t)
    }

    fn max_error(a: &Affine, b: &Affine) -> f64 {
        [[40.0, 40.0], [216.0, 40.0], [40.0, 216.0], [216.0, 216.0]]
            .iter()
            .map(|p: &[f64; 2]| {
                let (q, r) = (a.map_point(p[0], p[1]), b.map_point(p[0], p[1]));
                (q[0] - r[0]).hypot(q[1] - r[1])
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn rotations_scales_and_mirrors_are_recovered_from_features_with_confident_fits() {
        for (angle, scale, mirror) in [
            (37.0, 1.0, false),
            (90.0, 1.0, false),
            (180.0, 1.0, false),
            (240.0, 1.0, true),
            (15.0, 0.7, false),
            (300.0, 0.5, false),
            (120.0, 1.6, true),
        ] {
            let (fixed, moving, truth) = pair(angle, scale, mirror);
            let init = feature_init(&fixed, &moving, Model::Similarity, 1)
                .unwrap_or_else(|e| panic!("{angle}° x{scale} mirror {mirror}: {e}"));
            assert_eq!(init.mirrored, mirror, "{angle}°");
            // Confident: the plain cases skipped the mirror image, and a mirrored case's plain
            // fit (which was not) did not hide the mirror image's.
            assert!(
                init.is_confident(),
                "{angle}° x{scale}: {} inliers",
                init.inliers
            );
            let error = max_error(&init.transform, &truth);
            assert!(
                error < 2.0,
                "{angle}° x{scale} mirror {mirror}: {error:.2} px, {} inliers",
                init.inliers
            );
        }
    }
}
