//! Server-sent events, read line by line (a streamed chat completion): `data:` lines (joined
//! when an event has several), `[DONE]`, `:` keep-alive comments, `event: error`.

use std::io::BufRead;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Data(String),
    /// `data: [DONE]`: the stream is over.
    Done,
    /// An `error` event, with its data.
    Error(String),
}

/// Reads events from a stream; `None` at its end.
#[derive(Debug)]
pub struct Reader<R> {
    input: R,
}

impl<R: BufRead> Reader<R> {
    pub fn new(input: R) -> Reader<R> {
        Reader { input }
    }

    pub fn next_event(&mut self) -> std::io::Result<Option<Event>> {
        let mut data: Vec<String> = Vec::new();
        let mut kind = String::new();
        let mut line = String::new();
        loop {
            line.clear();
            if self.input.read_line(&mut line)? == 0 {
                return Ok(finish(&kind, data));
            }
            let text = line.trim_end_matches(['\n', '\r']);
            if text.is_empty() {
                // A blank line ends an event (if it had anything).
                if let Some(event) = finish(&kind, std::mem::take(&mut data)) {
                    return Ok(Some(event));
                }
                kind.clear();
                continue;
            }
            if text.starts_with(':') {
                continue;
            }
            let (field, value) = match text.split_once(':') {
                Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
                None => (text, ""),
            };
            match field {
                "data" => data.push(value.to_string()),
                "event" => kind = value.to_string(),
                _ => {}
            }
        }
    }
}

fn finish(kind: &str, data: Vec<String>) -> Option<Event> {
    if data.is_empty() {
        return None;
    }
    let data = data.join("\n");
    Some(if kind == "error" {
        Event::Error(data)
    } else if data.trim() == "[DONE]" {
        Event::Done
    } else {
        Event::Data(data)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out a few bytes at a time, as a network does.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(self.bytes.len()).min(buf.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    fn events(text: &str, step: usize) -> Vec<Event> {
        let mut reader = Reader::new(std::io::BufReader::with_capacity(
            3,
            Trickle {
                bytes: text.as_bytes(),
                step,
            },
        ));
        let mut out = Vec::new();
        while let Some(event) = reader.next_event().unwrap() {
            out.push(event);
        }
        out
    }

    #[test]
    fn data_comments_done_and_errors() {
        let stream = ": keep-alive\r\n\r\ndata: {\"a\":1}\n\ndata: one\ndata: two\n\nevent: error\ndata: {\"message\":\"overloaded\"}\n\ndata: [DONE]\n\n";
        let expected = vec![
            Event::Data("{\"a\":1}".to_string()),
            Event::Data("one\ntwo".to_string()),
            Event::Error("{\"message\":\"overloaded\"}".to_string()),
            Event::Done,
        ];
        for step in [1, 2, 7, 1000] {
            assert_eq!(events(stream, step), expected, "chunks of {step}");
        }
    }

    #[test]
    fn a_stream_cut_short_still_gives_its_last_event() {
        assert_eq!(
            events("data: partial", 4),
            vec![Event::Data("partial".to_string())]
        );
        assert_eq!(events("", 4), vec![]);
    }
}
