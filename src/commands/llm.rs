//! The LLM backend's flags, its client (when this simplebpf has the feature `llm`), and the
//! progress line on a terminal.

use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use clap::Args;
use simplebpf_compiler::llm::Model;
use simplebpf_optimizer::llm::{Conversations, Observer, Round};

use crate::backend::{Fallback, LlmSettings, LockMode};
use crate::lock::Lock;
use crate::pipeline::{self, BuildError, BuildOptions, Built};

/// Who writes the C.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum BackendArg {
    /// The deterministic rules backend.
    #[default]
    Rules,
    /// An OpenAI-compatible model; every answer is proven or discarded.
    Llm,
}

#[derive(Debug, Clone, Args)]
pub struct LlmArgs {
    /// The OpenAI-compatible server's base URL (`/chat/completions` is appended), e.g.
    /// http://127.0.0.1:8080/v1. The API key, if the server needs one, is read from
    /// SIMPLEBPF_LLM_API_KEY or OPENAI_API_KEY and never printed.
    #[arg(long, value_name = "URL", env = "SIMPLEBPF_LLM_URL")]
    pub llm_url: Option<String>,
    /// The model's name, as the server knows it.
    #[arg(long, value_name = "NAME", env = "SIMPLEBPF_LLM_MODEL")]
    pub llm_model: Option<String>,
    /// Answers per conversation: each rejection (clang's errors, the verifier's log, the
    /// counterexample) is the next prompt.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=20))]
    pub rounds: u16,
    /// Independent conversations; the cheapest proven program is kept.
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=20))]
    pub samples: u16,
    /// When no answer is proven: `rules` keeps the rules backend's program (and says so),
    /// `none` fails and writes nothing.
    #[arg(long, value_enum, default_value_t, value_name = "WHAT")]
    pub fallback: Fallback,
    /// Never ask the model: use the policy's lockfile (<policy>.lock), or fail if it is
    /// missing or stale. For CI and build scripts.
    #[arg(long, conflicts_with = "update_lock")]
    pub locked: bool,
    /// Ask the model even when a fresh lockfile exists, and replace it.
    #[arg(long)]
    pub update_lock: bool,
    /// Seconds one request may take, the answer included.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub llm_timeout: u64,
    /// The most tokens an answer may have (a longer one is truncated and rejected).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_TOKENS, value_parser = clap::value_parser!(u32).range(64..=65536))]
    pub llm_max_tokens: u32,
    /// Ask for the answer as a stream (server-sent events) or in one piece.
    #[arg(long, value_name = "BOOL", default_value_t = DEFAULT_STREAM, action = clap::ArgAction::Set)]
    pub llm_stream: bool,
}

impl LlmArgs {
    pub fn settings(&self, policy: &Path) -> LlmSettings {
        LlmSettings {
            url: self.llm_url.clone(),
            model: self.llm_model.clone(),
            conversations: Conversations {
                rounds: usize::from(self.rounds),
                samples: usize::from(self.samples),
            },
            fallback: self.fallback,
            lock: if self.locked {
                LockMode::Locked
            } else if self.update_lock {
                LockMode::Update
            } else {
                LockMode::Use
            },
            lock_path: Lock::path_for(policy),
        }
    }

    /// The HTTP client, or why there is none.
    #[cfg(feature = "llm")]
    pub fn client(&self) -> Result<simplebpf_compiler::llm::client::Client, String> {
        let url = self
            .llm_url
            .clone()
            .ok_or("--backend llm and --llm-optimize need the server's URL: --llm-url or SIMPLEBPF_LLM_URL")?;
        let model = self
            .llm_model
            .clone()
            .ok_or("--backend llm and --llm-optimize need the model's name: --llm-model or SIMPLEBPF_LLM_MODEL")?;
        client(ClientChoice {
            url,
            model,
            request_timeout: Duration::from_secs(self.llm_timeout),
            stream: self.llm_stream,
            max_tokens: self.llm_max_tokens,
        })
    }
}

/// `--llm-max-tokens` when not given.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// `--llm-timeout` when not given, in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 300;

/// `--llm-stream` when not given.
pub const DEFAULT_STREAM: bool = true;

/// Where the API key is read from: the first of these that is set and not empty.
pub const API_KEY_ENV: [&str; 2] = ["SIMPLEBPF_LLM_API_KEY", "OPENAI_API_KEY"];

/// What a client is for: the server, the model and how to ask.
#[derive(Debug, Clone)]
pub struct ClientChoice {
    pub url: String,
    pub model: String,
    pub request_timeout: Duration,
    pub stream: bool,
    pub max_tokens: u32,
}

impl ClientChoice {
    /// `--llm-timeout`, `--llm-max-tokens` and streaming at their defaults.
    pub fn new(url: String, model: String) -> ClientChoice {
        ClientChoice {
            url,
            model,
            request_timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            stream: DEFAULT_STREAM,
            max_tokens: DEFAULT_MAX_TOKENS,
        }
    }
}

/// The HTTP client, with the API key from the environment.
#[cfg(feature = "llm")]
pub fn client(choice: ClientChoice) -> Result<simplebpf_compiler::llm::client::Client, String> {
    use simplebpf_compiler::llm::client::{Client, ClientConfig};
    let api_key = API_KEY_ENV
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|key| !key.is_empty()));
    Client::new(ClientConfig {
        base_url: choice.url,
        model: choice.model,
        api_key,
        connect_timeout: Duration::from_secs(10),
        request_timeout: choice.request_timeout,
        stream: choice.stream,
        max_tokens: choice.max_tokens,
        retry: Default::default(),
    })
    .map_err(|err| err.to_string())
}

/// The LLM backend's build (`pipeline::build_llm`) with the progress line: `model` is the
/// client, or why there is none. `simplebpf build` and `simplebpf::Builder` both call it.
pub fn build_with_progress(
    name: &str,
    source: &[u8],
    options: &BuildOptions,
    settings: &LlmSettings,
    model: Result<&dyn Model, String>,
) -> Result<Built, BuildError> {
    let mut progress = Progress::new(settings.conversations);
    pipeline::build_llm(
        name,
        source,
        options,
        pipeline::LlmRun {
            settings,
            model,
            observer: &mut progress,
        },
    )
}

/// The progress line: round, chunks so far, elapsed; a line per finished answer. Nothing
/// when standard error is not a terminal.
#[derive(Debug)]
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    rounds: usize,
    samples: usize,
    round: usize,
    sample: usize,
    started: Instant,
}

impl Progress {
    pub fn new(conversations: Conversations) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            rounds: conversations.rounds,
            samples: conversations.samples,
            round: 0,
            sample: 0,
            started: Instant::now(),
        }
    }

    fn position(&self) -> String {
        if self.samples > 1 {
            format!(
                "sample {}/{} round {}/{}",
                self.sample, self.samples, self.round, self.rounds
            )
        } else {
            format!("round {}/{}", self.round, self.rounds)
        }
    }
}

impl Observer for Progress {
    fn round_started(&mut self, sample: usize, round: usize) {
        self.sample = sample;
        self.round = round;
        self.started = Instant::now();
        if let Some(bar) = &self.bar {
            bar.set_message(format!("llm {}: waiting for the model", self.position()));
        }
    }

    fn received(&mut self, chunks: u64) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!(
                "llm {}: {chunks} tokens, {:.1} s",
                self.position(),
                self.started.elapsed().as_secs_f64()
            ));
        }
    }

    fn round_ended(&mut self, round: &Round) {
        if let Some(bar) = &self.bar {
            bar.println(format!(
                "llm {}: {} ({:.1} s)",
                self.position(),
                round.outcome.name(),
                round.ms as f64 / 1000.0
            ));
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
