//! One resource's views as of a position, from its own streams only (`replay --until …
//! --resource ID`): the resource's stream, its invites' and codes', and the user streams of
//! the people they name, merged in position order into a fresh view file. What the views of
//! that resource hold depends on no other stream, so the result equals the whole views as of
//! that position, restricted to the resource (see [`crate::snapshot::of_resource`]).

use crate::projection::{ViewError, Views};
use invitebus_eventlog::LogReader;
use invitebus_events::event::StreamType;
use invitebus_events::{Envelope, Event, Id};
use rusqlite::Connection;
use std::collections::BTreeSet;
use tracing::warn;

/// Events per transaction while the part is applied.
const BATCH: usize = 10_000;

/// The invite and code streams of `resource` up to `until`: those `catalogue` (a view file, at
/// any position) lists, and those created in the log after the catalogue's position. Views
/// never delete an invite or a code row, so a catalogue ahead of `until` lists a superset.
pub fn owned_streams(
    log: &LogReader,
    catalogue: Option<&Connection>,
    resource: &Id,
    until: u64,
) -> Result<BTreeSet<String>, ViewError> {
    let mut streams = BTreeSet::new();
    let mut scanned_from = 0;
    if let Some(views) = catalogue {
        // A catalogue that cannot be read, or that is ahead of this log (another history's),
        // is only a shortcut missed: the log is scanned from the start instead.
        match catalogued(views, resource) {
            Ok((at, listed)) if at <= log.head()? => {
                scanned_from = at;
                streams.extend(listed);
            }
            Ok((at, _)) => warn!(
                catalogue_at = at,
                "the views are ahead of the log: not used as a catalogue"
            ),
            Err(e) => warn!(error = %e, "the views could not be read as a catalogue"),
        }
    }
    // Past the catalogue: the creations in the log (schema 1 of both types names the resource
    // `resource_id`; what is found is read and decoded like every other event).
    if scanned_from < until {
        let mut stmt = log.connection().prepare(
            "SELECT s.stream_id FROM events e JOIN streams s ON s.stream_key = e.stream_key \
             WHERE e.position > ?1 AND e.position <= ?2 AND e.type IN ('InviteCreated', 'InviteCodeCreated') \
             AND json_extract(e.data, '$.resource_id') = ?3",
        )?;
        let ids = stmt.query_map(
            rusqlite::params![scanned_from as i64, until as i64, resource.as_str()],
            |r| r.get::<_, String>(0),
        )?;
        for id in ids {
            streams.insert(id?);
        }
    }
    streams.insert(StreamType::Resource.stream_id(resource));
    Ok(streams)
}

/// The people an event names: whose profile a view row of it may show.
pub fn people(event: &Event) -> Vec<&Id> {
    match event {
        Event::UserUpserted(_) => vec![],
        Event::UserForgotten(_) => vec![],
        Event::ResourceRegistered(e) => vec![&e.owner],
        Event::MemberJoined(e) => e.inviter.iter().chain([&e.user_id]).collect(),
        Event::MemberLeft(e) => vec![&e.user_id],
        // A pause has no view row (the `state` query of its resource stream shows it).
        Event::InvitesPaused(_) | Event::InvitesResumed(_) => vec![],
        Event::InviteCreated(e) => e.invitees.iter().chain([&e.inviter]).collect(),
        Event::InviteUpdated(e) => e.invitees.iter().chain(&e.added).chain([&e.inviter]).collect(),
        Event::InviteCancelled(e) => e.cancelled.iter().chain([&e.inviter]).collect(),
        Event::InviteAccepted(e) => vec![&e.invitee, &e.inviter],
        Event::InviteRejected(e) => vec![&e.invitee, &e.inviter],
        Event::InviteTentativelyAccepted(e) => vec![&e.invitee, &e.inviter],
        Event::InviteResent(e) => e.invitees.iter().chain([&e.inviter]).collect(),
        Event::InviteRead(e) => vec![&e.invitee, &e.inviter],
        Event::InviteHidden(e) => vec![&e.user_id],
        Event::InviteApproved(e) | Event::InviteDenied(e) => vec![&e.invitee, &e.inviter, &e.by],
        Event::InviteExpired(e) => e.expired.iter().chain([&e.inviter]).collect(),
        Event::InviteReminded(e) => e.recipients.iter().chain([&e.inviter]).collect(),
        Event::InviteCodeCreated(e) => vec![&e.inviter],
        Event::InviteCodeRedeemed(e) => vec![&e.inviter, &e.user_id],
        Event::InviteCodeDeleted(e) => vec![&e.by],
        Event::ExportRequested(_)
        | Event::ExportStarted(_)
        | Event::ExportCompleted(_)
        | Event::ExportFailed(_)
        | Event::WebhookRegistered(_)
        | Event::WebhookDeleted(_)
        | Event::WebhookReplayed(_) => vec![],
    }
}

/// The catalogue's position and the invite and code streams it lists for `resource`, read in
/// one transaction (the same moment).
fn catalogued(views: &Connection, resource: &Id) -> rusqlite::Result<(u64, Vec<String>)> {
    let tx = views.unchecked_transaction()?;
    let at = invitebus_feed::store::checkpoint(&tx, crate::projection::NAME)?;
    let mut streams = Vec::new();
    for (table, column, ty) in [
        ("invites", "invite_id", StreamType::Invite),
        ("codes", "code", StreamType::Code),
    ] {
        let mut stmt = tx.prepare(&format!("SELECT {column} FROM {table} WHERE resource_id = ?1"))?;
        let ids = stmt.query_map([resource.as_str()], |r| r.get::<_, String>(0))?;
        for id in ids {
            streams.push(format!("{}-{}", ty.as_str(), id?));
        }
    }
    Ok((at, streams))
}

/// Writes `resource`'s views as of `until` into the fresh view file `views`, reading only the
/// streams above from the log. Returns the events applied.
pub fn load(
    views: &mut Views,
    log: &LogReader,
    catalogue: Option<&Connection>,
    resource: &Id,
    until: u64,
    keys: Option<&invitebus_keys::KeyRing>,
) -> Result<u64, ViewError> {
    let mut events: Vec<Envelope> = Vec::new();
    let mut users = BTreeSet::new();
    for stream in owned_streams(log, catalogue, resource, until)? {
        for env in log.read_stream(&stream, Some(until))? {
            let event = env.event().map_err(|e| ViewError::Event {
                position: env.position,
                reason: e.to_string(),
            })?;
            users.extend(people(&event).into_iter().map(|u| StreamType::User.stream_id(u)));
            events.push(env);
        }
    }
    for stream in users {
        events.extend(log.read_stream(&stream, Some(until))?);
    }
    events.sort_by_key(|e| e.position);
    for batch in events.chunks(BATCH) {
        invitebus_feed::apply_revealed(views, batch, keys)?;
    }
    Ok(events.len() as u64)
}
