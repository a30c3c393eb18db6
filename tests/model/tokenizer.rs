//! The bundled CLIP vocabulary (`assets/clip/`) against ids measured with HF's CLIP tokenizer
//! (openai/clip-vit-base-patch32; values recorded in `shared/design/rust-stack.md` §5).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test assertions")]

use std::time::Instant;

use m2c::model::tokenizer::{ClipTokenizer, SAM3_CONTEXT};

fn bundled() -> ClipTokenizer {
    let start = Instant::now();
    let tokenizer = ClipTokenizer::bundled().expect("bundled vocabulary");
    eprintln!(
        "ClipTokenizer::bundled: {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    tokenizer
}

/// The valid prefix of a tokenised prompt.
fn valid_ids(tokenizer: &ClipTokenizer, text: &str) -> Vec<i64> {
    let tokens = tokenizer.tokenize(text);
    tokens
        .ids
        .iter()
        .zip(&tokens.valid)
        .filter(|(_, v)| **v)
        .map(|(id, _)| *id)
        .collect()
}

#[test]
fn bundled_vocabulary_matches_hf_clip_ids() {
    let tok = bundled();
    assert_eq!(tok.vocab_size(), 49408);
    assert_eq!(tok.context(), SAM3_CONTEXT);
    assert_eq!(
        valid_ids(&tok, "A person riding a motorcycle"),
        vec![49406, 320, 2533, 6765, 320, 10297, 49407]
    );
    assert_eq!(
        valid_ids(&tok, "left kidney"),
        vec![49406, 1823, 14610, 49407]
    );
    let polyp = valid_ids(&tok, "A polyp in a colonoscopy image");
    eprintln!("polyp prompt: {polyp:?}");
    assert_eq!(polyp.len(), 11, "start, 9 pieces, end: {polyp:?}");
    assert_eq!(polyp.first(), Some(&49406));
    assert_eq!(polyp.last(), Some(&49407));
}

#[test]
fn bundled_pads_with_zero_to_32_and_truncates_with_end_last() {
    let tok = bundled();
    let short = tok.tokenize("left kidney");
    assert_eq!(short.ids.len(), 32);
    assert_eq!(&short.ids[..4], &[49406, 1823, 14610, 49407]);
    assert!(short.ids[4..].iter().all(|id| *id == 0));
    assert_eq!(short.valid.iter().filter(|v| **v).count(), 4);
    let long = tok.tokenize(&"kidney ".repeat(40));
    assert_eq!(long.ids.len(), 32);
    assert_eq!(long.ids.first(), Some(&49406));
    assert_eq!(long.ids.last(), Some(&49407));
    assert!(long.valid.iter().all(|v| *v));
}

#[test]
fn bundled_encodes_case_and_whitespace_alike() {
    let tok = bundled();
    assert_eq!(tok.encode("  LEFT\tKidney "), tok.encode("left kidney"));
    assert_eq!(tok.encode("left kidney"), vec![1823, 14610]);
}

#[test]
fn context_follows_the_model() {
    let tok = bundled().with_context(16).expect("context 16");
    let out = tok.tokenize(&"kidney ".repeat(40));
    assert_eq!(out.ids.len(), 16);
    assert_eq!(out.ids.last(), Some(&49407));
    assert!(ClipTokenizer::bundled().unwrap().with_context(1).is_err());
}
