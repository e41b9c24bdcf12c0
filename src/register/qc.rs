//! Quality control of a registration: where the box maps run (the backend), and the QC summary
//! that `report.json` and the batch summaries carry — the regional maps it reads (CORR and the
//! flag map) on a level of at most 1024 px and the Jacobian of the transform, with their flags
//! in fixed-image pixels.

use super::Backend;
use crate::Result;
use crate::analysis::jacobian::{self, JacobianReport};
use crate::analysis::quality::{
    BoxMapKernel, CpuBoxMaps, NoSink, PairSource, Preview, QualityMap, QualityOptions,
    QualityReport, compute_quality,
};
use crate::job::{CancelToken, Reporter};
use crate::metric::MetricKind;
use crate::raster::{AnyImage, GrayF32};
use crate::transform::{AtLevel, Transform};

/// The box-map kernel for a backend: the GPU when asked for, or (auto) when a hardware adapter
/// exists; the CPU twin otherwise, with the reason passed to `log`.
pub fn box_map_kernel(backend: Backend, log: &dyn Fn(String)) -> Result<Box<dyn BoxMapKernel>> {
    #[cfg(feature = "gpu")]
    {
        use crate::gpu::{GpuBoxMaps, GpuContext};
        match backend {
            Backend::Cpu => {}
            Backend::Gpu => return Ok(Box::new(GpuBoxMaps::new(GpuContext::shared()?, None))),
            Backend::Auto => match GpuContext::shared() {
                Ok(c) if c.info.device_type == wgpu::DeviceType::Cpu => log(format!(
                    "quality maps on the CPU ({} is a software renderer; --backend gpu uses it)",
                    c.info.name
                )),
                Ok(c) => return Ok(Box::new(GpuBoxMaps::new(c, None))),
                Err(e) => log(format!("quality maps on the CPU: {e}")),
            },
        }
    }
    #[cfg(not(feature = "gpu"))]
    if backend == Backend::Gpu {
        return Err(crate::Error::Gpu("this build has no GPU backend".into()));
    }
    let _ = log;
    Ok(Box::new(CpuBoxMaps))
}

/// The QC of one registration, in `report.json`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct QcSummary {
    /// The QC maps' statistics and flags (computed on pyramid level `level`; flags in
    /// full-resolution pixels).
    pub quality: QualityReport,
    /// The level the maps were computed on.
    pub level: usize,
    /// The transform's Jacobian.
    pub jacobian: JacobianReport,
    /// The kinds of flag raised: `folding`, `discontinuity`, `poor_region`.
    pub flags: Vec<String>,
    /// Why the QC could not be computed (the rest is then empty); the registration stands.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub skipped: Option<String>,
    /// The flagged map's preview (on level `level`), for pictures; not in report.json.
    #[serde(skip)]
    pub preview: Option<Preview>,
}

impl QcSummary {
    /// Whether any flag was raised.
    pub fn flagged(&self) -> bool {
        !self.flags.is_empty()
    }

    /// A picture of the flagged map (the local correlation) with every flagged region
    /// outlined and a legend, as PNG at `path`; nothing when there is no preview.
    pub fn write_picture(&self, path: &std::path::Path) -> Result<()> {
        use crate::analysis::render::{Colormap, MapPicture, picture};
        let Some(preview) = &self.preview else {
            return Ok(());
        };
        let mut flags = self.quality.flags.clone();
        flags.extend(self.jacobian.flags.iter().cloned());
        let title = format!(
            "QC: local {} (r = {})",
            self.quality.flagged_map, self.quality.radius
        );
        picture(&MapPicture {
            values: &preview.values,
            width: preview.width,
            height: preview.height,
            cell: (preview.cell << self.level) as f64,
            colormap: Colormap::Sequential { lo: 0.0, hi: 1.0 },
            title: &title,
            unit: "1 = a perfect local fit",
            flags: &flags,
        })
        .save_png(path)
    }
}

/// The QC maps for a registration with `metric`: flags on MI when the pair was registered with
/// MI (different stains or modalities, whose intensities need not correlate), else on CORR.
pub fn qc_options(metric: MetricKind) -> QualityOptions {
    QualityOptions {
        flag_map: (metric == MetricKind::Mi).then_some(QualityMap::Mi),
        ..QualityOptions::default()
    }
}

/// The maps the report's QC computes: CORR (the batch summary's and the method comparison's
/// local correlation) and the map the flags are found on. The other four are for the Analysis
/// panel and `alinify analyze quality`; all six took 0.74 s of a 1024² pair on 2 cores, CORR
/// alone 0.16 s.
fn report_maps(options: &QualityOptions) -> Vec<QualityMap> {
    let flag_map = options.flag_map.unwrap_or(QualityMap::Corr);
    QualityMap::ALL
        .into_iter()
        .filter(|&m| m == QualityMap::Corr || m == flag_map)
        .collect()
}

/// Samples on the longer side of the report's Jacobian.
const JACOBIAN_SIDE: usize = 1024;

/// The QC of a registration from pyramid level `level` of the fixed and moving images
/// (`scale = 2^level`) and the transform (full-resolution coordinates) over a
/// `width x height` fixed image.
pub fn registration_qc(
    fixed_level: &GrayF32,
    moving_level: &GrayF32,
    transform: &dyn Transform,
    metric: MetricKind,
    level: usize,
    (width, height): (usize, usize),
    cancel: &CancelToken,
) -> Result<QcSummary> {
    let fixed = AnyImage::from_gray_f32(fixed_level.clone());
    let moving = AnyImage::from_gray_f32(moving_level.clone());
    let at_level = AtLevel::new(transform, level);
    let source = PairSource {
        fixed: &fixed,
        moving: &moving,
        transform: Some(&at_level),
        mask: None,
    };
    let reporter = Reporter::<()>::silent(cancel.clone());
    // A window that fits the level, however narrow the image (3 px at least).
    let side = fixed_level.ncols().min(fixed_level.nrows());
    let flagged = qc_options(metric);
    let options = QualityOptions {
        radius: 3.min(side.saturating_sub(1) / 2).max(1),
        maps: report_maps(&flagged),
        ..flagged
    };
    let step = width.max(height).div_ceil(JACOBIAN_SIDE);
    // The maps and the Jacobian side by side: each has serial stretches that leave a core idle.
    let (quality, jacobian) = rayon::join(
        || compute_quality(&source, &options, &CpuBoxMaps, &mut NoSink, &reporter),
        || jacobian::jacobian_qc(transform, width, height, Some(step), cancel),
    );
    let (mut quality, jacobian) = (quality?, jacobian?.report);
    let s = 1usize << level;
    for f in &mut quality.report.flags {
        (f.x, f.y, f.width, f.height) = (f.x * s, f.y * s, f.width * s, f.height * s);
    }
    let mut flags = Vec::new();
    for kind in ["folding", "discontinuity"] {
        if jacobian.flags.iter().any(|f| f.reason.starts_with(kind)) {
            flags.push(kind.to_string());
        }
    }
    if !quality.report.flags.is_empty() {
        flags.push("poor_region".to_string());
    }
    let preview = quality
        .previews
        .iter()
        .find(|(m, _)| m.name() == quality.report.flagged_map)
        .map(|(_, p)| p.clone());
    Ok(QcSummary {
        quality: quality.report,
        level,
        jacobian,
        flags,
        preview,
        skipped: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_computes_corr_and_the_map_its_flags_are_found_on() {
        assert_eq!(
            report_maps(&qc_options(MetricKind::Ncc)),
            [QualityMap::Corr]
        );
        assert_eq!(
            report_maps(&qc_options(MetricKind::Mi)),
            [QualityMap::Corr, QualityMap::Mi]
        );
    }
}
