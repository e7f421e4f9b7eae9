//! Personal data inside events: which fields hold it, and the form they are stored in.
//!
//! Names, phones, emails, company names, departments, positions and areas of a profile
//! (`UserUpserted`), and what an invitee wrote in their own words (`InviteRejected.reason`,
//! `InviteTentativelyAccepted.comment`) are stored sealed with that person's data key
//! (`invitebus_keys`): `pd1:<user_id>:<key id>:<hex>`. Forgetting a person destroys the key;
//! from then on every reader shows [`FORGOTTEN`] in their place. Ids are not personal data.

use crate::event::Event;

/// The event types whose data holds personal fields (at schema 2 and later, stored sealed).
pub const PERSONAL_TYPES: [&str; 3] = ["UserUpserted", "InviteRejected", "InviteTentativelyAccepted"];

/// True when events of `event_type` hold personal fields.
pub fn is_personal(event_type: &str) -> bool {
    PERSONAL_TYPES.contains(&event_type)
}

/// What a reader shows for a personal field whose key is gone.
pub const FORGOTTEN: &str = "[forgotten]";

/// The prefix of a sealed personal field.
pub const SEALED_PREFIX: &str = "pd1:";

/// Whose key, and which of their keys, sealed a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedBy<'a> {
    pub user: &'a str,
    pub key_id: &'a str,
    /// Hex of the nonce, the ciphertext and its tag.
    pub blob: &'a str,
}

/// The parts of a sealed personal field; None for plain text (written before fields were
/// sealed, or by a build that does not seal).
pub fn sealed_by(text: &str) -> Option<SealedBy<'_>> {
    let rest = text.strip_prefix(SEALED_PREFIX)?;
    let mut parts = rest.splitn(3, ':');
    let (user, key_id, blob) = (parts.next()?, parts.next()?, parts.next()?);
    let ok = !user.is_empty() && !key_id.is_empty() && !blob.is_empty() && blob.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then_some(SealedBy { user, key_id, blob })
}

/// One personal field of an event: its name (bound into the sealing) and its text.
pub struct Field<'a> {
    pub name: &'static str,
    pub text: &'a mut String,
}

fn push<'a>(out: &mut Vec<Field<'a>>, name: &'static str, v: &'a mut Option<String>) {
    if let Some(text) = v.as_mut() {
        out.push(Field { name, text });
    }
}

/// The profile's fields that hold a value, in one list for the command that carries a profile
/// (`UpsertUser`) and the event that stores it (`UserUpserted`). Both destructure their struct
/// whole to call it, so a field added to either does not compile until it is put here or
/// named as not personal: none is ever stored in clear by mistake.
#[allow(clippy::too_many_arguments)]
fn profile<'a>(
    out: &mut Vec<Field<'a>>,
    name: &'a mut String,
    phone: &'a mut Option<String>,
    email: &'a mut Option<String>,
    company_name: &'a mut Option<String>,
    department: &'a mut Option<String>,
    position: &'a mut Option<String>,
    area: &'a mut Option<String>,
) {
    out.push(Field {
        name: "name",
        text: name,
    });
    push(out, "phone", phone);
    push(out, "email", email);
    push(out, "company_name", company_name);
    push(out, "department", department);
    push(out, "position", position);
    push(out, "area", area);
}

impl Event {
    /// The event's personal fields that hold a value, and whose they are (the person whose key
    /// seals them). Empty for every other event.
    pub fn personal_fields(&mut self) -> (Option<&crate::Id>, Vec<Field<'_>>) {
        let mut out = Vec::new();
        match self {
            Event::UserUpserted(e) => {
                let crate::event::UserUpserted {
                    user_id,
                    name,
                    phone,
                    email,
                    company_name,
                    department,
                    position,
                    area,
                    at: _,
                } = e;
                profile(&mut out, name, phone, email, company_name, department, position, area);
                (Some(&*user_id), out)
            }
            Event::InviteRejected(e) => {
                push(&mut out, "reason", &mut e.reason);
                (Some(&e.invitee), out)
            }
            Event::InviteTentativelyAccepted(e) => {
                push(&mut out, "comment", &mut e.comment);
                (Some(&e.invitee), out)
            }
            _ => (None, out),
        }
    }

    /// True when a personal field of the event is stored in plain text (not sealed): such a
    /// value cannot be erased without breaking the hash chain.
    pub fn has_plain_personal_data(&self) -> bool {
        let mut copy = self.clone();
        let (_, fields) = copy.personal_fields();
        fields.iter().any(|f| sealed_by(f.text).is_none())
    }
}

impl crate::Command {
    /// The command's personal fields that hold a value, as its event will store them (sealed
    /// by the command service's edge before it is decided). Empty for every other command.
    pub fn personal_fields(&mut self) -> Vec<Field<'_>> {
        let mut out = Vec::new();
        match self {
            crate::Command::UpsertUser(c) => {
                let crate::command::UpsertUser {
                    user_id: _,
                    name,
                    phone,
                    email,
                    company_name,
                    department,
                    position,
                    area,
                } = c;
                profile(&mut out, name, phone, email, company_name, department, position, area);
            }
            crate::Command::RejectInvite(c) => push(&mut out, "reason", &mut c.reason),
            crate::Command::TentativelyAcceptInvite(c) => push(&mut out, "comment", &mut c.comment),
            _ => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_field_names_its_user_and_key() {
        let s = sealed_by("pd1:fang:k1:00ff").unwrap();
        assert_eq!((s.user, s.key_id, s.blob), ("fang", "k1", "00ff"));
        for plain in ["Fang", "pd1:", "pd1:fang", "pd1:fang:k1", "pd1:fang:k1:zz", "pd1::k:00"] {
            assert!(sealed_by(plain).is_none(), "{plain}");
        }
    }
}
