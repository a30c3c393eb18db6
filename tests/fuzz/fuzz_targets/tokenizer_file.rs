//! The tokenizer readers: an HF `tokenizer.json`, or (after a `\n--merges--\n` line) a
//! `vocab.json` and its `merges.txt`; a few texts are then encoded with what loaded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use m2c::model::tokenizer::ClipTokenizer;

mod files;

const TEXTS: [&str; 4] = ["polyp", "a skin lesion, left", "", "ÄÖ 12 !!"];

fuzz_target!(|data: &[u8]| {
    let Some(dir) = files::scratch_dir() else {
        return;
    };
    let (first, merges) = files::split2(data, b"\n--merges--\n");
    let context = 32;
    let loaded = if merges.is_empty() {
        files::put(&dir, "tokenizer.json", first)
            .and_then(|p| ClipTokenizer::from_tokenizer_json(&p, context).ok())
    } else {
        let vocab = files::put(&dir, "vocab.json", first);
        let merges = files::put(&dir, "merges.txt", merges);
        vocab
            .zip(merges)
            .and_then(|(v, m)| ClipTokenizer::from_vocab_merges(&v, &m, context).ok())
    };
    if let Some(tokenizer) = loaded {
        for text in TEXTS {
            let _ = tokenizer.encode(text);
            let _ = tokenizer.tokenize(text);
        }
    }
});
