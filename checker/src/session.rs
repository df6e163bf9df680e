//! A checker session: one policy, many candidate objects. The session keeps what carries
//! from one check to the next — verdicts by the object's hash (the same bytes are never
//! checked twice), the policy's encoding by the shape of the object's state (candidates
//! that lay state out alike share one encoding), and the frames of earlier
//! counterexamples, which the concrete pre-tests try first. It holds no global state: two
//! sessions never see each other's work.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use simplebpf_compiler::cancel::Interrupted;
use simplebpf_compiler::object_model::BpfObject;
use simplebpf_dsl::ir::Program;

use crate::pretest;
use crate::query::{self, Encoding, Options};
use crate::replay::{self, KernelReplay};
use crate::symexec;
use crate::verdict::{Counterexample, Verdict};

#[derive(Debug)]
pub struct Session {
    program: Program,
    options: Options,
    verdicts: HashMap<[u8; 32], Verdict>,
    encodings: HashMap<String, Encoding>,
    learned: Vec<Vec<u8>>,
    stats: SessionStats,
}

/// What a session did, for reports and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Checks asked for.
    pub checks: usize,
    /// Of those, answered from the verdict cache.
    pub cached: usize,
}

impl Session {
    /// A session for `program`; `options.program` is ignored (each check names its program).
    pub fn new(program: &Program, options: Options) -> Session {
        Session {
            program: program.clone(),
            options,
            verdicts: HashMap::new(),
            encodings: HashMap::new(),
            learned: Vec::new(),
            stats: SessionStats::default(),
        }
    }

    pub fn program(&self) -> &Program {
        &self.program
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// How many encodings of the policy the session has made (one per state layout).
    pub fn encodings(&self) -> usize {
        self.encodings.len()
    }

    /// The verdict on the XDP program `name` of an object: a cached one for bytes already
    /// checked; else the concrete pre-tests in the kernel (when it is available), then the
    /// solver. `Err` when the work was cancelled (nothing is cached then).
    pub fn check(
        &mut self,
        elf: &[u8],
        object: &BpfObject,
        name: &str,
    ) -> Result<Verdict, Interrupted> {
        let key = key(elf, name);
        self.stats.checks += 1;
        if let Some(verdict) = self.verdicts.get(&key) {
            self.stats.cached += 1;
            return Ok(verdict.clone());
        }
        let options = Options {
            program: Some(name.to_string()),
            ..self.options.clone()
        };
        let verdict = self.check_uncached(elf, object, &options)?;
        options.cancel.check()?;
        if let Verdict::NotEquivalent { counterexample, .. } = &verdict
            && !self.learned.contains(&counterexample.packet)
        {
            self.learned.push(counterexample.packet.clone());
        }
        self.verdicts.insert(key, verdict.clone());
        Ok(verdict)
    }

    fn check_uncached(
        &mut self,
        elf: &[u8],
        object: &BpfObject,
        options: &Options,
    ) -> Result<Verdict, Interrupted> {
        // A program outside the model is "unknown" whatever a test would show.
        if let Ok(prog) = object.xdp_program(options.program.as_deref())
            && let Some(unknown) = symexec::unmodelled_call(&prog.insns)
        {
            return Ok(Verdict::Unknown {
                reason: format!("instruction {}: {}", unknown.pc, unknown.reason),
            });
        }
        if let Some(verdict) = pretest::run(elf, &self.program, object, options, &self.learned) {
            return Ok(verdict);
        }
        query::check(&self.program, object, options, &mut self.encodings)
    }

    /// Replays a counterexample of this session in the kernel.
    pub fn kernel_replay(
        &self,
        elf: &[u8],
        object: &BpfObject,
        name: &str,
        counterexample: &Counterexample,
    ) -> KernelReplay {
        replay::kernel_replay(elf, &self.program, object, Some(name), counterexample)
    }
}

/// What identifies a check within a session: the object's bytes and the program's name.
fn key(elf: &[u8], name: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(elf);
    hasher.update([0]);
    hasher.update(name.as_bytes());
    hasher.finalize().into()
}
