//! Similarity metrics between the fixed image and the transformed moving image — mean squares,
//! normalised correlation and Mattes mutual information — as a value to MINIMISE and its analytic
//! gradient with respect to the transform parameters, computed in parallel over samples.
//!
//! Every metric has the same shape: (1) sample the moving image (cubic B-spline: value and
//! spatial gradient) at `T(p)` for each fixed sample `p`; (2) from those values compute the metric
//! and a weight `w_i` per sample such that `dValue/dmu = sum_i w_i * gradM_i . dT/dmu(p_i)`;
//! (3) accumulate that sum over the transform's sparse parameter Jacobian.

mod bspline_samples;
mod mi;
mod samples;

pub use bspline_samples::BSplineSampleCache;
pub use samples::SampleSet;

use crate::raster::{CubicBSplineSampler, GrayF32};
use crate::transform::Parametric;
use crate::{Error, Result};
use rayon::prelude::*;

/// Which similarity measure to optimise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    /// Mean squared difference: same modality, same intensities.
    #[default]
    Mse,
    /// Negative normalised cross-correlation: linear intensity changes.
    Ncc,
    /// Negative Mattes mutual information: different stains or modalities.
    Mi,
}

impl std::str::FromStr for MetricKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "mse" => Ok(Self::Mse),
            "ncc" => Ok(Self::Ncc),
            "mi" => Ok(Self::Mi),
            other => Err(format!("unknown metric {other:?} (mse, ncc or mi)")),
        }
    }
}

/// Number of histogram bins for Mattes mutual information.
pub const MI_BINS: usize = 32;

/// The moving image of one pyramid level, prepared for sampling.
#[derive(Debug, Clone)]
pub struct MovingLevel {
    sampler: CubicBSplineSampler,
    range: (f64, f64),
    mask: Option<ndarray::Array2<bool>>,
}

impl MovingLevel {
    /// Prefilters a level for cubic B-spline sampling and records its intensity range.
    pub fn new(image: &GrayF32) -> Self {
        let (lo, hi) = image
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        Self {
            sampler: CubicBSplineSampler::new(image),
            range: (lo as f64, hi as f64),
            mask: None,
        }
    }

    /// Ignores samples that map where `mask` (same size as the level) is false.
    pub fn with_mask(mut self, mask: ndarray::Array2<bool>) -> Self {
        self.mask = Some(mask);
        self
    }

    /// Value and gradient at a level point, `None` outside the image or its mask.
    #[inline]
    fn probe(&self, x: f64, y: f64) -> Probe {
        let found = self.sampler.value_and_gradient(x, y)?;
        if let Some(m) = &self.mask {
            let (ix, iy) = ((x + 0.5) as usize, (y + 0.5) as usize);
            if !m[[iy.min(m.nrows() - 1), ix.min(m.ncols() - 1)]] {
                return None;
            }
        }
        Some(found)
    }
    /// The sampler.
    pub fn sampler(&self) -> &CubicBSplineSampler {
        &self.sampler
    }
}

/// A metric's value at the current parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricValue {
    /// The value (lower is better).
    pub value: f64,
    /// Samples that mapped inside the moving image.
    pub valid: usize,
}

/// One sample's moving value and gradient (in level pixels), `None` outside the moving image.
type Probe = Option<(f64, f64, f64)>;

/// Samples per rayon task: each sample costs ~100 ns, so 1024 make a task far heavier than
/// rayon's overhead, and a 20k-sample iteration still spreads over 20 tasks.
const SAMPLES_PER_TASK: usize = 1024;

/// Samples per partial gradient: a part is one task and one parameter-sized accumulator.
const GRADIENT_SAMPLES_PER_PART: usize = 4096;

/// At most this many partial gradients, which bounds their memory on fine control grids
/// (16 parts × 8 bytes per parameter) and still spreads the work over 16 cores.
const GRADIENT_PARTS_MAX: usize = 16;

/// Fewer valid samples than this fraction means the transform left the image.
const MIN_VALID_FRACTION: f64 = 0.05;

/// A transform evaluated again and again at the points of one sample set, as an optimiser does:
/// implementations precompute whatever depends only on the points.
pub trait SampledTransform: Sync {
    /// `T` at sample `i`, in full-resolution pixels.
    fn map(&self, i: usize) -> [f64; 2];
    /// Adds `gx * dTx/dmu + gy * dTy/dmu` at sample `i` to `acc`.
    fn add_gradient(&self, i: usize, gx: f64, gy: f64, acc: &mut [f64]);
}

/// The full-resolution positions of a level's samples, computed once per level; bound to any
/// [`Parametric`] transform, it evaluates that transform point by point.
#[derive(Debug, Clone)]
pub struct PointSet {
    points: Vec<[f64; 2]>,
}

impl PointSet {
    /// The samples of a level with scale `scale`, in full-resolution pixels.
    pub fn new(samples: &SampleSet, scale: f64) -> Self {
        let points = samples
            .points
            .iter()
            .map(|s| [s.x as f64 * scale, s.y as f64 * scale])
            .collect();
        Self { points }
    }

    /// The points bound to the current parameters of `t`.
    pub fn bind<'a>(&'a self, t: &'a dyn Parametric) -> impl SampledTransform + 'a {
        AtPoints {
            t,
            points: &self.points,
        }
    }
}

struct AtPoints<'a> {
    t: &'a dyn Parametric,
    points: &'a [[f64; 2]],
}

thread_local! {
    /// Scratch for sparse parameter Jacobians, one per worker thread.
    static JACOBIAN: std::cell::RefCell<Vec<(usize, f64, f64)>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl SampledTransform for AtPoints<'_> {
    fn map(&self, i: usize) -> [f64; 2] {
        let [x, y] = self.points[i];
        self.t.map_point(x, y)
    }
    fn add_gradient(&self, i: usize, gx: f64, gy: f64, acc: &mut [f64]) {
        let [x, y] = self.points[i];
        JACOBIAN.with_borrow_mut(|jac| {
            jac.clear();
            self.t.param_jacobian(x, y, jac);
            for &(k, jx, jy) in jac.iter() {
                acc[k] += gx * jx + gy * jy;
            }
        });
    }
}

/// Buffers an evaluation needs, kept between evaluations so that each does not allocate (and
/// fault in) fresh pages: profiled at 14 % of the B-spline stage before they were reused.
#[derive(Debug, Default)]
pub struct Scratch {
    probes: Vec<Probe>,
    weights: Vec<f64>,
    /// One gradient accumulator per part of the sample set.
    partials: Vec<Vec<f64>>,
}

/// Evaluates `kind` for transform `t` at pyramid level scale `scale` (`2^level`): fixed sample
/// points are in level pixels; `t` works in full-resolution pixels. With `gradient`, also writes
/// `dValue/dmu` there (`len == t.num_params()`).
pub fn evaluate(
    kind: MetricKind,
    samples: &SampleSet,
    moving: &MovingLevel,
    t: &dyn Parametric,
    scale: f64,
    gradient: Option<&mut [f64]>,
) -> Result<MetricValue> {
    let points = PointSet::new(samples, scale);
    evaluate_sampled(
        kind,
        samples,
        moving,
        &points.bind(t),
        scale,
        gradient,
        &mut Scratch::default(),
    )
}

/// [`evaluate`] for a transform bound to the samples, reusing `scratch`.
pub fn evaluate_sampled(
    kind: MetricKind,
    samples: &SampleSet,
    moving: &MovingLevel,
    t: &dyn SampledTransform,
    scale: f64,
    gradient: Option<&mut [f64]>,
    scratch: &mut Scratch,
) -> Result<MetricValue> {
    let n = samples.points.len();
    scratch.probes.resize(n, None);
    scratch
        .probes
        .par_chunks_mut(SAMPLES_PER_TASK)
        .enumerate()
        .for_each(|(chunk, out)| {
            for (j, probe) in out.iter_mut().enumerate() {
                let [qx, qy] = t.map(chunk * SAMPLES_PER_TASK + j);
                *probe = moving.probe(qx / scale, qy / scale);
            }
        });
    let probes = &scratch.probes;
    let valid = probes.iter().filter(|p| p.is_some()).count();
    if (valid as f64) < MIN_VALID_FRACTION * n as f64 {
        return Err(Error::InvalidArgument(format!(
            "the transform maps {} of {n} samples outside the moving image: the images do not overlap enough",
            n - valid
        )));
    }
    if valid < 16 {
        return Err(Error::InvalidArgument(format!(
            "only {valid} samples to measure the similarity on (at least 16 are needed): the \
             image or its mask is too small"
        )));
    }
    let fixed = samples.points.iter().map(|s| s.value as f64);
    let weights = &mut scratch.weights;
    weights.clear();
    let value = match kind {
        MetricKind::Mse => mse(fixed, probes, valid, weights),
        MetricKind::Ncc => ncc(fixed, probes, valid, weights),
        MetricKind::Mi => mi::mattes(samples, probes, valid, moving.range, weights),
    };
    if let Some(gradient) = gradient {
        accumulate_gradient(probes, weights, t, scale, gradient, &mut scratch.partials);
    }
    Ok(MetricValue { value, valid })
}

fn mse(
    fixed: impl Iterator<Item = f64>,
    probes: &[Probe],
    valid: usize,
    weights: &mut Vec<f64>,
) -> f64 {
    let n = valid as f64;
    let mut sum = 0.0;
    weights.extend(fixed.zip(probes).map(|(f, p)| match p {
        Some((m, _, _)) => {
            let d = m - f;
            sum += d * d;
            2.0 * d / n
        }
        None => 0.0,
    }));
    sum / n
}

fn ncc(
    fixed: impl Iterator<Item = f64> + Clone,
    probes: &[Probe],
    valid: usize,
    weights: &mut Vec<f64>,
) -> f64 {
    let n = valid as f64;
    let (mut sf, mut sm, mut sff, mut smm, mut sfm) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (f, p) in fixed.clone().zip(probes) {
        if let Some((m, _, _)) = p {
            sf += f;
            sm += m;
            sff += f * f;
            smm += m * m;
            sfm += f * m;
        }
    }
    let a = sfm - sf * sm / n;
    let b = (sff - sf * sf / n).max(1e-20);
    let c = (smm - sm * sm / n).max(1e-20);
    let (mf, mm) = (sf / n, sm / n);
    let root = (b * c).sqrt();
    let value = -a / root;
    weights.extend(fixed.zip(probes).map(|(f, p)| match p {
        // d(-NCC)/dM_i = -[(f - mf) / sqrt(bc) - a (m - mm) / (sqrt(b) c^1.5)]
        Some((m, _, _)) => -((f - mf) / root - a * (m - mm) / (b.sqrt() * c * c.sqrt())),
        None => 0.0,
    }));
    value
}

/// `gradient = sum_i w_i * gradM_i . dT/dmu(P_i) / scale`, parallel over sample chunks with one
/// dense accumulator per rayon worker.
/// `gradient = sum_i w_i * gradM_i . dT/dmu(p_i) / scale`: the samples are split into a few
/// contiguous parts per worker, each summed into its own reused accumulator, then added up.
fn accumulate_gradient(
    probes: &[Probe],
    weights: &[f64],
    t: &dyn SampledTransform,
    scale: f64,
    gradient: &mut [f64],
    partials: &mut Vec<Vec<f64>>,
) {
    let n = gradient.len();
    // The partition depends on the sample count alone, and the parts are summed in order, so the
    // gradient is the same bit for bit whatever the number of threads.
    let parts = probes
        .len()
        .div_ceil(GRADIENT_SAMPLES_PER_PART)
        .clamp(1, GRADIENT_PARTS_MAX);
    let per_part = probes.len().div_ceil(parts);
    partials.resize_with(parts, Vec::new);
    partials.par_iter_mut().enumerate().for_each(|(part, acc)| {
        acc.clear();
        acc.resize(n, 0.0);
        let start = (part * per_part).min(probes.len());
        let end = (start + per_part).min(probes.len());
        for i in start..end {
            let (Some((_, gx, gy)), w) = (probes[i], weights[i]) else {
                continue;
            };
            if w != 0.0 {
                t.add_gradient(i, w * gx / scale, w * gy / scale, acc);
            }
        }
    });
    gradient.fill(0.0);
    for acc in partials.iter() {
        gradient.iter_mut().zip(acc).for_each(|(g, a)| *g += a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::{Affine, AffineParametric, BSplineTransform};

    fn pair() -> (GrayF32, GrayF32) {
        let tex = |x: f64, y: f64| {
            ((x * 0.21).sin() * (y * 0.17).cos() + 0.5 * ((x + y) * 0.11).sin()) as f32
        };
        let fixed = GrayF32::from_shape_fn((64, 72), |(y, x)| tex(x as f64, y as f64));
        let moving = GrayF32::from_shape_fn((64, 72), |(y, x)| {
            // A different intensity mapping so MI and NCC are non-trivial.
            let v = tex(x as f64 - 1.3, y as f64 + 0.7);
            0.5 * v * v + 0.8 * v + 0.1
        });
        (fixed, moving)
    }

    fn check_gradient(kind: MetricKind, t: &mut dyn Parametric, scale: f64) {
        let (fixed, moving) = pair();
        let samples = SampleSet::random(&fixed, None, 3000, 11);
        let level = MovingLevel::new(&moving);
        let mut grad = vec![0.0; t.num_params()];
        evaluate(kind, &samples, &level, t, scale, Some(&mut grad)).unwrap();
        let p0 = t.params();
        let h = 1e-4;
        let mut checked = 0;
        for k in 0..p0.len() {
            if grad[k].abs() < 1e-9 && k % 7 != 0 {
                continue;
            }
            let mut p = p0.clone();
            p[k] += h;
            t.set_params(&p);
            let plus = evaluate(kind, &samples, &level, t, scale, None)
                .unwrap()
                .value;
            p[k] -= 2.0 * h;
            t.set_params(&p);
            let minus = evaluate(kind, &samples, &level, t, scale, None)
                .unwrap()
                .value;
            t.set_params(&p0);
            let numeric = (plus - minus) / (2.0 * h);
            let tol = 1e-3 * grad.iter().fold(0.0f64, |m, g| m.max(g.abs())) + 1e-7;
            assert!(
                (numeric - grad[k]).abs() <= tol,
                "{kind:?} param {k}: analytic {} vs numeric {numeric}",
                grad[k]
            );
            checked += 1;
        }
        assert!(checked >= 4, "too few parameters checked");
    }

    fn affine() -> AffineParametric {
        AffineParametric {
            affine: Affine::similarity(0.01, 1.01, [0.4, -0.3], [36.0, 32.0]),
            radius: 40.0,
        }
    }

    fn bspline() -> BSplineTransform {
        let mut b = BSplineTransform::new(72, 64, [24.0, 24.0]);
        let mut rng = crate::rng::SplitMix64::new(5);
        b.u.iter_mut().for_each(|c| *c = rng.uniform(-0.8, 0.8));
        b.v.iter_mut().for_each(|c| *c = rng.uniform(-0.8, 0.8));
        b
    }

    #[test]
    fn mse_gradient_matches_finite_differences() {
        check_gradient(MetricKind::Mse, &mut affine(), 1.0);
        check_gradient(MetricKind::Mse, &mut bspline(), 1.0);
    }

    #[test]
    fn ncc_gradient_matches_finite_differences() {
        check_gradient(MetricKind::Ncc, &mut affine(), 1.0);
        check_gradient(MetricKind::Ncc, &mut bspline(), 1.0);
    }

    #[test]
    fn mi_gradient_matches_finite_differences() {
        check_gradient(MetricKind::Mi, &mut affine(), 1.0);
        check_gradient(MetricKind::Mi, &mut bspline(), 1.0);
    }

    #[test]
    fn mi_value_and_gradient_do_not_depend_on_the_thread_count() {
        let (fixed, moving) = pair();
        // More samples than one histogram chunk, so the chunks' partial sums are combined.
        let samples = SampleSet::random(&fixed, None, 20_000, 3);
        let level = MovingLevel::new(&moving);
        let t = bspline();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut gradient = vec![0.0; t.num_params()];
                let value = evaluate(
                    MetricKind::Mi,
                    &samples,
                    &level,
                    &t,
                    1.0,
                    Some(&mut gradient),
                )
                .unwrap()
                .value;
                (value, gradient)
            })
        };
        assert_eq!(run(1), run(3));
    }

    #[test]
    fn gradient_at_a_coarse_level_scale_matches_finite_differences() {
        check_gradient(MetricKind::Mse, &mut affine(), 2.0);
    }

    #[test]
    fn metrics_prefer_the_true_alignment() {
        let (fixed, moving) = pair();
        let samples = SampleSet::random(&fixed, None, 3000, 1);
        let level = MovingLevel::new(&moving);
        let centre = [36.0, 32.0];
        let truth = AffineParametric {
            affine: Affine::from_matrix([1.0, 0.0, 0.0, 1.0], [1.3, -0.7], centre),
            radius: 40.0,
        };
        let off = AffineParametric {
            affine: Affine::from_matrix([1.0, 0.0, 0.0, 1.0], [0.0, 0.0], centre),
            radius: 40.0,
        };
        for kind in [MetricKind::Ncc, MetricKind::Mi] {
            let a = evaluate(kind, &samples, &level, &truth, 1.0, None)
                .unwrap()
                .value;
            let b = evaluate(kind, &samples, &level, &off, 1.0, None)
                .unwrap()
                .value;
            assert!(a < b, "{kind:?}: {a} !< {b}");
        }
    }

    #[test]
    fn no_overlap_is_an_error_not_a_panic() {
        let (fixed, moving) = pair();
        let samples = SampleSet::random(&fixed, None, 500, 1);
        let far = AffineParametric {
            affine: Affine::from_matrix([1.0, 0.0, 0.0, 1.0], [1e4, 0.0], [0.0, 0.0]),
            radius: 40.0,
        };
        let r = evaluate(
            MetricKind::Mse,
            &samples,
            &MovingLevel::new(&moving),
            &far,
            1.0,
            None,
        );
        assert!(r.is_err());
    }
}
