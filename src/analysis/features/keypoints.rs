//! Oriented keypoints with binary descriptors, in the manner of ORB: Harris corners on a few
//! scales (each a factor √2 apart), each oriented by its patch's intensity centroid and
//! described by 256 intensity comparisons rotated with it.

use crate::raster::BilinearSampler;
use crate::raster::GrayF32;
use crate::rng::SplitMix64;
use rayon::prelude::*;

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
    by_rows(nw, nh, |y, row| {
        for (x, out) in row.iter_mut().enumerate() {
            *out = bilinear(
                &blurred,
                (x as f64 + 0.5) / factor - 0.5,
                (y as f64 + 0.5) / factor - 0.5,
            );
        }
    })
}

/// A `width x height` image whose rows `fill(y, row)` writes, in parallel.
fn by_rows(width: usize, height: usize, fill: impl Fn(usize, &mut [f32]) + Sync) -> GrayF32 {
    let mut out = GrayF32::zeros((height, width));
    out.as_slice_mut()
        .expect("a new array is contiguous")
        .par_chunks_mut(width.max(1))
        .enumerate()
        .for_each(|(y, row)| fill(y, row));
    out
}

/// Separable Gaussian blur (edges repeated). Each output sums its taps in kernel order, the
/// horizontal pass then the vertical.
fn blur(image: &GrayF32, sigma: f64) -> GrayF32 {
    let kernel = crate::raster::pyramid::gaussian_kernel(sigma as f32);
    let radius = kernel.len() / 2;
    let (h, w) = image.dim();
    let horizontal = by_rows(w, h, |y, out| {
        // The row with `radius` repeated edge pixels on each side.
        let source = image.row(y);
        let padded: Vec<f32> = (0..w + 2 * radius)
            .map(|i| source[i.saturating_sub(radius).min(w - 1)])
            .collect();
        for (k, weight) in kernel.iter().enumerate() {
            for (o, v) in out.iter_mut().zip(&padded[k..]) {
                *o += weight * v;
            }
        }
    });
    let rows = horizontal.as_slice().expect("a new array is contiguous");
    by_rows(w, h, |y, out| {
        for (k, weight) in kernel.iter().enumerate() {
            let sy = (y + k).saturating_sub(radius).min(h - 1);
            for (o, v) in out.iter_mut().zip(&rows[sy * w..][..w]) {
                *o += weight * v;
            }
        }
    })
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
    let image = image.as_standard_layout();
    let pixels = image.as_slice().expect("standard layout");
    // Central differences, edges repeated.
    let product = |f: fn(f32, f32) -> f32| {
        by_rows(w, h, |y, row| {
            let line = |y: usize| &pixels[y * w..][..w];
            let (up, here, down) = (line(y.saturating_sub(1)), line(y), line((y + 1).min(h - 1)));
            for (x, out) in row.iter_mut().enumerate() {
                let gx = 0.5 * (here[(x + 1).min(w - 1)] - here[x.saturating_sub(1)]);
                let gy = 0.5 * (down[x] - up[x]);
                *out = f(gx, gy);
            }
        })
    };
    let xx = product(|gx, _| gx * gx);
    let yy = product(|_, gy| gy * gy);
    let xy = product(|gx, gy| gx * gy);
    let (xx, yy, xy) = (blur(&xx, 1.5), blur(&yy, 1.5), blur(&xy, 1.5));
    let mut response = xx;
    ndarray::Zip::from(&mut response)
        .and(&yy)
        .and(&xy)
        .par_for_each(|a, &b, &c| *a = *a * b - c * c - 0.04 * (*a + b) * (*a + b));
    response
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
        let mut candidates: Vec<(f32, usize, usize)> = (margin..h - margin)
            .into_par_iter()
            .flat_map_iter(|y| {
                let response = &response;
                (margin..w - margin).filter_map(move |x| {
                    let v = response[[y, x]];
                    let peak = v > 0.0
                        && (y - 2..=y + 2).all(|yy| {
                            (x - 2..=x + 2).all(|xx| (yy, xx) == (y, x) || response[[yy, xx]] < v)
                        });
                    peak.then_some((v, x, y))
                })
            })
            .collect();
        candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut taken = vec![0usize; cells * cells];
        let per_cell = per_scale.div_ceil(cells * cells) * 2;
        let mut kept = Vec::new();
        for &(_, x, y) in &candidates {
            let c = (y * cells / h) * cells + x * cells / w;
            if taken[c] >= per_cell {
                continue;
            }
            taken[c] += 1;
            kept.push((x, y));
            if kept.len() >= per_scale {
                break;
            }
        }
        all.par_extend(kept.into_par_iter().map(|(x, y)| {
            let angle = orientation(&smooth, x, y);
            Keypoint {
                x: (x as f64 + 0.5) / scale - 0.5,
                y: (y as f64 + 0.5) / scale - 0.5,
                angle,
                scale,
                descriptor: describe(&smooth, x as f64, y as f64, angle, &pattern),
            }
        }));
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
