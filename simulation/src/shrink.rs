//! The shortest history that still fails: delta debugging (Zeller's ddmin) over the
//! operation list, each candidate run again from scratch. An operation carries its own
//! schedule seed, so a candidate keeps the faults and interleavings of the operations it
//! keeps; a candidate "fails" when it breaks the same invariant.

use crate::check::{Invariant, Violation};
use crate::config::Config;
use crate::ops::Op;
use crate::world;

/// The result of shrinking.
#[derive(Debug, Clone)]
pub struct Shrunk {
    /// The operations left, in their original order.
    pub ops: Vec<Op>,
    /// Their indices in the original list.
    pub indices: Vec<usize>,
    /// The violation the shrunk list reproduces.
    pub violation: Violation,
    /// Runs made while shrinking.
    pub runs: usize,
    /// Operations simulated over all those runs.
    pub simulated: usize,
}

/// Shrinks `ops`, whose run under `cfg` broke `violation`, to a 1-minimal list (removing any
/// single operation no longer breaks the invariant) unless the budget (`cfg.shrink_budget`
/// operations simulated over all candidate runs) ends first. Operations after the one the
/// violation was found at are dropped first.
pub fn shrink(cfg: &Config, ops: &[Op], violation: &Violation) -> Shrunk {
    let mut tester = Tester {
        cfg,
        ops,
        target: violation.invariant,
        runs: 0,
        simulated: 0,
    };
    let end = (violation.op + 1).min(ops.len());
    let mut current: Vec<usize> = (0..end).collect();
    let mut found = violation.clone();
    // The prefix alone must fail; if it does not (a violation found while quiescing needs
    // every operation), start from the whole list.
    match tester.fails(&current) {
        Some(v) => found = v,
        None => current = (0..ops.len()).collect(),
    }
    let mut n = 2usize;
    while current.len() >= 2 && !tester.spent() {
        let chunk = current.len().div_ceil(n);
        let chunks: Vec<Vec<usize>> = current.chunks(chunk).map(|c| c.to_vec()).collect();
        let mut reduced = false;
        for c in &chunks {
            if tester.spent() {
                break;
            }
            if let Some(v) = tester.fails(c) {
                current = c.clone();
                found = v;
                n = 2;
                reduced = true;
                break;
            }
        }
        if !reduced {
            for i in 0..chunks.len() {
                if tester.spent() {
                    break;
                }
                let complement: Vec<usize> = chunks
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .flat_map(|(_, c)| c.iter().copied())
                    .collect();
                if let Some(v) = tester.fails(&complement) {
                    current = complement;
                    found = v;
                    n = (n - 1).max(2);
                    reduced = true;
                    break;
                }
            }
        }
        if !reduced {
            if n >= current.len() {
                break;
            }
            n = (n * 2).min(current.len());
        }
    }
    Shrunk {
        ops: current.iter().map(|i| ops[*i].clone()).collect(),
        indices: current,
        violation: found,
        runs: tester.runs,
        simulated: tester.simulated,
    }
}

/// Runs candidate lists and counts what it spent.
struct Tester<'a> {
    cfg: &'a Config,
    ops: &'a [Op],
    target: Invariant,
    runs: usize,
    simulated: usize,
}

impl Tester<'_> {
    /// The violation of the target invariant the candidate (indices into the original list)
    /// produces, if any.
    fn fails(&mut self, candidate: &[usize]) -> Option<Violation> {
        self.runs += 1;
        self.simulated += candidate.len();
        let list: Vec<Op> = candidate.iter().map(|i| self.ops[*i].clone()).collect();
        let report = world::run(self.cfg, &list, None);
        report.violation.filter(|v| v.invariant == self.target)
    }

    fn spent(&self) -> bool {
        self.simulated >= self.cfg.shrink_budget
    }
}

/// The shrunk history as printed: the seed, the violation, then one line per operation.
pub fn render(seed: u64, invariant: Invariant, shrunk: &Shrunk, original: usize) -> String {
    let mut out = format!(
        "seed {seed}: {invariant} broken; shortest history found: {} of {original} operations ({} runs)\n{}\n",
        shrunk.ops.len(),
        shrunk.runs,
        shrunk.violation
    );
    for (op, index) in shrunk.ops.iter().zip(&shrunk.indices) {
        out.push_str(&format!("  #{index:<7} {op}\n"));
    }
    out
}
