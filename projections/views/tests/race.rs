//! Accept, cancel and expiry racing on one invite: exactly one wins, and the views agree with the log.

mod support;

use invitebus_events::{ErrorCode, Reply};
use serde_json::json;
use support::{conference, Stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_cancel_and_expire_race_and_one_wins() {
    let s = Stack::start().await;
    conference(&s).await;
    for round in 0..20 {
        let id = format!("race{round}");
        s.ok(
            "CreateInvite",
            json!({"actor":"xuan","resource_id":"conf","invitee":format!("u{round}"),"invite_id":id}),
        )
        .await;
        let attempts = [
            ("AcceptInvite", json!({"actor":format!("u{round}"),"invite_id":id})),
            ("CancelInvite", json!({"actor":"xuan","invite_id":id})),
            ("ExpireInvite", json!({"actor":"system","invite_id":id})),
        ];
        let tasks: Vec<_> = attempts
            .into_iter()
            .map(|(name, body)| {
                let client = s.client.clone();
                tokio::spawn(async move {
                    let subject = invitebus_events::subject::Subjects::default().command(name);
                    let msg = client.request(subject, body.to_string().into()).await.unwrap();
                    (name, serde_json::from_slice::<Reply>(&msg.payload).unwrap())
                })
            })
            .collect();
        let mut winners = vec![];
        for t in tasks {
            let (name, reply) = t.await.unwrap();
            match reply.error {
                None => winners.push(name),
                Some(e) => assert!(
                    matches!(
                        e.code,
                        ErrorCode::AlreadyAccepted
                            | ErrorCode::Cancelled
                            | ErrorCode::Expired
                            | ErrorCode::InvalidState
                    ),
                    "{name}: {e}"
                ),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        let head = s.head();
        let state = s
            .q("state", json!({"actor":"xuan","stream_id":format!("invite-{id}")}))
            .await;
        let view = s
            .q("invite", json!({"actor":"xuan","invite_id":id,"min_position":head}))
            .await;
        assert_eq!(view["status"], state["state"]["status"], "round {round}");
        assert_eq!(
            view["members"][0]["status"], state["state"]["records"][0]["status"],
            "round {round}"
        );
        let expected = match winners[0] {
            "AcceptInvite" => "accepted",
            "CancelInvite" => "cancelled",
            _ => "expired",
        };
        assert_eq!(state["state"]["records"][0]["status"], expected);
    }
}
