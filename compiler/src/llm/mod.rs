//! The LLM backend's pieces that need no network: the prompt (templates in the repository,
//! the policy, its IR, exact facts about its floats, retrieved example pairs), the screen for
//! the C that comes back, and reading the answer. The HTTP client (`client`, `sse`) is behind
//! the cargo feature `llm`, so a build script that never asks for a model compiles no HTTP
//! stack.

use std::time::Duration;

pub mod answer;
pub mod prompt;
pub mod retry;
pub mod screen;

#[cfg(feature = "llm")]
pub mod client;
#[cfg(feature = "llm")]
pub mod sse;

/// Who says a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

/// Why a model stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    Stop,
    /// Cut at the token limit: the answer is truncated, not code.
    Length,
    /// The server did not say (some send an empty reason).
    Unknown,
    Other(String),
}

/// Token counts, when the server gives them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
}

/// One answer of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub content: String,
    pub finish: Finish,
    pub usage: Option<Usage>,
}

/// Why a model gave no answer (after the retries).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("the server answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("cannot reach the server: {0}")]
    Connection(String),
    #[error("the server did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the server's answer cannot be read: {0}")]
    Decode(String),
    #[error("the server reported an error: {0}")]
    Api(String),
    #[error("the HTTP client cannot be set up: {0}")]
    Setup(String),
}

/// A chat model: one completion of a conversation. The HTTP client (`client::Client`, behind
/// the feature `llm`) is one; tests may script another.
pub trait Model {
    /// `progress` hears the number of chunks received so far (streaming only).
    fn complete(
        &self,
        messages: &[Message],
        progress: &mut dyn FnMut(u64),
    ) -> Result<Completion, ClientError>;
}
