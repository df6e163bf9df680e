//! Z3 equivalence checker: proves BPF bytecode does what a policy's IR says, or gives a
//! counterexample (LANGUAGE.md §4.6). It reads only the IR and the BPF program model, so it
//! checks any object that follows the layout contract of §4.3: ours, an LLM's, or a
//! hand-written one.

pub mod filter;
mod interrupt;
pub mod policy;
pub mod pretest;
pub mod query;
pub mod reference;
pub mod replay;
pub mod symexec;
pub mod verdict;

pub use query::{Options, assumptions, check};
pub use replay::{KernelReplay, kernel_replay};
pub use verdict::{Counterexample, Verdict};

/// The full check of an object as `simplebpf check` and `build` run it: concrete pre-tests in
/// the kernel first (when it is available), then the solver. Counterexamples join the
/// pre-tests of later checks in this process. `Err` when the work was cancelled.
pub fn check_object(
    program: &simplebpf_dsl::ir::Program,
    elf: &[u8],
    object: &simplebpf_compiler::object_model::BpfObject,
    options: &Options,
) -> Result<Verdict, simplebpf_compiler::cancel::Interrupted> {
    // A program outside the model is "unknown" whatever a test would show.
    if let Ok(prog) = object.xdp_program(options.program.as_deref())
        && let Some(unknown) = symexec::unmodelled_call(&prog.insns)
    {
        return Ok(Verdict::Unknown {
            reason: format!("instruction {}: {}", unknown.pc, unknown.reason),
        });
    }
    let verdict = match pretest::run(elf, program, object, options) {
        Some(verdict) => verdict,
        None => check(program, object, options)?,
    };
    options.cancel.check()?;
    if let Verdict::NotEquivalent { counterexample, .. } = &verdict {
        pretest::learn(counterexample);
    }
    Ok(verdict)
}
