//! Progress on stderr: on a terminal, one bar per blob and an overall
//! line (bytes, speed, time left); off a terminal nothing, or a call per
//! finished blob when asked (the CLI's `-v` prints a line).

use std::io::IsTerminal;
use std::sync::Arc;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use oci_core::Descriptor;

/// Reports blob transfers (see the module docs).
#[derive(Clone, Default)]
pub struct Progress {
    multi: Option<MultiProgress>,
    overall: Option<ProgressBar>,
    finished: Option<Finished>,
}

/// Called with each blob finished, off a terminal.
pub type Finished = Arc<dyn Fn(&Descriptor) + Send + Sync>;

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("bars", &self.multi.is_some())
            .field("finished", &self.finished.is_some())
            .finish()
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl Progress {
    /// Bars when stderr is a terminal and `enabled`, else silence.
    pub fn stderr(enabled: bool) -> Progress {
        Progress::stderr_or(enabled, None)
    }

    /// Bars when stderr is a terminal and `enabled`; off a terminal,
    /// `finished` called for each finished blob (if given), else silence.
    pub fn stderr_or(enabled: bool, finished: Option<Finished>) -> Progress {
        if enabled && std::io::stderr().is_terminal() {
            Progress {
                multi: Some(MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
                overall: None,
                finished: None,
            }
        } else {
            Progress {
                finished,
                ..Progress::hidden()
            }
        }
    }

    /// No output at all.
    pub fn hidden() -> Progress {
        Progress {
            multi: None,
            overall: None,
            finished: None,
        }
    }

    /// The same display with an overall line for `total` bytes, which
    /// every blob bar (and [`Progress::skipped`]) advances.
    pub fn with_total(&self, total: u64) -> Progress {
        let overall = self.multi.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new(total));
            bar.set_style(style(
                "{prefix:.bold} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ));
            bar.set_prefix("total       ");
            bar
        });
        Progress {
            multi: self.multi.clone(),
            overall,
            finished: self.finished.clone(),
        }
    }

    /// Counts a blob that needed no transfer towards the overall line.
    pub fn skipped(&self, d: &Descriptor) {
        if let Some(o) = &self.overall {
            o.inc(d.size);
        }
    }

    /// A bar for one blob.
    pub fn blob(&self, d: &Descriptor) -> BlobBar {
        let bar = self.multi.as_ref().map(|m| {
            let bar = match &self.overall {
                Some(o) => m.insert_before(o, ProgressBar::new(d.size)),
                None => m.add(ProgressBar::new(d.size)),
            };
            bar.set_style(style(
                "{prefix:.bold} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            ));
            bar.set_prefix(d.digest.hex()[..12].to_owned());
            bar
        });
        BlobBar {
            bar,
            overall: self.overall.clone(),
            finished: self.finished.clone().map(|f| (f, d.clone())),
        }
    }
}

/// The bar of one blob.
pub struct BlobBar {
    bar: Option<ProgressBar>,
    overall: Option<ProgressBar>,
    finished: Option<(Finished, Descriptor)>,
}

impl BlobBar {
    /// Records `n` more bytes.
    pub fn advance(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
        if let Some(o) = &self.overall {
            o.inc(n);
        }
    }

    /// Marks the blob done.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        }
        if let Some((finished, d)) = &self.finished {
            finished(d);
        }
    }
}
