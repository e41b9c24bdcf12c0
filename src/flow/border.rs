//! The flow where a level has no data: pixels that map outside the moving image, or within
//! [`border_margin`] of its edge.
//!
//! Content near the fixed image's border that moves out of the frame has nothing to match. While
//! the flow there still maps inside, its data term matches whatever lies at the moving image's
//! edge and squeezes the strip onto it; once it maps outside, only the smoothness moves it, and
//! what it froze at pulls its neighbours with data. Either way the error starts on the coarse
//! levels, grows with the level's scale, and a fine texture's linearisation cannot pull it back
//! later. So after each level such pixels get the flow of their nearest neighbours with data,
//! layer by layer outwards: a constant extension of the interior, which the next level starts
//! from. Measured on the generalisation matrix (`docs/benchmarks.md`): every family's fast-mode
//! mean EPE at most 1.003× its value without the step (grass at 5 % at 4096 0.158 → 0.131 px,
//! the procedural texture at 5 % at 1024 0.123 → 0.110).
//!
//! The extension cannot tell a strip that left the frame from a wedge whose estimate ran outside
//! although its true match is inside (content moving partly out of the frame, next to content
//! that stays). On the levels that run the flow both ways ([`super::runs_reverse`]),
//! [`fill_from_reverse`] first gives such pixels the other direction's inverted flow, where that
//! direction has data and the images agree; on the 4096 grass and gravel pairs at 5 % that took
//! the mean EPE from 0.134 and 0.122 to 0.106 and 0.090 px.

use super::{map_level, pixel_difference};
use crate::raster::{BilinearSampler, GrayF32};
use ndarray::Array2;
use rayon::prelude::*;

/// Pixels (of the level) from the moving image's edge within which the data term is not trusted
/// between levels: [`NARROW_MARGIN`] on levels under [`WIDE_LEVEL_SIDE`] pixels, where a pixel
/// is a larger share of the frame, [`WIDE_MARGIN`] from there on.
///
/// Measured (`docs/benchmarks.md`): wider margins help the generated families (2 px on every
/// level: the 1024 procedural texture at 5 % 0.110 px against 0.116 with 1), but the Middlebury
/// motorcycle, whose left strip holds objects at other depths than the interior beside it, gets
/// worse with 2 px on its small levels (2.979 px; 1 px everywhere: 2.937; DIS MEDIUM 2.945). With
/// 2 px only from 256 px up, the procedural cell is 0.110 and the motorcycle 2.942, and no family
/// of the matrix is more than 0.5 % worse than with 1 px everywhere. Trusting the margin
/// wherever its local residual is below the level's mean did not satisfy both.
pub fn border_margin(level_side: usize) -> f32 {
    if level_side >= WIDE_LEVEL_SIDE {
        WIDE_MARGIN
    } else {
        NARROW_MARGIN
    }
}

/// Levels at least this wide get [`WIDE_MARGIN`].
pub const WIDE_LEVEL_SIDE: usize = 256;
/// The margin on levels at least [`WIDE_LEVEL_SIDE`] wide.
pub const WIDE_MARGIN: f32 = 2.0;
/// The margin on smaller levels.
pub const NARROW_MARGIN: f32 = 1.0;

/// Replaces the flow of the pixels that `affine` plus `flow` maps outside the `moving_size`
/// (width, height) image or within [`border_margin`] of its edge by the mean of their
/// neighbours already set, from the pixels with data outwards. Nothing changes when no pixel has
/// data.
pub fn extend_into_border(flow: &mut Array2<[f32; 2]>, affine: [f32; 6], moving_size: [usize; 2]) {
    let (h, w) = flow.dim();
    let [mw, mh] = moving_size.map(|v| v as f32);
    let margin = border_margin(moving_size[0].max(moving_size[1]));
    let data = flow.as_slice_mut().expect("standard layout");
    let mut set: Vec<bool> = data
        .par_iter()
        .enumerate()
        .map(|(i, r)| {
            let [px, py] = map_level(affine, (i % w) as f32, (i / w) as f32, *r);
            super::has_data_term(px, py, [mw, mh], margin)
        })
        .collect();
    if !set.contains(&true) {
        return;
    }
    let neighbours = |i: usize| {
        let (x, y) = (i % w, i / w);
        [
            (x > 0).then(|| i - 1),
            (x + 1 < w).then(|| i + 1),
            (y > 0).then(|| i - w),
            (y + 1 < h).then(|| i + w),
        ]
        .into_iter()
        .flatten()
    };
    let mut layer: Vec<usize> = (0..h * w)
        .into_par_iter()
        .filter(|&i| !set[i] && neighbours(i).any(|n| set[n]))
        .collect();
    while !layer.is_empty() {
        let values: Vec<[f32; 2]> = layer
            .iter()
            .map(|&i| {
                let (mut sum, mut count) = ([0.0f32; 2], 0.0f32);
                for n in neighbours(i).filter(|&n| set[n]) {
                    sum[0] += data[n][0];
                    sum[1] += data[n][1];
                    count += 1.0;
                }
                [sum[0] / count, sum[1] / count]
            })
            .collect();
        for (&i, value) in layer.iter().zip(values) {
            data[i] = value;
            set[i] = true;
        }
        let mut next: Vec<usize> = layer
            .iter()
            .flat_map(|&i| neighbours(i))
            .filter(|&n| !set[n])
            .collect();
        next.sort_unstable();
        next.dedup();
        layer = next;
    }
}

/// Least splatted weight of the reverse flow at a pixel for [`fill_from_reverse`] to use it:
/// half a reverse pixel's worth.
pub const MIN_REVERSE_WEIGHT: f32 = 0.5;

/// How much worse than the typical pixel with data a reverse candidate's agreement may be
/// ([`fill_from_reverse`]). At 4096 px, on the grass and gravel pairs at 5 % whose corner wedge
/// the fill repairs, the repaired candidates' agreement is 1.2–2× the typical on the 128 and
/// 256 px levels; on the gravel pair under the stain map, the reverse pixels at the moving
/// edge that would squeeze a strip that left the frame are 2–5×. With 1.5 the grass pair kept
/// most of its wedge (0.117 px against 0.106 with 2), with 3 the stained gravel pair took a
/// fifth more error (0.131 against 0.108).
pub const MAX_FILL_DISAGREEMENT: f32 = 2.0;

/// Sets the pixels of `flow` without data (as in [`extend_into_border`]) from `reverse`, the
/// flow from the `moving` level back to the `fixed` one, where it maps its own data pixels onto
/// them, the result lands on data, and the images agree there nearly as well as they do on
/// average where the flow has data ([`MAX_FILL_DISAGREEMENT`]). Returns the number of pixels
/// set.
///
/// The forward flow maps fixed pixel `x` to `A(x) + r(x)`; the reverse flow maps moving pixel `q`
/// to `B(q) + s(q)`. Where `p = B(q) + s(q)` lands, the forward residual that maps `p` back to `q`
/// is `q - A(p)`, and with the forward map's local Jacobian taken as `A`'s it is the same at the
/// pixels around `p`: each reverse data pixel splats it bilinearly onto those four.
///
/// The agreement test keeps out the reverse flow's own errors: a strip that truly left the frame
/// can be covered by reverse pixels near the moving image's edge whose flow is off, and would be
/// squeezed onto that edge. A candidate's agreement is the mean absolute difference over the
/// 3 × 3 pixels around it, each mapped with the candidate.
pub fn fill_from_reverse(
    flow: &mut Array2<[f32; 2]>,
    affine: [f32; 6],
    reverse: &Array2<[f32; 2]>,
    reverse_affine: [f32; 6],
    fixed: &GrayF32,
    moving: &GrayF32,
) -> usize {
    let (h, w) = flow.dim();
    let (mh, mw) = reverse.dim();
    let forward_margin = border_margin(mw.max(mh));
    let reverse_margin = border_margin(w.max(h));
    let size = [mw as f32, mh as f32];
    let has_data = |x: usize, y: usize, r: [f32; 2]| {
        let [px, py] = map_level(affine, x as f32, y as f32, r);
        super::has_data_term(px, py, size, forward_margin)
    };
    let (weight, sum) = splat_reverse(affine, reverse, reverse_affine, [w, h], reverse_margin);
    let sampler = BilinearSampler::new(moving.view());
    let difference =
        |x: usize, y: usize, r: [f32; 2]| pixel_difference(fixed, &sampler, affine, x, y, r);
    // The mean difference over the pixels with data.
    let (total, count) = flow
        .indexed_iter()
        .filter(|&((y, x), r)| has_data(x, y, *r))
        .filter_map(|((y, x), r)| difference(x, y, *r))
        .fold((0.0f64, 0usize), |(t, n), d| (t + d as f64, n + 1));
    if count == 0 {
        return 0;
    }
    let typical = (total / count as f64) as f32;
    let agreement = |x: usize, y: usize, r: [f32; 2]| {
        let (mut total, mut count) = (0.0f32, 0usize);
        for yy in y.saturating_sub(1)..(y + 2).min(h) {
            for xx in x.saturating_sub(1)..(x + 2).min(w) {
                if let Some(d) = difference(xx, yy, r) {
                    total += d;
                    count += 1;
                }
            }
        }
        total / count.max(1) as f32
    };
    let mut filled = 0;
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            if weight[i] < MIN_REVERSE_WEIGHT || has_data(x, y, flow[[y, x]]) {
                continue;
            }
            let candidate = [sum[i][0] / weight[i], sum[i][1] / weight[i]];
            let agrees = || agreement(x, y, candidate) <= MAX_FILL_DISAGREEMENT * typical;
            if has_data(x, y, candidate) && agrees() {
                flow[[y, x]] = candidate;
                filled += 1;
            }
        }
    }
    filled
}

/// The reverse flow's data pixels splatted onto the `size` (width, height) forward grid as
/// forward residuals: per pixel the summed bilinear weight and the weighted sum of residuals.
fn splat_reverse(
    affine: [f32; 6],
    reverse: &Array2<[f32; 2]>,
    reverse_affine: [f32; 6],
    [w, h]: [usize; 2],
    reverse_margin: f32,
) -> (Vec<f32>, Vec<[f32; 2]>) {
    let mut weight = vec![0.0f32; h * w];
    let mut sum = vec![[0.0f32; 2]; h * w];
    for ((qy, qx), s) in reverse.indexed_iter() {
        let (qx, qy) = (qx as f32, qy as f32);
        let [px, py] = map_level(reverse_affine, qx, qy, *s);
        if !super::has_data_term(px, py, [w as f32, h as f32], reverse_margin) {
            continue;
        }
        let [ax, ay] = map_level(affine, px, py, [0.0; 2]);
        let candidate = [qx - ax, qy - ay];
        let (x0, y0) = (px.floor(), py.floor());
        let (fx, fy) = (px - x0, py - y0);
        let (x0, y0) = (x0 as usize, y0 as usize);
        for (x, y, share) in [
            (x0, y0, (1.0 - fx) * (1.0 - fy)),
            (x0 + 1, y0, fx * (1.0 - fy)),
            (x0, y0 + 1, (1.0 - fx) * fy),
            (x0 + 1, y0 + 1, fx * fy),
        ] {
            let i = y * w + x;
            weight[i] += share;
            sum[i][0] += share * candidate[0];
            sum[i][1] += share * candidate[1];
        }
    }
    (weight, sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDENTITY: [f32; 6] = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0];

    #[test]
    fn a_strip_that_left_the_frame_takes_the_flow_of_the_interior_beside_it() {
        // 20 x 12 px; the moving image is as large. Rows differ so the extension is per row.
        let (w, h) = (20, 12);
        let interior = |y: usize| [3.0, 0.1 * y as f32];
        let mut flow = Array2::from_shape_fn((h, w), |(y, x)| {
            // The last four columns ran off to the right: a wild value mapping outside.
            if x >= 16 { [9.0, 0.0] } else { interior(y) }
        });
        let before = flow.clone();
        extend_into_border(&mut flow, IDENTITY, [w, h]);
        for y in 0..h {
            for x in 0..w {
                let maps_to = x as f32 + before[[y, x]][0];
                let py = y as f32 + before[[y, x]][1];
                let trusted = super::super::has_data_term(
                    maps_to,
                    py,
                    [w as f32, h as f32],
                    border_margin(w),
                );
                if trusted {
                    assert_eq!(flow[[y, x]], before[[y, x]], "({x}, {y}) has data");
                } else {
                    // Every untrusted pixel sits beside trusted ones in its row or column,
                    // whose flow is the interior's: the extension is that flow.
                    let got = flow[[y, x]];
                    assert!((got[0] - 3.0).abs() < 1e-6, "({x}, {y}): {got:?}");
                    assert!(got[1] >= 0.0 && got[1] <= 1.1 + 1e-6, "({x}, {y}): {got:?}");
                }
            }
        }
        // The strip that left the frame no longer holds the wild value.
        assert!(flow.iter().all(|f| f[0] < 9.0));
    }

    #[test]
    fn a_flow_with_no_data_anywhere_is_left_alone() {
        let mut flow = Array2::from_elem((6, 7), [50.0f32, 50.0]);
        let before = flow.clone();
        extend_into_border(&mut flow, IDENTITY, [7, 6]);
        assert_eq!(flow, before);
    }
    /// A texture shifted left by `shift` pixels: the moving image of a fixed image `texture(x)`
    /// whose content moved `shift` pixels to the left.
    fn textured_pair(w: usize, h: usize, shift: f32) -> (GrayF32, GrayF32) {
        let texture =
            |x: f32, y: f32| (0.9 * x).sin() + (0.7 * y).cos() + (0.3 * x + 0.5 * y).sin();
        let fixed = Array2::from_shape_fn((h, w), |(y, x)| texture(x as f32, y as f32));
        let moving = Array2::from_shape_fn((h, w), |(y, x)| texture(x as f32 + shift, y as f32));
        (fixed, moving)
    }

    /// The forward flow of a pair shifted 3 px left whose first 12 columns ran off the left
    /// edge (-12 px), and a reverse flow of `reverse_shift` everywhere.
    fn run_fill(reverse_shift: f32) -> (Array2<[f32; 2]>, Array2<[f32; 2]>, usize) {
        let (w, h) = (24, 12);
        let (fixed, moving) = textured_pair(w, h, 3.0);
        let before = Array2::from_shape_fn(
            (h, w),
            |(_, x)| if x < 12 { [-12.0, 0.0] } else { [-3.0, 0.0] },
        );
        let reverse = Array2::from_elem((h, w), [reverse_shift, 0.0f32]);
        let mut flow = before.clone();
        let filled = fill_from_reverse(&mut flow, IDENTITY, &reverse, IDENTITY, &fixed, &moving);
        (before, flow, filled)
    }

    #[test]
    fn pixels_without_data_take_the_inverted_reverse_flow_where_the_images_agree() {
        let (before, flow, filled) = run_fill(3.0);
        let (h, w) = flow.dim();
        // Set: no data before (x < 12), data with the true -3 px (x - 3 >= 1.5), and rows the
        // reverse pixels with data land on (1.5 <= y <= h - 2.5).
        let set = |x: usize, y: usize| (5..12).contains(&x) && (2..h - 2).contains(&y);
        for y in 0..h {
            for x in 0..w {
                let expected = if set(x, y) {
                    [-3.0, 0.0]
                } else {
                    before[[y, x]]
                };
                assert_eq!(flow[[y, x]], expected, "({x}, {y})");
            }
        }
        assert_eq!(filled, 7 * (h - 4));
    }

    #[test]
    fn a_reverse_flow_the_images_disagree_with_is_not_used() {
        // Inverted, a 6 px reverse flow maps x to x - 6: inside the moving image from x = 8 on,
        // but onto other content than the fixed image's.
        let (before, flow, filled) = run_fill(6.0);
        assert_eq!(filled, 0);
        assert_eq!(flow, before);
    }
}
