use super::*;
use crate::compose::{Blend, ColourMap, Overlay, Scene, render};
use crate::raster::{AnyImage, GrayF32};
use crate::transform::Affine;

fn wave(x: usize, y: usize, seed: f32) -> f32 {
    let (x, y) = (x as f32, y as f32);
    0.5 + 0.25 * ((x * 0.05 + seed).sin() + (y * 0.031 - seed).cos())
}

/// A gray layer from float samples: a 16-bit display pyramid.
fn textured(width: usize, height: usize, seed: f32) -> Arc<Pyramid> {
    let image = GrayF32::from_shape_fn((height, width), |(y, x)| wave(x, y, seed));
    Arc::new(Pyramid::of(&AnyImage::from_gray_f32(image)))
}

/// An 8-bit layer with `channels` (1 or 3) channels, each its own wave.
fn textured8(width: usize, height: usize, channels: usize, seed: f32) -> Arc<Pyramid> {
    let samples = (0..width * height * channels)
        .map(|i| {
            let (p, k) = (i / channels, i % channels);
            <u8 as crate::raster::Sample>::from_unit(wave(p % width, p / width, seed + k as f32))
        })
        .collect();
    let raster = crate::raster::Raster::from_interleaved(width, height, channels, samples);
    Arc::new(Pyramid::of(&AnyImage::U8(raster.unwrap())))
}

/// The GPU compositor against its CPU twin, every blend mode, a warped top layer, two and
/// six overlays (every other one following the warp, the last a heatmap at 1/8 resolution),
/// tiled levels (4500 px wide: three tiles), at full resolution and zoomed out; RGB and
/// gray, 8- and 16-bit layers, shown as loaded and through windows, gammas and every
/// colour map.
#[test]
fn the_gpu_composite_matches_the_cpu_twin() {
    let context = match super::super::GpuContext::shared() {
        Ok(c) => c,
        Err(e) => {
            assert!(
                !super::super::adapter_required(),
                "CI=true but no GPU adapter: {e}"
            );
            eprintln!("skipping: {e}");
            return;
        }
    };
    let heatmap_layer = || {
        let mut p = Arc::unwrap_or_clone(textured8(563, 88, 1, 7.0));
        p.base = 3;
        let crate::compose::Samples::U8(bytes) = &mut p.levels[0].samples else {
            unreachable!("an 8-bit layer")
        };
        bytes[..300].fill(0);
        Arc::new(p)
    };
    let layers = [
        textured8(4500, 700, 3, 0.0),
        textured(4400, 650, 1.0),
        textured8(3000, 700, 3, 2.0),
        textured(4500, 500, 3.0),
        textured8(900, 300, 1, 4.0),
        textured(2500, 600, 5.0),
        textured8(700, 700, 3, 6.0),
        heatmap_layer(),
    ];
    let styled = |i: usize| Display {
        low: 0.1 + 0.02 * i as f32,
        high: 0.85 - 0.03 * i as f32,
        gamma: [0.6, 1.0, 1.7][i % 3],
        map: ColourMap::ALL[i % ColourMap::ALL.len()],
    };
    let affine = Affine::similarity(0.02, 1.01, [7.3, -4.1], [2200.0, 350.0]);
    let warp = Arc::new(WarpGrid::of(&affine, layers[0].size(), 8, 1024));
    let (device, queue) = (&context.device, &context.queue);
    let mut compositor = Compositor::new(device);
    compositor.set_scene(device, queue, &layers, Some(&warp));
    let settings: [OverlaySettings; MAX_OVERLAYS] = std::array::from_fn(|i| OverlaySettings {
        opacity: 0.2 + 0.1 * i as f32,
        warped: i % 2 == 1,
        // The last overlay is a heatmap known at 1/8 resolution, with no-data texels.
        heatmap: i == MAX_OVERLAYS - 1,
        display: styled(i + 2),
    });
    let overlays: Vec<Overlay> = layers[2..]
        .iter()
        .zip(settings)
        .map(|(pyramid, settings)| Overlay { pyramid, settings })
        .collect();
    let views = [
        (
            ViewRect {
                origin: [1990.3, 100.7],
                step: 0.73,
            },
            [300, 200],
        ),
        (
            ViewRect {
                origin: [-20.2, -10.1],
                step: 9.3,
            },
            [500, 80],
        ),
    ];
    let cases = Blend::ALL
        .into_iter()
        .map(|b| (b, true, true))
        .chain([(Blend::Alpha, false, true), (Blend::Alpha, true, false)]);
    for (case, (blend, show_top, show_bottom)) in cases.enumerate() {
        // Every other case shows the pair as loaded.
        let displays = match case % 2 {
            0 => [styled(0), styled(1)],
            _ => [Display::default(); 2],
        };
        let composite = Composite {
            blend,
            square: 37,
            opacity: 0.3,
            flicker_top: true,
            show_top,
            show_bottom,
            displays,
        };
        for overlay_count in [0, 2, MAX_OVERLAYS] {
            let scene = Scene {
                bottom: &layers[0],
                top: &layers[1],
                warp: Some(&warp),
                overlays: &overlays[..overlay_count],
            };
            compositor.set_scene(device, queue, &layers[..2 + overlay_count], Some(&warp));
            for (view, size) in views {
                let frame = Frame {
                    view,
                    composite,
                    overlays: settings,
                    target_origin: [0.0, 0.0],
                };
                let gpu = compositor
                    .render_offscreen(device, queue, frame, size)
                    .unwrap();
                let levels = compositor.levels(&view).unwrap();
                let cpu = render(scene, &composite, view, size, &levels);
                let differ = gpu
                    .iter()
                    .zip(&cpu)
                    .filter(|(g, c)| (**g as i32 - **c as i32).abs() > 1)
                    .count();
                // Pixels exactly on a square's or the image's edge may fall either way.
                assert!(
                    differ * 1000 <= gpu.len(),
                    "{blend:?} {view:?} {overlay_count} overlays: {differ} of {} bytes differ by more than 1",
                    gpu.len()
                );
            }
        }
    }
    context.check().unwrap();
}
