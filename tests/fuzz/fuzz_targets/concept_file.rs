//! The concept file reader (`ConceptFile::load` and the checkpoint check on top of it).
#![no_main]

use libfuzzer_sys::fuzz_target;

mod files;

fuzz_target!(|data: &[u8]| {
    let Some(dir) = files::scratch_dir() else {
        return;
    };
    let Some(path) = files::put(&dir, "concept.m2c", data) else {
        return;
    };
    match m2c::concept::file::ConceptFile::load(&path) {
        Ok(file) => {
            let _ = m2c::concept::file::ConceptFile::load_for_checkpoint(&path, &file.checkpoint);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
