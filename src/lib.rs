//! Alinify: registration (alignment) of very large 2D images.
//!
//! The engine is organised in layers, each a module with one job:
//! [`io`] loads and saves images and fields, [`raster`] holds pixel data, pyramids, interpolation
//! and tiling, [`transform`] maps fixed-image points into the moving image, [`metric`] scores an
//! alignment (value and analytic gradient), [`optimize`] drives the parameters, and [`register`]
//! assembles pipelines that report progress through a [`job`] handle.
//!
//! Conventions used everywhere: pixel centres are integer coordinates, `x` is the column, and a
//! displacement field lives on the FIXED image's grid: `warped(x, y) = moving(x + u, y + v)`.
//! Nothing in the engine knows about a screen.
#![warn(missing_docs)]

pub mod analysis;
pub mod error;
pub mod io;
pub mod job;
pub mod memory;
pub mod metric;
pub mod optimize;
pub mod raster;
pub mod register;
pub mod rng;
pub mod synth;
pub mod transform;

pub use error::{Error, Result};
