//! What the adapters' unit tests share: checking a [`HookResponse`], and
//! the replies they render.

use switchboard_core::chat::{AlertCard, Button, ButtonStyle, ExecutionRef, Inbound, Reply};
use switchboard_core::{ActionName, ExecutionId, Principal};

use super::HookResponse;

/// The one message a request carried, which was answered 200.
pub(crate) fn only_inbound(r: &HookResponse) -> &Inbound {
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.inbound.len(), 1);
    &r.inbound[0]
}

/// The request was refused with `status`, for a reason containing `reason_part`.
pub(crate) fn refused(r: &HookResponse, status: u16, reason_part: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert!(r.inbound.is_empty());
    let reason = &r.rejection.as_ref().expect("a rejection").reason;
    assert!(reason.contains(reason_part), "{reason}");
}

/// Execution `id` of `host.reboot`, with a link to its page.
pub(crate) fn execution(id: i64) -> ExecutionRef {
    ExecutionRef {
        id: ExecutionId(id),
        action: ActionName::new("host.reboot").unwrap(),
        link: Some(format!("https://sb.example/executions/{id}")),
    }
}

/// alice's request `id`, awaiting the approval of a lead.
pub(crate) fn approval(id: i64) -> Reply {
    Reply::ApprovalRequest {
        execution: execution(id),
        requester: Principal::new("alice").unwrap(),
        approvers: "1 of group:sre-leads".into(),
        expires_at: None,
    }
}

/// An alert group with a runbook and two buttons.
pub(crate) fn alert_card() -> AlertCard {
    AlertCard {
        title: "[FIRING:1] DiskFull (critical)".into(),
        firing: true,
        group: "0668fc525e22".into(),
        alerts: Vec::new(),
        more: 0,
        acknowledged: None,
        links: vec![("Runbook".into(), "https://runbooks.example.com/disk".into())],
        buttons: vec![
            Button {
                label: "Ack".into(),
                command: "ack 0668fc525e22".into(),
                style: ButtonStyle::Primary,
            },
            Button {
                label: "Silence 1h".into(),
                command: "silence group=0668fc525e22 for 1h because busy".into(),
                style: ButtonStyle::Plain,
            },
        ],
    }
}

/// A secret written to a file of `dir`, and its `file:` reference.
pub(crate) fn file_ref(dir: &tempfile::TempDir, name: &str, value: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, format!("{value}\n")).unwrap();
    format!("file:{}", path.display())
}
