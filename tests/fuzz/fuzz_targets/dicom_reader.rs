//! DICOM reader: the input follows a 128-byte preamble and the `DICM` marker, so most inputs
//! reach the meta group and data set parsers, then pixel decoding.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let mut bytes = vec![0u8; 128];
    bytes.extend_from_slice(b"DICM");
    bytes.extend_from_slice(data);
    if let Some(path) = common::scratch_file("input.dcm", &bytes) {
        common::exercise(&path);
    }
});
