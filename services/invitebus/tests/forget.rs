//! Forgetting a person (crypto-shredding) through `invitebus serve`, a real nats-server with its
//! own JetStream folder and the CLI: fang, with a phone and a company, is invited, refuses with
//! a reason, answers another invite "maybe" with a comment, and is exported; then ForgetUser.
//! From then on the admin view, a new CSV export, `tail`, `audit history` and a rebuild of the
//! views show `[forgotten]`; no byte of what fang gave is left in any file of the data folder or
//! of the JetStream store; `audit verify` passes; li's data is as it was.

mod support;

use invitebus_natsrun::NatsServer;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use support::{connect, healthy, projection_at, run, send, Serve, BIN};

/// What fang gave, each string unlike anything else a test writes.
const FANG: [&str; 6] = [
    "Fangzhou Quillfeather",
    "+86 138 5550 4242",
    "fang.quill@example.org",
    "Quillfeather Ceramics Ltd",
    "I am sailing to Zanzibar that week",
    "could we move it to Thursday afternoon",
];
const LI_NAME: &str = "Li Wenjing Oakridge";
const LI_PHONE: &str = "+86 139 7770 1313";

async fn ok(client: &async_nats::Client, name: &str, body: Value) -> Value {
    let r = send(client, name, &body).await.expect("an answer");
    assert!(r.ok, "{name} {body}: {r:?}");
    serde_json::to_value(&r).unwrap()
}

async fn query(client: &async_nats::Client, name: &str, body: Value) -> Value {
    let msg = tokio::time::timeout(
        Duration::from_secs(10),
        client.request(format!("invites.q.{name}"), body.to_string().into()),
    )
    .await
    .expect("an answer in time")
    .expect("a reply");
    let v: Value = serde_json::from_slice(&msg.payload).unwrap();
    assert_eq!(v["ok"], true, "{name}: {v}");
    v["data"].clone()
}

/// Every file under `dir` that holds one of `needles`, with which.
fn files_holding(dir: &Path, needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let Ok(bytes) = std::fs::read(&path) else { continue };
            for n in needles {
                if bytes.windows(n.len()).any(|w| w == n.as_bytes()) {
                    found.push(format!("{} holds {n:?}", path.display()));
                }
            }
        }
    }
    found
}

fn cli(args: &[&str], data: &Path, nats: &str) -> String {
    let out = std::process::Command::new(BIN)
        .args(args)
        .args(["--nats", nats, "--data"])
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_user_is_gone_from_every_reader_and_every_byte_and_the_chain_holds() {
    let store = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(store.path(), None).unwrap();
    let url = nats.url();
    let data = tempfile::tempdir().unwrap();
    let mut serve = Serve::start(&url, data.path());
    let client = connect(&url).await;
    healthy(&client).await;

    ok(
        &client,
        "UpsertUser",
        json!({"actor":"xuan","user_id":"xuan","name":"Xuan"}),
    )
    .await;
    ok(
        &client,
        "UpsertUser",
        json!({"actor":"fang","user_id":"fang","name":FANG[0],"phone":FANG[1],"email":FANG[2],"company_name":FANG[3]}),
    )
    .await;
    ok(
        &client,
        "UpsertUser",
        json!({"actor":"li","user_id":"li","name":LI_NAME,"phone":LI_PHONE}),
    )
    .await;
    ok(
        &client,
        "RegisterResource",
        json!({"actor":"xuan","resource_id":"conf","kind":"conference","name":"RustConf"}),
    )
    .await;
    for (invite, who) in [("to-fang", "fang"), ("maybe-fang", "fang"), ("to-li", "li")] {
        ok(
            &client,
            "CreateInvite",
            json!({"actor":"xuan","resource_id":"conf","invitee":who,"invite_id":invite,"role":"pcmember"}),
        )
        .await;
    }
    ok(
        &client,
        "RejectInvite",
        json!({"actor":"fang","invite_id":"to-fang","reason":FANG[4]}),
    )
    .await;
    ok(
        &client,
        "TentativelyAcceptInvite",
        json!({"actor":"fang","invite_id":"maybe-fang","comment":FANG[5]}),
    )
    .await;
    ok(&client, "AcceptInvite", json!({"actor":"li","invite_id":"to-li"})).await;

    // Nothing fang gave is in clear in the log or on the bus, before any forget.
    let stream_json = cli(&["audit", "history", "user-fang"], data.path(), &url);
    assert!(
        stream_json.contains(FANG[1]),
        "audit history opens the fields: {stream_json}"
    );
    let head = support::relayed_all(&client).await;
    for p in ["views", "notifier", "exporter"] {
        projection_at(&client, p, head).await;
    }
    let sealed = files_holding(data.path(), &FANG[..1]);
    assert!(
        sealed.iter().all(|f| !f.contains("events.db")),
        "the log holds fang's name only sealed: {sealed:?}"
    );

    // An export while fang is remembered: the file (downloaded outside the data folder) holds
    // fang, and so does its copy in the object store until the forget.
    let downloads = tempfile::tempdir().unwrap();
    let export = |name: &str, filter: &str| {
        let out = downloads.path().join(name);
        let out_arg = out.to_str().unwrap().to_string();
        let args = [
            "export", "--format", "csv", "--actor", "root", "--filter", filter, "--out", &out_arg,
        ];
        cli(&args, data.path(), &url);
        std::fs::read_to_string(out).unwrap()
    };
    let before = export("before.csv", "resource_id=conf");
    assert!(before.contains(FANG[3]), "{before}");
    // By fang's phone: the request's event carries its keyed hash, never the phone.
    let by_phone = export("by-phone.csv", &format!("invitee_phone={}", FANG[1]));
    assert_eq!(
        by_phone.lines().count(),
        3,
        "a header and fang's two records: {by_phone}"
    );
    let admin = query(
        &client,
        "admin",
        json!({"actor":"root","roles":["admin"],"resource_id":"conf"}),
    )
    .await;
    assert!(admin.to_string().contains(FANG[1]), "{admin}");

    // The byte search finds what is there: fang's name in a notification INVITES_NOTIFY keeps
    // (xuan is told fang refused) and fang's company in the export's chunks, and the name in
    // the projection files.
    let stored = files_holding(store.path(), &[FANG[0], FANG[3]]);
    assert!(
        stored.iter().any(|f| f.contains(FANG[0])) && stored.iter().any(|f| f.contains(FANG[3])),
        "{stored:#?}"
    );
    assert!(!files_holding(data.path(), &FANG[..1]).is_empty());

    let forgot = ok(&client, "ForgetUser", json!({"actor":"fang","user_id":"fang"})).await;
    assert_eq!(forgot["data"]["erased"], "full", "{forgot}");
    let again = ok(&client, "ForgetUser", json!({"actor":"fang","user_id":"fang"})).await;
    assert_eq!(
        again["position"],
        Value::Null,
        "a second forget appends nothing: {again}"
    );
    let refused = send(&client, "ForgetUser", &json!({"actor":"xuan","user_id":"li"}))
        .await
        .unwrap();
    assert_eq!(refused.error.as_ref().map(|e| e.code.as_str()), Some("forbidden"));
    let head = support::relayed_all(&client).await;
    for p in ["views", "notifier", "exporter"] {
        projection_at(&client, p, head).await;
    }

    // The admin view: fang's fields read [forgotten]; li's are as they were.
    let admin = query(
        &client,
        "admin",
        json!({"actor":"root","roles":["admin"],"resource_id":"conf","min_position":head}),
    )
    .await;
    let text = admin.to_string();
    assert!(text.contains("[forgotten]"), "{text}");
    for s in FANG {
        assert!(!text.contains(s), "{s} in {text}");
    }
    assert!(text.contains(LI_NAME) && text.contains(LI_PHONE), "{text}");
    // Phone filters still find li, and no longer fang.
    let by_phone = query(
        &client,
        "admin",
        json!({"actor":"root","roles":["admin"],"invitee_phone":LI_PHONE}),
    )
    .await;
    assert_eq!(by_phone["total_count"], 1, "{by_phone}");
    let gone = query(
        &client,
        "admin",
        json!({"actor":"root","roles":["admin"],"invitee_phone":FANG[1]}),
    )
    .await;
    assert_eq!(gone["total_count"], 0, "{gone}");

    // A new CSV export.
    let after = export("after.csv", "resource_id=conf");
    assert!(after.contains("[forgotten]") && after.contains(LI_NAME), "{after}");
    for s in FANG {
        assert!(!after.contains(s), "{s} in {after}");
    }

    // tail and audit history: the replacement.
    let tailed = cli(&["tail", "--no-follow"], data.path(), &url);
    assert!(tailed.contains("[forgotten]"), "{tailed}");
    assert!(tailed.contains(LI_NAME));
    let history = cli(&["audit", "history", "user-fang"], data.path(), &url);
    assert!(
        history.contains("[forgotten]") && history.contains("UserForgotten"),
        "{history}"
    );
    for s in FANG {
        assert!(!tailed.contains(s) && !history.contains(s), "{s}");
    }

    // The hash chain is over what is stored: a forget changes none of it.
    let verify = run(&["audit", "verify"], data.path());
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));

    // The views as of now, rebuilt from the log in a file apart, and a rebuild of the views
    // themselves (serve stopped), give the same.
    let asof = downloads.path().join("asof.json");
    let asof_arg = asof.to_str().unwrap().to_string();
    cli(
        &["replay", "--until", &head.to_string(), "--out", &asof_arg],
        data.path(),
        &url,
    );
    let rebuilt = std::fs::read_to_string(&asof).unwrap();
    assert!(
        rebuilt.contains("[forgotten]") && rebuilt.contains(LI_NAME),
        "{rebuilt}"
    );
    for s in FANG {
        assert!(!rebuilt.contains(s), "{s} in the as-of views");
    }
    serve.terminate();
    cli(&["replay", "--projection", "views"], data.path(), &url);

    // No byte of what fang gave is left anywhere: the data folder (the log, every projection
    // file and their WALs, the export files) and the JetStream store (the key bucket, the
    // notifications, the export chunks).
    let left = files_holding(data.path(), &FANG);
    assert!(left.is_empty(), "{left:#?}");
    let left = files_holding(store.path(), &FANG);
    assert!(left.is_empty(), "{left:#?}");
    // li is as they were.
    assert!(!files_holding(data.path(), &[LI_NAME]).is_empty());
}
