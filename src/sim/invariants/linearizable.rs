//! Linearizability (Raft paper §8, dissertation §6.3): every client history the simulator records must be
//! linearizable under the key-value model. An `unknown` verdict (the checker's step budget ran out) is a violation
//! too: a history nobody proved correct does not pass.

use quorumlab_check::{Outcome, Verdict};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinearizabilityViolation {
    #[error("linearizability violated: the history is not linearizable ({0})")]
    NotLinearizable(String),
    #[error("linearizability unproven: the checker gave up ({0}); an unproven history is not a passing one")]
    Unknown(String),
    #[error("linearizability unchecked: {0}")]
    CheckerError(String),
}

/// Judges a checker verdict (or the checker's error).
pub fn check(verdict: &Result<Verdict, String>) -> Result<(), LinearizabilityViolation> {
    match verdict {
        Err(e) => Err(LinearizabilityViolation::CheckerError(e.clone())),
        Ok(v) => match v.outcome {
            Outcome::Linearizable => Ok(()),
            Outcome::NotLinearizable => {
                let why = v
                    .violation()
                    .map(|(p, why)| {
                        let key = p.key.as_deref().unwrap_or("-");
                        format!("key {key}: {} needs {}", why.culprit.description, why.requirement)
                    })
                    .unwrap_or_default();
                Err(LinearizabilityViolation::NotLinearizable(why))
            }
            Outcome::Unknown => {
                let why: Vec<String> = v
                    .partitions
                    .iter()
                    .filter_map(|p| {
                        p.unknown_reason.as_ref().map(|r| format!("key {}: {r}", p.key.as_deref().unwrap_or("-")))
                    })
                    .collect();
                Err(LinearizabilityViolation::Unknown(why.join("; ")))
            }
        },
    }
}
