//! Seed 002 over the gateway's WebSocket: a call between two connected clients, an offline invitee
//! who gets the invite on connecting, the 10201 of a live-only invite to someone offline, and
//! seed 002's error codes; a paused channel refuses invites with 409; a bad token gets no socket.

mod support;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use support::gateway::Gateway;
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Client {
    ws: Socket,
}

impl Client {
    async fn connect(gw: &Gateway, user: &str) -> Client {
        let url = format!("ws://{}/ws?accessToken={}", gw.addr, Gateway::token(user));
        let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("the socket opens");
        Client { ws }
    }

    /// The next JSON frame, within 10 s.
    async fn next(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("a frame within 10 s")
                .expect("the socket is open")
                .unwrap();
            if let Message::Text(text) = msg {
                return serde_json::from_str(text.as_str()).unwrap();
            }
        }
    }

    /// The next frame that is not a notification.
    async fn reply(&mut self) -> Value {
        loop {
            let frame = self.next().await;
            if frame["op"] != "notify" {
                return frame;
            }
        }
    }

    /// The next notification of `event_type`.
    async fn notified(&mut self, event_type: &str) -> Value {
        loop {
            let frame = self.next().await;
            if frame["op"] == "notify" && frame["eventType"] == event_type {
                return frame;
            }
        }
    }

    async fn send(&mut self, frame: Value) -> Value {
        self.ws.send(Message::Text(frame.to_string().into())).await.unwrap();
        self.reply().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_invites_and_seed_002_codes_over_the_socket() {
    let gw = Gateway::start().await;
    let mut cs1 = Client::connect(&gw, "cs1").await;
    let mut cs2 = Client::connect(&gw, "cs2").await;
    assert_eq!(cs1.send(json!({"op": "ping"})).await["code"], 200, "the socket answers");
    assert_eq!(cs2.send(json!({"op": "ping"})).await["code"], 200);

    // cs1 calls cs2, who is online: 200, and cs2 is told at once.
    let call = json!({"op": "call", "type": 1, "channelName": "room", "channelId": "2ed4a942417e4b33949f1b65739f3f00",
        "account": "cs2", "requestId": "123", "offlineEnabled": false, "uid": "1", "attachExt": "12",
        "pushInfo": {"needPush": true, "pushTitle": "title", "pushContent": "你收到了邀请", "pushPayload": {"from": 111}, "needBadge": true}});
    let reply = cs1.send(call.clone()).await;
    assert_eq!(
        (
            reply["op"].as_str(),
            reply["requestId"].as_str(),
            reply["code"].as_u64()
        ),
        (Some("call"), Some("123"), Some(200)),
        "{reply}"
    );
    assert_eq!(
        reply["data"]["channelInfo"]["channelId"],
        "2ed4a942417e4b33949f1b65739f3f00"
    );
    let invite = cs2.notified("INVITE").await;
    assert_eq!(
        (invite["requestId"].as_str(), invite["from"].as_str()),
        (Some("123"), Some("cs1"))
    );
    assert_eq!(invite["channelId"], "2ed4a942417e4b33949f1b65739f3f00");
    assert_eq!(invite["offline"], false);

    // The same channel again: 10405.
    assert_eq!(
        cs1.send(json!({"op": "call", "channelId": "2ed4a942417e4b33949f1b65739f3f00", "account": "cs3"}))
            .await["code"],
        10405
    );

    // cs2 accepts; cs1 hears of it. Answering twice: 10410, cancelling an accepted invite: 10410.
    let accept = json!({"op": "accept", "channelId": "2ed4a942417e4b33949f1b65739f3f00", "account": "cs1", "requestId": "123",
        "offlineEnabled": false, "autoJoin": true});
    assert_eq!(cs2.send(accept.clone()).await["code"], 200);
    let accepted = cs1.notified("ACCEPT").await;
    assert_eq!(
        (accepted["requestId"].as_str(), accepted["from"].as_str()),
        (Some("123"), Some("cs2"))
    );
    assert_eq!(cs2.send(accept).await["code"], 10410);
    assert_eq!(
        cs1.send(json!({"op": "cancel", "requestId": "123", "account": "cs2"}))
            .await["code"],
        10410
    );

    // An offline invitee with offline delivery: 200 now, the invite when cs3 connects.
    let invite = json!({"op": "invite", "channelId": "2ed4a942417e4b33949f1b65739f3f00", "account": "cs3", "requestId": "124",
        "offlineEnabled": true});
    assert_eq!(cs1.send(invite).await["code"], 200);
    // Live only, to someone offline: the invite is made, and 10201 says the peer is not online.
    let live_only = json!({"op": "signalingInvite", "channelId": "2ed4a942417e4b33949f1b65739f3f00", "account": "cs4",
        "requestId": "125", "offlineEnabled": false});
    assert_eq!(cs1.send(live_only).await["code"], 10201);
    let mut cs3 = Client::connect(&gw, "cs3").await;
    let stored = cs3.notified("INVITE").await;
    assert_eq!(
        (stored["requestId"].as_str(), stored["offline"].as_bool()),
        (Some("124"), Some(true)),
        "{stored}"
    );
    assert_eq!(
        cs3.send(json!({"op": "reject", "requestId": "124", "account": "cs1"}))
            .await["code"],
        200
    );
    assert_eq!(cs1.notified("REJECT").await["requestId"], "124");
    assert_eq!(
        cs3.send(json!({"op": "accept", "requestId": "124", "account": "cs1"}))
            .await["code"],
        10409
    );
    let mut cs4 = Client::connect(&gw, "cs4").await;
    assert_eq!(cs4.send(json!({"op": "ping"})).await["code"], 200);
    // cs4 gets no stored copy of the live-only invite: the first frame after connecting is the pong.

    // Seed 002's other codes.
    assert_eq!(
        cs1.send(json!({"op": "invite", "channelId": "nope", "account": "cs2", "requestId": "126"}))
            .await["code"],
        10404
    );
    assert_eq!(cs3.send(json!({"op": "invite", "channelId": "2ed4a942417e4b33949f1b65739f3f00", "account": "cs5", "requestId": "127"})).await["code"], 10406);
    assert_eq!(cs1.send(json!({"op": "invite", "channelId": "2ed4a942417e4b33949f1b65739f3f00", "account": "cs2", "requestId": "128"})).await["code"], 10407);
    assert_eq!(
        cs1.send(json!({"op": "cancel", "requestId": "nope", "account": "cs2"}))
            .await["code"],
        10404
    );
    let bad = cs1.send(json!({"op": "accept", "account": "cs2"})).await;
    assert_eq!(
        (bad["code"].as_u64(), bad["error"]["field"].as_str()),
        (Some(414), Some("requestId"))
    );
    assert_eq!(cs1.send(json!({"op": "dance"})).await["code"], 414);

    // No socket without a good token.
    for token in [Gateway::expired_token("cs1"), Gateway::foreign_token("cs1")] {
        let url = format!("ws://{}/ws?accessToken={token}", gw.addr);
        assert!(tokio_tungstenite::connect_async(url).await.is_err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_channel_refuses_invites_with_409_until_resumed() {
    let gw = Gateway::start().await;
    let mut cs1 = Client::connect(&gw, "cs1").await;
    let channel = "5a1e0000000000000000000000000001";
    let call = json!({"op": "call", "channelId": channel, "account": "cs2", "requestId": "1", "offlineEnabled": true});
    assert_eq!(cs1.send(call).await["code"], 200);
    let owner = Gateway::token("cs1");
    gw.command(&owner, "PauseInvites", json!({"resource_id": channel}))
        .await;
    let invite =
        json!({"op": "invite", "channelId": channel, "account": "cs3", "requestId": "2", "offlineEnabled": true});
    let refused = cs1.send(invite.clone()).await;
    assert_eq!(refused["code"], 409, "{refused}");
    assert_eq!(refused["error"]["code"], "invites_paused", "{refused}");
    gw.command(&owner, "ResumeInvites", json!({"resource_id": channel}))
        .await;
    assert_eq!(cs1.send(invite).await["code"], 200);
}
