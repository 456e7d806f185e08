//! The tokenizer built from a GGUF file's own metadata, so a single .gguf is all a user needs.
//! Text is first split on special and user-defined tokens (matched verbatim, longest first),
//! as llama.cpp does; then each piece is tokenized by the file's model: SentencePiece
//! (`llama`: Gemma, Llama 2; llama.cpp's `llm_tokenizer_spm`, merging symbols by score and
//! falling back to `<0xXX>` byte tokens) or byte-level BPE (`gpt2`: Qwen, Llama 3; see
//! [`bpe`]).
//!
//! The metadata is untrusted input: every id read from it is bounds-checked.

pub mod bpe;

use crate::LlmError;
use bpe::Bpe;
use std::collections::{BinaryHeap, HashMap};

/// `tokenizer.ggml.token_type` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenType {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

impl TokenType {
    pub fn from_gguf(v: i32) -> Self {
        match v {
            2 => TokenType::Unknown,
            3 => TokenType::Control,
            4 => TokenType::UserDefined,
            5 => TokenType::Unused,
            6 => TokenType::Byte,
            _ => TokenType::Normal,
        }
    }
}

/// One vocabulary entry.
#[derive(Clone, Debug)]
pub struct Token {
    pub text: String,
    pub score: f32,
    pub kind: TokenType,
}

/// Special ids and flags from the GGUF metadata.
#[derive(Clone, Copy, Debug, Default)]
pub struct SpecialTokens {
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub add_bos: bool,
    pub add_space_prefix: bool,
}

#[derive(Debug)]
pub struct Tokenizer {
    vocab: Vec<Token>,
    lookup: HashMap<String, u32>,
    /// Tokens matched verbatim in raw text, longest first (llama.cpp's order).
    specials: Vec<u32>,
    /// Specials by their first byte, to find candidates without scanning all of them.
    specials_by_first_byte: HashMap<u8, Vec<u32>>,
    byte_tokens: [Option<u32>; 256],
    /// Byte-level BPE models (`gpt2`); SentencePiece (`llama`) when `None`.
    bpe: Option<Bpe>,
    pub special: SpecialTokens,
}

impl Tokenizer {
    pub fn new(vocab: Vec<Token>, special: SpecialTokens) -> Result<Self, LlmError> {
        if vocab.is_empty() || vocab.len() > u32::MAX as usize / 2 {
            return Err(LlmError::Model(format!(
                "vocabulary of {} tokens",
                vocab.len()
            )));
        }
        let n = vocab.len() as u32;
        let check = |id: Option<u32>, what: &str| match id {
            Some(id) if id >= n => Err(LlmError::Model(format!(
                "{what} token id {id} is outside the vocabulary of {n}"
            ))),
            _ => Ok(()),
        };
        check(special.bos, "bos")?;
        check(special.eos, "eos")?;
        let mut lookup = HashMap::with_capacity(vocab.len());
        let mut byte_tokens = [None; 256];
        let mut specials = Vec::new();
        for (id, token) in vocab.iter().enumerate() {
            let id = id as u32;
            // First id wins for duplicate texts, as in llama.cpp's token_to_id map.
            lookup.entry(token.text.clone()).or_insert(id);
            if token.kind == TokenType::Byte
                && let Some(b) = parse_byte_token(&token.text)
            {
                byte_tokens[b as usize] = Some(id);
            }
            if matches!(
                token.kind,
                TokenType::Control | TokenType::UserDefined | TokenType::Unknown
            ) && !token.text.is_empty()
            {
                specials.push(id);
            }
        }
        specials.sort_by(|a, b| {
            vocab[*b as usize]
                .text
                .len()
                .cmp(&vocab[*a as usize].text.len())
                .then(a.cmp(b))
        });
        let mut specials_by_first_byte: HashMap<u8, Vec<u32>> = HashMap::new();
        for &id in &specials {
            specials_by_first_byte
                .entry(vocab[id as usize].text.as_bytes()[0])
                .or_default()
                .push(id);
        }
        Ok(Self {
            vocab,
            lookup,
            specials,
            specials_by_first_byte,
            byte_tokens,
            bpe: None,
            special,
        })
    }

    /// A byte-level BPE tokenizer (`tokenizer.ggml.model = "gpt2"`): `pre` names the
    /// pre-tokenizer, `merges` are `"left right"` in rank order.
    pub fn new_bpe(
        vocab: Vec<Token>,
        special: SpecialTokens,
        pre: &str,
        merges: &[String],
    ) -> Result<Self, LlmError> {
        let mut tokenizer = Self::new(vocab, special)?;
        tokenizer.bpe = Some(Bpe::new(pre, merges, &tokenizer.lookup)?);
        Ok(tokenizer)
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    pub fn token(&self, id: u32) -> Option<&Token> {
        self.vocab.get(id as usize)
    }

    pub fn id_of(&self, text: &str) -> Option<u32> {
        self.lookup.get(text).copied()
    }

    /// Text to token ids. `add_bos` prepends BOS if the model wants one; `parse_special`
    /// also matches control tokens (`<start_of_turn>`) in the text. Keep it false for text
    /// that players wrote, so they cannot inject control tokens.
    pub fn encode(&self, text: &str, add_bos: bool, parse_special: bool) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_bos
            && self.special.add_bos
            && let Some(bos) = self.special.bos
        {
            out.push(bos);
        }
        let mut previous_was_special = true;
        for fragment in self.partition(text, parse_special) {
            match fragment {
                Fragment::Token(id) => {
                    out.push(id);
                    previous_was_special = true;
                }
                Fragment::Text(piece) if let Some(bpe) = &self.bpe => {
                    bpe.encode(piece, &self.lookup, &mut out);
                }
                Fragment::Text(piece) => {
                    let mut escaped = String::with_capacity(piece.len() + 3);
                    if self.special.add_space_prefix && previous_was_special {
                        escaped.push('▁');
                    }
                    for c in piece.chars() {
                        escaped.push(if c == ' ' { '▁' } else { c });
                    }
                    self.merge(&escaped, &mut out);
                    previous_was_special = false;
                }
            }
        }
        out
    }

    /// Token ids to text. Control tokens are dropped; invalid UTF-8 is replaced.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::new();
        for &id in ids {
            self.piece_bytes(id, &mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Appends the bytes a token stands for.
    pub fn piece_bytes(&self, id: u32, out: &mut Vec<u8>) {
        let Some(token) = self.vocab.get(id as usize) else {
            return;
        };
        match token.kind {
            TokenType::Normal | TokenType::Unused => match &self.bpe {
                Some(bpe) => bpe.token_bytes(&token.text, out),
                None => out.extend_from_slice(token.text.replace('▁', " ").as_bytes()),
            },
            TokenType::UserDefined => out.extend_from_slice(token.text.as_bytes()),
            TokenType::Byte => {
                if let Some(b) = parse_byte_token(&token.text) {
                    out.push(b);
                }
            }
            TokenType::Control | TokenType::Unknown => {}
        }
    }

    /// llama.cpp's `tokenizer_st_partition`: for each special token, longest first, split
    /// every remaining text fragment at its leftmost non-overlapping occurrences.
    fn partition<'a>(&self, text: &'a str, parse_special: bool) -> Vec<Fragment<'a>> {
        let usable = |id: u32| {
            parse_special
                || !matches!(
                    self.vocab[id as usize].kind,
                    TokenType::Control | TokenType::Unknown
                )
        };
        // Only specials that occur somewhere in the text matter; find them by first byte.
        let mut present: Vec<u32> = Vec::new();
        let bytes = text.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            if let Some(candidates) = self.specials_by_first_byte.get(b) {
                for &id in candidates {
                    if usable(id) && bytes[i..].starts_with(self.vocab[id as usize].text.as_bytes())
                    {
                        present.push(id);
                    }
                }
            }
        }
        let mut fragments = vec![Fragment::Text(text)];
        if present.is_empty() {
            return fragments;
        }
        present.sort_unstable();
        present.dedup();
        let order: Vec<u32> = self
            .specials
            .iter()
            .copied()
            .filter(|id| present.binary_search(id).is_ok())
            .collect();
        for id in order {
            let needle = self.vocab[id as usize].text.as_str();
            let mut next = Vec::with_capacity(fragments.len() + 2);
            for fragment in fragments {
                let Fragment::Text(mut rest) = fragment else {
                    next.push(fragment);
                    continue;
                };
                while let Some(at) = rest.find(needle) {
                    if at > 0 {
                        next.push(Fragment::Text(&rest[..at]));
                    }
                    next.push(Fragment::Token(id));
                    rest = &rest[at + needle.len()..];
                }
                if !rest.is_empty() {
                    next.push(Fragment::Text(rest));
                }
            }
            fragments = next;
        }
        fragments
    }

    /// llama.cpp's `llm_tokenizer_spm_session::tokenize` on one escaped text fragment:
    /// start from single characters, repeatedly merge the adjacent pair whose union is the
    /// highest-scoring vocabulary entry (leftmost on ties), then emit each final symbol as its
    /// token, or as byte tokens if it is a character outside the vocabulary. (llama.cpp's
    /// `resegment` recursion never triggers: only pairs found in the vocabulary are merged.)
    fn merge(&self, text: &str, out: &mut Vec<u32>) {
        #[derive(Clone, Copy)]
        struct Symbol {
            start: usize,
            len: usize,
            prev: Option<usize>,
            next: Option<usize>,
        }
        let mut symbols: Vec<Symbol> = text
            .char_indices()
            .map(|(start, c)| Symbol {
                start,
                len: c.len_utf8(),
                prev: None,
                next: None,
            })
            .collect();
        let n = symbols.len();
        for (i, s) in symbols.iter_mut().enumerate() {
            s.prev = i.checked_sub(1);
            s.next = (i + 1 < n).then_some(i + 1);
        }
        let mut queue: BinaryHeap<Bigram> = BinaryHeap::new();
        let try_add = |left: Option<usize>,
                       right: Option<usize>,
                       symbols: &[Symbol],
                       queue: &mut BinaryHeap<Bigram>| {
            let (Some(left), Some(right)) = (left, right) else {
                return;
            };
            let (l, r) = (symbols[left], symbols[right]);
            let piece = &text[l.start..r.start + r.len];
            if let Some(&id) = self.lookup.get(piece) {
                queue.push(Bigram {
                    score: self.vocab[id as usize].score,
                    left,
                    right,
                    size: piece.len(),
                });
            }
        };
        for i in 1..n {
            try_add(Some(i - 1), Some(i), &symbols, &mut queue);
        }
        while let Some(bigram) = queue.pop() {
            let (l, r) = (symbols[bigram.left], symbols[bigram.right]);
            if l.len == 0 || r.len == 0 || l.len + r.len != bigram.size {
                continue; // Stale: one side was merged into something else since.
            }
            symbols[bigram.left].len += r.len;
            symbols[bigram.right].len = 0;
            symbols[bigram.left].next = r.next;
            if let Some(next) = r.next {
                symbols[next].prev = Some(bigram.left);
            }
            try_add(l.prev, Some(bigram.left), &symbols, &mut queue);
            try_add(Some(bigram.left), r.next, &symbols, &mut queue);
        }
        let mut i = (n > 0).then_some(0);
        while let Some(index) = i {
            let s = symbols[index];
            let piece = &text[s.start..s.start + s.len];
            match self.lookup.get(piece) {
                Some(&id) => out.push(id),
                None => out.extend(piece.bytes().filter_map(|b| self.byte_tokens[b as usize])),
            }
            i = s.next;
        }
    }
}

enum Fragment<'a> {
    Text(&'a str),
    Token(u32),
}

/// A candidate merge; the heap pops the highest score, then the leftmost.
struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    size: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bigram {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // `partial_cmp` as in C++ (-0.0 == 0.0), so ties fall to the leftmost pair.
        self.score
            .partial_cmp(&other.score)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(other.left.cmp(&self.left))
    }
}

fn parse_byte_token(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    u8::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy vocabulary: merges "▁a" + "b" over "▁" + "ab" by score, bytes as fallback.
    fn toy() -> Tokenizer {
        let mut vocab = vec![
            Token {
                text: "<pad>".into(),
                score: 0.0,
                kind: TokenType::Control,
            },
            Token {
                text: "<bos>".into(),
                score: 0.0,
                kind: TokenType::Control,
            },
            Token {
                text: "<b>".into(),
                score: 0.0,
                kind: TokenType::UserDefined,
            },
            Token {
                text: "\n\n".into(),
                score: 0.0,
                kind: TokenType::UserDefined,
            },
        ];
        for (text, score) in [
            ("▁", -1.0),
            ("a", -1.0),
            ("b", -1.0),
            ("ab", -2.0),
            ("▁a", -0.5),
            ("▁ab", -0.1),
            ("c", -1.0),
        ] {
            vocab.push(Token {
                text: text.into(),
                score,
                kind: TokenType::Normal,
            });
        }
        for b in 0..=255u8 {
            vocab.push(Token {
                text: format!("<0x{b:02X}>"),
                score: 0.0,
                kind: TokenType::Byte,
            });
        }
        Tokenizer::new(
            vocab,
            SpecialTokens {
                bos: Some(1),
                eos: None,
                add_bos: true,
                add_space_prefix: false,
            },
        )
        .unwrap()
    }

    fn pieces(t: &Tokenizer, ids: &[u32]) -> Vec<String> {
        ids.iter()
            .map(|&i| t.token(i).unwrap().text.clone())
            .collect()
    }

    #[test]
    fn merges_by_score_and_falls_back_to_bytes() {
        let t = toy();
        assert_eq!(pieces(&t, &t.encode(" ab", false, false)), ["▁ab"]);
        assert_eq!(
            pieces(&t, &t.encode("ab c", false, false)),
            ["ab", "▁", "c"]
        );
        // 'é' is not in the vocabulary: its two UTF-8 bytes.
        assert_eq!(
            pieces(&t, &t.encode("é", false, false)),
            ["<0xC3>", "<0xA9>"]
        );
        assert_eq!(t.decode(&t.encode("ab cé", false, false)), "ab cé");
    }

    #[test]
    fn user_defined_tokens_split_text_but_control_tokens_only_when_asked() {
        let t = toy();
        assert_eq!(
            pieces(&t, &t.encode("a<b>b\n\nc", false, false)),
            ["a", "<b>", "b", "\n\n", "c"]
        );
        let literal = t.encode("<bos>", false, false);
        assert!(
            !literal.contains(&1),
            "a player typing <bos> must not produce the control token"
        );
        assert_eq!(t.encode("<bos>", false, true), [1]);
        assert_eq!(t.decode(&[1, 4, 5]), "\u{2581}a".replace('\u{2581}', " "));
    }

    #[test]
    fn bos_is_added_when_the_model_wants_it() {
        let t = toy();
        assert_eq!(t.encode("a", true, false)[0], 1);
        assert_eq!(t.encode("a", false, false).len(), 1);
    }

    #[test]
    fn out_of_range_special_ids_are_refused() {
        let vocab = vec![Token {
            text: "a".into(),
            score: 0.0,
            kind: TokenType::Normal,
        }];
        let bad = SpecialTokens {
            bos: Some(7),
            ..Default::default()
        };
        assert!(Tokenizer::new(vocab, bad).is_err());
    }
}
