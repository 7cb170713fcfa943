//! Terminal output shared by the client and offline commands: live output
//! lines (with a progress spinner on a terminal, plain lines when piped),
//! tables, and the mapping from an execution's status to the exit status.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The execution succeeded (or the command did what was asked).
pub const EXIT_OK: u8 = 0;
/// The execution failed.
pub const EXIT_FAILED: u8 = 1;
/// The command itself failed: bad input, an unreachable server, a broken catalog.
pub const EXIT_ERROR: u8 = 3;

/// The exit status that reflects an execution's final status.
pub fn exit_code_for(status: &str) -> u8 {
    match status {
        "succeeded" => EXIT_OK,
        "timed_out" => 124,
        "lost" => 125,
        "cancelled" => 130,
        _ => EXIT_FAILED,
    }
}

/// Prints output lines as they come, under a spinner when stderr is a terminal.
pub struct LivePrinter {
    spinner: Option<ProgressBar>,
    timestamps: bool,
}

impl LivePrinter {
    pub fn new(label: &str, timestamps: bool, show_progress: bool) -> Self {
        let spinner = (show_progress && std::io::stderr().is_terminal()).then(|| {
            let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            pb.set_style(
                ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            pb.set_message(label.to_owned());
            pb.enable_steady_tick(Duration::from_millis(120));
            pb
        });
        Self {
            spinner,
            timestamps,
        }
    }

    pub fn line(&self, stream: &str, ts: &str, text: &str) {
        let stamp = if self.timestamps {
            format!("{ts} ")
        } else {
            String::new()
        };
        let print = || match stream {
            "stdout" => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{stamp}{text}");
                let _ = out.flush();
            }
            "stderr" => eprintln!("{stamp}{text}"),
            _ => eprintln!("{stamp}switchboard: {text}"),
        };
        match &self.spinner {
            Some(pb) => pb.suspend(print),
            None => print(),
        }
    }

    pub fn finish(&self) {
        if let Some(pb) = &self.spinner {
            pb.finish_and_clear();
        }
    }
}

/// Prints rows under headers, columns padded to their widest cell.
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let render = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    (*c).to_owned()
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", render(headers.to_vec()));
    for row in rows {
        let _ = writeln!(out, "{}", render(row.iter().map(String::as_str).collect()));
    }
}

/// `1234` ms → `1.2s`.
pub fn format_ms(ms: Option<u64>) -> String {
    match ms {
        None => "-".to_owned(),
        Some(ms) if ms < 1000 => format!("{ms}ms"),
        Some(ms) => format!("{:.1}s", ms as f64 / 1000.0),
    }
}

/// Writes the files a run produced (`--save`): one file to `path` (or into
/// it, when it is a folder); several into the folder `path`.
/// A run that produced nothing is only warned about: its outcome stands.
pub fn save_artifacts(path: &std::path::Path, files: &[(&str, &[u8])]) -> anyhow::Result<()> {
    use anyhow::Context;
    let targets: Vec<(std::path::PathBuf, &[u8])> = match files {
        [] => {
            eprintln!("--save: the run produced no file; nothing written");
            return Ok(());
        }
        [(name, bytes)] if path.is_dir() => vec![(path.join(name), *bytes)],
        [(_, bytes)] => vec![(path.to_path_buf(), *bytes)],
        several => {
            std::fs::create_dir_all(path)
                .with_context(|| format!("--save: cannot create the folder {}", path.display()))?;
            several
                .iter()
                .map(|(name, bytes)| (path.join(name), *bytes))
                .collect()
        }
    };
    for (target, bytes) in targets {
        std::fs::write(&target, bytes)
            .with_context(|| format!("--save: cannot write {}", target.display()))?;
        eprintln!("saved {} ({} bytes)", target.display(), bytes.len());
    }
    Ok(())
}
