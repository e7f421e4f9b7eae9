//! Recomputes the hash chain over the whole log and names the first position that was altered.

use crate::error::LogError;
use crate::read::LogReader;
use invitebus_events::envelope::GENESIS_HASH;

/// An intact log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub events: u64,
    pub head_hash: String,
}

/// Why a log failed verification.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("position {position} was altered: {reason}")]
    Altered { position: u64, reason: String },
    #[error(transparent)]
    Log(#[from] LogError),
}

/// Walks every event from position 1: positions must be gapless, each `prev_hash` must be the
/// previous `hash`, and each `hash` must match its fields.
pub fn verify(reader: &LogReader) -> Result<VerifyReport, VerifyError> {
    let mut expected_prev = GENESIS_HASH.to_string();
    let mut count = 0u64;
    for env in reader.iter_from(0) {
        let env = match env {
            Ok(env) => env,
            Err(LogError::Corrupt { position, reason }) => return Err(VerifyError::Altered { position, reason }),
            Err(e) => return Err(e.into()),
        };
        let position = env.position;
        if position != count + 1 {
            return Err(VerifyError::Altered {
                position: count + 1,
                reason: format!("position {} is missing (next is {position})", count + 1),
            });
        }
        if env.prev_hash != expected_prev {
            return Err(VerifyError::Altered {
                position,
                reason: "prev_hash does not match the previous hash".into(),
            });
        }
        if !env.hash_is_valid() {
            return Err(VerifyError::Altered {
                position,
                reason: "hash does not match the event's fields".into(),
            });
        }
        expected_prev = env.hash;
        count += 1;
    }
    Ok(VerifyReport {
        events: count,
        head_hash: expected_prev,
    })
}
