//! The chat outlet: an alert group as one message in a room (a "card":
//! title, alerts, acknowledgement, runbook and dashboard links, and buttons
//! that say `ack`, `silence … for 1h` and `automate` for whoever presses
//! them), posted on the first notification, edited in place on each later
//! one with a short notice in its thread saying what changed, and
//! forgotten when the group resolves (a new firing starts a new message).
//! Acknowledgements and automation runs are told in the same thread.
//!
//! Renders from the stored notification (Alertmanager's webhook body), like
//! every outlet, and delivers through the [`ChatOutlet`] of the platform's
//! adapter (registered by the daemon). Not here: the platforms' markup and
//! buttons (the adapters), what a pressed button does (the chat commands).

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;
use switchboard_core::Timestamp;
use switchboard_core::alerts::LabelSet;
use switchboard_core::alerts::aggregation::GroupId;
use switchboard_core::alerts::receivers::ChatConfig;
use switchboard_core::chat::{
    AlertCard, Button, ButtonStyle, CardAlert, ChatOutlet, Destination, Posted, Reply, minutes,
};
use switchboard_store::{StoredChatCard, StoredDelivery};

use crate::{Engine, Shared};

/// The most alerts a card lists.
const LISTED: usize = 10;
/// The most automation buttons a card carries.
const AUTOMATION_BUTTONS: usize = 3;

fn text(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

/// The buttons and links of a card: what the group's firing alerts allow.
fn buttons(shared: &Shared, n: &Value, group: &str, acknowledged: bool) -> Vec<Button> {
    if n["status"] != "firing" {
        return Vec::new();
    }
    let mut buttons = Vec::new();
    if !acknowledged {
        buttons.push(Button {
            label: "Ack".to_owned(),
            command: format!("ack {group}"),
            style: ButtonStyle::Primary,
        });
    }
    // Silence what the group has in common: its group labels, else the
    // labels all its alerts share.
    let pick = |key: &str| {
        n[key].as_object().filter(|m| !m.is_empty()).map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), text(v).unwrap_or_default()))
                .collect::<Vec<_>>()
        })
    };
    if let Some(labels) = pick("groupLabels").or_else(|| pick("commonLabels")) {
        let matchers: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}={}", quoted(v)))
            .collect();
        buttons.push(Button {
            label: "Silence 1h".to_owned(),
            command: format!(
                "silence {} for 1h because silenced from the alert's chat message",
                matchers.join(" ")
            ),
            style: ButtonStyle::Plain,
        });
    }
    if let Some(config) = shared.catalog().alerts.clone() {
        let firing: Vec<LabelSet> = n["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["status"] == "firing")
            .filter_map(|a| {
                let labels = a["labels"].as_object()?;
                LabelSet::from_pairs(labels.iter().map(|(k, v)| (k, v.as_str().unwrap_or("")))).ok()
            })
            .collect();
        let rules = config
            .automations
            .iter()
            .filter(|r| firing.iter().any(|l| r.matches(l)))
            .take(AUTOMATION_BUTTONS);
        for rule in rules {
            buttons.push(Button {
                label: format!("Run {}", rule.action),
                command: format!("automate {group} {}", rule.name),
                style: ButtonStyle::Danger,
            });
        }
    }
    buttons
}

/// A label value as the silence grammar reads it: double-quoted, with `"`
/// and `\` escaped.
fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The card of notification `n` of `group`, with what is known now of its
/// acknowledgements.
fn card(shared: &Shared, n: &Value, group: &GroupId) -> AlertCard {
    let short = group.short();
    let all: Vec<&Value> = n["alerts"].as_array().into_iter().flatten().collect();
    let mut alerts: Vec<CardAlert> = all
        .iter()
        .map(|a| CardAlert {
            firing: a["status"] == "firing",
            name: text(&a["labels"]["alertname"]).unwrap_or_else(|| "(unnamed)".to_owned()),
            target: text(&a["labels"]["instance"]).or_else(|| text(&a["labels"]["host"])),
            summary: text(&a["annotations"]["summary"]),
            since: a["startsAt"]
                .as_str()
                .and_then(Timestamp::parse_rfc3339)
                .unwrap_or(Timestamp(0)),
            fingerprint: text(&a["fingerprint"]).unwrap_or_default(),
        })
        .collect();
    // Firing first, then by start.
    alerts.sort_by_key(|a| (!a.firing, a.since));
    let more = alerts.len().saturating_sub(LISTED);
    alerts.truncate(LISTED);
    let acknowledged = shared
        .alerting
        .ack_of_group(group)
        .map(|(by, at, what)| match what {
            None => format!("{by} at {}", minutes(at)),
            Some(alert) => format!("{by} at {} (alert `{alert}`)", minutes(at)),
        });
    let mut links = Vec::new();
    for (name, key) in [("Runbook", "runbook_url"), ("Dashboard", "dashboard_url")] {
        let url = text(&n["commonAnnotations"][key])
            .or_else(|| all.iter().find_map(|a| text(&a["annotations"][key])));
        if let Some(url) = url.filter(|u| u.starts_with("https://") || u.starts_with("http://")) {
            links.push((name.to_owned(), url));
        }
    }
    AlertCard {
        title: super::email::subject(n),
        firing: n["status"] == "firing",
        buttons: buttons(shared, n, &short, acknowledged.is_some()),
        group: short,
        alerts,
        more,
        acknowledged,
        links,
    }
}

/// `DiskFull on db-1`, for notices.
fn describe(a: &Value) -> String {
    let name = text(&a["labels"]["alertname"]).unwrap_or_else(|| "(unnamed)".to_owned());
    match text(&a["labels"]["instance"]).or_else(|| text(&a["labels"]["host"])) {
        Some(target) => format!("{name} on {target}"),
        None => name,
    }
}

/// What changed from notification `old` to `new`, in one line.
fn change(old: &Value, new: &Value) -> String {
    let state = |n: &Value, status: &str| -> BTreeSet<String> {
        n["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["status"] == status)
            .filter_map(|a| text(&a["fingerprint"]))
            .collect()
    };
    let was_firing = state(old, "firing");
    let named = |fps: &BTreeSet<String>| -> Vec<String> {
        new["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| text(&a["fingerprint"]).is_some_and(|f| fps.contains(&f)))
            .map(describe)
            .collect()
    };
    let title = super::email::subject(new);
    if new["status"] != "firing" {
        return format!("{title}: all resolved.");
    }
    let started: BTreeSet<String> = state(new, "firing")
        .difference(&was_firing)
        .cloned()
        .collect();
    let ended: BTreeSet<String> = state(new, "resolved")
        .intersection(&was_firing)
        .cloned()
        .collect();
    let mut parts = Vec::new();
    if !started.is_empty() {
        parts.push(format!("now firing: {}", named(&started).join(", ")));
    }
    if !ended.is_empty() {
        parts.push(format!("resolved: {}", named(&ended).join(", ")));
    }
    if parts.is_empty() {
        format!("{title}: still firing.")
    } else {
        format!("{title}: {}.", parts.join("; "))
    }
}

fn failed(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Delivers notification `d` to the room of `config`.
pub(super) async fn send(
    shared: &Arc<Shared>,
    d: &StoredDelivery,
    config: &ChatConfig,
) -> Result<(), String> {
    let outlet = shared.chat_outlet(&config.platform).ok_or_else(|| {
        format!(
            "no chat platform `{}` is running (configure `[chat.{}]`)",
            config.platform, config.platform
        )
    })?;
    let group = GroupId {
        key: d.group_key.clone(),
        receiver: d.receiver.clone(),
    };
    let n = &d.notification;
    let reply = Reply::Alert {
        card: card(shared, n, &group),
    };
    let firing = n["status"] == "firing";
    let known = shared
        .store
        .chat_cards(&d.group_key, &d.receiver)
        .await
        .map_err(failed)?
        .into_iter()
        .find(|c| {
            c.integration == d.integration && c.platform == config.platform && c.room == config.room
        });
    let posted = match &known {
        None => outlet
            .post(
                &Destination {
                    room: config.room.clone(),
                    thread: None,
                },
                &reply,
            )
            .await
            .map_err(failed)?,
        Some(c) => {
            let posted = posted_of(c);
            let notice = Reply::Text {
                text: change(&c.notification, n),
            };
            if outlet.capabilities().edits {
                outlet.update(&posted, &reply).await.map_err(failed)?;
                // An edit notifies nobody: the thread says what changed.
                outlet
                    .post(&posted.thread(), &notice)
                    .await
                    .map_err(failed)?;
            } else {
                outlet
                    .post(&posted.thread(), &reply)
                    .await
                    .map_err(failed)?;
            }
            posted
        }
    };
    let thread = posted.thread();
    if firing {
        shared
            .store
            .save_chat_card(&StoredChatCard {
                group_key: d.group_key.clone(),
                receiver: d.receiver.clone(),
                integration: d.integration.clone(),
                platform: config.platform.clone(),
                room: posted.room,
                message_id: posted.id,
                thread: posted.thread,
                notification: n.clone(),
                updated_at: Timestamp::now(),
            })
            .await
            .map_err(failed)?;
    } else if known.is_some() {
        shared
            .store
            .delete_chat_card(&d.group_key, &d.receiver, &d.integration)
            .await
            .map_err(failed)?;
    }
    if firing && known.is_none() {
        // Automation rules may have run before the group had a message
        // (a rule without delay runs before `group_wait` is over). Read
        // after the message is stored: a run recorded later finds the
        // message itself (`run_due_automations`), so none goes untold.
        let engine = Engine {
            shared: Arc::clone(shared),
        };
        let n = n.clone();
        let outlet = Arc::clone(&outlet);
        tokio::spawn(async move { engine.tell_earlier_automations(&n, thread, outlet).await });
    }
    Ok(())
}

fn posted_of(c: &StoredChatCard) -> Posted {
    Posted {
        room: c.room.clone(),
        id: c.message_id.clone(),
        thread: c.thread.clone(),
    }
}

/// A group's messages in chat, with their platforms' outlets.
pub(crate) struct Thread {
    pub(crate) card: StoredChatCard,
    pub(crate) outlet: Arc<dyn ChatOutlet>,
}

impl Thread {
    /// Where replies in its thread go.
    pub(crate) fn destination(&self) -> Destination {
        posted_of(&self.card).thread()
    }
}

impl Engine {
    /// Tells a group's new thread the automation runs its firing alerts
    /// had in this firing episode: each run followed like a command's, or
    /// why it did not run.
    async fn tell_earlier_automations(
        &self,
        n: &Value,
        to: Destination,
        outlet: Arc<dyn ChatOutlet>,
    ) {
        for a in n["alerts"].as_array().into_iter().flatten() {
            let (Some(fp), Some(since)) = (
                text(&a["fingerprint"]),
                a["startsAt"].as_str().and_then(Timestamp::parse_rfc3339),
            ) else {
                continue;
            };
            let runs = match self.shared.store.automations_of(&fp).await {
                Ok(runs) => runs,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read an alert's automation runs");
                    continue;
                }
            };
            for run in runs.into_iter().rev().filter(|r| r.starts_at >= since) {
                let told = match (run.state.as_str(), run.execution_id) {
                    ("ran", Some(id)) => match self.get(switchboard_core::ExecutionId(id)).await {
                        Ok(execution) => {
                            let ack =
                                format!("Automation `{}` runs {}…", run.rule, execution.action);
                            self.announce_run(execution, ack, to.clone(), outlet.clone())
                                .await
                                .map_err(|e| e.to_string())
                        }
                        Err(e) => Err(e.to_string()),
                    },
                    ("failed", _) => {
                        let notice = Reply::Text {
                            text: format!(
                                "Automation `{}` did not run: {}",
                                run.rule,
                                run.reason.as_deref().unwrap_or("(no reason kept)")
                            ),
                        };
                        outlet.post(&to, &notice).await.map(|_| ()).map_err(failed)
                    }
                    _ => Ok(()),
                };
                if let Err(e) = told {
                    tracing::warn!(error = %e, rule = %run.rule, "cannot tell an automation run in chat");
                }
            }
        }
    }

    /// The chat messages showing the groups, on platforms that run.
    pub(crate) async fn alert_threads(&self, groups: &[GroupId]) -> Vec<Thread> {
        let mut threads = Vec::new();
        for g in groups {
            match self.shared.store.chat_cards(&g.key, &g.receiver).await {
                Ok(cards) => threads.extend(cards.into_iter().filter_map(|card| {
                    let outlet = self.shared.chat_outlet(&card.platform)?;
                    Some(Thread { card, outlet })
                })),
                Err(e) => tracing::warn!(error = %e, "cannot read an alert group's chat messages"),
            }
        }
        threads
    }

    /// Tells `notice` in the threads of `groups` (except `except`, which
    /// heard it already), and draws their cards again (an acknowledgement
    /// shows on them).
    pub(crate) async fn tell_alert_threads(
        &self,
        groups: &[GroupId],
        notice: &str,
        except: Option<&Destination>,
    ) {
        for thread in self.alert_threads(groups).await {
            let group = GroupId {
                key: thread.card.group_key.clone(),
                receiver: thread.card.receiver.clone(),
            };
            let outlet = &thread.outlet;
            if outlet.capabilities().edits {
                let reply = Reply::Alert {
                    card: card(&self.shared, &thread.card.notification, &group),
                };
                if let Err(e) = outlet.update(&posted_of(&thread.card), &reply).await {
                    tracing::warn!(error = %e, "cannot redraw an alert group's chat message");
                }
            }
            if except == Some(&thread.destination()) {
                continue;
            }
            let said = Reply::Text {
                text: notice.to_owned(),
            };
            if let Err(e) = outlet.post(&thread.destination(), &said).await {
                tracing::warn!(error = %e, "cannot tell an alert group's chat thread");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alert(fp: &str, instance: &str, status: &str) -> Value {
        json!({"status": status, "fingerprint": fp,
               "labels": {"alertname": "DiskFull", "instance": instance},
               "annotations": {}, "startsAt": "2026-11-26T10:00:00Z"})
    }

    fn notification(alerts: Vec<Value>) -> Value {
        let firing = alerts.iter().any(|a| a["status"] == "firing");
        json!({"status": if firing { "firing" } else { "resolved" }, "alerts": alerts,
               "groupLabels": {"alertname": "DiskFull"}, "commonLabels": {"alertname": "DiskFull"}})
    }

    #[test]
    fn a_notice_says_what_started_and_what_resolved() {
        let old = notification(vec![
            alert("a1", "db-1", "firing"),
            alert("b2", "db-2", "firing"),
        ]);
        let new = notification(vec![
            alert("a1", "db-1", "resolved"),
            alert("b2", "db-2", "firing"),
            alert("c3", "db-3", "firing"),
        ]);
        assert_eq!(
            change(&old, &new),
            "[FIRING:2] DiskFull: now firing: DiskFull on db-3; resolved: DiskFull on db-1."
        );
        assert_eq!(change(&new, &new), "[FIRING:2] DiskFull: still firing.");
        let done = notification(vec![alert("b2", "db-2", "resolved")]);
        assert_eq!(change(&new, &done), "[RESOLVED:1] DiskFull: all resolved.");
    }

    #[test]
    fn silence_values_are_quoted_for_the_silence_grammar() {
        assert_eq!(quoted("db-1"), "\"db-1\"");
        assert_eq!(quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
