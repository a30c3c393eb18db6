//! Shared by the fuzz targets: write the input to a per-process scratch file (the study API
//! reads paths), then run discovery, decoding and windowing the way the app does.

use std::path::PathBuf;
use std::sync::Once;

use m2c::study::{self, default_window, rgb8_from_slice};

static HOOK: Once = Once::new();

/// The app catches panics raised inside third-party pixel decoders and turns them into
/// `StudyError::UnsupportedPixelFormat`; libFuzzer's hook would abort on them instead. This
/// hook keeps the shipped behaviour and prints where the panic was, so the run's log shows
/// every caught decoder panic. Panics that escape `m2c` still abort and count as crashes.
fn quiet_hook() {
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            eprintln!("caught panic at {:?}", info.location());
        }));
    });
}

pub fn scratch_file(name: &str, bytes: &[u8]) -> Option<PathBuf> {
    quiet_hook();
    let dir = std::env::temp_dir().join(format!("m2c-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let path = dir.join(name);
    std::fs::write(&path, bytes).ok()?;
    Some(path)
}

/// Discovery, then decode and window at most a few frames of every series.
pub fn exercise(path: &std::path::Path) {
    let found = study::discover(path);
    for err in &found.skipped {
        let _ = err.to_string();
    }
    for series in &found.series {
        for k in 0..series.len().min(3) {
            if let Ok(slice) = series.load_slice(k) {
                let _ = rgb8_from_slice(&slice, default_window(&slice));
            }
        }
    }
}
