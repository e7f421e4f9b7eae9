//! Forgetting a person (ForgetUser): the user or an admin; `erased` is `full` when every
//! profile of theirs was stored sealed, `partial` when one was stored in plain text (before
//! fields were sealed: the chain keeps it); forgetting again appends nothing; a profile set
//! again afterwards is theirs again.

mod support;

use invitebus_events::command as cmd;
use invitebus_events::ErrorCode::Forbidden;
use invitebus_events::{Command, Event};
use invitebus_keys::DataKey;
use support::typed::*;
use support::{id, Scenario};

/// UpsertUser of fang, sealed as the command service seals it.
fn sealed_profile(key: &DataKey) -> Command {
    Command::UpsertUser(cmd::UpsertUser {
        user_id: id("fang"),
        name: key.seal("name", "Fang"),
        phone: Some(key.seal("phone", "+86 138")),
        email: None,
        company_name: None,
        department: None,
        position: None,
        area: None,
    })
}

fn forget(user: &str) -> Command {
    Command::ForgetUser(cmd::ForgetUser { user_id: id(user) })
}

#[test]
fn the_user_forgets_themself_fully_when_every_profile_was_sealed() {
    let key = DataKey::generate("fang").unwrap();
    let mut s = Scenario::new();
    s.given_typed("fang", &[], sealed_profile(&key));
    let then = s.when_typed("fang", &[], forget("fang"));
    then.then_match(|e| matches!(e, [Event::UserForgotten(f)] if f.erased == "full" && f.by == id("fang")));
    assert_eq!(then.reply()["erased"], "full");
}

#[test]
fn a_profile_once_stored_in_plain_text_makes_the_forget_partial() {
    let mut s = Scenario::new();
    s.given_typed("fang", &[], upsert_user("fang", "Fang"));
    let key = DataKey::generate("fang").unwrap();
    s.given_typed("fang", &[], sealed_profile(&key));
    let then = s.when_typed("boss", &["admin"], forget("fang"));
    then.then_match(|e| matches!(e, [Event::UserForgotten(f)] if f.erased == "partial"));
    assert_eq!(then.reply()["erased"], "partial");
}

#[test]
fn only_the_user_or_an_admin_forgets_and_twice_appends_nothing() {
    let mut s = Scenario::new();
    s.given_typed("fang", &[], upsert_user("fang", "Fang"));
    s.when_typed("li", &[], forget("fang")).then_error(Forbidden);
    s.given_typed("fang", &[], forget("fang"));
    s.when_typed("fang", &[], forget("fang")).then_nothing();
}

#[test]
fn a_profile_set_after_the_forget_is_theirs_again_and_can_be_forgotten_again() {
    let mut s = Scenario::new();
    s.given_typed("fang", &[], upsert_user("fang", "Fang"));
    s.given_typed("fang", &[], forget("fang"));
    let key = DataKey::generate("fang").unwrap();
    s.given_typed("fang", &[], sealed_profile(&key));
    s.when_typed("fang", &[], forget("fang")).then_types(&["UserForgotten"]);
}

#[test]
fn a_sealed_profile_unchanged_appends_nothing() {
    let key = DataKey::generate("fang").unwrap();
    let mut s = Scenario::new();
    s.given_typed("fang", &[], sealed_profile(&key));
    s.when_typed("fang", &[], sealed_profile(&key)).then_nothing();
}
