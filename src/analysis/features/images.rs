//! Feature matching of two whole images: keypoints on coarse copies (at most `side` pixels a
//! side), the matches and the fit, read out in full-resolution pixels; and a refit after a
//! person deletes matches (the Analysis panel's matches view, `alinify analyze features`).

use super::{MIN_INLIERS, Model, Pair, RobustFit, feature_init, fit_matches};
use crate::raster::{AnyImage, GrayF32, area_mean};
use crate::transform::{Affine, Transform};

/// One match, on the coarse levels the keypoints were found on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatchPoint {
    /// The fixed keypoint, coarse-level pixels.
    pub fixed: [f64; 2],
    /// The moving keypoint, coarse-level pixels (of the moving image, never its mirror image).
    pub moving: [f64; 2],
    /// Whether the current fit counts it.
    pub inlier: bool,
    /// Deleted by a person: left out of the refit.
    pub deleted: bool,
}

/// Two images' matches and their robust fit.
#[derive(Debug, Clone)]
pub struct ImageMatches {
    /// The coarse copies the keypoints were found on (fixed, moving), for pictures.
    pub coarse: [GrayF32; 2],
    /// Full-resolution pixels per coarse pixel (fixed, moving).
    pub factors: [f64; 2],
    /// Keypoints found (fixed, moving).
    pub keypoints: [usize; 2],
    /// The matches.
    pub matches: Vec<MatchPoint>,
    /// Whether the moving image is a mirror image of the fixed one.
    pub mirrored: bool,
    /// The model fitted.
    pub model: Model,
    /// The fit on the coarse levels (`q = A p + b`).
    pub fit: RobustFit,
    seed: u64,
}

/// An image's luminance on a grid of at most `side` pixels a side (its aspect kept), and the
/// full-resolution pixels per grid pixel.
fn coarse(image: &AnyImage, side: usize) -> (GrayF32, f64) {
    let (w, h) = (image.width(), image.height());
    let factor = (w.max(h) as f64 / side as f64).max(1.0);
    let size = [
        ((w as f64 / factor).round() as usize).max(1),
        ((h as f64 / factor).round() as usize).max(1),
    ];
    (area_mean(image, size), factor)
}

/// A coarse-level point in full-resolution pixels (pixel centres at integers on both).
fn full(p: [f64; 2], factor: f64) -> [f64; 2] {
    p.map(|v| (v + 0.5) * factor - 0.5)
}

impl ImageMatches {
    /// Keypoints on the images' coarse copies (longest side at most `side`), their matches
    /// and the fit of `model` (the mirror image tried too); why not, when too few match.
    pub fn compute(
        fixed: &AnyImage,
        moving: &AnyImage,
        side: usize,
        model: Model,
        seed: u64,
    ) -> Result<Self, String> {
        let ((cf, sf), (cm, sm)) = rayon::join(|| coarse(fixed, side), || coarse(moving, side));
        let init = feature_init(&cf, &cm, model, seed)?;
        let matches = init
            .matches
            .iter()
            .map(|(m, inlier)| MatchPoint {
                fixed: init.fixed_points[m.fixed],
                moving: init.moving_points[m.moving],
                inlier: *inlier,
                deleted: false,
            })
            .collect();
        let fit = RobustFit {
            transform: init.transform,
            inliers: init.matches.iter().map(|(_, i)| *i).collect(),
            rms_px: init.rms_px,
        };
        Ok(Self {
            coarse: [cf, cm],
            factors: [sf, sm],
            keypoints: init.keypoints,
            matches,
            mirrored: init.mirrored,
            model,
            fit,
            seed,
        })
    }

    /// A match's fixed point, full-resolution pixels.
    pub fn fixed_point(&self, i: usize) -> [f64; 2] {
        full(self.matches[i].fixed, self.factors[0])
    }

    /// A match's moving point, full-resolution pixels.
    pub fn moving_point(&self, i: usize) -> [f64; 2] {
        full(self.matches[i].moving, self.factors[1])
    }

    /// The fit as a full-resolution map from fixed to moving pixels.
    pub fn transform(&self) -> Affine {
        let [sf, sm] = self.factors;
        let t = &self.fit.transform;
        // q_F = (T(p_c) + ½) sm - ½ with p_c = (p_F + ½) / sf - ½.
        let c = 0.5 / sf - 0.5;
        let at_c = t.map_point(c, c);
        Affine::from_matrix(
            t.matrix.map(|v| v * sm / sf),
            at_c.map(|v| (v + 0.5) * sm - 0.5),
            [0.0, 0.0],
        )
    }

    /// Where the fit puts match `i`'s fixed point in the moving image, full resolution.
    pub fn predicted(&self, i: usize) -> [f64; 2] {
        let p = self.fixed_point(i);
        self.transform().map_point(p[0], p[1])
    }

    /// Match `i`'s residual under the fit, full-resolution pixels.
    pub fn residual(&self, i: usize) -> f64 {
        let (q, m) = (self.predicted(i), self.moving_point(i));
        (q[0] - m[0]).hypot(q[1] - m[1])
    }

    /// Inliers of the current fit.
    pub fn inliers(&self) -> usize {
        self.matches.iter().filter(|m| m.inlier).count()
    }

    /// Matches not deleted.
    pub fn kept(&self) -> usize {
        self.matches.iter().filter(|m| !m.deleted).count()
    }

    /// Root-mean-square residual of the inliers, full-resolution pixels.
    pub fn rms_px(&self) -> f64 {
        self.fit.rms_px * self.factors[1]
    }

    /// Deletes or restores match `i` (takes effect at the next [`Self::refit`]).
    pub fn set_deleted(&mut self, i: usize, deleted: bool) {
        if let Some(m) = self.matches.get_mut(i) {
            m.deleted = deleted;
        }
    }

    /// Fits the model again to the matches not deleted (the same seeded search, the same
    /// mirror); unchanged, with why, when fewer than [`MIN_INLIERS`] inliers remain.
    pub fn refit(&mut self) -> Result<(), String> {
        let kept: Vec<usize> = (0..self.matches.len())
            .filter(|&i| !self.matches[i].deleted)
            .collect();
        let pairs: Vec<Pair> = kept
            .iter()
            .map(|&i| (self.matches[i].fixed, self.matches[i].moving))
            .collect();
        let width = self.coarse[1].ncols();
        let fit = fit_matches(&pairs, self.mirrored, width, self.model, self.seed)
            .filter(|f| f.inliers.iter().filter(|&&i| i).count() >= MIN_INLIERS)
            .ok_or_else(|| {
                format!(
                    "fewer than {MIN_INLIERS} inliers among the {} matches kept",
                    kept.len()
                )
            })?;
        for m in &mut self.matches {
            m.inlier = false;
        }
        for (&i, &inlier) in kept.iter().zip(&fit.inliers) {
            self.matches[i].inlier = inlier;
        }
        self.fit = RobustFit {
            inliers: self.matches.iter().map(|m| m.inlier).collect(),
            ..fit
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::Texture;

    /// A textured image and its transposition (a mirror image turned through 90°).
    fn transposed(n: usize) -> (AnyImage, AnyImage) {
        let texture = Texture::procedural(n, n, 2);
        let image = GrayF32::from_shape_fn((n, n + 40), |(y, x)| {
            texture.value(x as f64, y as f64) as f32
        });
        let t = image.t().as_standard_layout().into_owned();
        (AnyImage::from_gray_f32(image), AnyImage::from_gray_f32(t))
    }

    #[test]
    fn a_refit_without_deleted_matches_keeps_the_transposition_and_marks_them() {
        let (fixed, moving) = transposed(300);
        let mut found = ImageMatches::compute(&fixed, &moving, 200, Model::Similarity, 1).unwrap();
        assert!(found.mirrored);
        let t = found.transform();
        // p = (x, y) -> (y, x) at full resolution.
        let q = t.map_point(100.0, 40.0);
        assert!(
            (q[0] - 40.0).abs() < 1.0 && (q[1] - 100.0).abs() < 1.0,
            "{q:?}"
        );
        let before = found.inliers();
        for i in (0..found.matches.len()).step_by(3) {
            found.set_deleted(i, true);
        }
        found.refit().unwrap();
        assert!(found.inliers() < before && found.inliers() >= MIN_INLIERS);
        assert!(found.matches.iter().all(|m| !(m.deleted && m.inlier)));
        let q = found.transform().map_point(100.0, 40.0);
        assert!(
            (q[0] - 40.0).abs() < 1.0 && (q[1] - 100.0).abs() < 1.0,
            "{q:?}"
        );
        assert!(found.residual(1) >= 0.0);
        // Deleting all but a few refuses and changes nothing.
        let kept = found.clone();
        for i in 0..found.matches.len() {
            found.set_deleted(i, i >= 4);
        }
        assert!(found.refit().is_err());
        assert_eq!(found.fit, kept.fit);
    }
}
