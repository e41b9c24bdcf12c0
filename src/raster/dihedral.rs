//! The eight ways a pixel grid can be turned through a multiple of 90° or mirrored without
//! resampling: each pixel lands whole on another. A section mounted upside down or flipped on
//! its slide is such a turn of the image the registration expects; undone pixel for pixel, the
//! registration sees exactly the image it would have seen the right way round.

use super::{AnyImage, Raster, Sample};
use ndarray::{Array3, ArrayView3, Axis};
use rayon::prelude::*;

/// A turn through a multiple of 90°, with or without a mirror, as the integer matrix `G` of
/// the map from a canonical image's pixel coordinates to the stored (turned) image's:
/// `q_stored = G q + t` (see [`Dihedral::offset`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dihedral {
    /// Row-major `[g00, g01, g10, g11]`, entries −1, 0 or 1, one non-zero per row and column.
    matrix: [i8; 4],
}

impl Dihedral {
    /// No turn.
    pub const IDENTITY: Self = Self {
        matrix: [1, 0, 0, 1],
    };

    /// All eight: the four turns (none, 90° clockwise as seen on screen with y down, 180°, 90°
    /// anticlockwise), then the four mirrors.
    pub const ALL: [Self; 8] = [
        Self::IDENTITY,
        Self {
            matrix: [0, -1, 1, 0],
        },
        Self {
            matrix: [-1, 0, 0, -1],
        },
        Self {
            matrix: [0, 1, -1, 0],
        },
        Self {
            matrix: [-1, 0, 0, 1],
        },
        Self {
            matrix: [1, 0, 0, -1],
        },
        Self {
            matrix: [0, 1, 1, 0],
        },
        Self {
            matrix: [0, -1, -1, 0],
        },
    ];

    /// The turn nearest a 2 × 2 linear map (row-major): the one whose matrix has the largest
    /// inner product with it. For `s R(θ)` that is the turn within 45° of θ; a mirrored map
    /// picks a mirror, an unmirrored one a turn.
    pub fn nearest(linear: [f64; 4]) -> Self {
        Self::ALL
            .into_iter()
            .map(|d| {
                let score: f64 = d
                    .matrix
                    .iter()
                    .zip(linear)
                    .map(|(&g, m)| g as f64 * m)
                    .sum();
                (d, score)
            })
            .fold((Self::IDENTITY, f64::NEG_INFINITY), |best, next| {
                if next.1 > best.1 + 1e-12 { next } else { best }
            })
            .0
    }

    /// Whether this is no turn at all.
    pub fn is_identity(self) -> bool {
        self == Self::IDENTITY
    }

    /// Whether it mirrors (its determinant is −1).
    pub fn mirrors(self) -> bool {
        let [a, b, c, d] = self.matrix;
        a * d - b * c < 0
    }

    /// Whether the stored image's width is the canonical image's height.
    pub fn swaps_axes(self) -> bool {
        self.matrix[0] == 0
    }

    /// `G` as floating-point numbers, row-major.
    pub fn matrix(self) -> [f64; 4] {
        self.matrix.map(f64::from)
    }

    /// The translation `t` of `q_stored = G q + t` for a canonical image of `width × height`:
    /// the canonical grid's pixel centres land exactly on the stored grid's.
    pub fn offset(self, width: usize, height: usize) -> [f64; 2] {
        let extent = [width as f64 - 1.0, height as f64 - 1.0];
        let [a, b, c, d] = self.matrix;
        let row = |g0: i8, g1: i8| {
            (if g0 < 0 { extent[0] } else { 0.0 }) + (if g1 < 0 { extent[1] } else { 0.0 })
        };
        [row(a, b), row(c, d)]
    }

    /// The canonical image's size, `(width, height)`, for a stored image of `width × height`.
    pub fn canonical_size(self, width: usize, height: usize) -> (usize, usize) {
        if self.swaps_axes() {
            (height, width)
        } else {
            (width, height)
        }
    }

    /// In words, for logs and reports: how the stored image is turned from the canonical one.
    pub fn describe(self) -> &'static str {
        match self.matrix {
            [1, 0, 0, 1] => "not turned",
            [0, -1, 1, 0] => "turned 90° clockwise",
            [-1, 0, 0, -1] => "turned 180°",
            [0, 1, -1, 0] => "turned 90° anticlockwise",
            [-1, 0, 0, 1] => "mirrored left to right",
            [1, 0, 0, -1] => "mirrored top to bottom",
            [0, 1, 1, 0] => "mirrored about its diagonal (transposed)",
            _ => "mirrored about its anti-diagonal",
        }
    }

    /// The canonical image of a stored one: `canonical(q) = stored(G q + t)`, every pixel
    /// copied whole.
    pub fn canonical_image(self, stored: &AnyImage) -> AnyImage {
        match stored {
            AnyImage::U8(r) => AnyImage::U8(self.canonical_raster(r)),
            AnyImage::U16(r) => AnyImage::U16(self.canonical_raster(r)),
            AnyImage::F32(r) => AnyImage::F32(self.canonical_raster(r)),
        }
    }

    fn canonical_raster<T: Sample>(self, stored: &Raster<T>) -> Raster<T> {
        Raster {
            data: self.canonical_array(stored.data.view()),
        }
    }

    /// [`Dihedral::canonical_image`] of a mask.
    pub fn canonical_mask(self, stored: &ndarray::Array2<bool>) -> ndarray::Array2<bool> {
        self.canonical_array(stored.view().insert_axis(Axis(2)))
            .index_axis_move(Axis(2), 0)
    }

    /// The canonical `[row, column, channel]` array of a stored one, copied in parallel bands
    /// of rows and, where the axes swap, in square blocks so that both sides are read and
    /// written a cache line at a time.
    fn canonical_array<T: Copy + Default + Send + Sync>(self, stored: ArrayView3<T>) -> Array3<T> {
        const BLOCK: usize = 64;
        let (sh, sw, channels) = stored.dim();
        let (w, h) = self.canonical_size(sw, sh);
        let [ox, oy] = self.offset(w, h).map(|v| v as isize);
        let [a, b, c, d] = self.matrix.map(isize::from);
        let mut out = Array3::from_elem((h, w, channels), T::default());
        out.axis_chunks_iter_mut(Axis(0), BLOCK)
            .into_par_iter()
            .enumerate()
            .for_each(|(band, mut rows)| {
                let y0 = band * BLOCK;
                for x0 in (0..w).step_by(BLOCK) {
                    for (dy, mut row) in rows.outer_iter_mut().enumerate() {
                        let y = (y0 + dy) as isize;
                        for x in x0..(x0 + BLOCK).min(w) {
                            let xi = x as isize;
                            let sx = (a * xi + b * y + ox) as usize;
                            let sy = (c * xi + d * y + oy) as usize;
                            for ch in 0..channels {
                                row[[x, ch]] = stored[[sy, sx, ch]];
                            }
                        }
                    }
                }
            });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(w: usize, h: usize, channels: usize) -> AnyImage {
        let samples = (0..w * h * channels).map(|i| i as u16).collect();
        AnyImage::U16(Raster::from_interleaved(w, h, channels, samples).unwrap())
    }

    #[test]
    fn every_turn_is_undone_pixel_for_pixel() {
        // A canonical image, turned the way a user's scanner would (numpy's rot90 and
        // transposes, written out here pixel by pixel), comes back exactly.
        let canonical = numbered(5, 3, 2);
        let AnyImage::U16(c) = &canonical else {
            unreachable!()
        };
        for turn in Dihedral::ALL {
            // stored(G q + t) = canonical(q)
            let (sw, sh) = turn.canonical_size(5, 3);
            let [ox, oy] = turn.offset(5, 3);
            let g = turn.matrix();
            let mut stored = Raster::<u16>::zeros(sw, sh, 2);
            for y in 0..3 {
                for x in 0..5 {
                    let (xf, yf) = (x as f64, y as f64);
                    let sx = (g[0] * xf + g[1] * yf + ox) as usize;
                    let sy = (g[2] * xf + g[3] * yf + oy) as usize;
                    for ch in 0..2 {
                        stored.data[[sy, sx, ch]] = c.data[[y, x, ch]];
                    }
                }
            }
            let back = turn.canonical_image(&AnyImage::U16(stored));
            assert_eq!(back, canonical, "{}", turn.describe());
        }
    }

    #[test]
    fn a_quarter_turn_is_numpys_rot90() {
        // np.rot90(c) of [[0, 1, 2], [3, 4, 5]] is [[2, 5], [1, 4], [0, 3]].
        let canonical = numbered(3, 2, 1);
        let stored =
            AnyImage::U16(Raster::from_interleaved(2, 3, 1, vec![2u16, 5, 1, 4, 0, 3]).unwrap());
        let turn = Dihedral::nearest([0.0, 1.0, -1.0, 0.0]);
        assert_eq!(turn.canonical_image(&stored), canonical);
    }

    #[test]
    fn the_nearest_turn_is_within_45_degrees_and_keeps_the_mirror() {
        for (deg, k) in [(0.0, 0), (44.0, 0), (46.0, 1), (-100.0, 3), (181.0, 2)] {
            let (s, c) = f64::to_radians(deg).sin_cos();
            let rotation = [1.3 * c, -1.3 * s, 1.3 * s, 1.3 * c];
            assert_eq!(Dihedral::nearest(rotation), Dihedral::ALL[k], "{deg}°");
            let mirrored = [-rotation[0], rotation[1], -rotation[2], rotation[3]];
            let nearest = Dihedral::nearest(mirrored);
            assert!(nearest.mirrors(), "{deg}° mirrored");
        }
        let masked = Dihedral::ALL[1].canonical_mask(&ndarray::Array2::from_elem((3, 2), true));
        assert_eq!(masked.dim(), (2, 3));
    }
}
