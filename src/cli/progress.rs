//! Terminal progress: an indicatif bar fed by a job's events, quiet with `--quiet`. When stderr
//! is not a terminal (a log file, Slurm's output) progress comes as plain lines instead: one
//! when the stage or level changes and one every few seconds within it.

use alinify::job::{CancelToken, Event, JobHandle};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The token Ctrl-C (SIGINT), SIGTERM and SIGHUP set, shared by everything this process runs:
/// Slurm ends a job at its time limit with SIGTERM, and a closed terminal sends SIGHUP.
static INTERRUPT: OnceLock<CancelToken> = OnceLock::new();

fn interrupt_token() -> CancelToken {
    INTERRUPT
        .get_or_init(|| {
            let token = CancelToken::new();
            let handler_token = token.clone();
            // Without a handler a signal still ends the process, just without clean-up.
            let _ = ctrlc::set_handler(move || handler_token.cancel());
            token
        })
        .clone()
}

/// How the command talks to the person at the terminal.
pub struct Ui {
    quiet: bool,
    bars: bool,
}

impl Ui {
    /// A UI; bars only when stderr is a terminal and not `quiet`.
    pub fn new(quiet: bool) -> Self {
        let _ = interrupt_token();
        Self {
            quiet,
            bars: !quiet && std::io::stderr().is_terminal(),
        }
    }

    /// Whether progress bars are drawn.
    pub fn bars(&self) -> bool {
        self.bars
    }

    /// Whether only errors are printed.
    pub fn quiet(&self) -> bool {
        self.quiet
    }

    /// Cancelled when the user presses Ctrl-C.
    pub fn ctrl_c_token(&self) -> CancelToken {
        interrupt_token()
    }

    /// A line of information (not in quiet mode).
    pub fn say(&self, line: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", line.as_ref());
        }
    }

    /// Shows a job's progress until it finishes; Ctrl-C cancels it.
    pub fn watch<T: Send + 'static>(&self, job: JobHandle<T>) -> anyhow::Result<T> {
        let bar = if self.bars {
            let bar = ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:30}] {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            Some(bar)
        } else {
            None
        };
        let mut lines = ProgressLines::default();
        let interrupt = interrupt_token();
        let cancel = job.cancel.clone();
        let result = loop {
            match job.events.recv_timeout(Duration::from_millis(100)) {
                Ok(Event::Finished(result)) => break result,
                Ok(Event::Progress(p)) => match &bar {
                    Some(bar) => {
                        bar.set_position((p.fraction.clamp(0.0, 1.0) * 1000.0) as u64);
                        bar.set_message(p.describe());
                    }
                    None if !self.quiet => {
                        if let Some(line) = lines.next(&p) {
                            eprintln!("{line}");
                        }
                    }
                    None => {}
                },
                Ok(Event::Log(line)) => match &bar {
                    Some(bar) => bar.println(line),
                    None => self.say(line),
                },
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    break Err(alinify::Error::Internal(
                        "job ended without a result".into(),
                    ));
                }
            }
            if interrupt.is_cancelled() {
                cancel.cancel();
            }
        };
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        Ok(result?)
    }
}

/// Within one stage and level, a plain progress line at most this often.
const LINE_INTERVAL: Duration = Duration::from_secs(5);

/// Chooses which progress events become plain lines when no bar is drawn: the first of each
/// stage and level after the inputs are read, then one every [`LINE_INTERVAL`].
#[derive(Default)]
struct ProgressLines {
    last: Option<(alinify::job::Stage, Option<usize>, Instant)>,
}

impl ProgressLines {
    /// The line for `p`, when its stage or level is new or the last line is old enough.
    fn next(&mut self, p: &alinify::job::Progress) -> Option<String> {
        // Reading the inputs says nothing: a bad input's error stays the only line.
        if p.stage == alinify::job::Stage::Load {
            return None;
        }
        let now = Instant::now();
        let due = match self.last {
            Some((stage, level, at)) => {
                stage != p.stage || level != p.level || now - at >= LINE_INTERVAL
            }
            None => true,
        };
        if !due {
            return None;
        }
        self.last = Some((p.stage, p.level, now));
        Some(format!(
            "progress {:3.0} %: {}",
            p.fraction.clamp(0.0, 1.0) * 100.0,
            p.describe()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alinify::job::{Progress, Stage};

    #[test]
    fn plain_progress_lines_come_once_per_stage_and_level() {
        let mut lines = ProgressLines::default();
        let at = |stage, level, fraction| Progress {
            level,
            ..Progress::at(stage, fraction)
        };
        assert!(lines.next(&at(Stage::Load, None, 0.0)).is_none());
        let first = lines.next(&at(Stage::Pyramid, None, 0.05)).unwrap();
        assert_eq!(first, "progress   5 %: pyramid");
        assert!(lines.next(&at(Stage::Pyramid, None, 0.06)).is_none());
        let level = lines.next(&at(Stage::Register, Some(2), 0.3)).unwrap();
        assert!(
            level.contains("30 %") && level.contains("level 2"),
            "{level}"
        );
        assert!(lines.next(&at(Stage::Register, Some(2), 0.4)).is_none());
        assert!(lines.next(&at(Stage::Register, Some(1), 0.5)).is_some());
    }
}
