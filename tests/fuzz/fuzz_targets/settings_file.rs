//! The settings file reader (`ModelSettings::load_or_default`, what the app does at start).
#![no_main]

use libfuzzer_sys::fuzz_target;

mod files;

fuzz_target!(|data: &[u8]| {
    let Some(dir) = files::scratch_dir() else {
        return;
    };
    let Some(path) = files::put(&dir, "settings.json", data) else {
        return;
    };
    let (settings, error) = m2c::engine::settings::ModelSettings::load_or_default(&path);
    let _ = format!("{settings:?}");
    if let Some(e) = error {
        let _ = e.to_string();
    }
});
