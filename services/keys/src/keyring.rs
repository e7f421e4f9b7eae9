//! Where the data keys live: the KV bucket `invites-keys`, one entry per user holding that
//! user's key wrapped with the master key, so that every role on any machine can open personal
//! fields, a lost writer's disk loses no key, and `restore` needs nothing more. Forgetting a
//! user deletes every stored revision of their entry by sequence: a JetStream message delete
//! overwrites the stored bytes (a purge would only drop the index).
//!
//! Readers keep keys in memory for [`KEY_TTL`] at most (a forget elsewhere is then seen within
//! it even by a reader that does not follow the events), and drop one at once when they see its
//! user's `UserForgotten`. A key id once found gone is remembered as gone: it never comes back.

use crate::personal::DataKey;
use crate::{KeyError, MasterKey, Purpose};
use async_nats::jetstream::{self, kv};
use invitebus_events::personal::{sealed_by, FORGOTTEN};
use invitebus_events::subject::KEYS_BUCKET;
use invitebus_events::Event;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a reader trusts a key it fetched before asking the bucket again.
pub const KEY_TTL: Duration = Duration::from_secs(30);

/// Why the bucket could not be used (never "the key is gone": that is `Ok(None)`).
#[derive(Debug, thiserror::Error)]
pub enum RingError {
    #[error("the key bucket: {0}")]
    Nats(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the key of {user} in the bucket: {source}")]
    Key { user: String, source: KeyError },
}

fn nats(e: impl std::error::Error + Send + Sync + 'static) -> RingError {
    RingError::Nats(Box::new(e))
}

/// An entry of the bucket: a key id and the key wrapped with the master key (bound to the
/// user and the id).
#[derive(Serialize, Deserialize)]
struct Stored {
    key_id: String,
    wrapped: String,
}

/// The data keys of a deployment.
pub struct KeyRing {
    master: MasterKey,
    kv: kv::Store,
    stream: jetstream::stream::Stream,
    handle: tokio::runtime::Handle,
    keys: Mutex<HashMap<String, (DataKey, Instant)>>,
    gone: Mutex<HashSet<(String, String)>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyRing(..)")
    }
}

/// Makes the bucket's stream when missing, with the KV conventions (`KV_<bucket>`, one message
/// per key; deletes allowed: forgetting deletes messages; no direct gets, see below). async-nats 0.51's
/// `create_key_value` sends a configuration nats-server 2.9 answers in a form it cannot read.
pub async fn ensure_bucket(js: &jetstream::Context, replicas: usize) -> Result<(), RingError> {
    if js.get_stream(format!("KV_{KEYS_BUCKET}")).await.is_ok() {
        return Ok(());
    }
    js.get_or_create_stream(jetstream::stream::Config {
        name: format!("KV_{KEYS_BUCKET}"),
        description: Some("invitebus: users' data keys, wrapped with the master key".into()),
        subjects: vec![format!("$KV.{KEYS_BUCKET}.>")],
        max_messages_per_subject: 1,
        storage: jetstream::stream::StorageType::File,
        num_replicas: replicas.max(1),
        allow_rollup: true,
        // Reads go to the stream's leader: a lagging replica must never make a live key look
        // gone (nor a destroyed one look live).
        allow_direct: false,
        discard: jetstream::stream::DiscardPolicy::New,
        ..Default::default()
    })
    .await
    .map_err(nats)?;
    Ok(())
}

impl KeyRing {
    /// The ring over the bucket (made when missing if `create`), within the current runtime.
    pub async fn open(
        js: &jetstream::Context,
        master: MasterKey,
        replicas: usize,
        create: bool,
    ) -> Result<KeyRing, RingError> {
        if create {
            ensure_bucket(js, replicas).await?;
        }
        let kv = js.get_key_value(KEYS_BUCKET).await.map_err(nats)?;
        let stream = js.get_stream(format!("KV_{KEYS_BUCKET}")).await.map_err(nats)?;
        Ok(KeyRing {
            master,
            kv,
            stream,
            handle: tokio::runtime::Handle::current(),
            keys: Mutex::new(HashMap::new()),
            gone: Mutex::new(HashSet::new()),
        })
    }

    fn cached(&self, user: &str) -> Option<DataKey> {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.get(user)
            .filter(|(_, at)| at.elapsed() < KEY_TTL)
            .map(|(k, _)| k.clone())
    }

    fn remember(&self, key: &DataKey) {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.insert(key.user.clone(), (key.clone(), Instant::now()));
    }

    fn is_gone(&self, user: &str, key_id: &str) -> bool {
        let gone = self.gone.lock().unwrap_or_else(|p| p.into_inner());
        gone.contains(&(user.to_string(), key_id.to_string()))
    }

    /// The key the bucket holds for `user` now, if any.
    async fn fetch(&self, user: &str) -> Result<Option<DataKey>, RingError> {
        let Some(bytes) = self.kv.get(user).await.map_err(nats)? else {
            return Ok(None);
        };
        let stored: Stored = serde_json::from_slice(&bytes).map_err(|_| RingError::Key {
            user: user.to_string(),
            source: KeyError::Malformed,
        })?;
        let hex_key = self
            .master
            .open_for(Purpose::DataKey, &format!("{user}:{}", stored.key_id), &stored.wrapped)
            .map_err(|source| RingError::Key {
                user: user.to_string(),
                source,
            })?;
        let mut key = [0u8; 32];
        match hex::decode(&hex_key) {
            Ok(b) if b.len() == 32 => key.copy_from_slice(&b),
            _ => {
                return Err(RingError::Key {
                    user: user.to_string(),
                    source: KeyError::Malformed,
                })
            }
        }
        let key = DataKey::new(user, &stored.key_id, key);
        self.remember(&key);
        Ok(Some(key))
    }

    /// `user`'s key, made and stored when they have none (the command service, before it seals
    /// their fields).
    pub async fn ensure(&self, user: &str) -> Result<DataKey, RingError> {
        if let Some(k) = self.cached(user) {
            return Ok(k);
        }
        if let Some(k) = self.fetch(user).await? {
            return Ok(k);
        }
        let key = DataKey::generate(user).map_err(|source| RingError::Key {
            user: user.to_string(),
            source,
        })?;
        let wrapped = self
            .master
            .seal_for(
                Purpose::DataKey,
                &format!("{user}:{}", key.key_id),
                &hex::encode(key.bytes()),
            )
            .map_err(|source| RingError::Key {
                user: user.to_string(),
                source,
            })?;
        let value = serde_json::to_vec(&Stored {
            key_id: key.key_id.clone(),
            wrapped,
        })
        .expect("an entry serializes");
        match self.kv.create(user, value.into()).await {
            Ok(_) => {
                self.remember(&key);
                Ok(key)
            }
            // Made meanwhile by another instance: theirs is the key.
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => match self.fetch(user).await? {
                Some(k) => Ok(k),
                None => Err(nats(e)),
            },
            Err(e) => Err(nats(e)),
        }
    }

    /// The key `user` sealed with as `key_id`, or None when it is gone (forgotten).
    pub async fn lookup(&self, user: &str, key_id: &str) -> Result<Option<DataKey>, RingError> {
        if self.is_gone(user, key_id) {
            return Ok(None);
        }
        if let Some(k) = self.cached(user).filter(|k| k.key_id == key_id) {
            return Ok(Some(k));
        }
        match self.fetch(user).await? {
            Some(k) if k.key_id == key_id => Ok(Some(k)),
            _ => {
                let mut gone = self.gone.lock().unwrap_or_else(|p| p.into_inner());
                gone.insert((user.to_string(), key_id.to_string()));
                Ok(None)
            }
        }
    }

    /// [`KeyRing::lookup`] from a blocking thread (a projection's apply, a bulk load's decoder):
    /// a key not in memory is fetched on this ring's runtime. Never from an async task.
    pub fn lookup_blocking(&self, user: &str, key_id: &str) -> Result<Option<DataKey>, RingError> {
        if self.is_gone(user, key_id) {
            return Ok(None);
        }
        if let Some(k) = self.cached(user).filter(|k| k.key_id == key_id) {
            return Ok(Some(k));
        }
        self.handle.block_on(self.lookup(user, key_id))
    }

    /// Forgets what this reader holds of `user`'s key (it saw their `UserForgotten`).
    pub fn drop_key(&self, user: &str) {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((k, _)) = keys.remove(user) {
            let mut gone = self.gone.lock().unwrap_or_else(|p| p.into_inner());
            gone.insert((k.user, k.key_id));
        }
    }

    /// Destroys `user`'s key: every stored revision of their entry is deleted by sequence
    /// (overwritten on disk). Returns how many were; 0 when there was none (already forgotten).
    pub async fn erase(&self, user: &str) -> Result<usize, RingError> {
        let subject = format!("$KV.{KEYS_BUCKET}.{user}");
        let mut erased = 0;
        loop {
            let seq = match self.stream.get_last_raw_message_by_subject(&subject).await {
                Ok(m) => m.sequence,
                Err(e) if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => break,
                Err(e) => return Err(nats(e)),
            };
            self.stream.delete_message(seq).await.map_err(nats)?;
            erased += 1;
        }
        self.drop_key(user);
        Ok(erased)
    }

    /// Opens the sealed personal fields of `event` in place; a field whose key is gone reads
    /// [`FORGOTTEN`], plain ones stay. Seeing `UserForgotten` drops that user's key here.
    pub async fn reveal(&self, event: &mut Event) -> Result<(), RingError> {
        if let Event::UserForgotten(f) = event {
            self.drop_key(f.user_id.as_str());
        }
        let (_, fields) = event.personal_fields();
        for f in fields {
            let Some(s) = sealed_by(f.text) else { continue };
            let key = self.lookup(s.user, s.key_id).await?;
            *f.text = opened(key.as_ref(), f.name, f.text);
        }
        Ok(())
    }

    /// [`KeyRing::reveal`] from a blocking thread, asking the bucket for every key (no cache):
    /// for answers to a caller. One answer of many events goes through [`KeyRing::fresh`].
    pub fn reveal_fresh_blocking(&self, event: &mut Event) -> Result<(), RingError> {
        self.fresh().reveal_blocking(event)
    }

    /// Opens personal fields for one answer to a caller (the `history` and `state` queries),
    /// which must show a forget made elsewhere at once, even by an instance that has not read
    /// its `UserForgotten` yet: each user's key is asked of the bucket, once per answer (before,
    /// once per field).
    pub fn fresh(&self) -> FreshReveal<'_> {
        FreshReveal {
            ring: self,
            fetched: HashMap::new(),
        }
    }

    /// [`KeyRing::reveal`] from a blocking thread.
    pub fn reveal_blocking(&self, event: &mut Event) -> Result<(), RingError> {
        if let Event::UserForgotten(f) = event {
            self.drop_key(f.user_id.as_str());
        }
        let (_, fields) = event.personal_fields();
        for f in fields {
            let Some(s) = sealed_by(f.text) else { continue };
            let key = self.lookup_blocking(s.user, s.key_id)?;
            *f.text = opened(key.as_ref(), f.name, f.text);
        }
        Ok(())
    }
}

/// See [`KeyRing::fresh`].
pub struct FreshReveal<'a> {
    ring: &'a KeyRing,
    /// Each user's key as the bucket had it during this answer (None: gone).
    fetched: HashMap<String, Option<DataKey>>,
}

impl FreshReveal<'_> {
    /// Opens the sealed personal fields of `event` in place (`[forgotten]` where the key is gone).
    pub fn reveal_blocking(&mut self, event: &mut Event) -> Result<(), RingError> {
        let (_, fields) = event.personal_fields();
        for f in fields {
            let Some(s) = sealed_by(f.text) else { continue };
            let key = match self.ring.is_gone(s.user, s.key_id) {
                true => None,
                false => {
                    if !self.fetched.contains_key(s.user) {
                        let key = self.ring.handle.block_on(self.ring.fetch(s.user))?;
                        self.fetched.insert(s.user.to_string(), key);
                    }
                    self.fetched
                        .get(s.user)
                        .cloned()
                        .flatten()
                        .filter(|k| k.key_id == s.key_id)
                }
            };
            *f.text = opened(key.as_ref(), f.name, f.text);
        }
        Ok(())
    }
}

impl KeyRing {
    /// What a phone filter is looked up by ([`MasterKey::phone_lookup`]).
    pub fn phone_lookup(&self, phone: &str) -> String {
        self.master.phone_lookup(phone)
    }
}

/// A sealed field's text opened with `key`, or [`FORGOTTEN`].
fn opened(key: Option<&DataKey>, field: &str, sealed: &str) -> String {
    key.and_then(|k| k.open(field, sealed))
        .unwrap_or_else(|| FORGOTTEN.to_string())
}
