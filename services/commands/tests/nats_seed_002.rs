//! Every seed 002 error case, reached over NATS, with seed 002's numeric code alongside.

mod bus;

use bus::Bus;
use invitebus_events::ErrorCode;
use serde_json::json;

async fn expect(bus: &Bus, name: &str, body: serde_json::Value, code: ErrorCode, seed: u32) {
    let reply = bus.send(name, body.clone()).await;
    let err = reply.error.unwrap_or_else(|| panic!("{name} {body} succeeded"));
    assert_eq!(err.code, code, "{name} {body}: {}", err.message);
    assert_eq!(err.code.seed_002_code(), Some(seed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_seed_002_error_is_reached() {
    let bus = Bus::start().await;
    // A call: cs1 creates a channel for two, joins it and invites cs2, in one append.
    let call = bus
        .ok(
            "StartCall",
            json!({"actor":"cs1","resource_id":"room1","capacity":2,"invitee":"cs2","invite_id":"req-1"}),
        )
        .await;
    assert_eq!(
        call.data.as_ref().unwrap()["invite_id"],
        "req-1",
        "the client's requestId is the invite id"
    );

    // 10405: the channel exists.
    expect(
        &bus,
        "StartCall",
        json!({"actor":"cs3","resource_id":"room1","invitee":"cs4"}),
        ErrorCode::ResourceExists,
        10405,
    )
    .await;
    // 10404: no such channel.
    expect(
        &bus,
        "CreateInvite",
        json!({"actor":"cs1","resource_id":"nope","invitee":"cs2"}),
        ErrorCode::NotFound,
        10404,
    )
    .await;
    // 10406: the inviter is not in the channel.
    expect(
        &bus,
        "CreateInvite",
        json!({"actor":"cs9","resource_id":"room1","invitee":"cs5"}),
        ErrorCode::NotMember,
        10406,
    )
    .await;
    // 10419: the channel is full (cs1 + the pending cs2 fill two places).
    bus.ok("AcceptInvite", json!({"actor":"cs2","invite_id":"req-1"})).await;
    expect(
        &bus,
        "CreateInvite",
        json!({"actor":"cs1","resource_id":"room1","invitee":"cs3"}),
        ErrorCode::ResourceFull,
        10419,
    )
    .await;
    // 10407: the invitee is already in the channel.
    bus.ok(
        "RegisterResource",
        json!({"actor":"cs1","resource_id":"room2","kind":"channel","name":"r2"}),
    )
    .await;
    bus.ok("JoinResource", json!({"actor":"cs2","resource_id":"room2"}))
        .await;
    expect(
        &bus,
        "CreateInvite",
        json!({"actor":"cs1","resource_id":"room2","invitee":"cs2"}),
        ErrorCode::AlreadyMember,
        10407,
    )
    .await;
    // 10410 / 10409: answered before.
    expect(
        &bus,
        "RejectInvite",
        json!({"actor":"cs2","invite_id":"req-1"}),
        ErrorCode::AlreadyAccepted,
        10410,
    )
    .await;
    expect(
        &bus,
        "CancelInvite",
        json!({"actor":"cs1","invite_id":"req-1"}),
        ErrorCode::AlreadyAccepted,
        10410,
    )
    .await;
    bus.ok(
        "CreateInvite",
        json!({"actor":"cs1","resource_id":"room2","invitee":"cs5","invite_id":"req-2"}),
    )
    .await;
    bus.ok("RejectInvite", json!({"actor":"cs5","invite_id":"req-2"})).await;
    expect(
        &bus,
        "AcceptInvite",
        json!({"actor":"cs5","invite_id":"req-2"}),
        ErrorCode::AlreadyRejected,
        10409,
    )
    .await;
    expect(
        &bus,
        "CancelInvite",
        json!({"actor":"cs1","invite_id":"req-2"}),
        ErrorCode::AlreadyRejected,
        10409,
    )
    .await;
    // 10408: cancelled, or expired.
    bus.ok(
        "CreateInvite",
        json!({"actor":"cs1","resource_id":"room2","invitee":"cs6","invite_id":"req-3"}),
    )
    .await;
    bus.ok("CancelInvite", json!({"actor":"cs1","invite_id":"req-3"})).await;
    expect(
        &bus,
        "AcceptInvite",
        json!({"actor":"cs6","invite_id":"req-3"}),
        ErrorCode::Cancelled,
        10408,
    )
    .await;
    bus.ok(
        "CreateInvite",
        json!({"actor":"cs1","resource_id":"room2","invitee":"cs7","invite_id":"req-4","expires_in":1}),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    expect(
        &bus,
        "AcceptInvite",
        json!({"actor":"cs7","invite_id":"req-4"}),
        ErrorCode::Expired,
        10408,
    )
    .await;
    // Capacity is enforced at accept too: room3 holds two; two invites race for one place.
    bus.ok(
        "RegisterResource",
        json!({"actor":"cs1","resource_id":"room3","kind":"channel","name":"r3","capacity":2}),
    )
    .await;
    bus.ok(
        "CreateInvite",
        json!({"actor":"cs1","resource_id":"room3","invitee":"x1","invite_id":"req-5"}),
    )
    .await;
    bus.ok("JoinResource", json!({"actor":"x2","resource_id":"room3"}))
        .await;
    expect(
        &bus,
        "AcceptInvite",
        json!({"actor":"x1","invite_id":"req-5"}),
        ErrorCode::ResourceFull,
        10419,
    )
    .await;
}
