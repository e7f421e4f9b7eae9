//! Given / when / then for decisions: state is built by running commands (or raw events)
//! through the same dispatch and evolve the writer uses, with a fixed clock and fixed ids,
//! and no NATS or SQLite. Commands are typed (`typed` builds them) and events are compared
//! typed; `given`/`when` by name and JSON body remain for tests of the wire form.
#![allow(dead_code)]

pub mod invite;
pub mod typed;

use chrono::{DateTime, Duration, TimeZone, Utc};
use invitebus_commands::cache::{Cache, EmptySource};
use invitebus_commands::code::CodeState;
use invitebus_commands::command;
use invitebus_commands::decision::{IdGen, Outcome};
use invitebus_commands::invite::InviteState;
use invitebus_commands::resource::ResourceState;
use invitebus_commands::Ctx;
use invitebus_events::command::InviteSpec;
use invitebus_events::{Command, CommandMeta, CommandRequest, ErrorCode, Event, Id, ProtocolError};
use serde_json::Value;

/// Ids `id-1`, `id-2`, … and codes `CODE0001`, … in order.
#[derive(Default)]
pub struct FixedIds {
    next: u32,
}

impl IdGen for FixedIds {
    fn new_id(&mut self) -> Id {
        self.next += 1;
        Id::parse(format!("id-{}", self.next)).unwrap()
    }
    fn new_code(&mut self) -> Id {
        self.next += 1;
        Id::parse(format!("CODE{:04}", self.next)).unwrap()
    }
}

pub fn id(s: &str) -> Id {
    Id::parse(s).unwrap()
}

/// A command from its name and JSON body (actor and roles included), decoded as the service would.
pub fn cmd(name: &str, body: Value) -> CommandRequest {
    CommandRequest::decode(name, body.to_string().as_bytes()).unwrap_or_else(|e| panic!("{name} {body}: {e}"))
}

pub struct Scenario {
    pub cache: Cache,
    pub ids: FixedIds,
    pub now: DateTime<Utc>,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario::new()
    }
}

impl Scenario {
    pub fn new() -> Scenario {
        Scenario {
            cache: Cache::default(),
            ids: FixedIds::default(),
            now: Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap(),
        }
    }

    /// Moves the clock.
    pub fn advance(&mut self, secs: i64) -> &mut Self {
        self.now += Duration::seconds(secs);
        self
    }

    fn run(&mut self, req: &CommandRequest) -> Result<Outcome, ProtocolError> {
        let ctx = Ctx::new(req.meta.actor.clone(), req.meta.roles.clone(), self.now);
        let out = command::execute(
            &mut self.cache,
            &EmptySource,
            &mut self.ids,
            &ctx,
            &req.meta,
            &req.command,
        )?;
        for e in &out.events {
            self.cache.apply(e, &EmptySource).expect("apply");
        }
        Ok(out)
    }

    /// Runs a command that must succeed; its events become state.
    pub fn given(&mut self, name: &str, body: Value) -> &mut Self {
        let req = cmd(name, body.clone());
        if let Err(e) = self.run(&req) {
            panic!("given {name} {body} failed: {e}");
        }
        self
    }

    /// Runs a typed command as `actor` (with `roles`) that must succeed; its events become state.
    pub fn given_typed(&mut self, actor: &str, roles: &[&str], command: Command) -> &mut Self {
        let name = command.name();
        if let Err(e) = self.when_typed(actor, roles, command).result {
            panic!("given {name} by {actor} failed: {e}");
        }
        self
    }

    /// Applies raw events as state.
    pub fn given_events(&mut self, events: &[Event]) -> &mut Self {
        for e in events {
            self.cache.apply(e, &EmptySource).expect("apply");
        }
        self
    }

    /// Runs a typed command as `actor` (with `roles`): the typed harness, no JSON in between.
    pub fn when_typed(&mut self, actor: &str, roles: &[&str], command: Command) -> Then {
        let mut meta = CommandMeta::new(id(actor));
        meta.roles = roles.iter().map(|r| r.to_string()).collect();
        let req = CommandRequest { meta, command };
        Then { result: self.run(&req) }
    }

    /// Runs a typed command with hand-made common fields (`expected_version`, …).
    pub fn when_meta(&mut self, meta: CommandMeta, command: Command) -> Then {
        let req = CommandRequest { meta, command };
        Then { result: self.run(&req) }
    }

    /// The clock the scenario decides at.
    pub fn at(&self) -> DateTime<Utc> {
        self.now
    }

    /// Runs the command under test from its name and JSON body, as decoded off the wire.
    pub fn when(&mut self, name: &str, body: Value) -> Then {
        let req = cmd(name, body);
        Then { result: self.run(&req) }
    }

    /// The usual start: users xuan (Xuan) and fang (Fang), xuan owns conference `conf`.
    pub fn conference() -> Scenario {
        let mut s = Scenario::new();
        s.given_typed("xuan", &[], typed::upsert_user("xuan", "Xuan"))
            .given_typed("fang", &[], typed::upsert_user("fang", "Fang"))
            .given_typed("xuan", &[], typed::register("conf", "conference", "RustConf", 0));
        s
    }

    /// `conference()` plus invite `inv` from xuan to fang as pcmember.
    pub fn invited() -> Scenario {
        let mut s = Scenario::conference();
        let spec = InviteSpec {
            invite_id: Some(id("inv")),
            role: Some("pcmember".into()),
            ..typed::invitee("fang")
        };
        s.given_typed("xuan", &[], typed::create_invite("conf", spec));
        s
    }

    /// The invite's record status for `invitee`, as the cache holds it.
    pub fn record_status(&self, invite: &str, invitee: &str) -> Option<invitebus_events::RecordStatus> {
        let inv = self.cache.get::<InviteState>(&id(invite))?.state.invite.as_ref()?;
        inv.record(&id(invitee)).map(|r| r.status)
    }

    /// The invite's status, as the cache holds it.
    pub fn invite_status(&self, invite: &str) -> Option<invitebus_events::InviteStatus> {
        let inv = self.cache.get::<InviteState>(&id(invite))?.state.invite.as_ref()?;
        Some(inv.status())
    }

    pub fn is_member(&self, resource: &str, user: &str) -> bool {
        self.cache
            .get::<ResourceState>(&id(resource))
            .is_some_and(|r| r.state.is_member(&id(user)))
    }

    /// How many times a code was redeemed, as the cache holds it.
    pub fn code_uses(&self, code: &str) -> u32 {
        self.cache.get::<CodeState>(&id(code)).map_or(0, |c| c.state.uses)
    }
}

pub struct Then {
    pub result: Result<Outcome, ProtocolError>,
}

impl Then {
    /// The events' types, in order.
    pub fn then_types(&self, types: &[&str]) -> &Self {
        let out = self
            .result
            .as_ref()
            .unwrap_or_else(|e| panic!("expected events {types:?}, got error {e}"));
        let got: Vec<&str> = out.events.iter().map(|e| e.event_type()).collect();
        assert_eq!(got, types);
        self
    }

    pub fn then_events(&self) -> &[Event] {
        &self
            .result
            .as_ref()
            .unwrap_or_else(|e| panic!("expected events, got error {e}"))
            .events
    }

    /// Exactly these events, field by field, in order.
    pub fn then(&self, expected: &[Event]) -> &Self {
        assert_eq!(self.then_events(), expected);
        self
    }

    /// Events for which `check` holds (a slice pattern, usually), shown when it does not.
    pub fn then_match(&self, check: impl FnOnce(&[Event]) -> bool) -> &Self {
        let events = self.then_events();
        assert!(check(events), "unexpected events: {events:#?}");
        self
    }

    pub fn then_nothing(&self) -> &Self {
        self.then_types(&[])
    }

    pub fn then_error(&self, code: ErrorCode) -> &ProtocolError {
        match &self.result {
            Ok(out) => panic!(
                "expected {code}, got events {:?}",
                out.events.iter().map(|e| e.event_type()).collect::<Vec<_>>()
            ),
            Err(e) => {
                assert_eq!(e.code, code, "wrong error: {e}");
                e
            }
        }
    }

    /// `then_error` that also checks the field the error names.
    pub fn then_field_error(&self, code: ErrorCode, field: &str) -> &ProtocolError {
        let e = self.then_error(code);
        assert_eq!(e.field.as_deref(), Some(field), "wrong field: {e}");
        e
    }

    pub fn reply(&self) -> &Value {
        &self.result.as_ref().expect("ok").reply
    }
}

/// Meta for hand-built requests.
pub fn meta(actor: &str) -> CommandMeta {
    CommandMeta::new(id(actor))
}
