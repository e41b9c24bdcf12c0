//! Batch reports: `summary.csv`, `summary.json` and `report.html`, written atomically; and the
//! merge of shard folders into one report.

use super::{JobRecord, JobStatus};
use crate::io::write_atomic;
use crate::{Error, Result};
use std::io::Write;
use std::path::{Component, Path, PathBuf};

/// A job in a report: its record and its output folder relative to the report's folder.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReportRow {
    /// What the job did.
    #[serde(flatten)]
    pub record: JobRecord,
    /// Its output folder, relative to the report's folder.
    pub folder: PathBuf,
}

/// `summary.json`: the batch's rows.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SummaryFile {
    /// Always `"alinify-batch-summary"`.
    pub format: String,
    /// Jobs done.
    pub done: usize,
    /// Jobs failed.
    pub failed: usize,
    /// Every job, by index.
    pub jobs: Vec<ReportRow>,
    /// How the pairs were chosen when the batch chose them (the MI network's reference or
    /// order), else absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choice: Option<String>,
}

const FORMAT: &str = "alinify-batch-summary";

/// Writes the three reports for `records` (job folders `base/<name>`, relative to `out_dir`).
pub fn write_reports(
    out_dir: &Path,
    records: &[JobRecord],
    base: &Path,
    choice: Option<&str>,
) -> Result<()> {
    let rows: Vec<ReportRow> = records
        .iter()
        .map(|r| ReportRow {
            record: r.clone(),
            folder: base.join(&r.name),
        })
        .collect();
    write_rows(out_dir, &rows, choice)
}

fn write_rows(out_dir: &Path, rows: &[ReportRow], choice: Option<&str>) -> Result<()> {
    let done = rows
        .iter()
        .filter(|r| r.record.status == JobStatus::Done)
        .count();
    let summary = SummaryFile {
        format: FORMAT.into(),
        done,
        failed: rows.len() - done,
        jobs: rows.to_vec(),
        choice: choice.map(str::to_string),
    };
    let json = out_dir.join("summary.json");
    write_atomic(&json, |w| {
        serde_json::to_writer_pretty(&mut *w, &summary).map_err(|e| Error::write(&json, e))
    })?;
    let csv_path = out_dir.join("summary.csv");
    write_atomic(&csv_path, |w| {
        write_csv(w, rows).map_err(|e| Error::write(&csv_path, e))
    })?;
    let html = out_dir.join("report.html");
    crate::io::write_text_atomic(&html, &render_html(&summary))
}

fn write_csv(w: &mut dyn Write, rows: &[ReportRow]) -> std::result::Result<(), csv::Error> {
    let mut out = csv::Writer::from_writer(w);
    out.write_record([
        "index",
        "name",
        "status",
        "error",
        "mode",
        "backend",
        "fixed",
        "moving",
        "load_s",
        "pyramid_s",
        "register_s",
        "warp_s",
        "write_s",
        "total_s",
        "wall_s",
        "ncc_before",
        "ncc_after",
        "metric_end",
        "qc_corr_median",
        "qc_corr_p5",
        "folded_fraction",
        "qc_regions",
        "flags",
    ])?;
    let num = |v: Option<f64>| v.map(|v| format!("{v:.6}")).unwrap_or_default();
    for row in rows {
        let r = &row.record;
        let s = r.seconds;
        out.write_record([
            r.index.to_string(),
            r.name.clone(),
            format!("{:?}", r.status).to_lowercase(),
            r.error.clone().unwrap_or_default(),
            r.mode.to_string(),
            r.backend.clone().unwrap_or_default(),
            r.fixed.display().to_string(),
            r.moving.display().to_string(),
            num(s.map(|s| s.load)),
            num(s.map(|s| s.pyramid)),
            num(s.map(|s| s.register)),
            num(s.map(|s| s.warp)),
            num(s.map(|s| s.write)),
            num(s.map(|s| s.total)),
            format!("{:.6}", r.wall_seconds),
            num(r.ncc_before),
            num(r.ncc_after),
            num(r.metric_end),
            num(r.qc_corr_median),
            num(r.qc_corr_p5),
            num(r.folded_fraction),
            r.qc_regions.map(|n| n.to_string()).unwrap_or_default(),
            r.flags.join(" "),
        ])?;
    }
    out.flush()?;
    Ok(())
}

/// The QC line under a pair's NCC: the local correlation's median and 5th percentile, and the
/// folded share of the transform.
fn qc_cell(r: &super::JobRecord) -> String {
    match (r.qc_corr_median, r.qc_corr_p5, r.folded_fraction) {
        (Some(median), Some(p5), Some(folded)) => format!(
            "<br><small>local corr median {median:.3}, p5 {p5:.3}; folded {:.3} %</small>",
            100.0 * folded
        ),
        _ => String::new(),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn render_html(summary: &SummaryFile) -> String {
    let mut html = String::from(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Alinify batch report</title>\n\
         <style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}\
         .failed{background:#fee}.flag{color:#a60}.error{color:#b00}img{display:block}</style>\n\
         </head><body>\n",
    );
    let choice = summary.choice.as_ref().map_or(String::new(), |c| {
        format!("<p>{}</p>\n", c.replace('&', "&amp;").replace('<', "&lt;"))
    });
    html += &format!(
        "<h1>Alinify batch report</h1>\n<p>{} pairs: {} done, {} failed or cancelled.</p>\n\
         {choice}<table><tr><th>#</th><th>pair</th><th>status</th><th>mode</th><th>time</th>\
         <th>NCC before &rarr; after</th><th>before (fixed | moving)</th>\
         <th>after (fixed | warped)</th><th>QC: local correlation, flagged regions</th></tr>\n",
        summary.jobs.len(),
        summary.done,
        summary.failed
    );
    for row in &summary.jobs {
        let r = &row.record;
        let folder = row.folder.to_string_lossy().replace('\\', "/");
        let class = if r.status != JobStatus::Done {
            " class=\"failed\""
        } else {
            ""
        };
        html += &format!(
            "<tr{class}><td>{}</td><td><b>{}</b><br><small>{}<br>{}</small></td>",
            r.index + 1,
            escape(&r.name),
            escape(&r.fixed.display().to_string()),
            escape(&r.moving.display().to_string())
        );
        match r.status {
            JobStatus::Done => {
                let flags = if r.flags.is_empty() {
                    String::new()
                } else {
                    format!(
                        "<br><span class=\"flag\">{}</span>",
                        escape(&r.flags.join(", "))
                    )
                };
                html += &format!(
                    "<td>done{flags}</td><td>{}</td><td>{:.2} s</td><td>{:.4} &rarr; {:.4}{qc}</td>\
                     <td><img src=\"{folder}/before.png\" width=\"{side}\" alt=\"before\"></td>\
                     <td><img src=\"{folder}/after.png\" width=\"{side}\" alt=\"after\"></td>\
                     <td><img src=\"{folder}/qc.png\" width=\"{qc_side}\" alt=\"QC map\"></td></tr>\n",
                    r.mode,
                    r.wall_seconds,
                    r.ncc_before.unwrap_or(f64::NAN),
                    r.ncc_after.unwrap_or(f64::NAN),
                    side = super::THUMBNAIL_SIDE,
                    qc = qc_cell(r),
                    qc_side = super::THUMBNAIL_SIDE / 2,
                );
            }
            JobStatus::Failed | JobStatus::Cancelled => {
                html += &format!(
                    "<td>{}</td><td>{}</td><td>{:.2} s</td>\
                     <td colspan=\"4\" class=\"error\">{}</td></tr>\n",
                    r.status.label(),
                    r.mode,
                    r.wall_seconds,
                    escape(r.error.as_deref().unwrap_or("unknown error"))
                );
            }
        }
    }
    html += "</table>\n</body></html>\n";
    html
}

/// The reports a batch writes into its folder.
pub const REPORT_FILES: [&str; 3] = ["summary.json", "summary.csv", "report.html"];

/// Combines the `summary.json` of several batch folders (the shards of one batch) into one set
/// of reports in `out_dir`, with job folders pointing back into the shard folders.
pub fn merge(shard_dirs: &[PathBuf], out_dir: &Path) -> Result<SummaryFile> {
    let inputs: Vec<PathBuf> = shard_dirs.iter().map(|d| d.join("summary.json")).collect();
    let inputs: Vec<crate::io::Labelled> = inputs
        .iter()
        .map(|p| ("shard summary", p.as_path()))
        .collect();
    let outputs: Vec<PathBuf> = REPORT_FILES.iter().map(|f| out_dir.join(f)).collect();
    let outputs: Vec<crate::io::Labelled> = outputs
        .iter()
        .map(|p| ("merged report", p.as_path()))
        .collect();
    crate::io::check_outputs(&inputs, &outputs)?;
    crate::io::ensure_output_dir(out_dir)?;
    let mut rows = Vec::new();
    for dir in shard_dirs {
        let path = dir.join("summary.json");
        let text = crate::io::read_input_text(&path)?;
        let summary: SummaryFile = serde_json::from_str(&text)
            .ok()
            .filter(|s: &SummaryFile| s.format == FORMAT)
            .ok_or_else(|| Error::Corrupt {
                path: path.clone(),
                detail: "not an Alinify batch summary".into(),
            })?;
        for mut row in summary.jobs {
            row.folder = relative_path(&dir.join(&row.folder), out_dir);
            rows.push(row);
        }
    }
    rows.sort_by_key(|r| r.record.index);
    if let Some(pair) = rows
        .windows(2)
        .find(|w| w[0].record.index == w[1].record.index)
    {
        return Err(Error::InvalidArgument(format!(
            "job {} ({}) appears in more than one shard: were the shards of different batches?",
            pair[0].record.index + 1,
            pair[0].record.name
        )));
    }
    write_rows(out_dir, &rows, None)?;
    let done = rows
        .iter()
        .filter(|r| r.record.status == JobStatus::Done)
        .count();
    Ok(SummaryFile {
        format: FORMAT.into(),
        done,
        failed: rows.len() - done,
        jobs: rows,
        choice: None,
    })
}

/// `target` relative to the folder `base` (both made absolute); `target` itself if they share
/// no root.
fn relative_path(target: &Path, base: &Path) -> PathBuf {
    let absolute = |p: &Path| {
        std::path::absolute(p)
            .map(|p| {
                p.components().fold(PathBuf::new(), |mut acc, c| {
                    match c {
                        Component::ParentDir => {
                            acc.pop();
                        }
                        Component::CurDir => {}
                        other => acc.push(other),
                    }
                    acc
                })
            })
            .unwrap_or_else(|_| p.to_path_buf())
    };
    let (t, b) = (absolute(target), absolute(base));
    let (tc, bc): (Vec<_>, Vec<_>) = (t.components().collect(), b.components().collect());
    let common = tc.iter().zip(&bc).take_while(|(x, y)| x == y).count();
    if common == 0 {
        return t;
    }
    let mut out = PathBuf::new();
    for _ in common..bc.len() {
        out.push("..");
    }
    for c in &tc[common..] {
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_to_the_common_folder() {
        assert_eq!(
            relative_path(Path::new("/a/b/shard1/job"), Path::new("/a/b/merged")),
            PathBuf::from("../shard1/job")
        );
        assert_eq!(
            relative_path(Path::new("/a/x/../b/j"), Path::new("/a/b")),
            PathBuf::from("j")
        );
    }
}
