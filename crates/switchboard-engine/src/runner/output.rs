//! Output as runners report it: bytes cut into lines ([`LineSplitter`],
//! [`read_lines`]), and [`Output`], which numbers, masks and caps those
//! lines before they leave a runner as [`RunEvent::Output`].
//!
//! It does not store or fan output out (the dispatcher and the live hub do).

use switchboard_core::{Masker, OutputChunk, Stream, Timestamp};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use super::{RunEvent, RunLimits};

/// Longest line kept whole; longer ones are split into pieces of this size.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// Cuts a byte stream into lines (without `\n` or `\r\n`), overlong lines
/// into pieces of [`MAX_LINE_BYTES`]; invalid UTF-8 is replaced.
#[derive(Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Adds bytes; returns the lines they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(bytes);
        let mut lines = Vec::new();
        while let Some(pos) = self.pending.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = self.pending.drain(..=pos).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            lines.push(String::from_utf8_lossy(&line).into_owned());
        }
        while self.pending.len() >= MAX_LINE_BYTES {
            let piece: Vec<u8> = self.pending.drain(..MAX_LINE_BYTES).collect();
            lines.push(String::from_utf8_lossy(&piece).into_owned());
        }
        lines
    }

    /// What is left after the stream ended, if anything.
    pub fn finish(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            None
        } else {
            let rest = std::mem::take(&mut self.pending);
            Some(String::from_utf8_lossy(&rest).into_owned())
        }
    }
}

/// Reads a pipe and sends it on line by line (overlong lines in pieces).
pub async fn read_lines(
    mut pipe: impl AsyncRead + Unpin,
    stream: Stream,
    tx: mpsc::Sender<(Stream, String)>,
) {
    let mut splitter = LineSplitter::default();
    let mut buf = vec![0u8; 8192];
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for line in splitter.push(&buf[..n]) {
            if tx.send((stream, line)).await.is_err() {
                return;
            }
        }
    }
    if let Some(rest) = splitter.finish() {
        let _ = tx.send((stream, rest)).await;
    }
}

/// Numbers, masks and caps output before it leaves the runner.
pub struct Output {
    pub events: mpsc::Sender<RunEvent>,
    pub masker: Masker,
    limits: RunLimits,
    seq: i64,
    /// Bytes of output produced (kept or not).
    pub bytes: i64,
    /// Whether output beyond the limit was discarded.
    pub truncated: bool,
}

impl Output {
    pub fn new(events: mpsc::Sender<RunEvent>, masker: Masker, limits: &RunLimits) -> Self {
        Self {
            events,
            masker,
            limits: limits.clone(),
            seq: 0,
            bytes: 0,
            truncated: false,
        }
    }

    /// A line of the command's output: counted, capped and masked.
    pub async fn emit(&mut self, stream: Stream, text: String) {
        let size = i64::try_from(text.len())
            .unwrap_or(i64::MAX)
            .saturating_add(1);
        self.bytes = self.bytes.saturating_add(size);
        if self.truncated {
            return;
        }
        if u64::try_from(self.bytes).unwrap_or(u64::MAX) > self.limits.max_output_bytes {
            self.truncated = true;
            self.system(format!(
                "[output truncated: more than {} bytes; the rest is discarded]",
                self.limits.max_output_bytes
            ))
            .await;
            return;
        }
        self.send(stream, self.masker.mask(&text)).await;
    }

    /// The end of a run that was stopped by a cancel.
    pub async fn cancelled(&mut self) -> super::RunOutcome {
        self.system("cancelled".to_owned()).await;
        super::RunOutcome {
            status: switchboard_core::ExecutionStatus::Cancelled,
            ..self.failed("cancelled")
        }
    }

    /// The end of a run that failed after it started.
    pub fn failed(&self, error: impl Into<String>) -> super::RunOutcome {
        super::RunOutcome {
            output_bytes: self.bytes,
            output_truncated: self.truncated,
            ..super::RunOutcome::failed(self.masker.mask(&error.into()))
        }
    }

    /// A line of Switchboard's own about the run (masked too).
    pub async fn system(&mut self, text: String) {
        let text = self.masker.mask(&text);
        self.send(Stream::System, text).await;
    }

    async fn send(&mut self, stream: Stream, text: String) {
        self.seq += 1;
        let chunk = OutputChunk {
            seq: self.seq,
            ts: Timestamp::now(),
            stream,
            text,
        };
        // A closed receiver means nobody records output any more; keep running.
        let _ = self.events.send(RunEvent::Output(chunk)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_across_pushes() {
        let mut s = LineSplitter::default();
        assert!(s.push(b"hel").is_empty());
        assert_eq!(s.push(b"lo\r\nwor"), vec!["hello"]);
        assert_eq!(s.push(b"ld\n\n"), vec!["world", ""]);
        assert_eq!(s.finish(), None);
        assert!(s.push(b"tail").is_empty());
        assert_eq!(s.finish().as_deref(), Some("tail"));
    }

    #[test]
    fn cuts_overlong_lines() {
        let mut s = LineSplitter::default();
        let lines = s.push(&vec![b'x'; MAX_LINE_BYTES * 2 + 5]);
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| l.len() == MAX_LINE_BYTES));
        assert_eq!(s.finish().map(|r| r.len()), Some(5));
    }
}
