//! Byte-level BPE (`tokenizer.ggml.model = "gpt2"`): the tokenizer of Qwen, Llama 3, SmolLM and
//! GPT-2-style models, built from the GGUF's tokens and merges as llama.cpp builds it.
//!
//! Text is split by the pre-tokenizer that `tokenizer.ggml.pre` names (regexes llama.cpp
//! compiles in; the file stores only the name), each piece's UTF-8 bytes are mapped to GPT-2's
//! printable byte alphabet, and adjacent symbols are merged by merge rank, lowest first and
//! leftmost on ties. Merging is quadratic in a piece's length; pieces are words, and prompts
//! are bounded.

use crate::LlmError;
use fancy_regex::Regex;
use std::collections::HashMap;

/// llama.cpp's regexes per `tokenizer.ggml.pre` (src/llama-vocab.cpp), applied in turn.
fn pre_tokenizer(name: &str) -> Option<&'static [&'static str]> {
    const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
    const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    // LLAMA_VOCAB_PRE_TYPE_DEFAULT (a missing or empty name, or "default"): punctuation runs,
    // then GPT-2's rule, then number runs, then ASCII digits in threes.
    const DEFAULT: &[&str] = &[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"];
    Some(match name {
        "" | "default" => DEFAULT,
        "qwen2" | "stablelm2" => &[QWEN2],
        "llama3" | "llama-bpe" | "dbrx" | "smaug-bpe" => &[LLAMA3],
        "gpt-2" | "gpt2" | "mpt" | "olmo" => &[GPT2],
        "smollm" | "starcoder" | "refact" | "codeshell" => &[r"\p{N}", GPT2],
        _ => return None,
    })
}

/// The pre-tokenizer names this build understands.
pub const PRE_TOKENIZERS: &str = "default, qwen2, llama-bpe (llama3), gpt2, smollm";

#[derive(Debug)]
pub struct Bpe {
    splitters: Vec<Regex>,
    /// (left id, right id) -> (rank, merged id).
    merges: HashMap<(u32, u32), (u32, u32)>,
    /// Whole pre-tokens found in the vocabulary skip merging (llama.cpp does this for Llama 3).
    ignore_merges: bool,
    byte_to_char: [char; 256],
    char_to_byte: HashMap<char, u8>,
}

impl Bpe {
    /// `merges` are GGUF's `"left right"` strings, in rank order; `lookup` maps token text to id.
    pub fn new(
        pre: &str,
        merges: &[String],
        lookup: &HashMap<String, u32>,
    ) -> Result<Self, LlmError> {
        let patterns = pre_tokenizer(pre).ok_or_else(|| {
            LlmError::Model(format!(
                "BPE pre-tokenizer {pre:?} is not supported (known: {PRE_TOKENIZERS})"
            ))
        })?;
        let splitters = patterns
            .iter()
            .map(|p| Regex::new(p).map_err(|e| LlmError::Model(format!("pre-tokenizer: {e}"))))
            .collect::<Result<_, _>>()?;
        let mut table = HashMap::with_capacity(merges.len());
        for (rank, merge) in merges.iter().enumerate() {
            let Some((left, right)) = merge.split_once(' ') else {
                return Err(LlmError::Model(format!(
                    "tokenizer.ggml.merges[{rank}] = {merge:?} is not \"left right\""
                )));
            };
            // Merges whose parts or result are not tokens can never apply; llama.cpp skips
            // them the same way (it looks the parts up as tokens).
            let ids = (
                lookup.get(left),
                lookup.get(right),
                lookup.get(&format!("{left}{right}")),
            );
            if let (Some(&l), Some(&r), Some(&merged)) = ids {
                table.entry((l, r)).or_insert((rank as u32, merged));
            }
        }
        let byte_to_char = byte_alphabet();
        let char_to_byte = byte_to_char
            .iter()
            .enumerate()
            .map(|(b, &c)| (c, b as u8))
            .collect();
        Ok(Self {
            splitters,
            merges: table,
            ignore_merges: matches!(pre, "llama3" | "llama-bpe"),
            byte_to_char,
            char_to_byte,
        })
    }

    /// Token ids for one fragment of raw text (specials already split off).
    pub fn encode(&self, text: &str, lookup: &HashMap<String, u32>, out: &mut Vec<u32>) {
        for piece in self.split(text) {
            let mapped: String = piece
                .bytes()
                .map(|b| self.byte_to_char[b as usize])
                .collect();
            if self.ignore_merges
                && let Some(&id) = lookup.get(&mapped)
            {
                out.push(id);
                continue;
            }
            self.merge(&mapped, lookup, out);
        }
    }

    /// The bytes a normal token's text stands for.
    pub fn token_bytes(&self, text: &str, out: &mut Vec<u8>) {
        for c in text.chars() {
            match self.char_to_byte.get(&c) {
                Some(&b) => out.push(b),
                // Not from the byte alphabet (a hand-added token): its own UTF-8.
                None => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
    }

    /// llama.cpp's `unicode_regex_split`: each regex splits every fragment left by the
    /// previous one into its matches and the text between them.
    fn split<'a>(&self, text: &'a str) -> Vec<&'a str> {
        let mut fragments = vec![text];
        for regex in &self.splitters {
            let mut next = Vec::with_capacity(fragments.len() * 2);
            for fragment in fragments {
                let mut last = 0;
                for m in regex.find_iter(fragment) {
                    // A regex error (backtrack limit) leaves the rest as one piece.
                    let Ok(m) = m else { break };
                    if m.start() > last {
                        next.push(&fragment[last..m.start()]);
                    }
                    if m.end() > m.start() {
                        next.push(m.as_str());
                    }
                    last = m.end();
                }
                if last < fragment.len() {
                    next.push(&fragment[last..]);
                }
            }
            fragments = next;
        }
        fragments
    }

    /// Merges one mapped piece: start from its characters, repeatedly merge the adjacent pair
    /// with the lowest rank (leftmost on ties).
    fn merge(&self, mapped: &str, lookup: &HashMap<String, u32>, out: &mut Vec<u32>) {
        // Each symbol: its token id if its text is a token, and its text's byte range.
        let mut symbols: Vec<(Option<u32>, usize, usize)> = mapped
            .char_indices()
            .map(|(i, c)| {
                let end = i + c.len_utf8();
                (lookup.get(&mapped[i..end]).copied(), i, end)
            })
            .collect();
        loop {
            let best = symbols
                .windows(2)
                .enumerate()
                .filter_map(|(i, pair)| {
                    let (l, r) = (pair[0].0?, pair[1].0?);
                    self.merges.get(&(l, r)).map(|&(rank, id)| (rank, i, id))
                })
                .min_by_key(|&(rank, i, _)| (rank, i));
            let Some((_, i, id)) = best else { break };
            symbols[i] = (Some(id), symbols[i].1, symbols[i + 1].2);
            symbols.remove(i + 1);
        }
        for (id, start, end) in symbols {
            match id {
                Some(id) => out.push(id),
                // Outside the vocabulary: llama.cpp emits single-byte tokens where they exist.
                None => {
                    out.extend(mapped[start..end].bytes().filter_map(|b| {
                        lookup.get(std::str::from_utf8(&[b]).unwrap_or("")).copied()
                    }))
                }
            }
        }
    }
}

/// GPT-2's map from bytes to printable characters: printable Latin-1 stands for itself, the
/// rest (controls, space, DEL, NBSP, soft hyphen) become U+0100 onwards in byte order.
pub fn byte_alphabet() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for (b, slot) in table.iter_mut().enumerate() {
        let printable = matches!(b, 33..=126 | 161..=172 | 174..=255);
        *slot = if printable {
            char::from(b as u8)
        } else {
            let c = char::from_u32(next).expect("U+0100.. are characters");
            next += 1;
            c
        };
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab(tokens: &[&str]) -> HashMap<String, u32> {
        tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.to_string(), i as u32))
            .collect()
    }

    #[test]
    fn byte_alphabet_is_gpt2s() {
        let table = byte_alphabet();
        assert_eq!(table[b'a' as usize], 'a');
        assert_eq!(table[b' ' as usize], 'Ġ');
        assert_eq!(table[b'\n' as usize], 'Ċ');
        let mut sorted = table.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 256, "a bijection");
    }

    #[test]
    fn qwen2_pre_tokenizer_splits_like_llama_cpp() {
        let bpe = Bpe::new("qwen2", &[], &HashMap::new()).unwrap();
        assert_eq!(
            bpe.split("Hello world's 2024!\n\n  ok"),
            vec![
                "Hello", " world", "'s", " ", "2", "0", "2", "4", "!\n\n", " ", " ok"
            ]
        );
    }

    #[test]
    fn merges_apply_lowest_rank_first() {
        let mut tokens: Vec<String> = byte_alphabet().iter().map(|c| c.to_string()).collect();
        tokens.extend(["he", "ll", "hell", "hello", "Ġw"].map(String::from));
        let lookup: HashMap<String, u32> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let merges: Vec<String> = ["l l", "h e", "he ll", "hell o", "Ġ w"]
            .map(String::from)
            .to_vec();
        let bpe = Bpe::new("gpt2", &merges, &lookup).unwrap();
        let mut out = Vec::new();
        bpe.encode("hello world", &lookup, &mut out);
        let texts: Vec<&str> = out.iter().map(|&id| tokens[id as usize].as_str()).collect();
        assert_eq!(texts, vec!["hello", "Ġw", "o", "r", "l", "d"]);
        let mut bytes = Vec::new();
        for &id in &out {
            bpe.token_bytes(&tokens[id as usize], &mut bytes);
        }
        assert_eq!(bytes, b"hello world");
    }

    #[test]
    fn unknown_pre_tokenizers_and_bad_merges_are_errors() {
        let err = Bpe::new("klingon", &[], &HashMap::new()).err().unwrap();
        assert!(err.to_string().contains("qwen2"), "{err}");
        let err = Bpe::new("gpt2", &["nospace".into()], &vocab(&["a"]))
            .err()
            .unwrap();
        assert!(err.to_string().contains("merges[0]"), "{err}");
    }
}
