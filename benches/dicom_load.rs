//! Study loading: the header-only discovery pass and the full decode, for the real 28-slice
//! head CT series (512², uncompressed) and the 200 Kvasir-SEG JPEGs in `../shared/data`.
//! Without the shared folder (set `M2C_SHARED` to point elsewhere) the benches print a skip
//! message and measure nothing.
#![allow(clippy::print_stderr)]

use std::path::PathBuf;

use m2c::study::{self, default_window, rgb8_from_slice};

fn main() {
    divan::main();
}

fn shared(rel: &str) -> Option<PathBuf> {
    let root = std::env::var_os("M2C_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let path = root.join(rel);
    if path.exists() {
        Some(path)
    } else {
        eprintln!("SKIP bench: {} not found (set M2C_SHARED)", path.display());
        None
    }
}

const CT: &str = "data/dicom/ct_head_series_ge";
const KVASIR: &str = "data/kvasir/images";

#[divan::bench(sample_count = 10)]
fn ct_header_pass(bencher: divan::Bencher) {
    let Some(dir) = shared(CT) else { return };
    bencher.bench(|| study::discover(&dir));
}

#[divan::bench(sample_count = 10)]
fn ct_full_decode(bencher: divan::Bencher) {
    let Some(dir) = shared(CT) else { return };
    bencher.bench(|| {
        let found = study::discover(&dir);
        found.series.first().map(|s| s.load_volume())
    });
}

#[divan::bench(sample_count = 10)]
fn ct_slice_to_model_rgb(bencher: divan::Bencher) {
    let Some(dir) = shared(CT) else { return };
    let found = study::discover(&dir);
    let Some(Ok(slice)) = found.series.first().map(|s| s.load_slice(14)) else {
        return;
    };
    bencher.bench(|| rgb8_from_slice(&slice, default_window(&slice)));
}

#[divan::bench(sample_count = 5)]
fn kvasir_header_pass(bencher: divan::Bencher) {
    let Some(dir) = shared(KVASIR) else { return };
    bencher.bench(|| study::discover(&dir));
}

#[divan::bench(sample_count = 3)]
fn kvasir_full_decode(bencher: divan::Bencher) {
    let Some(dir) = shared(KVASIR) else { return };
    bencher.bench(|| {
        let found = study::discover(&dir);
        found
            .series
            .iter()
            .filter_map(|s| s.load_slice(0).ok())
            .count()
    });
}
