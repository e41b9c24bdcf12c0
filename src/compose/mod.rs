//! Composition of layers for the viewer and for export: layer pyramids cut into tiles, the
//! registration's transform as a coarse warp grid, and the blend modes, evaluated per output
//! pixel.
//!
//! The CPU function here ([`render`]) is the twin of the GPU compositor (`shaders/compose.wgsl`,
//! `gpu::Compositor`): both sample the same pyramid level with the same bilinear rule, warp the
//! top layer through the same grid and blend with the same formulas, and tests hold them
//! together. Nothing here knows about a screen: a view is an origin and a step in fixed-image
//! pixels.

mod display;
mod export;
mod pyramid;
mod warp_grid;

pub use display::{BINS, ColourMap, Display, HAEMATOXYLIN, Histogram, RGB_CODE};
pub use export::{RenderFn, cpu_renderer, export_composite};
pub use pyramid::{Level, Pyramid, Samples, TILE};
pub use warp_grid::WarpGrid;

use rayon::prelude::*;
use std::sync::Arc;

/// How the top layer is combined with the bottom one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Blend {
    /// The top layer over the bottom one with an opacity.
    Alpha,
    /// `|top - bottom|`, bright where they disagree.
    Difference,
    /// Alternating squares of each layer.
    Checkerboard,
    /// Bottom in red, top in cyan: aligned structures turn gray.
    FalseColor,
    /// The layers alternate in time.
    Flicker,
}

impl Blend {
    /// Every mode, in menu order.
    pub const ALL: [Blend; 5] = [
        Blend::Alpha,
        Blend::Difference,
        Blend::Checkerboard,
        Blend::FalseColor,
        Blend::Flicker,
    ];

    /// The name shown in the interface.
    pub fn label(self) -> &'static str {
        match self {
            Blend::Alpha => "Alpha",
            Blend::Difference => "Difference",
            Blend::Checkerboard => "Checkerboard",
            Blend::FalseColor => "Red/cyan",
            Blend::Flicker => "Flicker",
        }
    }

    /// The shader's code for this mode.
    pub fn code(self) -> u32 {
        self as u32
    }
}

/// Composition settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Composite {
    /// The mode.
    pub blend: Blend,
    /// Opacity of the top layer (alpha mode), `0..=1`.
    pub opacity: f32,
    /// Checkerboard square side in full-resolution pixels.
    pub square: usize,
    /// Which layer flicker shows now (the top one when true).
    pub flicker_top: bool,
    /// Whether the top layer is shown at all (the layers panel's eye).
    pub show_top: bool,
    /// Whether the bottom layer is shown. Without it the top layer stands alone inside the
    /// bottom's frame (the side-by-side view's moving pane), transparent where it has no data.
    pub show_bottom: bool,
    /// How the bottom and the top layer show their samples: the loaded layers' own, so not
    /// kept with the settings.
    #[serde(skip)]
    pub displays: [Display; 2],
}

impl Default for Composite {
    fn default() -> Self {
        Self {
            blend: Blend::Checkerboard,
            opacity: 0.5,
            square: 64,
            flicker_top: false,
            show_top: true,
            show_bottom: true,
            displays: [Display::default(); 2],
        }
    }
}

/// Most layers drawn over the blended pair (the GPU binds one texture per layer: with the
/// pair and the warp grid, 9 of the 16 sampled textures every device allows).
pub const MAX_OVERLAYS: usize = 6;

/// How an overlay is drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OverlaySettings {
    /// `0..=1`; 0 hides it.
    pub opacity: f32,
    /// Follows the moving image through the warp, rather than the fixed frame.
    pub warped: bool,
    /// A heatmap: byte 0 is no data (not drawn), bytes 1..=255 run along [`heat_colour`]'s
    /// colour map, instead of a gray layer.
    pub heatmap: bool,
    /// How its samples show (not used by a heatmap).
    pub display: Display,
}

/// The heatmap's colours, dark blue through green to yellow (the stops of
/// `analysis::render`'s sequential map), for `t` in `0..=1`; `shaders/compose.wgsl`'s
/// `heat_colour` is its twin.
pub fn heat_colour(t: f32) -> [f32; 3] {
    const STOPS: [[f32; 3]; 5] = [
        [68.0, 1.0, 84.0],
        [59.0, 82.0, 139.0],
        [33.0, 145.0, 140.0],
        [94.0, 201.0, 98.0],
        [253.0, 231.0, 37.0],
    ];
    let s = t.clamp(0.0, 1.0) * 4.0;
    let i = (s as usize).min(3);
    let f = s - i as f32;
    std::array::from_fn(|k| (STOPS[i][k] + f * (STOPS[i + 1][k] - STOPS[i][k])) / 255.0)
}

/// Where a heatmap's sampled value (`0..=1`, byte / 255) sits on its colour map, or `None` where
/// there is no data (byte 0, and the half-texel fringe next to it).
#[inline]
pub fn heat_position(v: f32) -> Option<f32> {
    let byte = v * 255.0;
    (byte >= 0.5).then(|| ((byte - 1.0) / 254.0).clamp(0.0, 1.0))
}

/// A layer drawn over the blended pair with an opacity, in order: e.g. a colour separation of
/// the design (in the fixed frame) or another channel of the moving image (warped like it).
#[derive(Debug, Clone, Copy)]
pub struct Overlay<'a> {
    /// The layer.
    pub pyramid: &'a Pyramid,
    /// How it is drawn.
    pub settings: OverlaySettings,
}

/// The layers of a composition held by shared pointers: what the viewer keeps between
/// frames, and what the GPU compositor uploads without copying. [`SharedScene::scene`]
/// borrows it as a [`Scene`] for the CPU twin.
#[derive(Debug, Clone)]
pub struct SharedScene {
    /// The reference (defines the frame).
    pub bottom: Arc<Pyramid>,
    /// The layer over it.
    pub top: Arc<Pyramid>,
    /// How the top layer is warped (`None`: as loaded).
    pub warp: Option<Arc<WarpGrid>>,
    /// Drawn over the blended pair, in order (at most [`MAX_OVERLAYS`]).
    pub overlays: Vec<(Arc<Pyramid>, OverlaySettings)>,
}

impl SharedScene {
    /// Every layer's pyramid: bottom, top, then the overlays (as [`Scene::pyramids`]).
    pub fn pyramids(&self) -> Vec<Arc<Pyramid>> {
        [self.bottom.clone(), self.top.clone()]
            .into_iter()
            .chain(self.overlays.iter().map(|(p, _)| p.clone()))
            .collect()
    }

    /// The overlays' settings, unused slots hidden.
    pub fn overlay_settings(&self) -> [OverlaySettings; MAX_OVERLAYS] {
        std::array::from_fn(|i| self.overlays.get(i).map(|(_, s)| *s).unwrap_or_default())
    }

    /// The overlays borrowed for [`SharedScene::scene`].
    pub fn borrowed_overlays(&self) -> Vec<Overlay<'_>> {
        self.overlays
            .iter()
            .map(|(pyramid, settings)| Overlay {
                pyramid,
                settings: *settings,
            })
            .collect()
    }

    /// Borrows the layers as a [`Scene`], with `overlays` from
    /// [`SharedScene::borrowed_overlays`] (possibly with other settings).
    pub fn scene<'a>(&'a self, overlays: &'a [Overlay<'a>]) -> Scene<'a> {
        Scene {
            bottom: &self.bottom,
            top: &self.top,
            warp: self.warp.as_deref(),
            overlays,
        }
    }
}

/// Which part of the fixed image an output covers: output pixel `(i, j)` has its centre at
/// fixed-image coordinates `origin + step * (i, j)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewRect {
    /// Fixed-image coordinates of output pixel `(0, 0)`'s centre.
    pub origin: [f64; 2],
    /// Fixed-image pixels per output pixel.
    pub step: f64,
}

impl ViewRect {
    /// The pyramid level whose pixels are closest to (and not smaller than) one output pixel.
    pub fn level(&self, levels: usize) -> usize {
        let l = self.step.max(1.0).log2().floor() as usize;
        l.min(levels.saturating_sub(1))
    }
}

/// The value (`0..=1`, per channel; a gray level's repeated in all three) of `level` at
/// full-resolution coordinates `(x, y)`, bilinear between the level's pixel centres, or `None`
/// outside the image.
#[inline]
pub fn sample(level: &Level, scale: f64, x: f64, y: f64) -> Option<[f32; 3]> {
    LevelRow::at(level, scale, y)?.sample(x)
}

/// The two level rows [`LevelRow`] interpolates between, in the level's sample type.
#[derive(Debug, Clone, Copy)]
enum Rows<'a> {
    U8(&'a [u8], &'a [u8]),
    U16(&'a [u16], &'a [u16]),
}

/// The vertical half of [`sample`] for one full-resolution row `y`: the two level rows around
/// it and the weight between them. A layer drawn unwarped keeps one per output row and pays
/// only the horizontal half per pixel, with the same result as [`sample`].
#[derive(Debug, Clone, Copy)]
pub struct LevelRow<'a> {
    rows: Rows<'a>,
    width: usize,
    channels: usize,
    fy: f32,
    /// `1 / scale`: exact, as level scales are powers of two.
    inverse_scale: f64,
}

/// `v / 255` for every byte `v`, bit for bit: a lookup instead of a division per texel, built
/// at compile time so the hot path has no lazy initialisation to check.
static UNIT_OF_BYTE: [f32; 256] = {
    let mut table = [0f32; 256];
    let mut v = 0;
    while v < 256 {
        table[v] = v as f32 / 255.0;
        v += 1;
    }
    table
};

/// `1 / 65535`: a 16-bit sample's value is the sample times this (as in the shader).
const UNIT_OF_WORD: f32 = 1.0 / 65535.0;

impl<'a> LevelRow<'a> {
    /// The row of `level` (whose pixels are `scale` full-resolution pixels, a power of two) at
    /// `y`, or `None` outside the image.
    #[inline]
    pub fn at(level: &'a Level, scale: f64, y: f64) -> Option<Self> {
        let inverse_scale = 1.0 / scale;
        let ly = (y + 0.5) * inverse_scale - 0.5;
        let h = level.height as f64;
        if !(-0.5..h - 0.5).contains(&ly) || level.width == 0 {
            return None;
        }
        let ly = ly.clamp(0.0, h - 1.0);
        // Non-negative after the clamp, so truncation is the floor (and avoids a libm call).
        let y0 = ly as usize;
        let y1 = (y0 + 1).min(level.height - 1);
        let n = level.width * level.channels;
        let rows = match &level.samples {
            Samples::U8(s) => Rows::U8(&s[y0 * n..][..n], &s[y1 * n..][..n]),
            Samples::U16(s) => Rows::U16(&s[y0 * n..][..n], &s[y1 * n..][..n]),
        };
        Some(Self {
            rows,
            width: level.width,
            channels: level.channels,
            fy: (ly - y0 as f64) as f32,
            inverse_scale,
        })
    }

    /// The value at full-resolution column `x` of this row, or `None` outside the image.
    #[inline(always)]
    pub fn sample(&self, x: f64) -> Option<[f32; 3]> {
        let lx = (x + 0.5) * self.inverse_scale - 0.5;
        let w = self.width as f64;
        if !(-0.5..w - 0.5).contains(&lx) {
            return None;
        }
        let lx = lx.clamp(0.0, w - 1.0);
        let x0 = lx as usize;
        let x1 = (x0 + 1).min(self.width - 1);
        let fx = (lx - x0 as f64) as f32;
        Some(match self.rows {
            Rows::U8(upper, lower) => {
                self.bilinear(upper, lower, [x0, x1], fx, |v| UNIT_OF_BYTE[v as usize])
            }
            Rows::U16(upper, lower) => {
                self.bilinear(upper, lower, [x0, x1], fx, |v| v as f32 * UNIT_OF_WORD)
            }
        })
    }

    #[inline(always)]
    fn bilinear<T: Copy>(
        &self,
        upper: &[T],
        lower: &[T],
        [x0, x1]: [usize; 2],
        fx: f32,
        unit: impl Fn(T) -> f32 + Copy,
    ) -> [f32; 3] {
        /// One channel between samples `i0` and `i1` of both rows.
        #[inline(always)]
        fn lerp<T: Copy>(
            [upper, lower]: [&[T]; 2],
            [i0, i1]: [usize; 2],
            [fx, fy]: [f32; 2],
            unit: impl Fn(T) -> f32,
        ) -> f32 {
            let (a, b) = (unit(upper[i0]), unit(upper[i1]));
            let (c, d) = (unit(lower[i0]), unit(lower[i1]));
            let top = a + fx * (b - a);
            let bottom = c + fx * (d - c);
            top + fy * (bottom - top)
        }
        let (rows, f) = ([upper, lower], [fx, self.fy]);
        if self.channels == 3 {
            let (i0, i1) = (3 * x0, 3 * x1);
            std::array::from_fn(|k| lerp(rows, [i0 + k, i1 + k], f, unit))
        } else {
            [lerp(rows, [x0, x1], f, unit); 3]
        }
    }
}

/// Luminance of a displayed colour (Rec. 601, as the registration's).
#[inline]
fn luminance(c: [f32; 3]) -> f32 {
    0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
}

/// The RGBA colour of one output pixel: `bottom` and `top` colours (`None` outside their
/// image) at fixed-image position `p`. Outside the bottom layer the pixel is transparent.
#[inline]
pub fn blend_pixel(
    bottom: Option<[f32; 3]>,
    top: Option<[f32; 3]>,
    p: [f64; 2],
    c: &Composite,
) -> [f32; 4] {
    let Some(b) = bottom else {
        return [0.0; 4];
    };
    let opaque = |v: [f32; 3]| [v[0], v[1], v[2], 1.0];
    let top = top.filter(|_| c.show_top);
    if !c.show_bottom {
        return top.map_or([0.0; 4], opaque);
    }
    #[inline(always)]
    fn each(b: [f32; 3], t: [f32; 3], f: impl Fn(f32, f32) -> f32) -> [f32; 4] {
        [f(b[0], t[0]), f(b[1], t[1]), f(b[2], t[2]), 1.0]
    }
    match (c.blend, top) {
        (_, None) => opaque(b),
        (Blend::Alpha, Some(t)) => each(b, t, |b, t| b + c.opacity * (t - b)),
        (Blend::Difference, Some(t)) => each(b, t, |b, t| (t - b).abs()),
        (Blend::Checkerboard, Some(t)) => {
            let square = c.square.max(1) as f64;
            let cell = (p[0] / square).floor() as i64 + (p[1] / square).floor() as i64;
            opaque(if cell & 1 == 0 { b } else { t })
        }
        (Blend::FalseColor, Some(t)) => {
            let (b, t) = (luminance(b), luminance(t));
            [b, t, t, 1.0]
        }
        (Blend::Flicker, Some(t)) => opaque(if c.flicker_top { t } else { b }),
    }
}

/// A layer's [`Display`] with whether its samples are RGB: how the CPU twin colours a sample.
#[derive(Debug, Clone, Copy)]
struct Style {
    display: Display,
    rgb: bool,
    identity: bool,
}

impl Style {
    fn of(display: Display, pyramid: &Pyramid) -> Self {
        Self {
            display,
            rgb: pyramid.is_rgb(),
            identity: display.is_identity(),
        }
    }

    /// The colour of a sampled value (already gray-repeated or RGB, so the identity is free).
    #[inline]
    fn colour(&self, raw: [f32; 3]) -> [f32; 3] {
        if self.identity {
            raw
        } else {
            self.display.colour(raw, self.rgb)
        }
    }
}

/// The layers and the transform of one composition.
#[derive(Debug, Clone, Copy)]
pub struct Scene<'a> {
    /// The reference: defines the frame.
    pub bottom: &'a Pyramid,
    /// The layer blended over it.
    pub top: &'a Pyramid,
    /// Maps fixed-image points into the top layer (`None`: identity).
    pub warp: Option<&'a WarpGrid>,
    /// Drawn over the blended pair, in order (at most [`MAX_OVERLAYS`]).
    pub overlays: &'a [Overlay<'a>],
}

impl Scene<'_> {
    /// Every layer's pyramid: bottom, top, then the overlays.
    pub fn pyramids(&self) -> Vec<&Pyramid> {
        [self.bottom, self.top]
            .into_iter()
            .chain(self.overlays.iter().map(|o| o.pyramid))
            .collect()
    }

    /// The level of every layer (as [`Scene::pyramids`]) nearest the view's zoom.
    pub fn levels(&self, view: &ViewRect) -> Vec<usize> {
        self.pyramids().iter().map(|p| p.level_for(view)).collect()
    }
}

/// Renders `size = [width, height]` output pixels of `scene` (RGBA, 8 bits, row-major) on the
/// CPU, sampling pyramid `levels` (one per layer, as [`Scene::pyramids`]).
pub fn render(
    scene: Scene<'_>,
    composite: &Composite,
    view: ViewRect,
    size: [usize; 2],
    levels: &[usize],
) -> Vec<u8> {
    let [width, height] = size;
    let mut rgba = vec![0u8; width * height * 4];
    let layers: Vec<(&Level, f64)> = scene
        .pyramids()
        .iter()
        .zip(levels)
        .map(|(p, &l)| (&p.levels[l], p.scale(l)))
        .collect();
    let ((bl, bs), (tl, ts)) = (layers[0], layers[1]);
    let bottom_style = Style::of(composite.displays[0], scene.bottom);
    let top_style = Style::of(composite.displays[1], scene.top);
    let overlay_styles: Vec<Style> = scene
        .overlays
        .iter()
        .map(|o| Style::of(o.settings.display, o.pyramid))
        .collect();
    rgba.par_chunks_mut(width * 4)
        .enumerate()
        .for_each(|(j, row)| {
            let y = view.origin[1] + view.step * j as f64;
            // Layers drawn in the fixed frame keep their level rows for the whole output row.
            let bottom_row = LevelRow::at(bl, bs, y);
            let overlay_rows: Vec<Option<LevelRow>> = scene
                .overlays
                .iter()
                .zip(&layers[2..])
                .map(|(o, (level, scale))| {
                    (!o.settings.warped)
                        .then(|| LevelRow::at(level, *scale, y))
                        .flatten()
                })
                .collect();
            for i in 0..width {
                let p = [view.origin[0] + view.step * i as f64, y];
                let q = scene.warp.map_or(p, |w| w.map(p));
                let mut colour = blend_pixel(
                    bottom_row
                        .and_then(|r| r.sample(p[0]))
                        .map(|raw| bottom_style.colour(raw)),
                    sample(tl, ts, q[0], q[1]).map(|raw| top_style.colour(raw)),
                    p,
                    composite,
                );
                if colour[3] > 0.0 {
                    let overlays = scene
                        .overlays
                        .iter()
                        .zip(&layers[2..])
                        .zip(&overlay_rows)
                        .zip(&overlay_styles);
                    for (((overlay, (level, scale)), fixed_row), style) in overlays {
                        let value = if overlay.settings.warped {
                            sample(level, *scale, q[0], q[1])
                        } else {
                            fixed_row.and_then(|r| r.sample(p[0]))
                        };
                        let target = match value {
                            Some(v) if overlay.settings.heatmap => {
                                heat_position(v[0]).map(heat_colour)
                            }
                            Some(v) => Some(style.colour(v)),
                            None => None,
                        };
                        if let Some(target) = target {
                            for (c, t) in colour[..3].iter_mut().zip(target) {
                                *c += overlay.settings.opacity * (t - *c);
                            }
                        }
                    }
                }
                for (k, v) in colour.iter().enumerate() {
                    // Non-negative, so adding a half and truncating rounds.
                    row[i * 4 + k] = (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
                }
            }
        });
    rgba
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raster::{AnyImage, GrayF32};

    fn constant(value: f32, size: usize) -> Pyramid {
        Pyramid::of(&AnyImage::from_gray_f32(GrayF32::from_elem(
            (size, size),
            value,
        )))
    }

    #[test]
    fn blend_modes_combine_the_layers_as_named() {
        let (b, t) = (constant(0.2, 4), constant(0.8, 4));
        let scene = Scene {
            bottom: &b,
            top: &t,
            warp: None,
            overlays: &[],
        };
        let view = ViewRect {
            origin: [0.0, 0.0],
            step: 1.0,
        };
        let mut c = Composite {
            square: 2,
            ..Composite::default()
        };
        let pixel = |c: &Composite, i: usize| {
            render(scene, c, view, [4, 4], &[0, 0])[i * 4..i * 4 + 4].to_vec()
        };
        c.blend = Blend::Difference;
        assert_eq!(pixel(&c, 0), [153, 153, 153, 255]);
        c.blend = Blend::Checkerboard;
        assert_eq!(pixel(&c, 0), [51, 51, 51, 255]);
        assert_eq!(pixel(&c, 2), [204, 204, 204, 255]);
        c.blend = Blend::FalseColor;
        assert_eq!(pixel(&c, 0), [51, 204, 204, 255]);
        c.blend = Blend::Alpha;
        assert_eq!(pixel(&c, 0), [128, 128, 128, 255]);
    }

    /// One row of six output pixels from x = -1: a 0.2 bottom layer 4 px wide under a 0.8
    /// top layer 2 px wide, so the row crosses both layers' edges.
    fn row_across_the_layer_edges(composite: &Composite) -> Vec<u8> {
        let (b, t) = (constant(0.2, 4), constant(0.8, 2));
        let scene = Scene {
            bottom: &b,
            top: &t,
            warp: None,
            overlays: &[],
        };
        let view = ViewRect {
            origin: [-1.0, 0.0],
            step: 1.0,
        };
        render(scene, composite, view, [6, 1], &[0, 0])
    }

    #[test]
    fn outside_the_bottom_layer_is_transparent_and_outside_the_top_shows_the_bottom() {
        let row = row_across_the_layer_edges(&Composite {
            blend: Blend::Difference,
            ..Composite::default()
        });
        assert_eq!(&row[0..4], &[0, 0, 0, 0]);
        assert_eq!(&row[4..8], &[153, 153, 153, 255]);
        assert_eq!(&row[12..16], &[51, 51, 51, 255]);
    }

    #[test]
    fn a_hidden_bottom_shows_the_top_alone_inside_the_frame_and_nothing_elsewhere() {
        let c = Composite {
            blend: Blend::Difference,
            show_bottom: false,
            ..Composite::default()
        };
        let row = row_across_the_layer_edges(&c);
        // Outside the frame, the top alone (whatever the blend), outside the top.
        assert_eq!(&row[0..4], &[0, 0, 0, 0]);
        assert_eq!(&row[4..8], &[204, 204, 204, 255]);
        assert_eq!(&row[12..16], &[0, 0, 0, 0]);
        let hidden = Composite {
            show_top: false,
            ..c
        };
        assert!(row_across_the_layer_edges(&hidden).iter().all(|&v| v == 0));
    }

    #[test]
    fn overlays_mix_in_order_with_their_opacity_and_a_hidden_top_shows_the_bottom() {
        let (b, t, o1, o2) = (
            constant(0.2, 4),
            constant(0.6, 4),
            constant(1.0, 4),
            constant(0.0, 4),
        );
        let overlays = [
            Overlay {
                pyramid: &o1,
                settings: OverlaySettings {
                    opacity: 0.5,
                    warped: false,
                    heatmap: false,
                    display: Display::default(),
                },
            },
            Overlay {
                pyramid: &o2,
                settings: OverlaySettings {
                    opacity: 0.5,
                    warped: true,
                    heatmap: false,
                    display: Display::default(),
                },
            },
        ];
        let scene = Scene {
            bottom: &b,
            top: &t,
            warp: None,
            overlays: &overlays,
        };
        let view = ViewRect {
            origin: [0.0, 0.0],
            step: 1.0,
        };
        let c = Composite {
            blend: Blend::Alpha,
            opacity: 1.0,
            show_top: false,
            ..Composite::default()
        };
        // Bottom 0.2, then half-way to 1.0 (0.6), then half-way to 0.0 (0.3).
        let pixel = render(scene, &c, view, [1, 1], &[0, 0, 0, 0]);
        assert_eq!(pixel, [77, 77, 77, 255]);
        let shown = Composite {
            show_top: true,
            ..c
        };
        // Top 0.6, then 0.8, then 0.4.
        assert_eq!(
            render(scene, &shown, view, [1, 1], &[0, 0, 0, 0]),
            [102, 102, 102, 255]
        );
    }

    /// Layers in the fixed frame are sampled through one [`LevelRow`] per output row; through
    /// an identity warp the same layers take the per-pixel path. Both must agree bit for bit,
    /// at a zoom that lands between texels and over the image's edges.
    #[test]
    fn row_sampling_of_unwarped_layers_equals_per_pixel_sampling() {
        let textured = |seed: u64, w: usize, h: usize| {
            let mut rng = crate::rng::SplitMix64::new(seed);
            let image = GrayF32::from_shape_fn((h, w), |_| rng.uniform(0.0, 1.0) as f32);
            Pyramid::of(&AnyImage::from_gray_f32(image))
        };
        let (bottom, top, overlay) = (
            textured(1, 37, 29),
            textured(2, 31, 33),
            textured(3, 23, 41),
        );
        let identity = WarpGrid::of(
            &crate::transform::Affine::identity([0.0, 0.0]),
            [37, 29],
            1,
            64,
        );
        let scene = |warped: bool, overlays: &[Overlay<'_>; 1]| {
            render(
                Scene {
                    bottom: &bottom,
                    top: &top,
                    warp: warped.then_some(&identity),
                    overlays,
                },
                &Composite {
                    blend: Blend::Alpha,
                    opacity: 0.4,
                    ..Composite::default()
                },
                ViewRect {
                    origin: [-3.3, -2.7],
                    step: 0.37,
                },
                [120, 96],
                &[0, 0, 0],
            )
        };
        let drawn = |warped: bool| {
            scene(
                warped,
                &[Overlay {
                    pyramid: &overlay,
                    settings: OverlaySettings {
                        opacity: 0.6,
                        warped,
                        heatmap: false,
                        display: Display::default(),
                    },
                }],
            )
        };
        let (by_row, by_pixel) = (drawn(false), drawn(true));
        assert!(by_row.iter().any(|&v| v != 0), "the view shows the layers");
        assert_eq!(by_row, by_pixel);
    }

    #[test]
    fn the_level_matches_the_zoom() {
        let v = |step| ViewRect {
            origin: [0.0; 2],
            step,
        };
        assert_eq!(v(0.25).level(5), 0);
        assert_eq!(v(1.9).level(5), 0);
        assert_eq!(v(2.0).level(5), 1);
        assert_eq!(v(100.0).level(5), 4);
    }
}
