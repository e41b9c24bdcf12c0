//! Resampling the moving image onto the fixed grid: `warped(p) = moving(T(p))`, band by band,
//! every channel at the moving image's own depth.
//!
//! Memory is bounded: the transform is evaluated one row at a time through a [`RowMapper`]
//! (never a full-resolution field), and the `io` layer streams such bands into a TIFF.

use super::Transform;
use crate::Result;
use crate::job::CancelToken;
use crate::raster::{AnyImage, Band, Raster, Sample};
use rayon::prelude::*;

/// How samples between pixels are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interpolation {
    /// The nearest pixel (labels, masks).
    Nearest,
    /// Bilinear (images).
    #[default]
    Linear,
}

/// Warps rows `band` of the output into `out` (`band.rows * width * channels` samples).
/// Points mapped outside the moving image (by more than half a pixel) get 0.
pub fn warp_band<T: Sample>(
    src: &Raster<T>,
    mapper: &dyn super::RowMapper,
    band: Band,
    width: usize,
    interpolation: Interpolation,
    out: &mut [T],
) {
    match src.channels() {
        1 => warp_band_channels::<T, 1>(src, mapper, band, width, interpolation, out),
        2 => warp_band_channels::<T, 2>(src, mapper, band, width, interpolation, out),
        3 => warp_band_channels::<T, 3>(src, mapper, band, width, interpolation, out),
        _ => warp_band_channels::<T, 4>(src, mapper, band, width, interpolation, out),
    }
}

/// [`warp_band`] for a channel count known at compile time, so the per-pixel channel loop
/// unrolls. (Profiled: the generic loop and libm `floor` calls took most of the warp's time.)
fn warp_band_channels<T: Sample, const C: usize>(
    src: &Raster<T>,
    mapper: &dyn super::RowMapper,
    band: Band,
    width: usize,
    interpolation: Interpolation,
    out: &mut [T],
) {
    let (sw, sh) = (src.width(), src.height());
    let data = src.data.as_slice().expect("standard layout");
    let row_len = sw * C;
    let (max_x, max_y) = (sw as f64 - 0.5, sh as f64 - 0.5);
    // Top-left pixel of the 2x2 neighbourhood at most this, so its right/bottom neighbour exists.
    let (last_x0, last_y0) = (sw.saturating_sub(2), sh.saturating_sub(2));
    let (step_x, step_y) = (usize::from(sw > 1) * C, usize::from(sh > 1) * row_len);
    out.par_chunks_mut(width * C).enumerate().for_each_init(
        || (vec![0f64; width], vec![0f64; width]),
        |(xs, ys), (r, out_row)| {
            mapper.map_row(band.y + r, xs, ys);
            for ((px, &qx), &qy) in out_row.chunks_exact_mut(C).zip(xs.iter()).zip(ys.iter()) {
                if !(qx >= -0.5 && qy >= -0.5 && qx <= max_x && qy <= max_y) {
                    px.fill(T::default());
                    continue;
                }
                // Coordinates are >= 0 after the clamp, so truncation is floor.
                let (cx, cy) = (qx.max(0.0), qy.max(0.0));
                match interpolation {
                    Interpolation::Nearest => {
                        let ix = ((cx + 0.5) as usize).min(sw - 1);
                        let iy = ((cy + 0.5) as usize).min(sh - 1);
                        let at = iy * row_len + ix * C;
                        px.copy_from_slice(&data[at..at + C]);
                    }
                    Interpolation::Linear => {
                        let x0 = (cx as usize).min(last_x0);
                        let y0 = (cy as usize).min(last_y0);
                        let fx = ((cx - x0 as f64) as f32).min(1.0);
                        let fy = ((cy - y0 as f64) as f32).min(1.0);
                        let a = y0 * row_len + x0 * C;
                        let quad = &data[a..a + step_y + step_x + C];
                        for (ch, o) in px.iter_mut().enumerate() {
                            let p00 = quad[ch].to_unit();
                            let p01 = quad[step_x + ch].to_unit();
                            let p10 = quad[step_y + ch].to_unit();
                            let p11 = quad[step_y + step_x + ch].to_unit();
                            let top = p00 + fx * (p01 - p00);
                            let bottom = p10 + fx * (p11 - p10);
                            *o = T::from_unit(top + fy * (bottom - top));
                        }
                    }
                }
            }
        },
    );
}

/// Rows warped between cancellation checks in [`warp_image`].
const CANCEL_CHECK_ROWS: usize = 256;

/// Warps `moving` onto a `width x height` fixed grid in memory.
pub fn warp_image(
    moving: &AnyImage,
    transform: &dyn Transform,
    width: usize,
    height: usize,
    interpolation: Interpolation,
    cancel: &CancelToken,
) -> Result<AnyImage> {
    fn typed<T: Sample>(
        src: &Raster<T>,
        t: &dyn Transform,
        width: usize,
        height: usize,
        interpolation: Interpolation,
        cancel: &CancelToken,
    ) -> Result<Raster<T>> {
        let mut out = Raster::<T>::zeros(width, height, src.channels());
        let mapper = t.row_mapper(0, width);
        let row = width * src.channels();
        let data = out.data.as_slice_mut().expect("standard layout");
        for (i, chunk) in data.chunks_mut(CANCEL_CHECK_ROWS * row).enumerate() {
            cancel.check()?;
            let band = Band {
                y: i * CANCEL_CHECK_ROWS,
                rows: chunk.len() / row,
            };
            warp_band(src, mapper.as_ref(), band, width, interpolation, chunk);
        }
        Ok(out)
    }
    Ok(match moving {
        AnyImage::U8(r) => AnyImage::U8(typed(r, transform, width, height, interpolation, cancel)?),
        AnyImage::U16(r) => {
            AnyImage::U16(typed(r, transform, width, height, interpolation, cancel)?)
        }
        AnyImage::F32(r) => {
            AnyImage::F32(typed(r, transform, width, height, interpolation, cancel)?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::{Affine, Identity};

    #[test]
    fn identity_warp_reproduces_the_image() {
        let src: Vec<u16> = (0..20 * 10 * 3).map(|i| (i * 300) as u16).collect();
        let img = AnyImage::U16(Raster::from_interleaved(20, 10, 3, src).unwrap());
        let out = warp_image(
            &img,
            &Identity,
            20,
            10,
            Interpolation::Linear,
            &CancelToken::new(),
        )
        .unwrap();
        assert_eq!(out, img);
    }

    #[test]
    fn integer_shift_moves_pixels_and_fills_outside_with_zero() {
        let src: Vec<u8> = (0..16 * 8).map(|i| (i % 250 + 1) as u8).collect();
        let img = AnyImage::U8(Raster::from_interleaved(16, 8, 1, src).unwrap());
        let shift = Affine::from_matrix([1.0, 0.0, 0.0, 1.0], [2.0, 1.0], [0.0, 0.0]);
        let AnyImage::U8(out) = warp_image(
            &img,
            &shift,
            16,
            8,
            Interpolation::Linear,
            &CancelToken::new(),
        )
        .unwrap() else {
            panic!()
        };
        let AnyImage::U8(inp) = &img else { panic!() };
        assert_eq!(out.data[[3, 4, 0]], inp.data[[4, 6, 0]]);
        assert_eq!(out.data[[7, 4, 0]], 0);
        assert_eq!(out.data[[2, 15, 0]], 0);
    }
}
