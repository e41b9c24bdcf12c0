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
            let (x, y) = ((i % w) as f32, (i / w) as f32);
            let px = affine[0] * x + affine[1] * y + affine[4] + r[0];
            let py = affine[2] * x + affine[3] * y + affine[5] + r[1];
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
}
