//! Command decoding plus decide: any bytes, as any command, against a small world, must give a
//! typed error or events — never a panic — and every event decided must read back as itself.
//! Input: commands separated by 0x00, each `[name index][JSON body]`, run one after another.
#![no_main]

use chrono::{TimeZone, Utc};
use invitebus_commands::cache::{Cache, EmptySource};
use invitebus_commands::command;
use invitebus_commands::decision::RandomIds;
use invitebus_commands::Ctx;
use invitebus_events::{Command, CommandRequest, Event};
use libfuzzer_sys::fuzz_target;

fn run(cache: &mut Cache, name: &str, body: &[u8]) {
    let Ok(req) = CommandRequest::decode(name, body) else {
        return;
    };
    let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
    let ctx = Ctx::new(req.meta.actor.clone(), req.meta.roles.clone(), now);
    let Ok(out) = command::execute(cache, &EmptySource, &mut RandomIds, &ctx, &req.meta, &req.command) else {
        return;
    };
    for e in &out.events {
        let data: serde_json::Value = serde_json::from_str(&e.data_json()).expect("event data is JSON");
        let back = Event::decode(e.event_type(), e.schema(), data).expect("an event decided reads back");
        assert_eq!(&back, e, "an event survives its own wire form");
        cache.apply(e, &EmptySource).expect("a decided event applies");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut cache = Cache::default();
    for setup in [
        ("UpsertUser", r#"{"actor":"xuan","user_id":"xuan","name":"Xuan"}"#),
        (
            "RegisterResource",
            r#"{"actor":"xuan","resource_id":"conf","kind":"conference","name":"C","capacity":3}"#,
        ),
        (
            "CreateInvite",
            r#"{"actor":"xuan","resource_id":"conf","invitee":"fang","invite_id":"inv"}"#,
        ),
        (
            "CreateInviteCode",
            r#"{"actor":"xuan","resource_id":"conf","code":"CODE1","max_uses":2}"#,
        ),
    ] {
        run(&mut cache, setup.0, setup.1.as_bytes());
    }
    for chunk in data.split(|b| *b == 0).take(8) {
        if let Some((first, body)) = chunk.split_first() {
            let name = Command::NAMES[*first as usize % Command::NAMES.len()];
            run(&mut cache, name, body);
        }
    }
});
