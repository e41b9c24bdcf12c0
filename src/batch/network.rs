//! The mutual-information network of a set of images (`analysis::network` on their pixels):
//! each image reduced to a common sampling grid, translated onto the first by phase
//! correlation, the same N positions read from all; then the all-pairs MI, the DPI, the
//! reference and the series order; and its files (`mi.csv`, `network.json`, `network.png`).

use crate::analysis::network::{
    Edge, Estimator, SeriesOrder, Variable, closeness_centre, mi_matrix, permutation_threshold,
    prune, series_order,
};
use crate::job::{Progress, Reporter, Stage};
use crate::raster::GrayF32;
use crate::{Error, Result, io};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How the network is computed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetworkOptions {
    /// Pixels sampled per image (N).
    pub samples: usize,
    /// The MI estimator.
    pub estimator: Estimator,
    /// The DPI's tolerance (0: the weakest edge of every triangle goes).
    pub tolerance: f64,
    /// When given, edges below the MI of this p-value under a permutation null are dropped.
    pub p_value: Option<f64>,
    /// Seeds the sampled positions, the tie-breaking and the null.
    pub seed: u64,
}

impl Default for NetworkOptions {
    fn default() -> Self {
        Self {
            samples: 65_536,
            estimator: Estimator::Adaptive,
            tolerance: 0.0,
            p_value: None,
            seed: 1,
        }
    }
}

/// Random pairs drawn for the permutation null.
const NULL_PAIRS: usize = 200;

/// A computed network.
#[derive(Debug, Clone)]
pub struct Network {
    /// The images' names (file names), in input order.
    pub names: Vec<String>,
    /// The all-pairs MI (nats), symmetric, zero diagonal.
    pub mi: Vec<Vec<f64>>,
    /// The MI threshold applied before the DPI (0 without a null).
    pub threshold: f64,
    /// The edges the DPI keeps.
    pub edges: Vec<Edge>,
    /// The reference: the closeness centre of the pruned network.
    pub reference: usize,
    /// The order of the series.
    pub order: SeriesOrder,
    /// Each image on the sampling grid, aligned (for thumbnails).
    pub grids: Vec<GrayF32>,
    /// Seconds for the MI matrix alone.
    pub mi_seconds: f64,
}

/// The sampling grid for images shaped like `[width, height]`: about `samples` cells.
fn grid_size([width, height]: [usize; 2], samples: usize) -> [usize; 2] {
    let aspect = width as f64 / height.max(1) as f64;
    let gw = ((samples as f64 * aspect).sqrt().round() as usize).max(4);
    let gh = (samples as f64 / gw as f64).round().max(4.0) as usize;
    [gw, gh]
}

/// The least phase-correlation peak for a translation to be applied.
const MIN_PEAK: f64 = 0.1;

/// `grid` translated onto `reference` by phase correlation (edges repeated), when the peak is
/// clear; otherwise unchanged.
fn aligned(reference: &GrayF32, grid: GrayF32) -> GrayF32 {
    let (d, peak) = crate::register::init::phase_correlation(reference, &grid);
    let (dx, dy) = (d[0].round() as isize, d[1].round() as isize);
    if peak < MIN_PEAK || (dx == 0 && dy == 0) {
        return grid;
    }
    let (h, w) = grid.dim();
    GrayF32::from_shape_fn((h, w), |(y, x)| {
        let sy = (y as isize + dy).clamp(0, h as isize - 1) as usize;
        let sx = (x as isize + dx).clamp(0, w as isize - 1) as usize;
        grid[[sy, sx]]
    })
}

/// The network of images already on one grid (`grids`, aligned), named `names`.
pub fn network_of_grids(
    names: Vec<String>,
    grids: Vec<GrayF32>,
    options: &NetworkOptions,
) -> Result<Network> {
    if grids.len() < 3 {
        return Err(Error::InvalidArgument(format!(
            "a network needs at least three images, not {}",
            grids.len()
        )));
    }
    let cells = grids[0].len();
    // The same positions in every image: all cells, or a seeded subset of them.
    let positions: Vec<usize> = if cells <= options.samples {
        (0..cells).collect()
    } else {
        let mut rng = crate::rng::SplitMix64::new(options.seed);
        let mut all: Vec<usize> = (0..cells).collect();
        for i in 0..options.samples {
            let j = i + rng.below((cells - i) as u64) as usize;
            all.swap(i, j);
        }
        all.truncate(options.samples);
        all
    };
    let variables: Vec<Variable> = grids
        .iter()
        .enumerate()
        .map(|(k, g)| {
            let flat = g.as_slice().expect("standard layout");
            let values = positions.iter().map(|&p| flat[p]).collect();
            Variable::new(values, crate::rng::hash64(options.seed ^ k as u64))
        })
        .collect();
    let started = Instant::now();
    let mi = mi_matrix(&variables, options.estimator);
    let mi_seconds = started.elapsed().as_secs_f64();
    let threshold = options.p_value.map_or(0.0, |p| {
        permutation_threshold(&variables, options.estimator, p, NULL_PAIRS, options.seed)
    });
    let edges = prune(&mi, threshold, options.tolerance);
    let reference = closeness_centre(grids.len(), &edges);
    let order = series_order(&mi, &edges);
    Ok(Network {
        names,
        mi,
        threshold,
        edges,
        reference,
        order,
        grids,
        mi_seconds,
    })
}

/// The network of the images at `paths` (each read once, one at a time).
pub fn network_of_files<T>(
    paths: &[PathBuf],
    options: &NetworkOptions,
    reporter: &Reporter<T>,
) -> Result<Network> {
    let mut grids: Vec<GrayF32> = Vec::with_capacity(paths.len());
    let mut size = None;
    for (i, path) in paths.iter().enumerate() {
        reporter.check()?;
        reporter.progress(Progress::at(
            Stage::Load,
            0.8 * i as f32 / paths.len() as f32,
        ));
        let image = io::load_image(path)?;
        let grid = *size.get_or_insert(grid_size([image.width(), image.height()], options.samples));
        let g = crate::raster::area_mean(&image, grid);
        drop(image);
        grids.push(match grids.first() {
            Some(reference) => aligned(reference, g),
            None => g,
        });
    }
    reporter.progress(Progress::at(Stage::Analyze, 0.8));
    let names = paths.iter().map(|p| io::file_name(p)).collect();
    let network = network_of_grids(names, grids, options)?;
    reporter.progress(Progress::at(Stage::Analyze, 1.0));
    Ok(network)
}

/// `network.json`'s shape.
#[derive(serde::Serialize)]
struct NetworkFile<'a> {
    nodes: &'a [String],
    edges: Vec<NamedEdge<'a>>,
    reference: &'a str,
    reference_index: usize,
    centrality: &'static str,
    order: Vec<&'a str>,
    order_method: crate::analysis::network::OrderMethod,
    order_confidence: f64,
    estimator: Estimator,
    samples: usize,
    threshold: f64,
    tolerance: f64,
}

#[derive(serde::Serialize)]
struct NamedEdge<'a> {
    a: &'a str,
    b: &'a str,
    mi: f64,
}

/// Writes `mi.csv`, `network.json` and `network.png` into `dir` (created when missing).
pub fn write_network(network: &Network, options: &NetworkOptions, dir: &Path) -> Result<()> {
    io::ensure_output_dir(dir)?;
    let names = &network.names;
    let csv_path = dir.join("mi.csv");
    io::write_atomic(&csv_path, |w| {
        let mut out = csv::Writer::from_writer(w);
        let failed = |e: csv::Error| Error::write(&csv_path, e);
        out.write_record(std::iter::once("image").chain(names.iter().map(String::as_str)))
            .map_err(failed)?;
        for (name, row) in names.iter().zip(&network.mi) {
            let values = row.iter().map(|v| format!("{v:.6}"));
            out.write_record(std::iter::once(name.clone()).chain(values))
                .map_err(failed)?;
        }
        out.flush().map_err(|e| Error::write(&csv_path, e))
    })?;
    let file = NetworkFile {
        nodes: names,
        edges: network
            .edges
            .iter()
            .map(|e| NamedEdge {
                a: &names[e.a],
                b: &names[e.b],
                mi: e.mi,
            })
            .collect(),
        reference: &names[network.reference],
        reference_index: network.reference,
        centrality: "closeness (edge length 1/MI) in the pruned network",
        order: network
            .order
            .order
            .iter()
            .map(|&i| names[i].as_str())
            .collect(),
        order_method: network.order.method,
        order_confidence: network.order.confidence,
        estimator: options.estimator,
        samples: network.grids[0].len().min(options.samples),
        threshold: network.threshold,
        tolerance: options.tolerance,
    };
    let json = serde_json::to_string_pretty(&file)
        .map_err(|e| Error::Internal(format!("network.json: {e}")))?;
    let path = dir.join("network.json");
    io::write_atomic(&path, |w| {
        w.write_all(json.as_bytes())
            .map_err(|e| Error::write(&path, e))
    })?;
    crate::analysis::render::network_picture(
        names,
        &network.grids,
        &network.edges,
        &network.order.order,
        network.reference,
    )
    .save_png(&dir.join("network.png"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shuffled_stack_of_volume_slices_comes_back_in_order_around_a_middle_reference() {
        let slices = crate::synth::volume_slices(128, 12, 5);
        let hidden = [7, 2, 10, 0, 5, 11, 3, 8, 1, 6, 9, 4];
        let names = hidden.iter().map(|z| format!("slice{z:02}")).collect();
        let grids = hidden.iter().map(|&z| slices[z].clone()).collect();
        let network = network_of_grids(names, grids, &NetworkOptions::default()).unwrap();
        let slice_of = |i: usize| hidden[i];
        let order: Vec<usize> = network.order.order.iter().map(|&i| slice_of(i)).collect();
        let forward: Vec<usize> = (0..12).collect();
        let backward: Vec<usize> = (0..12).rev().collect();
        assert!(order == forward || order == backward, "{order:?}");
        assert_eq!(network.order.confidence, 1.0, "{:?}", network.edges);
        let reference = slice_of(network.reference);
        assert!((5..=6).contains(&reference), "reference slice {reference}");
        // The DPI keeps the neighbours' edges only.
        assert!(
            network
                .edges
                .iter()
                .all(|e| slice_of(e.a).abs_diff(slice_of(e.b)) == 1)
        );

        let dir = tempfile::tempdir().unwrap();
        write_network(&network, &NetworkOptions::default(), dir.path()).unwrap();
        let csv = std::fs::read_to_string(dir.path().join("mi.csv")).unwrap();
        let header = csv.lines().next().unwrap();
        assert!(header.starts_with("image,slice07,slice02"), "{header}");
        assert_eq!(csv.lines().count(), 13);
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("network.json")).unwrap())
                .unwrap();
        assert_eq!(json["nodes"].as_array().unwrap().len(), 12);
        assert_eq!(json["edges"].as_array().unwrap().len(), 11);
        assert_eq!(json["order"].as_array().unwrap().len(), 12);
        assert!(json["reference"].as_str().unwrap().starts_with("slice0"));
        assert!(dir.path().join("network.png").is_file());
    }
}
