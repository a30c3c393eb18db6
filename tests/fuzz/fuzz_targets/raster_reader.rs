//! PNG/JPEG/TIFF/BMP reader and the PNG mask reader, fed the raw input.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    if let Some(path) = common::scratch_file("input.png", data) {
        common::exercise(&path);
        let _ = m2c::study::read_mask_png(&path);
    }
});
