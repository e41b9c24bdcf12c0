//! `journal.jsonl`: one line per job event, appended and synced before the next job step, so
//! that after a crash or `kill -9` a resumed batch knows exactly which jobs finished.

use super::JobRecord;
use crate::{Error, Result};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// File name of the journal inside the batch folder.
pub const FILE: &str = "journal.jsonl";

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Entry {
    /// A job began (its outputs may be incomplete until `Finished`).
    Started {
        /// Job name.
        job: String,
        /// Seconds since the Unix epoch.
        time: f64,
    },
    /// A job ended, successfully or not; the record says which.
    Finished {
        /// Job name.
        job: String,
        /// Seconds since the Unix epoch.
        time: f64,
        /// What the job did.
        record: Box<JobRecord>,
    },
}

/// The journal, open for appending.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Journal {
    /// Opens (creating) the journal in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join(FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::write(&path, e))?;
        Ok(Self {
            path,
            file: Mutex::new(file),
        })
    }

    /// Records that `job` started.
    pub fn started(&self, job: &str) -> Result<()> {
        self.append(&Entry::Started {
            job: job.into(),
            time: now(),
        })
    }

    /// Records how `job` ended.
    pub fn finished(&self, record: &JobRecord) -> Result<()> {
        self.append(&Entry::Finished {
            job: record.name.clone(),
            time: now(),
            record: Box::new(record.clone()),
        })
    }

    fn append(&self, entry: &Entry) -> Result<()> {
        let mut line = serde_json::to_string(entry).map_err(|e| Error::write(&self.path, e))?;
        line.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|e| Error::write(&self.path, e))
    }
}

/// The last record of every job that finished, by name, from the journal in `dir` (empty when
/// there is none). A torn last line, left by a kill during a write, is ignored.
pub fn finished_jobs(dir: &Path) -> Result<HashMap<String, JobRecord>> {
    let path = dir.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(Error::read(&path, e)),
    };
    let mut done = HashMap::new();
    for line in text.lines() {
        match serde_json::from_str::<Entry>(line) {
            Ok(Entry::Finished { job, record, .. }) => {
                done.insert(job, *record);
            }
            Ok(Entry::Started { job, .. }) => {
                done.remove(&job);
            }
            Err(_) => {} // a torn line
        }
    }
    Ok(done)
}
