//! Progress bars on long work: shown only when stderr is a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A byte-counting progress bar, hidden when stderr is not a terminal.
pub fn bytes(total: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// Sets the length of a visible bar to the bytes of regular files under
/// `paths`, on a thread of `scope`: sizing walks the trees, which the copy
/// should not wait for (nor pay for at all when the bar is hidden).
pub fn size_in_background<'s>(scope: &'s std::thread::Scope<'s, '_>, pb: &ProgressBar, paths: Vec<std::path::PathBuf>) {
    if pb.is_hidden() {
        return;
    }
    let pb = pb.clone();
    scope.spawn(move || pb.set_length(paths.iter().map(|p| crate::cmd::put::total_bytes(p)).sum()));
}
