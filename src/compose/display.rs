//! How one layer's samples become colours: a window (the sample range stretched to black ..
//! white), a gamma, and for gray layers a colour map; and the histogram a person sets the
//! window on. `shaders/compose.wgsl`'s `styled` is the twin of [`Display::colour`].

use super::pyramid::{Level, Pyramid, Samples};

/// A colour map for a gray layer.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub enum ColourMap {
    /// Black to white.
    #[default]
    Gray,
    /// White to black.
    Inverted,
    /// Dark blue through green to yellow ([`super::heat_colour`]).
    Viridis,
    /// The stain's colour (RGB, `0..=1`) where the layer is dark, white where it is bright:
    /// a single stain as it looks in brightfield.
    Stain([f32; 3]),
}

impl ColourMap {
    /// The maps a person chooses from, in menu order (the stain with haematoxylin's violet).
    pub const ALL: [ColourMap; 4] = [
        ColourMap::Gray,
        ColourMap::Inverted,
        ColourMap::Viridis,
        ColourMap::Stain(HAEMATOXYLIN),
    ];

    /// The name shown in the interface.
    pub fn label(self) -> &'static str {
        match self {
            ColourMap::Gray => "gray",
            ColourMap::Inverted => "inverted",
            ColourMap::Viridis => "viridis",
            ColourMap::Stain(_) => "stain tint",
        }
    }

    /// The shader's code for this map.
    pub fn code(self) -> f32 {
        match self {
            ColourMap::Gray => 0.0,
            ColourMap::Inverted => 1.0,
            ColourMap::Viridis => 2.0,
            ColourMap::Stain(_) => 3.0,
        }
    }

    /// The stain's colour (white for the other maps).
    pub fn tint(self) -> [f32; 3] {
        match self {
            ColourMap::Stain(tint) => tint,
            _ => [1.0; 3],
        }
    }

    /// The colour of `t` in `0..=1`.
    #[inline]
    pub fn colour(self, t: f32) -> [f32; 3] {
        match self {
            ColourMap::Gray => [t; 3],
            ColourMap::Inverted => [1.0 - t; 3],
            ColourMap::Viridis => super::heat_colour(t),
            ColourMap::Stain(tint) => tint.map(|c| c + t * (1.0 - c)),
        }
    }
}

/// Haematoxylin's blue-violet, the default stain tint.
pub const HAEMATOXYLIN: [f32; 3] = [0.28, 0.18, 0.55];

/// The shader's code of an RGB layer (its channels windowed, no colour map).
pub const RGB_CODE: f32 = 4.0;

/// One layer's display settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Display {
    /// The value (`0..=1` of the sample range) shown black.
    pub low: f32,
    /// The value shown white; above `low`.
    pub high: f32,
    /// The exponent applied inside the window: below 1 brightens the mid-tones (as ImageJ's).
    pub gamma: f32,
    /// The colour map of a gray layer (RGB layers ignore it).
    pub map: ColourMap,
}

impl Default for Display {
    fn default() -> Self {
        Self {
            low: 0.0,
            high: 1.0,
            gamma: 1.0,
            map: ColourMap::Gray,
        }
    }
}

/// The narrowest window, so `high > low` always.
const MIN_WINDOW: f32 = 1e-4;

impl Display {
    /// `v` (`0..=1`) placed in the window, clamped, through the gamma.
    #[inline]
    pub fn stretch(&self, v: f32) -> f32 {
        let t = ((v - self.low) / (self.high - self.low).max(MIN_WINDOW)).clamp(0.0, 1.0);
        if self.gamma == 1.0 {
            t
        } else {
            t.powf(self.gamma)
        }
    }

    /// The colour of a sampled value: an RGB layer's channels each stretched, a gray layer's
    /// value (`raw[0]`) stretched and through the colour map.
    #[inline]
    pub fn colour(&self, raw: [f32; 3], rgb: bool) -> [f32; 3] {
        if rgb {
            raw.map(|v| self.stretch(v))
        } else {
            self.map.colour(self.stretch(raw[0]))
        }
    }

    /// True when it shows samples as they are (the fast path of the CPU twin).
    pub fn is_identity(&self) -> bool {
        *self == Display::default()
    }

    /// The window set to the `lower` and `upper` fractions (e.g. 0.001 and 0.999) of
    /// `histogram`'s samples, keeping the gamma and map.
    pub fn with_percentiles(self, histogram: &Histogram, lower: f64, upper: f64) -> Self {
        self.with_window(histogram.percentile(lower), histogram.percentile(upper))
    }

    /// The window set to `low..high`, ordered and kept in `0..=1` and at least the narrowest.
    pub fn with_window(self, low: f32, high: f32) -> Self {
        let low = low.clamp(0.0, 1.0 - MIN_WINDOW);
        Self {
            low,
            high: high.clamp(low + MIN_WINDOW, 1.0),
            ..self
        }
    }
}

/// Bins of a [`Histogram`].
pub const BINS: usize = 256;

/// A layer's sample histogram, per channel, over the range its samples span.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// The smallest and largest value (`0..=1`): bin `i` covers
    /// `range[0] + (i, i + 1) * (range[1] - range[0]) / BINS`.
    pub range: [f32; 2],
    /// Counts per channel (1 or 3), [`BINS`] each.
    pub counts: Vec<Vec<u64>>,
}

/// Most pixels a histogram reads: it takes the finest level at most this large.
const HISTOGRAM_PIXELS: usize = 1 << 20;

impl Histogram {
    /// The histogram of `pyramid`'s finest level of at most about a million pixels.
    pub fn of(pyramid: &Pyramid) -> Self {
        let level = pyramid
            .levels
            .iter()
            .find(|l| l.width * l.height <= HISTOGRAM_PIXELS)
            .unwrap_or_else(|| pyramid.levels.last().expect("a pyramid has a level"));
        Self::of_level(level)
    }

    /// The histogram of one level: one bin per value of an 8-bit level; a 16-bit level's bins
    /// span the values it holds (a 16-bit image often uses a small part of its range).
    pub fn of_level(level: &Level) -> Self {
        let c = level.channels;
        let mut counts = vec![vec![0u64; BINS]; c];
        let range = match &level.samples {
            Samples::U8(s) => {
                for pixel in s.chunks_exact(c) {
                    for (k, &v) in pixel.iter().enumerate() {
                        counts[k][v as usize] += 1;
                    }
                }
                // Bin i is centred on the value i / 255.
                [-0.5 / 255.0, 255.5 / 255.0]
            }
            Samples::U16(s) => {
                let (lo, hi) = s
                    .iter()
                    .fold((u16::MAX, 0), |(lo, hi), &v| (lo.min(v), hi.max(v)));
                let (lo, hi) = if lo <= hi { (lo, hi) } else { (0, u16::MAX) };
                let span = (hi - lo) as usize + 1;
                for pixel in s.chunks_exact(c) {
                    for (k, &v) in pixel.iter().enumerate() {
                        counts[k][(v - lo) as usize * BINS / span] += 1;
                    }
                }
                [
                    lo as f32 / 65535.0,
                    (hi as f32 + 1.0).min(65535.0) / 65535.0,
                ]
            }
        };
        Self { range, counts }
    }

    /// The value below which `fraction` of all samples (every channel pooled) lie, linear
    /// within the bin.
    pub fn percentile(&self, fraction: f64) -> f32 {
        let pooled: Vec<u64> = (0..BINS)
            .map(|i| self.counts.iter().map(|c| c[i]).sum())
            .collect();
        let total: u64 = pooled.iter().sum();
        let target = fraction.clamp(0.0, 1.0) * total as f64;
        let width = (self.range[1] - self.range[0]) / BINS as f32;
        let mut below = 0.0;
        for (i, &n) in pooled.iter().enumerate() {
            let n = n as f64;
            if below + n >= target && n > 0.0 {
                let within = ((target - below) / n) as f32;
                return self.range[0] + (i as f32 + within) * width;
            }
            below += n;
        }
        self.range[1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_stretches_clamps_and_bends_with_the_gamma() {
        let d = Display::default().with_window(0.2, 0.6);
        assert_eq!(d.stretch(0.1), 0.0);
        assert!((d.stretch(0.4) - 0.5).abs() < 1e-6);
        assert_eq!(d.stretch(0.9), 1.0);
        let bright = Display { gamma: 0.5, ..d };
        assert!((bright.stretch(0.3) - 0.5).abs() < 1e-6, "0.25^0.5");
        // RGB channels each stretched; a gray value through the map.
        assert_eq!(d.colour([0.2, 0.6, 0.4], true)[..2], [0.0, 1.0]);
        let stain = Display {
            map: ColourMap::Stain(HAEMATOXYLIN),
            ..Display::default()
        };
        assert_eq!(stain.colour([0.0; 3], false), HAEMATOXYLIN);
        assert_eq!(stain.colour([1.0; 3], false), [1.0; 3]);
        let inverted = Display {
            map: ColourMap::Inverted,
            ..Display::default()
        };
        assert_eq!(inverted.colour([0.25; 3], false), [0.75; 3]);
    }

    #[test]
    fn percentiles_of_a_16_bit_ramp_set_the_window_on_its_data() {
        // A 16-bit image using 1000..=5000 of 65535: the full range would show it black.
        let samples: Vec<u16> = (0..10_000)
            .map(|i| 1000 + (i * 4000 / 9999) as u16)
            .collect();
        let level = Level {
            width: 100,
            height: 100,
            channels: 1,
            samples: Samples::U16(samples),
        };
        let h = Histogram::of_level(&level);
        assert!((h.range[0] - 1000.0 / 65535.0).abs() < 1e-6);
        assert!((h.range[1] - 5001.0 / 65535.0).abs() < 1e-6);
        assert_eq!(h.counts[0].iter().sum::<u64>(), 10_000);
        // An 8-bit level: one bin per value.
        let bytes = Level::gray(2, 1, vec![0, 255]);
        let h8 = Histogram::of_level(&bytes);
        assert_eq!((h8.counts[0][0], h8.counts[0][255]), (1, 1));
        assert!((h8.percentile(1.0) - 255.5 / 255.0).abs() < 1e-6);
        let d = Display::default().with_percentiles(&h, 0.0, 0.5);
        let mid = 3000.0 / 65535.0;
        assert!((d.high - mid).abs() < 20.0 / 65535.0, "{} vs {mid}", d.high);
        assert!((d.low - h.range[0]).abs() < 1e-6);
    }
}
