//! An OpenAI-compatible chat client (`POST {base}/chat/completions`), blocking, over rustls.
//! It tolerates what servers leave out or add (no `usage`, an empty `finish_reason`, unknown
//! fields), streams with server-sent events when asked, retries 429, 5xx and broken
//! connections with backoff (honouring `Retry-After`), and never shows the API key: not in
//! errors, not in `Debug`.

use std::fmt;
use std::io::BufReader;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::retry::{Failure, RetryPolicy, parse_retry_after};
use super::sse;
use super::{ClientError, Completion, Finish, Message, Model, Usage};

/// Where and how to reach the model.
#[derive(Clone)]
pub struct ClientConfig {
    /// E.g. `http://127.0.0.1:8080/v1`.
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    pub connect_timeout: Duration,
    /// The whole request, the answer included.
    pub request_timeout: Duration,
    pub stream: bool,
    pub max_tokens: u32,
    pub retry: RetryPolicy,
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<hidden>"))
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct Client {
    http: reqwest::blocking::Client,
    config: ClientConfig,
}

#[derive(Serialize)]
struct Request<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    stream: bool,
    /// Asks for token counts in the last chunk (OpenAI, vLLM and Ollama give them; others
    /// ignore it).
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    max_tokens: u32,
    temperature: f32,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Response {
    choices: Vec<Choice>,
    usage: Option<WireUsage>,
    error: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Choice {
    message: Option<Content>,
    delta: Option<Content>,
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Content {
    content: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

impl WireUsage {
    fn usage(&self) -> Usage {
        Usage {
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
        }
    }
}

fn finish_of(reason: Option<&str>) -> Finish {
    match reason {
        Some("stop") | Some("eos") => Finish::Stop,
        Some("length") => Finish::Length,
        Some("") | None => Finish::Unknown,
        Some(other) => Finish::Other(other.to_string()),
    }
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Client, ClientError> {
        let http = reqwest::blocking::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .build()
            .map_err(|err| ClientError::Setup(err.to_string()))?;
        Ok(Client { http, config })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// One chat completion, with retries. `progress` hears the tokens received so far.
    pub fn complete(
        &self,
        messages: &[Message],
        progress: &mut dyn FnMut(u64),
    ) -> Result<Completion, ClientError> {
        let mut attempt = 0;
        loop {
            match self.try_once(messages, progress) {
                Ok(completion) => return Ok(completion),
                Err((error, failure)) => match self.config.retry.delay(attempt, failure) {
                    Some(delay) => {
                        std::thread::sleep(delay);
                        attempt += 1;
                    }
                    None => return Err(error),
                },
            }
        }
    }

    fn try_once(
        &self,
        messages: &[Message],
        progress: &mut dyn FnMut(u64),
    ) -> Result<Completion, (ClientError, Failure)> {
        let url = format!(
            "{}/chat/completions",
            self.config.base_url.trim_end_matches('/')
        );
        let body = Request {
            model: &self.config.model,
            messages: messages
                .iter()
                .map(|m| WireMessage {
                    role: m.role.name(),
                    content: &m.content,
                })
                .collect(),
            stream: self.config.stream,
            stream_options: self.config.stream.then_some(StreamOptions {
                include_usage: true,
            }),
            max_tokens: self.config.max_tokens,
            temperature: 0.0,
        };
        let mut request = self.http.post(&url).json(&body);
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().map_err(|err| self.transport(err))?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            let body: String = read_capped(response)
                .unwrap_or_default()
                .chars()
                .take(500)
                .collect();
            return Err((
                ClientError::Status {
                    status: status.as_u16(),
                    body,
                },
                Failure::Status {
                    code: status.as_u16(),
                    retry_after,
                },
            ));
        }
        // A server that does not stream answers a streamed request in one piece.
        let event_stream = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let completion = if self.config.stream && event_stream {
            self.read_stream(response, progress)?
        } else {
            let text = read_capped(response).map_err(|err| match err {
                Capped::Io(err) => self.transport_io(err),
                Capped::TooLarge => not_retried(too_large()),
            })?;
            parse_whole(&text).map_err(not_retried)?
        };
        Ok(completion)
    }

    fn read_stream(
        &self,
        response: reqwest::blocking::Response,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Completion, (ClientError, Failure)> {
        let mut reader = sse::Reader::new(BufReader::new(response));
        let mut content = String::new();
        let mut finish = Finish::Unknown;
        let mut usage = None;
        let mut chunks = 0;
        loop {
            let event = reader.next_event().map_err(|err| self.transport_io(err))?;
            match event {
                Some(sse::Event::Done) => break,
                // A stream cut before `[DONE]` with no finish reason (llama.cpp's server
                // does that when the prompt exceeds its context) is no answer at all.
                None if finish == Finish::Unknown => {
                    return Err(not_retried(ClientError::Decode(
                        "the stream ended before the answer did (no [DONE], no finish reason)"
                            .to_string(),
                    )));
                }
                None => break,
                Some(sse::Event::Error(data)) => return Err(not_retried(ClientError::Api(data))),
                Some(sse::Event::Data(data)) => {
                    let chunk: Response = serde_json::from_str(&data)
                        .map_err(|err| not_retried(ClientError::Decode(err.to_string())))?;
                    if let Some(error) = chunk.error {
                        return Err(not_retried(ClientError::Api(error.to_string())));
                    }
                    if let Some(u) = &chunk.usage {
                        usage = Some(u.usage());
                    }
                    for choice in chunk.choices.into_iter().take(1) {
                        if let Some(text) = choice.delta.and_then(|d| d.content) {
                            content.push_str(&text);
                            if content.len() > MAX_ANSWER_BYTES {
                                return Err(not_retried(too_large()));
                            }
                            chunks += 1;
                            progress(chunks);
                        }
                        if let Some(reason) =
                            choice.finish_reason.as_deref().filter(|r| !r.is_empty())
                        {
                            finish = finish_of(Some(reason));
                        }
                    }
                }
            }
        }
        Ok(Completion {
            content,
            finish,
            usage,
        })
    }

    fn transport_io(&self, err: std::io::Error) -> (ClientError, Failure) {
        if err.kind() == std::io::ErrorKind::TimedOut {
            (
                ClientError::Timeout(self.config.request_timeout),
                Failure::Timeout,
            )
        } else {
            (
                ClientError::Connection(err.to_string()),
                Failure::Connection,
            )
        }
    }

    fn transport(&self, err: reqwest::Error) -> (ClientError, Failure) {
        if err.is_timeout() {
            (
                ClientError::Timeout(self.config.request_timeout),
                Failure::Timeout,
            )
        } else {
            // Without the URL's query or anything a key could be in: reqwest's message
            // names the host only.
            (
                ClientError::Connection(err.without_url().to_string()),
                Failure::Connection,
            )
        }
    }
}

impl Model for Client {
    fn complete(
        &self,
        messages: &[Message],
        progress: &mut dyn FnMut(u64),
    ) -> Result<Completion, ClientError> {
        Client::complete(self, messages, progress)
    }
}

/// A hostile server's answer is read no further than this (a screened program is far
/// smaller: `screen::MAX_BYTES`).
pub const MAX_ANSWER_BYTES: usize = 32 << 20;

fn too_large() -> ClientError {
    ClientError::Decode(format!(
        "the answer is larger than {MAX_ANSWER_BYTES} bytes"
    ))
}

/// A failure that trying again would repeat.
fn not_retried(err: ClientError) -> (ClientError, Failure) {
    (
        err,
        Failure::Status {
            code: 200,
            retry_after: None,
        },
    )
}

enum Capped {
    Io(std::io::Error),
    TooLarge,
}

fn read_capped(response: reqwest::blocking::Response) -> Result<String, Capped> {
    use std::io::Read;
    let mut bytes = Vec::new();
    response
        .take(MAX_ANSWER_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(Capped::Io)?;
    if bytes.len() > MAX_ANSWER_BYTES {
        return Err(Capped::TooLarge);
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A non-streamed answer.
fn parse_whole(text: &str) -> Result<Completion, ClientError> {
    let response: Response =
        serde_json::from_str(text).map_err(|err| ClientError::Decode(err.to_string()))?;
    if let Some(error) = response.error {
        return Err(ClientError::Api(error.to_string()));
    }
    let choice = response
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| ClientError::Decode("the answer has no choices".to_string()))?;
    Ok(Completion {
        content: choice.message.and_then(|m| m.content).unwrap_or_default(),
        finish: finish_of(choice.finish_reason.as_deref()),
        usage: response.usage.map(|u| u.usage()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_of_different_servers_are_read() {
        // OpenAI, with usage and unknown fields.
        let openai = r#"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop","logprobs":null}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7},"system_fingerprint":"y"}"#;
        let c = parse_whole(openai).unwrap();
        assert_eq!(c.content, "hi");
        assert_eq!(c.finish, Finish::Stop);
        assert_eq!(c.usage.unwrap().completion_tokens, Some(2));
        // A server without usage and with an empty finish reason.
        let bare = r#"{"choices":[{"message":{"content":"x"},"finish_reason":""}]}"#;
        let c = parse_whole(bare).unwrap();
        assert_eq!((c.finish, c.usage), (Finish::Unknown, None));
        // Truncated.
        let cut = r#"{"choices":[{"message":{"content":"```c\nint"},"finish_reason":"length"}]}"#;
        assert_eq!(parse_whole(cut).unwrap().finish, Finish::Length);
        // An error object.
        assert!(matches!(
            parse_whole(r#"{"error":{"message":"no"}}"#),
            Err(ClientError::Api(_))
        ));
        assert!(matches!(
            parse_whole("not json"),
            Err(ClientError::Decode(_))
        ));
    }

    #[test]
    fn the_key_never_shows() {
        let config = ClientConfig {
            base_url: "http://127.0.0.1:1/v1".to_string(),
            model: "m".to_string(),
            api_key: Some("sk-secret-123".to_string()),
            connect_timeout: Duration::from_millis(200),
            request_timeout: Duration::from_millis(500),
            stream: false,
            max_tokens: 10,
            retry: RetryPolicy {
                retries: 0,
                ..RetryPolicy::default()
            },
        };
        assert!(!format!("{config:?}").contains("sk-secret"));
        let client = Client::new(config).unwrap();
        let error = client
            .complete(
                &[Message {
                    role: super::super::Role::User,
                    content: "x".to_string(),
                }],
                &mut |_| {},
            )
            .unwrap_err();
        assert!(!error.to_string().contains("sk-secret"), "{error}");
        assert!(matches!(error, ClientError::Connection(_)), "{error}");
    }
}
