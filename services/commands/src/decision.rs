//! One decision per command: the state it reads, declared as a load over its streams; a pure
//! `decide`; and its reply. The writer runs every command the same way ([`run`]):
//! load → decide → reply, and appends the events.
//!
//! Loading goes through [`Store`] (may read the log, make ids, check `expected_version`);
//! deciding sees only [`Loaded`] borrows, so a decision cannot change the cache.

use crate::aggregate::Aggregate;
use crate::cache::{Cache, Holds, StreamSource};
use crate::ctx::Ctx;
use crate::error::StoreError;
use crate::export::UserExports;
use invitebus_events::{CommandMeta, Event, Id, ProtocolError};
use serde_json::Value;

/// Makes the ids the server hands out.
pub trait IdGen {
    /// A time-ordered id (UUIDv7) for invites, calls and exports.
    fn new_id(&mut self) -> Id;
    /// 8 random base62 characters for invite codes.
    fn new_code(&mut self) -> Id;
}

/// Real ids: UUIDv7 and random codes.
pub struct RandomIds;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

impl IdGen for RandomIds {
    fn new_id(&mut self) -> Id {
        Id::parse(uuid::Uuid::now_v7().to_string()).expect("a uuid is a valid id")
    }
    fn new_code(&mut self) -> Id {
        let bytes = uuid::Uuid::new_v4().into_bytes();
        let code: String = bytes
            .iter()
            .take(8)
            .map(|b| BASE62[(*b as usize) % 62] as char)
            .collect();
        Id::parse(code).expect("base62 is a valid id")
    }
}

/// What a command decided: the events to append and the reply data.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub events: Vec<Event>,
    pub reply: Value,
}

/// One command's rules.
pub trait Decision {
    /// What deciding reads, borrowed from the cache.
    type State<'s>;
    /// Why its aggregate refuses it (e.g. [`crate::invite::InviteError`]); loading's own
    /// failures ([`StoreError`]) are one of its variants.
    type Error: From<StoreError> + Into<ProtocolError>;
    /// Loads the streams the decision reads (a stream may be named by state loaded before it),
    /// makes the ids the server hands out, and checks `expected_version` on its own stream.
    fn load<'s>(&mut self, store: Store<'s>, ctx: &Ctx) -> Result<Self::State<'s>, Self::Error>;
    /// The events the command appends, or why not. Pure.
    fn decide(&self, state: &Self::State<'_>, ctx: &Ctx) -> Result<Vec<Event>, Self::Error>;
    /// The reply's `data`, once decided.
    fn reply(&self, state: &Self::State<'_>, events: &[Event]) -> Value;
}

/// Runs one decision: load, decide, reply.
pub fn run<D: Decision>(mut decision: D, store: Store<'_>, ctx: &Ctx) -> Result<Outcome, D::Error> {
    let state = decision.load(store, ctx)?;
    let events = decision.decide(&state, ctx)?;
    let reply = decision.reply(&state, &events);
    Ok(Outcome { events, reply })
}

/// The loading side of the cache, for one command.
pub struct Store<'s> {
    cache: &'s mut Cache,
    source: &'s dyn StreamSource,
    ids: &'s mut dyn IdGen,
    meta: &'s CommandMeta,
}

impl<'s> Store<'s> {
    pub fn new(
        cache: &'s mut Cache,
        source: &'s dyn StreamSource,
        ids: &'s mut dyn IdGen,
        meta: &'s CommandMeta,
    ) -> Store<'s> {
        Store {
            cache,
            source,
            ids,
            meta,
        }
    }

    /// Loads stream `A`/`id` and returns its state for a look before loading more.
    pub fn read<A: Aggregate>(&mut self, id: &Id) -> Result<&A, StoreError>
    where
        Cache: Holds<A>,
    {
        self.cache.ensure::<A>(id, self.source)?;
        self.cache
            .get::<A>(id)
            .map(|v| &v.state)
            .ok_or_else(|| not_loaded(A::STREAM.stream_id(id)))
    }

    /// Loads the command's own stream `A`/`id` and checks `expected_version` against it.
    pub fn own<A: Aggregate>(&mut self, id: &Id) -> Result<&A, StoreError>
    where
        Cache: Holds<A>,
    {
        self.cache.ensure::<A>(id, self.source)?;
        let version = self.cache.version::<A>(id);
        match self.meta.expected_version {
            Some(expected) if expected != version => Err(StoreError::Conflict {
                stream: A::STREAM.stream_id(id),
                actual: version,
                expected,
            }),
            _ => self.read::<A>(id),
        }
    }

    /// The client's id for a new `A` stream, or a new one made here (known to be empty, so no
    /// read of the log); `slot` holds it afterwards.
    pub fn id_for<A: Aggregate>(&mut self, slot: &mut Option<Id>, make: fn(&mut dyn IdGen) -> Id) -> Id
    where
        Cache: Holds<A>,
    {
        match slot {
            Some(id) => id.clone(),
            None => {
                let id = self.fresh::<A>(make);
                *slot = Some(id.clone());
                id
            }
        }
    }

    /// A new `A` stream's id, made here.
    pub fn fresh<A: Aggregate>(&mut self, make: fn(&mut dyn IdGen) -> Id) -> Id
    where
        Cache: Holds<A>,
    {
        let id = make(self.ids);
        self.cache.insert_new::<A>(&id);
        id
    }

    /// Loads `user`'s exports (the export limits).
    pub fn user_exports(&mut self, user: &Id) -> Result<(), StoreError> {
        self.cache.ensure_user_exports(user, self.source)
    }

    /// Done loading: what deciding may read.
    pub fn loaded(self) -> Loaded<'s> {
        Loaded { cache: self.cache }
    }
}

/// The reading side, once a decision has loaded its streams.
#[derive(Clone, Copy)]
pub struct Loaded<'s> {
    cache: &'s Cache,
}

impl<'s> Loaded<'s> {
    /// A stream the decision loaded (an `internal` error, not a panic, when it forgot to).
    pub fn get<A: Aggregate>(&self, id: &Id) -> Result<&'s A, StoreError>
    where
        Cache: Holds<A>,
    {
        self.cache
            .get::<A>(id)
            .map(|v| &v.state)
            .ok_or_else(|| not_loaded(A::STREAM.stream_id(id)))
    }

    /// `user`'s exports, loaded by [`Store::user_exports`].
    pub fn user_exports(&self, user: &Id) -> Result<&'s UserExports, StoreError> {
        self.cache
            .user_exports(user)
            .ok_or_else(|| not_loaded(format!("the exports of {user}")))
    }
}

fn not_loaded(what: String) -> StoreError {
    StoreError::NotLoaded(what)
}
