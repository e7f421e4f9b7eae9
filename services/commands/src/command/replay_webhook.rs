//! `ReplayWebhook`: its registrant or an admin has an endpoint's deliveries start again at a
//! position (after a receiver lost data, or once a failing endpoint is fixed).

use crate::ctx::Ctx;
use crate::decision::{Decision, Store};
use crate::webhook::{WebhookError, WebhookState};
use invitebus_events::command as cmd;
use invitebus_events::event::WebhookReplayed;
use invitebus_events::Event;
use serde_json::{json, Value};

pub struct ReplayWebhook(pub cmd::ReplayWebhook);

impl Decision for ReplayWebhook {
    type State<'s> = &'s WebhookState;
    type Error = WebhookError;

    fn load<'s>(&mut self, mut store: Store<'s>, _: &Ctx) -> Result<&'s WebhookState, WebhookError> {
        store.own::<WebhookState>(&self.0.webhook_id)?;
        Ok(store.loaded().get::<WebhookState>(&self.0.webhook_id)?)
    }

    fn decide(&self, state: &&WebhookState, ctx: &Ctx) -> Result<Vec<Event>, WebhookError> {
        state.require_manager(ctx, &self.0.webhook_id)?;
        Ok(vec![Event::WebhookReplayed(WebhookReplayed {
            at: ctx.now,
            by: ctx.actor.clone(),
            from_position: self.0.from_position,
            webhook_id: self.0.webhook_id.clone(),
        })])
    }

    fn reply(&self, _: &&WebhookState, _: &[Event]) -> Value {
        json!({"webhook_id": self.0.webhook_id, "from_position": self.0.from_position})
    }
}
