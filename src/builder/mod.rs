//! `simplebpf::Builder`: a policy built from a cargo build script, through the same pipeline
//! and gate as `simplebpf build` (docs/buildscript.md).
//!
//! ```no_run
//! // The body of build.rs's `fn main`:
//! simplebpf::Builder::new("policies/logging_fault.appnet")
//!     .port(50051)
//!     .build()
//!     .unwrap();
//! ```
//!
//! It writes `<name>.bpf.c`, `<name>.bpf.o`, `<name>.report.json` and the Rust module
//! `<name>.rs` into `OUT_DIR`, all or none; a build that fails removes that policy's earlier
//! outputs, so nothing stale is left to include.

mod rust_aya;
pub mod rust_module;

use std::path::PathBuf;

use simplebpf_compiler::backend::LockPlace;
use simplebpf_compiler::cancel::Cancel;
use simplebpf_compiler::kernel;
use simplebpf_dsl::render::{RenderOptions, render};
use simplebpf_optimizer::llm::Conversations;
use simplebpf_optimizer::{KernelUse, Rejection};

use crate::backend::{Fallback, LlmSettings, LockFailure, LockMode};
use crate::lock::Lock;
use crate::outputs::{OutputDir, OutputError, OutputFile};
use crate::pipeline::{self, BuildError, BuildOptions, Built, OutputPaths};
use crate::source::SourceFile;
use crate::{report, verdict};

pub use rust_module::{Insns, ModuleError};

/// The environment variables a build honours; each is announced to cargo with
/// `cargo:rerun-if-env-changed`.
pub const HONOURED_ENV: [&str; 2] = [kernel::REQUIRE_KERNEL_ENV, DOCS_RS];

/// Set by docs.rs: a build there never asks a model.
const DOCS_RS: &str = "DOCS_RS";

/// Who writes the C.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// The deterministic rules backend.
    #[default]
    Rules,
    /// An LLM's program from the policy's lockfile (`<policy>.lock`), judged by the gate
    /// like any other; the model itself is asked only with `locked(false)` and
    /// `llm_server(..)`.
    Llm,
}

/// Builds one policy into `OUT_DIR` (or `out_dir`).
#[derive(Debug, Clone)]
pub struct Builder {
    policy: PathBuf,
    port: u16,
    optimize: bool,
    backend: Backend,
    locked: bool,
    llm_server: Option<LlmServer>,
    llm_rounds: usize,
    llm_max_tokens: u32,
    out_dir: Option<PathBuf>,
    clang: Option<PathBuf>,
    aya: bool,
    cargo: bool,
}

/// The server and model `locked(false)` asks.
#[derive(Debug, Clone)]
struct LlmServer {
    url: String,
    model: String,
}

/// What a build wrote.
#[derive(Debug, Clone)]
pub struct Output {
    pub c: PathBuf,
    pub object: PathBuf,
    pub report: PathBuf,
    /// The Rust module; `include!` it.
    pub module: PathBuf,
    /// The module's name inside that file (the policy's name, made an identifier).
    pub module_name: String,
    pub before: Insns,
    pub after: Insns,
    /// The checker proved the object equivalent to the policy (always, unless the build
    /// was told otherwise; a build script cannot be).
    pub proven: bool,
}

/// Why a build script's build failed. `Display` is the diagnostic, without colour; so is
/// `Debug`, so that `.build().unwrap()` in a build script shows it as it is.
#[derive(thiserror::Error)]
pub enum BuildScriptError {
    #[error(
        "simplebpf: no output directory: OUT_DIR is not set (run from a cargo build script, or call out_dir)"
    )]
    NoOutDir,
    #[error("simplebpf: {0}")]
    Read(String),
    #[error("simplebpf: {0}")]
    Output(#[from] OutputError),
    /// The policy has errors: the rendered diagnostics.
    #[error("{rendered}simplebpf: {} has errors; nothing was written", path.display())]
    Policy { path: PathBuf, rendered: String },
    #[error("simplebpf: the kernel verifier rejected {what}; nothing was written\n{log_tail}")]
    Verifier { what: String, log_tail: String },
    /// The checker found a difference (the counterexample is in `explanation`) or could not
    /// decide.
    #[error(
        "simplebpf: {what} is not proven equivalent to the policy; nothing was written\n{explanation}"
    )]
    NotProven { what: String, explanation: String },
    #[error("simplebpf: {0}; nothing was written")]
    Lock(LockFailure),
    #[error("simplebpf: {0}")]
    Build(BuildError),
    #[error("simplebpf: cannot write the Rust module for {}: {error}", path.display())]
    Module { path: PathBuf, error: ModuleError },
}

impl std::fmt::Debug for BuildScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl Builder {
    /// A build of the policy at `policy` (relative to the build script's directory, which
    /// is the package's root when cargo runs it).
    pub fn new(policy: impl Into<PathBuf>) -> Builder {
        Builder {
            policy: policy.into(),
            port: pipeline::DEFAULT_PORT,
            optimize: true,
            backend: Backend::Rules,
            locked: true,
            llm_server: None,
            llm_rounds: Conversations::default().rounds,
            llm_max_tokens: crate::commands::llm::DEFAULT_MAX_TOKENS,
            out_dir: None,
            clang: None,
            aya: false,
            cargo: true,
        }
    }

    /// The UDP port whose datagrams are RPCs. Default 9000.
    pub fn port(&mut self, port: u16) -> &mut Builder {
        self.port = port;
        self
    }

    /// Search for a cheaper proven program (within `simplebpf build`'s default budget).
    /// Default on; off emits the rules backend's first program.
    pub fn optimize(&mut self, optimize: bool) -> &mut Builder {
        self.optimize = optimize;
        self
    }

    /// Who writes the C. Default `Backend::Rules`.
    pub fn backend(&mut self, backend: Backend) -> &mut Builder {
        self.backend = backend;
        self
    }

    /// With `Backend::Llm`: build from the lockfile only, never asking the model (a missing
    /// or stale lock is an error). Default on: a build script must work offline. Off asks
    /// the model given by `llm_server` when the lock is missing or stale, and needs the
    /// feature `llm`; when `DOCS_RS` is set the model is never asked, whatever this says.
    pub fn locked(&mut self, locked: bool) -> &mut Builder {
        self.locked = locked;
        self
    }

    /// The OpenAI-compatible server (base URL, e.g. `http://127.0.0.1:8080/v1`) and model
    /// the LLM backend asks when `locked(false)`. Default none. The API key, if the server
    /// wants one, is read from `SIMPLEBPF_LLM_API_KEY` or `OPENAI_API_KEY`.
    pub fn llm_server(&mut self, url: impl Into<String>, model: impl Into<String>) -> &mut Builder {
        self.llm_server = Some(LlmServer {
            url: url.into(),
            model: model.into(),
        });
        self
    }

    /// Answers the model may give when it is asked, each rejection fed back. Default 3.
    pub fn llm_rounds(&mut self, rounds: usize) -> &mut Builder {
        self.llm_rounds = rounds.max(1);
        self
    }

    /// The most tokens one answer may have (a longer one is truncated and rejected).
    /// Default 4096.
    pub fn llm_max_tokens(&mut self, tokens: u32) -> &mut Builder {
        self.llm_max_tokens = tokens;
        self
    }

    /// Where the outputs go. Default the `OUT_DIR` cargo gives a build script.
    pub fn out_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Builder {
        self.out_dir = Some(dir.into());
        self
    }

    /// The clang to compile with. Default `clang-19` on `PATH`.
    pub fn clang(&mut self, clang: impl Into<PathBuf>) -> &mut Builder {
        self.clang = Some(clang.into());
        self
    }

    /// Generate `State::read`, `State::write` and `write_init` over a loaded `aya::Ebpf`
    /// (the crate that includes the module then depends on aya), and keep the program
    /// loadable by aya 0.14: the optimizer leaves a lock in an array map. Default off.
    pub fn aya(&mut self, aya: bool) -> &mut Builder {
        self.aya = aya;
        self
    }

    /// Print `cargo:` lines (`rerun-if-changed`, `rerun-if-env-changed`, `warning`) on
    /// standard output, as a build script should. Default on; off for a build outside
    /// cargo.
    pub fn cargo_messages(&mut self, on: bool) -> &mut Builder {
        self.cargo = on;
        self
    }

    fn lock_path(&self) -> PathBuf {
        Lock::path_for(&self.policy)
    }

    /// Builds the policy and writes the outputs, or fails and leaves none of this policy's
    /// outputs in the output directory.
    pub fn build(&self) -> Result<Output, BuildScriptError> {
        if self.cargo {
            self.announce_inputs();
        }
        let result = self.output_dir().and_then(|dir| {
            let result = self.build_into(&dir);
            if result.is_err() {
                remove_outputs(&dir, &self.name());
            }
            result
        });
        if let (Err(error), true) = (&result, self.cargo) {
            for line in error.to_string().lines() {
                println!("cargo:warning={line}");
            }
        }
        result
    }

    fn announce_inputs(&self) {
        println!("cargo:rerun-if-changed={}", self.policy.display());
        if self.backend == Backend::Llm {
            println!("cargo:rerun-if-changed={}", self.lock_path().display());
        }
        for name in HONOURED_ENV {
            println!("cargo:rerun-if-env-changed={name}");
        }
        if self.llm_server.is_some() && !self.locked {
            for name in crate::commands::llm::API_KEY_ENV {
                println!("cargo:rerun-if-env-changed={name}");
            }
        }
    }

    fn name(&self) -> String {
        crate::commands::build::policy_name(&self.policy)
    }

    fn output_dir(&self) -> Result<OutputDir, BuildScriptError> {
        let dir = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or(BuildScriptError::NoOutDir)?,
        };
        let dir = std::path::absolute(&dir).map_err(|error| OutputError::Create {
            path: dir.clone(),
            error,
        })?;
        Ok(OutputDir::prepare(&dir)?)
    }

    fn options(&self) -> BuildOptions {
        let mut options = BuildOptions {
            port: self.port,
            kernel: KernelUse::Verify { measure: true },
            kernel_required: kernel::kernel_required(),
            optimize: self.optimize.then_some(pipeline::DEFAULT_OPTIMIZE_BUDGET),
            ..BuildOptions::default()
        };
        if let Some(clang) = &self.clang {
            options.clang.binary = clang.clone();
        }
        if self.aya {
            options.lock_places = vec![LockPlace::ArrayMap];
        }
        options
    }

    fn build_into(&self, dir: &OutputDir) -> Result<Output, BuildScriptError> {
        let file = SourceFile::read(&self.policy)
            .map_err(|error| BuildScriptError::Read(format!("{error:#}")))?;
        let name = self.name();
        let options = self.options();
        let built = match self.backend {
            Backend::Rules => pipeline::build(&name, &file.bytes, &options),
            Backend::Llm => self.build_llm(&name, &file, &options),
        }
        .map_err(|error| refused(&file, error, &options))?;
        let paths = OutputPaths::new(dir, &name);
        let program = simplebpf_dsl::analyze_bytes(&file.bytes)
            .ir
            .expect("the build got past the front end");
        let contract = built
            .gated
            .contract
            .as_ref()
            .expect("a proven program has a contract");
        let insns = |numbers: Option<&simplebpf_compiler::measure::KernelNumbers>, elf| Insns {
            elf,
            xlated: numbers.map(|n| n.sizes.xlated_insns),
            jited: numbers.map(|n| n.sizes.jited_insns),
        };
        let after = insns(built.report.numbers(), built.report.elf_insns);
        let before = match &built.report.optimizer {
            Ok(optimizer) => insns(optimizer.before_kernel.as_ref(), optimizer.before_elf),
            Err(_) => after,
        };
        let spec = rust_module::ModuleSpec {
            name: &name,
            policy_path: &self.policy,
            program_name: &built.gated.program,
            port: self.port,
            object_path: &paths.object,
            program: &program,
            contract,
            object: &built.gated.object,
            before,
            after,
            aya: self.aya,
        };
        let module_file = format!("{name}.rs");
        let module_path = dir.join(&module_file);
        let module = rust_module::render(&spec).map_err(|error| BuildScriptError::Module {
            path: module_path.clone(),
            error,
        })?;
        let written = pipeline::write_outputs_with(
            &built,
            dir,
            &[OutputFile {
                name: &module_file,
                bytes: module.as_bytes(),
            }],
            &Cancel::new(),
        )?;
        Ok(Output {
            c: written.c,
            object: written.object,
            report: written.report,
            module: module_path,
            module_name: rust_module::module_name(&name),
            before,
            after,
            proven: built.report.proven(),
        })
    }

    fn build_llm(
        &self,
        name: &str,
        file: &SourceFile,
        options: &BuildOptions,
    ) -> Result<Built, BuildError> {
        let conversations = Conversations {
            rounds: self.llm_rounds,
            samples: 1,
        };
        let ask = may_ask_model(self.locked, std::env::var_os(DOCS_RS).is_some());
        let settings = LlmSettings {
            url: self.llm_server.as_ref().map(|server| server.url.clone()),
            model: self.llm_server.as_ref().map(|server| server.model.clone()),
            conversations,
            fallback: Fallback::None,
            lock: if ask { LockMode::Use } else { LockMode::Locked },
            lock_path: self.lock_path(),
        };
        let client = self.client();
        let model = match &client {
            Ok(client) => Ok(client.as_model()),
            Err(why) => Err(why.clone()),
        };
        crate::commands::llm::build_with_progress(name, &file.bytes, options, &settings, model)
    }

    #[cfg(feature = "llm")]
    fn client(&self) -> Result<ModelClient, String> {
        let server = self
            .llm_server
            .clone()
            .ok_or("locked(false) needs the model's server: llm_server(url, model)")?;
        let mut choice = crate::commands::llm::ClientChoice::new(server.url, server.model);
        choice.max_tokens = self.llm_max_tokens;
        crate::commands::llm::client(choice).map(ModelClient)
    }

    #[cfg(not(feature = "llm"))]
    fn client(&self) -> Result<ModelClient, String> {
        Err(
            "this simplebpf was built without the feature `llm` (no HTTP client): only a lockfile can be used"
                .to_string(),
        )
    }
}

/// Whether a build may ask the model: only when the caller opted in (`locked(false)`), and
/// never on docs.rs, which builds without a network.
fn may_ask_model(locked: bool, on_docs_rs: bool) -> bool {
    !locked && !on_docs_rs
}

/// The model a build may ask, when this simplebpf has an HTTP client.
#[cfg(feature = "llm")]
struct ModelClient(simplebpf_compiler::llm::client::Client);

#[cfg(not(feature = "llm"))]
enum ModelClient {}

impl ModelClient {
    fn as_model(&self) -> &dyn simplebpf_compiler::llm::Model {
        #[cfg(feature = "llm")]
        {
            &self.0
        }
        #[cfg(not(feature = "llm"))]
        match *self {}
    }
}

/// The failure as a diagnostic, as `simplebpf build` would print it, without colour.
fn refused(file: &SourceFile, error: BuildError, options: &BuildOptions) -> BuildScriptError {
    let (what, rejection) = match error {
        BuildError::Input { diagnostics } => {
            let text = file.text();
            let rendered = diagnostics
                .iter()
                .map(|d| render(d, &file.name(), &text, RenderOptions { color: false }))
                .collect();
            return BuildScriptError::Policy {
                path: file.path.clone(),
                rendered,
            };
        }
        BuildError::Rejected(rejection) => (
            format!("the program generated for {}", file.name()),
            rejection,
        ),
        BuildError::Lock(LockFailure::Rejected { path, rejection }) => (
            format!("the program in the lockfile {}", path.display()),
            *rejection,
        ),
        BuildError::Lock(failure) => return BuildScriptError::Lock(failure),
        other => return BuildScriptError::Build(other),
    };
    match rejection {
        Rejection::Verifier { log } => BuildScriptError::Verifier {
            what,
            log_tail: report::verifier_log_tail(&log),
        },
        Rejection::NotEquivalent { verdict, compiled } => {
            let explanation = simplebpf_dsl::analyze_bytes(&file.bytes)
                .ir
                .ok_or(())
                .and_then(|program| {
                    verdict::describe(
                        &program,
                        &verdict,
                        options.port,
                        Some(&compiled),
                        options.kernel_required,
                    )
                    .map_err(|_| ())
                })
                .map(|described| described.text)
                .unwrap_or_else(|()| simplebpf_checker::explain::text(&verdict, None, None));
            BuildScriptError::NotProven { what, explanation }
        }
        Rejection::Unknown { reason } => BuildScriptError::NotProven {
            what,
            explanation: simplebpf_checker::explain::text(
                &simplebpf_checker::Verdict::Unknown { reason },
                None,
                None,
            ),
        },
        other => BuildScriptError::Build(BuildError::Rejected(other)),
    }
}

/// Removes a policy's outputs from an earlier build (a failed build must not leave a stale
/// object for the crate to include). Only files and links of those four names go, and a
/// `.rs` only if simplebpf generated it: `out_dir` may be a directory with the user's own.
fn remove_outputs(dir: &OutputDir, name: &str) {
    for suffix in [".bpf.c", ".bpf.o", ".report.json", ".rs"] {
        let path = dir.join(&format!("{name}{suffix}"));
        let Ok(metadata) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if metadata.is_dir() || (suffix == ".rs" && !rust_module::is_generated(&path)) {
            continue;
        }
        let _ = std::fs::remove_file(&path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_is_asked_only_when_opted_in_and_never_on_docs_rs() {
        assert!(may_ask_model(false, false));
        assert!(!may_ask_model(true, false));
        assert!(!may_ask_model(false, true));
        assert!(!may_ask_model(true, true));
        let builder = Builder::new("p.appnet");
        assert!(builder.locked, "locked by default");
        assert_eq!(builder.backend, Backend::Rules);
    }
}
