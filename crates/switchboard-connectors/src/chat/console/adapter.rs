//! The console's outlet: replies become [`ConsoleEvent`]s on a channel that
//! the http crate streams to the caller (server-sent events). The stream
//! ends when the conversation drops its outlet, that is when the last run
//! it follows has been reported.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use switchboard_core::chat::{
    Attachment, Capabilities, ChatIdentity, ChatOutlet, Destination, Markup, OutletError, Posted,
    Reply,
};
use tokio::sync::mpsc;

/// One thing the console shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ConsoleEvent {
    /// A new message (`id` numbers it for later updates).
    Post {
        id: String,
        thread: Option<String>,
        text: String,
        reply: Reply,
    },
    /// Message `id` now reads so.
    Update {
        id: String,
        text: String,
        reply: Reply,
    },
    /// A file, base64-free: consoles show text files inline and offer the rest by name.
    File {
        thread: Option<String>,
        filename: String,
        content_type: String,
        title: String,
        size: usize,
        text: Option<String>,
    },
}

/// Delivers replies to one console request.
pub struct ConsoleOutlet {
    events: mpsc::Sender<ConsoleEvent>,
    next_id: AtomicU64,
}

impl ConsoleOutlet {
    /// An outlet and the stream of what it is asked to show.
    pub fn new() -> (Arc<Self>, mpsc::Receiver<ConsoleEvent>) {
        let (events, rx) = mpsc::channel(256);
        (
            Arc::new(Self {
                events,
                next_id: AtomicU64::new(1),
            }),
            rx,
        )
    }

    async fn send(&self, event: ConsoleEvent) -> Result<(), OutletError> {
        self.events
            .send(event)
            .await
            .map_err(|_| OutletError::Unreachable("the console went away".to_owned()))
    }
}

/// Files up to this size are shown inline when they are text.
const INLINE_FILE_BYTES: usize = 1024 * 1024;

#[async_trait]
impl ChatOutlet for ConsoleOutlet {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            edits: true,
            files: true,
            buttons: false,
            max_text: 40_000,
        }
    }

    async fn post(&self, to: &Destination, reply: &Reply) -> Result<Posted, OutletError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed).to_string();
        self.send(ConsoleEvent::Post {
            id: id.clone(),
            thread: to.thread.clone(),
            text: reply.text(Markup::Plain),
            reply: reply.clone(),
        })
        .await?;
        Ok(Posted {
            room: to.room.clone(),
            id,
            thread: to.thread.clone(),
        })
    }

    async fn update(&self, posted: &Posted, reply: &Reply) -> Result<(), OutletError> {
        self.send(ConsoleEvent::Update {
            id: posted.id.clone(),
            text: reply.text(Markup::Plain),
            reply: reply.clone(),
        })
        .await
    }

    async fn upload(&self, to: &Destination, file: &Attachment) -> Result<(), OutletError> {
        let text = (file.bytes.len() <= INLINE_FILE_BYTES
            && file.content_type.starts_with("text/"))
        .then(|| String::from_utf8_lossy(&file.bytes).into_owned());
        self.send(ConsoleEvent::File {
            thread: to.thread.clone(),
            filename: file.filename.clone(),
            content_type: file.content_type.clone(),
            title: file.title.clone(),
            size: file.bytes.len(),
            text,
        })
        .await
    }

    async fn direct(&self, _user: &ChatIdentity, reply: &Reply) -> Result<(), OutletError> {
        // The console is already private to its caller.
        self.post(
            &Destination {
                room: "direct".to_owned(),
                thread: None,
            },
            reply,
        )
        .await
        .map(|_| ())
    }
}
