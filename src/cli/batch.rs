//! `alinify batch`: many pairs with an overall bar and a bar per running pair.

use super::progress::Ui;
use alinify::batch::{
    self, BatchEvent, BatchJob, BatchOptions, JobStatus, manifest, report::merge,
};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Register many pairs: a manifest, one reference against a folder, or a chain.
#[derive(clap::Args, Debug)]
pub struct BatchArgs {
    /// CSV with columns fixed,moving[,name][,mode][,preset]; paths relative to the manifest.
    manifest: Option<PathBuf>,
    /// Register every image of --moving-dir against this one; `auto`: against the reference
    /// of their MI network (its graph centre; the network goes to OUT/network/).
    #[arg(long, requires = "moving_dir")]
    fixed: Option<PathBuf>,
    /// Folder of images to register against --fixed.
    #[arg(long, requires = "fixed")]
    moving_dir: Option<PathBuf>,
    /// Register each image of this folder (sorted by name) against its predecessor, and compose
    /// the transforms back to the first image (<job>/to_first.json).
    #[arg(long)]
    chain: Option<PathBuf>,
    /// The order of --chain: `name` (sorted file names) or `auto` (the series order recovered
    /// from the images' MI network, which goes to OUT/network/).
    #[arg(long, default_value = "name", value_parser = ["name", "auto"], requires = "chain")]
    order: String,
    /// Batch folder: one sub-folder per pair, journal.jsonl, summary.csv/json, report.html.
    #[arg(long)]
    out: PathBuf,
    /// Registration settings for every pair (a pair's own mode and preset columns win).
    #[command(flatten)]
    settings: super::settings::SettingsArgs,
    /// Pairs registered at once (default: from cores, memory and image sizes). Threads per
    /// pair: the global --threads.
    #[arg(long)]
    jobs: Option<usize>,
    /// Skip pairs that finished in an earlier run of this batch (journal.jsonl).
    #[arg(long)]
    resume: bool,
    /// Run only part I of N of the batch (1-based), for cluster job arrays.
    #[arg(long, value_parser = manifest::parse_shard)]
    shard: Option<(usize, usize)>,
    /// Instead of registering, merge the reports of these shard folders into --out.
    #[arg(long, num_args = 1.., conflicts_with_all = ["manifest", "fixed", "chain", "resume", "shard"])]
    merge: Vec<PathBuf>,
}

/// The MI network of a folder's images (default options), written to `<out>/network/`.
fn network_of_folder(
    dir: &std::path::Path,
    out: &std::path::Path,
    ui: &Ui,
) -> anyhow::Result<(alinify::batch::network::Network, Vec<PathBuf>)> {
    let images = manifest::list_images(dir)?;
    let options = alinify::batch::network::NetworkOptions::default();
    let network = super::network::compute(images.clone(), options, ui)?;
    super::network::write_beside_batch(&network, &options, out, ui)?;
    Ok((network, images))
}

pub fn run(args: BatchArgs, threads: Option<usize>, ui: &Ui) -> anyhow::Result<()> {
    if !args.merge.is_empty() {
        let summary = merge(&args.merge, &args.out)?;
        ui.say(format!(
            "merged {} pairs ({} done, {} failed) into {}",
            summary.jobs.len(),
            summary.done,
            summary.failed,
            args.out.join("report.html").display()
        ));
        // The merged batch ends as the whole batch would have: a failed pair fails it.
        if summary.failed > 0 {
            anyhow::bail!(
                "{} of {} merged pairs failed (see {})",
                summary.failed,
                summary.jobs.len(),
                args.out.join("summary.csv").display()
            );
        }
        return Ok(());
    }
    let auto = |p: &PathBuf| p.as_os_str() == "auto" && !p.exists();
    let mut choice = None;
    let (jobs, is_chain) = match (&args.manifest, &args.fixed, &args.moving_dir, &args.chain) {
        (Some(m), None, None, None) => (manifest::read_manifest(m)?, false),
        (None, Some(f), Some(d), None) if auto(f) => {
            let (network, images) = network_of_folder(d, &args.out, ui)?;
            let reference = images[network.reference].clone();
            let said = format!(
                "reference chosen by the MI network (its closeness centre): {}",
                reference.display()
            );
            ui.say(&said);
            choice = Some(said);
            (manifest::against_reference(&reference, d)?, false)
        }
        (None, Some(f), Some(d), None) => (manifest::against_reference(f, d)?, false),
        (None, None, None, Some(c)) if args.order == "auto" => {
            let (network, images) = network_of_folder(c, &args.out, ui)?;
            let order = &network.order;
            let ordered = order.order.iter().map(|&i| images[i].clone()).collect();
            let names: Vec<&str> = order
                .order
                .iter()
                .map(|&i| network.names[i].as_str())
                .collect();
            choice = Some(format!(
                "chained in the order recovered from the MI network ({:?}, confidence {:.2}): {}",
                order.method,
                order.confidence,
                names.join(" → ")
            ));
            (manifest::chain_of(ordered)?, true)
        }
        (None, None, None, Some(c)) => (manifest::chain(c)?, true),
        _ => anyhow::bail!(alinify::Error::InvalidArgument(
            "give one of: MANIFEST.csv, --fixed F --moving-dir D, --chain DIR (or --merge DIR...)"
                .into()
        )),
    };
    let total = jobs.len();
    let jobs: Vec<BatchJob> = match args.shard {
        Some((i, n)) => manifest::shard(jobs, i, n),
        None => jobs,
    };
    let options = args.settings.options()?;
    let plan = batch::auto_plan(&jobs, args.jobs, threads);
    ui.say(format!(
        "{} of {total} pairs{}; {} at once x {} threads",
        jobs.len(),
        args.shard
            .map(|(i, n)| format!(" (shard {i}/{n})"))
            .unwrap_or_default(),
        plan.jobs,
        plan.threads
    ));
    let batch_options = BatchOptions {
        out_dir: args.out.clone(),
        options,
        plan,
        resume: args.resume,
        choice,
    };
    let bars = Bars::new(ui, jobs.len());
    let sink = {
        let bars = bars.clone();
        Arc::new(move |event: BatchEvent| bars.handle(event))
    };
    let cancel = ui.ctrl_c_token();
    let summary = batch::run_batch(
        jobs,
        &batch_options,
        &batch::BatchControl::new(cancel),
        sink,
    )?;
    bars.finish();
    if is_chain {
        let n = batch::compose_chain(&args.out, &summary.records)?;
        ui.say(format!(
            "{n} transforms composed back to the first image ({})",
            batch::TO_FIRST
        ));
    }
    let failed = summary.failed();
    ui.say(format!(
        "{} pairs in {:.1} s: {} done, {failed} failed; {}",
        summary.records.len(),
        summary.seconds,
        summary.records.len() - failed,
        args.out.join("report.html").display()
    ));
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} pairs failed (see {})",
            summary.records.len(),
            args.out.join("summary.csv").display()
        );
    }
    Ok(())
}

/// The terminal view of a batch: an overall bar and one bar per running pair, or plain lines
/// when stderr is not a terminal.
#[derive(Clone)]
struct Bars {
    multi: Option<MultiProgress>,
    overall: Option<ProgressBar>,
    running: Arc<Mutex<HashMap<usize, ProgressBar>>>,
    quiet: bool,
}

impl Bars {
    fn new(ui: &Ui, total: usize) -> Self {
        if !ui.bars() {
            return Self {
                multi: None,
                overall: None,
                running: Default::default(),
                quiet: ui.quiet(),
            };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let overall = multi.add(ProgressBar::new(total as u64));
        overall.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} pairs, {per_sec}, ETA {eta} {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        overall.enable_steady_tick(Duration::from_millis(200));
        Self {
            multi: Some(multi),
            overall: Some(overall),
            running: Default::default(),
            quiet: false,
        }
    }

    fn say(&self, line: String) {
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(line);
            }
            None if !self.quiet => eprintln!("{line}"),
            None => {}
        }
    }

    fn handle(&self, event: BatchEvent) {
        match event {
            BatchEvent::Started { job } => {
                if let Some(multi) = &self.multi {
                    let bar = multi.add(ProgressBar::new(1000));
                    bar.set_style(
                        ProgressStyle::with_template("  {prefix:20!} [{bar:20}] {msg}")
                            .expect("valid template")
                            .progress_chars("=> "),
                    );
                    bar.set_prefix(job.name.clone());
                    self.running.lock().unwrap().insert(job.index, bar);
                }
            }
            BatchEvent::Progress { index, progress } => {
                if let Some(bar) = self.running.lock().unwrap().get(&index) {
                    bar.set_position((progress.fraction.clamp(0.0, 1.0) * 1000.0) as u64);
                    bar.set_message(progress.describe());
                }
            }
            BatchEvent::Finished { record, resumed } => {
                if let Some(bar) = self.running.lock().unwrap().remove(&record.index) {
                    bar.finish_and_clear();
                    if let Some(multi) = &self.multi {
                        multi.remove(&bar);
                    }
                }
                if let Some(overall) = &self.overall {
                    overall.inc(1);
                }
                let line = match (record.status, resumed) {
                    (JobStatus::Done, true) => {
                        format!("skipped {} (finished earlier)", record.name)
                    }
                    (JobStatus::Done, false) => format!(
                        "done    {} in {:.2} s, NCC {:.4} -> {:.4}{}",
                        record.name,
                        record.wall_seconds,
                        record.ncc_before.unwrap_or(f64::NAN),
                        record.ncc_after.unwrap_or(f64::NAN),
                        if record.flags.is_empty() {
                            String::new()
                        } else {
                            format!(" [{}]", record.flags.join(", "))
                        }
                    ),
                    (status, _) => format!(
                        "{:<7} {}: {}",
                        status.label(),
                        record.name,
                        record.error.as_deref().unwrap_or("unknown error")
                    ),
                };
                self.say(line);
            }
        }
    }

    fn finish(&self) {
        if let Some(overall) = &self.overall {
            overall.finish_and_clear();
        }
    }
}
