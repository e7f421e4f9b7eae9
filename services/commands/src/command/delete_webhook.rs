//! `DeleteWebhook`: its registrant or an admin stops deliveries to an endpoint for good.

use crate::ctx::Ctx;
use crate::decision::{Decision, Store};
use crate::webhook::{WebhookError, WebhookState};
use invitebus_events::command as cmd;
use invitebus_events::event::WebhookDeleted;
use invitebus_events::Event;
use serde_json::{json, Value};

pub struct DeleteWebhook(pub cmd::DeleteWebhook);

impl Decision for DeleteWebhook {
    type State<'s> = &'s WebhookState;
    type Error = WebhookError;

    fn load<'s>(&mut self, mut store: Store<'s>, _: &Ctx) -> Result<&'s WebhookState, WebhookError> {
        store.own::<WebhookState>(&self.0.webhook_id)?;
        Ok(store.loaded().get::<WebhookState>(&self.0.webhook_id)?)
    }

    fn decide(&self, state: &&WebhookState, ctx: &Ctx) -> Result<Vec<Event>, WebhookError> {
        state.require_manager(ctx, &self.0.webhook_id)?;
        Ok(vec![Event::WebhookDeleted(WebhookDeleted {
            at: ctx.now,
            by: ctx.actor.clone(),
            webhook_id: self.0.webhook_id.clone(),
        })])
    }

    fn reply(&self, _: &&WebhookState, _: &[Event]) -> Value {
        json!({"webhook_id": self.0.webhook_id, "deleted": true})
    }
}
