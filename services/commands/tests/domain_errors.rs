//! Each aggregate's own error becomes the catalogue's wire error: code, field and message as
//! PROTOCOL.md shows them (the messages are the ones clients have always read).

use invitebus_commands::code::CodeError;
use invitebus_commands::error::StoreError;
use invitebus_commands::export::{ExportError, Phase};
use invitebus_commands::invite::InviteError;
use invitebus_commands::resource::ResourceError;
use invitebus_commands::user::UserError;
use invitebus_events::{ErrorCode, Id, ProtocolError, RecordStatus};

fn id(s: &str) -> Id {
    Id::parse(s).unwrap()
}

fn wire(e: impl Into<ProtocolError>) -> (ErrorCode, Option<String>, String) {
    let e = e.into();
    (e.code, e.field, e.message)
}

fn is(code: ErrorCode, field: Option<&str>, message: &str) -> (ErrorCode, Option<String>, String) {
    (code, field.map(String::from), message.to_string())
}

#[test]
fn invite_errors_on_the_wire() {
    use ErrorCode::*;
    assert_eq!(
        wire(InviteError::NotFound(id("inv"))),
        is(NotFound, Some("invite_id"), "no such invite_id: inv")
    );
    assert_eq!(
        wire(InviteError::Cancelled(id("inv"))),
        is(Cancelled, None, "invite inv was cancelled")
    );
    let unanswerable = InviteError::Unanswerable {
        invite_id: id("inv"),
        status: RecordStatus::Denied,
    };
    assert_eq!(wire(unanswerable), is(InvalidState, None, "invite inv is denied"));
    let member = InviteError::AlreadyMember {
        field: "invitees",
        user: id("fang"),
    };
    assert_eq!(
        wire(member),
        is(AlreadyMember, Some("invitees"), "fang is already a member")
    );
    assert_eq!(
        wire(InviteError::InvitesSelf { field: "invitee" }),
        is(
            InvalidField,
            Some("invitee"),
            "invalid `invitee`: you cannot invite yourself"
        )
    );
    assert_eq!(
        wire(InviteError::WhichInvitee),
        is(MissingField, Some("invitee"), "missing field `invitee`")
    );
    assert_eq!(wire(InviteError::SentRecently(id("li"))).0, RateLimited);
    assert_eq!(
        wire(InviteError::SystemOnly("send reminders")).2,
        "only system may send reminders"
    );
}

#[test]
fn an_aggregate_refusing_through_another_keeps_the_others_code_and_field() {
    let full = InviteError::from(ResourceError::Full(id("conf")));
    assert_eq!(
        wire(full),
        is(ErrorCode::ResourceFull, Some("resource_id"), "conf is full")
    );
    let joined = CodeError::from(ResourceError::AlreadyMember {
        user: id("fang"),
        resource_id: id("conf"),
    });
    assert_eq!(
        wire(joined),
        is(ErrorCode::AlreadyMember, Some("user_id"), "fang is already in conf")
    );
}

#[test]
fn loading_failures_are_conflicts_or_infrastructure_never_rules() {
    let conflict = StoreError::Conflict {
        stream: "invite-inv".into(),
        actual: 3,
        expected: 2,
    };
    assert_eq!(
        wire(InviteError::from(conflict)),
        is(
            ErrorCode::Conflict,
            Some("expected_version"),
            "invite-inv is at version 3, not 2"
        )
    );
    let bug = UserError::from(StoreError::NotLoaded("user-fang".into()));
    assert_eq!(wire(bug).0, ErrorCode::Internal);
}

#[test]
fn code_and_export_errors_on_the_wire() {
    use ErrorCode::*;
    let exhausted = CodeError::Exhausted {
        code: id("AbC"),
        uses: 5,
    };
    assert_eq!(wire(exhausted), is(Exhausted, None, "code AbC was used 5 times"));
    assert_eq!(wire(CodeError::EndsTooLate).1.as_deref(), Some("max_age"));
    assert_eq!(
        wire(ExportError::QuotaExceeded),
        is(ExportQuotaExceeded, None, "at most 50 exports per user per day")
    );
    let early = ExportError::NotInPhase {
        export_id: id("e1"),
        phase: Some(Phase::Requested),
    };
    assert_eq!(wire(early), is(InvalidState, None, "export e1 is queued"));
    assert_eq!(wire(ExportError::NotFound(id("e1"))).1.as_deref(), Some("export_id"));
    for (code, status) in [(Forbidden, 403), (ExportInProgress, 409), (ExportQuotaExceeded, 429)] {
        assert_eq!(code.http_status(), status);
    }
}
