//! The project snapshot reader: a fuzzed `snapshot.json` (and, after a `\n--mask--\n` line,
//! the bytes of `masks/000000/c1-g1.png`, the file the seed snapshot names) beside the mask
//! files of a valid project, opened with `Project::open`; then every item's masks are loaded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use m2c::annotation::{Project, ProjectOptions};

mod files;

fuzz_target!(|data: &[u8]| {
    let Some(template) = files::template_project() else {
        return;
    };
    let Some(dir) = files::scratch_dir() else {
        return;
    };
    if files::copy_snapshot(&template.dir, &dir).is_none() {
        return;
    }
    let (snapshot, mask) = files::split2(data, b"\n--mask--\n");
    if files::put(&dir, "snapshot.json", snapshot).is_none() {
        return;
    }
    if !mask.is_empty() && files::put(&dir, "masks/000000/c1-g1.png", mask).is_none() {
        return;
    }
    if let Ok(project) = Project::open(&dir, ProjectOptions::default()) {
        files::touch_everything(project);
    }
});
