//! `/metrics` as Prometheus scrapes it: parsed with a text-format parser, counting exactly the
//! commands sent, per command and outcome, beside positions, lags and batch sizes.

mod support;

use invitebus_natsrun::NatsServer;
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use support::{connect, healthy, relayed_all, send, Serve};

async fn scrape(addr: &str) -> prometheus_parse::Scrape {
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let text = loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            let a = support::http::get(addr, "/metrics", &[]).await;
            assert_eq!(a.status, 200);
            break String::from_utf8(a.body).unwrap();
        }
        assert!(Instant::now() < deadline, "no /metrics on {addr}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text format")
}

/// `invitebus_commands_total` by (command, outcome).
fn commands(s: &prometheus_parse::Scrape) -> HashMap<(String, String), f64> {
    s.samples
        .iter()
        .filter(|x| x.metric == "invitebus_commands_total")
        .filter_map(|x| match x.value {
            prometheus_parse::Value::Counter(v) => Some((
                (
                    x.labels.get("command")?.to_string(),
                    x.labels.get("outcome")?.to_string(),
                ),
                v,
            )),
            _ => None,
        })
        .collect()
}

fn gauge(s: &prometheus_parse::Scrape, metric: &str, label: Option<(&str, &str)>) -> Option<f64> {
    s.samples
        .iter()
        .find(|x| x.metric == metric && label.is_none_or(|(k, v)| x.labels.get(k) == Some(v)))
        .and_then(|x| match x.value {
            prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Counter(v) => Some(v),
            _ => None,
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_every_command_by_outcome() {
    let nats = NatsServer::start_temp().unwrap();
    let data = tempfile::tempdir().unwrap();
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let _serve = Serve::start_role_with(&nats.url(), data.path(), "all", &[("INVITEBUS_METRICS", addr.as_str())]);
    let client = connect(&nats.url()).await;
    healthy(&client).await;
    let before = commands(&scrape(&addr).await);

    let conf = json!({"actor":"xuan","resource_id":"conf","kind":"conference","name":"C"});
    assert!(send(&client, "RegisterResource", &conf).await.unwrap().ok);
    for i in 0..7 {
        let body = json!({"actor":"xuan","resource_id":"conf","invitee":format!("u{i}"),"invite_id":format!("m{i}")});
        assert!(send(&client, "CreateInvite", &body).await.unwrap().ok);
    }
    for _ in 0..3 {
        let body = json!({"actor":"xuan","resource_id":"nowhere","invitee":"u1"});
        assert!(!send(&client, "CreateInvite", &body).await.unwrap().ok);
    }
    let head = relayed_all(&client).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        let s = scrape(&addr).await;
        let views_at = gauge(&s, "invitebus_projection_position", Some(("projection", "views")));
        if views_at == Some(head as f64) && gauge(&s, "invitebus_relay_position", None) == Some(head as f64) {
            assert_eq!(gauge(&s, "invitebus_log_head_position", None), Some(head as f64));
            assert_eq!(gauge(&s, "invitebus_relay_lag_events", None), Some(0.0));
            assert!(s
                .samples
                .iter()
                .any(|x| x.metric == "invitebus_command_duration_seconds_bucket"
                    || x.metric == "invitebus_command_duration_seconds"));
            break commands(&s);
        }
        assert!(Instant::now() < deadline, "positions never reached {head} in /metrics");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let delta = |c: &str, o: &str| {
        let k = (c.to_string(), o.to_string());
        after.get(&k).copied().unwrap_or(0.0) - before.get(&k).copied().unwrap_or(0.0)
    };
    assert_eq!(delta("RegisterResource", "ok"), 1.0);
    assert_eq!(delta("CreateInvite", "ok"), 7.0);
    assert_eq!(delta("CreateInvite", "not_found"), 3.0);
    let total: f64 = after.values().sum::<f64>() - before.values().sum::<f64>();
    assert_eq!(total, 11.0, "nothing else was counted: {after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_serves_metrics_with_requests_by_route_template() {
    let gw = support::gateway::Gateway::start().await;
    let token = support::gateway::Gateway::token("xuan");
    let bearer = format!("Bearer {token}");
    let headers = [("Authorization", bearer.as_str())];
    let conf = json!({"resource_id":"conf","kind":"conference","name":"C"}).to_string();
    let a = support::http::post(gw.addr, "/v1/commands/RegisterResource", &headers, &conf).await;
    assert_eq!(a.status, 200);
    for i in 0..4 {
        let body = json!({"resource_id":"conf","invitee":format!("u{i}")}).to_string();
        let a = support::http::post(gw.addr, "/v1/commands/CreateInvite", &headers, &body).await;
        assert_eq!(a.status, 200);
    }
    let a = support::http::post(gw.addr, "/v1/commands/CreateInvite", &[], "{}").await;
    assert_eq!(a.status, 401);
    let s = scrape(&gw.addr.to_string()).await;
    let requests = |route: &str, status: &str| {
        s.samples
            .iter()
            .filter(|x| x.metric == "invitebus_gateway_requests_total")
            .filter(|x| x.labels.get("route") == Some(route) && x.labels.get("status") == Some(status))
            .map(|x| match x.value {
                prometheus_parse::Value::Counter(v) => v,
                _ => 0.0,
            })
            .sum::<f64>()
    };
    assert_eq!(
        requests("/v1/commands/:command", "200"),
        5.0,
        "by template, never by id"
    );
    assert_eq!(requests("/v1/commands/:command", "401"), 1.0);
    assert!(
        s.samples
            .iter()
            .all(|x| x.labels.get("route").is_none_or(|r| !r.contains("CreateInvite"))),
        "no label holds a path's values"
    );
    let c = commands(&s);
    assert_eq!(c.get(&("CreateInvite".into(), "ok".into())).copied(), Some(4.0));
}
