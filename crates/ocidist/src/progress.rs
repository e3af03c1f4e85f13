//! Progress bars on a terminal, nothing otherwise.

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use oci_core::Descriptor;

/// Shows one bar per blob on stderr when it is a terminal.
#[derive(Clone, Default)]
pub struct Progress {
    multi: Option<MultiProgress>,
}

impl Progress {
    /// Bars when stderr is a terminal and `enabled`, else silence.
    pub fn stderr(enabled: bool) -> Progress {
        if enabled && std::io::stderr().is_terminal() {
            Progress {
                multi: Some(MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            }
        } else {
            Progress::hidden()
        }
    }

    /// No output at all.
    pub fn hidden() -> Progress {
        Progress { multi: None }
    }

    /// A bar for one blob.
    pub fn blob(&self, d: &Descriptor) -> BlobBar {
        let bar = self.multi.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new(d.size));
            let style = ProgressStyle::with_template(
                "{prefix:.bold} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(d.digest.hex()[..12].to_owned());
            bar
        });
        BlobBar { bar }
    }
}

/// The bar of one blob.
pub struct BlobBar {
    bar: Option<ProgressBar>,
}

impl BlobBar {
    /// Records `n` more bytes.
    pub fn advance(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// Marks the blob done.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        }
    }
}
