//! Regional quality maps between the fixed image and the warped moving image: MSE, Pearson
//! correlation, mutual information and their demeaned variants in a sliding window, their
//! statistics, and the regions where the local quality is poor.
//!
//! Two definitions (see `docs/ARCHITECTURE.md`, "Quality maps"):
//! - [`Definition::R2m2`]: R2M2's exact definitions in f64, window by window ([`window`]).
//! - [`Definition::Qc`], the default: the box maps from window sums in f32 ([`boxmaps`], a GPU
//!   kernel with its CPU twin), and MI at a coarser level with 8 bins.
//!
//! Both run band by band ([`band`]): memory is the inputs plus a few bands, whatever the size.

pub mod band;
pub mod boxmaps;
pub mod window;

pub use band::{BandRows, PairSource};
pub use boxmaps::{BoxBand, BoxMapKernel, CpuBoxMaps};

use super::flags::{self, BlockGrid, Flag};
use crate::job::{Progress, Reporter, Stage};
use crate::{Error, Result};
use rayon::prelude::*;
use std::collections::BTreeMap;

/// One regional quality map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QualityMap {
    /// Mean squared difference.
    Mse,
    /// Pearson's correlation.
    Corr,
    /// Mutual information.
    Mi,
    /// MSE after subtracting each window's mean.
    DmMse,
    /// Correlation after subtracting each window's mean.
    DmCorr,
    /// MI after subtracting each window's mean.
    DmMi,
}

impl QualityMap {
    /// Every map, in the order files and reports list them.
    pub const ALL: [QualityMap; 6] = [
        QualityMap::Mse,
        QualityMap::Corr,
        QualityMap::Mi,
        QualityMap::DmMse,
        QualityMap::DmCorr,
        QualityMap::DmMi,
    ];

    /// The map's name in files and on the command line (`mse`, `dm_corr`, ...).
    pub fn name(self) -> &'static str {
        match self {
            QualityMap::Mse => "mse",
            QualityMap::Corr => "corr",
            QualityMap::Mi => "mi",
            QualityMap::DmMse => "dm_mse",
            QualityMap::DmCorr => "dm_corr",
            QualityMap::DmMi => "dm_mi",
        }
    }

    /// What a legend says the values are.
    pub fn unit(self) -> &'static str {
        match self {
            QualityMap::Mse | QualityMap::DmMse => "intensity² (intensities in 0..1)",
            QualityMap::Corr | QualityMap::DmCorr => "Pearson r",
            QualityMap::Mi | QualityMap::DmMi => "nats",
        }
    }

    /// Whether larger values mean a better fit.
    pub fn higher_is_better(self) -> bool {
        !matches!(self, QualityMap::Mse | QualityMap::DmMse)
    }

    /// Parses `mse,corr,...` or `all`.
    pub fn parse_list(text: &str) -> std::result::Result<Vec<QualityMap>, String> {
        if text.trim() == "all" {
            return Ok(Self::ALL.to_vec());
        }
        let mut maps = Vec::new();
        for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let map = Self::ALL
                .into_iter()
                .find(|m| m.name() == name)
                .ok_or_else(|| {
                    format!("unknown map {name:?} (mse, corr, mi, dm_mse, dm_corr, dm_mi or all)")
                })?;
            if !maps.contains(&map) {
                maps.push(map);
            }
        }
        if maps.is_empty() {
            return Err("no map named".into());
        }
        maps.sort();
        Ok(maps)
    }
}

/// Which definitions the maps follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Definition {
    /// Alinify's QC maps (fast; see the module docs).
    #[default]
    Qc,
    /// R2M2's exact definitions.
    R2m2,
}

/// What to compute.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityOptions {
    /// The maps, in [`QualityMap::ALL`] order.
    pub maps: Vec<QualityMap>,
    /// Window radius `r`: windows are `(2r + 1)²` (clipped at the border).
    pub radius: usize,
    /// MI histogram bins; `None`: 32 for R2M2, 8 for QC.
    pub bins: Option<usize>,
    /// The definitions.
    pub definition: Definition,
    /// The map the flags are found on (it is computed even if not in `maps`); `None`: corr, the
    /// right one for the same modality. Use mi for different stains or modalities, whose
    /// intensities need not correlate.
    pub flag_map: Option<QualityMap>,
}

impl Default for QualityOptions {
    fn default() -> Self {
        Self {
            maps: QualityMap::ALL.to_vec(),
            radius: 3,
            bins: None,
            definition: Definition::Qc,
            flag_map: None,
        }
    }
}

impl QualityOptions {
    /// The MI bins in effect.
    pub fn bins(&self) -> usize {
        self.bins.unwrap_or(match self.definition {
            Definition::R2m2 => 32,
            Definition::Qc => 8,
        })
    }

    fn wants(&self, map: QualityMap) -> bool {
        self.maps.contains(&map) || self.flag_map == Some(map)
    }

    /// The map the flags are found on: `flag_map`, else corr when asked for, else the first
    /// map asked for in the order corr, dm_corr, mi, dm_mi, mse, dm_mse.
    pub fn flagged_map(&self) -> QualityMap {
        self.flag_map.unwrap_or_else(|| {
            [
                QualityMap::Corr,
                QualityMap::DmCorr,
                QualityMap::Mi,
                QualityMap::DmMi,
                QualityMap::Mse,
                QualityMap::DmMse,
            ]
            .into_iter()
            .find(|m| self.maps.contains(m))
            .unwrap_or(QualityMap::Corr)
        })
    }
}

/// Statistics of a map over the scored pixels.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MapStats {
    /// Mean (over every scored pixel).
    pub mean: f64,
    /// Median.
    pub median: f64,
    /// 5th percentile.
    pub p5: f64,
    /// 95th percentile.
    pub p95: f64,
}

/// What `quality.json` holds.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QualityReport {
    /// The definitions used.
    pub definition: Definition,
    /// Window radius.
    pub radius: usize,
    /// MI bins.
    pub bins: usize,
    /// The pyramid level MI ran at (QC; 0 = full resolution).
    pub mi_level: usize,
    /// The fixed grid.
    pub width: usize,
    /// The fixed grid.
    pub height: usize,
    /// Where the box maps ran (`cpu`, `gpu`).
    pub backend: String,
    /// Pixels scored (inside the mask and, with a transform, mapped inside the moving image).
    pub pixels: u64,
    /// Per map.
    pub maps: BTreeMap<String, MapStats>,
    /// The map the flags were found on.
    pub flagged_map: String,
    /// Regions where the local quality is poor.
    pub flags: Vec<Flag>,
    /// Seconds spent.
    pub seconds: f64,
}

/// A map at a reduced resolution: block means of `cell x cell` pixels (NaN: no scored pixel).
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    /// Block side, fixed-image pixels.
    pub cell: usize,
    /// Blocks across.
    pub width: usize,
    /// Blocks down.
    pub height: usize,
    /// Row-major block means.
    pub values: Vec<f32>,
}

impl Preview {
    fn of(grid: &BlockGrid) -> Self {
        Self {
            cell: grid.cell,
            width: grid.cols,
            height: grid.rows,
            values: grid.means(),
        }
    }

    /// The value at fixed-image pixel `(x, y)`, if scored.
    pub fn at(&self, x: f64, y: f64) -> Option<f32> {
        if x < 0.0 || y < 0.0 {
            return None;
        }
        let (cx, cy) = (
            (x / self.cell as f64) as usize,
            (y / self.cell as f64) as usize,
        );
        (cx < self.width && cy < self.height)
            .then(|| self.values[cy * self.width + cx])
            .filter(|v| v.is_finite())
    }
}

/// The maps' report and their previews.
#[derive(Debug, Clone)]
pub struct QualityResult {
    /// Statistics and flags.
    pub report: QualityReport,
    /// Each map at a reduced resolution (at most [`PREVIEW_SIDE`] blocks on a side).
    pub previews: Vec<(QualityMap, Preview)>,
}

impl QualityResult {
    /// The preview of one map.
    pub fn preview(&self, map: QualityMap) -> Option<&Preview> {
        self.previews
            .iter()
            .find(|(m, _)| *m == map)
            .map(|(_, p)| p)
    }
}

/// Receives full-resolution rows of the maps as they are computed (NaN: not scored).
pub trait MapSink {
    /// Rows `y ..` of `map`, `values.len() / width` of them.
    fn rows(&mut self, map: QualityMap, y: usize, values: Vec<f32>) -> Result<()>;
}

/// Discards the rows (only the report and previews are wanted).
#[derive(Debug, Default)]
pub struct NoSink;

impl MapSink for NoSink {
    fn rows(&mut self, _: QualityMap, _: usize, _: Vec<f32>) -> Result<()> {
        Ok(())
    }
}

/// Holds every map at full resolution (for small images and tests).
#[derive(Debug, Default)]
pub struct InMemoryMaps {
    /// Row-major maps by kind.
    pub maps: BTreeMap<QualityMap, Vec<f32>>,
}

impl MapSink for InMemoryMaps {
    fn rows(&mut self, map: QualityMap, _y: usize, values: Vec<f32>) -> Result<()> {
        self.maps.entry(map).or_default().extend_from_slice(&values);
        Ok(())
    }
}

/// The largest side of a preview, in blocks.
pub const PREVIEW_SIDE: usize = 1024;
/// Pixels per band (loaded rows times width), before the kernel's own limit.
const BAND_PIXELS: usize = 1 << 22;
/// Values kept per map for the percentiles: exact up to this many scored pixels, a regular
/// subsample beyond.
const QUANTILE_SAMPLES: usize = 1 << 22;
/// QC's MI runs at the first level (at least 1) whose longer side is at most this.
const MI_LEVEL_SIDE: usize = 2048;

/// Statistics, previews and flag cells of one map, accumulated band by band.
struct Accumulator {
    map: QualityMap,
    sum: f64,
    count: u64,
    samples: Vec<f32>,
    preview: BlockGrid,
    cells: BlockGrid,
}

/// The block side of the flag cells: at least four windows, at most 64 cells on the longer side.
pub fn flag_cell(width: usize, height: usize, radius: usize) -> usize {
    (4 * (2 * radius + 1)).max(width.max(height).div_ceil(64))
}

/// Computes the maps of a pair band by band, handing full-resolution rows to `sink`.
pub fn compute_quality<T>(
    source: &PairSource<'_>,
    options: &QualityOptions,
    kernel: &dyn BoxMapKernel,
    sink: &mut dyn MapSink,
    reporter: &Reporter<T>,
) -> Result<QualityResult> {
    let started = std::time::Instant::now();
    source.validate()?;
    if options.maps.is_empty() {
        return Err(Error::InvalidArgument("no quality map asked for".into()));
    }
    let bins = options.bins();
    if !(2..=256).contains(&bins) {
        return Err(Error::InvalidArgument(format!(
            "--bins {bins}: the MI histogram needs 2 to 256 bins"
        )));
    }
    let (w, h) = source.size();
    let r = options.radius;
    if r == 0 || 2 * r + 1 > w.min(h) {
        return Err(Error::InvalidArgument(format!(
            "window radius {r}: the window ({0} x {0} px) must be at least 3 px and fit the {w} x {h} image",
            2 * r + 1
        )));
    }
    let r2m2 = options.definition == Definition::R2m2;
    let cell = flag_cell(w, h, r);
    // A power of two, so that a preview is a display pyramid's level.
    let preview_cell = w.max(h).div_ceil(PREVIEW_SIDE).next_power_of_two();
    let stride = ((w * h) as f64 / QUANTILE_SAMPLES as f64)
        .sqrt()
        .ceil()
        .max(1.0) as usize;
    let mut accumulators: Vec<Accumulator> = QualityMap::ALL
        .into_iter()
        .filter(|&m| options.wants(m))
        .map(|map| Accumulator {
            map,
            sum: 0.0,
            count: 0,
            samples: Vec::new(),
            preview: BlockGrid::new(w, h, preview_cell),
            cells: BlockGrid::new(w, h, cell),
        })
        .collect();
    let mut texture = BlockGrid::new(w, h, cell);
    let mi_level = if r2m2 { 0 } else { mi_level(w, h) };
    let mi_cell = 1usize << mi_level;
    let wants_mi = options.wants(QualityMap::Mi) || options.wants(QualityMap::DmMi);
    let mut coarse =
        (!r2m2 && wants_mi).then(|| (BlockGrid::new(w, h, mi_cell), BlockGrid::new(w, h, mi_cell)));
    let band_rows = (BAND_PIXELS.min(kernel.max_band_pixels()) / w)
        .saturating_sub(2 * r)
        .clamp(1, h);
    let backend = if r2m2 { "cpu" } else { kernel.backend() };
    let mut pixels = 0u64;
    let mut y = 0;
    while y < h {
        reporter.check()?;
        let rows = band_rows.min(h - y);
        let band = source.load(y, rows, r);
        pixels += band.valid.iter().filter(|&&v| v).count() as u64;
        let values = if r2m2 {
            BandValues::R2m2(
                window::r2m2_band(
                    &band,
                    r,
                    bins,
                    options.wants(QualityMap::Mi),
                    options.wants(QualityMap::DmMi),
                )
                .into_iter()
                .map(|v| v.map(|x| x as f32))
                .collect(),
            )
        } else {
            let shift = |v: &Vec<f64>| v.par_iter().map(|&x| x as f32 - boxmaps::SHIFT).collect();
            let (f, m): (Vec<f32>, Vec<f32>) = (shift(&band.fixed), shift(&band.moving));
            let maps = kernel.run(&BoxBand {
                width: w,
                halo_above: band.halo_above,
                rows,
                radius: r,
                fixed: &f,
                moving: &m,
            })?;
            if let Some((cf, cm)) = coarse.as_mut() {
                for row in 0..rows {
                    let at = (band.halo_above + row) * w;
                    cf.add_row_f64(y + row, &band.fixed[at..at + w]);
                    cm.add_row_f64(y + row, &band.moving[at..at + w]);
                }
            }
            BandValues::Qc(maps)
        };
        // The texture grid and each map's rows and statistics side by side, each on its own
        // thread (profiled: done one map after the other, this took a fifth of the time at
        // 8192²). Every grid still adds its rows in order.
        let add_texture = || {
            let std = values.masked(values.std_column(), &band.valid);
            for row in 0..rows {
                texture.add_row(y + row, &std[row * w..(row + 1) * w]);
            }
        };
        let add_maps = || {
            accumulators
                .par_iter_mut()
                .map(|acc| {
                    let out = values.masked(values.column(acc.map)?, &band.valid);
                    acc.add(y, w, &out, stride);
                    Some(out)
                })
                .collect::<Vec<_>>()
        };
        let ((), rows_of) = rayon::join(add_texture, add_maps);
        for (acc, out) in accumulators.iter().zip(rows_of) {
            if let Some(out) = out {
                sink.rows(acc.map, y, out)?;
            }
        }
        y += rows;
        reporter.progress(Progress::at(Stage::Analyze, y as f32 / h as f32));
    }
    if let Some((cf, cm)) = coarse {
        reporter.check()?;
        let mi = window::mi_image(&cf.means_f64(), &cm.means_f64(), cf.cols, cf.rows, r, bins);
        emit_upsampled(source, &mi, &cf, band_rows, &mut accumulators, sink, stride)?;
    }
    let previews: Vec<(QualityMap, Preview)> = accumulators
        .iter()
        .filter(|a| options.maps.contains(&a.map))
        .map(|a| (a.map, Preview::of(&a.preview)))
        .collect();
    let flagged = options.flagged_map();
    let flag_list = accumulators
        .iter()
        .find(|a| a.map == flagged)
        .map(|a| poor_regions(a.map, &a.cells, &texture, w, h))
        .unwrap_or_default();
    let maps = accumulators
        .into_iter()
        .filter(|a| options.maps.contains(&a.map))
        .map(|a| (a.map.name().to_string(), a.stats()))
        .collect();
    Ok(QualityResult {
        report: QualityReport {
            definition: options.definition,
            radius: r,
            bins,
            mi_level,
            width: w,
            height: h,
            backend: backend.to_string(),
            pixels,
            maps,
            flagged_map: flagged.name().to_string(),
            flags: flag_list,
            seconds: started.elapsed().as_secs_f64(),
        },
        previews,
    })
}

/// One band's per-pixel values: the box maps `[mse, corr, dm_mse, fixed_std]` (QC), or R2M2's
/// `[mse, corr, dm_mse, mi, dm_mi, fixed_std]`.
enum BandValues {
    Qc(Vec<[f32; 4]>),
    R2m2(Vec<[f32; 6]>),
}

impl BandValues {
    /// The column holding `map`, `None` for QC's MI (computed on a coarser level).
    fn column(&self, map: QualityMap) -> Option<usize> {
        match (map, self) {
            (QualityMap::Mse, _) => Some(0),
            (QualityMap::Corr | QualityMap::DmCorr, _) => Some(1),
            (QualityMap::DmMse, _) => Some(2),
            (QualityMap::Mi, Self::R2m2(_)) => Some(3),
            (QualityMap::DmMi, Self::R2m2(_)) => Some(4),
            (QualityMap::Mi | QualityMap::DmMi, Self::Qc(_)) => None,
        }
    }

    /// The column of the fixed window's standard deviation.
    fn std_column(&self) -> usize {
        match self {
            Self::Qc(_) => 3,
            Self::R2m2(_) => 5,
        }
    }

    /// One column, NaN where not scored.
    fn masked(&self, column: usize, valid: &[bool]) -> Vec<f32> {
        match self {
            Self::Qc(values) => masked(values, valid, column),
            Self::R2m2(values) => masked(values, valid, column),
        }
    }
}

/// One column of per-pixel values, NaN where not scored.
fn masked<const N: usize>(values: &[[f32; N]], valid: &[bool], column: usize) -> Vec<f32> {
    values
        .par_iter()
        .zip(valid)
        .map(|(v, &ok)| if ok { v[column] } else { f32::NAN })
        .collect()
}

/// QC's MI level: the first level, at least 1, whose longer side is at most 2048 px.
pub fn mi_level(width: usize, height: usize) -> usize {
    let mut level = 1;
    while width.max(height) >> level > MI_LEVEL_SIDE {
        level += 1;
    }
    level
}

/// Hands the coarse MI map to the sink at full resolution (bilinear between block centres), for
/// `mi` and `dm_mi` alike: with each window's own min and max for the bins, subtracting the
/// window's mean changes no bin, so QC's dm_MI equals its MI.
fn emit_upsampled(
    source: &PairSource<'_>,
    coarse: &[f32],
    grid: &BlockGrid,
    band_rows: usize,
    accumulators: &mut [Accumulator],
    sink: &mut dyn MapSink,
    stride: usize,
) -> Result<()> {
    let (w, h) = source.size();
    let (cw, ch, cell) = (grid.cols, grid.rows, grid.cell as f64);
    let at = |cx: usize, cy: usize| coarse[cy.min(ch - 1) * cw + cx.min(cw - 1)];
    let mut y = 0;
    while y < h {
        let rows = band_rows.min(h - y);
        let valid = source.valid(y, rows);
        let mut out = vec![0f32; rows * w];
        for (r, row) in out.chunks_exact_mut(w).enumerate() {
            let fy = (((y + r) as f64 + 0.5) / cell - 0.5).max(0.0);
            let (cy, ty) = (fy as usize, (fy - fy.floor()) as f32);
            for (x, o) in row.iter_mut().enumerate() {
                let fx = ((x as f64 + 0.5) / cell - 0.5).max(0.0);
                let (cx, tx) = (fx as usize, (fx - fx.floor()) as f32);
                let top = at(cx, cy) * (1.0 - tx) + at(cx + 1, cy) * tx;
                let bottom = at(cx, cy + 1) * (1.0 - tx) + at(cx + 1, cy + 1) * tx;
                *o = if valid[r * w + x] {
                    top * (1.0 - ty) + bottom * ty
                } else {
                    f32::NAN
                };
            }
        }
        for acc in accumulators
            .iter_mut()
            .filter(|a| matches!(a.map, QualityMap::Mi | QualityMap::DmMi))
        {
            acc.add(y, w, &out, stride);
            sink.rows(acc.map, y, out.clone())?;
        }
        y += rows;
    }
    Ok(())
}

impl Accumulator {
    fn add(&mut self, y: usize, w: usize, rows: &[f32], stride: usize) {
        for (r, row) in rows.chunks_exact(w).enumerate() {
            let yy = y + r;
            let (mut sum, mut count) = (0.0, 0u64);
            for &v in row.iter().filter(|v| v.is_finite()) {
                sum += f64::from(v);
                count += 1;
            }
            self.sum += sum;
            self.count += count;
            if yy.is_multiple_of(stride) {
                let kept = row.iter().step_by(stride).filter(|v| v.is_finite());
                self.samples.extend(kept);
            }
            self.preview.add_row(yy, row);
            self.cells.add_row(yy, row);
        }
    }

    fn stats(mut self) -> MapStats {
        let n = self.samples.len();
        if n == 0 {
            return MapStats {
                mean: f64::NAN,
                median: f64::NAN,
                p5: f64::NAN,
                p95: f64::NAN,
            };
        }
        let mut quantile = |q: f64| {
            let k = ((q * (n - 1) as f64).round() as usize).min(n - 1);
            f64::from(*self.samples.select_nth_unstable_by(k, f32::total_cmp).1)
        };
        let (median, p5, p95) = (quantile(0.5), quantile(0.05), quantile(0.95));
        MapStats {
            mean: self.sum / self.count as f64,
            median,
            p5,
            p95,
        }
    }
}

/// Below this median local correlation (over the scored cells) the whole pair is flagged.
pub const WHOLE_PAIR_CORRELATION: f64 = 0.2;

/// The pixel bounds of every scored cell.
fn scored_bounds(
    scored: &[Option<f64>],
    cells: &BlockGrid,
    width: usize,
    height: usize,
) -> [usize; 4] {
    let group: Vec<usize> = (0..scored.len()).filter(|&i| scored[i].is_some()).collect();
    cells.rect(flags::bounds(&group, cells.cols), width, height)
}

/// The flag rule: a cell is scored when at least half a full cell's pixels were scored and the fixed
/// image has texture there (its mean window standard deviation is at least a quarter of the
/// median cell's and above 0.002): on flat ground no measure says anything. A scored cell is
/// poor when its mean is worse than the median of the scored cells by more than both four
/// robust standard deviations (1.4826 MAD) and a margin (0.3 for a correlation, half the median
/// for the others). Poor cells that touch (8-connected) form one flagged region. A correlation
/// whose median is under [`WHOLE_PAIR_CORRELATION`] flags the whole scored area instead.
pub fn poor_regions(
    map: QualityMap,
    cells: &BlockGrid,
    texture: &BlockGrid,
    width: usize,
    height: usize,
) -> Vec<Flag> {
    let sign = if map.higher_is_better() { 1.0 } else { -1.0 };
    let n = cells.cols * cells.rows;
    let area = |cx: usize, cy: usize| {
        let [_, _, cw, chh] = cells.rect([cx, cy, cx, cy], width, height);
        (cw * chh) as u32
    };
    let mut textures: Vec<f64> = (0..n)
        .filter_map(|i| texture.mean(i % cells.cols, i / cells.cols))
        .collect();
    let texture_floor = (0.25 * flags::median(&mut textures)).max(0.002);
    let scored: Vec<Option<f64>> = (0..n)
        .map(|i| {
            let (cx, cy) = (i % cells.cols, i / cells.cols);
            // Slivers at the right and bottom edges (under half a cell) are too noisy to judge.
            let full = (cells.cell * cells.cell) as u32;
            let enough = 2 * cells.count(cx, cy) >= area(cx, cy).max(full);
            let textured = texture.mean(cx, cy).is_some_and(|t| t >= texture_floor);
            cells
                .mean(cx, cy)
                .filter(|_| enough && textured)
                .map(|v| sign * v)
        })
        .collect();
    let mut values: Vec<f64> = scored.iter().flatten().copied().collect();
    if values.len() < 8 {
        return Vec::new();
    }
    let centre = flags::median(&mut values);
    let mut deviations: Vec<f64> = values.iter().map(|v| (v - centre).abs()).collect();
    let spread = 1.4826 * flags::median(&mut deviations);
    let margin = match map {
        QualityMap::Corr | QualityMap::DmCorr => 0.3,
        _ => 0.5 * centre.abs(),
    };
    // A correlation low over the whole pair is itself the failure (relative to its own median
    // nothing would stand out): one region over everything scored.
    if matches!(map, QualityMap::Corr | QualityMap::DmCorr) && centre < WHOLE_PAIR_CORRELATION {
        let [x, y, fw, fh] = scored_bounds(&scored, cells, width, height);
        return vec![Flag {
            x,
            y,
            width: fw,
            height: fh,
            score: centre,
            reason: format!(
                "poor_region: local {} is low over the whole pair (median {centre:.3} over textured regions): the images do not match there (a failed registration), or they differ in modality (flag on mi instead)",
                map.name()
            ),
        }];
    }
    let threshold = centre - (4.0 * spread).max(margin);
    let marked: Vec<bool> = scored
        .iter()
        .map(|v| v.is_some_and(|v| v < threshold))
        .collect();
    flags::components(&marked, cells.cols, cells.rows)
        .into_iter()
        .map(|group| {
            let score =
                sign * group.iter().map(|&i| scored[i].unwrap()).sum::<f64>() / group.len() as f64;
            let [x, y, fw, fh] = cells.rect(flags::bounds(&group, cells.cols), width, height);
            Flag {
                x,
                y,
                width: fw,
                height: fh,
                score,
                reason: format!(
                    "poor_region: local {} {score:.3} ({}) against {:.3} over the pair",
                    map.name(),
                    map.unit(),
                    sign * centre
                ),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
