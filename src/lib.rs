//! Alinify: registration (alignment) of very large 2D images.
//!
//! The engine is organised in layers, each a module with one job, importing only from the
//! layers below it (`docs/ARCHITECTURE.md` is the map):
//!
//! - the base: [`error`] (the error type), [`job`] (progress, cancel, the job handle),
//!   [`memory`] (available and peak memory), [`rng`] (seeded random numbers);
//! - [`raster`]: pixel data, pyramids, interpolation, tiling, the prepared input image;
//! - [`transform`]: points of the fixed image mapped into the moving image, and warping;
//! - [`io`]: images, `.flo` fields, `transform.json`, elastix files, streamed warps to TIFF;
//! - [`metric`] scores an alignment (value and analytic gradient), [`optimize`] drives the
//!   parameters, [`synth`] generates pairs with a known deformation, [`analysis`] measures
//!   results (end-point error, NCC);
//! - [`flow`]: the fast mode's optical flow on the CPU; [`compose`]: layer pyramids, blending
//!   and the CPU compositor;
//! - [`gpu`]: the wgpu device, the flow and compositor kernels (feature `gpu`);
//! - [`register`]: the pipelines and their [`register::Settings`]; [`export`]: a session's
//!   full-resolution export; [`batch`]: many pairs, isolated and resumable; [`warmup`];
//! - at the top, `app` (the desktop application, feature `gui`) and the CLI (`main.rs`).
//!
//! Conventions used everywhere: pixel centres are integer coordinates, `x` is the column, and a
//! displacement field lives on the FIXED image's grid: `warped(x, y) = moving(x + u, y + v)`.
//! Nothing in the engine knows about a screen.
//!
//! Registering a generated pair in memory and scoring it against its ground truth:
//!
//! ```
//! use alinify::analysis::end_point_error;
//! use alinify::job::{CancelToken, Reporter};
//! use alinify::raster::SampleDepth;
//! use alinify::raster::PreparedImage;
//! use alinify::register::{affine::{initialise, register_affine}, RegisterOptions};
//! use alinify::synth::{generate, Deform, SynthParams, Texture};
//! use alinify::transform::displacement_field;
//!
//! let cancel = CancelToken::new();
//! let params = SynthParams {
//!     width: 192, height: 160, seed: 1, deform: Deform::Affine, depth: SampleDepth::U8, noise: 0.01,
//! };
//! let pair = generate(&Texture::procedural(192, 160, 1), &params, &cancel)?;
//! let fixed = PreparedImage::new(pair.fixed, 2, &cancel)?;
//! let moving = PreparedImage::new(pair.moving, 2, &cancel)?;
//! let reporter = Reporter::<()>::silent(cancel);
//! let options = RegisterOptions::default();
//! let start = initialise(&fixed, &moving, &options, &reporter)?;
//! let outcome = register_affine(&fixed, &moving, &options, start, 0, &reporter)?;
//! let field = displacement_field(&outcome.affine, 192, 160);
//! let error = end_point_error(&field, &pair.ground_truth, Some(&pair.mask))?;
//! assert!(error.epe_mean < 0.1, "mean end-point error {} px", error.epe_mean);
//! # Ok::<(), alinify::Error>(())
//! ```
#![warn(missing_docs)]

pub mod analysis;
#[cfg(feature = "gui")]
pub mod app;
pub mod batch;
pub mod compose;
pub mod demons;
pub mod error;
pub mod export;
pub mod flow;
#[cfg(feature = "gpu")]
pub mod gpu;
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
pub mod warmup;

pub use error::{Error, Result};
