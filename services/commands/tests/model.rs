//! Model test: random command sequences run through the real dispatch, decide and evolve, checked
//! after every step against a small reference model of record statuses and membership. An error
//! must change nothing; a success must land exactly where the model says.

mod support;

use invitebus_events::{ErrorCode, RecordStatus};
use proptest::prelude::*;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use support::Scenario;

const USERS: [&str; 4] = ["a", "b", "c", "d"];
const INVITES: [&str; 3] = ["i0", "i1", "i2"];

#[derive(Debug, Clone)]
enum Op {
    Create {
        invite: usize,
        invitees: Vec<usize>,
        approval: bool,
    },
    Accept {
        invite: usize,
        user: usize,
    },
    Reject {
        invite: usize,
        user: usize,
    },
    Read {
        invite: usize,
        user: usize,
    },
    Cancel {
        invite: usize,
        by_inviter: bool,
    },
    Approve {
        invite: usize,
        user: usize,
    },
    Deny {
        invite: usize,
        user: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let invite = 0..INVITES.len();
    let user = 0..USERS.len();
    prop_oneof![
        (
            invite.clone(),
            proptest::sample::subsequence((0..USERS.len()).collect::<Vec<_>>(), 1..=3),
            any::<bool>()
        )
            .prop_map(|(invite, invitees, approval)| Op::Create {
                invite,
                invitees,
                approval
            }),
        (invite.clone(), user.clone()).prop_map(|(invite, user)| Op::Accept { invite, user }),
        (invite.clone(), user.clone()).prop_map(|(invite, user)| Op::Reject { invite, user }),
        (invite.clone(), user.clone()).prop_map(|(invite, user)| Op::Read { invite, user }),
        (invite.clone(), any::<bool>()).prop_map(|(invite, by_inviter)| Op::Cancel { invite, by_inviter }),
        (invite.clone(), user.clone()).prop_map(|(invite, user)| Op::Approve { invite, user }),
        (invite, user).prop_map(|(invite, user)| Op::Deny { invite, user }),
    ]
}

/// The reference: each invite's records and whether it needs approval, and who is a member.
#[derive(Default, Debug)]
struct Model {
    invites: BTreeMap<usize, (bool, BTreeMap<usize, RecordStatus>)>,
    members: BTreeSet<usize>,
}

impl Model {
    fn record(&self, invite: usize, user: usize) -> Option<RecordStatus> {
        self.invites.get(&invite)?.1.get(&user).copied()
    }

    /// What the op does when it succeeds: `Some(changes)` if the model says it must succeed,
    /// `None` if it must fail. Changes are applied by `apply`.
    fn expect(&self, op: &Op) -> Option<Vec<(usize, usize, RecordStatus)>> {
        use RecordStatus::*;
        match *op {
            Op::Create {
                invite, ref invitees, ..
            } => {
                let fresh = !self.invites.contains_key(&invite) && invitees.iter().all(|u| !self.members.contains(u));
                fresh.then(|| invitees.iter().map(|&u| (invite, u, Pending)).collect())
            }
            Op::Accept { invite, user } => {
                let (approval, _) = self.invites.get(&invite)?;
                let next = if *approval { Applying } else { Accepted };
                self.record(invite, user)?
                    .is_unanswered()
                    .then(|| vec![(invite, user, next)])
            }
            Op::Reject { invite, user } => self
                .record(invite, user)?
                .is_unanswered()
                .then(|| vec![(invite, user, Rejected)]),
            Op::Read { invite, user } => match self.record(invite, user)? {
                Pending => Some(vec![(invite, user, Read)]),
                _ => Some(vec![]),
            },
            Op::Cancel { invite, by_inviter } => {
                let (_, records) = self.invites.get(&invite)?;
                let open: Vec<_> = records
                    .iter()
                    .filter(|(_, s)| s.is_unanswered())
                    .map(|(&u, _)| (invite, u, Cancelled))
                    .collect();
                (by_inviter && !open.is_empty()).then_some(open)
            }
            Op::Approve { invite, user } => {
                (self.record(invite, user)? == Applying).then(|| vec![(invite, user, Approved)])
            }
            Op::Deny { invite, user } => (self.record(invite, user)? == Applying).then(|| vec![(invite, user, Denied)]),
        }
    }

    fn apply(&mut self, op: &Op, changes: Vec<(usize, usize, RecordStatus)>) {
        if let Op::Create { invite, approval, .. } = *op {
            self.invites.insert(invite, (approval, BTreeMap::new()));
        }
        for (invite, user, status) in changes {
            self.invites
                .get_mut(&invite)
                .expect("known invite")
                .1
                .insert(user, status);
            if matches!(status, RecordStatus::Accepted | RecordStatus::Approved) {
                self.members.insert(user);
            }
        }
    }
}

fn run(s: &mut Scenario, op: &Op) -> Result<usize, ErrorCode> {
    let (name, body) = match op {
        Op::Create {
            invite,
            invitees,
            approval,
        } => {
            let invitees: Vec<&str> = invitees.iter().map(|&u| USERS[u]).collect();
            (
                "CreateInvite",
                json!({"actor": "xuan", "invite_id": INVITES[*invite], "resource_id": "conf",
                "invitees": invitees, "requires_approval": approval}),
            )
        }
        Op::Accept { invite, user } => (
            "AcceptInvite",
            json!({"actor": USERS[*user], "invite_id": INVITES[*invite]}),
        ),
        Op::Reject { invite, user } => (
            "RejectInvite",
            json!({"actor": USERS[*user], "invite_id": INVITES[*invite]}),
        ),
        Op::Read { invite, user } => (
            "MarkInviteRead",
            json!({"actor": USERS[*user], "invite_id": INVITES[*invite]}),
        ),
        Op::Cancel { invite, by_inviter } => {
            let actor = if *by_inviter { "xuan" } else { "a" };
            ("CancelInvite", json!({"actor": actor, "invite_id": INVITES[*invite]}))
        }
        Op::Approve { invite, user } => (
            "ApproveInvite",
            json!({"actor": "boss", "roles": ["admin"], "invite_id": INVITES[*invite], "invitee": USERS[*user]}),
        ),
        Op::Deny { invite, user } => (
            "DenyInvite",
            json!({"actor": "boss", "roles": ["admin"], "invite_id": INVITES[*invite], "invitee": USERS[*user]}),
        ),
    };
    let then = s.when(name, body);
    match &then.result {
        Ok(out) => Ok(out.events.len()),
        Err(e) => Err(e.code),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decisions_follow_the_reference_model(ops in proptest::collection::vec(op(), 1..40)) {
        let mut s = Scenario::conference();
        let mut model = Model::default();
        for (step, op) in ops.iter().enumerate() {
            let expected = model.expect(op);
            let got = run(&mut s, op);
            match (expected, got) {
                (Some(changes), Ok(events)) => {
                    prop_assert_eq!(events == 0, changes.is_empty() && !matches!(op, Op::Create { .. }),
                        "step {}: {:?} appended {} events for {:?}", step, op, events, changes);
                    model.apply(op, changes);
                }
                (None, Err(code)) => prop_assert!(code != ErrorCode::Internal, "step {}: {:?} is a bug", step, op),
                // Reading what is no longer pending may be refused or be a no-op: either changes nothing.
                (Some(changes), Err(code)) if changes.is_empty() && matches!(op, Op::Read { .. }) => {
                    prop_assert!(code != ErrorCode::Internal, "step {}: {:?} is a bug", step, op)
                }
                (expected, got) => prop_assert!(false, "step {}: {:?}: model {:?}, service {:?}; model {:?}", step, op, expected, got, model),
            }
            for (&invite, (_, records)) in &model.invites {
                for (&user, &status) in records {
                    prop_assert_eq!(s.record_status(INVITES[invite], USERS[user]), Some(status),
                        "step {}: {} of {} after {:?}", step, USERS[user], INVITES[invite], op);
                }
            }
            for (u, user) in USERS.iter().enumerate() {
                prop_assert_eq!(s.is_member("conf", user), model.members.contains(&u), "step {}: membership of {}", step, user);
            }
        }
    }
}
