//! Orientation search: the moving image turned through every 5° (and mirrored) on a coarse
//! level, each turn's translation found by phase correlation; the few turns whose correlation
//! peaks stand out from the rest are kept, each refined to 1.25°. It finds sections
//! mounted upside down or flipped across stains, where feature descriptors do not match, and
//! it needs no texture detail (the tissue's outline is enough).

use super::init::PhaseCorrelator;
use crate::raster::{BilinearSampler, GrayF32};
use rayon::prelude::*;

/// Longest side of the level the search runs on: the outline of a section is clear there and
/// 144 phase correlations there cost tens of milliseconds.
pub const SEARCH_SIDE: usize = 128;

/// The grid of turns, degrees: the whitened correlation is carried by the texture, which
/// decorrelates within a few degrees (measured on a 100 px section: 8° off the true turn
/// the peak is at the noise floor, 3° off it is still 0.7 of the true one's).
const STEP_DEG: f64 = 5.0;

/// Turns within this angle of a kept one (same mirror) are its neighbours: its peak's flanks.
const NEIGHBOURHOOD_DEG: f64 = 15.0;

/// A kept turn's peak is at least this many times the median turn's (the noise floor): on a
/// flat level nothing stands out and the search finds no orientation.
const DISTINCT: f64 = 1.25;

/// Most turns kept (distinct peaks, best first).
pub const CANDIDATES: usize = 3;

/// A turn of the moving image and the translation that aligns it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Orientation {
    /// Rotation, degrees in `0..360`.
    pub angle_deg: f64,
    /// Whether the moving image is mirrored (left–right, before the rotation).
    pub mirrored: bool,
    /// Translation in the search level's pixels (`q = R (p - c) + c_m + R d`).
    pub shift: [f64; 2],
    /// Phase-correlation peak of this turn.
    pub peak: f64,
    /// The peak over the median turn's peak.
    pub contrast: f64,
}

impl Orientation {
    /// The linear part `R` (row-major): the rotation after the optional mirror.
    pub fn matrix(&self) -> [f64; 4] {
        turn(self.angle_deg, self.mirrored)
    }
}

/// `R = rotation(angle) · diag(±1, 1)`, row-major.
pub fn turn(angle_deg: f64, mirrored: bool) -> [f64; 4] {
    let (s, c) = angle_deg.to_radians().sin_cos();
    let m = if mirrored { -1.0 } else { 1.0 };
    [c * m, -s, s * m, c]
}

/// The image's centre in pixel-centre coordinates.
fn centre(image: &GrayF32) -> [f64; 2] {
    let (h, w) = image.dim();
    [(w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0]
}

/// `moving` sampled at `R (p - c) + c_m` for every pixel `p` of a `shape` grid (`c` its centre,
/// `c_m` the moving image's); the moving image's mean outside it, which the phase correlation's
/// mean removal turns into zero.
fn turned(moving: &GrayF32, shape: (usize, usize), r: [f64; 4]) -> GrayF32 {
    let mean = moving.iter().map(|&v| v as f64).sum::<f64>() / moving.len().max(1) as f64;
    let sampler = BilinearSampler::new(moving.view());
    let (h, w) = shape;
    let c = [(w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0];
    let cm = centre(moving);
    GrayF32::from_shape_fn(shape, |(y, x)| {
        let (dx, dy) = (x as f64 - c[0], y as f64 - c[1]);
        let qx = r[0] * dx + r[1] * dy + cm[0];
        let qy = r[2] * dx + r[3] * dy + cm[1];
        sampler.value(qx, qy).unwrap_or(mean as f32)
    })
}

/// The phase correlation of the fixed level (`fixed`'s image) with `moving` turned by
/// `(angle, mirrored)` onto the fixed grid.
pub(super) fn try_turn(
    fixed: &PhaseCorrelator,
    moving: &GrayF32,
    angle_deg: f64,
    mirrored: bool,
) -> Orientation {
    let image = turned(moving, fixed.shape(), turn(angle_deg, mirrored));
    let (shift, peak) = fixed.correlate(&image);
    Orientation {
        angle_deg: angle_deg.rem_euclid(360.0),
        mirrored,
        shift,
        peak,
        contrast: 0.0,
    }
}

/// Circular distance between two angles, degrees.
fn angle_between(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(360.0);
    d.min(360.0 - d)
}

/// Searches every 5° turn, mirrored and not, of `moving` against `fixed` (both on the search
/// level): up to [`CANDIDATES`] turns whose peaks stand above the other turns' median (the
/// noise floor) by [`DISTINCT`], each the highest of its neighbourhood and refined to 1.25°,
/// best first; or why there is none. Which of them is right is for the metric to say: a
/// section's outline can look alike turned through 180° or mirrored, so the highest peak is
/// not always the truth.
pub fn search(fixed: &GrayF32, moving: &GrayF32) -> Result<Vec<Orientation>, String> {
    let steps = (360.0 / STEP_DEG) as usize;
    let fixed = &PhaseCorrelator::new(fixed, fixed.ncols(), fixed.nrows());
    let mut turns: Vec<Orientation> = (0..2 * steps)
        .into_par_iter()
        .map(|i| try_turn(fixed, moving, (i % steps) as f64 * STEP_DEG, i >= steps))
        .collect();
    let mut peaks: Vec<f64> = turns.iter().map(|t| t.peak).collect();
    peaks.sort_by(f64::total_cmp);
    let floor = peaks[peaks.len() / 2].max(f64::MIN_POSITIVE);
    turns.sort_by(|a, b| b.peak.total_cmp(&a.peak));
    let mut picked: Vec<Orientation> = Vec::new();
    for t in &turns {
        if picked.len() == CANDIDATES || t.peak < DISTINCT * floor {
            break;
        }
        let neighbour = |p: &Orientation| {
            p.mirrored == t.mirrored && angle_between(p.angle_deg, t.angle_deg) <= NEIGHBOURHOOD_DEG
        };
        if !picked.iter().any(neighbour) {
            picked.push(Orientation {
                contrast: t.peak / floor,
                ..*t
            });
        }
    }
    if picked.is_empty() {
        let best = turns[0];
        return Err(format!(
            "no distinct orientation (best {:.0}°{} peak {:.3}, {:.2}× the median turn)",
            best.angle_deg,
            if best.mirrored { " mirrored" } else { "" },
            best.peak,
            best.peak / floor
        ));
    }
    Ok(picked
        .into_iter()
        .map(|best| {
            let refined = [-2.5, -1.25, 1.25, 2.5]
                .into_par_iter()
                .map(|d| try_turn(fixed, moving, best.angle_deg + d, best.mirrored))
                .collect::<Vec<_>>()
                .into_iter()
                .fold(best, |a, b| if b.peak > a.peak { b } else { a });
            Orientation {
                contrast: best.contrast,
                ..refined
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::Texture;

    /// A blob of texture (a "section" on a flat slide), 96 × 112, and the moving image of it
    /// turned by `(angle, mirrored)` and shifted.
    fn section_pair(angle_deg: f64, mirrored: bool) -> (GrayF32, GrayF32) {
        let texture = Texture::procedural(128, 128, 5);
        let (h, w) = (96, 112);
        let section = |x: f64, y: f64| {
            let (u, v) = ((x - 50.0) / 38.0, (y - 44.0) / 30.0);
            let inside = (u * u + v * v < 1.0) || ((x - 78.0).hypot(y - 62.0) < 14.0);
            if inside {
                0.2 + 0.6 * texture.value(x, y) as f32
            } else {
                1.0
            }
        };
        let fixed = GrayF32::from_shape_fn((h, w), |(y, x)| section(x as f64, y as f64));
        // moving(R (p - c) + c + d) = fixed(p): moving(q) = fixed(R⁻¹ (q - c - d) + c).
        let r = turn(angle_deg, mirrored);
        let det = r[0] * r[3] - r[1] * r[2];
        let inv = [r[3] / det, -r[1] / det, -r[2] / det, r[0] / det];
        let c = [(w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0];
        let d = [4.0, -3.0];
        let moving = GrayF32::from_shape_fn((h, w), |(y, x)| {
            let (qx, qy) = (x as f64 - c[0] - d[0], y as f64 - c[1] - d[1]);
            let px = inv[0] * qx + inv[1] * qy + c[0];
            let py = inv[2] * qx + inv[3] * qy + c[1];
            section(px, py)
        });
        (fixed, moving)
    }

    #[test]
    fn finds_turned_and_mirrored_sections_within_a_few_degrees() {
        for (angle, mirrored) in [(0.0, false), (90.0, true), (180.0, false), (233.0, true)] {
            let (fixed, moving) = section_pair(angle, mirrored);
            let found = search(&fixed, &moving).unwrap_or_else(|why| panic!("{angle}: {why}"))[0];
            assert_eq!(found.mirrored, mirrored, "{angle}: {found:?}");
            assert!(
                angle_between(found.angle_deg, angle) <= 1.0,
                "{angle}: {found:?}"
            );
            if angle_between(found.angle_deg, angle) < 1e-9 {
                // The shift is found in the turned frame: R d_found = d.
                let r = found.matrix();
                let d = [
                    r[0] * found.shift[0] + r[1] * found.shift[1],
                    r[2] * found.shift[0] + r[3] * found.shift[1],
                ];
                assert!(
                    (d[0] - 4.0).abs() < 1.0 && (d[1] + 3.0).abs() < 1.0,
                    "{d:?}"
                );
            }
        }
    }

    #[test]
    fn a_flat_image_has_no_orientation() {
        let flat = GrayF32::from_elem((64, 64), 0.5);
        assert!(search(&flat, &flat).is_err());
    }

    #[test]
    fn turn_is_a_rotation_after_a_mirror() {
        let r = turn(90.0, true);
        // (1, 0) -> mirror (-1, 0) -> rotate 90° -> (0, -1).
        assert!(
            (r[0] * 1.0).abs() < 1e-12 && (r[2] + 1.0).abs() < 1e-12,
            "{r:?}"
        );
    }
}
