//! Synthetic `kv` histories that are linearizable by construction, for property tests and benchmarks.
//!
//! A correct single-copy store is simulated: each client invokes an op, the op takes effect at some later
//! step (its linearization point, applied to the store's state), and later still the client hears the result.
//! Interleaving those three moments across clients yields real concurrency. With probability
//! `unknown_per_mille`/1000 a client hears nothing (`info`): its op may have taken effect or never will.
//!
//! Every random decision goes through [`Choices`], so a property test can drive the generator with a vector
//! of numbers that proptest shrinks — shrinking the numbers shrinks the history.

use std::collections::BTreeMap;

use crate::history::History;
use crate::value::Value;

/// A source of decisions: `pick(n)` returns a number in `0..n` (`n > 0`).
pub trait Choices {
    fn pick(&mut self, n: u32) -> u32;
}

/// A seeded pseudo-random source (SplitMix64): the same seed gives the same history on every machine.
pub struct SplitMix(pub u64);

impl Choices for SplitMix {
    fn pick(&mut self, n: u32) -> u32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z % u64::from(n.max(1))) as u32
    }
}

/// Decisions read from a script; once it runs out every decision is `0`. The generator treats `0` as the
/// dullest choice (no unknown outcome), so proptest, which shrinks numbers towards 0, shrinks towards
/// plain histories.
pub struct Scripted<'a> {
    pub script: &'a [u32],
    pub position: usize,
}

impl Choices for Scripted<'_> {
    fn pick(&mut self, n: u32) -> u32 {
        let choice = self.script.get(self.position).copied().unwrap_or(0);
        self.position += 1;
        choice % n.max(1)
    }
}

#[derive(Clone, Debug)]
pub struct SynthConfig {
    pub operations: usize,
    pub keys: usize,
    pub clients: usize,
    /// Chance, per thousand, that a client never hears back.
    pub unknown_per_mille: u32,
}

enum Client {
    Idle,
    Invoked {
        key: String,
        f: &'static str,
        arg: Value,
    },
    /// Took effect; the client has not heard yet.
    Applied {
        result: Value,
    },
}

/// Generates a linearizable `kv` history (initial value `nil` for every key).
pub fn kv_history(config: &SynthConfig, choices: &mut dyn Choices) -> History {
    let clients_n = config.clients.max(1);
    let keys_n = config.keys.max(1) as u32;
    let mut store: BTreeMap<String, Value> = BTreeMap::new();
    let mut clients: Vec<Client> = (0..clients_n).map(|_| Client::Idle).collect();
    let mut history = History::new();
    let mut invoked = 0;
    let mut next_value = 0i64;
    let mut step: u64 = 0;
    loop {
        let may_invoke = invoked < config.operations;
        let candidates: Vec<usize> =
            (0..clients_n).filter(|&c| may_invoke || !matches!(clients[c], Client::Idle)).collect();
        if candidates.is_empty() {
            return history;
        }
        // Exactly four decisions per step, used or not, so a script is a list of steps: deleting four
        // numbers deletes one step instead of shifting every later decision.
        let c = candidates[choices.pick(candidates.len() as u32) as usize];
        // High picks are unknown, so that 0 (what shrinking tends to) means "heard back".
        let unknown = choices.pick(1000) >= 1000 - config.unknown_per_mille.min(1000);
        let key_pick = choices.pick(keys_n);
        let kind_pick = choices.pick(20);
        step += 1;
        let process = c as u64;
        match std::mem::replace(&mut clients[c], Client::Idle) {
            Client::Idle => {
                invoked += 1;
                next_value += 1;
                let key = format!("k{key_pick}");
                let current = store.get(&key).cloned().unwrap_or(Value::Nil);
                let (f, arg) = match kind_pick {
                    0..=7 => ("get", Value::Nil),
                    8..=12 => ("put", Value::Str(format!("v{next_value}"))),
                    13..=14 => ("append", Value::Str(format!("+{next_value}"))),
                    15 => ("delete", Value::Nil),
                    // Usually expects what the key holds now, so some CASes succeed despite concurrency.
                    16..=18 => ("cas", Value::List(vec![current, Value::Str(format!("c{next_value}"))])),
                    _ => ("cas", Value::List(vec![Value::Str("stale".into()), Value::Str(format!("c{next_value}"))])),
                };
                history.invoke(process, f, Some(&key), arg.clone());
                set_time(&mut history, step);
                clients[c] = Client::Invoked { key, f, arg };
            }
            Client::Invoked { .. } if unknown => {
                // Times out before taking effect: it never will.
                history.info(process);
                set_time(&mut history, step);
            }
            Client::Invoked { key, f, arg } => {
                let slot = store.entry(key).or_insert(Value::Nil);
                let result = apply(slot, f, &arg);
                clients[c] = Client::Applied { result };
            }
            Client::Applied { .. } if unknown => {
                history.info(process);
                set_time(&mut history, step);
            }
            Client::Applied { result } => {
                history.ok(process, result);
                set_time(&mut history, step);
            }
        }
    }
}

fn set_time(history: &mut History, step: u64) {
    if let Some(last) = history.events.last_mut() {
        last.time_ns = Some(step * 1_000);
    }
}

/// Applies one op to a key's value (`Nil` = absent) and returns what the client is told.
fn apply(slot: &mut Value, f: &str, arg: &Value) -> Value {
    match f {
        "get" => slot.clone(),
        "put" => {
            *slot = arg.clone();
            Value::Nil
        }
        "append" => {
            let suffix = match arg {
                Value::Str(s) => s.as_str(),
                _ => "",
            };
            *slot = match &*slot {
                Value::Str(s) => Value::Str(format!("{s}{suffix}")),
                _ => Value::Str(suffix.to_string()),
            };
            Value::Nil
        }
        "delete" => {
            *slot = Value::Nil;
            Value::Nil
        }
        "cas" => match arg.as_pair() {
            Some((expected, new)) if slot == expected => {
                *slot = new.clone();
                arg.clone()
            }
            _ => Value::Bool(false),
        },
        _ => Value::Nil,
    }
}
