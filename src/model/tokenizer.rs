//! CLIP byte-level BPE tokenizer for SAM3 prompts (official `tokenizer_ve.py` `SimpleTokenizer`;
//! HF `CLIPTokenizerFast` as used by `Sam3Processor`), spec §5.1.
//!
//! Reads the HF files of the checkpoint folder (`vocab.json` + `merges.txt`, or `tokenizer.json`),
//! or OpenAI's `bpe_simple_vocab_16e6.txt.gz` compiled into the binary ([`ClipTokenizer::bundled`]).
//! Text → `[SOT] + bpe(text) + [EOT]`, right-padded (HF pads with EOT, the official tokenizer with
//! 0) or truncated to the context length with EOT forced last; validity marks SOT..EOT. Cleaning: HTML entities, whitespace
//! collapse, lower-case (ftfy's mojibake repair is not reproduced).

use std::collections::HashMap;
use std::io::Read as _;
use std::path::Path;

use flate2::read::GzDecoder;
use serde::Deserialize;

use super::error::ModelError;

const START: &str = "<|startoftext|>";
const END: &str = "<|endoftext|>";
const WORD_END: &str = "</w>";

/// SAM3's text context length (official and HF).
pub const SAM3_CONTEXT: usize = 32;

/// OpenAI's CLIP merge list (MIT, via open_clip_torch; see `assets/clip/README.md`).
const BUNDLED_VOCAB_GZ: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/clip/bpe_simple_vocab_16e6.txt.gz"
));
const BUNDLED_NAME: &str = "assets/clip/bpe_simple_vocab_16e6.txt.gz";
/// Merges used by CLIP: `merges[1:49152-256-2+1]` in `simple_tokenizer.py`.
const OPENAI_MERGES: usize = 49152 - 256 - 2;

/// Token ids of one prompt padded to the context length, with their validity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    pub ids: Vec<i64>,
    pub valid: Vec<bool>,
}

/// CLIP BPE tokenizer.
#[derive(Debug, Clone)]
pub struct ClipTokenizer {
    vocab: HashMap<String, i64>,
    ranks: HashMap<(String, String), usize>,
    byte_chars: [char; 256],
    start_id: i64,
    end_id: i64,
    pad_id: i64,
    context: usize,
}

#[derive(Deserialize)]
struct TokenizerJson {
    model: TokenizerModel,
}

#[derive(Deserialize)]
struct TokenizerModel {
    vocab: HashMap<String, i64>,
    merges: Vec<Merge>,
}

/// `tokenizer.json` stores merges as "a b" strings or as [a, b] pairs depending on its version.
#[derive(Deserialize)]
#[serde(untagged)]
enum Merge {
    Joined(String),
    Pair([String; 2]),
}

impl ClipTokenizer {
    /// From `vocab.json` and `merges.txt` (first line a `#version` header).
    pub fn from_vocab_merges(
        vocab_path: &Path,
        merges_path: &Path,
        context: usize,
    ) -> Result<Self, ModelError> {
        let vocab_text = read(vocab_path)?;
        let vocab: HashMap<String, i64> =
            serde_json::from_str(&vocab_text).map_err(|e| ModelError::Tokenizer {
                path: vocab_path.to_owned(),
                reason: e.to_string(),
            })?;
        let merges_text = read(merges_path)?;
        let merges = merges_text
            .lines()
            .filter(|line| !line.starts_with("#version") && !line.trim().is_empty())
            .map(|line| Merge::Joined(line.to_owned()));
        Self::build(vocab, merges, context, merges_path)
    }

    /// OpenAI's CLIP vocabulary compiled into the binary, as SAM3's `tokenizer_ve.py` builds it:
    /// context [`SAM3_CONTEXT`], SOT 49406, EOT 49407, padding 0 (`!`, always masked).
    pub fn bundled() -> Result<Self, ModelError> {
        let mut text = String::new();
        GzDecoder::new(BUNDLED_VOCAB_GZ)
            .read_to_string(&mut text)
            .map_err(|e| ModelError::Tokenizer {
                path: BUNDLED_NAME.into(),
                reason: e.to_string(),
            })?;
        let mut tokenizer = Self::from_openai_bpe(&text, SAM3_CONTEXT, Path::new(BUNDLED_NAME))?;
        tokenizer.pad_id = 0;
        Ok(tokenizer)
    }

    /// From the text of OpenAI's `bpe_simple_vocab_16e6.txt` (a header line, then merges).
    /// Vocabulary: the 256 byte symbols, the same with `</w>`, the merged pairs, SOT, EOT.
    fn from_openai_bpe(text: &str, context: usize, path: &Path) -> Result<Self, ModelError> {
        let merges: Vec<&str> = text.lines().skip(1).take(OPENAI_MERGES).collect();
        if merges.len() < OPENAI_MERGES {
            return Err(ModelError::Tokenizer {
                path: path.to_owned(),
                reason: format!("{} merges, expected {OPENAI_MERGES}", merges.len()),
            });
        }
        // `bytes_to_unicode().values()` order is ascending code point
        let mut symbols = byte_chars();
        symbols.sort_unstable();
        let mut tokens: Vec<String> = symbols.iter().map(char::to_string).collect();
        tokens.extend(symbols.iter().map(|c| format!("{c}{WORD_END}")));
        tokens.extend(merges.iter().map(|m| m.replace(' ', "")));
        tokens.extend([START.to_owned(), END.to_owned()]);
        let mut vocab = HashMap::with_capacity(tokens.len());
        for (id, token) in (0i64..).zip(tokens) {
            vocab.insert(token, id);
        }
        let merges = merges.into_iter().map(|m| Merge::Joined(m.to_owned()));
        Self::build(vocab, merges, context, path)
    }

    /// Number of vocabulary entries.
    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// Context length every [`Tokens`] is padded or truncated to.
    pub fn context(&self) -> usize {
        self.context
    }

    /// The same tokenizer with another context length (a model's text positions), at least 2.
    pub fn with_context(mut self, context: usize) -> Result<Self, ModelError> {
        if context < 2 {
            return Err(ModelError::InvalidInput {
                reason: format!("tokenizer context length {context} < 2"),
            });
        }
        self.context = context;
        Ok(self)
    }

    /// From an HF `tokenizer.json` (BPE model).
    pub fn from_tokenizer_json(path: &Path, context: usize) -> Result<Self, ModelError> {
        let text = read(path)?;
        let parsed: TokenizerJson =
            serde_json::from_str(&text).map_err(|e| ModelError::Tokenizer {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        Self::build(
            parsed.model.vocab,
            parsed.model.merges.into_iter(),
            context,
            path,
        )
    }

    fn build(
        vocab: HashMap<String, i64>,
        merges: impl Iterator<Item = Merge>,
        context: usize,
        path: &Path,
    ) -> Result<Self, ModelError> {
        let fail = |reason: String| ModelError::Tokenizer {
            path: path.to_owned(),
            reason,
        };
        let mut ranks = HashMap::new();
        for (rank, merge) in merges.enumerate() {
            let pair = match merge {
                Merge::Joined(line) => {
                    let mut parts = line.split(' ');
                    match (parts.next(), parts.next(), parts.next()) {
                        (Some(a), Some(b), None) => (a.to_owned(), b.to_owned()),
                        _ => {
                            return Err(fail(format!("merge {rank} is not two symbols: {line:?}")));
                        }
                    }
                }
                Merge::Pair([a, b]) => (a, b),
            };
            ranks.entry(pair).or_insert(rank);
        }
        let start_id = *vocab
            .get(START)
            .ok_or_else(|| fail(format!("vocabulary lacks {START}")))?;
        let end_id = *vocab
            .get(END)
            .ok_or_else(|| fail(format!("vocabulary lacks {END}")))?;
        if context < 2 {
            return Err(fail(format!("context length {context} < 2")));
        }
        Ok(Self {
            vocab,
            ranks,
            byte_chars: byte_chars(),
            start_id,
            end_id,
            pad_id: end_id,
            context,
        })
    }

    /// BPE ids of `text` without special tokens. Symbols missing from the vocabulary are skipped.
    pub fn encode(&self, text: &str) -> Vec<i64> {
        let cleaned = clean(text);
        let mut ids = Vec::new();
        for piece in pre_tokenize(&cleaned) {
            if piece == START || piece == END {
                ids.extend(self.vocab.get(piece).copied());
                continue;
            }
            let mapped: String = piece
                .bytes()
                .map(|b| self.byte_chars[usize::from(b)])
                .collect();
            ids.extend(
                self.bpe(&mapped)
                    .iter()
                    .filter_map(|symbol| self.vocab.get(symbol).copied()),
            );
        }
        ids
    }

    /// `[SOT] + bpe(text) + [EOT]`, truncated (EOT forced last) or padded to the context (with
    /// EOT for HF files, 0 for [`Self::bundled`]).
    pub fn tokenize(&self, text: &str) -> Tokens {
        let mut ids = vec![self.start_id];
        ids.extend(self.encode(text));
        ids.push(self.end_id);
        if ids.len() > self.context {
            ids.truncate(self.context);
            if let Some(last) = ids.last_mut() {
                *last = self.end_id;
            }
        }
        let n = ids.len();
        ids.resize(self.context, self.pad_id);
        Tokens {
            ids,
            valid: (0..self.context).map(|i| i < n).collect(),
        }
    }

    /// Byte-pair merges of one pre-token (already byte-mapped); the last symbol carries `</w>`.
    fn bpe(&self, word: &str) -> Vec<String> {
        let chars: Vec<char> = word.chars().collect();
        let Some((last, head)) = chars.split_last() else {
            return Vec::new();
        };
        let mut symbols: Vec<String> = head.iter().map(char::to_string).collect();
        symbols.push(format!("{last}{WORD_END}"));
        loop {
            let best = symbols
                .windows(2)
                .enumerate()
                .filter_map(|(i, pair)| {
                    let (a, b) = (pair.first()?, pair.get(1)?);
                    self.ranks
                        .get(&(a.clone(), b.clone()))
                        .map(|rank| (*rank, i))
                })
                .min();
            let Some((_, index)) = best else { break };
            let (Some(a), Some(b)) = (symbols.get(index).cloned(), symbols.get(index + 1).cloned())
            else {
                break;
            };
            // merge every occurrence of (a, b), left to right
            let mut merged = Vec::with_capacity(symbols.len());
            let mut i = 0;
            while i < symbols.len() {
                if symbols.get(i) == Some(&a) && symbols.get(i + 1) == Some(&b) {
                    merged.push(format!("{a}{b}"));
                    i += 2;
                } else {
                    merged.extend(symbols.get(i).cloned());
                    i += 1;
                }
            }
            symbols = merged;
        }
        symbols
    }
}

fn read(path: &Path) -> Result<String, ModelError> {
    std::fs::read_to_string(path).map_err(|e| ModelError::Tokenizer {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// GPT-2 / CLIP `bytes_to_unicode`: printable bytes map to themselves, the rest to U+0100….
fn byte_chars() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for (byte, slot) in table.iter_mut().enumerate() {
        let printable = matches!(byte, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
        let code = if printable {
            u32::try_from(byte).unwrap_or(0)
        } else {
            let code = next;
            next += 1;
            code
        };
        *slot = char::from_u32(code).unwrap_or('\0');
    }
    table
}

/// HTML-unescape (common entities), collapse whitespace, trim, lower-case.
fn clean(text: &str) -> String {
    let mut unescaped = text.to_owned();
    for _ in 0..2 {
        unescaped = unescaped
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&#x27;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&nbsp;", " ")
            .replace("&amp;", "&");
    }
    unescaped
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// CLIP's pre-tokenisation regex
/// `<|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`.
fn pre_tokenize(text: &str) -> Vec<&str> {
    const CONTRACTIONS: [&str; 7] = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"];
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let take = if let Some(special) = [START, END].into_iter().find(|s| rest.starts_with(s)) {
            special.len()
        } else if let Some(short) = CONTRACTIONS.into_iter().find(|s| rest.starts_with(s)) {
            short.len()
        } else if c.is_whitespace() {
            rest = &rest[c.len_utf8()..];
            continue;
        } else if c.is_alphabetic() {
            run_length(rest, char::is_alphabetic)
        } else if c.is_numeric() {
            c.len_utf8()
        } else {
            run_length(rest, |ch| {
                !ch.is_whitespace() && !ch.is_alphabetic() && !ch.is_numeric()
            })
        };
        let (piece, tail) = rest.split_at(take.max(c.len_utf8()));
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

/// Byte length of the leading run of chars satisfying `keep`.
fn run_length(text: &str, keep: impl Fn(char) -> bool) -> usize {
    text.char_indices()
        .find(|(_, ch)| !keep(*ch))
        .map_or(text.len(), |(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> ClipTokenizer {
        let mut vocab = HashMap::new();
        for (i, token) in [
            "c", "a", "t</w>", "ca", "cat</w>", "s</w>", "!</w>", START, END,
        ]
        .iter()
        .enumerate()
        {
            vocab.insert((*token).to_owned(), i64::try_from(i).unwrap_or(0));
        }
        let merges = ["c a", "ca t</w>"]
            .iter()
            .map(|m| Merge::Joined((*m).to_owned()));
        ClipTokenizer::build(vocab, merges, 6, Path::new("toy")).expect("toy tokenizer")
    }

    #[test]
    fn pre_tokenizes_like_the_clip_regex() {
        assert_eq!(
            pre_tokenize("a cat's 12 !'s"),
            vec!["a", "cat", "'s", "1", "2", "!'", "s"]
        );
    }

    #[test]
    fn merges_by_rank_and_pads() {
        let tok = toy();
        let out = tok.tokenize("  CAT ");
        assert_eq!(out.ids, vec![7, 4, 8, 8, 8, 8]);
        assert_eq!(out.valid, vec![true, true, true, false, false, false]);
    }

    #[test]
    fn truncates_with_end_token_last() {
        let tok = toy();
        let out = tok.tokenize("cat cat cat cat cat cat");
        assert_eq!(out.ids, vec![7, 4, 4, 4, 4, 8]);
        assert!(out.valid.iter().all(|v| *v));
    }
}
