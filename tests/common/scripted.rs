//! A scripted OpenAI-compatible server on 127.0.0.1: real HTTP over a real socket, answering
//! `POST /v1/chat/completions` from a script, one reply per request, and recording every
//! request's JSON body so a test can read the prompts the model was sent.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::{Value as Json, json};

/// The API key the scripted tests give simplebpf, which must never show up in its output.
pub const TEST_KEY: &str = "sk-test-never-shown";

/// Runs the simplebpf binary in `dir` as a user with a key but no server configured in the
/// environment: the test names the server on the command line.
pub fn simplebpf(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_simplebpf"))
        .args(args)
        .current_dir(dir)
        .env_remove("SIMPLEBPF_LLM_URL")
        .env_remove("SIMPLEBPF_LLM_MODEL")
        .env("SIMPLEBPF_LLM_API_KEY", TEST_KEY)
        .output()
        .expect("simplebpf runs")
}

/// One reply.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A whole JSON answer with an HTTP status and extra headers.
    Json {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Server-sent events: each string is one `data:` payload; `[DONE]` is added.
    Stream { events: Vec<String> },
    /// Read the request, then never answer.
    Silence,
}

impl Reply {
    /// A complete answer with `content`, non-streamed.
    pub fn answer(content: &str) -> Reply {
        Reply::finished(content, "stop")
    }

    pub fn finished(content: &str, finish: &str) -> Reply {
        Reply::Json {
            status: 200,
            headers: Vec::new(),
            body: json!({
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "choices": [{ "index": 0, "message": { "role": "assistant", "content": content }, "finish_reason": finish }],
                "usage": { "prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200 },
            })
            .to_string(),
        }
    }

    /// An answer with a fenced C block.
    pub fn c(program: &str) -> Reply {
        Reply::answer(&format!("Here is the program.\n```c\n{program}```\n"))
    }

    /// The same answer streamed in small chunks, as llama.cpp's server sends it (no usage).
    pub fn streamed_c(program: &str) -> Reply {
        let content = format!("```c\n{program}```\n");
        let chars: Vec<char> = content.chars().collect();
        let mut events: Vec<String> = chars
            .chunks(17)
            .map(|chunk| {
                let text: String = chunk.iter().collect();
                json!({ "choices": [{ "index": 0, "delta": { "content": text }, "finish_reason": null }] })
                    .to_string()
            })
            .collect();
        events.push(
            json!({ "choices": [{ "index": 0, "delta": {}, "finish_reason": "stop" }] })
                .to_string(),
        );
        Reply::Stream { events }
    }

    pub fn status(status: u16, headers: &[(&str, &str)]) -> Reply {
        Reply::Json {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: json!({ "error": { "message": "scripted failure" } }).to_string(),
        }
    }
}

#[derive(Debug)]
pub struct ScriptedServer {
    pub url: String,
    address: std::net::SocketAddr,
    requests: Arc<Mutex<Vec<Json>>>,
    stopped: Arc<AtomicBool>,
}

impl ScriptedServer {
    pub fn start(script: Vec<Reply>) -> ScriptedServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&requests);
        let address = listener.local_addr().unwrap();
        let stopped = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&stopped);
        thread::spawn(move || {
            let mut script = script.into_iter();
            let mut silent = Vec::new();
            for stream in listener.incoming() {
                // Leaving the loop closes the listening socket: connections are refused.
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let Some(body) = read_request(&mut stream) else {
                    continue;
                };
                recorded.lock().unwrap().push(body);
                match script.next() {
                    Some(Reply::Silence) => silent.push(stream),
                    Some(reply) => write_reply(&mut stream, &reply),
                    None => write_reply(&mut stream, &Reply::status(599, &[])),
                }
            }
        });
        ScriptedServer {
            url,
            address,
            requests,
            stopped,
        }
    }

    /// Closes the server: later connections are refused.
    pub fn stop(&self) {
        if !self.stopped.swap(true, Ordering::SeqCst) {
            // Wakes the accept loop so it sees the flag.
            let _ = TcpStream::connect(self.address);
            while TcpStream::connect(self.address).is_ok() {
                thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// The JSON bodies received so far.
    pub fn requests(&self) -> Vec<Json> {
        self.requests.lock().unwrap().clone()
    }

    /// The messages of request `i` (0-based).
    pub fn messages(&self, i: usize) -> Vec<(String, String)> {
        self.requests()[i]["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| {
                (
                    m["role"].as_str().unwrap().to_string(),
                    m["content"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// The last user message of request `i`.
    pub fn last_user(&self, i: usize) -> String {
        self.messages(i)
            .into_iter()
            .rev()
            .find(|(role, _)| role == "user")
            .map(|(_, content)| content)
            .unwrap_or_default()
    }
}

fn read_request(stream: &mut TcpStream) -> Option<Json> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

fn write_reply(stream: &mut TcpStream, reply: &Reply) {
    let reason = |status: u16| match status {
        200 => "OK",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        _ => "Scripted",
    };
    let result = match reply {
        Reply::Json {
            status,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                reason(*status),
                body.len()
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            stream
                .write_all(head.as_bytes())
                .and_then(|_| stream.write_all(body.as_bytes()))
        }
        Reply::Stream { events } => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n: keep-alive comment\n\n";
            // One write per event, so the client reads the stream in pieces.
            let mut result = stream.write_all(head.as_bytes());
            for event in events.iter().map(String::as_str).chain(["[DONE]"]) {
                result = result
                    .and_then(|_| stream.write_all(format!("data: {event}\n\n").as_bytes()))
                    .and_then(|_| stream.flush());
            }
            result
        }
        Reply::Silence => Ok(()),
    };
    let _ = result.and_then(|_| stream.flush());
}
