//! Inputs and outputs of one command, checked before any work: inputs must be regular files
//! (a FIFO or a device would block or never end), and no output may replace an input or another
//! output of the same command.

use crate::{Error, Result};
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

/// A path with what it is for, as the error message names it (`"--field"`, `"moving image"`).
pub type Labelled<'a> = (&'a str, &'a Path);

/// Opens an input file for reading after checking that it is a regular file, so that a FIFO
/// or a device is refused instead of blocking the command.
pub fn open_input(path: &Path) -> Result<std::fs::File> {
    check_regular(path)?;
    std::fs::File::open(path).map_err(|e| Error::read(path, e))
}

/// The largest text input read (transform files, parameter files, presets, manifests): far
/// above what a 300-megapixel registration writes (a B-spline of a million control points is
/// about 50 MB of JSON), low enough that a wrong file name cannot exhaust memory.
pub const MAX_TEXT_BYTES: u64 = 1 << 30;

/// Reads a whole text input (JSON, TOML, CSV) after the same check as [`open_input`].
pub fn read_input_text(path: &Path) -> Result<String> {
    use std::io::Read;
    let file = open_input(path)?;
    let bytes = file.metadata().map_err(|e| Error::read(path, e))?.len();
    if bytes > MAX_TEXT_BYTES {
        return Err(Error::Unsupported {
            path: path.into(),
            detail: format!(
                "is {} MiB; text inputs over {} MiB are not read",
                bytes >> 20,
                MAX_TEXT_BYTES >> 20
            ),
        });
    }
    let mut text = String::new();
    file.take(MAX_TEXT_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => Error::Corrupt {
                path: path.into(),
                detail: "not UTF-8 text".into(),
            },
            _ => Error::read(path, e),
        })?;
    Ok(text)
}

/// Refuses anything but a regular file (symbolic links are followed).
pub fn check_regular(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::read(path, e))?;
    if meta.is_file() {
        return Ok(());
    }
    let what = if meta.is_dir() {
        "a directory"
    } else {
        "a FIFO, socket or device"
    };
    Err(Error::Unsupported {
        path: path.into(),
        detail: format!("is not a regular file ({what})"),
    })
}

/// Fails with an error naming both paths when an output is one of the inputs (the same file
/// through any name: links, `..`, symbolic links), when two outputs are one path, or when an
/// output is an existing directory. Inputs that do not exist are skipped (their loader reports
/// them).
pub fn check_outputs(inputs: &[Labelled], outputs: &[Labelled]) -> Result<()> {
    let mut existing: HashMap<FileId, Labelled> = HashMap::new();
    for &(label, path) in inputs {
        if let Some(id) = file_id(path) {
            existing.entry(id).or_insert((label, path));
        }
    }
    let mut planned: HashMap<PathBuf, Labelled> = HashMap::new();
    for &(label, path) in outputs {
        if path.is_dir() {
            return Err(Error::InvalidArgument(format!(
                "{label} {}: is a directory; give a file name",
                path.display()
            )));
        }
        if let Some(id) = file_id(path)
            && let Some((input_label, input)) = existing.get(&id)
        {
            return Err(Error::InvalidArgument(format!(
                "{label} {} would replace the {input_label} {}; choose another output",
                path.display(),
                input.display()
            )));
        }
        if let Some((other_label, other)) = planned.insert(normalised(path), (label, path)) {
            return Err(Error::InvalidArgument(format!(
                "{label} {} and {other_label} {} are the same file; choose another output",
                path.display(),
                other.display()
            )));
        }
    }
    Ok(())
}

/// What makes two names one file: device and inode where the platform has them.
/// [`check_outputs`] for the files `names` a command writes into the folder `dir`.
pub fn check_folder_outputs<N: AsRef<Path>>(
    inputs: &[Labelled],
    dir: &Path,
    names: &[N],
) -> Result<()> {
    let outputs: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    let labelled: Vec<Labelled> = outputs.iter().map(|p| ("output", p.as_path())).collect();
    check_outputs(inputs, &labelled)
}

#[derive(Debug, PartialEq, Eq, Hash)]
enum FileId {
    #[cfg(unix)]
    Inode(u64, u64),
    #[cfg_attr(unix, allow(dead_code))]
    Canonical(PathBuf),
}

fn file_id(path: &Path) -> Option<FileId> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        Some(FileId::Inode(meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        std::fs::canonicalize(path).ok().map(FileId::Canonical)
    }
}

/// An absolute path for a file that may not exist yet: its deepest existing ancestor resolved
/// (symbolic links, `..`), the rest normalised lexically.
fn normalised(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut lexical = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::ParentDir => {
                lexical.pop();
            }
            Component::CurDir => {}
            other => lexical.push(other),
        }
    }
    let mut head = lexical.as_path();
    let mut tail = Vec::new();
    while !head.exists() {
        match (head.parent(), head.file_name()) {
            (Some(parent), Some(name)) => {
                tail.push(name.to_owned());
                head = parent;
            }
            _ => return lexical,
        }
    }
    let mut resolved = std::fs::canonicalize(head).unwrap_or_else(|_| head.to_path_buf());
    resolved.extend(tail.iter().rev());
    resolved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_naming_an_input_through_another_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("img.tif");
        std::fs::write(&input, b"x").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let other_name = dir.path().join("sub/../img.tif");
        let e = check_outputs(&[("image", &input)], &[("-o", &other_name)]).unwrap_err();
        assert!(e.to_string().contains("would replace the image"), "{e}");
        #[cfg(unix)]
        {
            let link = dir.path().join("link.tif");
            std::fs::hard_link(&input, &link).unwrap();
            assert!(check_outputs(&[("image", &input)], &[("-o", &link)]).is_err());
        }
        let fresh = dir.path().join("new.tif");
        check_outputs(&[("image", &input)], &[("-o", &fresh)]).unwrap();
    }

    #[test]
    fn two_outputs_on_one_path_and_directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("out/warped.tif");
        let b = dir.path().join("out/./x/../warped.tif");
        let e = check_outputs(&[], &[("warped image", &a), ("--field", &b)]).unwrap_err();
        assert!(e.to_string().contains("are the same file"), "{e}");
        let e = check_outputs(&[], &[("-o", dir.path())]).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_not_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success(), "mkfifo failed");
        let e = open_input(&fifo).unwrap_err();
        assert!(e.to_string().contains("is not a regular file"), "{e}");
        let e = check_regular(dir.path()).unwrap_err();
        assert!(e.to_string().contains("a directory"), "{e}");
    }
}
