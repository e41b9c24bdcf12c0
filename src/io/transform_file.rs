//! `transform.json`: the project's complete, self-describing transform file.

use super::{flo, write_atomic};
use crate::transform::{
    Affine, AffineBSpline, BSplineTransform, Composed, Identity, Transform, dense_transform,
};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// A serialisable description of a transform.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TransformSpec {
    /// No change.
    Identity,
    /// An affine map about a centre.
    Affine(Affine),
    /// A cubic B-spline displacement.
    Bspline(BSplineTransform),
    /// An affine plus a B-spline displacement on the fixed grid: `q = A(p) + d(p)`.
    #[serde(rename = "affine_bspline")]
    AffineBspline(AffineBSpline),
    /// A dense displacement field stored beside the JSON as a `.flo` file.
    Dense {
        /// Path of the `.flo`, relative to the JSON file's folder.
        field: PathBuf,
        /// Full-resolution pixels per pixel of the stored field (a power of two when the field
        /// was computed on a pyramid level; 1 when it is on the fixed image's own grid).
        #[serde(default = "unit_scale", skip_serializing_if = "is_unit_scale")]
        scale: f64,
    },
    /// The exponential of a stationary velocity field stored beside the JSON as a `.flo` (the
    /// demons mode's result, composed with its affine): `p ↦ exp(v)(p)`, computed by scaling
    /// and squaring on load. Its inverse is the exponential of `−v`.
    Velocity {
        /// Path of the `.flo`, relative to the JSON file's folder.
        field: PathBuf,
        /// Full-resolution pixels per pixel of the stored field (a power of two); the velocity
        /// is in pixels of its own grid.
        #[serde(default = "unit_scale", skip_serializing_if = "is_unit_scale")]
        scale: f64,
    },
    /// A thin-plate spline through landmark pairs.
    #[serde(rename = "thin_plate")]
    ThinPlate(crate::transform::ThinPlateSpline),
    /// Steps applied in order (first listed, first applied).
    Composed {
        /// The steps.
        steps: Vec<TransformSpec>,
    },
}

fn unit_scale() -> f64 {
    1.0
}

fn is_unit_scale(scale: &f64) -> bool {
    *scale == 1.0
}

/// Size of an image in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageSize {
    /// Width.
    pub width: usize,
    /// Height.
    pub height: usize,
}

/// The contents of `transform.json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TransformFile {
    /// Always `"alinify-transform"`.
    pub format: String,
    /// File format version (1).
    pub version: u32,
    /// The fixed image's size: the output grid.
    pub fixed: ImageSize,
    /// The moving image's size.
    pub moving: ImageSize,
    /// Maps fixed-image points to moving-image points.
    pub transform: TransformSpec,
}

const FORMAT: &str = "alinify-transform";
/// The newest file format version this build reads and writes.
const VERSION: u32 = 1;

impl TransformFile {
    /// A file describing `transform` between images of the given sizes.
    pub fn new(fixed: [usize; 2], moving: [usize; 2], transform: TransformSpec) -> Self {
        Self {
            format: FORMAT.into(),
            version: VERSION,
            fixed: ImageSize {
                width: fixed[0],
                height: fixed[1],
            },
            moving: ImageSize {
                width: moving[0],
                height: moving[1],
            },
            transform,
        }
    }

    /// Reads and validates a transform file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = super::read_input_text(path)?;
        if text.trim().is_empty() {
            return Err(Error::Empty {
                path: path.into(),
                what: "file is empty".into(),
            });
        }
        let file: TransformFile = serde_json::from_str(&text).map_err(|e| Error::Corrupt {
            path: path.into(),
            detail: format!("not a valid transform file: {e}"),
        })?;
        if file.format != FORMAT {
            return Err(Error::Corrupt {
                path: path.into(),
                detail: format!("format is {:?}, expected {FORMAT:?}", file.format),
            });
        }
        if file.version == 0 || file.version > VERSION {
            return Err(Error::Unsupported {
                path: path.into(),
                detail: format!(
                    "transform file version {}; this alinify reads version {VERSION}",
                    file.version
                ),
            });
        }
        for (which, size) in [("fixed", file.fixed), ("moving", file.moving)] {
            let pixels = (size.width as u64).checked_mul(size.height as u64);
            if pixels.is_none_or(|p| p == 0 || p > super::max_pixels()) {
                return Err(Error::InvalidData {
                    path: path.into(),
                    detail: format!(
                        "{which} image size {} x {} is empty or over the limit of {} megapixels \
                         (set ALINIFY_MAX_PIXELS to change it)",
                        size.width,
                        size.height,
                        super::max_pixels() / 1_000_000
                    ),
                });
            }
        }
        file.transform.validate(path)?;
        Ok(file)
    }

    /// Writes the file atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomic(path, |w| {
            serde_json::to_writer_pretty(&mut *w, self).map_err(|e| Error::write(path, e))
        })
    }

    /// Builds the transform; dense fields are read relative to `base_dir`.
    pub fn build(&self, base_dir: &Path) -> Result<Box<dyn Transform>> {
        self.transform.build(base_dir)
    }
}

impl TransformSpec {
    /// Checks what JSON cannot: finite parameters, dense scales of at least 1, B-spline grids
    /// that cover their domain. `path` names the file in the error.
    pub(crate) fn validate(&self, path: &Path) -> Result<()> {
        let invalid = |detail: String| Error::InvalidData {
            path: path.into(),
            detail,
        };
        match self {
            TransformSpec::Identity => Ok(()),
            TransformSpec::Dense { scale, .. } | TransformSpec::Velocity { scale, .. } => {
                if !(scale.is_finite() && *scale >= 1.0) {
                    return Err(invalid(format!(
                        "dense field scale {scale} must be at least 1"
                    )));
                }
                Ok(())
            }
            TransformSpec::Affine(a) => {
                let all = a.matrix.iter().chain(&a.translation).chain(&a.center);
                if all.clone().any(|v| !v.is_finite()) {
                    return Err(invalid("affine parameters are not finite".into()));
                }
                Ok(())
            }
            TransformSpec::AffineBspline(ab) => {
                TransformSpec::Affine(ab.affine).validate(path)?;
                TransformSpec::Bspline(ab.bspline.clone()).validate(path)
            }
            TransformSpec::Bspline(b) => {
                let [w, h] = b.domain;
                if !b.spacing.iter().all(|s| s.is_finite() && *s > 0.0) || w == 0 || h == 0 {
                    return Err(invalid(
                        "B-spline spacing and domain must be positive".into(),
                    ));
                }
                // A grid refined from a coarser one may carry a few points past the domain's
                // end (2n - 3 points where a new grid at the finer spacing has fewer), so only
                // too few points are an error.
                let expect = BSplineTransform::grid_for(w, h, b.spacing);
                let [nx, ny] = b.grid();
                if nx < expect[0] || ny < expect[1] || b.u.dim() != b.v.dim() {
                    return Err(invalid(format!(
                        "B-spline grid {:?} does not cover domain {w} x {h} at spacing {:?} (at least {expect:?})",
                        b.grid(),
                        b.spacing
                    )));
                }
                if b.u.iter().chain(b.v.iter()).any(|v| !v.is_finite()) {
                    return Err(invalid("B-spline coefficients are not finite".into()));
                }
                Ok(())
            }
            TransformSpec::ThinPlate(t) => t.validate().map_err(invalid),
            TransformSpec::Composed { steps } => steps.iter().try_for_each(|s| s.validate(path)),
        }
    }

    /// The dense-field files the transform reads, relative to `base_dir`.
    pub fn field_files(&self, base_dir: &Path) -> Vec<PathBuf> {
        match self {
            TransformSpec::Dense { field, .. } | TransformSpec::Velocity { field, .. } => {
                vec![base_dir.join(field)]
            }
            TransformSpec::Composed { steps } => {
                steps.iter().flat_map(|s| s.field_files(base_dir)).collect()
            }
            _ => Vec::new(),
        }
    }

    /// The exact inverse of a transform made only of affines and at most one velocity field
    /// (the demons mode's result): the steps inverted in reverse order, an affine by its
    /// inverse matrix, a velocity by negating it — written to `negated_field`, which the
    /// returned spec names by its file name. `None` for any other transform (those are
    /// inverted numerically); an error for a singular affine.
    pub fn exact_inverse(
        &self,
        base_dir: &Path,
        negated_field: &Path,
        path: &Path,
    ) -> Result<Option<TransformSpec>> {
        let steps: Vec<&TransformSpec> = match self {
            TransformSpec::Composed { steps } => steps.iter().collect(),
            other => vec![other],
        };
        let velocities = steps
            .iter()
            .filter(|s| matches!(s, TransformSpec::Velocity { .. }))
            .count();
        let exact = |s: &&TransformSpec| {
            matches!(
                s,
                TransformSpec::Identity | TransformSpec::Affine(_) | TransformSpec::Velocity { .. }
            )
        };
        if velocities > 1 || !steps.iter().all(exact) {
            return Ok(None);
        }
        let mut inverse = Vec::new();
        for step in steps.into_iter().rev() {
            inverse.push(match step {
                TransformSpec::Affine(a) => {
                    TransformSpec::Affine(crate::transform::invert::invert_affine(a).ok_or_else(
                        || Error::InvalidData {
                            path: path.into(),
                            detail: "the affine is singular: it has no inverse".into(),
                        },
                    )?)
                }
                TransformSpec::Velocity { field, scale } => {
                    let mut velocity = flo::read_flo(&base_dir.join(field))?;
                    velocity.u.mapv_inplace(|v| -v);
                    velocity.v.mapv_inplace(|v| -v);
                    flo::write_flo(negated_field, &velocity)?;
                    TransformSpec::Velocity {
                        field: negated_field.file_name().expect("a file name").into(),
                        scale: *scale,
                    }
                }
                other => other.clone(),
            });
        }
        Ok(Some(if inverse.len() == 1 {
            inverse.remove(0)
        } else {
            TransformSpec::Composed { steps: inverse }
        }))
    }

    /// Builds the transform; dense fields are read relative to `base_dir`.
    pub fn build(&self, base_dir: &Path) -> Result<Box<dyn Transform>> {
        Ok(match self {
            TransformSpec::Identity => Box::new(Identity),
            TransformSpec::Affine(a) => Box::new(*a),
            TransformSpec::Bspline(b) => Box::new(b.clone()),
            TransformSpec::AffineBspline(ab) => Box::new(ab.clone()),
            TransformSpec::ThinPlate(t) => Box::new(t.clone()),
            TransformSpec::Dense { field, scale } => {
                dense_transform(flo::read_flo(&base_dir.join(field))?, *scale)
            }
            TransformSpec::Velocity { field, scale } => {
                let velocity = flo::read_flo(&base_dir.join(field))?;
                crate::transform::velocity::velocity_transform(&velocity, *scale)
            }
            TransformSpec::Composed { steps } => Box::new(Composed {
                steps: steps
                    .iter()
                    .map(|s| s.build(base_dir))
                    .collect::<Result<_>>()?,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transform_files_round_trip_and_reject_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.json");
        let mut b = BSplineTransform::new(50, 40, [10.0, 10.0]);
        b.u[[2, 3]] = 1.5;
        let spec = TransformSpec::Composed {
            steps: vec![
                TransformSpec::Affine(Affine::similarity(0.1, 1.0, [1.0, 2.0], [25.0, 20.0])),
                TransformSpec::Bspline(b),
            ],
        };
        let file = TransformFile::new([50, 40], [60, 45], spec);
        file.save(&p).unwrap();
        let back = TransformFile::load(&p).unwrap();
        assert_eq!(back, file);
        let t = back.build(dir.path()).unwrap();
        let [x, _] = t.map_point(10.0, 10.0);
        assert!(x.is_finite());

        let mut future = file.clone();
        future.version = 99;
        future.save(&p).unwrap();
        let e = TransformFile::load(&p).unwrap_err();
        assert!(e.to_string().contains("version 99"), "{e}");
        let mut huge = file.clone();
        huge.fixed = ImageSize {
            width: 100_000,
            height: 100_000,
        };
        huge.save(&p).unwrap();
        let e = TransformFile::load(&p).unwrap_err();
        assert!(e.to_string().contains("over the limit"), "{e}");
        // Sizes whose product overflows 64 bits, and a B-spline whose domain and spacing
        // would ask for an astronomical grid (both overflowed: a panic in debug builds).
        huge.fixed.width = usize::MAX / 2;
        huge.save(&p).unwrap();
        assert!(TransformFile::load(&p).is_err());
        let mut astronomical = BSplineTransform::new(8, 8, [4.0, 4.0]);
        astronomical.domain = [usize::MAX, 8];
        astronomical.spacing = [1e-300, 4.0];
        TransformFile::new([50, 40], [60, 45], TransformSpec::Bspline(astronomical))
            .save(&p)
            .unwrap();
        let e = TransformFile::load(&p).unwrap_err();
        assert!(e.to_string().contains("does not cover"), "{e}");

        std::fs::write(&p, "{ not json").unwrap();
        assert!(matches!(
            TransformFile::load(&p),
            Err(Error::Corrupt { .. })
        ));
    }

    /// A registration refines its grid level by level; the saved grid can then have more
    /// points than a new grid at the final spacing (661 px at 178.4 px, refined twice: 19
    /// rows where a new grid at 44.6 px has 18), and it must load and map like the original.
    #[test]
    fn refined_grids_load_back_and_short_grids_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.json");
        let mut coarse = BSplineTransform::new(892, 661, [178.4, 178.4]);
        coarse.u[[2, 3]] = 4.0;
        coarse.v[[3, 2]] = -3.0;
        let fine = coarse.refined().refined();
        assert_ne!(
            fine.grid(),
            BSplineTransform::new(892, 661, fine.spacing).grid()
        );
        let file = TransformFile::new([892, 661], [892, 661], TransformSpec::Bspline(fine.clone()));
        file.save(&p).unwrap();
        let back = TransformFile::load(&p).unwrap().build(dir.path()).unwrap();
        for (x, y) in [(0.0, 0.0), (400.5, 300.25), (891.0, 660.0)] {
            let [bx, by] = back.map_point(x, y);
            let [cx, cy] = coarse.map_point(x, y);
            assert!((bx - cx).abs() < 1e-9 && (by - cy).abs() < 1e-9);
        }

        let mut short = fine;
        short.u = short.u.slice(ndarray::s![..-2, ..]).to_owned();
        short.v = short.v.slice(ndarray::s![..-2, ..]).to_owned();
        TransformFile::new([892, 661], [892, 661], TransformSpec::Bspline(short))
            .save(&p)
            .unwrap();
        assert!(matches!(
            TransformFile::load(&p),
            Err(Error::InvalidData { .. })
        ));
    }
}
