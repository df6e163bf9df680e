//! Reading a model's answer: the one fenced C block it must hold.

/// What an answer gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// The C of the first fenced block tagged `c` (or untagged, when none is tagged).
    Found(String),
    /// No fenced code block at all.
    None,
}

/// The C program in a model's answer.
pub fn extract(answer: &str) -> Code {
    let mut blocks: Vec<(String, String)> = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in answer.lines() {
        let trimmed = line.trim_start();
        if let Some(tag) = trimmed.strip_prefix("```") {
            match current.take() {
                Some(block) => blocks.push(block),
                None => current = Some((tag.trim().to_ascii_lowercase(), String::new())),
            }
            continue;
        }
        if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    let tagged = blocks
        .iter()
        .find(|(tag, _)| tag == "c" || tag == "cpp" || tag == "c++");
    match tagged.or_else(|| blocks.iter().find(|(tag, _)| tag.is_empty())) {
        Some((_, body)) if !body.trim().is_empty() => Code::Found(body.clone()),
        _ => Code::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_c_block_is_taken() {
        let answer = "Here it is:\n```text\nnot this\n```\n```c\nint x;\n```\ndone";
        assert_eq!(extract(answer), Code::Found("int x;\n".to_string()));
        assert_eq!(
            extract("```\nint y;\n```"),
            Code::Found("int y;\n".to_string())
        );
    }

    #[test]
    fn no_block_or_an_unclosed_one_is_no_code() {
        assert_eq!(extract("I cannot do that."), Code::None);
        assert_eq!(extract("```c\nint x;"), Code::None);
        assert_eq!(extract("```c\n```"), Code::None);
    }
}
