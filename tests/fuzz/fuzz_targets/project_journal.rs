//! The project journal reader: `Project::open` on a fixed, valid snapshot (two items, one
//! class, one mask file; made once per process through the public API) and a fuzzed
//! `journal.m2cj`, then every item's masks are loaded.
//!
//! The first input byte picks the mode. Odd: the rest is the journal file as is (header,
//! framing and checksums are fuzzed too). Even: the rest is a list of record payloads split at
//! `\n--rec--\n`, framed with correct lengths and CRC-32s behind a valid header, so the record
//! decoder (JSON ops, deflated tiles) and the replay see fuzzed payloads, not checksum failures.
#![no_main]

use libfuzzer_sys::fuzz_target;
use m2c::annotation::{Project, ProjectOptions};

mod files;

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(&u32::try_from(payload.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&files::crc32(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Some(template) = files::template_project() else {
        return;
    };
    let Some(dir) = files::scratch_dir() else {
        return;
    };
    if files::copy_snapshot(&template.dir, &dir).is_none() {
        return;
    }
    let journal = if mode % 2 == 1 {
        rest.to_vec()
    } else {
        let mut bytes = b"M2CJRNL1".to_vec();
        bytes.extend_from_slice(&template.generation.to_le_bytes());
        let mut remaining = rest;
        while !remaining.is_empty() {
            let (payload, tail) = files::split2(remaining, b"\n--rec--\n");
            bytes.extend_from_slice(&frame(payload));
            remaining = tail;
        }
        bytes
    };
    if files::put(&dir, "journal.m2cj", &journal).is_none() {
        return;
    }
    if let Ok(project) = Project::open(&dir, ProjectOptions::default()) {
        files::touch_everything(project);
    }
});
