//! Middlebury `.flo` displacement fields: little-endian f32 magic 202021.25, i32 width, i32
//! height, then `(u, v)` f32 pairs row by row. `|value| > 1e9` marks unknown ground truth.

use crate::io::write_atomic;
use crate::transform::DenseField;
use crate::{Error, Result};
use std::io::{BufReader, Read, Write};
use std::path::Path;

/// The `.flo` magic number.
pub const MAGIC: f32 = 202021.25;
/// Values above this magnitude mean "unknown" in ground-truth files.
pub const UNKNOWN_THRESHOLD: f32 = 1e9;

/// Reads a `.flo` file, checking its size against the header before allocating.
pub fn read_flo(path: &Path) -> Result<DenseField> {
    let file = super::open_input(path)?;
    let len = file.metadata().map_err(|e| Error::read(path, e))?.len();
    if len == 0 {
        return Err(Error::Empty {
            path: path.into(),
            what: "file is empty (0 bytes)".into(),
        });
    }
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut head = [0u8; 12];
    r.read_exact(&mut head).map_err(|e| Error::read(path, e))?;
    let magic = f32::from_le_bytes(head[0..4].try_into().expect("4 bytes"));
    if magic != MAGIC {
        return Err(Error::Corrupt {
            path: path.into(),
            detail: "not a Middlebury .flo file (bad magic number)".into(),
        });
    }
    let w = i32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
    let h = i32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
    if w < 0 || h < 0 {
        return Err(Error::Corrupt {
            path: path.into(),
            detail: format!("negative size {w} x {h}"),
        });
    }
    crate::io::check_dimensions(path, w as u64, h as u64, 2, 4)?;
    let (w, h) = (w as usize, h as usize);
    let expected = 12 + (w as u64) * (h as u64) * 8;
    if len < expected {
        return Err(Error::Truncated {
            path: path.into(),
            detail: format!("{w} x {h} field needs {expected} bytes, file has {len}"),
        });
    }
    let mut field = DenseField::zeros(w, h);
    let mut row = vec![0u8; w * 8];
    for y in 0..h {
        r.read_exact(&mut row).map_err(|e| Error::read(path, e))?;
        let (mut u, mut v) = (field.u.row_mut(y), field.v.row_mut(y));
        for (x, px) in row.chunks_exact(8).enumerate() {
            u[x] = f32::from_le_bytes(px[0..4].try_into().expect("4 bytes"));
            v[x] = f32::from_le_bytes(px[4..8].try_into().expect("4 bytes"));
            if !(u[x].is_finite() && v[x].is_finite()) {
                return Err(Error::InvalidData {
                    path: path.into(),
                    detail: format!(
                        "displacement at ({x}, {y}) is NaN or infinite (unknown values are \
                         marked by magnitudes over 1e9)"
                    ),
                });
            }
        }
    }
    Ok(field)
}

/// Writes a field as `.flo`, atomically.
pub fn write_flo(path: &Path, field: &DenseField) -> Result<()> {
    write_flo_rows(path, field.width(), field.height(), &|y, u, v| {
        u.copy_from_slice(field.u.row(y).as_slice().expect("standard layout"));
        v.copy_from_slice(field.v.row(y).as_slice().expect("standard layout"));
        Ok(())
    })
}

/// Fills one row of a field: `(y, u, v)`; called from several threads at once.
pub type FieldRowFiller<'a> = dyn Fn(usize, &mut [f32], &mut [f32]) -> Result<()> + Sync + 'a;

/// Rows filled in parallel before they are written.
const ROWS_PER_BLOCK: usize = 64;

/// Writes a `.flo` row by row: `row(y, u, v)` fills one row of each component, a block of
/// [`ROWS_PER_BLOCK`] rows at a time in parallel (streaming a 4096² field from a transform
/// took 0.35 s on one thread). Memory stays at one block, so fields of any size can be
/// streamed from a transform.
pub fn write_flo_rows(
    path: &Path,
    width: usize,
    height: usize,
    row: &FieldRowFiller<'_>,
) -> Result<()> {
    use rayon::prelude::*;
    let (wi, hi) = (i32::try_from(width), i32::try_from(height));
    let (Ok(wi), Ok(hi)) = (wi, hi) else {
        return Err(Error::write(path, "field too large for the .flo format"));
    };
    write_atomic(path, |out| {
        let io = |e: std::io::Error| Error::write(path, e);
        out.write_all(&MAGIC.to_le_bytes()).map_err(io)?;
        out.write_all(&wi.to_le_bytes()).map_err(io)?;
        out.write_all(&hi.to_le_bytes()).map_err(io)?;
        let mut bytes = vec![0u8; width * 8 * ROWS_PER_BLOCK.min(height)];
        for first in (0..height).step_by(ROWS_PER_BLOCK) {
            let rows = ROWS_PER_BLOCK.min(height - first);
            let block = &mut bytes[..width * 8 * rows];
            block
                .par_chunks_mut(width * 8)
                .enumerate()
                .try_for_each_init(
                    || (vec![0f32; width], vec![0f32; width]),
                    |(u, v), (r, line)| {
                        row(first + r, u, v)?;
                        for ((px, u), v) in line.chunks_exact_mut(8).zip(&*u).zip(&*v) {
                            px[0..4].copy_from_slice(&u.to_le_bytes());
                            px[4..8].copy_from_slice(&v.to_le_bytes());
                        }
                        Ok::<(), Error>(())
                    },
                )?;
            out.write_all(block).map_err(io)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flo_round_trips_and_rejects_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.flo");
        let mut f = DenseField::zeros(7, 5);
        f.u[[2, 3]] = 1.5;
        f.v[[4, 6]] = -2.25;
        write_flo(&p, &f).unwrap();
        let g = read_flo(&p).unwrap();
        assert_eq!(g.u, f.u);
        assert_eq!(g.v, f.v);
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 10]).unwrap();
        assert!(matches!(read_flo(&p), Err(Error::Truncated { .. })));
        f.v[[1, 1]] = f32::NAN;
        write_flo(&p, &f).unwrap();
        let e = read_flo(&p).unwrap_err();
        assert!(e.to_string().contains("(1, 1) is NaN"), "{e}");
        std::fs::write(&p, b"hello world, not a flow file").unwrap();
        assert!(matches!(read_flo(&p), Err(Error::Corrupt { .. })));
    }
}
