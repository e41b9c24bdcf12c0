//! `alinify analyze network`: the mutual-information network of many images (the reference
//! and the order of a series), and the flags the batch shares with it.

use super::progress::Ui;
use alinify::analysis::network::Estimator;
use alinify::batch::manifest;
use alinify::batch::network::{Network, NetworkOptions, network_of_files, write_network};
use alinify::io;
use alinify::job::JobHandle;
use std::path::{Path, PathBuf};

/// How the MI network is computed (`analyze network`, `batch --fixed auto`, `--order auto`).
#[derive(clap::Args, Debug, Clone)]
pub struct NetworkFlags {
    /// MI estimator: adaptive (ARACNe-AP's adaptive partitioning) or histogram (32² bins).
    #[arg(long, default_value = "adaptive", value_parser = parse_estimator)]
    estimator: Estimator,
    /// Pixels sampled per image, on a common grid.
    #[arg(long, default_value_t = 65_536, value_parser = clap::value_parser!(u32).range(64..=16_777_216))]
    samples: u32,
    /// DPI tolerance: an edge goes when below (1 - tolerance) times both others of a triangle.
    #[arg(long, default_value_t = 0.0)]
    dpi_tolerance: f64,
    /// Drop edges below the MI of this p-value under a permutation null (e.g. 0.05).
    #[arg(long)]
    mi_p_value: Option<f64>,
}

fn parse_estimator(text: &str) -> Result<Estimator, String> {
    match text {
        "adaptive" => Ok(Estimator::Adaptive),
        "histogram" => Ok(Estimator::Histogram),
        _ => Err("adaptive or histogram".into()),
    }
}

impl NetworkFlags {
    /// The options they set.
    pub fn options(&self) -> anyhow::Result<NetworkOptions> {
        if !(0.0..1.0).contains(&self.dpi_tolerance) {
            anyhow::bail!(alinify::Error::InvalidArgument(format!(
                "--dpi-tolerance {} must be in 0..1",
                self.dpi_tolerance
            )));
        }
        if let Some(p) = self.mi_p_value
            && !(p > 0.0 && p < 1.0)
        {
            anyhow::bail!(alinify::Error::InvalidArgument(format!(
                "--mi-p-value {p} must be between 0 and 1"
            )));
        }
        Ok(NetworkOptions {
            samples: self.samples as usize,
            estimator: self.estimator,
            tolerance: self.dpi_tolerance,
            p_value: self.mi_p_value,
            ..NetworkOptions::default()
        })
    }
}

/// `analyze network`.
#[derive(clap::Args, Debug)]
pub struct NetworkArgs {
    /// The images, or one folder of them (sorted by name).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    #[command(flatten)]
    network: NetworkFlags,
    /// Output folder: mi.csv, network.json, network.png.
    #[arg(long)]
    out: PathBuf,
}

/// The images named: one folder's images, or the files as given.
pub fn image_list(images: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    Ok(match images {
        [dir] if dir.is_dir() => manifest::list_images(dir)?,
        files => {
            for f in files {
                io::check_regular(f)?;
            }
            files.to_vec()
        }
    })
}

/// Computes the network of `paths` with progress, and says what it found.
pub fn compute(paths: Vec<PathBuf>, options: NetworkOptions, ui: &Ui) -> anyhow::Result<Network> {
    let count = paths.len();
    let job = JobHandle::spawn("alinify-network", move |reporter| {
        network_of_files(&paths, &options, reporter)
    })?;
    let network = ui.watch(job)?;
    let names = &network.names;
    ui.say(format!(
        "{count} images, {} pairs in {:.2} s; {} edges after the DPI; reference {}; order ({:?}, confidence {:.2}): {}",
        count * (count - 1) / 2,
        network.mi_seconds,
        network.edges.len(),
        names[network.reference],
        network.order.method,
        network.order.confidence,
        network
            .order
            .order
            .iter()
            .map(|&i| names[i].as_str())
            .collect::<Vec<_>>()
            .join(" → ")
    ));
    Ok(network)
}

pub fn run(args: NetworkArgs, ui: &Ui) -> anyhow::Result<()> {
    let paths = image_list(&args.images)?;
    let inputs: Vec<io::Labelled> = paths.iter().map(|p| ("image", p.as_path())).collect();
    io::check_folder_outputs(
        &inputs,
        &args.out,
        &["mi.csv", "network.json", "network.png"],
    )?;
    let options = args.network.options()?;
    let network = compute(paths, options, ui)?;
    write_network(&network, &options, &args.out)?;
    ui.say(format!(
        "wrote mi.csv, network.json, network.png to {}",
        args.out.display()
    ));
    Ok(())
}

/// Writes the network beside a batch's results, in `<out>/network/`.
pub fn write_beside_batch(
    network: &Network,
    options: &NetworkOptions,
    out: &Path,
    ui: &Ui,
) -> anyhow::Result<()> {
    let dir = out.join("network");
    write_network(network, options, &dir)?;
    ui.say(format!("the MI network is in {}", dir.display()));
    Ok(())
}
