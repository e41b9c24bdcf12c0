//! An input image with its Gaussian pyramid, ready for registration: the pyramid of the
//! registered channel (or the luminance), built once and shared by every stage.

use super::pyramid::RowSource;
use super::{AnyImage, GrayF32, Pyramid, PyramidParams};
use crate::job::CancelToken;
use crate::{Error, Result};
use std::borrow::Cow;

/// An input image with its Gaussian pyramid (levels 1..; level 0 is the image itself).
#[derive(Debug)]
pub struct PreparedImage {
    /// The image as loaded.
    pub image: AnyImage,
    /// Levels 1 and coarser.
    pub pyramid: Pyramid,
    /// The channel registered (`None`: luminance).
    pub channel: Option<usize>,
}

impl PreparedImage {
    /// Builds `levels` levels (including level 0) of the luminance.
    pub fn new(image: AnyImage, levels: usize, cancel: &CancelToken) -> Result<Self> {
        Self::with_channel(image, None, levels, cancel)
    }

    /// Builds `levels` levels of `channel` (the luminance when `None`).
    pub fn with_channel(
        image: AnyImage,
        channel: Option<usize>,
        levels: usize,
        cancel: &CancelToken,
    ) -> Result<Self> {
        if let Some(c) = channel
            && c >= image.channels()
        {
            return Err(Error::InvalidArgument(format!(
                "--channel {c}: the image has {} channel(s), numbered from 0",
                image.channels()
            )));
        }
        let params = PyramidParams {
            levels,
            ..PyramidParams::default()
        };
        let source = ChannelSource {
            image: &image,
            channel,
        };
        let pyramid = Pyramid::build(&source, &params, cancel)?;
        Ok(Self {
            image,
            pyramid,
            channel,
        })
    }
    /// Width at full resolution.
    pub fn width(&self) -> usize {
        self.image.width()
    }
    /// Height at full resolution.
    pub fn height(&self) -> usize {
        self.image.height()
    }
    /// Number of levels including level 0.
    pub fn levels(&self) -> usize {
        self.pyramid.reduced.len() + 1
    }
    /// `(height, width)` of level `l`.
    pub fn level_dim(&self, l: usize) -> (usize, usize) {
        if l == 0 {
            (self.height(), self.width())
        } else {
            self.pyramid.level(l).dim()
        }
    }

    /// Row `y` of level `l` into `out` (the level's width): the values of [`Self::level`],
    /// without a full-size copy of level 0.
    pub fn read_level_row(&self, l: usize, y: usize, out: &mut [f32]) {
        if l == 0 {
            let source = ChannelSource {
                image: &self.image,
                channel: self.channel,
            };
            source.read_row(y, out);
        } else {
            out.copy_from_slice(
                self.pyramid
                    .level(l)
                    .row(y)
                    .as_slice()
                    .expect("standard layout"),
            );
        }
    }

    /// Level `l` of the registered channel; level 0 is converted on demand (a full-size copy).
    pub fn level(&self, l: usize) -> Cow<'_, GrayF32> {
        if l == 0 {
            let mut out = GrayF32::zeros((self.height(), self.width()));
            use rayon::prelude::*;
            out.axis_iter_mut(ndarray::Axis(0))
                .into_par_iter()
                .enumerate()
                .for_each(|(y, mut row)| {
                    self.read_level_row(0, y, row.as_slice_mut().expect("standard layout"))
                });
            Cow::Owned(out)
        } else {
            Cow::Borrowed(self.pyramid.level(l))
        }
    }
}

/// Rows of one channel (or the luminance) of an image.
struct ChannelSource<'a> {
    image: &'a AnyImage,
    channel: Option<usize>,
}

impl RowSource for ChannelSource<'_> {
    fn width(&self) -> usize {
        self.image.width()
    }
    fn height(&self) -> usize {
        self.image.height()
    }
    fn read_row(&self, y: usize, out: &mut [f32]) {
        match self.channel {
            None => self.image.luminance_row(y, out),
            Some(c) => crate::with_raster!(self.image, r => r.channel_row(y, c, out)),
        }
    }
}
