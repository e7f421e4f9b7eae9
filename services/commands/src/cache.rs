//! Aggregate state kept in memory between commands, loaded from the log on a miss. The writer
//! owns it; a failed commit drops it whole, since it may hold events that never landed.
//!
//! One map per aggregate, reached through [`Holds`]; everything else is generic over
//! [`Aggregate`], so a command loads `invite-…` or `code-…` the same way, and a stream that was
//! not loaded is an error, never a panic.

use crate::aggregate::Aggregate;
use crate::code::CodeState;
use crate::error::StoreError;
use crate::export::{self, ExportState, UserExports};
use crate::invite::InviteState;
use crate::resource::ResourceState;
use crate::user::UserState;
use crate::webhook::WebhookState;
use invitebus_eventlog::{EventLog, LogError, NewEvent};
use invitebus_events::event::StreamType;
use invitebus_events::{Envelope, Event, Id};
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

/// The loaded streams of one aggregate, by id.
pub type Streams<A> = HashMap<Id, Versioned<A>>;

/// Most streams of one kind kept; past this the map is cleared and refilled on demand.
const MAX_ENTRIES: usize = 250_000;

#[derive(Debug, Default)]
pub struct Cache {
    users: Streams<UserState>,
    resources: Streams<ResourceState>,
    invites: Streams<InviteState>,
    codes: Streams<CodeState>,
    exports: Streams<ExportState>,
    webhooks: Streams<WebhookState>,
    /// Each requester's exports, for the export limits (loaded on demand).
    user_exports: HashMap<Id, UserExports>,
}

/// The cache's map of aggregate `A`.
pub trait Holds<A: Aggregate> {
    fn streams(&self) -> &Streams<A>;
    fn streams_mut(&mut self) -> &mut Streams<A>;
}

macro_rules! holds {
    ($state:ty, $field:ident) => {
        impl Holds<$state> for Cache {
            fn streams(&self) -> &Streams<$state> {
                &self.$field
            }
            fn streams_mut(&mut self) -> &mut Streams<$state> {
                &mut self.$field
            }
        }
    };
}
holds!(UserState, users);
holds!(ResourceState, resources);
holds!(InviteState, invites);
holds!(CodeState, codes);
holds!(ExportState, exports);
holds!(WebhookState, webhooks);

fn fold<S>(
    envelopes: Vec<Envelope>,
    mut state: S,
    mut evolve: impl FnMut(S, &Event) -> S,
) -> Result<(S, u64), StoreError> {
    let mut version = 0;
    for env in envelopes {
        let event = env.event().map_err(|source| StoreError::Undecodable {
            position: env.position,
            source,
        })?;
        state = evolve(state, &event);
        version = env.version;
    }
    Ok((state, version))
}

impl Cache {
    pub fn clear(&mut self) {
        *self = Cache::default();
    }

    /// Bounds memory: a kind of stream holding more than its share is dropped and reloaded on
    /// demand. Called between batches only, so no uncommitted state is ever dropped.
    pub fn trim(&mut self) {
        fn trim<K, V>(map: &mut HashMap<K, V>) {
            if map.len() > MAX_ENTRIES {
                map.clear();
            }
        }
        trim(&mut self.users);
        trim(&mut self.resources);
        trim(&mut self.invites);
        trim(&mut self.codes);
        trim(&mut self.exports);
        trim(&mut self.webhooks);
        trim(&mut self.user_exports);
    }

    /// Makes sure the stream `A`/`id` is in memory.
    pub fn ensure<A: Aggregate>(&mut self, id: &Id, source: &dyn StreamSource) -> Result<(), StoreError>
    where
        Self: Holds<A>,
    {
        if self.streams().contains_key(id) {
            return Ok(());
        }
        let stream_id = A::STREAM.stream_id(id);
        tracing::trace!(stream_id = %stream_id, "cache miss: reading the stream");
        let (state, version) = fold(
            source.read_stream(&stream_id).map_err(StoreError::Unavailable)?,
            A::default(),
            A::evolve,
        )?;
        self.streams_mut().insert(id.clone(), Versioned { version, state });
        Ok(())
    }

    /// A loaded stream; None when it was not loaded.
    pub fn get<A: Aggregate>(&self, id: &Id) -> Option<&Versioned<A>>
    where
        Self: Holds<A>,
    {
        self.streams().get(id)
    }

    /// Makes sure `user`'s exports are in memory.
    pub fn ensure_user_exports(&mut self, user: &Id, source: &dyn StreamSource) -> Result<(), StoreError> {
        if self.user_exports.contains_key(user) {
            return Ok(());
        }
        let envelopes = source.read_exports_of(user.as_str()).map_err(StoreError::Unavailable)?;
        let (exports, _) = fold(envelopes, UserExports::default(), export::evolve_user)?;
        self.user_exports.insert(user.clone(), exports);
        Ok(())
    }

    /// `user`'s exports, when loaded.
    pub fn user_exports(&self, user: &Id) -> Option<&UserExports> {
        self.user_exports.get(user)
    }

    /// Records that the stream `A`/`id` is new (its id was just made here), so that no read
    /// of the log is needed to learn it is empty.
    pub fn insert_new<A: Aggregate>(&mut self, id: &Id)
    where
        Self: Holds<A>,
    {
        self.streams_mut().entry(id.clone()).or_default();
    }

    /// The version of a loaded stream (0 when new or not loaded).
    pub fn version<A: Aggregate>(&self, id: &Id) -> u64
    where
        Self: Holds<A>,
    {
        self.streams().get(id).map_or(0, |v| v.version)
    }

    /// Folds `event` into its stream's state and returns it with the version it takes.
    pub fn apply(&mut self, event: &Event, source: &dyn StreamSource) -> Result<NewEvent, StoreError> {
        let id = event.stream_key().clone();
        let version = match event.stream_type() {
            StreamType::User => self.step::<UserState>(&id, event, source)?,
            StreamType::Resource => self.step::<ResourceState>(&id, event, source)?,
            StreamType::Invite => self.step::<InviteState>(&id, event, source)?,
            StreamType::Code => self.step::<CodeState>(&id, event, source)?,
            StreamType::Export => {
                if let Some(user) = export::requester(event).and_then(|u| self.user_exports.get_mut(u)) {
                    *user = export::evolve_user(std::mem::take(user), event);
                }
                self.step::<ExportState>(&id, event, source)?
            }
            StreamType::Webhook => self.step::<WebhookState>(&id, event, source)?,
        };
        let ty = event.stream_type();
        Ok(NewEvent {
            stream_id: ty.stream_id(&id),
            stream_type: ty.as_str(),
            version,
            event_type: event.event_type(),
            schema: event.schema(),
            data: event.data_json(),
        })
    }

    fn step<A: Aggregate>(&mut self, id: &Id, event: &Event, source: &dyn StreamSource) -> Result<u64, StoreError>
    where
        Self: Holds<A>,
    {
        self.ensure::<A>(id, source)?;
        let v = self.streams_mut().entry(id.clone()).or_default();
        v.state = std::mem::take(&mut v.state).evolve(event);
        v.version += 1;
        Ok(v.version)
    }
}
