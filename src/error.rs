//! The engine's error type: every failure is a value that names the file and the problem.

use std::path::{Path, PathBuf};

/// Result alias used across the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine.
///
/// Variants are grouped into *bad input* (the user can fix the file or the arguments; the CLI exits
/// with status 2) and other failures such as a full disk (status 1); see
/// [`Error::is_bad_input`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file does not exist.
    #[error("{path}: file not found")]
    NotFound {
        /// The missing path.
        path: PathBuf,
    },
    /// The file exists but could not be read (permissions, I/O error).
    #[error("{path}: cannot read: {cause}")]
    Unreadable {
        /// The path.
        path: PathBuf,
        /// The underlying I/O error (in the message, not chained as a source, so that it is
        /// printed once).
        cause: std::io::Error,
    },
    /// The file has zero bytes, or an image with zero width or height.
    #[error("{path}: {what}")]
    Empty {
        /// The path.
        path: PathBuf,
        /// What is empty.
        what: String,
    },
    /// The file ends before the data its header announces.
    #[error("{path}: truncated file: {detail}")]
    Truncated {
        /// The path.
        path: PathBuf,
        /// Decoder's detail.
        detail: String,
    },
    /// The file is not a valid file of the format it claims to be.
    #[error("{path}: corrupt or unrecognised file: {detail}")]
    Corrupt {
        /// The path.
        path: PathBuf,
        /// Decoder's detail.
        detail: String,
    },
    /// A valid file using a feature that Alinify does not read.
    #[error("{path}: unsupported: {detail}")]
    Unsupported {
        /// The path.
        path: PathBuf,
        /// What is unsupported.
        detail: String,
    },
    /// The image is larger than the configured limit or the memory available.
    #[error(
        "{path}: image too large: {width} x {height} x {channels} channels needs {needed_mib} MiB, {limit}"
    )]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// Claimed width.
        width: u64,
        /// Claimed height.
        height: u64,
        /// Channel count.
        channels: u64,
        /// Bytes the decoded image would take, in MiB.
        needed_mib: u64,
        /// Which limit it exceeds.
        limit: String,
    },
    /// Pixel values that cannot be registered (NaN, infinity).
    #[error("{path}: invalid pixel data: {detail}")]
    InvalidData {
        /// The path.
        path: PathBuf,
        /// What is invalid.
        detail: String,
    },
    /// The place given for an output cannot be used: a folder under a regular file, no
    /// permission, a read-only file system. The user must choose another place.
    #[error("{path}: {detail}")]
    OutputPlace {
        /// The path.
        path: PathBuf,
        /// Why it cannot be used.
        detail: String,
    },
    /// An output failed while it was written (a full disk, an I/O error): not the user's input.
    #[error("{path}: cannot write: {detail}")]
    Write {
        /// The path.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
    /// Arguments that do not fit together (sizes, options).
    #[error("{0}")]
    InvalidArgument(String),
    /// The job was cancelled by the user.
    #[error("cancelled")]
    Cancelled,
    /// The GPU backend failed or is missing.
    #[error("GPU: {0}")]
    Gpu(String),
    /// An internal failure that is not the user's input.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// True when the user can fix the failure by changing the input files or arguments
    /// (the CLI exits with status 2 for these).
    pub fn is_bad_input(&self) -> bool {
        !matches!(
            self,
            Error::Cancelled | Error::Gpu(_) | Error::Internal(_) | Error::Write { .. }
        )
    }

    /// Wraps an I/O error that happened while reading `path`.
    pub fn read(path: &Path, source: std::io::Error) -> Error {
        match source.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound { path: path.into() },
            std::io::ErrorKind::UnexpectedEof => Error::Truncated {
                path: path.into(),
                detail: "unexpected end of file".into(),
            },
            _ => Error::Unreadable {
                path: path.into(),
                cause: source,
            },
        }
    }

    /// Classifies a failure to create or open an output at `path`: a place the user must
    /// change ([`Error::OutputPlace`]) or a failure of the system ([`Error::Write`]).
    pub fn output(path: &Path, what: &str, e: std::io::Error) -> Error {
        use std::io::ErrorKind::*;
        match e.kind() {
            NotADirectory | AlreadyExists | PermissionDenied | ReadOnlyFilesystem
            | InvalidFilename | IsADirectory => Error::OutputPlace {
                path: path.into(),
                detail: format!("{what}: {e}"),
            },
            _ => Error::write(path, format!("{what}: {e}")),
        }
    }

    /// Wraps a failure to write `path`.
    pub fn write(path: &Path, detail: impl std::fmt::Display) -> Error {
        Error::Write {
            path: path.into(),
            detail: detail.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_disk_is_a_failure_and_a_bad_output_place_is_bad_input() {
        let p = Path::new("out/x.tif");
        let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
        assert!(!Error::output(p, "write", full).is_bad_input());
        assert!(!Error::write(p, "No space left on device").is_bad_input());
        let under_file = std::io::Error::from(std::io::ErrorKind::NotADirectory);
        assert!(Error::output(p, "create", under_file).is_bad_input());
    }
}
