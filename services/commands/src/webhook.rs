//! The webhook aggregate (`webhook-<webhook_id>`): an endpoint that the webhooks role delivers
//! events to, registered by an admin (every resource) or a resource's owner (that resource);
//! deleted, or replayed from a position, by its registrant or an admin. And the command
//! service's edge for it: the secret sealed before any event can hold it.

use crate::aggregate::aggregate;
use crate::ctx::Ctx;
use crate::error::{into_protocol_error, Rejection, StoreError};
use crate::resource::ResourceError;
use invitebus_events::command::{host_allowed, is_public_address, WebhookUrl};
use invitebus_events::event::{StreamType, WebhookRegistered};
use invitebus_events::{Command, CommandRequest, ErrorCode, Event, Id, ProtocolError};
use invitebus_keys::{MasterKey, Purpose};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebhookState {
    pub registered: Option<WebhookRegistered>,
    pub deleted: bool,
}

aggregate!(WebhookState, StreamType::Webhook, evolve);

pub fn evolve(mut s: WebhookState, event: &Event) -> WebhookState {
    match event {
        Event::WebhookRegistered(e) => s.registered = Some(e.clone()),
        Event::WebhookDeleted(_) => s.deleted = true,
        _ => {}
    }
    s
}

impl WebhookState {
    /// The registration of a webhook that exists and was not deleted.
    pub fn live(&self, webhook_id: &Id) -> Result<&WebhookRegistered, WebhookError> {
        match (&self.registered, self.deleted) {
            (Some(r), false) => Ok(r),
            _ => Err(WebhookError::NotFound(webhook_id.clone())),
        }
    }

    /// `forbidden` unless the actor registered the webhook or is an admin.
    pub fn require_manager<'a>(&'a self, ctx: &Ctx, webhook_id: &Id) -> Result<&'a WebhookRegistered, WebhookError> {
        let r = self.live(webhook_id)?;
        match r.by == ctx.actor || ctx.is_admin() {
            true => Ok(r),
            false => Err(WebhookError::Forbidden),
        }
    }
}

/// Why a webhook command is refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// No such webhook, or it was deleted: `not_found`, 404, on `webhook_id`.
    #[error("no such webhook: {0}")]
    NotFound(Id),
    /// The id is taken (also by a deleted webhook): `resource_exists`, 409, on `webhook_id`.
    #[error("webhook {0} exists")]
    Taken(Id),
    /// Neither its registrant nor an admin: `forbidden`, 403.
    #[error("only the webhook's registrant or an admin may do this")]
    Forbidden,
    /// A webhook over every resource, asked by someone not an admin: `forbidden`, 403.
    #[error("only an admin may register a webhook without `resource_id`; a resource's owner names the resource")]
    AdminOnly,
    /// The command service did not seal the secret (a bug): `internal`, 500. Nothing is
    /// appended, so no event ever holds a secret in clear.
    #[error("the webhook's secret was not sealed")]
    Unsealed,
    /// The resource refused (not found, not its owner): its own code.
    #[error(transparent)]
    Resource(#[from] ResourceError),
    /// Loading failed: see [`StoreError`].
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Rejection for WebhookError {
    fn code(&self) -> ErrorCode {
        match self {
            WebhookError::NotFound(_) => ErrorCode::NotFound,
            WebhookError::Taken(_) => ErrorCode::ResourceExists,
            WebhookError::Forbidden | WebhookError::AdminOnly => ErrorCode::Forbidden,
            WebhookError::Unsealed => ErrorCode::Internal,
            WebhookError::Resource(e) => e.code(),
            WebhookError::Store(e) => e.code(),
        }
    }
    fn field(&self) -> Option<&'static str> {
        match self {
            WebhookError::NotFound(_) | WebhookError::Taken(_) => Some("webhook_id"),
            WebhookError::Resource(e) => e.field(),
            WebhookError::Store(e) => e.field(),
            WebhookError::Forbidden | WebhookError::AdminOnly | WebhookError::Unsealed => None,
        }
    }
}

into_protocol_error!(WebhookError);

/// What the command service needs to take a `RegisterWebhook`.
#[derive(Debug, Clone)]
pub struct WebhookIntake {
    /// Seals the secret (every role of the deployment holds the same master key).
    pub key: MasterKey,
    /// Accept loopback and private targets (`INVITEBUS_WEBHOOK_ALLOW_PRIVATE`, for tests and
    /// a receiver on the same network).
    pub allow_private: bool,
    /// The only hosts webhooks may target, with their subdomains (`INVITEBUS_WEBHOOK_ALLOW_HOSTS`);
    /// empty: any.
    pub allow_hosts: Vec<String>,
}

impl Default for WebhookIntake {
    fn default() -> Self {
        WebhookIntake {
            key: MasterKey::dev(),
            allow_private: false,
            allow_hosts: Vec::new(),
        }
    }
}

/// What the command service does to a `RegisterWebhook` as it arrives, before deciding: a URL
/// naming a loopback or private address is refused (unless such targets are allowed; a host
/// name is checked again at each delivery, where it is resolved), and the secret is sealed.
pub fn at_edge(request: &mut CommandRequest, intake: &WebhookIntake) -> Result<(), ProtocolError> {
    let (key, allow_private) = (&intake.key, intake.allow_private);
    let Command::RegisterWebhook(c) = &mut request.command else {
        return Ok(());
    };
    let url = WebhookUrl::parse(&c.url).map_err(|why| ProtocolError::invalid("url", why))?;
    if !host_allowed(&url.host, &intake.allow_hosts) {
        return Err(ProtocolError::invalid(
            "url",
            format!(
                "{} is not one of the hosts webhooks may target (INVITEBUS_WEBHOOK_ALLOW_HOSTS)",
                url.host
            ),
        ));
    }
    if let Ok(ip) = url.host.parse::<std::net::IpAddr>() {
        if !allow_private && !is_public_address(ip) {
            return Err(ProtocolError::invalid(
                "url",
                format!(
                    "{ip} is a loopback, private or reserved address (INVITEBUS_WEBHOOK_ALLOW_PRIVATE=true allows it)"
                ),
            ));
        }
    }
    let sealed = key
        .seal(Purpose::WebhookSecret, &c.secret)
        .map_err(|e| ProtocolError::unavailable(format!("sealing the secret: {e}")))?;
    c.sealed = Some(sealed);
    // The command's digest (in every envelope it appends) covers its fields: it must not be a
    // way to check guesses of the secret, so from here the secret is its keyed hash.
    c.secret = format!("hmac:{}", key.keyed_hash(Purpose::SecretDigest, &c.secret));
    Ok(())
}
