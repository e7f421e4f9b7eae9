//! Histories written straight into an event log, for the tests and benchmarks that need many
//! events fast: the writer's own append (hash chain, stream versions), no command service.

use chrono::{DateTime, Duration, TimeZone, Utc};
use invitebus_eventlog::{AppendCommand, EventLog, LogError, NewEvent, Options, RELAY_CHECKPOINT};
use invitebus_events::command::InviteDetail;
use invitebus_events::event::*;
use invitebus_events::{Event, Id, RecordStatus};
use std::collections::HashMap;
use std::path::Path;

fn id(s: String) -> Id {
    Id::parse(s).expect("generated ids are valid")
}

/// Appends `events` to the log at `path` (created if missing) in batches of 10,000, each
/// event its own command by `actor` `history`. With `relayed`, the relay's checkpoint is set to
/// the head, as if JetStream had acknowledged every event. Returns the head.
pub fn write_log(path: &Path, events: impl IntoIterator<Item = Event>, relayed: bool) -> Result<u64, LogError> {
    let mut log = EventLog::open(path, &Options::default())?;
    let mut versions: HashMap<String, u64> = HashMap::new();
    let mut batch = Vec::with_capacity(10_000);
    let now = Utc::now();
    for event in events {
        let ty = event.stream_type();
        let stream_id = ty.stream_id(event.stream_key());
        let version = versions.entry(stream_id.clone()).or_default();
        *version += 1;
        batch.push(AppendCommand {
            actor: "history".into(),
            command_type: "History",
            command_digest: String::new(),
            command_id: None,
            correlation_id: None,
            traceparent: None,
            causation_id: None,
            events: vec![NewEvent {
                stream_id,
                stream_type: ty.as_str(),
                version: *version,
                event_type: event.event_type(),
                schema: event.schema(),
                data: event.data_json(),
            }],
            reply_data: serde_json::Value::Null,
        });
        if batch.len() == 10_000 {
            log.append(&batch, now)?;
            batch.clear();
        }
    }
    log.append(&batch, now)?;
    if relayed {
        log.set_checkpoint(RELAY_CHECKPOINT, log.head())?;
    }
    Ok(log.head())
}

/// A mixed history of about `n` events touching every view, timer and notification table:
/// users, resources and members, invites to one or two people (some expiring, some meetings with
/// a reminder), then accepted, rejected, read, applying (some left waiting) and approved or denied, cancelled,
/// expired, hidden, updated, reminded; invite codes created, redeemed and deleted. Deterministic.
pub fn mixed(n: u64) -> Vec<Event> {
    let base: DateTime<Utc> = Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap();
    let users = (n / 20).clamp(4, 5_000);
    let resources = (n / 500).clamp(2, 200);
    let user = |u: u64| id(format!("u{}", u % users));
    let mut out = Vec::with_capacity(n as usize + 16);
    for u in 0..users {
        out.push(Event::UserUpserted(UserUpserted {
            area: Some("Lyon".into()),
            at: base,
            company_name: Some(format!("Company {}", u % 50)),
            department: None,
            email: Some(format!("u{u}@example.org")),
            name: format!("User {u}"),
            phone: Some(format!("139{u:08}")),
            position: None,
            user_id: user(u),
        }));
    }
    for r in 0..resources {
        out.push(Event::ResourceRegistered(ResourceRegistered {
            at: base,
            capacity: 0,
            info: None,
            kind: id(if r.is_multiple_of(2) { "meeting" } else { "conference" }.into()),
            name: format!("Resource {r}"),
            owner: user(r),
            parent_id: None,
            resource_id: id(format!("res{r}")),
        }));
        out.push(Event::MemberJoined(MemberJoined {
            at: base,
            inviter: None,
            member_count: 1,
            resource_id: id(format!("res{r}")),
            user_id: user(r),
            via: Via {
                code: None,
                direct: None,
                invite_id: None,
                owner: Some(true),
            },
        }));
    }
    let mut i = 0u64;
    while (out.len() as u64) < n {
        out.extend(invite_story(i, base, users, resources));
        i += 1;
    }
    out
}

/// One invite and what happens to it, chosen by `i`.
fn invite_story(i: u64, base: DateTime<Utc>, users: u64, resources: u64) -> Vec<Event> {
    let at = base + Duration::seconds(i as i64 * 7);
    let user = |u: u64| id(format!("u{}", u % users));
    let r = i % resources;
    let resource_id = id(format!("res{r}"));
    let resource_kind = id(if r.is_multiple_of(2) { "meeting" } else { "conference" }.into());
    let inviter = user(r);
    let invite_id = id(format!("inv{i:07}"));
    let (a, b) = (user(i * 13 + 1), user(i * 17 + 2));
    let invitees = if i.is_multiple_of(3) && a != b {
        vec![a.clone(), b.clone()]
    } else {
        vec![a.clone()]
    };
    let role = "member".to_string();
    let meeting = r.is_multiple_of(2);
    let detail = meeting.then(|| InviteDetail {
        begin_time: Some(at + Duration::days(2)),
        end_time: Some(at + Duration::days(2) + Duration::hours(1)),
        remind_min: Some(15),
        content: Some(format!("Meeting {i}")),
        ..Default::default()
    });
    let mut out = vec![Event::InviteCreated(InviteCreated {
        code: None,
        created_at: at,
        detail,
        expires_at: (!i.is_multiple_of(5)).then(|| at + Duration::days(7)),
        ext: None,
        invite_id: invite_id.clone(),
        invitees: invitees.clone(),
        inviter: inviter.clone(),
        message: (i.is_multiple_of(4)).then(|| format!("Please come, {i}")),
        offline_enabled: !i.is_multiple_of(11),
        push: None,
        requires_approval: i.is_multiple_of(6),
        resource_id: resource_id.clone(),
        resource_kind,
        role: role.clone(),
    })];
    let later = at + Duration::seconds(3);
    let decided = |approved: bool| {
        InviteDecided {
            at: later,
            by: inviter.clone(),
            description: Some(format!("decided {i}")),
            invite_id: invite_id.clone(),
            invitee: a.clone(),
            inviter: inviter.clone(),
            resource_id: resource_id.clone(),
            role: role.clone(),
        }
        .into_event(approved)
    };
    match i % 10 {
        0..=2 => {
            let status = if i.is_multiple_of(6) {
                RecordStatus::Applying
            } else {
                RecordStatus::Accepted
            };
            out.push(Event::InviteAccepted(InviteAccepted {
                at: later,
                invite_id: invite_id.clone(),
                invitee: a.clone(),
                inviter: inviter.clone(),
                resource_id: resource_id.clone(),
                role: role.clone(),
                status,
            }));
            if status == RecordStatus::Applying {
                // Some applications are left waiting: the invite stays open on them alone.
                match i.is_multiple_of(7) {
                    false => out.push(decided(i.is_multiple_of(12))),
                    true => out.extend(invitees.get(1).map(|b| {
                        Event::InviteRejected(InviteRejected {
                            at: later,
                            invite_id: invite_id.clone(),
                            invitee: b.clone(),
                            inviter: inviter.clone(),
                            reason: None,
                            resource_id: resource_id.clone(),
                            role: role.clone(),
                        })
                    })),
                }
            } else {
                out.push(Event::MemberJoined(MemberJoined {
                    at: later,
                    inviter: Some(inviter.clone()),
                    member_count: 2,
                    resource_id: resource_id.clone(),
                    user_id: a.clone(),
                    via: Via {
                        code: None,
                        direct: None,
                        invite_id: Some(invite_id.clone()),
                        owner: None,
                    },
                }));
            }
        }
        3 => out.push(Event::InviteRejected(InviteRejected {
            at: later,
            invite_id: invite_id.clone(),
            invitee: a.clone(),
            inviter: inviter.clone(),
            reason: Some("busy".into()),
            resource_id: resource_id.clone(),
            role: role.clone(),
        })),
        4 => {
            out.push(Event::InviteRead(InviteRead {
                at: later,
                invite_id: invite_id.clone(),
                invitee: a.clone(),
                inviter: inviter.clone(),
                resource_id: resource_id.clone(),
            }));
            // Every other one is then answered "maybe", with a proposal.
            if i % 20 == 14 {
                out.push(Event::InviteTentativelyAccepted(InviteTentativelyAccepted {
                    at: later,
                    comment: Some(format!("later {i}?")),
                    invite_id: invite_id.clone(),
                    invitee: a.clone(),
                    inviter: inviter.clone(),
                    proposed_begin_time: Some(at + Duration::days(2)),
                    proposed_end_time: None,
                    resource_id: resource_id.clone(),
                    role: role.clone(),
                }));
            }
        }
        5 => out.push(Event::InviteCancelled(InviteCancelled {
            at: later,
            cancelled: invitees.clone(),
            invite_id: invite_id.clone(),
            inviter: inviter.clone(),
            resource_id: resource_id.clone(),
            role: role.clone(),
        })),
        6 => out.push(Event::InviteExpired(InviteExpired {
            at: later,
            expired: invitees.clone(),
            invite_id: invite_id.clone(),
            inviter: inviter.clone(),
            resource_id: resource_id.clone(),
            role: role.clone(),
        })),
        7 => {
            out.push(Event::InviteReminded(InviteReminded {
                at: later,
                begin_time: None,
                content: None,
                invite_id: invite_id.clone(),
                inviter: inviter.clone(),
                recipients: invitees.clone(),
                remind_type: None,
                resource_id: resource_id.clone(),
                role: role.clone(),
            }));
            out.push(Event::InviteHidden(InviteHidden {
                at: later,
                invite_id: invite_id.clone(),
                resource_id: resource_id.clone(),
                user_id: inviter.clone(),
            }));
        }
        8 => {
            // Every other one also removes its first invitee, and every fourth adds them back
            // (a new record, numbered anew).
            let removed: Vec<Id> = match i % 20 == 18 && a != b {
                true => vec![a.clone()],
                false => vec![],
            };
            let added: Vec<Id> = vec![b.clone()].into_iter().filter(|x| !invitees.contains(x)).collect();
            let after: Vec<Id> = invitees
                .iter()
                .filter(|x| !removed.contains(x))
                .chain(&added)
                .cloned()
                .collect();
            let update = |added: Vec<Id>, removed: Vec<Id>, invitees: Vec<Id>, when| {
                Event::InviteUpdated(InviteUpdated {
                    added,
                    at: when,
                    detail: None,
                    expires_at: Some(at + Duration::days(9)),
                    invite_id: invite_id.clone(),
                    invitees,
                    inviter: inviter.clone(),
                    message: Some("moved".into()),
                    removed,
                    resource_id: resource_id.clone(),
                    role: role.clone(),
                    tentative_reset: vec![],
                })
            };
            let back = !removed.is_empty() && i % 40 == 38;
            out.push(update(added, removed, after.clone(), later));
            if back {
                let again: Vec<Id> = after.iter().cloned().chain([a.clone()]).collect();
                out.push(update(vec![a.clone()], vec![], again, later + Duration::seconds(1)));
            }
        }
        _ => {
            let code = id(format!("code{i:07}"));
            out.push(Event::InviteCodeCreated(InviteCodeCreated {
                code: code.clone(),
                created_at: later,
                expires_at: Some(later + Duration::days(1)),
                inviter: inviter.clone(),
                max_age: 86_400,
                max_uses: 5,
                requires_approval: false,
                resource_id: resource_id.clone(),
                temporary: false,
            }));
            out.push(Event::InviteCodeRedeemed(InviteCodeRedeemed {
                at: later,
                code: code.clone(),
                invite_id: None,
                inviter: inviter.clone(),
                resource_id: resource_id.clone(),
                user_id: b.clone(),
                uses: 1,
            }));
            if i % 20 == 9 {
                out.push(Event::InviteCodeDeleted(InviteCodeDeleted {
                    at: later,
                    by: inviter.clone(),
                    code,
                    resource_id: resource_id.clone(),
                }));
            }
        }
    }
    out
}

trait IntoDecided {
    fn into_event(self, approved: bool) -> Event;
}

impl IntoDecided for InviteDecided {
    fn into_event(self, approved: bool) -> Event {
        match approved {
            true => Event::InviteApproved(self),
            false => Event::InviteDenied(self),
        }
    }
}

/// Applies every event of the log at `log` to `projection` as the live feed does: `batch` at a
/// time through [`Projection::apply`]. Returns the position reached.
pub fn apply_live<P: invitebus_feed::Projection>(projection: &mut P, log: &Path, batch: usize) -> u64 {
    let reader = invitebus_eventlog::LogReader::open(log).expect("the log opens");
    let events: Vec<_> = reader
        .iter_from(projection.position())
        .map(|e| e.expect("the log reads"))
        .collect();
    for chunk in events.chunks(batch.max(1)) {
        projection.apply(chunk).unwrap_or_else(|e| panic!("applying live: {e}"));
    }
    projection.position()
}

/// Every row of every table of the SQLite file at `path`, tables by name and rows in the order
/// of all their columns, values as text; the index names too, so that a file without them differs.
pub fn dump(path: &Path) -> std::collections::BTreeMap<String, Vec<Vec<String>>> {
    let conn = rusqlite::Connection::open(path).expect("the file opens");
    let mut out = std::collections::BTreeMap::new();
    let objects: Vec<(String, String)> = conn
        .prepare("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .expect("sqlite_master reads");
    for (kind, name) in objects {
        if kind != "table" {
            out.entry("(indexes)".to_string())
                .or_insert_with(Vec::new)
                .push(vec![name]);
            continue;
        }
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{name}\""))
            .expect("the table reads");
        let columns = stmt.column_count();
        let mut rows: Vec<Vec<String>> = stmt
            .query_map([], |r| {
                (0..columns)
                    .map(|i| {
                        Ok(match r.get_ref(i)? {
                            rusqlite::types::ValueRef::Null => "NULL".to_string(),
                            rusqlite::types::ValueRef::Integer(n) => n.to_string(),
                            rusqlite::types::ValueRef::Real(f) => f.to_string(),
                            rusqlite::types::ValueRef::Text(t) => format!("'{}'", String::from_utf8_lossy(t)),
                            rusqlite::types::ValueRef::Blob(b) => format!("{b:?}"),
                        })
                    })
                    .collect()
            })
            .and_then(|rows| rows.collect())
            .expect("rows read");
        rows.sort();
        out.insert(name, rows);
    }
    out
}

/// Writes `mixed(events)` into a log in `dir`, applies it live (500 at a time) to one file and in
/// bulk to another (both opened with `open`), asserts every table and index equal, and returns
/// the live file's dump for the caller's own checks (that the history reached its tables).
pub fn assert_bulk_equals_live<P: invitebus_feed::Projection>(
    dir: &Path,
    events: u64,
    open: impl Fn(&Path) -> P,
) -> std::collections::BTreeMap<String, Vec<Vec<String>>> {
    let log = dir.join("events.db");
    let head = write_log(&log, mixed(events), true).expect("the history is written");
    let (live_path, bulk_path) = (dir.join("live.db"), dir.join("bulk.db"));
    let mut live = open(&live_path);
    assert_eq!(apply_live(&mut live, &log, 500), head);
    let mut rebuilt = open(&bulk_path);
    let settings = invitebus_feed::bulk::ReadSettings {
        chunk: 1000,
        workers: 2,
        keys: None,
    };
    let loaded = invitebus_feed::bulk::load(&mut rebuilt, &log, head, &settings, |_| Ok(())).expect("the bulk load");
    assert_eq!((loaded, rebuilt.position()), (head, head));
    assert!(!rebuilt.store().loading_path().exists(), "the loading file is gone");
    let (a, b) = (dump(&live_path), dump(&bulk_path));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (table, rows) in &a {
        assert!(rows == &b[table], "table {table} differs");
    }
    a
}
