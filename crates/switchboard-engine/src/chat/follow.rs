//! Reporting a run back to the chat thread that asked for it: progress
//! edited into the acknowledgement while it runs (where the platform can
//! edit), then the result with the last lines of output, and the whole
//! output attached as a file when the tail is not all of it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use switchboard_core::chat::{Attachment, ChatOutlet, Destination, ExecutionRef, Posted, Reply};
use switchboard_core::{Execution, ExecutionStatus, Stream};

use crate::{Engine, WatchEvent};

/// Largest output attached as a file; longer output is cut at the end.
const MAX_ATTACHMENT_BYTES: usize = 8 * 1024 * 1024;

/// The last lines of a run's output (each output chunk is one line).
pub(super) struct Tail {
    lines: VecDeque<String>,
    keep: usize,
    /// Whether lines fell off the front.
    pub(super) dropped: bool,
}

impl Tail {
    pub(super) fn new(keep: usize) -> Self {
        Self {
            lines: VecDeque::new(),
            keep: keep.max(1),
            dropped: false,
        }
    }

    pub(super) fn push(&mut self, line: &str) {
        self.lines.push_back(line.to_owned());
        if self.lines.len() > self.keep {
            self.lines.pop_front();
            self.dropped = true;
        }
    }

    pub(super) fn text(&self) -> String {
        self.lines
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Follows `execution` to its end and reports it in `thread`.
pub(super) async fn report(
    engine: Engine,
    execution: Execution,
    reference: ExecutionRef,
    ack: String,
    acknowledgement: Posted,
    thread: Destination,
    outlet: Arc<dyn ChatOutlet>,
) {
    let settings = engine.chat_settings().clone();
    let can_edit = outlet.capabilities().edits;
    let mut events = engine.watch(execution.id);
    let mut tail = Tail::new(settings.tail_lines);
    let started = tokio::time::Instant::now();
    let mut ticks = tokio::time::interval_at(
        started + settings.progress_after,
        settings.progress_every.max(Duration::from_millis(100)),
    );
    let mut seen_output = false;
    let mut progress_shown = false;
    let finished = loop {
        tokio::select! {
            event = events.next() => match event {
                Some(WatchEvent::Output(chunk)) => {
                    seen_output = true;
                    tail.push(&chunk.text);
                    // A workflow's question is asked in the thread, where
                    // people can answer it.
                    if chunk.stream == Stream::System && chunk.text.starts_with("? ") {
                        let question = Reply::Text { text: chunk.text.clone() };
                        if let Err(e) = outlet.post(&thread, &question).await {
                            tracing::warn!(id = %execution.id, error = %e, "asking a workflow's question in chat failed");
                        }
                    }
                }
                Some(WatchEvent::Finished(e)) => break Some(*e),
                None => break None,
            },
            _ = ticks.tick(), if can_edit => {
                // A request waiting for approval has no progress to show.
                if !seen_output && execution.status == ExecutionStatus::AwaitingApproval {
                    continue;
                }
                let progress = Reply::Progress {
                    execution: reference.clone(),
                    ack: ack.clone(),
                    elapsed: started.elapsed(),
                    tail: match workflow_tree(&engine, &execution).await {
                        Some(tree) => tree,
                        None => tail.text(),
                    },
                };
                match outlet.update(&acknowledgement, &progress).await {
                    Ok(()) => progress_shown = true,
                    Err(e) => tracing::debug!(id = %execution.id, error = %e, "progress update failed"),
                }
            }
        }
    };
    let Some(end) = finished else {
        tracing::warn!(id = %execution.id, "lost track of an execution reported in chat");
        return;
    };
    let partial = tail.dropped;
    if progress_shown {
        // The acknowledgement stops saying "running for …".
        let accepted = Reply::Accepted {
            execution: reference.clone(),
            ack: ack.clone(),
        };
        let _ = outlet.update(&acknowledgement, &accepted).await;
    }
    let reply = Reply::Finished {
        execution: reference.clone(),
        status: end.status,
        duration: match (end.started_at, end.finished_at) {
            (Some(s), Some(f)) => Some(Duration::from_micros(
                u64::try_from(f.micros() - s.micros()).unwrap_or(0),
            )),
            _ => None,
        },
        exit_code: end.exit_code,
        tail: match workflow_tree(&engine, &end).await {
            Some(tree) => tree,
            None => tail.text(),
        },
        partial,
        error: end.error.clone(),
    };
    if let Err(e) = outlet.post(&thread, &reply).await {
        tracing::warn!(id = %end.id, error = %e, "posting a result in chat failed");
        return;
    }
    let mut files = result_attachments(&end);
    files.extend(stored_artifacts(&engine, &end).await);
    if !files.is_empty() && outlet.capabilities().files {
        for file in &files {
            if let Err(e) = outlet.upload(&thread, file).await {
                tracing::warn!(id = %end.id, file = %file.filename, error = %e, "attaching a result file in chat failed");
            }
        }
    } else if !files.is_empty() {
        // Where files cannot be uploaded, the stored ones are linked.
        let links: Vec<String> = files
            .iter()
            .filter_map(|f| engine.artifact_link(end.id, &f.filename))
            .collect();
        if !links.is_empty() {
            let reply = Reply::Text {
                text: links.join("\n"),
            };
            let _ = outlet.post(&thread, &reply).await;
        }
    }
    if partial && outlet.capabilities().files {
        match full_output(&engine, &end).await {
            Ok(bytes) => {
                let file = Attachment {
                    filename: format!("{}-{}.log", end.action, end.id),
                    content_type: "text/plain".to_owned(),
                    title: format!("Output of {} #{}", end.action, end.id),
                    bytes,
                };
                if let Err(e) = outlet.upload(&thread, &file).await {
                    tracing::warn!(id = %end.id, error = %e, "attaching output in chat failed");
                }
            }
            Err(e) => tracing::warn!(id = %end.id, error = %e, "reading output to attach failed"),
        }
    }
}

/// The files stored with an execution (graphs a runner drew).
/// A workflow's step tree, shown in chat instead of its output's tail.
async fn workflow_tree(engine: &Engine, e: &Execution) -> Option<String> {
    let is_workflow = engine
        .catalog()
        .action(e.action.as_str())
        .is_some_and(|a| a.workflow.is_some());
    if !is_workflow {
        return None;
    }
    let view = engine.workflow_view(e.id).await.ok().flatten()?;
    Some(view.tree_text())
}

async fn stored_artifacts(engine: &Engine, e: &Execution) -> Vec<Attachment> {
    let listed = match engine.artifacts(e.id).await {
        Ok(l) => l,
        Err(err) => {
            tracing::warn!(id = %e.id, error = %err, "listing the files of an execution failed");
            return Vec::new();
        }
    };
    let mut files = Vec::new();
    for info in listed.into_iter().take(MAX_RESULT_FILES) {
        if let Ok(Some(file)) = engine.artifact(e.id, &info.name).await {
            files.push(Attachment {
                title: format!("{} #{}: {}", e.action, e.id, file.name),
                filename: file.name,
                content_type: file.media_type,
                bytes: file.bytes,
            });
        }
    }
    files
}

/// Most files an action may return for chat.
const MAX_RESULT_FILES: usize = 8;

/// The files an action returned in its result, to upload beside the
/// result: `{"attachments": [{"filename": "load.png", "content_type":
/// "image/png", "base64": "…"}]}` (graphs, reports). Entries that are not
/// well-formed are skipped with a warning; the result itself is unchanged.
fn result_attachments(e: &Execution) -> Vec<Attachment> {
    use base64::Engine as _;
    let Some(list) = e
        .result
        .as_ref()
        .and_then(|r| r.get("attachments"))
        .and_then(serde_json::Value::as_array)
    else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for entry in list.iter().take(MAX_RESULT_FILES) {
        let text = |key: &str| entry.get(key).and_then(serde_json::Value::as_str);
        let filename = text("filename").unwrap_or_default();
        let safe_name = !filename.is_empty()
            && filename.len() <= 128
            && filename
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        let bytes =
            text("base64").and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
        match (safe_name, bytes) {
            (true, Some(bytes)) => files.push(Attachment {
                filename: filename.to_owned(),
                content_type: text("content_type")
                    .filter(|t| t.contains('/') && t.len() <= 100)
                    .unwrap_or("application/octet-stream")
                    .to_owned(),
                title: text("title").unwrap_or(filename).to_owned(),
                bytes,
            }),
            _ => {
                tracing::warn!(id = %e.id, "a result attachment without a plain file name or valid base64 was skipped")
            }
        }
    }
    files
}

/// The stored output of an execution (secrets already masked), cut at
/// [`MAX_ATTACHMENT_BYTES`].
async fn full_output(engine: &Engine, e: &Execution) -> Result<Vec<u8>, crate::EngineError> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = engine.store().output(e.id, after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for chunk in &page {
            out.extend_from_slice(chunk.text.as_bytes());
            out.push(b'\n');
        }
        if out.len() >= MAX_ATTACHMENT_BYTES {
            out.truncate(MAX_ATTACHMENT_BYTES);
            out.extend_from_slice(b"\n[cut: the output goes on]\n");
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::Tail;

    #[test]
    fn the_tail_keeps_the_last_lines_and_knows_when_it_is_partial() {
        let mut t = Tail::new(2);
        t.push("one");
        t.push("two");
        assert_eq!(t.text(), "one\ntwo");
        assert!(!t.dropped);
        t.push("three");
        assert_eq!(t.text(), "two\nthree");
        assert!(t.dropped);
    }
}
