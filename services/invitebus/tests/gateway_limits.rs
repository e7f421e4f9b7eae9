//! Rate limits at the edge, from outside: a code guesser is stopped while other users behind the
//! same address are served, and every API says `rate_limited` in its own shape.

mod support;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use support::gateway::Gateway;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_hundred_code_guesses_get_429s_while_another_user_is_served() {
    // The default limits: what a deployment runs.
    let gw = Gateway::start().await;
    let xuan = Gateway::token("xuan");
    gw.command(
        &xuan,
        "RegisterResource",
        json!({"resource_id": "ch1", "kind": "channel", "name": "C"}),
    )
    .await;
    let bearer = |t: &str| format!("Bearer {t}");
    let made = gw
        .post("/channels/ch1/invites", &[("Authorization", &bearer(&xuan))], "{}")
        .await;
    assert_eq!(made.status, 200, "{}", made.json());
    let code = made.json()["code"].as_str().unwrap().to_string();

    let fang = bearer(&Gateway::token("fang"));
    let (mut missed, mut limited) = (0, 0);
    for i in 0..600 {
        let a = gw
            .get(&format!("/invites/guess{i:05}"), &[("Authorization", &fang)])
            .await;
        match a.status {
            404 => missed += 1,
            429 => {
                limited += 1;
                assert_eq!(a.json()["code"], "rate_limited", "{}", a.json());
                let wait: u64 = a.header("retry-after").expect("Retry-After").parse().unwrap();
                assert!((1..=60).contains(&wait), "{wait}");
            }
            other => panic!("guess {i}: {other} {}", a.json()),
        }
        if i % 100 == 99 {
            // Another user, from the same address, still finds the code.
            let a = gw
                .get(&format!("/invites/{code}"), &[("Authorization", &bearer(&xuan))])
                .await;
            assert_eq!(a.status, 200, "after {} guesses: {}", i + 1, a.json());
        }
    }
    // 20 misses, then about one a second while blocked: a few seconds' worth at most.
    assert!(missed <= 40, "the guesser got {missed} answers");
    assert!(limited >= 560, "{limited}");
    // The limits are counted.
    let metrics = String::from_utf8(gw.get("/metrics", &[]).await.body).unwrap();
    assert!(
        metrics.contains("invitebus_gateway_rate_limited_total{scope=\"user\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("invitebus_gateway_blocked_total{scope=\"user\"}"));
}

/// Sends the same request four times (one past a burst of 3); the last answer.
async fn burst(gw: &Gateway, method: &str, path: &str, bearer: &str, body: &str) -> support::http::Answer {
    let mut last = None;
    for _ in 0..4 {
        last = Some(gw.send(method, path, &[("Authorization", bearer)], body).await);
    }
    last.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_api_answers_over_the_limit_in_its_own_shape() {
    let env = [
        ("INVITEBUS_RATE_USER", "0.01:3"),
        ("INVITEBUS_RATE_WS_FRAMES", "0.01:2"),
    ];
    let gw = Gateway::start_with(tempfile::tempdir().unwrap(), &env).await;
    let who = |user: &str| format!("Bearer {}", Gateway::token(user));
    let admin = format!("Bearer {}", Gateway::admin_token("root"));

    // Native: HTTP 429, Retry-After, our error.
    let a = burst(&gw, "POST", "/v1/queries/sent", &who("u1"), "{}").await;
    assert_eq!(a.status, 429, "{}", a.json());
    assert_eq!(a.json()["error"]["code"], "rate_limited", "{}", a.json());
    assert!(a.header("retry-after").is_some());
    // Seed 000: its code 1 (and our code beside it).
    let a = burst(&gw, "POST", "/api/invitation/received", &who("u2"), "{}").await;
    assert_eq!(
        (a.json()["code"].clone(), a.json()["error"].clone()),
        (json!(1), json!("rate_limited")),
        "{}",
        a.json()
    );
    assert!(a.header("retry-after").is_some());
    // Seed 001: status 4029.
    let a = burst(
        &gw,
        "POST",
        "/openapi/workbench/meetinginvite/detail",
        &who("u3"),
        r#"{"id":"x"}"#,
    )
    .await;
    assert_eq!(a.json()["status"], 4029, "{}", a.json());
    // Seed 004: code -1.
    let a = burst(&gw, "GET", "/api/admin/invitations", &admin, "").await;
    assert_eq!(
        (a.json()["code"].clone(), a.json()["reason"].clone()),
        (json!(-1), json!("rate_limited")),
        "{}",
        a.json()
    );
    // Seed 003: HTTP 429 with our error.
    let a = burst(&gw, "GET", "/invites/abc", &who("u4"), "").await;
    assert_eq!(a.status, 429);

    // Seed 002: frames beyond the socket's rate are answered 416 and not run.
    let url = format!("ws://{}/ws?accessToken={}", gw.addr, Gateway::token("u5"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("the socket opens");
    let mut codes = Vec::new();
    for i in 0..3 {
        let frame = json!({"op": "nonsense", "requestId": format!("r{i}")});
        ws.send(Message::Text(frame.to_string().into())).await.unwrap();
        let reply = loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .expect("a frame")
                .expect("open")
                .unwrap();
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["op"] != "notify" {
                    break v;
                }
            }
        };
        codes.push((
            reply["requestId"].clone(),
            reply["code"].clone(),
            reply["error"]["code"].clone(),
        ));
    }
    assert_ne!(codes[0].1, json!(416), "{codes:?}");
    assert_eq!(codes[2], (json!("r2"), json!(416), json!("rate_limited")), "{codes:?}");
}
