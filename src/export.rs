//! Exporting a session: the composite at full resolution (GPU pieces on a hardware adapter,
//! else the CPU twin), the registration's output files, and every layer that follows the
//! moving image warped through the registration's transform, held in memory.
//!
//! This is the work behind the window's Export…; `alinify compose` does the composite alone.

use crate::compose::{Composite, SharedScene, cpu_renderer, export_composite};
use crate::io;
use crate::job::{Progress, Reporter, Stage};
use crate::transform::Transform;
use crate::transform::warp::Interpolation;
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// The registration files copied into an export, when the session folder has them.
pub const RESULT_FILES: [&str; 4] = ["warped.tif", "transform.json", "report.json", "flow.flo"];

/// A layer that follows the moving image: warped like it into `warped-<name>.tif`.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowingLayer {
    /// The layer's name (the output's file name is made from it).
    pub name: String,
    /// The file it comes from.
    pub path: PathBuf,
    /// Its page in that file (0-based).
    pub page: usize,
}

/// What a registration adds to an export.
#[derive(Debug, Clone)]
pub struct ExportedRegistration {
    /// The folder holding the registration's files ([`RESULT_FILES`]).
    pub files: PathBuf,
    /// The registration's transform.
    pub transform: Arc<dyn Transform>,
    /// The layers warped through it.
    pub following: Vec<FollowingLayer>,
}

/// One export.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    /// Where everything goes (created when missing).
    pub folder: PathBuf,
    /// The layers composed.
    pub scene: SharedScene,
    /// How they are composed.
    pub composite: Composite,
    /// The registration's outputs, when there is a registration.
    pub registration: Option<ExportedRegistration>,
}

/// Runs `request`; returns a one-line summary for the status bar.
pub fn export_session(request: &ExportRequest, reporter: &Reporter<String>) -> Result<String> {
    let started = Instant::now();
    let folder = &request.folder;
    io::ensure_output_dir(folder)?;
    let shared = &request.scene;
    let overlays = shared.borrowed_overlays();
    let scene = shared.scene(&overlays);
    let (mut render, max_width, backend) = match gpu_renderer(shared, request.composite) {
        Ok(gpu) => gpu,
        Err(why) => {
            reporter.log(format!("exporting on the CPU: {why}"));
            (
                cpu_renderer(scene, request.composite),
                usize::MAX,
                "cpu".into(),
            )
        }
    };
    let progress = |fraction: f32| reporter.progress(Progress::at(Stage::Write, fraction));
    let compute = export_composite(
        &folder.join("composite.tif"),
        scene,
        max_width,
        render.as_mut(),
        &progress,
        reporter.cancel_token(),
    )?;
    let mut written = 0;
    if let Some(registration) = &request.registration {
        for name in RESULT_FILES {
            let from = registration.files.join(name);
            if from.is_file() {
                std::fs::copy(&from, folder.join(name))
                    .map_err(|e| Error::write(&folder.join(name), e))?;
                written += 1;
            }
        }
        written += warp_following_layers(
            &registration.following,
            registration.transform.as_ref(),
            shared.bottom.size(),
            folder,
            reporter,
        )?;
    }
    Ok(format!(
        "exported composite.tif{} to {} in {:.1} s ({compute:.1} s composing on {backend})",
        if written > 0 {
            format!(" and {written} result files")
        } else {
            String::new()
        },
        folder.display(),
        started.elapsed().as_secs_f64()
    ))
}

/// The GPU renderer on a hardware adapter, or why there is none.
#[cfg(feature = "gpu")]
fn gpu_renderer(
    shared: &SharedScene,
    composite: Composite,
) -> std::result::Result<(Box<crate::compose::RenderFn<'static>>, usize, String), String> {
    crate::gpu::export_renderer(shared, composite, false)
}

#[cfg(not(feature = "gpu"))]
fn gpu_renderer(
    _shared: &SharedScene,
    _composite: Composite,
) -> std::result::Result<(Box<crate::compose::RenderFn<'static>>, usize, String), String> {
    Err("built without the gpu feature".into())
}

/// Warps each of `layers` through `transform` onto the `[width, height]` reference grid, at
/// full resolution and every channel, as `warped-<name>.tif` in `folder`; returns how many
/// were written.
pub fn warp_following_layers<T>(
    layers: &[FollowingLayer],
    transform: &dyn Transform,
    [width, height]: [usize; 2],
    folder: &Path,
    reporter: &Reporter<T>,
) -> Result<usize> {
    // Consecutive layers from one file (its pages, in load order) share one read.
    let mut loaded: Option<(&Path, Vec<crate::raster::AnyImage>)> = None;
    for layer in layers {
        reporter.check()?;
        if loaded
            .as_ref()
            .is_none_or(|(p, _)| *p != layer.path.as_path())
        {
            loaded = Some((&layer.path, io::load_layers(&layer.path)?));
        }
        let (_, pages) = loaded.as_ref().expect("just loaded");
        let Some(image) = pages.get(layer.page) else {
            return Err(Error::InvalidArgument(format!(
                "{} has no page {} any more",
                layer.path.display(),
                layer.page + 1
            )));
        };
        io::warp_to_tiff(
            &folder.join(format!("warped-{}.tif", file_stem_of(&layer.name))),
            image,
            transform,
            width,
            height,
            Interpolation::Linear,
            reporter.cancel_token(),
        )?;
    }
    Ok(layers.len())
}

/// A layer name as a file stem: `.tif` dropped, anything but letters and digits a dash.
fn file_stem_of(name: &str) -> String {
    name.trim_end_matches(".tif")
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '-' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_names_become_safe_file_stems() {
        assert_eq!(file_stem_of("moving.tif"), "moving");
        assert_eq!(file_stem_of("scan b.tif page 2"), "scan-b-tif-page-2");
    }
}
