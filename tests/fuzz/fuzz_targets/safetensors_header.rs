//! The safetensors header and tensor table readers: the header check of `m2c doctor` and the
//! Settings dialog (`inspect_checkpoint`, `check_weights`, with and without a `config.json`
//! beside the file), the checkpoint identity, and burn-store's table reader behind the
//! tracker-weights probe. The input is the checkpoint file; after a `\n--config--\n` line the
//! rest is written as the folder's `config.json`.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod files;

fuzz_target!(|data: &[u8]| {
    let Some(dir) = files::scratch_dir() else {
        return;
    };
    let (weights, config) = files::split2(data, b"\n--config--\n");
    let Some(path) = files::put(&dir, "model.safetensors", weights) else {
        return;
    };
    if !config.is_empty() {
        let _ = files::put(&dir, "config.json", config);
    }
    if let Ok(summary) = m2c::engine::weights::inspect_checkpoint(&path) {
        let _ = format!("{summary:?}");
    }
    let _ = m2c::engine::weights::checkpoint_tensor_names(&path);
    let _ = m2c::engine::weights::checkpoint_identity(&path);
    let check = m2c::engine::settings::check_weights(Some(&dir));
    let _ = check.message();
    let _ = m2c::model::Sam3Tracker::file_has_weights(&path);
});
