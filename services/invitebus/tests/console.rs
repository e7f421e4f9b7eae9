//! The console at `/console` in a real headless Chromium (Debian's `chromium` driven through
//! `chromedriver` by fantoccini), against `invitebus serve` with bus and NATS auth on: sign
//! in, the overview, a command sent on NATS in the tail, a stream lookup, approving a record,
//! an export from start to download. Screenshots of each page go to `target/tmp/console/`.
//! And, without a browser, the session's rules: admins only, an HttpOnly SameSite=Strict cookie,
//! writes only with the CSRF header.

mod support;

use fantoccini::{Client as Browser, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::gateway::Gateway;

/// A chromedriver on a free port, killed on drop.
struct Driver(Child, u16);

impl Driver {
    async fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (Debian: apt install chromium chromium-driver; .ci/run installs them)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on {port}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Driver(child, port)
    }

    async fn browser(&self) -> Browser {
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Debian's; INVITEBUS_CHROMIUM names another.
        let binary = std::env::var("INVITEBUS_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        assert!(
            std::path::Path::new(&binary).is_file(),
            "no Chromium at {binary} (Debian: apt install chromium chromium-driver; .ci/run installs them; INVITEBUS_CHROMIUM names another)"
        );
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": binary,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"]}),
        );
        ClientBuilder::rustls()
            .expect("a TLS connector")
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.1))
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn shots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(b: &Browser, name: &str) {
    let png = b.screenshot().await.unwrap();
    std::fs::write(shots().join(format!("{name}.png")), png).unwrap();
}

/// Polls `check` every 100 ms until it is Some, for at most `within`.
async fn until<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(t) = check().await {
            return t;
        }
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The text of every element matching `css`.
async fn texts(b: &Browser, css: &str) -> Vec<String> {
    let mut out = vec![];
    for e in b.find_all(Locator::Css(css)).await.unwrap() {
        out.push(e.text().await.unwrap_or_default());
    }
    out
}

async fn js(b: &Browser, script: &str) -> Value {
    b.execute(script, vec![]).await.unwrap()
}

/// A conference with an invitation that needs approval, accepted by fang: one `applying` record.
async fn seed(gw: &Gateway) {
    let xuan = Gateway::token("xuan");
    gw.command(
        &Gateway::token("fang"),
        "UpsertUser",
        json!({"user_id": "fang", "name": "Fang"}),
    )
    .await;
    gw.command(
        &xuan,
        "RegisterResource",
        json!({"resource_id": "conf", "kind": "exhibition", "name": "PC"}),
    )
    .await;
    gw.command(
        &xuan,
        "CreateInvite",
        json!({"invite_id": "i1", "resource_id": "conf", "invitee": "fang", "requires_approval": true, "correlation_id": "trace-1"}),
    )
    .await;
    gw.command(&Gateway::token("fang"), "AcceptInvite", json!({"invite_id": "i1"}))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_runs_invitebus_from_the_console() {
    let gw = Gateway::start().await;
    seed(&gw).await;
    let driver = Driver::start().await;
    let b = driver.browser().await;
    let base = format!("http://{}", gw.addr);

    // Sign in.
    b.goto(&format!("{base}/console")).await.unwrap();
    let token = Gateway::admin_token("root");
    b.wait()
        .for_element(Locator::Css("[data-testid=signin-token]"))
        .await
        .unwrap()
        .send_keys(&token)
        .await
        .unwrap();
    b.find(Locator::Css("[data-testid=signin-submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // Overview: the log's head and every role, live.
    let head = gw.head().await;
    until(Duration::from_secs(10), "the head on the overview", || async {
        let shown = texts(&b, "[data-testid=head-position]")
            .await
            .first()?
            .parse::<u64>()
            .ok()?;
        (shown >= head).then_some(())
    })
    .await;
    for role in ["relay", "views", "notifier", "scheduler", "exporter"] {
        let css = format!("[data-testid=projection-{role}]");
        until(Duration::from_secs(10), &css, || async {
            (!texts(&b, &css).await.is_empty()).then_some(())
        })
        .await;
    }
    // Commands per second over five minutes: the four commands of `seed`, counted from the
    // stream (each command's last event).
    until(Duration::from_secs(10), "the four commands counted", || async {
        (texts(&b, "[data-testid=commands-total]").await.first()? == "4").then_some(())
    })
    .await;
    screenshot(&b, "overview").await;

    // Tail: a command sent on NATS shows within 2 s.
    b.goto(&format!("{base}/console#tail")).await.unwrap();
    until(Duration::from_secs(10), "the tail to follow", || async {
        (js(&b, "return state.tailSource ? state.tailSource.readyState : -1").await == json!(1)).then_some(())
    })
    .await;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Authorization", format!("Bearer {}", Gateway::token("li")).as_str());
    let body = json!({"user_id": "li", "name": "Li"}).to_string();
    let sent = Instant::now();
    let reply = gw
        .client
        .request_with_headers("invites.cmd.UpsertUser", headers, body.into())
        .await
        .unwrap();
    let reply: Value = serde_json::from_slice(&reply.payload).unwrap();
    let position = reply["position"].as_u64().unwrap_or_else(|| panic!("{reply}"));
    until(Duration::from_secs(2), "the command in the tail", || async {
        texts(&b, "[data-testid=tail-row]")
            .await
            .iter()
            .any(|r| r.starts_with(&position.to_string()))
            .then_some(())
    })
    .await;
    println!("tail showed position {position} {:?} after the reply", sent.elapsed());
    screenshot(&b, "tail").await;

    // Streams: an invite's events, each with its chain check, and its state.
    b.goto(&format!("{base}/console#streams")).await.unwrap();
    b.wait()
        .for_element(Locator::Css("[data-testid=stream-search]"))
        .await
        .unwrap()
        .send_keys("invite-i1")
        .await
        .unwrap();
    b.find(Locator::Css("[data-testid=stream-submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let rows = until(Duration::from_secs(10), "the invite's events", || async {
        let rows = texts(&b, "[data-testid=event-row]").await;
        (rows.len() >= 2).then_some(rows)
    })
    .await;
    assert!(
        rows[0].contains("InviteCreated") && rows[0].contains("hash holds"),
        "{rows:?}"
    );
    assert!(rows[1].contains("InviteAccepted"), "{rows:?}");
    let state = texts(&b, "[data-testid=stream-state]").await.join("");
    assert!(state.contains("applying"), "{state}");
    screenshot(&b, "streams").await;

    // Records: approve fang's application with a description; the admin query agrees.
    b.goto(&format!("{base}/console#records")).await.unwrap();
    let row = Locator::Css("[data-testid=record-row][data-record='i1.fang']");
    b.wait().for_element(row).await.unwrap();
    let description = b
        .find(Locator::Css("[data-testid=record-row][data-record='i1.fang'] input"))
        .await
        .unwrap();
    description.send_keys("welcome").await.unwrap();
    b.find(Locator::Css(
        "[data-testid=record-row][data-record='i1.fang'] [data-testid=record-approve]",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    until(Duration::from_secs(10), "the record approved on the page", || async {
        texts(&b, "[data-testid=record-status]")
            .await
            .iter()
            .any(|s| s == "approved")
            .then_some(())
    })
    .await;
    let admin = gw
        .query(
            &token,
            "admin",
            json!({"resource_id": "conf", "min_position": gw.head().await}),
        )
        .await;
    let model = &admin["models"][0];
    assert_eq!(
        (&model["status"], &model["approve_description"]),
        (&json!("approved"), &json!("welcome")),
        "{admin}"
    );
    screenshot(&b, "records").await;

    // Exports: started from the page, its bar reaches 100, the download is the xlsx.
    b.goto(&format!("{base}/console#exports")).await.unwrap();
    b.wait()
        .for_element(Locator::Css("[data-testid=export-start]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(Duration::from_secs(60), "the export's bar at 100", || async {
        let bar = b.find(Locator::Css("[data-testid=export-progress]")).await.ok()?;
        (bar.attr("aria-valuenow").await.ok()?? == "100").then_some(())
    })
    .await;
    let link = b
        .wait()
        .for_element(Locator::Css("[data-testid=export-download]"))
        .await
        .unwrap();
    let href = link.attr("href").await.unwrap().expect("a download link");
    let fetched = b
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0]).then(r => r.arrayBuffer().then(b => done({status: r.status,
               type: r.headers.get('content-type'), head: Array.from(new Uint8Array(b).slice(0, 2))})));",
            vec![json!(href)],
        )
        .await
        .unwrap();
    assert_eq!(fetched["status"], 200, "{fetched}");
    assert!(
        fetched["type"].as_str().unwrap_or_default().contains("spreadsheetml"),
        "{fetched}"
    );
    assert_eq!(fetched["head"], json!([80, 75]), "an xlsx is a zip: PK");
    screenshot(&b, "exports").await;

    // Trace: the events of one correlation id.
    b.goto(&format!("{base}/console#trace")).await.unwrap();
    b.wait()
        .for_element(Locator::Css("[data-testid=trace-id]"))
        .await
        .unwrap()
        .send_keys("trace-1")
        .await
        .unwrap();
    b.find(Locator::Css("#trace-form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(Duration::from_secs(10), "the traced events", || async {
        texts(&b, "[data-testid=trace-event]")
            .await
            .iter()
            .any(|t| t.contains("InviteCreated"))
            .then_some(())
    })
    .await;
    screenshot(&b, "trace").await;
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_for_admins_with_a_cookie_and_writes_need_the_csrf_header() {
    let gw = Gateway::start().await;
    // A user who is not an admin is refused; a token in no shape a cookie can carry too.
    let a = gw
        .post(
            "/console/session",
            &[],
            &json!({"token": Gateway::token("fang")}).to_string(),
        )
        .await;
    assert_eq!(a.status, 403);
    let a = gw
        .post("/console/session", &[], &json!({"token": "a b; c=d"}).to_string())
        .await;
    assert_eq!(a.status, 400);
    // A form posted from another site (text/plain, no preflight) signs nobody in.
    let admin = json!({"token": Gateway::admin_token("root")}).to_string();
    let raw = format!(
        "POST /console/session HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{admin}",
        admin.len()
    );
    let mut socket = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut socket, raw.as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut socket, &mut answer)
        .await
        .unwrap();
    let answer = support::http::parse(&answer);
    assert_eq!(answer.status, 400);
    assert!(answer.header("set-cookie").is_none());
    // The page asks the browser to run nothing but its own script.
    let page = gw.get("/console", &[]).await;
    assert!(page
        .header("content-security-policy")
        .unwrap()
        .contains("script-src 'self'"));

    let token = Gateway::admin_token("root");
    let a = gw
        .post("/console/session", &[], &json!({"token": token}).to_string())
        .await;
    assert_eq!(a.status, 200);
    let set = a.header("set-cookie").unwrap().to_string();
    for part in ["invitebus_console=", "HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(set.contains(part), "{part} in {set}");
    }
    let csrf = a.json()["data"]["csrf"].as_str().unwrap().to_string();
    let cookie = format!("invitebus_console={token}");

    // Reads need only the cookie; without it, or with the token in a header, nothing.
    assert_eq!(gw.get("/console/api/me", &[("Cookie", &cookie)]).await.status, 200);
    assert_eq!(gw.get("/console/api/me", &[]).await.status, 401);
    let bearer = format!("Bearer {token}");
    assert_eq!(
        gw.get("/console/api/me", &[("Authorization", &bearer)]).await.status,
        401
    );
    // A write without the CSRF header, or with another, is refused and changes nothing.
    let before = gw.head().await;
    let export = json!({"format": "csv"}).to_string();
    for headers in [
        vec![("Cookie", cookie.as_str())],
        vec![("Cookie", cookie.as_str()), ("X-Invitebus-CSRF", "0000")],
    ] {
        let a = gw.post("/console/api/exports", &headers, &export).await;
        assert_eq!(a.status, 403, "{}", String::from_utf8_lossy(&a.body));
    }
    assert_eq!(gw.head().await, before);
    let a = gw
        .post(
            "/console/api/exports",
            &[("Cookie", &cookie), ("X-Invitebus-CSRF", &csrf)],
            &export,
        )
        .await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert!(gw.head().await > before);
}
