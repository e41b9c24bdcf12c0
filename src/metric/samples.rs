//! Fixed-image sample points.

use crate::raster::GrayF32;
use crate::rng::SplitMix64;
use ndarray::Array2;

/// One fixed-image sample: position in level pixels and the fixed intensity there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Column.
    pub x: f32,
    /// Row.
    pub y: f32,
    /// Fixed-image value.
    pub value: f32,
}

/// The fixed-image points a metric is evaluated on.
#[derive(Debug, Clone, Default)]
pub struct SampleSet {
    /// The points.
    pub points: Vec<Sample>,
}

impl SampleSet {
    /// Every pixel (inside `mask` when given).
    pub fn all(fixed: &GrayF32, mask: Option<&Array2<bool>>) -> Self {
        let points = fixed
            .indexed_iter()
            .filter(|((y, x), _)| mask.is_none_or(|m| m[[*y, *x]]))
            .map(|((y, x), &value)| Sample {
                x: x as f32,
                y: y as f32,
                value,
            })
            .collect();
        Self { points }
    }

    /// `count` pixels drawn uniformly at random (with replacement) inside `mask`, deterministic
    /// for a seed, in raster order; all pixels when the image (or mask) has fewer than `count`.
    pub fn random(fixed: &GrayF32, mask: Option<&Array2<bool>>, count: usize, seed: u64) -> Self {
        let (h, w) = fixed.dim();
        if w * h <= count {
            return Self::all(fixed, mask);
        }
        let mut rng = SplitMix64::new(seed);
        let mut points = Vec::with_capacity(count);
        // Rejection sampling against the mask, bounded so an almost-empty mask terminates.
        let mut tries = 0usize;
        while points.len() < count && tries < count * 50 {
            tries += 1;
            let x = rng.below(w as u64) as usize;
            let y = rng.below(h as u64) as usize;
            if mask.is_some_and(|m| !m[[y, x]]) {
                continue;
            }
            points.push(Sample {
                x: x as f32,
                y: y as f32,
                value: fixed[[y, x]],
            });
        }
        // In raster order, consecutive samples read neighbouring memory of the moving image
        // (which the transform maps them near): far fewer cache misses than random order.
        points.sort_unstable_by(|a, b| {
            (a.y, a.x)
                .partial_cmp(&(b.y, b.x))
                .expect("finite coordinates")
        });
        Self { points }
    }
}
