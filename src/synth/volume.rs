//! Slices of a smooth random 3D volume: neighbouring slices look alike and the likeness fades
//! with the distance, as in serial sections.

use crate::raster::GrayF32;
use crate::rng::SplitMix64;

/// Plane waves summed into the volume.
const WAVES: usize = 48;

/// `count` slices of `side`² pixels of one volume: a sum of plane waves with in-plane periods
/// of 20–120 px and slow change across slices (at most 0.12 rad per slice, so the correlation
/// falls monotonically over 12 slices and never turns negative), values in `0..=1` with a
/// little noise.
pub fn volume_slices(side: usize, count: usize, seed: u64) -> Vec<GrayF32> {
    let mut rng = SplitMix64::new(seed);
    let waves: Vec<[f64; 5]> = (0..WAVES)
        .map(|_| {
            let period = rng.uniform(20.0, 120.0);
            let angle = rng.uniform(0.0, std::f64::consts::TAU);
            let k = std::f64::consts::TAU / period;
            let kz = rng.uniform(0.03, 0.12) * if rng.next_f64() < 0.5 { -1.0 } else { 1.0 };
            [
                k * angle.cos(),
                k * angle.sin(),
                kz,
                rng.uniform(0.0, std::f64::consts::TAU),
                rng.uniform(0.5, 1.0),
            ]
        })
        .collect();
    let norm: f64 = waves.iter().map(|w| w[4]).sum();
    (0..count)
        .map(|z| {
            let mut noise = SplitMix64::new(seed ^ ((z as u64 + 1) * 0x9E37));
            GrayF32::from_shape_fn((side, side), |(y, x)| {
                let v: f64 = waves
                    .iter()
                    .map(|w| {
                        w[4] * (w[0] * x as f64 + w[1] * y as f64 + w[2] * z as f64 + w[3]).sin()
                    })
                    .sum::<f64>()
                    / norm;
                (0.5 + 1.2 * v + 0.02 * noise.normal()).clamp(0.0, 1.0) as f32
            })
        })
        .collect()
}
