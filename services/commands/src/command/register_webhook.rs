//! `RegisterWebhook`: an admin registers an endpoint for every event it names, or a resource's
//! owner one for that resource's events. The secret arrives sealed by the command service
//! ([`crate::webhook::at_edge`]); deciding refuses a command whose secret was not.

use crate::ctx::Ctx;
use crate::decision::{Decision, Store};
use crate::resource::ResourceState;
use crate::webhook::{WebhookError, WebhookState};
use invitebus_events::command as cmd;
use invitebus_events::event::WebhookRegistered;
use invitebus_events::Event;
use serde_json::{json, Value};

pub struct RegisterWebhook(pub cmd::RegisterWebhook);

/// The webhook's own stream, and the resource it is scoped to (when it is).
pub struct Target<'s> {
    state: &'s WebhookState,
    resource: Option<&'s ResourceState>,
}

impl Decision for RegisterWebhook {
    type State<'s> = Target<'s>;
    type Error = WebhookError;

    fn load<'s>(&mut self, mut store: Store<'s>, _: &Ctx) -> Result<Target<'s>, WebhookError> {
        store.own::<WebhookState>(&self.0.webhook_id)?;
        if let Some(r) = &self.0.resource_id {
            store.read::<ResourceState>(r)?;
        }
        let loaded = store.loaded();
        Ok(Target {
            state: loaded.get::<WebhookState>(&self.0.webhook_id)?,
            resource: match &self.0.resource_id {
                Some(r) => Some(loaded.get::<ResourceState>(r)?),
                None => None,
            },
        })
    }

    fn decide(&self, t: &Target<'_>, ctx: &Ctx) -> Result<Vec<Event>, WebhookError> {
        let c = &self.0;
        if t.state.registered.is_some() {
            return Err(WebhookError::Taken(c.webhook_id.clone()));
        }
        match (&c.resource_id, t.resource) {
            (Some(id), Some(resource)) => {
                resource.require(id)?;
                resource.require_manager(ctx, false)?;
            }
            _ if ctx.is_admin() => {}
            _ => return Err(WebhookError::AdminOnly),
        }
        let secret = c.sealed.clone().ok_or(WebhookError::Unsealed)?;
        Ok(vec![Event::WebhookRegistered(WebhookRegistered {
            at: ctx.now,
            by: ctx.actor.clone(),
            events: c.events.clone(),
            resource_id: c.resource_id.clone(),
            secret,
            url: c.url.clone(),
            webhook_id: c.webhook_id.clone(),
        })])
    }

    fn reply(&self, _: &Target<'_>, _: &[Event]) -> Value {
        json!({"webhook_id": self.0.webhook_id, "url": self.0.url, "events": self.0.events, "resource_id": self.0.resource_id})
    }
}
