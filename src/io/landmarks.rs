//! Landmark files: ANHIR's CSV (`,X,Y` with an index column), BigWarp's landmark CSV (`Name,
//! Active, [Id,] mvg-x, mvg-y, fix-x, fix-y`, no header) and a plain `x,y` CSV (header
//! optional). Coordinates are pixels, `(0, 0)` the centre of the top-left pixel, as everywhere
//! in Alinify.

use crate::{Error, Result};
use std::path::Path;

/// A landmark file's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LandmarkFormat {
    /// ANHIR / BIRL: a header `,X,Y`, then `index,x,y`.
    Anhir,
    /// BigWarp: `name,active,[id,]moving x,moving y,fixed x,fixed y` per row; both images'
    /// points in one file.
    BigWarp,
    /// `x,y` per row, with or without an `x,y` header.
    Plain,
}

/// Which image's points to take from a BigWarp file (the other formats hold one image's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The fixed image's (BigWarp's `fix-x, fix-y`).
    Fixed,
    /// The moving image's (BigWarp's `mvg-x, mvg-y`).
    Moving,
}

/// The points of one image, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Landmarks {
    /// The file's layout (writing back uses it).
    pub format: LandmarkFormat,
    /// The points `[x, y]`.
    pub points: Vec<[f64; 2]>,
}

/// Reads one image's landmarks; `side` picks the columns of a BigWarp file. BigWarp rows
/// marked inactive are skipped, so that both sides of a file stay paired.
pub fn read_landmarks(path: &Path, side: Side) -> Result<Landmarks> {
    let text = super::read_input_text(path)?;
    let bad = |line: usize, detail: String| Error::InvalidData {
        path: path.into(),
        detail: format!("line {line}: {detail}"),
    };
    let rows = csv_rows(&text).map_err(|(line, e)| bad(line, e))?;
    let Some((first_line, first)) = rows.first() else {
        return Err(Error::Empty {
            path: path.into(),
            what: "landmark file lists no points".into(),
        });
    };
    let format = sniff(first).map_err(|e| bad(*first_line, e))?;
    let header = match format {
        LandmarkFormat::Anhir => true,
        LandmarkFormat::Plain => first
            .iter()
            .zip(["x", "y"])
            .all(|(f, h)| f.eq_ignore_ascii_case(h)),
        LandmarkFormat::BigWarp => first[1].eq_ignore_ascii_case("active"),
    };
    let mut points = Vec::new();
    for (line, row) in rows.iter().skip(usize::from(header)) {
        let number = |i: usize| -> Result<f64> {
            let text = row.get(i).map(String::as_str).unwrap_or("");
            match text.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v),
                _ => Err(bad(*line, format!("{text:?} is not a finite coordinate"))),
            }
        };
        let columns = |want: &[usize]| -> Result<()> {
            if want.contains(&row.len()) {
                Ok(())
            } else {
                Err(bad(
                    *line,
                    format!(
                        "{} columns where the {format:?} layout has {want:?}",
                        row.len()
                    ),
                ))
            }
        };
        match format {
            LandmarkFormat::Anhir => {
                columns(&[3])?;
                points.push([number(1)?, number(2)?]);
            }
            LandmarkFormat::Plain => {
                columns(&[2])?;
                points.push([number(0)?, number(1)?]);
            }
            LandmarkFormat::BigWarp => {
                columns(&[6, 7])?;
                let active = row[1].to_ascii_lowercase().parse::<bool>().map_err(|_| {
                    bad(*line, format!("active is {:?}, not true or false", row[1]))
                })?;
                let at = row.len() - 4 + if side == Side::Fixed { 2 } else { 0 };
                let point = [number(at)?, number(at + 1)?];
                if active {
                    points.push(point);
                }
            }
        }
    }
    if points.is_empty() {
        return Err(Error::Empty {
            path: path.into(),
            what: "landmark file lists no points".into(),
        });
    }
    Ok(Landmarks { format, points })
}

/// A CSV row: its line number and its fields.
type Row = (usize, Vec<String>);

/// Non-empty CSV rows, fields trimmed and unquoted; an error carries its line number.
fn csv_rows(text: &str) -> std::result::Result<Vec<Row>, (usize, String)> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| (i + 1, e.to_string()))?;
        let line = record.position().map_or(i + 1, |p| p.line() as usize);
        if record.iter().all(str::is_empty) {
            continue;
        }
        rows.push((line, record.iter().map(str::to_owned).collect()));
    }
    Ok(rows)
}

/// The layout, from the first row.
fn sniff(first: &[String]) -> std::result::Result<LandmarkFormat, String> {
    let lower: Vec<String> = first.iter().map(|f| f.to_ascii_lowercase()).collect();
    match lower.as_slice() {
        [_, x, y] if x == "x" && y == "y" => Ok(LandmarkFormat::Anhir),
        [_, active, ..] if matches!(first.len(), 6 | 7) && is_bool_or_header(active) => {
            Ok(LandmarkFormat::BigWarp)
        }
        [_, _] => Ok(LandmarkFormat::Plain),
        _ => Err(format!(
            "{} columns: not an ANHIR (,X,Y), BigWarp (name,active,[id,]mvg-x,mvg-y,fix-x,fix-y) \
             or x,y landmark file",
            first.len()
        )),
    }
}

fn is_bool_or_header(field: &str) -> bool {
    matches!(field, "true" | "false" | "active")
}

/// Writes one image's `points` atomically: `x,y` for [`LandmarkFormat::Plain`], ANHIR's
/// layout otherwise (a BigWarp file holds pairs: [`write_pairs_bigwarp`] writes those).
pub fn write_landmarks(path: &Path, points: &[[f64; 2]], format: LandmarkFormat) -> Result<()> {
    let mut out = String::new();
    match format {
        LandmarkFormat::Plain => {
            out.push_str("x,y\n");
            for [x, y] in points {
                out.push_str(&format!("{x},{y}\n"));
            }
        }
        LandmarkFormat::Anhir | LandmarkFormat::BigWarp => {
            out.push_str(",X,Y\n");
            for (i, [x, y]) in points.iter().enumerate() {
                out.push_str(&format!("{i},{x},{y}\n"));
            }
        }
    }
    super::write_text_atomic(path, &out)
}

/// Writes pairs as BigWarp reads them: `"Pt-i","true",mvg-x,mvg-y,fix-x,fix-y`.
pub fn write_pairs_bigwarp(path: &Path, fixed: &[[f64; 2]], moving: &[[f64; 2]]) -> Result<()> {
    let mut out = String::new();
    for (i, (f, m)) in fixed.iter().zip(moving).enumerate() {
        out.push_str(&format!(
            "\"Pt-{i}\",\"true\",\"{}\",\"{}\",\"{}\",\"{}\"\n",
            m[0], m[1], f[0], f[1]
        ));
    }
    super::write_text_atomic(path, &out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, side: Side) -> Result<Landmarks> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.csv");
        std::fs::write(&path, text).unwrap();
        read_landmarks(&path, side)
    }

    #[test]
    fn the_three_layouts_are_read() {
        let anhir = read(",X,Y\n0,1.5,2\n1,3,4.25\n", Side::Fixed).unwrap();
        assert_eq!(anhir.format, LandmarkFormat::Anhir);
        assert_eq!(anhir.points, vec![[1.5, 2.0], [3.0, 4.25]]);
        assert_eq!(
            read("x,y\n1,2\n", Side::Fixed).unwrap().points,
            vec![[1.0, 2.0]]
        );
        assert_eq!(
            read("1,2\n3,4\n", Side::Moving).unwrap().format,
            LandmarkFormat::Plain
        );
        let bigwarp = "\"Pt-0\",\"true\",\"10.0\",\"20.0\",\"1.0\",\"2.0\"\n\
                       \"Pt-1\",\"false\",\"0\",\"0\",\"0\",\"0\"\n\
                       \"Pt-2\",\"true\",\"11\",\"21\",\"3\",\"4\"\n";
        let fixed = read(bigwarp, Side::Fixed).unwrap();
        assert_eq!(fixed.format, LandmarkFormat::BigWarp);
        assert_eq!(fixed.points, vec![[1.0, 2.0], [3.0, 4.0]]);
        assert_eq!(
            read(bigwarp, Side::Moving).unwrap().points,
            vec![[10.0, 20.0], [11.0, 21.0]]
        );
        // With BigWarp's Id column.
        let with_id = "Pt-0,true,7,10,20,1,2\n";
        assert_eq!(read(with_id, Side::Fixed).unwrap().points, vec![[1.0, 2.0]]);
        assert_eq!(
            read(with_id, Side::Moving).unwrap().points,
            vec![[10.0, 20.0]]
        );
    }

    #[test]
    fn malformed_rows_are_errors_naming_the_line() {
        for (text, needle) in [
            (",X,Y\n0,1,2\n1,nan,3\n", "line 3"),
            (",X,Y\n0,1\n", "2 columns"),
            ("a,b,c,d\n", "not an ANHIR"),
            ("Pt-0,maybe,1,2,3,4\n", "not an ANHIR"),
            ("x,1\n", "not a finite coordinate"),
            ("Pt-0,true,1,2,3,4\nPt-1,yes,1,2,3,4\n", "not true or false"),
            (",X,Y\n", "no points"),
            ("", "no points"),
        ] {
            let e = read(text, Side::Fixed).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn written_files_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let points = [[1.25, -2.0], [1e6, 0.1]];
        for format in [LandmarkFormat::Anhir, LandmarkFormat::Plain] {
            let path = dir.path().join("w.csv");
            write_landmarks(&path, &points, format).unwrap();
            let back = read_landmarks(&path, Side::Fixed).unwrap();
            assert_eq!((back.format, back.points.as_slice()), (format, &points[..]));
        }
        let path = dir.path().join("bw.csv");
        let moving = [[5.0, 6.0], [7.0, 8.0]];
        write_pairs_bigwarp(&path, &points, &moving).unwrap();
        assert_eq!(read_landmarks(&path, Side::Fixed).unwrap().points, points);
        assert_eq!(read_landmarks(&path, Side::Moving).unwrap().points, moving);
    }
}
