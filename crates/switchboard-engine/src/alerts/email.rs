//! The email outlet: a notification rendered as a readable message — the
//! subject says the status, the count and the group, the body (plain text
//! and HTML) lists each alert with its summary, labels, start and links
//! (runbook, dashboard, source, and how to silence it) — and sent over SMTP
//! with `lettre` (STARTTLS, or TLS on port 465, unless the receiver says
//! `require_tls = false`). Every message of one group carries the same
//! `References` header, so mail clients thread a group's notifications.
//!
//! Renders from the stored notification (Alertmanager's webhook body), like
//! every outlet. Not here: when to send and retries.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use minijinja::{Environment, context};
use serde_json::Value;
use switchboard_core::alerts::aggregation::GroupId;
use switchboard_core::alerts::receivers::EmailConfig;

/// How long one SMTP conversation may take.
const TIMEOUT: Duration = Duration::from_secs(20);

const TEXT: &str = r"{{ title }}
{% for a in alerts %}
[{{ a.status | upper }}] {{ a.name }}{% if a.summary %}: {{ a.summary }}{% endif %}
{%- if a.description %}
  {{ a.description }}{% endif %}
  labels: {{ a.labels }}
  since: {{ a.startsAt }}{% if a.status == 'resolved' %}, resolved {{ a.endsAt }}{% endif %}
{%- for l in a.links %}
  {{ l.name }}: {{ l.url }}{% endfor %}
  silence: {{ a.silence }}
{% endfor %}
--
Sent by Switchboard to receiver {{ receiver }} (group {{ group_id }}).
";

const HTML: &str = r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{ title }}</title></head>
<body style="font-family: sans-serif; color: #1a1a1a">
<h2 style="color: {% if status == 'firing' %}#b00020{% else %}#1b5e20{% endif %}">{{ title }}</h2>
<table cellpadding="6" style="border-collapse: collapse; border: 1px solid #ccc">
<tr style="background: #f0f0f0"><th align="left">Status</th><th align="left">Alert</th><th align="left">Labels</th><th align="left">Since</th><th align="left">Links</th></tr>
{% for a in alerts %}<tr style="border-top: 1px solid #ccc">
<td><b>{{ a.status | upper }}</b></td>
<td><b>{{ a.name }}</b>{% if a.summary %}<br>{{ a.summary }}{% endif %}{% if a.description %}<br><small>{{ a.description }}</small>{% endif %}</td>
<td><small>{{ a.labels }}</small></td>
<td><small>{{ a.startsAt }}{% if a.status == 'resolved' %}<br>resolved {{ a.endsAt }}{% endif %}</small></td>
<td><small>{% for l in a.links %}<a href="{{ l.url }}">{{ l.name }}</a><br>{% endfor %}silence: <code>{{ a.silence }}</code></small></td>
</tr>
{% endfor %}</table>
<p><small>Sent by Switchboard to receiver {{ receiver }} (group {{ group_id }}).</small></p>
</body></html>
"#;

/// One alert, ready for the templates.
#[derive(serde::Serialize)]
struct AlertView {
    status: String,
    name: String,
    summary: String,
    description: String,
    labels: String,
    #[serde(rename = "startsAt")]
    starts_at: String,
    #[serde(rename = "endsAt")]
    ends_at: String,
    links: Vec<Link>,
    silence: String,
}

#[derive(serde::Serialize)]
struct Link {
    name: &'static str,
    url: String,
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn pairs(v: &Value) -> Vec<(String, String)> {
    v.as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), text(v)))
        .collect()
}

/// The subject: `[FIRING:2] DiskFull (eu critical)` — status, count, the
/// group's label values, then the other labels all its alerts share.
pub(crate) fn subject(n: &Value) -> String {
    let status = text(&n["status"]).to_uppercase();
    let alerts = n["alerts"].as_array().map_or(0, Vec::len);
    let firing = n["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["status"] == "firing")
        .count();
    let count = if status == "FIRING" { firing } else { alerts };
    let group = pairs(&n["groupLabels"]);
    let mut subject = format!("[{status}:{count}]");
    for (_, v) in &group {
        subject.push(' ');
        subject.push_str(v);
    }
    let rest: Vec<String> = pairs(&n["commonLabels"])
        .into_iter()
        .filter(|(k, _)| !group.iter().any(|(g, _)| g == k))
        .map(|(_, v)| v)
        .collect();
    if !rest.is_empty() {
        subject.push_str(&format!(" ({})", rest.join(" ")));
    }
    subject
}

fn alert_view(a: &Value) -> AlertView {
    let labels = pairs(&a["labels"]);
    let annotation = |k: &str| text(&a["annotations"][k]);
    let mut links = Vec::new();
    for (name, key) in [("runbook", "runbook_url"), ("dashboard", "dashboard_url")] {
        let url = annotation(key);
        if url.starts_with("http://") || url.starts_with("https://") {
            links.push(Link { name, url });
        }
    }
    let source = text(&a["generatorURL"]);
    if source.starts_with("http://") || source.starts_with("https://") {
        links.push(Link {
            name: "source",
            url: source,
        });
    }
    let matchers: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k == "alertname" || k == "instance")
        .map(|(k, v)| format!("{k}={}", serde_json::Value::from(v.as_str())))
        .collect();
    AlertView {
        status: text(&a["status"]),
        name: a["labels"]["alertname"]
            .as_str()
            .unwrap_or("alert")
            .to_owned(),
        summary: annotation("summary"),
        description: annotation("description"),
        labels: labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" "),
        starts_at: text(&a["startsAt"]),
        ends_at: text(&a["endsAt"]),
        links,
        silence: format!("silence {} for 2h because …", matchers.join(" ")),
    }
}

/// The message for notification `n`.
pub(crate) fn message(config: &EmailConfig, n: &Value) -> Result<Message, String> {
    let group = GroupId {
        key: text(&n["groupKey"]),
        receiver: text(&n["receiver"]),
    };
    let group_id = group.short();
    let alerts: Vec<AlertView> = n["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(alert_view)
        .collect();
    let title = subject(n);
    let mut env = Environment::new();
    env.add_template("text.txt", TEXT)
        .map_err(|e| e.to_string())?;
    env.add_template("html.html", HTML)
        .map_err(|e| e.to_string())?;
    let ctx = context! {
        title => &title,
        status => text(&n["status"]),
        alerts => minijinja::value::Serde(&alerts),
        receiver => &group.receiver,
        group_id => &group_id,
    };
    let render = |name: &str| {
        env.get_template(name)
            .and_then(|t| t.render(&ctx))
            .map_err(|e| format!("cannot render the email: {e}"))
    };
    let (plain, html) = (render("text.txt")?, render("html.html")?);
    let mailbox = |a: &str| {
        a.parse::<Mailbox>()
            .map_err(|e| format!("`{a}` is not an address: {e}"))
    };
    let mut builder = Message::builder()
        .from(mailbox(&config.from)?)
        .subject(title)
        .message_id(Some(format!("<{}.{group_id}@switchboard>", random_token())))
        .references(format!("<group-{group_id}@switchboard>"))
        .in_reply_to(format!("<group-{group_id}@switchboard>"));
    for to in &config.to {
        builder = builder.to(mailbox(to)?);
    }
    builder
        .multipart(MultiPart::alternative_plain_html(plain, html))
        .map_err(|e| format!("cannot build the email: {e}"))
}

fn random_token() -> String {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).unwrap_or_default();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sends notification `n` to `config`'s recipients.
pub(crate) async fn send(config: &EmailConfig, n: &Value) -> Result<(), String> {
    let message = message(config, n)?;
    let (host, port) = config
        .host_port()
        .ok_or_else(|| format!("smarthost `{}` is not host:port", config.smarthost))?;
    let mut transport = if !config.require_tls {
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
    } else if port == 465 {
        AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(|e| e.to_string())?
    } else {
        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).map_err(|e| e.to_string())?
    }
    .port(port)
    .timeout(Some(TIMEOUT));
    if let (Some(user), Some(password)) = (&config.auth_username, &config.auth_password) {
        let password = password.resolve().map_err(|e| e.to_string())?;
        transport =
            transport.credentials(Credentials::new(user.clone(), password.expose().clone()));
    }
    transport
        .build()
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| format!("{}: {e}", config.smarthost))
}
