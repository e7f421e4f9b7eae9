//! What every aggregate is to the cache and the decisions: a state of one stream type, folded
//! from that stream's events by a pure `evolve`.

use invitebus_events::event::StreamType;
use invitebus_events::Event;

/// The state of one stream, rebuilt by folding its events in order.
pub trait Aggregate: Default + Clone + std::fmt::Debug {
    /// The kind of stream this state is folded from (`invite-<id>`, …).
    const STREAM: StreamType;
    /// The state after `event`; events of other streams leave it as it is.
    fn evolve(self, event: &Event) -> Self;
}

/// Implements [`Aggregate`] for a state whose module has a free `evolve` function.
macro_rules! aggregate {
    ($state:ty, $stream:expr, $evolve:path) => {
        impl $crate::aggregate::Aggregate for $state {
            const STREAM: invitebus_events::event::StreamType = $stream;
            fn evolve(self, event: &invitebus_events::Event) -> Self {
                $evolve(self, event)
            }
        }
    };
}
pub(crate) use aggregate;
