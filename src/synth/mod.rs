//! Generated image pairs with exact ground truth, for tests and benchmarks.
//!
//! A smooth map `S` from moving to fixed coordinates is drawn from the seed (a small affine
//! and/or a smooth cubic B-spline deformation). The fixed image is a texture `tex(p)` (procedural
//! multi-octave noise with a woven pattern, or a given base image); the moving image is
//! `tex(S(q))` plus a mild gain/offset change and noise, so it is exact, without resampling.
//! The ground truth is `T = S^-1` on the fixed grid, solved per pixel by Newton's method to
//! 1e-9 px, so `moving(p + gt(p)) = fixed(p)` up to the noise and intensity change.

mod texture;
mod volume;

pub use texture::Texture;
pub use volume::volume_slices;

use crate::job::CancelToken;
use crate::raster::{AnyImage, GrayF32, ROWS_PER_TASK, SampleDepth};
use crate::rng::SplitMix64;
use crate::transform::{Affine, BSplineTransform, DenseField, Transform};
use crate::{Error, Result};
use ndarray::{Array2, Axis};
use rayon::prelude::*;

/// Which deformation relates the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Deform {
    /// A small affine: rotation up to 2 degrees, scale and shear up to 2 %, shift up to 1 %.
    Affine,
    /// A smooth B-spline deformation, up to about 1.5 % of the image size.
    Smooth,
    /// Both.
    Both,
}

impl std::str::FromStr for Deform {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "affine" => Ok(Self::Affine),
            "smooth" => Ok(Self::Smooth),
            "both" => Ok(Self::Both),
            other => Err(format!(
                "unknown deformation {other:?} (affine, smooth or both)"
            )),
        }
    }
}

/// Settings of a generated pair.
#[derive(Debug, Clone)]
pub struct SynthParams {
    /// Width.
    pub width: usize,
    /// Height.
    pub height: usize,
    /// Seed: the same seed gives the same pair.
    pub seed: u64,
    /// Deformation kind.
    pub deform: Deform,
    /// Output sample depth.
    pub depth: SampleDepth,
    /// Standard deviation of the noise added to the moving image (registration units).
    pub noise: f64,
}

/// A generated pair with its ground truth.
#[derive(Debug)]
pub struct SynthPair {
    /// The fixed image.
    pub fixed: AnyImage,
    /// The moving image.
    pub moving: AnyImage,
    /// `moving(p + gt(p)) ≈ fixed(p)`.
    pub ground_truth: DenseField,
    /// Pixels whose ground truth lands inside the moving image.
    pub mask: Array2<bool>,
    /// The moving-to-fixed map used (for reports).
    pub description: String,
}

/// The moving -> fixed map `S(q) = A(q + b(q))`.
#[derive(Debug, Clone)]
struct MovingToFixed {
    bspline: Option<BSplineTransform>,
    affine: Affine,
}

impl MovingToFixed {
    fn draw(width: usize, height: usize, deform: Deform, rng: &mut SplitMix64) -> Self {
        let centre = [(width as f64 - 1.0) / 2.0, (height as f64 - 1.0) / 2.0];
        let affine = if deform == Deform::Smooth {
            Affine::identity(centre)
        } else {
            let angle = rng.uniform(-2.0, 2.0).to_radians();
            let scale = 1.0 + rng.uniform(-0.02, 0.02);
            let shear = rng.uniform(-0.01, 0.01);
            let (s, c) = angle.sin_cos();
            let shift = 0.01 * width.max(height) as f64;
            Affine::from_matrix(
                [scale * c, -scale * s + shear, scale * s, scale * c],
                [rng.uniform(-shift, shift), rng.uniform(-shift, shift)],
                centre,
            )
        };
        let bspline = (deform != Deform::Affine).then(|| {
            let spacing = width.max(height) as f64 / 6.0;
            let mut b = BSplineTransform::new(width, height, [spacing, spacing]);
            let amplitude = 0.005 * width.min(height) as f64;
            let limit = 3.0 * amplitude;
            b.u.iter_mut()
                .for_each(|c| *c = (rng.normal() * amplitude).clamp(-limit, limit));
            b.v.iter_mut()
                .for_each(|c| *c = (rng.normal() * amplitude).clamp(-limit, limit));
            b
        });
        Self { bspline, affine }
    }

    #[inline]
    fn map(&self, x: f64, y: f64) -> [f64; 2] {
        let [bx, by] = match &self.bspline {
            Some(b) => b.map_point(x, y),
            None => [x, y],
        };
        self.affine.map_point(bx, by)
    }

    #[inline]
    fn jacobian(&self, x: f64, y: f64) -> [[f64; 2]; 2] {
        let jb = match &self.bspline {
            Some(b) => b.jacobian(x, y),
            None => [[1.0, 0.0], [0.0, 1.0]],
        };
        let [m0, m1, m2, m3] = self.affine.matrix;
        [
            [m0 * jb[0][0] + m1 * jb[1][0], m0 * jb[0][1] + m1 * jb[1][1]],
            [m2 * jb[0][0] + m3 * jb[1][0], m2 * jb[0][1] + m3 * jb[1][1]],
        ]
    }

    /// Solves `S(q) = p` by Newton's method from `guess`.
    #[inline]
    fn invert(&self, p: [f64; 2], mut q: [f64; 2]) -> Option<[f64; 2]> {
        for _ in 0..20 {
            let s = self.map(q[0], q[1]);
            let (rx, ry) = (s[0] - p[0], s[1] - p[1]);
            if rx * rx + ry * ry < 1e-18 {
                return Some(q);
            }
            let j = self.jacobian(q[0], q[1]);
            let det = j[0][0] * j[1][1] - j[0][1] * j[1][0];
            if det.abs() < 1e-9 {
                return None;
            }
            q[0] -= (j[1][1] * rx - j[0][1] * ry) / det;
            q[1] -= (-j[1][0] * rx + j[0][0] * ry) / det;
        }
        None
    }
}

/// Refuses a pair size that is too small to register or too large for the pixel limit and
/// the memory available; call it before building the texture, the first large allocation.
pub fn check_size(w: usize, h: usize) -> Result<()> {
    if w < 16 || h < 16 {
        return Err(Error::InvalidArgument(format!(
            "--size {w}x{h}: both sides must be at least 16 pixels"
        )));
    }
    crate::io::check_dimensions(
        std::path::Path::new("synthetic pair"),
        w as u64,
        h as u64,
        10,
        4,
    )?;
    Ok(())
}

/// Generates a pair from `texture` (which defines the fixed image's size).
pub fn generate(
    texture: &Texture,
    params: &SynthParams,
    cancel: &CancelToken,
) -> Result<SynthPair> {
    let (w, h) = (params.width, params.height);
    check_size(w, h)?;
    let mut rng = SplitMix64::new(params.seed);
    let s = MovingToFixed::draw(w, h, params.deform, &mut rng);
    let gain = 1.0 + rng.uniform(-0.1, 0.1);
    let offset = rng.uniform(-0.05, 0.05);
    let noise_seed = rng.next_u64();

    let fixed = render(w, h, cancel, |x, y| {
        texture.value(x as f64, y as f64) as f32
    })?;
    cancel.check()?;
    let moving = render(w, h, cancel, |x, y| {
        let [fx, fy] = s.map(x as f64, y as f64);
        let n = crate::rng::hash64(noise_seed ^ ((y as u64) << 32 | x as u64));
        let noise = params.noise * gaussian_from_hash(n);
        (gain * texture.value(fx, fy) + offset + noise) as f32
    })?;
    cancel.check()?;

    let mut gt = DenseField::zeros(w, h);
    let mut mask = Array2::from_elem((h, w), false);
    let (max_x, max_y) = ((w - 1) as f64, (h - 1) as f64);
    // First-order inverse of S as the Newton start, then the previous pixel's answer.
    let inv_affine = s.affine.inverse().unwrap_or(Affine::identity([0.0, 0.0]));
    gt.u.axis_chunks_iter_mut(Axis(0), ROWS_PER_TASK)
        .into_par_iter()
        .zip(
            gt.v.axis_chunks_iter_mut(Axis(0), ROWS_PER_TASK)
                .into_par_iter(),
        )
        .zip(
            mask.axis_chunks_iter_mut(Axis(0), ROWS_PER_TASK)
                .into_par_iter(),
        )
        .enumerate()
        .for_each(|(chunk, ((mut u, mut v), mut m))| {
            if cancel.is_cancelled() {
                return;
            }
            for r in 0..u.nrows() {
                let y = (chunk * ROWS_PER_TASK + r) as f64;
                let mut guess = inv_affine.map_point(0.0, y);
                for x in 0..w {
                    let p = [x as f64, y];
                    match s.invert(p, guess) {
                        Some(q) => {
                            u[[r, x]] = (q[0] - p[0]) as f32;
                            v[[r, x]] = (q[1] - p[1]) as f32;
                            m[[r, x]] = q[0] >= 1.0
                                && q[1] >= 1.0
                                && q[0] <= max_x - 1.0
                                && q[1] <= max_y - 1.0;
                            guess = [q[0] + 1.0, q[1]];
                        }
                        None => {
                            u[[r, x]] = f32::INFINITY;
                            v[[r, x]] = f32::INFINITY;
                            guess = inv_affine.map_point(x as f64 + 1.0, y);
                        }
                    }
                }
            }
        });
    cancel.check()?;
    // Unknown ground truth is stored as Middlebury's "unknown" value.
    gt.u.mapv_inplace(|v| if v.is_finite() { v } else { 1e10 });
    gt.v.mapv_inplace(|v| if v.is_finite() { v } else { 1e10 });

    let description = format!(
        "{:?} deformation, seed {}, affine matrix {:?}, translation {:?}, gain {gain:.3}, offset {offset:.3}, noise {}",
        params.deform, params.seed, s.affine.matrix, s.affine.translation, params.noise
    );
    Ok(SynthPair {
        fixed: AnyImage::from_gray_units(&fixed, params.depth),
        moving: AnyImage::from_gray_units(&moving, params.depth),
        ground_truth: gt,
        mask,
        description,
    })
}

/// A standard normal deviate from 64 random bits (Box–Muller on the two halves).
#[inline]
fn gaussian_from_hash(bits: u64) -> f64 {
    let u1 = ((bits >> 32) as f64 + 0.5) / 4294967296.0;
    let u2 = ((bits & 0xFFFF_FFFF) as f64) / 4294967296.0;
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn render(
    w: usize,
    h: usize,
    cancel: &CancelToken,
    f: impl Fn(usize, usize) -> f32 + Sync,
) -> Result<GrayF32> {
    let mut img = GrayF32::zeros((h, w));
    img.axis_chunks_iter_mut(Axis(0), ROWS_PER_TASK)
        .into_par_iter()
        .enumerate()
        .for_each(|(chunk, mut band)| {
            if cancel.is_cancelled() {
                return;
            }
            for r in 0..band.nrows() {
                let y = chunk * ROWS_PER_TASK + r;
                for x in 0..w {
                    band[[r, x]] = f(x, y);
                }
            }
        });
    cancel.check()?;
    Ok(img)
}

/// The files [`write_pair`] writes into its folder.
pub const OUTPUT_FILES: [&str; 4] = ["fixed.tif", "moving.tif", "gt.flo", "mask.png"];

/// Writes a pair as [`OUTPUT_FILES`] (`fixed.tif`, `moving.tif`, `gt.flo`, `mask.png`) into `dir`.
pub fn write_pair(pair: &SynthPair, dir: &std::path::Path) -> Result<()> {
    let [fixed, moving, truth, mask_file] = OUTPUT_FILES.map(|name| dir.join(name));
    crate::io::ensure_output_dir(dir)?;
    crate::io::save_image(&fixed, &pair.fixed)?;
    crate::io::save_image(&moving, &pair.moving)?;
    crate::io::flo::write_flo(&truth, &pair.ground_truth)?;
    let mask = pair.mask.mapv(|m| if m { 1.0 } else { 0.0 });
    crate::io::save_image(
        &mask_file,
        &AnyImage::from_gray_units(&mask, SampleDepth::U8),
    )
}

/// Writes a `size x size` generated pair (affine and smooth deformation, 8-bit) into `folder`
/// and returns the paths of its fixed and moving images.
pub fn write_generated_pair(
    folder: &std::path::Path,
    size: usize,
    seed: u64,
) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    let params = SynthParams {
        width: size,
        height: size,
        seed,
        deform: Deform::Both,
        depth: crate::raster::SampleDepth::U8,
        noise: 0.01,
    };
    let cancel = crate::job::CancelToken::new();
    let pair = generate(&Texture::procedural(size, size, seed), &params, &cancel)?;
    write_pair(&pair, folder)?;
    Ok((folder.join("fixed.tif"), folder.join("moving.tif")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(deform: Deform) -> SynthParams {
        SynthParams {
            width: 96,
            height: 80,
            seed: 4,
            deform,
            depth: SampleDepth::F32,
            noise: 0.0,
        }
    }

    #[test]
    fn generation_is_deterministic_for_a_seed() {
        let tex = Texture::procedural(96, 80, 4);
        let a = generate(&tex, &params(Deform::Both), &CancelToken::new()).unwrap();
        let b = generate(&tex, &params(Deform::Both), &CancelToken::new()).unwrap();
        assert_eq!(a.moving, b.moving);
        assert_eq!(a.ground_truth, b.ground_truth);
    }

    #[test]
    fn ground_truth_inverts_the_moving_to_fixed_map() {
        let mut rng = SplitMix64::new(9);
        let s = MovingToFixed::draw(200, 150, Deform::Both, &mut rng);
        for &(x, y) in &[(10.0, 20.0), (150.5, 99.0), (199.0, 149.0)] {
            let q = s.invert([x, y], [x, y]).unwrap();
            let p = s.map(q[0], q[1]);
            assert!((p[0] - x).abs() < 1e-8 && (p[1] - y).abs() < 1e-8);
        }
    }

    #[test]
    fn mask_is_mostly_valid_for_small_deformations() {
        let tex = Texture::procedural(96, 80, 4);
        let pair = generate(&tex, &params(Deform::Affine), &CancelToken::new()).unwrap();
        let valid = pair.mask.iter().filter(|&&m| m).count();
        assert!(valid > 96 * 80 / 2);
    }
}
