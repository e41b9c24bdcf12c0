//! Warping straight into a TIFF: bands of output rows are computed by the transform's row
//! mapper and streamed to the writer, so no full-resolution output is ever held.

use super::tiff::BandBuffer;
use super::{TiffSpec, write_tiff_streaming};
use crate::job::CancelToken;
use crate::raster::AnyImage;
use crate::transform::Transform;
use crate::transform::warp::{Interpolation, warp_band};
use crate::{Error, Result};
use std::path::Path;

/// Warps `moving` onto a `width x height` grid straight into a TIFF at `path`, one band at a
/// time: memory is the moving image plus one band, whatever the output size. Returns the seconds
/// spent computing (the rest of the wall time is encoding and writing).
pub fn warp_to_tiff(
    path: &Path,
    moving: &AnyImage,
    transform: &dyn Transform,
    width: usize,
    height: usize,
    interpolation: Interpolation,
    cancel: &CancelToken,
) -> Result<f64> {
    let spec = TiffSpec {
        width,
        height,
        channels: moving.channels(),
        depth: moving.depth(),
    };
    let mapper = transform.row_mapper(0, width);
    let mapper = mapper.as_ref();
    let mut compute_seconds = 0.0;
    write_tiff_streaming(path, spec, &mut |band, buffer| {
        cancel.check()?;
        let started = std::time::Instant::now();
        match (moving, buffer) {
            (AnyImage::U8(r), BandBuffer::U8(b)) => {
                warp_band(r, mapper, band, width, interpolation, b)
            }
            (AnyImage::U16(r), BandBuffer::U16(b)) => {
                warp_band(r, mapper, band, width, interpolation, b)
            }
            (AnyImage::F32(r), BandBuffer::F32(b)) => {
                warp_band(r, mapper, band, width, interpolation, b)
            }
            _ => {
                return Err(Error::Internal(
                    "band buffer depth differs from the image".into(),
                ));
            }
        }
        compute_seconds += started.elapsed().as_secs_f64();
        Ok(())
    })?;
    Ok(compute_seconds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raster::Raster;
    use crate::transform::Affine;
    use crate::transform::warp::warp_image;

    #[test]
    fn streamed_tiff_warp_equals_in_memory_warp() {
        let dir = tempfile::tempdir().unwrap();
        let src: Vec<f32> = (0..64 * 50).map(|i| (i as f32 * 0.1).sin()).collect();
        let img = AnyImage::F32(Raster::from_interleaved(64, 50, 1, src).unwrap());
        let t = Affine::similarity(0.05, 1.01, [0.7, -1.3], [32.0, 25.0]);
        let mem = warp_image(&img, &t, 70, 45, Interpolation::Linear, &CancelToken::new()).unwrap();
        let p = dir.path().join("w.tif");
        warp_to_tiff(
            &p,
            &img,
            &t,
            70,
            45,
            Interpolation::Linear,
            &CancelToken::new(),
        )
        .unwrap();
        assert_eq!(crate::io::load_image(&p).unwrap(), mem);
    }
}
