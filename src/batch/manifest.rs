//! What a batch registers: a manifest CSV, one reference against a folder, or a chain.

use crate::register::{Mode, Settings};
use crate::{Error, Result};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// One pair of a batch.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BatchJob {
    /// Position in the batch (0-based); shards split on it.
    pub index: usize,
    /// Unique name: the job's output folder under the batch folder.
    pub name: String,
    /// The reference image.
    pub fixed: PathBuf,
    /// The image aligned to it.
    pub moving: PathBuf,
    /// Mode for this pair (else the batch's).
    pub mode: Option<Mode>,
    /// Preset for this pair (else the batch's): a bundled preset's bare name, or a file.
    pub preset: Option<PathBuf>,
}

/// A manifest's preset column: a bundled preset's name stays a bare name (unless a file of
/// that name lies beside the manifest), anything else is a file relative to the manifest.
fn preset_column(base: &Path, value: &str) -> PathBuf {
    let beside = base.join(value);
    if Settings::bundled(value).is_some() && !beside.exists() {
        PathBuf::from(value)
    } else {
        beside
    }
}

/// Image file extensions a folder listing picks up.
const IMAGE_EXTENSIONS: &[&str] = &["tif", "tiff", "png", "jpg", "jpeg"];

/// Reads `fixed,moving[,name][,mode][,preset]` rows; paths are relative to the manifest's
/// folder. A first row starting with `fixed` is a header. Empty names default to the moving
/// image's file stem; names are made unique.
pub fn read_manifest(path: &Path) -> Result<Vec<BatchJob>> {
    let text = crate::io::read_input_text(path)?;
    let base = path.parent().unwrap_or(Path::new("."));
    let bad = |line: usize, detail: String| Error::InvalidData {
        path: path.into(),
        detail: format!("line {line}: {detail}"),
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let mut jobs = Vec::new();
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(|e| bad(row + 1, e.to_string()))?;
        let line = record.position().map_or(row + 1, |p| p.line() as usize);
        let field = |i: usize| record.get(i).filter(|s| !s.is_empty());
        if row == 0 && field(0).is_some_and(|f| f.eq_ignore_ascii_case("fixed")) {
            continue;
        }
        if record.iter().all(|f| f.is_empty()) {
            continue;
        }
        if record.len() > 5 {
            return Err(bad(
                line,
                format!(
                    "{} columns; expected fixed,moving[,name][,mode][,preset]",
                    record.len()
                ),
            ));
        }
        let (Some(fixed), Some(moving)) = (field(0), field(1)) else {
            return Err(bad(line, "a row needs a fixed and a moving image".into()));
        };
        let mode = field(3)
            .map(|m| m.parse::<Mode>().map_err(|e| bad(line, e)))
            .transpose()?;
        jobs.push(BatchJob {
            index: jobs.len(),
            name: field(2).map(str::to_owned).unwrap_or_default(),
            fixed: base.join(fixed),
            moving: base.join(moving),
            mode,
            preset: field(4).map(|p| preset_column(base, p)),
        });
    }
    if jobs.is_empty() {
        return Err(Error::InvalidData {
            path: path.into(),
            detail: "the manifest lists no pairs".into(),
        });
    }
    finish_names(&mut jobs)?;
    Ok(jobs)
}

/// Every image in `dir` (sorted by name) against `fixed`, skipping `fixed` itself.
pub fn against_reference(fixed: &Path, dir: &Path) -> Result<Vec<BatchJob>> {
    let fixed_canonical = fixed.canonicalize().map_err(|e| Error::read(fixed, e))?;
    let mut jobs: Vec<BatchJob> = list_images(dir)?
        .into_iter()
        .filter(|p| p.canonicalize().ok().as_ref() != Some(&fixed_canonical))
        .enumerate()
        .map(|(index, moving)| BatchJob {
            index,
            name: String::new(),
            fixed: fixed.to_path_buf(),
            moving,
            mode: None,
            preset: None,
        })
        .collect();
    finish_names(&mut jobs)?;
    Ok(jobs)
}

/// Each image in `dir` (sorted by name) against its predecessor.
pub fn chain(dir: &Path) -> Result<Vec<BatchJob>> {
    let images = list_images(dir)?;
    if images.len() < 2 {
        return Err(Error::InvalidArgument(format!(
            "{}: a chain needs at least two images",
            dir.display()
        )));
    }
    chain_of(images)
}

/// Each of `images` against the one before it, in the order given.
pub fn chain_of(images: Vec<PathBuf>) -> Result<Vec<BatchJob>> {
    let mut jobs: Vec<BatchJob> = images
        .windows(2)
        .enumerate()
        .map(|(index, pair)| BatchJob {
            index,
            name: String::new(),
            fixed: pair[0].clone(),
            moving: pair[1].clone(),
            mode: None,
            preset: None,
        })
        .collect();
    finish_names(&mut jobs)?;
    Ok(jobs)
}

/// The images in `dir` (.tif, .png, .jpg), sorted by name; an error when there are none.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::read(dir, e))?;
    let mut images: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    images.sort();
    if images.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{}: no images (.tif, .png, .jpg) in this folder",
            dir.display()
        )));
    }
    Ok(images)
}

/// Names a batch folder uses for itself, which no job may take.
pub const RESERVED_NAMES: [&str; 6] = [
    super::journal::FILE,
    "network",
    super::report::REPORT_FILES[0],
    super::report::REPORT_FILES[1],
    super::report::REPORT_FILES[2],
    crate::io::LOCK_FILE,
];

/// Default names from the moving image's stem; rejects names that are not plain folder names
/// or that the batch folder uses for its own reports. Repeats get `-2`, `-3`, ..., skipping
/// every name given explicitly anywhere in the batch, so that a renamed job never collides
/// with a later one.
fn finish_names(jobs: &mut [BatchJob]) -> Result<()> {
    let explicit: HashSet<String> = jobs
        .iter()
        .filter(|j| !j.name.is_empty())
        .map(|j| j.name.clone())
        .collect();
    let mut used: HashSet<String> = HashSet::new();
    for job in jobs.iter_mut() {
        let given = !job.name.is_empty();
        if !given {
            job.name = job
                .moving
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| format!("pair-{}", job.index + 1));
        }
        let plain = !job.name.contains(['/', '\\']) && job.name != "." && job.name != "..";
        if !plain {
            return Err(Error::InvalidArgument(format!(
                "job name {:?} must be a plain folder name",
                job.name
            )));
        }
        let reserved = |name: &str| RESERVED_NAMES.iter().any(|r| r.eq_ignore_ascii_case(name));
        if given && reserved(&job.name) {
            return Err(Error::InvalidArgument(format!(
                "job name {:?} is the batch's own report file; choose another name",
                job.name
            )));
        }
        let free = |name: &str| {
            !used.contains(name) && !reserved(name) && (given || !explicit.contains(name))
        };
        if !free(&job.name) {
            let base = job.name.clone();
            let free = |name: &str| !used.contains(name) && !explicit.contains(name);
            job.name = (2..)
                .map(|k| format!("{base}-{k}"))
                .find(|name| free(name))
                .expect("an unused suffix exists");
        }
        used.insert(job.name.clone());
    }
    Ok(())
}

/// Keeps the jobs of shard `i` of `n` (1-based `i`): those whose index is `i - 1` modulo `n`.
pub fn shard(jobs: Vec<BatchJob>, i: usize, n: usize) -> Vec<BatchJob> {
    jobs.into_iter().filter(|j| j.index % n == i - 1).collect()
}

/// Parses `I/N` with `1 <= I <= N`.
pub fn parse_shard(text: &str) -> std::result::Result<(usize, usize), String> {
    let (i, n) = text.split_once('/').ok_or("expected I/N, e.g. 2/8")?;
    let i: usize = i
        .trim()
        .parse()
        .map_err(|_| format!("bad shard index {i:?}"))?;
    let n: usize = n
        .trim()
        .parse()
        .map_err(|_| format!("bad shard count {n:?}"))?;
    if n == 0 || i == 0 || i > n {
        return Err(format!("shard {i}/{n}: need 1 <= I <= N"));
    }
    Ok((i, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_resolve_paths_names_modes_and_reject_bad_rows() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("m.csv");
        std::fs::write(
            &manifest,
            "fixed,moving,name,mode,preset\n\
             a/f.tif, a/m.tif ,,fast,\n\
             # a comment\n\
             b/f.tif,a/m.tif,,,p.toml\n\
             c/f.tif,c/x.png,third,accurate\n\
             d/f.tif,d/m.tif,fourth,,cross-stain\n",
        )
        .unwrap();
        let jobs = read_manifest(&manifest).unwrap();
        assert_eq!(jobs.len(), 4);
        // A bundled preset by name; a file of that name beside the manifest would win.
        assert_eq!(jobs[3].preset, Some(PathBuf::from("cross-stain")));
        assert_eq!(
            preset_column(dir.path(), "p.toml"),
            dir.path().join("p.toml")
        );
        std::fs::write(dir.path().join("cross-stain"), "").unwrap();
        assert_eq!(
            preset_column(dir.path(), "cross-stain"),
            dir.path().join("cross-stain")
        );
        assert_eq!(jobs[0].fixed, dir.path().join("a/f.tif"));
        assert_eq!(jobs[0].moving, dir.path().join("a/m.tif"));
        assert_eq!(jobs[0].mode, Some(Mode::Fast));
        assert_eq!(
            [
                jobs[0].name.as_str(),
                jobs[1].name.as_str(),
                jobs[2].name.as_str()
            ],
            ["m", "m-2", "third"]
        );
        assert_eq!(jobs[1].preset, Some(dir.path().join("p.toml")));
        assert_eq!(jobs[2].index, 2);

        for bad in [
            "fixed,moving\nonly-one\n",
            "x.tif,y.tif,n,warp\n",
            "",
            "a,b,../up\n",
        ] {
            std::fs::write(&manifest, bad).unwrap();
            assert!(read_manifest(&manifest).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn renamed_repeats_never_take_a_given_name_or_a_report_file() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("m.csv");
        std::fs::write(
            &manifest,
            "a.tif,b.tif,x\nc.tif,d.tif,x\ne.tif,f.tif,x-2\ng.tif,journal.jsonl.tif\n",
        )
        .unwrap();
        let names: Vec<String> = read_manifest(&manifest)
            .unwrap()
            .into_iter()
            .map(|j| j.name)
            .collect();
        assert_eq!(names, ["x", "x-3", "x-2", "journal.jsonl-2"]);
        std::fs::write(&manifest, "a.tif,b.tif,summary.csv\n").unwrap();
        let e = read_manifest(&manifest).unwrap_err();
        assert!(e.to_string().contains("the batch's own report file"), "{e}");
    }

    #[test]
    fn shards_are_disjoint_and_cover_the_batch() {
        let jobs: Vec<BatchJob> = (0..10)
            .map(|index| BatchJob {
                index,
                name: format!("j{index}"),
                fixed: "f".into(),
                moving: "m".into(),
                mode: None,
                preset: None,
            })
            .collect();
        let mut all: Vec<usize> = (1..=3)
            .flat_map(|i| shard(jobs.clone(), i, 3))
            .map(|j| j.index)
            .collect();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_eq!(parse_shard("2/3"), Ok((2, 3)));
        assert!(
            parse_shard("0/3").is_err() && parse_shard("4/3").is_err() && parse_shard("x").is_err()
        );
    }
}
