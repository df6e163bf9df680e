//! The screen for C that an LLM wrote (hostile input), run before clang sees it. Its job is
//! narrow: nothing from this machine may reach the model through clang's messages (no file
//! but the allowed headers is ever opened), and nothing runs at compile time. What the
//! program *does* is the checker's to decide.
//!
//! Allowed: `#include <linux/...>` and `<bpf/...>` headers from a list; `#define`, `#undef`,
//! `#if`, `#ifdef`, `#ifndef`, `#elif`, `#else`, `#endif`, `#pragma unroll`; `asm` only as the
//! empty register barrier `asm volatile("" : "+r"(x))`; sections only those of the contract.
//! Everything else that could open a file or emit instructions — quoted or absolute includes,
//! `#embed`, `#line`, `__has_include`, `_Pragma`, digraph and trigraph directives — is refused.

/// Answers larger than this are refused before anything else looks at them.
pub const MAX_BYTES: usize = 64 * 1024;

/// Headers an answer may include.
pub const ALLOWED_HEADERS: &[&str] = &[
    "linux/bpf.h",
    "linux/if_ether.h",
    "linux/in.h",
    "linux/ip.h",
    "linux/ipv6.h",
    "linux/udp.h",
    "linux/tcp.h",
    "linux/types.h",
    "linux/pkt_cls.h",
    "bpf/bpf_helpers.h",
    "bpf/bpf_endian.h",
];

/// Why an answer was refused, with the 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScreenError {
    #[error("the program is {bytes} bytes; at most {MAX_BYTES} are accepted")]
    TooLarge { bytes: usize },
    #[error(
        "line {line}: `#include {header}` is not allowed (only <linux/...> and <bpf/...> headers from the allowed list)"
    )]
    Include { line: usize, header: String },
    #[error("line {line}: the directive `#{directive}` is not allowed")]
    Directive { line: usize, directive: String },
    #[error("line {line}: `{word}` is not allowed")]
    Forbidden { line: usize, word: String },
    #[error(
        "line {line}: inline assembly that emits instructions is not allowed (only the empty barrier `asm volatile(\"\" : \"+r\"(x))`)"
    )]
    Asm { line: usize },
    #[error(
        "line {line}: the section \"{section}\" is not allowed (xdp, license, .maps, .bss, .data, .rodata and .data.<name> / .bss.<name> are)"
    )]
    Section { line: usize, section: String },
}

/// Checks an answer's C; `Ok` means clang may compile it (in its sandbox).
pub fn screen(c: &str) -> Result<(), ScreenError> {
    if c.len() > MAX_BYTES {
        return Err(ScreenError::TooLarge { bytes: c.len() });
    }
    let tokens = lex(c);
    directives(c)?;
    // Token pasting could build a forbidden word (`_ ## Pragma`) the scan below never sees.
    if let Some(line) = tokens.windows(2).find_map(|pair| match pair {
        [Token::Punct('#', line), Token::Punct('#', _)] => Some(*line),
        _ => None,
    }) {
        return Err(ScreenError::Forbidden {
            line,
            word: "##".to_string(),
        });
    }
    for (index, token) in tokens.iter().enumerate() {
        let Token::Word(word, line) = token else {
            continue;
        };
        let line = *line;
        match word.as_str() {
            "_Pragma" | "__has_include" | "__has_include_next" | "__has_embed" | "__FILE__"
            | "__BASE_FILE__" | "__FILE_NAME__" | "__TIMESTAMP__" => {
                return Err(ScreenError::Forbidden {
                    line,
                    word: word.clone(),
                });
            }
            "asm" | "__asm__" | "__asm" => check_asm(&tokens[index + 1..], line)?,
            "SEC" | "section" | "__section__" => check_section(&tokens[index + 1..], line)?,
            _ => {}
        }
    }
    Ok(())
}

fn directives(c: &str) -> Result<(), ScreenError> {
    let mut continued = false;
    for (index, raw) in c.lines().enumerate() {
        let line = index + 1;
        let text = raw.trim_start();
        let was_continued = continued;
        continued = text.ends_with('\\');
        if was_continued {
            continue;
        }
        if text.starts_with("%:") || text.starts_with("??=") {
            return Err(ScreenError::Directive {
                line,
                directive: text.chars().take(3).collect(),
            });
        }
        let Some(rest) = text.strip_prefix('#') else {
            continue;
        };
        let rest = rest.trim_start();
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let argument = rest[name.len()..].trim();
        match name.as_str() {
            "" if argument.is_empty() => {}
            "include" => {
                let header = argument
                    .strip_prefix('<')
                    .and_then(|h| h.split_once('>'))
                    .map(|(h, after)| (h, after.trim()));
                match header {
                    Some((h, after))
                        if ALLOWED_HEADERS.contains(&h)
                            && (after.is_empty()
                                || after.starts_with("//")
                                || after.starts_with("/*")) => {}
                    _ => {
                        return Err(ScreenError::Include {
                            line,
                            header: argument.to_string(),
                        });
                    }
                }
            }
            "define" | "undef" | "if" | "ifdef" | "ifndef" | "elif" | "else" | "endif" => {}
            "pragma"
                if argument == "unroll"
                    || argument.starts_with("unroll ")
                    || argument.starts_with("unroll(") => {}
            other => {
                return Err(ScreenError::Directive {
                    line,
                    directive: if other.is_empty() {
                        argument.to_string()
                    } else {
                        format!("{other} {argument}").trim().to_string()
                    },
                });
            }
        }
    }
    Ok(())
}

/// `asm [volatile] ( "" ...)`: the template must be empty.
fn check_asm(after: &[Token], line: usize) -> Result<(), ScreenError> {
    let mut rest = after.iter().skip_while(|t| {
        matches!(t, Token::Word(w, _) if w == "volatile" || w == "__volatile__" || w == "__volatile" || w == "goto" || w == "inline")
    });
    match (rest.next(), rest.next()) {
        (Some(Token::Punct('(', _)), Some(Token::Str(template, _))) if template.is_empty() => {
            // The template may be followed by more string pieces; they must be empty too.
            for token in rest {
                match token {
                    Token::Str(piece, _) if piece.is_empty() => continue,
                    Token::Str(_, _) => return Err(ScreenError::Asm { line }),
                    _ => break,
                }
            }
            Ok(())
        }
        _ => Err(ScreenError::Asm { line }),
    }
}

/// `SEC("name")` / `section("name")`: one of the contract's sections.
fn check_section(after: &[Token], line: usize) -> Result<(), ScreenError> {
    let mut rest = after
        .iter()
        .skip_while(|t| matches!(t, Token::Punct('(', _)));
    let Some(Token::Str(section, _)) = rest.next() else {
        // `SEC` as a macro definition's name or parameter, not a use.
        return Ok(());
    };
    let allowed = ["xdp", "license", ".maps", ".bss", ".data", ".rodata"]
        .contains(&section.as_str())
        || section.strip_prefix(".data.").is_some_and(valid_name)
        || section.strip_prefix(".bss.").is_some_and(valid_name);
    if allowed {
        Ok(())
    } else {
        Err(ScreenError::Section {
            line,
            section: section.clone(),
        })
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String, usize),
    Str(String, usize),
    Punct(char, usize),
}

/// Words, string literals and punctuation with their lines; comments and character literals
/// are skipped (a directive or a word inside a comment is not one).
fn lex(c: &str) -> Vec<Token> {
    let chars: Vec<char> = c.chars().collect();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        match ch {
            '\n' => {
                line += 1;
                i += 1;
            }
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
                i += 2;
            }
            '"' | '\'' => {
                let quote = ch;
                let start = line;
                let mut text = String::new();
                i += 1;
                while i < chars.len() && chars[i] != quote {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        text.push(chars[i]);
                        i += 1;
                    }
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    text.push(chars[i]);
                    i += 1;
                }
                i += 1;
                if quote == '"' {
                    tokens.push(Token::Str(text, start));
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut word = String::new();
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    word.push(chars[i]);
                    i += 1;
                }
                tokens.push(Token::Word(word, line));
            }
            c if c.is_whitespace() => i += 1,
            c => {
                tokens.push(Token::Punct(c, line));
                i += 1;
            }
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n#define LIMIT 100\n#ifndef X\n#endif\n#pragma unroll\nstruct { __uint(type, BPF_MAP_TYPE_HASH); } m SEC(\".maps\");\n__s64 tokens SEC(\".data.rl\");\nSEC(\"xdp\") int p(struct xdp_md *ctx) {\n\tint x = 1;\n\tasm volatile(\"\" : \"+r\"(x));\n\t// #include \"/etc/shadow\" in a comment is nothing\n\treturn 2;\n}\nchar LICENSE[] SEC(\"license\") = \"GPL\";\n";

    #[test]
    fn a_well_behaved_program_passes() {
        assert_eq!(screen(GOOD), Ok(()));
    }

    #[track_caller]
    fn refused(c: &str, expected: ScreenError) {
        assert_eq!(screen(&format!("{GOOD}{c}")), Err(expected));
    }

    #[test]
    fn includes_other_than_the_allowed_headers_are_refused() {
        let line = GOOD.lines().count() + 1;
        for header in [
            "\"common.h\"",
            "</etc/shadow>",
            "<linux/../../etc/shadow>",
            "<stdio.h>",
        ] {
            refused(
                &format!("#include {header}\n"),
                ScreenError::Include {
                    line,
                    header: header.to_string(),
                },
            );
        }
    }

    #[test]
    fn directives_that_open_files_or_steer_clang_are_refused() {
        let line = GOOD.lines().count() + 1;
        for (text, directive) in [
            ("#embed \"/etc/shadow\"\n", "embed \"/etc/shadow\""),
            ("#line 1 \"x\"\n", "line 1 \"x\""),
            (
                "#pragma clang diagnostic push\n",
                "pragma clang diagnostic push",
            ),
            ("#error no\n", "error no"),
            ("%:include <linux/bpf.h>\n", "%:i"),
        ] {
            refused(
                text,
                ScreenError::Directive {
                    line,
                    directive: directive.to_string(),
                },
            );
        }
    }

    #[test]
    fn probing_words_are_refused() {
        let line = GOOD.lines().count() + 1;
        for word in ["__has_include", "_Pragma", "__FILE__", "__TIMESTAMP__"] {
            refused(
                &format!("int v = {word}(\"x\");\n"),
                ScreenError::Forbidden {
                    line,
                    word: word.to_string(),
                },
            );
        }
    }

    #[test]
    fn token_pasting_is_refused() {
        let line = GOOD.lines().count() + 1;
        refused(
            "#define P(x) _ ## Pragma(x)\n",
            ScreenError::Forbidden {
                line,
                word: "##".to_string(),
            },
        );
    }

    #[test]
    fn only_the_empty_asm_barrier_is_allowed() {
        let line = GOOD.lines().count() + 1;
        refused(
            "void f(void) { asm volatile(\"r0 = 0\"); }\n",
            ScreenError::Asm { line },
        );
        refused(
            "void f(void) { __asm__(\"exit\"); }\n",
            ScreenError::Asm { line },
        );
        refused(
            "void f(void) { asm(\"\" \"call 1\"); }\n",
            ScreenError::Asm { line },
        );
        assert_eq!(
            screen(&format!(
                "{GOOD}void f(int x) {{ __asm__ __volatile__(\"\" : \"+r\"(x)); }}\n"
            )),
            Ok(())
        );
    }

    #[test]
    fn sections_outside_the_contract_are_refused() {
        let line = GOOD.lines().count() + 1;
        refused(
            "int x SEC(\"kprobe/sys_open\");\n",
            ScreenError::Section {
                line,
                section: "kprobe/sys_open".to_string(),
            },
        );
        refused(
            "int x __attribute__((section(\".text.evil\")));\n",
            ScreenError::Section {
                line,
                section: ".text.evil".to_string(),
            },
        );
    }

    #[test]
    fn a_huge_answer_is_refused_first() {
        let huge = "a".repeat(MAX_BYTES + 1);
        assert_eq!(
            screen(&huge),
            Err(ScreenError::TooLarge {
                bytes: MAX_BYTES + 1
            })
        );
    }
}
