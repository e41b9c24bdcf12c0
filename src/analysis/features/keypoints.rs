//! Oriented keypoints with binary descriptors, in the manner of ORB: Harris corners on a few
//! scales (each a factor √2 apart), each oriented by its patch's intensity centroid and
//! described by 256 intensity comparisons rotated with it.

use crate::raster::BilinearSampler;
use crate::raster::GrayF32;
use crate::rng::SplitMix64;

/// A keypoint in the image's own pixels, with its descriptor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Keypoint {
    /// Position (full-resolution pixels of the image it was found in).
    pub x: f64,
    /// Position.
    pub y: f64,
    /// Orientation (radians).
    pub angle: f64,
    /// The scale it was found at (1: the image itself).
    pub scale: f64,
    /// 256 comparison bits.
    pub descriptor: [u64; 4],
}

/// Radius of the described patch at the keypoint's own scale, pixels.
const PATCH_RADIUS: f64 = 15.0;

/// Scales searched: each √2 smaller than the last.
const SCALES: usize = 5;

/// The comparison pattern: 256 pairs of offsets in the patch, drawn once from a fixed seed
/// (a Gaussian of σ = patch / 5, clipped to the patch), the same for every image.
fn pattern() -> Vec<[[f64; 2]; 2]> {
    let mut rng = SplitMix64::new(0x0B_21EF);
    let sigma = 2.0 * PATCH_RADIUS / 5.0;
    let mut offset = || {
        loop {
            let (x, y) = (rng.normal() * sigma, rng.normal() * sigma);
            if x * x + y * y <= (PATCH_RADIUS - 1.0).powi(2) {
                return [x, y];
            }
        }
    };
    (0..256).map(|_| [offset(), offset()]).collect()
}

/// `image` resampled by `factor` (< 1 shrinks), bilinear after a box pre-filter.
fn resized(image: &GrayF32, factor: f64) -> GrayF32 {
    let (h, w) = image.dim();
    let (nw, nh) = (
        ((w as f64 * factor).round() as usize).max(1),
        ((h as f64 * factor).round() as usize).max(1),
    );
    let blurred = blur(image, (0.5 / factor).max(0.5));
    GrayF32::from_shape_fn((nh, nw), |(y, x)| {
        bilinear(
            &blurred,
            (x as f64 + 0.5) / factor - 0.5,
            (y as f64 + 0.5) / factor - 0.5,
        )
    })
}

/// Separable Gaussian blur (edges repeated).
fn blur(image: &GrayF32, sigma: f64) -> GrayF32 {
    let kernel = crate::raster::pyramid::gaussian_kernel(sigma as f32);
    let radius = (kernel.len() / 2) as isize;
    let (h, w) = image.dim();
    let pass = |src: &GrayF32, horizontal: bool| {
        GrayF32::from_shape_fn((h, w), |(y, x)| {
            kernel
                .iter()
                .enumerate()
                .map(|(k, weight)| {
                    let d = k as isize - radius;
                    let (sx, sy) = if horizontal {
                        ((x as isize + d).clamp(0, w as isize - 1) as usize, y)
                    } else {
                        (x, (y as isize + d).clamp(0, h as isize - 1) as usize)
                    };
                    weight * src[[sy, sx]]
                })
                .sum()
        })
    };
    pass(&pass(image, true), false)
}

/// Bilinear value at `(x, y)`, edges repeated.
fn bilinear(image: &GrayF32, x: f64, y: f64) -> f32 {
    let (h, w) = image.dim();
    BilinearSampler::new(image.view())
        .value(x.clamp(0.0, (w - 1) as f64), y.clamp(0.0, (h - 1) as f64))
        .expect("clamped into the image")
}

/// Harris corner responses (k = 0.04) with a structure tensor smoothed at σ = 1.5.
fn harris(image: &GrayF32) -> GrayF32 {
    let (h, w) = image.dim();
    let at = |x: isize, y: isize| {
        image[[
            y.clamp(0, h as isize - 1) as usize,
            x.clamp(0, w as isize - 1) as usize,
        ]]
    };
    let mut xx = GrayF32::zeros((h, w));
    let mut yy = GrayF32::zeros((h, w));
    let mut xy = GrayF32::zeros((h, w));
    for y in 0..h as isize {
        for x in 0..w as isize {
            let gx = 0.5 * (at(x + 1, y) - at(x - 1, y));
            let gy = 0.5 * (at(x, y + 1) - at(x, y - 1));
            let i = [y as usize, x as usize];
            xx[i] = gx * gx;
            yy[i] = gy * gy;
            xy[i] = gx * gy;
        }
    }
    let (xx, yy, xy) = (blur(&xx, 1.5), blur(&yy, 1.5), blur(&xy, 1.5));
    GrayF32::from_shape_fn((h, w), |i| {
        let (a, b, c) = (xx[i], yy[i], xy[i]);
        a * b - c * c - 0.04 * (a + b) * (a + b)
    })
}

/// Up to `count` keypoints of `image` over [`SCALES`] scales, strongest corners first, spread
/// over a grid so that one textured corner does not take them all.
pub fn keypoints(image: &GrayF32, count: usize) -> Vec<Keypoint> {
    let pattern = pattern();
    let per_scale = count.div_ceil(SCALES);
    let mut all = Vec::new();
    for s in 0..SCALES {
        let scale = 0.5f64.powf(s as f64 / 2.0);
        let level = if s == 0 {
            image.clone()
        } else {
            resized(image, scale)
        };
        let (h, w) = level.dim();
        let margin = PATCH_RADIUS.ceil() as usize + 2;
        if w <= 2 * margin + 2 || h <= 2 * margin + 2 {
            break;
        }
        let response = harris(&level);
        let smooth = blur(&level, 1.2);
        // Local maxima in 5 x 5, kept per grid cell.
        let cells = 8usize;
        let mut candidates: Vec<(f32, usize, usize)> = Vec::new();
        for y in margin..h - margin {
            for x in margin..w - margin {
                let v = response[[y, x]];
                if v <= 0.0 {
                    continue;
                }
                let peak = (y - 2..=y + 2).all(|yy| {
                    (x - 2..=x + 2).all(|xx| (yy, xx) == (y, x) || response[[yy, xx]] < v)
                });
                if peak {
                    candidates.push((v, x, y));
                }
            }
        }
        candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut taken = vec![0usize; cells * cells];
        let per_cell = per_scale.div_ceil(cells * cells) * 2;
        let mut kept = 0;
        for &(_, x, y) in &candidates {
            let c = (y * cells / h) * cells + x * cells / w;
            if taken[c] >= per_cell {
                continue;
            }
            taken[c] += 1;
            kept += 1;
            let angle = orientation(&smooth, x, y);
            let descriptor = describe(&smooth, x as f64, y as f64, angle, &pattern);
            all.push(Keypoint {
                x: (x as f64 + 0.5) / scale - 0.5,
                y: (y as f64 + 0.5) / scale - 0.5,
                angle,
                scale,
                descriptor,
            });
            if kept >= per_scale {
                break;
            }
        }
    }
    all
}

/// The direction from `(x, y)` to its patch's intensity centroid.
fn orientation(image: &GrayF32, x: usize, y: usize) -> f64 {
    let r = PATCH_RADIUS as isize;
    let (mut mx, mut my) = (0.0f64, 0.0f64);
    for dy in -r..=r {
        for dx in -r..=r {
            if dx * dx + dy * dy > r * r {
                continue;
            }
            let v = image[[(y as isize + dy) as usize, (x as isize + dx) as usize]] as f64;
            mx += dx as f64 * v;
            my += dy as f64 * v;
        }
    }
    my.atan2(mx)
}

/// The 256 comparisons of the pattern rotated by `angle` about `(x, y)`.
fn describe(image: &GrayF32, x: f64, y: f64, angle: f64, pattern: &[[[f64; 2]; 2]]) -> [u64; 4] {
    let (s, c) = angle.sin_cos();
    let at = |[px, py]: [f64; 2]| bilinear(image, x + c * px - s * py, y + s * px + c * py);
    let mut bits = [0u64; 4];
    for (i, [a, b]) in pattern.iter().enumerate() {
        if at(*a) < at(*b) {
            bits[i / 64] |= 1 << (i % 64);
        }
    }
    bits
}

/// Bits in which two descriptors differ.
pub fn hamming(a: &[u64; 4], b: &[u64; 4]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}
