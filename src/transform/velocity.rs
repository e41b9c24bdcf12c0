//! Stationary velocity fields (the demons mode's result): their exponential by scaling and
//! squaring — the kernels the demons' CPU solver runs too, twins of `shaders/demons.wgsl` — and
//! the conversions to the engine's displacement fields and transforms.

use super::{DenseField, Transform, dense_transform};
use ndarray::Array2;
use rayon::prelude::*;

/// Longest vector scaling and squaring starts from, in pixels: below it `exp(v/2^N) ≈ id +
/// v/2^N` is accurate to a small fraction of a pixel.
pub const MAX_SCALED_NORM: f32 = 0.125;

/// Most squarings (a velocity over 250 000 px long would need more).
const MAX_STEPS: u32 = 20;

/// Squarings for a velocity whose longest vector is `max_norm` pixels: the smallest `N` with
/// `max_norm / 2^N ≤` [`MAX_SCALED_NORM`].
pub fn exp_steps(max_norm: f32) -> u32 {
    let mut steps = 0;
    while steps < MAX_STEPS && max_norm / (1u64 << steps) as f32 > MAX_SCALED_NORM {
        steps += 1;
    }
    steps
}

/// The longest vector of a field (0 for an empty one; NaNs are skipped).
pub fn max_norm(field: &[[f32; 2]]) -> f32 {
    field
        .iter()
        .map(|v| (v[0] * v[0] + v[1] * v[1]).sqrt())
        .fold(0.0, f32::max)
}

/// The displacement `u` of `exp(v)` on the same grid: `x + u(x) = exp(v)(x)`.
pub fn exp(velocity: &Array2<[f32; 2]>) -> Array2<[f32; 2]> {
    let (h, w) = velocity.dim();
    let v = velocity.as_standard_layout();
    let v = v.as_slice().expect("standard layout");
    let steps = exp_steps(max_norm(v));
    let mut u = vec![[0.0f32; 2]; w * h];
    let mut squared = vec![[0.0f32; 2]; w * h];
    exp_scale(v, steps, &mut u);
    for _ in 0..steps {
        exp_square(&u, w, h, [0, 0], &mut squared);
        std::mem::swap(&mut u, &mut squared);
    }
    Array2::from_shape_vec((h, w), u).expect("same size")
}

/// `u = v / 2^steps`, the start of scaling and squaring.
pub fn exp_scale(velocity: &[[f32; 2]], steps: u32, out: &mut [[f32; 2]]) {
    let factor = 1.0 / (1u64 << steps) as f32;
    out.par_iter_mut()
        .zip(velocity)
        .for_each(|(o, v)| *o = [v[0] * factor, v[1] * factor]);
}

/// One squaring: `out(x) = u(x) + u(x + u(x))`, `u` sampled bilinearly with the point clamped
/// to the tile. Positions are formed in level coordinates (`origin` added) and moved back into
/// the tile by an exact subtraction, as the shader does.
pub fn exp_square(
    displacement: &[[f32; 2]],
    width: usize,
    height: usize,
    origin: [u32; 2],
    out: &mut [[f32; 2]],
) {
    let [ox, oy] = origin;
    out.par_chunks_mut(width).enumerate().for_each(|(y, row)| {
        for (x, o) in row.iter_mut().enumerate() {
            let u = displacement[y * width + x];
            let px = (x as u32 + ox) as f32 + u[0] - ox as f32;
            let py = (y as u32 + oy) as f32 + u[1] - oy as f32;
            let s = sample_field(displacement, width, height, px, py);
            *o = [u[0] + s[0], u[1] + s[1]];
        }
    });
}

/// Bilinear sample of a vector field at `(x, y)` clamped to its grid. After the clamp the
/// point is non-negative, so truncation is the floor.
pub fn sample_field(field: &[[f32; 2]], width: usize, height: usize, x: f32, y: f32) -> [f32; 2] {
    let x = x.clamp(0.0, (width - 1) as f32);
    let y = y.clamp(0.0, (height - 1) as f32);
    let (x0, y0) = (x as usize, y as usize);
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let x1 = (x0 + 1).min(width - 1);
    let (top, bottom) = (
        &field[y0 * width..],
        &field[(y0 + 1).min(height - 1) * width..],
    );
    let (a, b, c, d) = (top[x0], top[x1], bottom[x0], bottom[x1]);
    let mut out = [0.0; 2];
    for (k, o) in out.iter_mut().enumerate() {
        let upper = a[k] + fx * (b[k] - a[k]);
        let lower = c[k] + fx * (d[k] - c[k]);
        *o = upper + fy * (lower - upper);
    }
    out
}

/// A `[f32; 2]` field as a [`DenseField`] (`u` the x, `v` the y component).
pub fn to_dense(field: &Array2<[f32; 2]>) -> DenseField {
    DenseField {
        u: field.mapv(|d| d[0]),
        v: field.mapv(|d| d[1]),
    }
}

/// A [`DenseField`] as a `[f32; 2]` field.
pub fn from_dense(field: &DenseField) -> Array2<[f32; 2]> {
    ndarray::Zip::from(&field.u)
        .and(&field.v)
        .map_collect(|&u, &v| [u, v])
}

/// The transform `p ↦ exp(v)(p)` of a velocity stored at `scale` full-resolution pixels per
/// field pixel (in field pixels, as the demons leave it).
pub fn velocity_transform(velocity: &DenseField, scale: f64) -> Box<dyn Transform> {
    dense_transform(to_dense(&exp(&from_dense(velocity))), scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smooth_velocity(w: usize, h: usize, amplitude: f32) -> Array2<[f32; 2]> {
        Array2::from_shape_fn((h, w), |(y, x)| {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            [
                amplitude * (std::f32::consts::TAU * fy).sin(),
                amplitude * 0.7 * (std::f32::consts::TAU * fx).cos(),
            ]
        })
    }

    #[test]
    fn the_exponential_of_a_constant_velocity_is_that_translation() {
        let v = Array2::from_elem((20, 30), [3.5f32, -2.0]);
        let u = exp(&v);
        for d in u.iter() {
            assert!(
                (d[0] - 3.5).abs() < 1e-4 && (d[1] + 2.0).abs() < 1e-4,
                "{d:?}"
            );
        }
        assert_eq!(exp_steps(0.0), 0);
        assert_eq!(exp_steps(0.125), 0);
        assert_eq!(exp_steps(4.0), 5);
    }

    #[test]
    fn the_exponentials_of_v_and_minus_v_are_inverses() {
        let v = smooth_velocity(96, 80, 6.0);
        let forward = velocity_transform(&to_dense(&v), 1.0);
        let backward = velocity_transform(&to_dense(&v.mapv(|d| [-d[0], -d[1]])), 1.0);
        let mut worst = 0.0f64;
        // Away from the border, where the clamped field is not the field.
        for y in (10..70).step_by(3) {
            for x in (10..86).step_by(3) {
                let q = forward.map_point(x as f64, y as f64);
                let p = backward.map_point(q[0], q[1]);
                worst = worst.max((p[0] - x as f64).hypot(p[1] - y as f64));
            }
        }
        assert!(worst < 0.05, "round trip off by {worst} px");
    }
}
