//! Atomic outputs: write to a temporary name in the target's directory, then rename.

use crate::{Error, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A file being written under a temporary name; [`AtomicFile::commit`] renames it into place,
/// and dropping it without a successful commit (an error, a failed rename) deletes it.
#[derive(Debug)]
pub struct AtomicFile {
    target: PathBuf,
    temp: PathBuf,
    writer: Option<BufWriter<File>>,
    renamed: bool,
}

impl AtomicFile {
    /// Creates the temporary file beside `target`.
    pub fn create(target: &Path) -> Result<Self> {
        let name = target
            .file_name()
            .ok_or_else(|| Error::write(target, "not a file name"))?
            .to_string_lossy();
        // Unique per process and per call, so that two threads writing the same target (two
        // warmups saving the pipeline cache) never share a temporary file.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temp = target.with_file_name(super::ownership::partial_name(&name, n));
        let file = File::create(&temp).map_err(|e| Error::output(target, "cannot create", e))?;
        Ok(Self {
            target: target.into(),
            temp,
            writer: Some(BufWriter::with_capacity(1 << 20, file)),
            renamed: false,
        })
    }

    /// The buffered writer (also `Seek`).
    pub fn writer(&mut self) -> &mut BufWriter<File> {
        self.writer.as_mut().expect("writer present until commit")
    }

    /// Flushes, syncs and renames the file to its target name.
    pub fn commit(mut self) -> Result<()> {
        let writer = self.writer.take().expect("writer present until commit");
        let file = writer
            .into_inner()
            .map_err(|e| Error::write(&self.target, e.error()))?;
        file.sync_all().map_err(|e| Error::write(&self.target, e))?;
        drop(file);
        std::fs::rename(&self.temp, &self.target).map_err(|e| Error::write(&self.target, e))?;
        self.renamed = true;
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.renamed {
            self.writer = None;
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Writes `target` atomically with `write`, which receives the buffered writer.
pub fn write_atomic(
    target: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<()>,
) -> Result<()> {
    let mut file = AtomicFile::create(target)?;
    write(file.writer())?;
    file.writer().flush().map_err(|e| Error::write(target, e))?;
    file.commit()
}

/// Writes `text` to `target` atomically.
pub fn write_text_atomic(target: &Path, text: &str) -> Result<()> {
    write_atomic(target, |w| {
        w.write_all(text.as_bytes())
            .map_err(|e| Error::write(target, e))
    })
}

/// Creates `dir` (and parents) and proves it writable by creating and removing a probe file,
/// so that a run fails before any work when its outputs could not be saved. Temporary files
/// that a killed run left in `dir` are removed.
pub fn ensure_output_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::output(dir, "cannot create output directory", e))?;
    let probe = dir.join(format!(".alinify-write-probe-{}", std::process::id()));
    File::create(&probe).map_err(|e| Error::output(dir, "output directory is not writable", e))?;
    let _ = std::fs::remove_file(probe);
    super::ownership::sweep_stale_partials(dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_writing_the_same_target_do_not_share_a_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("shared.bin");
        std::thread::scope(|scope| {
            for t in 0..8u8 {
                let target = &target;
                scope.spawn(move || {
                    for _ in 0..20 {
                        write_atomic(target, |w| {
                            w.write_all(&[t; 4096]).map_err(|e| Error::write(target, e))
                        })
                        .unwrap();
                    }
                });
            }
        });
        let bytes = std::fs::read(&target).unwrap();
        assert_eq!(bytes.len(), 4096);
        assert!(bytes.iter().all(|b| *b == bytes[0]), "a torn file");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn failed_write_leaves_nothing_and_success_renames() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.txt");
        let r = write_atomic(&target, |w| {
            w.write_all(b"partial").unwrap();
            Err(Error::Internal("fail".into()))
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        write_atomic(&target, |w| {
            w.write_all(b"ok").map_err(|e| Error::write(&target, e))
        })
        .unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"ok");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_rename_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("taken");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("inside"), b"x").unwrap();
        let r = write_atomic(&target, |w| {
            w.write_all(b"complete")
                .map_err(|e| Error::write(&target, e))
        });
        assert!(r.is_err());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["taken"]);
    }

    #[test]
    fn output_dir_under_a_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").unwrap();
        let e = ensure_output_dir(&file.join("sub")).unwrap_err();
        assert!(e.to_string().contains("cannot create output directory"));
    }
}
