//! Textures for generated pairs: a procedural fabric-like pattern or a given base image.

use crate::raster::{CubicBSplineSampler, GrayF32};
use crate::rng::hash64;

/// A continuous intensity function over fixed-image coordinates, in `[0, 1]`.
#[derive(Debug, Clone)]
pub enum Texture {
    /// Multi-octave value noise with a woven pattern, deterministic for a seed.
    Procedural {
        /// Octaves as (wavelength in pixels, amplitude).
        octaves: Vec<(f64, f64)>,
        /// Seed.
        seed: u64,
    },
    /// A base image, interpolated (cubic B-spline) and scaled to the pair's size.
    Image {
        /// The prefiltered base image.
        sampler: CubicBSplineSampler,
        /// Base pixels per pair pixel, per axis.
        scale: [f64; 2],
    },
}

impl Texture {
    /// A procedural texture with detail from 4 px up to a quarter of the image.
    pub fn procedural(width: usize, height: usize, seed: u64) -> Self {
        let largest = (width.max(height) as f64 / 4.0).max(8.0);
        let mut octaves = Vec::new();
        let mut wavelength = largest;
        while wavelength >= 4.0 {
            octaves.push((wavelength, (wavelength / largest).powf(0.35)));
            wavelength /= 2.0;
        }
        let total: f64 = octaves.iter().map(|o| o.1).sum();
        octaves.iter_mut().for_each(|o| o.1 /= total);
        Texture::Procedural { octaves, seed }
    }

    /// A texture from a base image's luminance, stretched to `width x height`.
    pub fn from_image(base: &GrayF32, width: usize, height: usize) -> Self {
        let scale = [
            (base.ncols() - 1) as f64 / (width - 1).max(1) as f64,
            (base.nrows() - 1) as f64 / (height - 1).max(1) as f64,
        ];
        Texture::Image {
            sampler: CubicBSplineSampler::new(base),
            scale,
        }
    }

    /// The intensity at `(x, y)`; points outside the image continue the pattern (procedural)
    /// or the nearest edge (image).
    pub fn value(&self, x: f64, y: f64) -> f64 {
        match self {
            Texture::Procedural { octaves, seed } => {
                let mut v = 0.0;
                for (i, &(wavelength, amplitude)) in octaves.iter().enumerate() {
                    v += amplitude
                        * value_noise(x / wavelength, y / wavelength, seed.wrapping_add(i as u64));
                }
                let modulation = 0.5 + 0.5 * value_noise(x / 50.0, y / 50.0, seed ^ 0xABCD);
                let weave = (x * std::f64::consts::TAU / 9.0).sin()
                    * (y * std::f64::consts::TAU / 11.0).sin();
                (0.5 + 0.6 * v + 0.12 * weave * modulation).clamp(0.0, 1.0)
            }
            Texture::Image { sampler, scale } => {
                let bx = (x * scale[0]).clamp(0.0, (sampler.width() - 1) as f64);
                let by = (y * scale[1]).clamp(0.0, (sampler.height() - 1) as f64);
                sampler.value(bx, by).unwrap_or(0.0)
            }
        }
    }
}

/// Smooth value noise in `[-1, 1]` with a quintic fade (continuous second derivative).
#[inline]
fn value_noise(x: f64, y: f64, seed: u64) -> f64 {
    let (ix, iy) = (x.floor(), y.floor());
    let (fx, fy) = (x - ix, y - iy);
    let (ix, iy) = (ix as i64, iy as i64);
    let lattice = |i: i64, j: i64| {
        let h = hash64(
            seed ^ hash64((i as u64).wrapping_mul(0x9E37_79B9) ^ (j as u64).rotate_right(32)),
        );
        (h >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    };
    let fade = |t: f64| t * t * t * (t * (t * 6.0 - 15.0) + 10.0);
    let (sx, sy) = (fade(fx), fade(fy));
    let top = lattice(ix, iy) + sx * (lattice(ix + 1, iy) - lattice(ix, iy));
    let bottom = lattice(ix, iy + 1) + sx * (lattice(ix + 1, iy + 1) - lattice(ix, iy + 1));
    top + sy * (bottom - top)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn procedural_texture_is_in_range_and_varied() {
        let t = Texture::procedural(256, 256, 1);
        let vals: Vec<f64> = (0..400)
            .map(|i| t.value((i % 20) as f64 * 7.3, (i / 20) as f64 * 5.1))
            .collect();
        assert!(vals.iter().all(|v| (0.0..=1.0).contains(v)));
        let mean = vals.iter().sum::<f64>() / vals.len() as f64;
        let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64;
        assert!(var > 1e-3, "texture too flat: {var}");
    }
}
