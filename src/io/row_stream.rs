//! A gray f32 TIFF written on its own thread from rows pushed in any chunks: several maps
//! computed together are streamed to their files at once, each holding at most a few bands.

use super::tiff::BandBuffer;
use super::{TiffSpec, write_tiff_streaming};
use crate::raster::SampleDepth;
use crate::{Error, Result};
use crossbeam_channel::{Receiver, Sender, bounded};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

/// A TIFF being written from pushed rows; it appears under its name only once every row came.
#[derive(Debug)]
pub struct RowStreamTiff {
    path: PathBuf,
    sender: Option<Sender<Vec<f32>>>,
    writer: Option<JoinHandle<Result<()>>>,
}

impl RowStreamTiff {
    /// Starts writing a `width x height` gray f32 TIFF at `path`.
    pub fn spawn(path: &Path, width: usize, height: usize) -> Result<Self> {
        let (sender, receiver) = bounded::<Vec<f32>>(2);
        let spec = TiffSpec {
            width,
            height,
            channels: 1,
            depth: SampleDepth::F32,
        };
        let target = path.to_path_buf();
        let writer = std::thread::Builder::new()
            .name("alinify-tiff-writer".into())
            .spawn(move || write_from(&target, spec, &receiver))
            .map_err(|e| Error::write(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            sender: Some(sender),
            writer: Some(writer),
        })
    }

    /// Hands over the next rows (any whole number of rows).
    pub fn push(&mut self, rows: Vec<f32>) -> Result<()> {
        let sent = self.sender.as_ref().is_some_and(|s| s.send(rows).is_ok());
        if sent {
            return Ok(());
        }
        // The writer stopped: its error says why.
        self.join()?;
        Err(Error::write(&self.path, "the writer stopped early"))
    }

    /// Waits until the file is complete and in place.
    pub fn finish(mut self) -> Result<()> {
        self.join()
    }

    fn join(&mut self) -> Result<()> {
        self.sender = None;
        match self.writer.take() {
            Some(handle) => handle.join().map_err(|_| {
                Error::Internal(format!("{}: the writer panicked", self.path.display()))
            })?,
            None => Ok(()),
        }
    }
}

impl Drop for RowStreamTiff {
    fn drop(&mut self) {
        // Unfinished: the writer sees the channel close, fails, and removes its temporary file.
        let _ = self.join();
    }
}

fn write_from(path: &Path, spec: TiffSpec, receiver: &Receiver<Vec<f32>>) -> Result<()> {
    let (mut pending, mut at) = (Vec::<f32>::new(), 0usize);
    write_tiff_streaming(path, spec, &mut |_band, buffer| {
        let BandBuffer::F32(out) = buffer else {
            return Err(Error::Internal("a gray f32 TIFF gets f32 bands".into()));
        };
        let mut filled = 0;
        while filled < out.len() {
            if at == pending.len() {
                pending = receiver
                    .recv()
                    .map_err(|_| Error::write(path, "incomplete: the rows stopped coming"))?;
                at = 0;
            }
            let n = (out.len() - filled).min(pending.len() - at);
            out[filled..filled + n].copy_from_slice(&pending[at..at + n]);
            (filled, at) = (filled + n, at + n);
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_pushed_in_odd_chunks_make_the_whole_image_and_an_unfinished_one_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("map.tif");
        let (w, h) = (7, 5);
        let values: Vec<f32> = (0..w * h).map(|i| i as f32 * 0.5).collect();
        let mut t = RowStreamTiff::spawn(&path, w, h).unwrap();
        t.push(values[..2 * w].to_vec()).unwrap();
        t.push(values[2 * w..].to_vec()).unwrap();
        t.finish().unwrap();
        let crate::raster::AnyImage::F32(r) = crate::io::load_image(&path).unwrap() else {
            panic!("not f32")
        };
        assert_eq!(r.data.as_slice().unwrap(), &values[..]);

        let partial = dir.path().join("partial.tif");
        let mut t = RowStreamTiff::spawn(&partial, w, h).unwrap();
        t.push(values[..w].to_vec()).unwrap();
        drop(t);
        assert!(!partial.exists());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "a temporary file stayed"
        );
    }
}
