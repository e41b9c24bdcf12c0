//! Full-resolution export of a composite: rendered band by band (CPU, or GPU tiles) and
//! streamed into an RGB TIFF that appears only when complete.

use super::{Composite, Scene, ViewRect};
use crate::io::tiff::BandBuffer;
use crate::io::{TiffSpec, write_tiff_streaming};
use crate::job::CancelToken;
use crate::raster::SampleDepth;
use crate::{Error, Result};
use std::path::Path;

/// Renders `size` output pixels of a view as RGBA bytes (the CPU twin or the GPU compositor).
pub type RenderFn<'a> = dyn FnMut(ViewRect, [usize; 2]) -> Result<Vec<u8>> + Send + 'a;

/// Writes the composite of `scene` at full resolution (the bottom layer's size) to `path` as
/// 8-bit RGB; `render` draws pieces at most `max_width` pixels wide, and `progress` receives
/// the fraction done. Returns the seconds spent rendering (the rest is encoding and writing).
pub fn export_composite(
    path: &Path,
    scene: Scene<'_>,
    max_width: usize,
    render: &mut RenderFn<'_>,
    progress: &(dyn Fn(f32) + Sync),
    cancel: &CancelToken,
) -> Result<f64> {
    let [width, height] = scene.bottom.size();
    let spec = TiffSpec {
        width,
        height,
        channels: 3,
        depth: SampleDepth::U8,
    };
    let max_width = max_width.max(1);
    let mut seconds = 0.0;
    write_tiff_streaming(path, spec, &mut |band, buffer| {
        cancel.check()?;
        let BandBuffer::U8(out) = buffer else {
            return Err(Error::Internal("an 8-bit band was expected".into()));
        };
        let started = std::time::Instant::now();
        for x0 in (0..width).step_by(max_width) {
            let w = max_width.min(width - x0);
            let view = ViewRect {
                origin: [x0 as f64, band.y as f64],
                step: 1.0,
            };
            let rgba = render(view, [w, band.rows])?;
            for row in 0..band.rows {
                let dst = &mut out[(row * width + x0) * 3..(row * width + x0 + w) * 3];
                let src = &rgba[row * w * 4..(row + 1) * w * 4];
                for (d, s) in dst.chunks_exact_mut(3).zip(src.chunks_exact(4)) {
                    d.copy_from_slice(&s[..3]);
                }
            }
        }
        seconds += started.elapsed().as_secs_f64();
        progress((band.y + band.rows) as f32 / height as f32);
        Ok(())
    })?;
    Ok(seconds)
}

/// The CPU renderer for [`export_composite`]: [`super::render`] at full resolution.
pub fn cpu_renderer<'a>(scene: Scene<'a>, composite: Composite) -> Box<RenderFn<'a>> {
    let levels = vec![0; scene.pyramids().len()];
    Box::new(move |view, size| Ok(super::render(scene, &composite, view, size, &levels)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::{Blend, Pyramid};
    use crate::raster::{AnyImage, GrayF32};

    #[test]
    fn the_export_equals_one_render_of_the_whole_image_in_any_piece_width() {
        let layer = |seed: f32| {
            Pyramid::of(&AnyImage::from_gray_f32(GrayF32::from_shape_fn(
                (90, 130),
                |(y, x)| 0.5 + 0.4 * ((x as f32 * 0.3 + seed).sin() * (y as f32 * 0.2).cos()),
            )))
        };
        let (bottom, top) = (layer(0.0), layer(1.0));
        let scene = Scene {
            bottom: &bottom,
            top: &top,
            warp: None,
            overlays: &[],
        };
        let composite = Composite {
            blend: Blend::FalseColor,
            ..Composite::default()
        };
        let whole = crate::compose::render(
            scene,
            &composite,
            ViewRect {
                origin: [0.0, 0.0],
                step: 1.0,
            },
            [130, 90],
            &[0, 0],
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("composite.tif");
        let mut render = cpu_renderer(scene, composite);
        export_composite(&path, scene, 47, &mut render, &|_| {}, &CancelToken::new()).unwrap();
        let saved = crate::io::load_image(&path).unwrap();
        let AnyImage::U8(raster) = saved else {
            panic!("8-bit expected")
        };
        assert_eq!(raster.channels(), 3);
        for y in 0..90 {
            let expected: Vec<u8> = whole[y * 130 * 4..(y + 1) * 130 * 4]
                .chunks_exact(4)
                .flat_map(|p| p[..3].to_vec())
                .collect();
            assert_eq!(raster.row(y), &expected[..], "row {y}");
        }
    }
}
