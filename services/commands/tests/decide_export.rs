//! Decisions of the export aggregate: who may export, one at a time, fifty a day.

mod support;

use invitebus_events::ErrorCode::*;
use serde_json::json;
use support::Scenario;

fn request() -> serde_json::Value {
    json!({"actor":"root","roles":["admin"],"filters":{"status":"approved"},"format":"csv"})
}

fn system(name: &str, s: &mut Scenario, export_id: &str) {
    let body = match name {
        "CompleteExport" => json!({"actor":"system","export_id":export_id,"file_url":"u","file_size":1,"count":1}),
        "FailExport" => json!({"actor":"system","export_id":export_id,"reason":"disk"}),
        _ => json!({"actor":"system","export_id":export_id,"count":1}),
    };
    s.given(name, body);
}

#[test]
fn only_admins_export() {
    let mut s = Scenario::new();
    s.when("RequestExport", json!({"actor":"fang"})).then_error(Forbidden);
}

#[test]
fn a_request_records_who_what_and_how() {
    let mut s = Scenario::new();
    let then = s.when("RequestExport", request());
    then.then_types(&["ExportRequested"]);
    assert_eq!(then.reply()["export_id"], "id-1");
    let d = then.data(0);
    assert_eq!(d["requested_by"], "root");
    assert_eq!(d["format"], "csv");
    assert_eq!(d["view"], "admin");
    assert_eq!(d["filters"]["status"], "approved");
}

#[test]
fn one_queued_or_running_export_per_user() {
    let mut s = Scenario::new();
    s.given("RequestExport", request());
    s.when("RequestExport", request()).then_error(ExportInProgress);
    system("StartExport", &mut s, "id-1");
    s.when("RequestExport", request()).then_error(ExportInProgress);
    // Another admin is not held up.
    s.when("RequestExport", json!({"actor":"other","roles":["admin"]}))
        .then_types(&["ExportRequested"]);
    system("CompleteExport", &mut s, "id-1");
    s.when("RequestExport", request()).then_types(&["ExportRequested"]);
}

#[test]
fn a_failed_export_frees_the_user_too() {
    let mut s = Scenario::new();
    s.given("RequestExport", request());
    system("FailExport", &mut s, "id-1");
    s.when("RequestExport", request()).then_types(&["ExportRequested"]);
}

#[test]
fn fifty_a_day_then_quota_exceeded_until_the_next_utc_day() {
    let mut s = Scenario::new();
    for i in 1..=50 {
        s.given("RequestExport", request());
        system("CompleteExport", &mut s, &format!("id-{i}"));
    }
    s.when("RequestExport", request()).then_error(ExportQuotaExceeded);
    s.advance(24 * 3600);
    s.when("RequestExport", request()).then_types(&["ExportRequested"]);
}

#[test]
fn the_exporter_steps_are_for_system_in_order() {
    let mut s = Scenario::new();
    s.given("RequestExport", request());
    s.when(
        "StartExport",
        json!({"actor":"root","roles":["admin"],"export_id":"id-1"}),
    )
    .then_error(Forbidden);
    s.when("StartExport", json!({"actor":"system","export_id":"nope"}))
        .then_error(NotFound);
    system("StartExport", &mut s, "id-1");
    s.when("StartExport", json!({"actor":"system","export_id":"id-1"}))
        .then_error(InvalidState);
    system("CompleteExport", &mut s, "id-1");
    s.when(
        "FailExport",
        json!({"actor":"system","export_id":"id-1","reason":"late"}),
    )
    .then_error(InvalidState);
}
