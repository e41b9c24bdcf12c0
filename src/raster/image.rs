//! Typed images: 8-bit, 16-bit and float samples, one to four channels.

use super::GrayF32;
use ndarray::{Array3, ArrayView2, Axis};
use rayon::prelude::*;

/// The sample types Alinify stores. Integer samples map to `[0, 1]` for registration.
pub trait Sample: Copy + Send + Sync + Default + 'static {
    /// The depth tag of this sample type.
    const DEPTH: SampleDepth;
    /// The value in registration units: `[0, 1]` for integers, unchanged for floats.
    fn to_unit(self) -> f32;
    /// Converts from registration units, rounding and clamping for integers.
    fn from_unit(v: f32) -> Self;
    /// The value in registration units in f64, divided in f64 (`v / 255`, `v / 65535`), as
    /// exact definitions such as R2M2's quality maps read it.
    fn to_unit_f64(self) -> f64;
}

impl Sample for u8 {
    const DEPTH: SampleDepth = SampleDepth::U8;
    #[inline]
    fn to_unit(self) -> f32 {
        self as f32 * (1.0 / 255.0)
    }
    #[inline]
    fn from_unit(v: f32) -> Self {
        (v * 255.0 + 0.5).clamp(0.0, 255.0) as u8
    }
    #[inline]
    fn to_unit_f64(self) -> f64 {
        f64::from(self) / 255.0
    }
}

impl Sample for u16 {
    const DEPTH: SampleDepth = SampleDepth::U16;
    #[inline]
    fn to_unit(self) -> f32 {
        self as f32 * (1.0 / 65535.0)
    }
    #[inline]
    fn from_unit(v: f32) -> Self {
        (v * 65535.0 + 0.5).clamp(0.0, 65535.0) as u16
    }
    #[inline]
    fn to_unit_f64(self) -> f64 {
        f64::from(self) / 65535.0
    }
}

impl Sample for f32 {
    const DEPTH: SampleDepth = SampleDepth::F32;
    #[inline]
    fn to_unit(self) -> f32 {
        self
    }
    #[inline]
    fn from_unit(v: f32) -> Self {
        v
    }
    #[inline]
    fn to_unit_f64(self) -> f64 {
        f64::from(self)
    }
}

/// Bit depth and kind of the samples of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SampleDepth {
    /// 8-bit unsigned integer.
    U8,
    /// 16-bit unsigned integer.
    U16,
    /// 32-bit IEEE float.
    F32,
}

impl SampleDepth {
    /// Bytes per sample.
    pub fn bytes(self) -> u64 {
        match self {
            SampleDepth::U8 => 1,
            SampleDepth::U16 => 2,
            SampleDepth::F32 => 4,
        }
    }
}

/// An image of `T` samples stored as `[row, column, channel]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Raster<T> {
    /// The samples, shape `(height, width, channels)`.
    pub data: Array3<T>,
}

impl<T: Sample> Raster<T> {
    /// A zero-filled image.
    pub fn zeros(width: usize, height: usize, channels: usize) -> Self {
        Self {
            data: Array3::from_elem((height, width, channels), T::default()),
        }
    }

    /// Wraps interleaved samples (row-major, channels innermost) without copying.
    pub fn from_interleaved(
        width: usize,
        height: usize,
        channels: usize,
        samples: Vec<T>,
    ) -> Option<Self> {
        Array3::from_shape_vec((height, width, channels), samples)
            .ok()
            .map(|data| Self { data })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.data.dim().1
    }
    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.data.dim().0
    }
    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.data.dim().2
    }

    /// The samples of row `y`, interleaved.
    pub fn row(&self, y: usize) -> &[T] {
        let row = self.data.index_axis(Axis(0), y);
        row.to_slice().expect("rasters are standard-layout")
    }

    /// Luminance of row `y` in registration units into `out` (`out.len() == width`).
    /// RGB(A) uses Rec. 601 weights; alpha is ignored; gray+alpha uses the gray channel.
    #[inline]
    pub fn luminance_row(&self, y: usize, out: &mut [f32]) {
        let row = self.row(y);
        match self.channels() {
            1 | 2 => {
                let c = self.channels();
                for (o, px) in out.iter_mut().zip(row.chunks_exact(c)) {
                    *o = px[0].to_unit();
                }
            }
            c => {
                for (o, px) in out.iter_mut().zip(row.chunks_exact(c)) {
                    *o =
                        0.299 * px[0].to_unit() + 0.587 * px[1].to_unit() + 0.114 * px[2].to_unit();
                }
            }
        }
    }

    /// [`Self::luminance_row`] in f64 ([`Sample::to_unit_f64`]; weights 0.299, 0.587, 0.114).
    pub fn luminance_row_f64(&self, y: usize, out: &mut [f64]) {
        luminance_f64(self.row(y), self.channels(), out);
    }

    /// One channel of row `y` in registration units.
    pub fn channel_row(&self, y: usize, channel: usize, out: &mut [f32]) {
        let c = self.channels();
        for (o, px) in out.iter_mut().zip(self.row(y).chunks_exact(c)) {
            *o = px[channel].to_unit();
        }
    }

    /// The luminance image in registration units (a full-size `f32` copy).
    #[must_use]
    pub fn luminance(&self) -> GrayF32 {
        let mut out = GrayF32::zeros((self.height(), self.width()));
        out.axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .for_each(|(y, mut row)| {
                self.luminance_row(y, row.as_slice_mut().expect("standard layout"))
            });
        out
    }

    /// A view of channel `c`.
    pub fn channel(&self, c: usize) -> ArrayView2<'_, T> {
        self.data.index_axis(Axis(2), c)
    }
}

/// Luminance in f64 of interleaved samples with `channels` per pixel (see
/// [`Raster::luminance_row_f64`]).
pub fn luminance_f64<T: Sample>(samples: &[T], channels: usize, out: &mut [f64]) {
    match channels {
        1 | 2 => {
            for (o, px) in out.iter_mut().zip(samples.chunks_exact(channels)) {
                *o = px[0].to_unit_f64();
            }
        }
        c => {
            for (o, px) in out.iter_mut().zip(samples.chunks_exact(c)) {
                *o = 0.299 * px[0].to_unit_f64()
                    + 0.587 * px[1].to_unit_f64()
                    + 0.114 * px[2].to_unit_f64();
            }
        }
    }
}

/// An image of any supported depth; what the loaders return and the writers take.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyImage {
    /// 8-bit samples.
    U8(Raster<u8>),
    /// 16-bit samples.
    U16(Raster<u16>),
    /// 32-bit float samples.
    F32(Raster<f32>),
}

/// Calls `$body` with `$r` bound to the typed raster inside an [`AnyImage`].
#[macro_export]
macro_rules! with_raster {
    ($img:expr, $r:ident => $body:expr) => {
        match $img {
            $crate::raster::AnyImage::U8($r) => $body,
            $crate::raster::AnyImage::U16($r) => $body,
            $crate::raster::AnyImage::F32($r) => $body,
        }
    };
}

impl AnyImage {
    /// Width in pixels.
    pub fn width(&self) -> usize {
        with_raster!(self, r => r.width())
    }
    /// Height in pixels.
    pub fn height(&self) -> usize {
        with_raster!(self, r => r.height())
    }
    /// Number of channels.
    pub fn channels(&self) -> usize {
        with_raster!(self, r => r.channels())
    }
    /// Sample depth.
    pub fn depth(&self) -> SampleDepth {
        match self {
            AnyImage::U8(_) => SampleDepth::U8,
            AnyImage::U16(_) => SampleDepth::U16,
            AnyImage::F32(_) => SampleDepth::F32,
        }
    }
    /// Bytes of sample data.
    pub fn byte_len(&self) -> u64 {
        (self.width() * self.height() * self.channels()) as u64 * self.depth().bytes()
    }
    /// The luminance in registration units (a full-size `f32` copy).
    #[must_use]
    pub fn luminance(&self) -> GrayF32 {
        with_raster!(self, r => r.luminance())
    }
    /// Luminance of one row, see [`Raster::luminance_row`].
    pub fn luminance_row(&self, y: usize, out: &mut [f32]) {
        with_raster!(self, r => r.luminance_row(y, out))
    }
    /// Luminance of one row in f64, see [`Raster::luminance_row_f64`].
    pub fn luminance_row_f64(&self, y: usize, out: &mut [f64]) {
        with_raster!(self, r => r.luminance_row_f64(y, out))
    }
    /// A gray `f32` image wrapped as an [`AnyImage`].
    pub fn from_gray_f32(gray: GrayF32) -> AnyImage {
        let (h, w) = gray.dim();
        let data = gray
            .into_shape_with_order((h, w, 1))
            .expect("same element count");
        AnyImage::F32(Raster { data })
    }
    /// Converts a registration-unit gray image to the given depth.
    pub fn from_gray_units(gray: &GrayF32, depth: SampleDepth) -> AnyImage {
        fn convert<T: Sample>(gray: &GrayF32) -> Raster<T> {
            let (h, w) = gray.dim();
            let mut r = Raster::<T>::zeros(w, h, 1);
            r.data
                .axis_iter_mut(Axis(0))
                .into_par_iter()
                .zip(gray.axis_iter(Axis(0)).into_par_iter())
                .for_each(|(mut o, i)| {
                    o.iter_mut().zip(i).for_each(|(o, &v)| *o = T::from_unit(v))
                });
            r
        }
        match depth {
            SampleDepth::U8 => AnyImage::U8(convert(gray)),
            SampleDepth::U16 => AnyImage::U16(convert(gray)),
            SampleDepth::F32 => AnyImage::F32(convert(gray)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_samples_round_trip_through_units() {
        for v in [0u8, 1, 127, 254, 255] {
            assert_eq!(u8::from_unit(v.to_unit()), v);
        }
        for v in [0u16, 1, 30000, 65535] {
            assert_eq!(u16::from_unit(v.to_unit()), v);
        }
        assert_eq!(u8::from_unit(2.0), 255);
        assert_eq!(u8::from_unit(-1.0), 0);
    }

    #[test]
    fn luminance_weights_rgb_and_ignores_alpha() {
        let r = Raster::from_interleaved(1, 1, 4, vec![255u8, 0, 0, 0]).unwrap();
        let lum = r.luminance();
        assert!((lum[[0, 0]] - 0.299).abs() < 1e-6);
        let g = Raster::from_interleaved(2, 1, 1, vec![0u16, 65535]).unwrap();
        assert_eq!(g.luminance()[[0, 1]], 1.0);
    }
}
