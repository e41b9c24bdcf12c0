//! The accurate mode's bending penalty: the squared second derivatives of the B-spline's
//! displacement, with lengths in units of the image's longer side.
//!
//! In those units a weight means the same smoothness on a 1000 px pair and on a 17 320 px one:
//! the metric's pull on a control point and the penalty's both scale as one over the image's
//! size. (Before, the energy was in 1/px^2 and a weight that mattered at 1000 px vanished at
//! 17 320 px.)

use crate::transform::BSplineTransform;

/// The weight of [`bending_energy`] (1/px^2) that gives the size-relative `weight` on a
/// `width` x `height` image: `weight` times its longer side squared.
pub fn weight_per_px(weight: f64, width: usize, height: usize) -> f64 {
    weight * (width.max(height) as f64).powi(2)
}

/// Mean bending energy of a B-spline's coefficients, from second differences of the control
/// grid divided by the squared spacing (1/px^2), times `weight`; its gradient is added to
/// `grad`.
pub fn bending_energy(b: &BSplineTransform, weight: f64, grad: Option<&mut [f64]>) -> f64 {
    let (ny, nx) = b.u.dim();
    if nx < 3 || ny < 3 || weight == 0.0 {
        return 0.0;
    }
    let (sx2, sy2) = (b.spacing[0] * b.spacing[0], b.spacing[1] * b.spacing[1]);
    let sxy = b.spacing[0] * b.spacing[1];
    let count = ((nx - 2) * (ny - 2)) as f64;
    let n = b.u.len();
    let mut energy = 0.0;
    let mut g = grad;
    for (comp, c) in [&b.u, &b.v].into_iter().enumerate() {
        let offset = comp * n;
        for j in 1..ny - 1 {
            for i in 1..nx - 1 {
                let xx = (c[[j, i - 1]] - 2.0 * c[[j, i]] + c[[j, i + 1]]) / sx2;
                let yy = (c[[j - 1, i]] - 2.0 * c[[j, i]] + c[[j + 1, i]]) / sy2;
                let xy = (c[[j + 1, i + 1]] - c[[j + 1, i]] - c[[j, i + 1]] + c[[j, i]]) / sxy;
                energy += xx * xx + 2.0 * xy * xy + yy * yy;
                if let Some(g) = g.as_deref_mut() {
                    let k = |jj: usize, ii: usize| offset + jj * nx + ii;
                    let f = 2.0 * weight / count;
                    g[k(j, i - 1)] += f * xx / sx2;
                    g[k(j, i)] += f * (-2.0 * xx / sx2 - 2.0 * yy / sy2 + 2.0 * xy / sxy);
                    g[k(j, i + 1)] += f * (xx / sx2 - 2.0 * xy / sxy);
                    g[k(j - 1, i)] += f * yy / sy2;
                    g[k(j + 1, i)] += f * (yy / sy2 - 2.0 * xy / sxy);
                    g[k(j + 1, i + 1)] += f * 2.0 * xy / sxy;
                }
            }
        }
    }
    weight * energy / count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::Parametric;

    #[test]
    fn bending_energy_is_zero_for_affine_coefficients_and_its_gradient_is_exact() {
        let mut b = BSplineTransform::new(100, 80, [20.0, 20.0]);
        for ((j, i), c) in b.u.indexed_iter_mut() {
            *c = 0.3 * i as f64 - 0.2 * j as f64 + 1.0;
        }
        assert!(bending_energy(&b, 1.0, None).abs() < 1e-20);
        let mut rng = crate::rng::SplitMix64::new(4);
        b.u.iter_mut().for_each(|c| *c = rng.uniform(-3.0, 3.0));
        b.v.iter_mut().for_each(|c| *c = rng.uniform(-3.0, 3.0));
        let mut g = vec![0.0; b.num_params()];
        let e0 = bending_energy(&b, 2.5, Some(&mut g));
        let p0 = b.params();
        for k in [0, 7, 13, p0.len() - 9] {
            let mut p = p0.clone();
            p[k] += 1e-6;
            let mut q = b.clone();
            q.set_params(&p);
            let numeric = (bending_energy(&q, 2.5, None) - e0) / 1e-6;
            assert!(
                (numeric - g[k]).abs() < 1e-6 * (1.0 + g[k].abs()),
                "{k}: {numeric} vs {}",
                g[k]
            );
        }
    }

    #[test]
    fn a_size_relative_weight_gives_the_same_energy_to_the_same_shape_at_any_size() {
        // The same bump, in proportion, on a 100 px and on a 1000 px image.
        let bump = |side: usize| {
            let spacing = side as f64 / 10.0;
            let mut b = BSplineTransform::new(side, side, [spacing, spacing]);
            b.u[[5, 5]] = side as f64 / 50.0;
            bending_energy(&b, weight_per_px(0.1, side, side), None)
        };
        let (small, large) = (bump(100), bump(1000));
        assert!(small > 0.0);
        assert!((small - large).abs() < 1e-9 * small, "{small} vs {large}");
    }
}
