//! The command service's edge for personal data, without I/O: whose key seals a command's
//! personal fields (nobody's when the decision will refuse it), and that what it seals is every
//! personal field the event stores, so a profile decided after the edge holds nothing in clear.

mod support;

use invitebus_commands::personal::{owner, seal};
use invitebus_events::Event;
use invitebus_keys::DataKey;
use serde_json::json;
use support::{cmd, id, Scenario};

fn full_profile(actor: &str, roles: &[&str], user: &str) -> invitebus_events::CommandRequest {
    cmd(
        "UpsertUser",
        json!({"actor": actor, "roles": roles, "user_id": user, "name": "Fang", "phone": "+86 138",
               "email": "f@x.cn", "company_name": "ACME", "department": "Sales", "position": "Buyer",
               "area": "Shanghai"}),
    )
}

#[test]
fn the_key_is_the_profiles_owner_for_those_the_decision_lets_through() {
    assert_eq!(owner(&full_profile("fang", &[], "fang")), Some(&id("fang")));
    assert_eq!(owner(&full_profile("boss", &["admin"], "fang")), Some(&id("fang")));
    // Someone else's profile is refused by the decision: no key is made for fang.
    assert_eq!(owner(&full_profile("li", &[], "fang")), None);
    let reject = |reason: Option<&str>| {
        cmd(
            "RejectInvite",
            json!({"actor": "li", "invite_id": "i1", "reason": reason}),
        )
    };
    assert_eq!(owner(&reject(Some("busy"))), Some(&id("li")));
    assert_eq!(owner(&reject(None)), None, "nothing personal to seal");
    let tentative = cmd(
        "TentativelyAcceptInvite",
        json!({"actor": "li", "invite_id": "i1", "comment": "maybe"}),
    );
    assert_eq!(owner(&tentative), Some(&id("li")));
    assert_eq!(
        owner(&cmd("MarkInviteRead", json!({"actor": "li", "invite_id": "i1"}))),
        None
    );
}

#[test]
fn a_profile_sealed_at_the_edge_is_stored_with_nothing_in_clear() {
    let key = DataKey::generate("fang").unwrap();
    let mut request = full_profile("fang", &[], "fang");
    seal(&mut request.command, &key);
    let mut s = Scenario::new();
    let then = s.when_typed("fang", &[], request.command.clone());
    let [Event::UserUpserted(stored)] = then.then_events() else {
        panic!("{:?}", then.then_events())
    };
    let mut event = Event::UserUpserted(stored.clone());
    assert!(!event.has_plain_personal_data(), "{stored:?}");
    let (_, fields) = event.personal_fields();
    assert_eq!(fields.len(), 7, "every field of the profile was given");
    let opened: Vec<String> = fields.iter().map(|f| key.open(f.name, f.text).unwrap()).collect();
    assert_eq!(
        opened,
        ["Fang", "+86 138", "f@x.cn", "ACME", "Sales", "Buyer", "Shanghai"]
    );
}

mod webhook_edge {
    use super::support::cmd;
    use invitebus_commands::webhook::{at_edge, WebhookIntake};
    use invitebus_events::{Command, ErrorCode};
    use invitebus_keys::{MasterKey, Purpose};
    use serde_json::json;

    fn register(url: &str) -> invitebus_events::CommandRequest {
        cmd(
            "RegisterWebhook",
            json!({"actor": "boss", "roles": ["admin"], "webhook_id": "w1", "url": url,
                   "events": ["*"], "secret": "whsec_0123456789abcdef"}),
        )
    }

    /// The secret leaves the edge sealed (and, where the digest sees it, as its keyed hash); a
    /// private target is refused unless allowed, and so is a host not on the allow list.
    #[test]
    fn a_webhook_leaves_the_edge_with_its_secret_sealed_and_its_target_checked() {
        let intake = WebhookIntake {
            key: MasterKey::dev(),
            allow_private: false,
            allow_hosts: Vec::new(),
        };
        let mut ok = register("https://hooks.example.com/in");
        at_edge(&mut ok, &intake).unwrap();
        let Command::RegisterWebhook(c) = &ok.command else {
            unreachable!()
        };
        let sealed = c.sealed.as_deref().expect("sealed");
        assert_eq!(
            intake.key.open(Purpose::WebhookSecret, sealed).unwrap(),
            "whsec_0123456789abcdef"
        );
        assert!(
            c.secret.starts_with("hmac:") && !c.secret.contains("whsec"),
            "{}",
            c.secret
        );

        for url in ["https://127.0.0.1/in", "https://10.1.2.3/in", "https://[::1]/in"] {
            let e = at_edge(&mut register(url), &intake).unwrap_err();
            assert_eq!(
                (e.code, e.field.as_deref()),
                (ErrorCode::InvalidField, Some("url")),
                "{url}"
            );
        }
        let private_ok = WebhookIntake {
            allow_private: true,
            ..intake.clone()
        };
        at_edge(&mut register("https://127.0.0.1/in"), &private_ok).unwrap();
        let listed = WebhookIntake {
            allow_hosts: vec!["example.com".into()],
            ..intake.clone()
        };
        at_edge(&mut register("https://hooks.example.com/in"), &listed).unwrap();
        let e = at_edge(&mut register("https://hooks.example.org/in"), &listed).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("url"));
        // Other commands pass untouched.
        let mut other = cmd("MarkInviteRead", json!({"actor": "li", "invite_id": "i1"}));
        let before = other.command.clone();
        at_edge(&mut other, &intake).unwrap();
        assert_eq!(other.command, before);
    }
}
