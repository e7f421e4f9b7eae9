//! Decisions of the invite-code aggregate: CreateInviteCode, RedeemInviteCode, DeleteInviteCode.

mod support;

use chrono::Duration;
use invitebus_events::command::CreateInviteCode;
use invitebus_events::event::{
    InviteAccepted, InviteCodeCreated, InviteCodeDeleted, InviteCodeRedeemed, InviteCreated, InviteDecided,
    MemberJoined, Via,
};
use invitebus_events::{Command, ErrorCode, Event, RecordStatus};
use serde_json::json;
use support::typed::*;
use support::{id, Scenario, Then};

/// Code `JOIN` for `conf`, otherwise the defaults.
fn join_code() -> CreateInviteCode {
    CreateInviteCode {
        code: Some(id("JOIN")),
        ..code_for("conf")
    }
}

/// `conference()` plus `code`, made by xuan.
fn with_code(code: CreateInviteCode) -> Scenario {
    let mut s = Scenario::conference();
    s.given_typed("xuan", &[], Command::CreateInviteCode(code));
    s
}

fn approval_code() -> Scenario {
    with_code(CreateInviteCode {
        requires_approval: true,
        ..join_code()
    })
}

/// The invite a redemption's reply names.
fn invite_of(then: &Then) -> String {
    then.reply()["invite_id"].as_str().expect("an invite id").to_string()
}

// ---- CreateInviteCode ----

#[test]
fn create_code_by_a_non_member_is_not_member() {
    let mut s = Scenario::conference();
    s.when_typed("fang", &[], Command::CreateInviteCode(code_for("conf")))
        .then_error(ErrorCode::NotMember);
}

#[test]
fn create_code_for_an_unknown_resource_is_not_found() {
    let mut s = Scenario::conference();
    s.when_typed("xuan", &[], Command::CreateInviteCode(code_for("nope")))
        .then_error(ErrorCode::NotFound);
}

#[test]
fn create_code_generates_a_code_that_lives_a_day_by_default() {
    let mut s = Scenario::conference();
    let now = s.at();
    let then = s.when_typed("xuan", &[], Command::CreateInviteCode(code_for("conf")));
    assert_eq!(then.reply()["code"], "CODE0001");
    then.then(&[Event::InviteCodeCreated(InviteCodeCreated {
        code: id("CODE0001"),
        created_at: now,
        expires_at: Some(now + Duration::days(1)),
        inviter: id("xuan"),
        max_age: 86_400,
        max_uses: 0,
        requires_approval: false,
        resource_id: id("conf"),
        temporary: false,
    })]);
}

#[test]
fn create_code_with_max_age_zero_never_expires() {
    let mut s = Scenario::conference();
    let forever = CreateInviteCode {
        max_age: Some(0),
        ..code_for("conf")
    };
    let then = s.when_typed("xuan", &[], Command::CreateInviteCode(forever));
    then.then_match(|e| matches!(e, [Event::InviteCodeCreated(c)] if c.expires_at.is_none() && c.max_age == 0));
}

#[test]
fn create_code_with_a_taken_code_is_resource_exists() {
    let mut s = with_code(join_code());
    s.when_typed("xuan", &[], create_code("conf", "JOIN"))
        .then_field_error(ErrorCode::ResourceExists, "code");
}

// ---- RedeemInviteCode ----

#[test]
fn redeem_code_joins_via_the_code() {
    let mut s = with_code(join_code());
    let then = s.when_typed("fang", &[], redeem("JOIN"));
    let at = s.at();
    then.then(&[
        Event::InviteCodeRedeemed(InviteCodeRedeemed {
            at,
            code: id("JOIN"),
            invite_id: None,
            inviter: id("xuan"),
            resource_id: id("conf"),
            user_id: id("fang"),
            uses: 1,
        }),
        Event::MemberJoined(MemberJoined {
            at,
            inviter: Some(id("xuan")),
            member_count: 2,
            resource_id: id("conf"),
            user_id: id("fang"),
            via: Via::code(&id("JOIN")),
        }),
    ]);
    assert_eq!(then.reply()["resource_id"], "conf");
    assert_eq!(then.reply()["already_member"], false);
    assert_eq!(then.reply()["invite_id"], json!(null));
    assert!(s.is_member("conf", "fang"));
    assert_eq!(s.code_uses("JOIN"), 1);
}

#[test]
fn redeem_code_beyond_max_uses_is_exhausted() {
    let mut s = with_code(CreateInviteCode {
        max_uses: 2,
        ..join_code()
    });
    for (who, uses) in [("a", 1), ("b", 2)] {
        s.when_typed(who, &[], redeem("JOIN")).then_match(|e| {
            matches!(e, [Event::InviteCodeRedeemed(r), Event::MemberJoined(j)]
                if r.uses == uses && j.user_id == id(who))
        });
    }
    s.when_typed("c", &[], redeem("JOIN")).then_error(ErrorCode::Exhausted);
    assert!(!s.is_member("conf", "c"));
    assert_eq!(s.code_uses("JOIN"), 2);
}

#[test]
fn redeem_code_by_a_member_is_ok_with_nothing_appended() {
    let mut s = with_code(join_code());
    s.given_typed("fang", &[], redeem("JOIN"));
    let then = s.when_typed("fang", &[], redeem("JOIN"));
    then.then_nothing();
    assert_eq!(then.reply()["already_member"], true);
    assert_eq!(then.reply()["resource_id"], "conf");
    assert_eq!(s.code_uses("JOIN"), 1);
    let then = s.when_typed("xuan", &[], redeem("JOIN"));
    then.then_nothing();
    assert_eq!(then.reply()["already_member"], true);
}

#[test]
fn redeem_code_past_max_age_is_expired() {
    let mut s = with_code(CreateInviteCode {
        max_age: Some(1),
        ..join_code()
    });
    s.advance(2);
    s.when_typed("fang", &[], redeem("JOIN")).then_error(ErrorCode::Expired);
}

#[test]
fn redeem_code_before_max_age_is_allowed() {
    let mut s = with_code(CreateInviteCode {
        max_age: Some(10),
        ..join_code()
    });
    s.advance(9);
    s.when_typed("fang", &[], redeem("JOIN"))
        .then_match(|e| matches!(e, [Event::InviteCodeRedeemed(r), Event::MemberJoined(_)] if r.user_id == id("fang")));
}

#[test]
fn redeem_a_deleted_code_is_not_found() {
    let mut s = with_code(join_code());
    s.given_typed("xuan", &[], delete_code("JOIN"));
    s.when_typed("fang", &[], redeem("JOIN"))
        .then_error(ErrorCode::NotFound);
}

#[test]
fn redeem_an_unknown_code_is_not_found() {
    let mut s = Scenario::conference();
    s.when_typed("fang", &[], redeem("JOIN"))
        .then_field_error(ErrorCode::NotFound, "code");
}

#[test]
fn redeem_code_into_a_full_resource_is_resource_full() {
    let mut s = Scenario::new();
    s.given_typed("xuan", &[], register("room", "meeting", "Room", 1))
        .given_typed("xuan", &[], create_code("room", "JOIN"));
    s.when_typed("fang", &[], redeem("JOIN"))
        .then_error(ErrorCode::ResourceFull);
    assert_eq!(s.code_uses("JOIN"), 0);
}

#[test]
fn redeem_code_requiring_approval_makes_an_applying_invite() {
    let mut s = approval_code();
    let then = s.when_typed("fang", &[], redeem("JOIN"));
    let invite_id = invite_of(&then);
    let (at, invite) = (s.at(), id(&invite_id));
    assert_eq!(then.reply()["already_member"], false);
    then.then(&[
        Event::InviteCodeRedeemed(InviteCodeRedeemed {
            at,
            code: id("JOIN"),
            invite_id: Some(invite.clone()),
            inviter: id("xuan"),
            resource_id: id("conf"),
            user_id: id("fang"),
            uses: 1,
        }),
        Event::InviteCreated(InviteCreated {
            code: Some(id("JOIN")),
            created_at: at,
            detail: None,
            expires_at: None,
            ext: None,
            invite_id: invite.clone(),
            invitees: ids(&["fang"]),
            inviter: id("xuan"),
            message: None,
            offline_enabled: true,
            push: None,
            requires_approval: true,
            resource_id: id("conf"),
            resource_kind: id("conference"),
            role: "member".into(),
        }),
        Event::InviteAccepted(InviteAccepted {
            at,
            invite_id: invite.clone(),
            invitee: id("fang"),
            inviter: id("xuan"),
            resource_id: id("conf"),
            role: "member".into(),
            status: RecordStatus::Applying,
        }),
    ]);
    assert_eq!(s.record_status(&invite_id, "fang"), Some(RecordStatus::Applying));
    assert!(!s.is_member("conf", "fang"));

    let then = s.when_typed("xuan", &[], approve(&invite_id));
    then.then(&[
        Event::InviteApproved(InviteDecided {
            at,
            by: id("xuan"),
            description: None,
            invite_id: invite.clone(),
            invitee: id("fang"),
            inviter: id("xuan"),
            resource_id: id("conf"),
            role: "member".into(),
        }),
        Event::MemberJoined(MemberJoined {
            at,
            inviter: Some(id("xuan")),
            member_count: 2,
            resource_id: id("conf"),
            user_id: id("fang"),
            via: Via {
                code: Some(id("JOIN")),
                invite_id: Some(invite),
                ..Via::default()
            },
        }),
    ]);
    assert_eq!(s.record_status(&invite_id, "fang"), Some(RecordStatus::Approved));
    assert!(s.is_member("conf", "fang"));
}

#[test]
fn redeem_code_again_while_applying_appends_nothing_and_names_the_invite() {
    let mut s = approval_code();
    let first = s.when_typed("fang", &[], redeem("JOIN"));
    let invite_id = first.reply()["invite_id"].clone();
    let then = s.when_typed("fang", &[], redeem("JOIN"));
    then.then_nothing();
    assert_eq!(then.reply()["invite_id"], invite_id);
    assert_eq!(then.reply()["already_member"], false);
    assert_eq!(s.code_uses("JOIN"), 1);
}

#[test]
fn redeem_code_requiring_approval_can_be_denied() {
    let mut s = approval_code();
    let invite_id = invite_of(&s.when_typed("fang", &[], redeem("JOIN")));
    s.when_typed("xuan", &[], deny(&invite_id)).then_match(
        |e| matches!(e, [Event::InviteDenied(d)] if d.invitee == id("fang") && d.invite_id == id(&invite_id)),
    );
    assert_eq!(s.record_status(&invite_id, "fang"), Some(RecordStatus::Denied));
    assert!(!s.is_member("conf", "fang"));
}

#[test]
fn redeem_code_again_after_approval_and_leaving_applies_again() {
    let mut s = approval_code();
    let invite_id = invite_of(&s.when_typed("fang", &[], redeem("JOIN")));
    s.given_typed("xuan", &[], approve(&invite_id))
        .given_typed("fang", &[], leave("conf"));
    let then = s.when_typed("fang", &[], redeem("JOIN"));
    let again = id(&invite_of(&then));
    assert_ne!(again, id(&invite_id), "a new application");
    then.then_match(|e| {
        matches!(e, [Event::InviteCodeRedeemed(r), Event::InviteCreated(c), Event::InviteAccepted(a)]
            if r.uses == 2 && c.invite_id == again && a.status == RecordStatus::Applying)
    });
}

#[test]
fn redeem_code_again_after_denial_does_not_claim_success_silently() {
    let mut s = approval_code();
    let invite_id = invite_of(&s.when_typed("fang", &[], redeem("JOIN")));
    s.given_typed("xuan", &[], deny(&invite_id));
    let then = s.when_typed("fang", &[], redeem("JOIN"));
    assert!(
        then.result.as_ref().map_or(true, |out| !out.events.is_empty()),
        "ok with nothing appended for a non-member"
    );
}

#[test]
fn create_code_with_a_huge_max_age_is_refused_without_panicking() {
    let mut s = Scenario::conference();
    let huge = CreateInviteCode {
        max_age: Some(u64::MAX),
        ..code_for("conf")
    };
    let then = s.when_typed("xuan", &[], Command::CreateInviteCode(huge));
    // Past the calendar (9999-12-31): refused, where adding the seconds could overflow.
    then.then_field_error(ErrorCode::InvalidField, "max_age");
}

// ---- DeleteInviteCode ----

/// `conference()` where fang joined and made code `JOIN`.
fn fangs_code() -> Scenario {
    let mut s = Scenario::conference();
    s.given_typed("fang", &[], join("conf"))
        .given_typed("fang", &[], create_code("conf", "JOIN"));
    s
}

#[test]
fn delete_code_by_its_creator_is_allowed() {
    let mut s = fangs_code();
    let then = s.when_typed("fang", &[], delete_code("JOIN"));
    then.then(&[Event::InviteCodeDeleted(InviteCodeDeleted {
        at: s.at(),
        by: id("fang"),
        code: id("JOIN"),
        resource_id: id("conf"),
    })]);
}

#[test]
fn delete_code_by_the_resource_owner_is_allowed() {
    let mut s = fangs_code();
    s.when_typed("xuan", &[], delete_code("JOIN"))
        .then_match(|e| matches!(e, [Event::InviteCodeDeleted(d)] if d.by == id("xuan")));
}

#[test]
fn delete_code_by_a_stranger_is_forbidden() {
    let mut s = with_code(join_code());
    s.when_typed("fang", &[], delete_code("JOIN"))
        .then_error(ErrorCode::Forbidden);
    s.given_typed("li", &[], join("conf"));
    s.when_typed("li", &[], delete_code("JOIN"))
        .then_error(ErrorCode::Forbidden);
}

#[test]
fn delete_code_twice_is_not_found() {
    let mut s = with_code(join_code());
    s.given_typed("xuan", &[], delete_code("JOIN"));
    s.when_typed("xuan", &[], delete_code("JOIN"))
        .then_error(ErrorCode::NotFound);
}

#[test]
fn delete_an_unknown_code_is_not_found() {
    let mut s = Scenario::conference();
    s.when_typed("xuan", &[], delete_code("NOPE"))
        .then_error(ErrorCode::NotFound);
}
