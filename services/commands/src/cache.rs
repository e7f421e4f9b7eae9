//! Aggregate state kept in memory between commands, loaded from the log on a miss. The writer
//! owns it; a failed commit drops it whole, since it may hold events that never landed.

use crate::code::{self, CodeState};
use crate::export::{self, ExportState, UserExports};
use crate::invite::{self, InviteState};
use crate::resource::{self, ResourceState};
use crate::user::{self, UserState};
use invitebus_eventlog::{EventLog, LogError, NewEvent};
use invitebus_events::event::StreamType;
use invitebus_events::{Envelope, Event, Id, ProtocolError};
use std::collections::HashMap;

/// Where state comes from on a cache miss: every event of one stream.
pub trait StreamSource {
    fn read_stream(&self, stream_id: &str) -> Result<Vec<Envelope>, LogError>;
    /// Every export event requested by `user`.
    fn read_exports_of(&self, user: &str) -> Result<Vec<Envelope>, LogError>;
}

impl StreamSource for EventLog {
    fn read_stream(&self, stream_id: &str) -> Result<Vec<Envelope>, LogError> {
        EventLog::read_stream(self, stream_id)
    }
    fn read_exports_of(&self, user: &str) -> Result<Vec<Envelope>, LogError> {
        EventLog::read_exports_of(self, user)
    }
}

/// A log with nothing in it, for deciding without storage (tests, dry runs).
pub struct EmptySource;

impl StreamSource for EmptySource {
    fn read_stream(&self, _: &str) -> Result<Vec<Envelope>, LogError> {
        Ok(vec![])
    }
    fn read_exports_of(&self, _: &str) -> Result<Vec<Envelope>, LogError> {
        Ok(vec![])
    }
}

/// A state and the version of its stream.
#[derive(Debug, Clone, Default)]
pub struct Versioned<S> {
    pub version: u64,
    pub state: S,
}

/// Most streams of one kind kept; past this the map is cleared and refilled on demand.
const MAX_ENTRIES: usize = 250_000;

#[derive(Debug, Default)]
pub struct Cache {
    pub users: HashMap<Id, Versioned<UserState>>,
    pub resources: HashMap<Id, Versioned<ResourceState>>,
    pub invites: HashMap<Id, Versioned<InviteState>>,
    pub codes: HashMap<Id, Versioned<CodeState>>,
    pub exports: HashMap<Id, Versioned<ExportState>>,
    /// Each requester's exports, for the export limits (loaded on demand).
    pub user_exports: HashMap<Id, UserExports>,
}

fn load<S: Default + Clone>(
    map: &mut HashMap<Id, Versioned<S>>,
    id: &Id,
    ty: StreamType,
    source: &dyn StreamSource,
    evolve: fn(S, &Event) -> S,
) -> Result<(), ProtocolError> {
    if map.contains_key(id) {
        return Ok(());
    }
    let mut v = Versioned::<S>::default();
    tracing::trace!(stream_id = %ty.stream_id(id), "cache miss: reading the stream");
    let envelopes = source
        .read_stream(&ty.stream_id(id))
        .map_err(|e| ProtocolError::unavailable(format!("reading the log: {e}")))?;
    for env in envelopes {
        let event = env
            .event()
            .map_err(|e| ProtocolError::internal(format!("position {}: {e}", env.position)))?;
        v.state = evolve(v.state, &event);
        v.version = env.version;
    }
    map.insert(id.clone(), v);
    Ok(())
}

impl Cache {
    pub fn clear(&mut self) {
        *self = Cache::default();
    }

    /// Bounds memory: a kind of stream holding more than its share is dropped and reloaded on
    /// demand. Called between batches only, so no uncommitted state is ever dropped.
    pub fn trim(&mut self) {
        fn trim<S>(map: &mut HashMap<Id, Versioned<S>>) {
            if map.len() > MAX_ENTRIES {
                map.clear();
            }
        }
        trim(&mut self.users);
        trim(&mut self.resources);
        trim(&mut self.invites);
        trim(&mut self.codes);
        trim(&mut self.exports);
        if self.user_exports.len() > MAX_ENTRIES {
            self.user_exports.clear();
        }
    }

    /// Makes sure the stream of `ty`/`id` is in memory.
    pub fn ensure(&mut self, ty: StreamType, id: &Id, source: &dyn StreamSource) -> Result<(), ProtocolError> {
        match ty {
            StreamType::User => load(&mut self.users, id, ty, source, user::evolve),
            StreamType::Resource => load(&mut self.resources, id, ty, source, resource::evolve),
            StreamType::Invite => load(&mut self.invites, id, ty, source, invite::evolve),
            StreamType::Code => load(&mut self.codes, id, ty, source, code::evolve),
            StreamType::Export => load(&mut self.exports, id, ty, source, export::evolve),
        }
    }

    /// Makes sure `user`'s exports are in memory.
    pub fn ensure_user_exports(&mut self, user: &Id, source: &dyn StreamSource) -> Result<(), ProtocolError> {
        if self.user_exports.contains_key(user) {
            return Ok(());
        }
        let mut exports = UserExports::default();
        let envelopes = source
            .read_exports_of(user.as_str())
            .map_err(|e| ProtocolError::unavailable(format!("reading the log: {e}")))?;
        for env in envelopes {
            let event = env
                .event()
                .map_err(|e| ProtocolError::internal(format!("position {}: {e}", env.position)))?;
            exports = export::evolve_user(exports, &event);
        }
        self.user_exports.insert(user.clone(), exports);
        Ok(())
    }

    /// Records that the stream of `ty`/`id` is new (its id was just made here), so that no read
    /// of the log is needed to learn it is empty.
    pub fn insert_new(&mut self, ty: StreamType, id: &Id) {
        fn new<S: Default>(map: &mut HashMap<Id, Versioned<S>>, id: &Id) {
            map.entry(id.clone()).or_default();
        }
        match ty {
            StreamType::User => new(&mut self.users, id),
            StreamType::Resource => new(&mut self.resources, id),
            StreamType::Invite => new(&mut self.invites, id),
            StreamType::Code => new(&mut self.codes, id),
            StreamType::Export => new(&mut self.exports, id),
        }
    }

    /// The version of a loaded stream (0 when new or not loaded).
    pub fn version(&self, ty: StreamType, id: &Id) -> u64 {
        match ty {
            StreamType::User => self.users.get(id).map(|v| v.version),
            StreamType::Resource => self.resources.get(id).map(|v| v.version),
            StreamType::Invite => self.invites.get(id).map(|v| v.version),
            StreamType::Code => self.codes.get(id).map(|v| v.version),
            StreamType::Export => self.exports.get(id).map(|v| v.version),
        }
        .unwrap_or(0)
    }

    /// Folds `event` into its stream's state and returns it with the version it takes.
    pub fn apply(&mut self, event: &Event, source: &dyn StreamSource) -> Result<NewEvent, ProtocolError> {
        let ty = event.stream_type();
        let id = event.stream_key().clone();
        self.ensure(ty, &id, source)?;
        fn step<S: Default>(
            map: &mut HashMap<Id, Versioned<S>>,
            id: &Id,
            event: &Event,
            evolve: fn(S, &Event) -> S,
        ) -> u64 {
            let v = map.entry(id.clone()).or_default();
            v.state = evolve(std::mem::take(&mut v.state), event);
            v.version += 1;
            v.version
        }
        let version = match ty {
            StreamType::User => step(&mut self.users, &id, event, user::evolve),
            StreamType::Resource => step(&mut self.resources, &id, event, resource::evolve),
            StreamType::Invite => step(&mut self.invites, &id, event, invite::evolve),
            StreamType::Code => step(&mut self.codes, &id, event, code::evolve),
            StreamType::Export => {
                if let Some(user) = export::requester(event).and_then(|u| self.user_exports.get_mut(u)) {
                    *user = export::evolve_user(std::mem::take(user), event);
                }
                step(&mut self.exports, &id, event, export::evolve)
            }
        };
        Ok(NewEvent {
            stream_id: ty.stream_id(&id),
            stream_type: ty.as_str(),
            version,
            event_type: event.event_type(),
            schema: event.schema(),
            data: event.data_json(),
        })
    }
}
