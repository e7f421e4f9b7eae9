//! Why the invite aggregate refuses a command. Each variant's doc names its wire code, its HTTP
//! status and the field it points at.

use crate::error::{into_protocol_error, Rejection, StoreError};
use crate::resource::ResourceError;
use invitebus_events::{ErrorCode, Id, RecordStatus};

#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    /// No such invite: `not_found`, 404, on `invite_id`.
    #[error("no such invite_id: {0}")]
    NotFound(Id),
    /// The client's `invite_id` is taken: `resource_exists`, 409, on `invite_id`.
    #[error("{0} is taken")]
    Taken(Id),
    /// The inviter withdrew it: `cancelled`, 409.
    #[error("invite {0} was cancelled")]
    Cancelled(Id),
    /// Past its `expires_at`, or expired by the scheduler: `expired`, 409.
    #[error("invite {0} has expired")]
    Expired(Id),
    /// The record was accepted (or is applying, or approved): `already_accepted`, 409.
    #[error("invite {0} was already accepted")]
    AlreadyAccepted(Id),
    /// The record was rejected: `already_rejected`, 409.
    #[error("invite {0} was already rejected")]
    AlreadyRejected(Id),
    /// The record is in a status no answer follows (denied): `invalid_state`, 409.
    #[error("invite {invite_id} is {}", status.as_str())]
    Unanswerable { invite_id: Id, status: RecordStatus },
    /// Every invitee has answered, so there is nothing to change: `invalid_state`, 409.
    #[error("every invitee has answered")]
    AllAnswered,
    /// Approving or denying a record that is not `applying`: `invalid_state`, 409.
    #[error("{invitee} is {}, not applying", status.as_str())]
    NotApplying { invitee: Id, status: RecordStatus },
    /// A resend with no invitee waiting: `invalid_state`, 409.
    #[error("no invitee is waiting for an answer")]
    NothingToResend,
    /// A resend of everyone within a minute of the last: `rate_limited`, 429.
    #[error("every waiting invitee was sent this invite less than a minute ago")]
    AllSentRecently,
    /// A resend to one invitee within a minute of the last: `rate_limited`, 429.
    #[error("{0} was sent this invite less than a minute ago")]
    SentRecently(Id),
    /// The actor is not the inviter: `forbidden`, 403.
    #[error("only the inviter may do this")]
    NotInviter,
    /// The actor is not an invitee: `forbidden`, 403.
    #[error("only an invitee may do this")]
    NotInvitee,
    /// Hiding by someone neither inviter nor invitee: `forbidden`, 403.
    #[error("only the inviter or an invitee may hide an invite")]
    NotInviterOrInvitee,
    /// Approving or denying by someone neither admin nor owner: `forbidden`, 403.
    #[error("only an admin or the resource's owner may decide")]
    NotDecider,
    /// A timer's command (expire, remind) from a user: `forbidden`, 403.
    #[error("only system may {0}")]
    SystemOnly(&'static str),
    /// The inviter named themself: `invalid_field`, 400, on `field`.
    #[error("invalid `{field}`: you cannot invite yourself")]
    InvitesSelf { field: &'static str },
    /// An invitee is a member already: `already_member`, 409, on `field`.
    #[error("{user} is already a member")]
    AlreadyMember { field: &'static str, user: Id },
    /// An added invitee is on the invite already: `invalid_field`, 400, on `add_invitees`.
    #[error("invalid `add_invitees`: {0} is already invited")]
    AlreadyInvited(Id),
    /// A named invitee is not on the invite: `invalid_field`, 400, on `field`.
    #[error("invalid `{field}`: {user} is not invited")]
    NotInvited { field: &'static str, user: Id },
    /// Removing an invitee who answered: `invalid_field`, 400, on `remove_invitees`.
    #[error("invalid `remove_invitees`: {0} has already answered")]
    RemovesAnswered(Id),
    /// Removing every invitee: `invalid_field`, 400, on `remove_invitees`.
    #[error("invalid `remove_invitees`: an invite needs at least one invitee")]
    NoInviteeLeft,
    /// Adding past the invitee limit: `invalid_field`, 400, on `add_invitees`.
    #[error("invalid `add_invitees`: too many invitees")]
    TooManyInvitees,
    /// Approving or denying without naming one of several invitees: `missing_field`, 400, on
    /// `invitee`.
    #[error("missing field `invitee`")]
    WhichInvitee,
    /// `now + expires_in` is past the calendar: `invalid_field`, 400, on `expires_in`.
    #[error("invalid `expires_in`: ends after 9999-12-31")]
    EndsTooLate,
    /// The invite's resource refused (not found, not a member, full, …): its own code.
    #[error(transparent)]
    Resource(#[from] ResourceError),
    /// Loading failed: see [`StoreError`].
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Rejection for InviteError {
    fn code(&self) -> ErrorCode {
        use InviteError::*;
        match self {
            NotFound(_) => ErrorCode::NotFound,
            Taken(_) => ErrorCode::ResourceExists,
            Cancelled(_) => ErrorCode::Cancelled,
            Expired(_) => ErrorCode::Expired,
            AlreadyAccepted(_) => ErrorCode::AlreadyAccepted,
            AlreadyRejected(_) => ErrorCode::AlreadyRejected,
            Unanswerable { .. } | AllAnswered | NotApplying { .. } | NothingToResend => ErrorCode::InvalidState,
            AllSentRecently | SentRecently(_) => ErrorCode::RateLimited,
            NotInviter | NotInvitee | NotInviterOrInvitee | NotDecider | SystemOnly(_) => ErrorCode::Forbidden,
            AlreadyMember { .. } => ErrorCode::AlreadyMember,
            InvitesSelf { .. }
            | AlreadyInvited(_)
            | NotInvited { .. }
            | RemovesAnswered(_)
            | NoInviteeLeft
            | TooManyInvitees
            | EndsTooLate => ErrorCode::InvalidField,
            WhichInvitee => ErrorCode::MissingField,
            Resource(e) => e.code(),
            Store(e) => e.code(),
        }
    }

    fn field(&self) -> Option<&'static str> {
        use InviteError::*;
        match self {
            NotFound(_) | Taken(_) => Some("invite_id"),
            InvitesSelf { field } | AlreadyMember { field, .. } | NotInvited { field, .. } => Some(field),
            AlreadyInvited(_) | TooManyInvitees => Some("add_invitees"),
            RemovesAnswered(_) | NoInviteeLeft => Some("remove_invitees"),
            WhichInvitee => Some("invitee"),
            EndsTooLate => Some("expires_in"),
            Resource(e) => e.field(),
            Store(e) => e.field(),
            Cancelled(_)
            | Expired(_)
            | AlreadyAccepted(_)
            | AlreadyRejected(_)
            | Unanswerable { .. }
            | AllAnswered
            | NotApplying { .. }
            | NothingToResend
            | AllSentRecently
            | SentRecently(_)
            | NotInviter
            | NotInvitee
            | NotInviterOrInvitee
            | NotDecider
            | SystemOnly(_) => None,
        }
    }
}

into_protocol_error!(InviteError);
