use super::files::{compose_config, render_config, Secret};
use super::*;

fn s() -> Subjects {
    Subjects::default()
}

fn allows(list: &[String], subject: &str) -> bool {
    list.iter().any(|p| matches(p, subject))
}

/// NATS subject matching: `*` one token, `>` the rest.
fn matches(pattern: &str, subject: &str) -> bool {
    let (mut p, mut t) = (pattern.split('.'), subject.split('.'));
    loop {
        match (p.next(), t.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// What the server decides: allowed and not denied.
fn may_publish(user: User, subject: &str) -> bool {
    let p = permissions(user, &s());
    allows(&p.publish_allow, subject) && !allows(&p.publish_deny, subject)
}

fn may_subscribe(user: User, subject: &str) -> bool {
    let p = permissions(user, &s());
    allows(&p.subscribe_allow, subject) && !allows(&p.subscribe_deny, subject)
}

#[test]
fn the_matcher_follows_nats_wildcards() {
    assert!(matches("invites.cmd.*", "invites.cmd.CreateInvite"));
    assert!(!matches("invites.cmd.*", "invites.cmd.a.b"));
    assert!(matches("invites.>", "invites.cmd.a.b"));
    assert!(!matches("invites.>", "invites"));
    assert!(!matches("_INBOX.>", "_INBOX_views.x"));
}

#[test]
fn only_commands_and_service_answer_commands_and_publish_events() {
    for user in User::ALL {
        let writer = matches!(user, User::Commands | User::Service);
        assert_eq!(may_subscribe(user, "invites.cmd.CreateInvite"), writer, "{user:?}");
        assert_eq!(
            may_publish(user, "invites.evt.InviteCreated.invite-1"),
            writer,
            "{user:?}"
        );
        // A large command's rest, which a takeover appends to its log, is theirs alone too.
        assert_eq!(may_publish(user, "invites.rest.0a9f.0"), writer, "{user:?}");
        assert_eq!(
            may_publish(user, "$JS.API.STREAM.MSG.GET.INVITES_RESTS"),
            writer,
            "{user:?}"
        );
    }
}

#[test]
fn a_client_requests_and_reads_events_and_nothing_more() {
    let c = User::Client;
    assert!(may_publish(c, "invites.cmd.CreateInvite"));
    assert!(may_publish(c, "invites.q.received"));
    assert!(may_publish(c, "invites.health"));
    assert!(may_subscribe(c, "_INBOX.abc.1"));
    assert!(may_publish(c, "$JS.API.STREAM.INFO.INVITES_EVENTS"));
    assert!(may_publish(
        c,
        "$JS.API.CONSUMER.CREATE.INVITES_EVENTS.c1.invites.evt.>"
    ));
    assert!(may_publish(c, "$JS.API.CONSUMER.MSG.NEXT.INVITES_EVENTS.c1"));
    for refused in [
        "$JS.API.STREAM.DELETE.INVITES_EVENTS",
        "$JS.API.STREAM.PURGE.INVITES_EVENTS",
        "$JS.API.STREAM.MSG.DELETE.INVITES_EVENTS",
        "$JS.API.CONSUMER.DELETE.INVITES_EVENTS.c1",
        "$JS.API.STREAM.CREATE.X",
        "$JS.API.STREAM.INFO.OBJ_invites-exports",
        "$JS.API.DIRECT.GET.OBJ_invites-exports",
        "$JS.API.STREAM.MSG.GET.OBJ_invites-exports",
        "$JS.API.CONSUMER.CREATE.OBJ_invites-exports",
        "$JS.API.CONSUMER.CREATE.INVITES_NOTIFY",
        "$JS.API.DIRECT.GET.KV_leases",
        "$O.invites-exports.M.x",
        "invites.notify.fang",
        "invites.status.views",
    ] {
        assert!(!may_publish(c, refused), "{refused}");
    }
    for refused in [
        "invites.q.received",
        "invites.health",
        "invites.evt.>",
        "_INBOX_views.x",
        "invites.notify.fang",
    ] {
        assert!(!may_subscribe(c, refused), "{refused}");
    }
}

#[test]
fn the_export_bucket_is_read_by_the_gateway_written_by_the_exporter_and_no_one_else() {
    let read = "$JS.API.DIRECT.GET.OBJ_invites-exports";
    let write = "$O.invites-exports.C.nuid";
    for user in User::ALL {
        let reads = matches!(user, User::Gateway | User::Exporter | User::Service);
        assert_eq!(may_publish(user, read), reads, "{user:?}");
        assert_eq!(
            may_publish(user, write),
            matches!(user, User::Exporter | User::Service),
            "{user:?}"
        );
    }
}

#[test]
fn projections_consume_events_and_answer_only_their_queries() {
    for user in [
        User::Views,
        User::Notifier,
        User::Scheduler,
        User::Exporter,
        User::Webhooks,
    ] {
        assert!(may_publish(user, "$JS.API.CONSUMER.CREATE.INVITES_EVENTS"), "{user:?}");
        assert!(
            may_publish(user, "$JS.API.CONSUMER.DELETE.INVITES_EVENTS.x"),
            "{user:?}"
        );
        assert!(!may_publish(user, "$JS.API.STREAM.DELETE.INVITES_EVENTS"), "{user:?}");
        assert!(may_publish(user, "$JS.API.INFO"), "{user:?}");
    }
    assert!(may_subscribe(User::Views, "invites.q.received"));
    assert!(!may_subscribe(User::Views, "invites.q.inbox"));
    assert!(may_subscribe(User::Notifier, "invites.q.inbox"));
    assert!(!may_subscribe(User::Scheduler, "invites.q.received"));
    assert!(may_publish(User::Scheduler, "invites.cmd.ExpireInvite"));
    assert!(may_subscribe(User::Webhooks, "invites.q.webhooks"));
    assert!(!may_subscribe(User::Webhooks, "invites.q.received"));
    assert!(!may_publish(User::Webhooks, "invites.cmd.RegisterWebhook"));
    assert!(!may_publish(User::Webhooks, "invites.evt.WebhookRegistered.webhook-w"));
    assert!(!permissions(User::Scheduler, &s()).allow_responses);
}

#[test]
fn each_service_user_reads_only_its_own_inbox() {
    for user in User::ALL {
        assert!(may_subscribe(user, &format!("{}.x.1", user.inbox_prefix())), "{user:?}");
        for other in User::ALL.into_iter().filter(|o| *o != user && *o != User::Client) {
            if user != User::Service {
                assert!(
                    !may_subscribe(user, &format!("{}.x.1", other.inbox_prefix())),
                    "{user:?} {other:?}"
                );
            }
        }
    }
}

#[test]
fn no_allow_list_is_empty_as_an_empty_one_would_allow_everything() {
    for user in User::ALL {
        let p = permissions(user, &s());
        assert!(!p.publish_allow.is_empty() && !p.subscribe_allow.is_empty(), "{user:?}");
    }
}

#[test]
fn the_prefix_setting_moves_every_subject() {
    let p = permissions(User::Client, &Subjects::new("acme"));
    assert!(allows(&p.publish_allow, "acme.cmd.CreateInvite"));
    assert!(!allows(&p.publish_allow, "invites.cmd.CreateInvite"));
}

#[test]
fn the_config_names_every_user_once_with_its_password() {
    let text = render_config(&s(), "", |u| {
        Secret::Literal(if u == User::Client { "pw-client" } else { "pw" })
    });
    for user in User::ALL {
        assert_eq!(
            text.matches(&format!("user: \"{}\"", user.name())).count(),
            1,
            "{user:?}"
        );
    }
    assert!(text.contains("password: \"pw-client\""));
    assert_eq!(text.matches('{').count(), text.matches('}').count());
}

#[test]
fn compose_nats_config_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docker/nats-auth.conf");
    let kept = std::fs::read_to_string(path).unwrap_or_default();
    let made = compose_config(&s());
    if kept != made && std::env::var_os("INVITEBUS_WRITE_COMPOSE_CONFIG").is_some() {
        std::fs::write(path, &made).unwrap();
        return;
    }
    assert_eq!(
        kept, made,
        "docker/nats-auth.conf is stale: run this test with INVITEBUS_WRITE_COMPOSE_CONFIG=1"
    );
}

#[test]
fn the_data_keys_are_read_by_the_roles_that_open_personal_fields_and_erased_by_commands_only() {
    let read = "$JS.API.DIRECT.GET.KV_invites-keys.$KV.invites-keys.fang";
    for user in User::ALL {
        let opens = matches!(
            user,
            User::Commands | User::Views | User::Notifier | User::Exporter | User::Service
        );
        assert_eq!(may_publish(user, read), opens, "{user:?}");
        assert_eq!(
            may_publish(user, "$JS.API.STREAM.MSG.DELETE.KV_invites-keys"),
            matches!(user, User::Commands | User::Service),
            "{user:?}"
        );
    }
    assert!(may_publish(User::Notifier, "$JS.API.STREAM.MSG.DELETE.INVITES_NOTIFY"));
    assert!(may_publish(
        User::Exporter,
        "$JS.API.STREAM.MSG.DELETE.OBJ_invites-exports"
    ));
    assert!(!may_publish(User::Client, "$KV.invites-keys.fang"));
    assert!(
        !may_publish(User::Views, "$KV.invites-keys.fang"),
        "only commands makes keys"
    );
}
