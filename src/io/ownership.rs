//! Files owned by a running process: temporary files, scratch folders and folder locks carry
//! their owner's host and process id, so that what a killed run (`kill -9`, a node that went
//! down, a crashed window) left behind is recognised and cleared by the next run, and what a
//! live one holds is left alone.

use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// This machine's host name (`localhost` where it cannot be read).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Whether a process of this host with this id may still be running. Without `/proc` (not
/// Linux) every process counts as running, so nothing is ever removed by mistake.
fn process_may_run(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc = Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}

/// Whether the owner `host`/`pid` is certainly gone: it ran on this host and no longer runs.
fn owner_is_gone(host: &str, pid: u32) -> bool {
    host == host_name() && !process_may_run(pid)
}

/// The marker in a temporary file's name: `.NAME.partial-HOST-PID-N`.
const PARTIAL: &str = ".partial-";

/// The temporary name for `target`, unique per process and per call `n`.
pub(super) fn partial_name(target_name: &str, n: u64) -> String {
    format!(
        ".{target_name}{PARTIAL}{}-{}-{n}",
        host_name(),
        std::process::id()
    )
}

/// `HOST-PID-LAST` split into host, pid and the last part (the host may hold dashes).
fn owner_and_last(text: &str) -> Option<(&str, u32, &str)> {
    let mut parts = text.rsplitn(3, '-');
    let last = parts.next()?;
    let pid: u32 = parts.next()?.parse().ok()?;
    Some((parts.next()?, pid, last))
}

/// The owner (host, pid) of a temporary file's name, if it is one.
fn partial_owner(file_name: &str) -> Option<(&str, u32)> {
    let rest = &file_name[file_name.rfind(PARTIAL)? + PARTIAL.len()..];
    let (host, pid, n) = owner_and_last(rest)?;
    n.parse::<u64>().ok().map(|_| (host, pid))
}

/// Removes the temporary files in `dir` (not below) whose owner is gone; returns how many.
pub fn sweep_stale_partials(dir: &Path) -> usize {
    remove_entries_of_gone_owners(dir, Entry::File, |name| {
        name.starts_with('.').then(|| partial_owner(name)).flatten()
    })
}

/// What [`remove_entries_of_gone_owners`] removes.
#[derive(Clone, Copy)]
enum Entry {
    File,
    Folder,
}

/// Removes the entries of `dir` (not below) of kind `entry` whose name `owner` reads as a
/// (host, pid) that is gone; returns how many.
fn remove_entries_of_gone_owners(
    dir: &Path,
    entry: Entry,
    owner: impl Fn(&str) -> Option<(&str, u32)>,
) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            owner(&name.to_string_lossy()).is_some_and(|(host, pid)| owner_is_gone(host, pid))
                && e.file_type().is_ok_and(|t| match entry {
                    Entry::File => t.is_file(),
                    Entry::Folder => t.is_dir(),
                })
        })
        .filter(|e| {
            match entry {
                Entry::File => std::fs::remove_file(e.path()),
                Entry::Folder => std::fs::remove_dir_all(e.path()),
            }
            .is_ok()
        })
        .count()
}

/// A temporary folder owned by this process, `TEMP/PREFIXHOST-PID-RANDOM`, removed with its
/// contents when dropped. The folders of the same prefix that a process which is gone left
/// behind (killed, crashed: no drop ran) are removed when the next one is created: a GUI
/// session's folder holds warped images as big as the inputs.
#[derive(Debug)]
pub struct ScratchDir(tempfile::TempDir);

impl ScratchDir {
    /// Creates a scratch folder in the system's temporary folder; `what` names it in the error.
    pub fn create(prefix: &str, what: &str) -> Result<Self> {
        Self::create_in(&std::env::temp_dir(), prefix, what)
    }

    /// Creates a scratch folder in `parent`, after removing the stale ones of `prefix` there.
    pub fn create_in(parent: &Path, prefix: &str, what: &str) -> Result<Self> {
        sweep_stale_scratch(parent, prefix);
        tempfile::Builder::new()
            .prefix(&format!("{prefix}{}-{}-", host_name(), std::process::id()))
            .tempdir_in(parent)
            .map(Self)
            .map_err(|e| {
                // tempfile appends the path, which the error names already.
                let reason = e.to_string();
                let reason = reason.split(" at path ").next().unwrap_or_default();
                Error::write(
                    parent,
                    format!("cannot create {what} ({reason}); TMPDIR picks another folder"),
                )
            })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// The owner (host, pid) of a scratch folder's name after its prefix: `HOST-PID-RANDOM`.
fn scratch_owner(rest: &str) -> Option<(&str, u32)> {
    owner_and_last(rest).map(|(host, pid, _random)| (host, pid))
}

/// Removes the scratch folders of `prefix` in `parent` whose owner is gone; returns how many.
fn sweep_stale_scratch(parent: &Path, prefix: &str) -> usize {
    remove_entries_of_gone_owners(parent, Entry::Folder, |name| {
        name.strip_prefix(prefix).and_then(scratch_owner)
    })
}

/// An advisory lock on a folder (`DIR/.alinify.lock` holding `HOST PID`), released when dropped.
/// A lock whose owner is gone is taken over; a live one is refused.
#[derive(Debug)]
pub struct DirLock {
    path: PathBuf,
}

/// File name of a folder's lock.
pub const LOCK_FILE: &str = ".alinify.lock";

impl DirLock {
    /// Locks `dir` (which must exist) for `what` (named in the refusal, e.g. "batch").
    pub fn acquire(dir: &Path, what: &str) -> Result<Self> {
        let path = dir.join(LOCK_FILE);
        let owner = format!("{} {}\n", host_name(), std::process::id());
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    use std::io::Write;
                    file.write_all(owner.as_bytes())
                        .map_err(|e| Error::write(&path, e))?;
                    return Ok(Self { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let mut words = text.split_whitespace();
                    let (host, pid) = (words.next(), words.next().and_then(|p| p.parse().ok()));
                    match (host, pid) {
                        (Some(host), Some(pid)) if !owner_is_gone(host, pid) => {
                            return Err(Error::InvalidArgument(format!(
                                "{}: another alinify {what} is using this folder (process {pid} \
                                 on {host}); wait for it to end, or remove {} if it is gone",
                                dir.display(),
                                path.display()
                            )));
                        }
                        // A dead owner, or a lock cut short while it was written: stale.
                        _ => {
                            let _ = std::fs::remove_file(&path);
                        }
                    }
                }
                Err(e) => return Err(Error::write(&path, e)),
            }
        }
        Err(Error::write(&path, "could not take over a stale lock"))
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process id that is not running: a child that has exited and been reaped.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn temporary_names_carry_their_owner() {
        let name = partial_name("warped.tif", 7);
        assert_eq!(
            partial_owner(&name),
            Some((host_name().as_str(), std::process::id()))
        );
        assert_eq!(
            partial_owner(".a-b.partial-my-host-12-3"),
            Some(("my-host", 12))
        );
        assert_eq!(partial_owner("warped.tif"), None);
    }

    #[test]
    fn only_temporary_files_of_dead_processes_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let host = host_name();
        let dead = format!(".a.tif{PARTIAL}{host}-{}-0", dead_pid());
        let live = format!(".b.tif{PARTIAL}{host}-{}-0", std::process::id());
        let elsewhere = format!(".c.tif{PARTIAL}other-host-{}-0", dead_pid());
        for name in [&dead, &live, &elsewhere, &"d.tif".to_string()] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        assert_eq!(sweep_stale_partials(dir.path()), 1);
        assert!(!dir.path().join(&dead).exists());
        assert!(dir.path().join(&live).exists());
        assert!(dir.path().join(&elsewhere).exists());
    }

    #[test]
    fn scratch_folders_of_dead_processes_are_removed_when_the_next_is_created() {
        let parent = tempfile::tempdir().unwrap();
        let host = host_name();
        let dead = parent
            .path()
            .join(format!("alinify-x-{host}-{}-AbC123", dead_pid()));
        let elsewhere = parent
            .path()
            .join(format!("alinify-x-other-host-{}-AbC123", dead_pid()));
        let other_prefix = parent
            .path()
            .join(format!("alinify-y-{host}-{}-AbC123", dead_pid()));
        let unowned = parent.path().join("alinify-x-AbC123");
        for dir in [&dead, &elsewhere, &other_prefix, &unowned] {
            std::fs::create_dir(dir).unwrap();
            std::fs::write(dir.join("warped.tif"), b"x").unwrap();
        }
        let live = ScratchDir::create_in(parent.path(), "alinify-x-", "a test folder").unwrap();
        std::fs::write(live.path().join("warped.tif"), b"x").unwrap();
        assert!(!dead.exists(), "the dead process's folder is removed");
        for kept in [&elsewhere, &other_prefix, &unowned] {
            assert!(kept.exists(), "{} is kept", kept.display());
        }

        let second = ScratchDir::create_in(parent.path(), "alinify-x-", "a test folder").unwrap();
        assert!(
            live.path().join("warped.tif").exists(),
            "a live folder is kept"
        );
        let (first_path, second_path) = (live.path().to_owned(), second.path().to_owned());
        drop((live, second));
        assert!(
            !first_path.exists() && !second_path.exists(),
            "dropping removes them"
        );
    }

    #[test]
    fn a_scratch_folder_that_cannot_be_made_names_the_parent_once_and_the_way_out() {
        let parent = tempfile::tempdir().unwrap();
        let missing = parent.path().join("missing");
        let e = ScratchDir::create_in(&missing, "alinify-x-", "a test folder").unwrap_err();
        let text = e.to_string();
        assert_eq!(
            text.matches(&*missing.to_string_lossy()).count(),
            1,
            "{text}"
        );
        assert!(text.contains("cannot create a test folder"), "{text}");
        assert!(text.contains("TMPDIR"), "{text}");
    }

    #[test]
    fn a_live_lock_is_refused_and_a_dead_one_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let lock = DirLock::acquire(dir.path(), "batch").unwrap();
        let e = DirLock::acquire(dir.path(), "batch").unwrap_err();
        assert!(e.to_string().contains("another alinify batch"), "{e}");
        drop(lock);
        assert!(!dir.path().join(LOCK_FILE).exists());
        std::fs::write(
            dir.path().join(LOCK_FILE),
            format!("{} {}\n", host_name(), dead_pid()),
        )
        .unwrap();
        let _lock = DirLock::acquire(dir.path(), "batch").unwrap();
    }
}
