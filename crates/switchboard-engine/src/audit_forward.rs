//! Forwarding audit records, once stored, to outside systems: a syslog
//! server (RFC 5424 over UDP, or TCP with octet counting per RFC 6587) and
//! HMAC-signed webhooks. Each destination has its own queue and task, and
//! retries with backoff; a full queue drops the record with a warning rather
//! than ever slowing down the audit log or an execution.

use std::fmt;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use switchboard_core::audit::AuditRecord;
use switchboard_core::secret::Secret;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// Records waiting per destination before new ones are dropped.
const QUEUE: usize = 10_000;
/// Attempts per delivery before a record is given up.
const ATTEMPTS: u32 = 5;
/// Records per webhook call at most.
const WEBHOOK_BATCH: usize = 100;
/// `authpriv.info`: facility 10, severity 6.
const PRIORITY: u8 = 10 * 8 + 6;

/// Where audit records are sent.
#[derive(Clone)]
pub enum AuditSink {
    /// `udp://host:port` or `tcp://host:port`.
    Syslog {
        address: String,
        tcp: bool,
        hostname: String,
    },
    /// POSTed as `{"records": [...]}`, signed with `secret`.
    Webhook { url: String, secret: Secret<String> },
}

impl fmt::Debug for AuditSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syslog { address, tcp, .. } => {
                write!(f, "syslog {}://{address}", if *tcp { "tcp" } else { "udp" })
            }
            Self::Webhook { url, .. } => write!(f, "webhook {url}"),
        }
    }
}

impl AuditSink {
    /// A syslog destination from `udp://host:port` or `tcp://host:port`.
    pub fn syslog(url: &str, hostname: &str) -> Result<Self, String> {
        let (tcp, address) = if let Some(a) = url.strip_prefix("udp://") {
            (false, a)
        } else if let Some(a) = url.strip_prefix("tcp://") {
            (true, a)
        } else {
            return Err(format!(
                "syslog address `{url}` must start with udp:// or tcp://"
            ));
        };
        if !address.contains(':') {
            return Err(format!("syslog address `{url}` needs a port"));
        }
        Ok(Self::Syslog {
            address: address.to_owned(),
            tcp,
            hostname: hostname.to_owned(),
        })
    }
}

/// The signature a webhook receiver checks: hex HMAC-SHA256 over
/// `<timestamp>.<body>` with the shared secret.
pub fn webhook_signature(secret: &[u8], timestamp: &str, body: &[u8]) -> Result<String, String> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .map_err(|e| format!("unusable webhook secret: {e}"))?;
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// An RFC 5424 message for one record: the record itself as JSON in MSG.
pub fn syslog_message(record: &AuditRecord, hostname: &str) -> String {
    let msgid: String = record
        .event
        .kind
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(32)
        .collect();
    let json = serde_json::to_string(record).unwrap_or_default();
    format!(
        "<{PRIORITY}>1 {} {hostname} switchboard {} {msgid} - {json}",
        record.event.ts,
        std::process::id()
    )
}

/// The handle that hands stored records to every destination.
#[derive(Clone, Default)]
pub(crate) struct Forwarder {
    queues: Vec<(String, mpsc::Sender<AuditRecord>)>,
}

impl Forwarder {
    pub fn start(sinks: Vec<AuditSink>) -> Self {
        let queues = sinks
            .into_iter()
            .map(|sink| {
                let (tx, rx) = mpsc::channel(QUEUE);
                let name = format!("{sink:?}");
                tokio::spawn(deliver(sink, rx));
                (name, tx)
            })
            .collect();
        Self { queues }
    }

    /// Queues records for every destination without waiting.
    pub fn forward(&self, records: &[AuditRecord]) {
        for (name, queue) in &self.queues {
            for r in records {
                if queue.try_send(r.clone()).is_err() {
                    tracing::warn!(destination = %name, seq = r.seq, "audit forwarding queue full; record not forwarded");
                }
            }
        }
    }
}

async fn deliver(sink: AuditSink, mut rx: mpsc::Receiver<AuditRecord>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let mut tcp: Option<tokio::net::TcpStream> = None;
    let udp = match &sink {
        AuditSink::Syslog { tcp: false, .. } => tokio::net::UdpSocket::bind("0.0.0.0:0").await.ok(),
        _ => None,
    };
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, WEBHOOK_BATCH).await > 0 {
        let records: Vec<AuditRecord> = std::mem::take(&mut batch);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = match &sink {
                AuditSink::Syslog {
                    address,
                    tcp: false,
                    hostname,
                } => send_udp(udp.as_ref(), address, &records, hostname).await,
                AuditSink::Syslog {
                    address,
                    tcp: true,
                    hostname,
                } => send_tcp(&mut tcp, address, &records, hostname).await,
                AuditSink::Webhook { url, secret } => {
                    send_webhook(&http, url, secret, &records).await
                }
            };
            match sent {
                Ok(()) => break,
                Err(e) if attempt < ATTEMPTS => {
                    tracing::warn!(destination = ?sink, error = %e, attempt, "forwarding audit records failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt))).await;
                }
                Err(e) => {
                    let first = records.first().map_or(0, |r| r.seq);
                    tracing::error!(destination = ?sink, error = %e, first, count = records.len(), "audit records not forwarded");
                    break;
                }
            }
        }
    }
}

async fn send_udp(
    socket: Option<&tokio::net::UdpSocket>,
    address: &str,
    records: &[AuditRecord],
    hostname: &str,
) -> Result<(), String> {
    let socket = socket.ok_or("no UDP socket")?;
    for r in records {
        socket
            .send_to(syslog_message(r, hostname).as_bytes(), address)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn send_tcp(
    conn: &mut Option<tokio::net::TcpStream>,
    address: &str,
    records: &[AuditRecord],
    hostname: &str,
) -> Result<(), String> {
    if conn.is_none() {
        *conn = Some(
            tokio::net::TcpStream::connect(address)
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    let mut frames = Vec::new();
    for r in records {
        let msg = syslog_message(r, hostname);
        frames.extend_from_slice(format!("{} {msg}", msg.len()).as_bytes());
    }
    let Some(stream) = conn.as_mut() else {
        return Err("not connected".to_owned());
    };
    if let Err(e) = stream.write_all(&frames).await {
        *conn = None;
        return Err(e.to_string());
    }
    Ok(())
}

async fn send_webhook(
    http: &reqwest::Client,
    url: &str,
    secret: &Secret<String>,
    records: &[AuditRecord],
) -> Result<(), String> {
    let body = serde_json::to_vec(&serde_json::json!({ "records": records }))
        .map_err(|e| e.to_string())?;
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs().to_string())
        .unwrap_or_default();
    let signature = webhook_signature(secret.expose().as_bytes(), &timestamp, &body)?;
    let resp = http
        .post(url)
        .header("content-type", "application/json")
        .header("x-switchboard-timestamp", &timestamp)
        .header("x-switchboard-signature", format!("sha256={signature}"))
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("the webhook answered {}", resp.status()))
    }
}
