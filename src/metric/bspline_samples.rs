//! The accurate mode's transform bound to a fixed sample set: the affine part and the B-spline's
//! support and weights at every sample are computed once per level, so an iteration costs only
//! the sixteen multiply-adds per component that depend on the coefficients.

use super::{SampleSet, SampledTransform};
use crate::transform::{AffineBSpline, Transform};
use rayon::prelude::*;

/// Per-sample data that does not change while the coefficients are optimised.
#[derive(Debug, Clone)]
pub struct BSplineSampleCache {
    /// `A(p)` at each sample (full-resolution pixels).
    affine: Vec<[f64; 2]>,
    /// Index of the first supporting control point (`iy * nx + ix`).
    base: Vec<u32>,
    /// Cubic weights along x and y.
    weights: Vec<([f32; 4], [f32; 4])>,
    /// Control points per grid row.
    nx: usize,
    /// Control points in all (the offset of the v coefficients among the parameters).
    count: usize,
}

impl BSplineSampleCache {
    /// Precomputes for `t`'s affine and grid geometry at the samples of a level of `scale`.
    pub fn new(t: &AffineBSpline, samples: &SampleSet, scale: f64) -> Self {
        let [nx, _] = t.bspline.grid();
        let (affine, (base, weights)): (Vec<_>, (Vec<_>, Vec<_>)) = samples
            .points
            .par_iter()
            .map(|s| {
                let (x, y) = (s.x as f64 * scale, s.y as f64 * scale);
                let ([ix, iy], wx, wy) = t.bspline.support(x, y);
                let narrow = |w: [f64; 4]| w.map(|v| v as f32);
                (
                    t.affine.map_point(x, y),
                    ((iy * nx + ix) as u32, (narrow(wx), narrow(wy))),
                )
            })
            .unzip();
        Self {
            affine,
            base,
            weights,
            nx,
            count: t.bspline.u.len(),
        }
    }

    /// Per control point, the sum over samples of its squared weight: how strongly the samples
    /// constrain it (low along the borders, where the support leaves the image).
    pub fn support_density(&self) -> Vec<f64> {
        let mut density = vec![0.0; self.count];
        for (&base, (wx, wy)) in self.base.iter().zip(&self.weights) {
            for (b, &wyb) in wy.iter().enumerate() {
                for (a, &wxa) in wx.iter().enumerate() {
                    let w = (wyb * wxa) as f64;
                    density[base as usize + b * self.nx + a] += w * w;
                }
            }
        }
        density
    }

    /// The cache bound to the current coefficients of `t` (same grid and affine as at `new`).
    pub fn bind<'a>(&'a self, t: &'a AffineBSpline) -> impl SampledTransform + 'a {
        debug_assert_eq!(t.bspline.u.len(), self.count);
        Bound {
            cache: self,
            u: t.bspline.u.as_slice().expect("standard layout"),
            v: t.bspline.v.as_slice().expect("standard layout"),
        }
    }
}

struct Bound<'a> {
    cache: &'a BSplineSampleCache,
    u: &'a [f64],
    v: &'a [f64],
}

impl SampledTransform for Bound<'_> {
    #[inline]
    fn map(&self, i: usize) -> [f64; 2] {
        let c = self.cache;
        let base = c.base[i] as usize;
        let (wx, wy) = &c.weights[i];
        let (mut du, mut dv) = (0.0, 0.0);
        for (b, &wyb) in wy.iter().enumerate() {
            let row = base + b * c.nx;
            let (ru, rv) = (&self.u[row..row + 4], &self.v[row..row + 4]);
            let mut su = 0.0;
            let mut sv = 0.0;
            for a in 0..4 {
                su += wx[a] as f64 * ru[a];
                sv += wx[a] as f64 * rv[a];
            }
            du += wyb as f64 * su;
            dv += wyb as f64 * sv;
        }
        let [ax, ay] = c.affine[i];
        [ax + du, ay + dv]
    }

    #[inline]
    fn add_gradient(&self, i: usize, gx: f64, gy: f64, acc: &mut [f64]) {
        let c = self.cache;
        let base = c.base[i] as usize;
        let (wx, wy) = &c.weights[i];
        for (b, &wyb) in wy.iter().enumerate() {
            let row = base + b * c.nx;
            let (gxb, gyb) = (gx * wyb as f64, gy * wyb as f64);
            for a in 0..4 {
                acc[row + a] += gxb * wx[a] as f64;
                acc[c.count + row + a] += gyb * wx[a] as f64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::PointSet;
    use crate::raster::GrayF32;
    use crate::transform::{Affine, BSplineTransform, Parametric};

    #[test]
    fn cached_evaluation_equals_pointwise_evaluation() {
        let mut b = BSplineTransform::new(90, 70, [20.0, 20.0]);
        let mut rng = crate::rng::SplitMix64::new(8);
        b.u.iter_mut().for_each(|c| *c = rng.uniform(-2.0, 2.0));
        b.v.iter_mut().for_each(|c| *c = rng.uniform(-2.0, 2.0));
        let t = AffineBSpline {
            affine: Affine::similarity(0.02, 1.01, [1.0, 2.0], [45.0, 35.0]),
            bspline: b,
        };
        let img = GrayF32::from_shape_fn((35, 45), |(y, x)| (x + y) as f32);
        let samples = SampleSet::random(&img, None, 300, 3);
        let cache = BSplineSampleCache::new(&t, &samples, 2.0);
        let points = PointSet::new(&samples, 2.0);
        let (fast, slow) = (cache.bind(&t), points.bind(&t));
        let n = t.num_params();
        for i in 0..samples.points.len() {
            let (a, b) = (fast.map(i), slow.map(i));
            assert!(
                (a[0] - b[0]).abs() < 1e-5 && (a[1] - b[1]).abs() < 1e-5,
                "{a:?} {b:?}"
            );
            let (mut ga, mut gb) = (vec![0.0; n], vec![0.0; n]);
            fast.add_gradient(i, 0.7, -1.3, &mut ga);
            slow.add_gradient(i, 0.7, -1.3, &mut gb);
            assert!(ga.iter().zip(&gb).all(|(x, y)| (x - y).abs() < 1e-6));
        }
    }
}
