//! Webhooks (RegisterWebhook, DeleteWebhook, ReplayWebhook): an admin registers one over every
//! resource, a resource's owner one over that resource only; its registrant or an admin
//! deletes or replays it; the event holds the secret sealed, never in clear.

mod support;

use invitebus_events::command as cmd;
use invitebus_events::ErrorCode::{Forbidden, Internal, NotFound, ResourceExists};
use invitebus_events::{Command, Event};
use support::typed::*;
use support::{id, Scenario};

#[test]
fn an_admin_registers_a_webhook_over_every_resource_with_the_secret_sealed() {
    let mut s = Scenario::conference();
    let then = s.when_typed("boss", &["admin"], register_webhook("w1", None));
    then.then_match(|e| {
        matches!(e, [Event::WebhookRegistered(w)]
            if w.by == id("boss") && w.resource_id.is_none() && w.events == ["*"]
                && invitebus_keys::is_sealed(&w.secret) && !w.secret.contains("whsec")
                && invitebus_keys::MasterKey::dev().open(invitebus_keys::Purpose::WebhookSecret, &w.secret).as_deref()
                    == Ok("whsec_0123456789abcdef"))
    });
    assert!(!then.reply().to_string().contains("whsec"), "the reply holds no secret");
}

#[test]
fn a_resource_owner_registers_one_for_that_resource_only() {
    let mut s = Scenario::conference();
    s.when_typed("xuan", &[], register_webhook("w1", Some("conf")))
        .then_match(|e| matches!(e, [Event::WebhookRegistered(w)] if w.resource_id == Some(id("conf"))));
    s.when_typed("xuan", &[], register_webhook("w2", None))
        .then_error(Forbidden);
}

#[test]
fn a_member_who_does_not_own_the_resource_may_not_register_one() {
    let mut s = Scenario::conference();
    s.given_typed("fang", &[], join("conf"));
    s.when_typed("fang", &[], register_webhook("w1", Some("conf")))
        .then_error(Forbidden);
    s.when_typed("fang", &[], register_webhook("w1", Some("nowhere")))
        .then_error(NotFound);
}

#[test]
fn a_webhook_id_is_taken_once_even_after_delete() {
    let mut s = Scenario::conference();
    s.given_typed("xuan", &[], register_webhook("w1", Some("conf")));
    s.when_typed("xuan", &[], register_webhook("w1", Some("conf")))
        .then_field_error(ResourceExists, "webhook_id");
    s.given_typed("xuan", &[], delete_webhook("w1"));
    s.when_typed("xuan", &[], register_webhook("w1", Some("conf")))
        .then_field_error(ResourceExists, "webhook_id");
}

#[test]
fn a_secret_the_service_did_not_seal_is_never_appended() {
    let mut s = Scenario::conference();
    let Command::RegisterWebhook(mut c) = register_webhook("w1", None) else {
        unreachable!()
    };
    c.sealed = None;
    s.when_typed("boss", &["admin"], Command::RegisterWebhook(c))
        .then_error(Internal);
}

#[test]
fn its_registrant_or_an_admin_deletes_or_replays_it_and_nobody_else() {
    let mut s = Scenario::conference();
    s.given_typed("xuan", &[], register_webhook("w1", Some("conf")));
    s.when_typed("fang", &[], delete_webhook("w1")).then_error(Forbidden);
    s.when_typed("fang", &[], replay_webhook("w1", 1)).then_error(Forbidden);
    s.when_typed("xuan", &[], replay_webhook("w1", 3))
        .then_match(|e| matches!(e, [Event::WebhookReplayed(r)] if r.from_position == 3 && r.by == id("xuan")));
    s.when_typed("boss", &["admin"], replay_webhook("w1", 1))
        .then_types(&["WebhookReplayed"]);
    s.given_typed("boss", &["admin"], delete_webhook("w1"));
    s.when_typed("xuan", &[], delete_webhook("w1"))
        .then_field_error(NotFound, "webhook_id");
    s.when_typed("xuan", &[], replay_webhook("w1", 1))
        .then_field_error(NotFound, "webhook_id");
}

#[test]
fn an_unknown_webhook_is_not_found() {
    let mut s = Scenario::conference();
    s.when_typed("boss", &["admin"], delete_webhook("nope"))
        .then_field_error(NotFound, "webhook_id");
    let replay = Command::ReplayWebhook(cmd::ReplayWebhook {
        webhook_id: id("nope"),
        from_position: 1,
    });
    s.when_typed("boss", &["admin"], replay)
        .then_field_error(NotFound, "webhook_id");
}
