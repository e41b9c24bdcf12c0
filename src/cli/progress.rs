//! Terminal progress: an indicatif bar fed by a job's events, quiet with `--quiet` or when
//! stderr is not a terminal (log lines are still printed then, unless `--quiet`).

use alinify::job::{CancelToken, Event, JobHandle};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

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
        let interrupt = interrupt_token();
        let cancel = job.cancel.clone();
        let result = loop {
            match job.events.recv_timeout(Duration::from_millis(100)) {
                Ok(Event::Finished(result)) => break result,
                Ok(Event::Progress(p)) => {
                    if let Some(bar) = &bar {
                        bar.set_position((p.fraction.clamp(0.0, 1.0) * 1000.0) as u64);
                        bar.set_message(p.describe());
                    }
                }
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
