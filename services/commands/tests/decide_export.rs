//! Decisions of the export aggregate: who may export, one at a time, fifty a day.

mod support;

use invitebus_events::command::{ExportFormat, RequestExport};
use invitebus_events::event::ExportRequested;
use invitebus_events::query::AdminFilters;
use invitebus_events::ErrorCode::*;
use invitebus_events::{Command, Event, RecordStatus};
use support::typed::*;
use support::{id, Scenario};

/// The approved records as CSV.
fn approved_as_csv() -> RequestExport {
    RequestExport {
        view: None,
        filters: AdminFilters {
            status: Some(RecordStatus::Approved),
            ..AdminFilters::default()
        },
        format: ExportFormat::Csv,
    }
}

fn request() -> Command {
    Command::RequestExport(approved_as_csv())
}

/// root, an admin, asks for `request()`.
fn root_requests(s: &mut Scenario) -> support::Then {
    s.when_typed("root", &["admin"], request())
}

/// Only an export requested by `by`.
fn requested_by(e: &[Event], by: &str) -> bool {
    matches!(e, [Event::ExportRequested(r)] if r.requested_by == id(by))
}

#[test]
fn only_admins_export() {
    let mut s = Scenario::new();
    s.when_typed("fang", &[], request_export()).then_error(Forbidden);
}

#[test]
fn a_request_records_who_what_and_how() {
    let mut s = Scenario::new();
    let then = root_requests(&mut s);
    then.then(&[Event::ExportRequested(ExportRequested {
        at: s.at(),
        export_id: id("id-1"),
        filters: approved_as_csv().filters,
        format: ExportFormat::Csv,
        requested_by: id("root"),
        view: "admin".into(),
    })]);
    assert_eq!(then.reply()["export_id"], "id-1");
}

#[test]
fn one_queued_or_running_export_per_user() {
    let mut s = Scenario::new();
    s.given_typed("root", &["admin"], request());
    root_requests(&mut s).then_error(ExportInProgress);
    s.given_typed("system", &[], start_export("id-1", 1));
    root_requests(&mut s).then_error(ExportInProgress);
    // Another admin is not held up.
    s.when_typed("other", &["admin"], request_export())
        .then_match(|e| requested_by(e, "other"));
    s.given_typed("system", &[], complete_export("id-1"));
    root_requests(&mut s).then_match(|e| requested_by(e, "root"));
}

#[test]
fn a_failed_export_frees_the_user_too() {
    let mut s = Scenario::new();
    s.given_typed("root", &["admin"], request())
        .given_typed("system", &[], fail_export("id-1", "disk"));
    root_requests(&mut s).then_match(|e| requested_by(e, "root"));
}

#[test]
fn fifty_a_day_then_quota_exceeded_until_the_next_utc_day() {
    let mut s = Scenario::new();
    for i in 1..=50 {
        s.given_typed("root", &["admin"], request())
            .given_typed("system", &[], complete_export(&format!("id-{i}")));
    }
    root_requests(&mut s).then_error(ExportQuotaExceeded);
    s.advance(24 * 3600);
    root_requests(&mut s).then_match(|e| requested_by(e, "root"));
}

#[test]
fn the_exporter_steps_are_for_system_in_order() {
    let mut s = Scenario::new();
    s.given_typed("root", &["admin"], request());
    s.when_typed("root", &["admin"], start_export("id-1", 0))
        .then_error(Forbidden);
    s.when_typed("system", &[], start_export("nope", 0))
        .then_error(NotFound);
    s.given_typed("system", &[], start_export("id-1", 1));
    s.when_typed("system", &[], start_export("id-1", 0))
        .then_error(InvalidState);
    s.given_typed("system", &[], complete_export("id-1"));
    s.when_typed("system", &[], fail_export("id-1", "late"))
        .then_error(InvalidState);
}
