//! The one gate every candidate program goes through (ARCHITECTURE.md, "The unit of work"):
//! clang (for C), the object model, the state contract read from the object, the kernel
//! verifier, the checker, and the kernel's measurements. It prints nothing and reads no
//! environment: whatever it needs is in `GateOptions`. A rejection is typed data, so that a
//! producer (the LLM loop, the optimizer) can turn it into feedback, and the command line
//! into a message.

use std::path::{Path, PathBuf};

use simplebpf_checker::{Session, Verdict};
use simplebpf_compiler::cancel::Cancel;
use simplebpf_compiler::clang::{self, ClangError, ClangOptions};
use simplebpf_compiler::contract::{self, Contract, ContractError};
use simplebpf_compiler::kernel::{KernelError, LoadedProgram};
use simplebpf_compiler::measure::{self, KernelNumbers};
use simplebpf_compiler::object_model::{BpfObject, ObjectError};
use simplebpf_compiler::state_io::{self, StateError};
use simplebpf_dsl::interp;

/// What a candidate is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// C text, cited in clang's messages as `file_name`.
    C { text: String, file_name: String },
    /// A C file compiled where it is (the headers beside it are found).
    CFile(PathBuf),
    /// A compiled object.
    Elf(Vec<u8>),
}

/// Who produced a candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The rules backend.
    Rules,
    /// A file a person gave (`simplebpf check`, `stats`).
    File(PathBuf),
    /// An LLM's answer in a round of a conversation.
    Llm { sample: usize, round: usize },
    /// The optimizer's search, with what produced the variant.
    Optimizer(String),
}

/// A program to judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub source: Source,
    pub origin: Origin,
    /// Which XDP program of the object (the only one when `None`).
    pub program: Option<String>,
}

/// Whether the kernel is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelUse {
    /// Load the program (the verifier's verdict), and with `measure`, count its instructions
    /// and time it.
    Verify { measure: bool },
    /// Do not load it: no verifier verdict, no kernel counts.
    Skip,
}

#[derive(Debug, Clone)]
pub struct GateOptions {
    pub clang: ClangOptions,
    /// The service port (for the measured packet; the checker session has its own).
    pub port: u16,
    pub kernel: KernelUse,
    /// A machine that cannot load programs is an error, not a skipped step
    /// (`SIMPLEBPF_REQUIRE_KERNEL=1`, read by the caller).
    pub kernel_required: bool,
    /// An object the checker does not prove equivalent is rejected; off only for
    /// `build --allow-unproven`, which then marks it.
    pub require_proof: bool,
    /// The clock `bpf_ktime_get_ns` reads, for running `init` at load time.
    pub clock: fn() -> u64,
    pub cancel: Cancel,
}

impl Default for GateOptions {
    fn default() -> GateOptions {
        GateOptions {
            clang: ClangOptions::default(),
            port: 9000,
            kernel: KernelUse::Verify { measure: true },
            kernel_required: false,
            require_proof: true,
            clock: simplebpf_compiler::kernel::monotonic_ns,
            cancel: Cancel::new(),
        }
    }
}

impl GateOptions {
    /// For C nobody vouches for (a model's answer, a lock's program): clang in its sandbox,
    /// and only a proven program passes, whatever the build allows for its own.
    pub fn for_untrusted(&self) -> GateOptions {
        let mut options = self.clone();
        options.clang.sandbox = true;
        options.require_proof = true;
        options
    }
}

/// What the kernel said about an accepted program, or why it was not asked.
#[derive(Debug, Clone, PartialEq)]
pub enum KernelOutcome {
    Measured(KernelNumbers),
    /// Loaded and accepted, not measured.
    Verified,
    NotAsked,
    /// The machine cannot load programs (and that was allowed): why.
    NotPermitted(String),
}

/// A candidate that passed the gate.
#[derive(Debug, Clone)]
pub struct Gated {
    pub origin: Origin,
    /// The C it was compiled from, when it came as C text.
    pub c_source: Option<String>,
    pub elf: Vec<u8>,
    pub object: BpfObject,
    /// The XDP program judged.
    pub program: String,
    /// Instructions in the object's XDP function (`lddw` once, `ja +0` not at all).
    pub elf_insns: usize,
    /// The state contract (when a policy was given).
    pub contract: Option<Contract>,
    /// The checker's verdict (when a policy was given): equivalent, or with
    /// `require_proof` off, whatever it was.
    pub verdict: Option<Verdict>,
    pub kernel: KernelOutcome,
}

/// What a program costs, compared field by field: JIT instructions (what runs), then the
/// verifier's rewritten instructions, then the object's (`None` when the kernel did not
/// measure; only costs measured alike are compared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cost {
    pub jited: Option<u32>,
    pub xlated: Option<u32>,
    pub elf: usize,
}

impl Cost {
    /// In words, for a prompt: `57 x86 instructions after the JIT, 43 BPF instructions after
    /// the verifier, 41 in the object`.
    pub fn describe(&self) -> String {
        match (self.jited, self.xlated) {
            (Some(jited), Some(xlated)) => format!(
                "{jited} x86 instructions after the JIT, {xlated} BPF instructions after the verifier, {} in the object",
                self.elf
            ),
            _ => format!(
                "{} BPF instructions in the object (not measured by the kernel)",
                self.elf
            ),
        }
    }

    /// JIT instructions first, then xlated, then ELF; when either cost lacks the kernel's
    /// numbers, ELF instructions alone decide. Equal is not cheaper, so ties keep the earlier
    /// program.
    pub fn is_cheaper_than(&self, other: &Cost) -> bool {
        match (self.jited, other.jited) {
            (Some(_), Some(_)) => self < other,
            _ => self.elf < other.elf,
        }
    }
}

impl KernelOutcome {
    /// The kernel's numbers, when it measured the program.
    pub fn numbers(&self) -> Option<&KernelNumbers> {
        match self {
            KernelOutcome::Measured(numbers) => Some(numbers),
            _ => None,
        }
    }
}

impl Gated {
    pub fn cost(&self) -> Cost {
        let sizes = self.kernel.numbers().map(|numbers| numbers.sizes);
        Cost {
            jited: sizes.map(|s| s.jited_insns),
            xlated: sizes.map(|s| s.xlated_insns),
            elf: self.elf_insns,
        }
    }

    /// What the checker's explanations need of it.
    pub fn compiled(&self) -> simplebpf_checker::explain::Compiled<'_> {
        simplebpf_checker::explain::Compiled {
            elf: &self.elf,
            object: &self.object,
            program: &self.program,
            contract: self.contract.as_ref(),
        }
    }
}

/// Why a candidate did not pass.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error(transparent)]
    Clang(ClangError),
    #[error("the object cannot be read: {0}")]
    Object(#[from] ObjectError),
    #[error("the object does not follow the state contract: {0}")]
    Contract(#[from] ContractError),
    #[error("the kernel verifier rejected the program")]
    Verifier { log: String },
    /// Not equivalent (a counterexample or a race), with the object it is about.
    #[error("the program is not equivalent to the policy")]
    NotEquivalent {
        verdict: Box<Verdict>,
        compiled: Box<Gated>,
    },
    #[error("the checker could not decide: {reason}")]
    Unknown { reason: String },
    /// The kernel could not be used at all (not a fault of the program).
    #[error(transparent)]
    Kernel(KernelError),
    #[error("the policy's initial state cannot be written into the program: {0}")]
    State(#[from] StateError),
    #[error("cannot read {}: {error}", path.display())]
    Read { path: PathBuf, error: String },
    #[error("interrupted")]
    Interrupted,
}

/// What kind of fault of the candidate a rejection is, for counting (the optimizer's report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    ClangError,
    VerifierRejected,
    NotEquivalent,
    Race,
    Unknown,
}

impl Reason {
    /// The name in reports (the LLM backend's round outcomes use the same names).
    pub fn name(self) -> &'static str {
        match self {
            Reason::ClangError => "clang_error",
            Reason::VerifierRejected => "verifier_rejected",
            Reason::NotEquivalent => "not_equivalent",
            Reason::Race => "race",
            Reason::Unknown => "unknown",
        }
    }
}

impl Rejection {
    /// The candidate's fault, or `None` when the machine failed (no clang, no kernel, an
    /// interruption): that is no verdict on the candidate and stops a search.
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Rejection::Clang(
                ClangError::Spawn { .. } | ClangError::Scratch { .. } | ClangError::Interrupted,
            ) => None,
            Rejection::Clang(_) | Rejection::Object(_) => Some(Reason::ClangError),
            Rejection::Contract(_) => Some(Reason::NotEquivalent),
            Rejection::Verifier { .. } => Some(Reason::VerifierRejected),
            Rejection::NotEquivalent { verdict, .. } => Some(match **verdict {
                Verdict::Race { .. } => Reason::Race,
                _ => Reason::NotEquivalent,
            }),
            Rejection::Unknown { .. } => Some(Reason::Unknown),
            Rejection::Kernel(_)
            | Rejection::State(_)
            | Rejection::Read { .. }
            | Rejection::Interrupted => None,
        }
    }
}

impl From<simplebpf_compiler::cancel::Interrupted> for Rejection {
    fn from(_: simplebpf_compiler::cancel::Interrupted) -> Rejection {
        Rejection::Interrupted
    }
}

/// Judges a candidate. `session` is the checker session of the policy (none for `stats`:
/// no policy, no contract, no verdict); `scratch` a directory the caller owns, for clang.
pub fn gate(
    candidate: Candidate,
    mut session: Option<&mut Session>,
    options: &GateOptions,
    scratch: &Path,
) -> Result<Gated, Rejection> {
    let cancel = &options.cancel;
    cancel.check()?;
    let (elf, c_source) = compile(&candidate.source, scratch, options)?;
    cancel.check()?;
    let object = BpfObject::parse(&elf)?;
    let prog = object.xdp_program(candidate.program.as_deref())?;
    let program = prog.name.clone();
    let elf_insns = prog.elf_instruction_count();
    let contract = match session.as_deref() {
        Some(session) => Some(contract::read(session.program(), &object)?),
        None => None,
    };

    // The verifier first: a program the kernel refuses cannot be equivalent to anything.
    let (loaded, kernel) = match options.kernel {
        KernelUse::Skip => (None, KernelOutcome::NotAsked),
        KernelUse::Verify { .. } => match LoadedProgram::load(&elf, Some(&program)) {
            Ok(loaded) => (Some(loaded), KernelOutcome::Verified),
            Err(KernelError::Rejected { log }) => return Err(Rejection::Verifier { log }),
            Err(err) if err.is_missing_capability() && !options.kernel_required => {
                (None, KernelOutcome::NotPermitted(err.to_string()))
            }
            Err(err) => return Err(Rejection::Kernel(err)),
        },
    };
    cancel.check()?;

    let mut gated = Gated {
        origin: candidate.origin,
        c_source,
        elf,
        object,
        program,
        elf_insns,
        contract,
        verdict: None,
        kernel,
    };
    if let Some(session) = session.as_deref_mut() {
        let verdict = session.check(&gated.elf, &gated.object, &gated.program)?;
        match verdict {
            Verdict::Equivalent { .. } => {}
            _ if !options.require_proof => {}
            Verdict::Unknown { reason } => return Err(Rejection::Unknown { reason }),
            other => {
                return Err(Rejection::NotEquivalent {
                    verdict: Box::new(other),
                    compiled: Box::new(gated),
                });
            }
        }
        gated.verdict = Some(verdict);
    }
    cancel.check()?;

    if let (Some(loaded), KernelUse::Verify { measure: true }) = (&loaded, options.kernel) {
        // Measured as a loader leaves it: `init` run at load time and its state written.
        if let (Some(session), Some(contract)) = (session.as_deref(), &gated.contract) {
            write_initial_state(loaded, session.program(), contract, options.clock)?;
        }
        let numbers = measure::measure(loaded, options.port).map_err(Rejection::Kernel)?;
        gated.kernel = KernelOutcome::Measured(numbers);
    }
    Ok(gated)
}

/// The candidate's object, and its C when it came as text.
fn compile(
    source: &Source,
    scratch: &Path,
    options: &GateOptions,
) -> Result<(Vec<u8>, Option<String>), Rejection> {
    let clang_source = match source {
        Source::Elf(bytes) => return Ok((bytes.clone(), None)),
        Source::C { text, file_name } => clang::Source::Text { text, file_name },
        Source::CFile(path) => clang::Source::File(path),
    };
    let elf = match clang::compile_source(clang_source, scratch, &options.clang, &options.cancel) {
        Err(ClangError::Interrupted) => return Err(Rejection::Interrupted),
        other => other.map_err(Rejection::Clang)?,
    };
    let c_source = match source {
        Source::C { text, .. } => Some(text.clone()),
        _ => None,
    };
    Ok((elf, c_source))
}

/// Runs `init` at the load time the clock gives and writes the state into the loaded
/// program, as a loader does before it attaches the program.
pub fn write_initial_state(
    loaded: &LoadedProgram,
    program: &simplebpf_dsl::ir::Program,
    contract: &Contract,
    clock: fn() -> u64,
) -> Result<(), Rejection> {
    let initial = interp::load(program, &[], clock())
        .map_err(|err| StateError::Missing(format!("init failed at load time: {err}")))?;
    state_io::write_state(loaded, contract, &initial.state)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_is_jit_first_and_elf_without_a_kernel() {
        let cost = |jited, elf| Cost {
            jited,
            xlated: jited,
            elf,
        };
        assert!(cost(Some(60), 50).is_cheaper_than(&cost(Some(61), 40)));
        assert!(!cost(Some(61), 40).is_cheaper_than(&cost(Some(61), 40)));
        assert!(cost(None, 40).is_cheaper_than(&cost(None, 41)));
        assert!(!cost(None, 41).is_cheaper_than(&cost(None, 40)));
    }
}
