//! Seed 000 end to end against `invitebus serve` (all roles): xuan invites fang to become a PC
//! member of a conference; fang sees it in the inbox and in `received`; xuan sees fang in `sent`;
//! fang accepts; xuan's inbox says so; the status filters follow.

mod support;

use invitebus_events::Reply;
use invitebus_natsrun::NatsServer;
use serde_json::{json, Value};
use support::{connect, healthy, send, Serve};

async fn query(client: &async_nats::Client, name: &str, body: Value) -> Value {
    let msg = client
        .request(format!("invites.q.{name}"), body.to_string().into())
        .await
        .unwrap();
    let reply: Reply = serde_json::from_slice(&msg.payload).unwrap();
    reply.into_result().unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xuan_invites_fang_to_become_pcmember() {
    let nats = NatsServer::start_temp().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut serve = Serve::start(&nats.url(), data.path());
    let client = connect(&nats.url()).await;
    healthy(&client).await;
    for body in [
        json!({"actor":"xuan","user_id":"xuan","name":"Xuan","email":"xuan@example.org"}),
        json!({"actor":"fang","user_id":"fang","name":"Fang"}),
    ] {
        assert!(send(&client, "UpsertUser", &body).await.unwrap().ok);
    }
    let conf = json!({"actor":"xuan","resource_id":"conf1","kind":"conference","name":"ICSE 2027"});
    assert!(send(&client, "RegisterResource", &conf).await.unwrap().ok);
    let created = send(
        &client,
        "CreateInvite",
        &json!({"actor":"xuan","resource_id":"conf1","invitee":"fang","role":"pcmember"}),
    )
    .await
    .unwrap();
    let p = created.position().unwrap();
    let invite_id = created.data.unwrap()["invite_id"].as_str().unwrap().to_string();

    let inbox = query(&client, "inbox", json!({"actor":"fang","min_position":p})).await;
    assert_eq!(
        inbox["items"][0]["text"],
        "You have received an invitation about becoming pcmember!"
    );
    let received = query(&client, "received", json!({"actor":"fang","min_position":p})).await;
    assert_eq!(received["items"][0]["invite_id"], invite_id.as_str());
    assert_eq!(received["items"][0]["user_info"]["name"], "Xuan");
    assert_eq!(received["items"][0]["user_info"]["email"], "xuan@example.org");
    assert_eq!(received["items"][0]["resource_info"]["name"], "ICSE 2027");
    assert_eq!(received["items"][0]["status"], "pending");
    let sent = query(&client, "sent", json!({"actor":"xuan","min_position":p})).await;
    assert_eq!(sent["items"][0]["invitees"][0]["user_id"], "fang");
    assert_eq!(
        query(&client, "sent", json!({"actor":"xuan","status":"init"})).await["total"],
        1
    );

    let accepted = send(&client, "AcceptInvite", &json!({"actor":"fang","invite_id":invite_id}))
        .await
        .unwrap();
    let p = accepted.position().unwrap();
    let inbox = query(&client, "inbox", json!({"actor":"xuan","min_position":p})).await;
    assert_eq!(inbox["items"][0]["text"], "Fang has agreed to become pcmember");
    assert_eq!(
        query(
            &client,
            "received",
            json!({"actor":"fang","status":"accept","min_position":p})
        )
        .await["total"],
        1
    );
    assert_eq!(
        query(&client, "received", json!({"actor":"fang","status":"init"})).await["total"],
        0
    );
    assert_eq!(
        query(&client, "received", json!({"actor":"fang","status":"reject"})).await["total"],
        0
    );
    assert_eq!(
        query(&client, "sent", json!({"actor":"xuan","status":"accept"})).await["total"],
        1
    );
    assert_eq!(serve.terminate().code(), Some(0));
}
