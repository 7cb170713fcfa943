//! The chat alias grammar: parses an alias `format` such as
//! `logs {host} [lines={lines}]` into words, typed captures and optional
//! groups, and checks it against the action's parameters. Matching chat text
//! against formats is done by [`crate::command`].
//!
//! Grammar: words are separated by spaces; `{name}` captures a parameter (a
//! word may mix literal text and one capture, as in `lines={lines}`); `[ … ]`
//! makes its contents optional and may nest. A format has at most
//! [`MAX_VARIANTS`] combinations of its optional groups.

use std::collections::BTreeSet;

/// Most combinations of optional groups one format may have (six independent
/// groups); rarely used parameters can be given as `key=value` instead.
pub const MAX_VARIANTS: usize = 64;

/// A piece of a word: literal text or a parameter capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Literal(String),
    Capture(String),
}

/// A part of a format: one word, or an optional group of parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Word(Vec<Piece>),
    Optional(Vec<Part>),
}

/// A parsed alias format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasFormat {
    pub text: String,
    pub parts: Vec<Part>,
}

/// A capture and whether it sits inside an optional group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    pub name: String,
    pub optional: bool,
}

impl AliasFormat {
    /// Parses a format, or says what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let chars: Vec<char> = text.chars().collect();
        let mut pos = 0;
        let parts = parse_parts(&chars, &mut pos, 0)?;
        if pos < chars.len() {
            return Err(format!("unexpected `{}` at column {}", chars[pos], pos + 1));
        }
        match parts.first() {
            None => return Err("format is empty".to_owned()),
            Some(Part::Word(pieces)) if matches!(pieces.first(), Some(Piece::Literal(_))) => {}
            Some(_) => {
                return Err(
                    "format must start with a literal word, such as `reboot {host}`".to_owned(),
                );
            }
        }
        if count_variants(&parts) > MAX_VARIANTS {
            return Err(format!(
                "too many optional groups (at most {MAX_VARIANTS} combinations); \
                 leave rarely used parameters out, they can be given as `name=value`"
            ));
        }
        let format = Self {
            text: text.to_owned(),
            parts,
        };
        let mut seen = BTreeSet::new();
        for c in format.captures() {
            if !seen.insert(c.name.clone()) {
                return Err(format!("parameter `{}` is captured twice", c.name));
            }
        }
        Ok(format)
    }

    /// Every capture in order of appearance.
    pub fn captures(&self) -> Vec<Capture> {
        fn walk(parts: &[Part], optional: bool, out: &mut Vec<Capture>) {
            for part in parts {
                match part {
                    Part::Word(pieces) => out.extend(pieces.iter().filter_map(|p| match p {
                        Piece::Capture(name) => Some(Capture {
                            name: name.clone(),
                            optional,
                        }),
                        Piece::Literal(_) => None,
                    })),
                    Part::Optional(inner) => walk(inner, true, out),
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.parts, false, &mut out);
        out
    }

    /// Every sequence of words the format accepts, one per combination of
    /// its optional groups, in the order chat text is tried against them:
    /// a group present before it is absent, the leftmost group deciding
    /// first. `logs [{file}] [lines={lines}]` gives `logs {file} lines={lines}`,
    /// `logs {file}`, `logs lines={lines}`, `logs`.
    pub fn variants(&self) -> Vec<Vec<&[Piece]>> {
        expand(&self.parts)
    }
}

/// How many word sequences `parts` accepts (saturating).
fn count_variants(parts: &[Part]) -> usize {
    parts.iter().fold(1usize, |n, part| match part {
        Part::Word(_) => n,
        Part::Optional(inner) => n.saturating_mul(count_variants(inner).saturating_add(1)),
    })
}

/// The word sequences `parts` accepts, in order of preference.
fn expand(parts: &[Part]) -> Vec<Vec<&[Piece]>> {
    let Some((first, rest)) = parts.split_first() else {
        return vec![Vec::new()];
    };
    let tails = expand(rest);
    match first {
        Part::Word(pieces) => tails
            .into_iter()
            .map(|tail| std::iter::once(pieces.as_slice()).chain(tail).collect())
            .collect(),
        Part::Optional(inner) => {
            let mut out = Vec::new();
            for head in expand(inner) {
                for tail in &tails {
                    out.push(head.iter().chain(tail).copied().collect());
                }
            }
            out.extend(tails);
            out
        }
    }
}

fn parse_parts(chars: &[char], pos: &mut usize, depth: usize) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    while *pos < chars.len() {
        match chars[*pos] {
            c if c.is_whitespace() => *pos += 1,
            '[' => {
                if depth >= 4 {
                    return Err("optional groups nest too deeply".to_owned());
                }
                let open = *pos;
                *pos += 1;
                let inner = parse_parts(chars, pos, depth + 1)?;
                if chars.get(*pos) != Some(&']') {
                    return Err(format!("`[` at column {} is never closed", open + 1));
                }
                *pos += 1;
                if inner.is_empty() {
                    return Err(format!("empty optional group at column {}", open + 1));
                }
                parts.push(Part::Optional(inner));
            }
            ']' if depth > 0 => return Ok(parts),
            ']' => return Err(format!("unmatched `]` at column {}", *pos + 1)),
            _ => parts.push(Part::Word(parse_word(chars, pos)?)),
        }
    }
    Ok(parts)
}

fn parse_word(chars: &[char], pos: &mut usize) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    while let Some(&c) = chars.get(*pos) {
        match c {
            c if c.is_whitespace() || c == '[' || c == ']' => break,
            '{' => {
                let open = *pos;
                let close = chars[open..]
                    .iter()
                    .position(|c| *c == '}')
                    .map(|i| open + i)
                    .ok_or_else(|| format!("`{{` at column {} is never closed", open + 1))?;
                let name: String = chars[open + 1..close].iter().collect();
                let valid =
                    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    return Err(format!(
                        "`{{{name}}}` at column {} is not a parameter name",
                        open + 1
                    ));
                }
                if matches!(pieces.last(), Some(Piece::Capture(_))) && literal.is_empty() {
                    return Err(format!(
                        "captures `{{…}}{{{name}}}` touch; put literal text between them"
                    ));
                }
                if !literal.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::Capture(name));
                *pos = close + 1;
            }
            '}' => return Err(format!("unmatched `}}` at column {}", *pos + 1)),
            c => {
                literal.push(c);
                *pos += 1;
            }
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_words_captures_and_optional_groups() {
        let f =
            AliasFormat::parse("graph {metric} for {host} [over {range}] [lines={lines}]").unwrap();
        let caps: Vec<(String, bool)> = f
            .captures()
            .into_iter()
            .map(|c| (c.name, c.optional))
            .collect();
        assert_eq!(
            caps,
            [
                ("metric", false),
                ("host", false),
                ("range", true),
                ("lines", true)
            ]
            .map(|(n, o)| (n.to_owned(), o))
        );
        assert_eq!(
            f.parts[5],
            Part::Optional(vec![Part::Word(vec![
                Piece::Literal("lines=".into()),
                Piece::Capture("lines".into())
            ])])
        );
    }

    #[test]
    fn explains_malformed_formats() {
        for (bad, why) in [
            ("", "empty"),
            ("{host} reboot", "literal word"),
            ("reboot {host", "never closed"),
            ("reboot [now", "never closed"),
            ("reboot ]", "unmatched"),
            ("reboot {}", "not a parameter name"),
            ("reboot {a}{b}", "touch"),
            ("reboot {a} {a}", "twice"),
            ("reboot []", "empty optional"),
            (
                "x [{a}] [{b}] [{c}] [{d}] [{e}] [{f}] [{g}]",
                "too many optional groups",
            ),
        ] {
            let err = AliasFormat::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn variants_try_groups_present_before_absent_leftmost_first() {
        let f = AliasFormat::parse("logs [{file}] [lines={lines} [x]]").unwrap();
        let shown: Vec<String> = f
            .variants()
            .iter()
            .map(|words| {
                let texts: Vec<String> = words
                    .iter()
                    .map(|w| {
                        w.iter()
                            .map(|p| match p {
                                Piece::Literal(l) => l.clone(),
                                Piece::Capture(c) => format!("{{{c}}}"),
                            })
                            .collect()
                    })
                    .collect();
                texts.join(" ")
            })
            .collect();
        assert_eq!(
            shown,
            [
                "logs {file} lines={lines} x",
                "logs {file} lines={lines}",
                "logs {file}",
                "logs lines={lines} x",
                "logs lines={lines}",
                "logs",
            ]
        );
        assert!(AliasFormat::parse("x [{a}] [{b}] [{c}] [{d}] [{e}] [{f}]").is_ok());
    }

    proptest! {
        #[test]
        fn never_panics(text in "[a-z {}\\[\\]=_é\\t]{0,40}") {
            let _ = AliasFormat::parse(&text);
        }
    }
}
