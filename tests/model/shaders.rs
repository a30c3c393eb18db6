//! Every WGSL shader in `shaders/` parses and validates with naga, so a broken shader fails
//! CI without a GPU.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers panic on setup failure"
)]

use std::path::PathBuf;

fn shader_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("shaders/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wgsl"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_wgsl_shader_validates() {
    let files = shader_files();
    assert!(!files.is_empty(), "no .wgsl files found in shaders/");
    for path in files {
        let source = std::fs::read_to_string(&path).expect("readable shader");
        let module = naga::front::wgsl::parse_str(&source).unwrap_or_else(|e| {
            panic!("{}: {}", path.display(), e.emit_to_string(&source));
        });
        let mut validator = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::default(),
        );
        if let Err(e) = validator.validate(&module) {
            panic!("{}: {}", path.display(), e.emit_to_string(&source));
        }
        assert!(
            !module.entry_points.is_empty(),
            "{}: no entry points",
            path.display()
        );
    }
}

#[test]
fn a_broken_shader_is_rejected() {
    // Guards the guard: the check above must be able to fail.
    let bad = "@fragment fn fs_main() -> @location(0) vec4<f32> { return vec3<f32>(1.0); }";
    let parsed = naga::front::wgsl::parse_str(bad);
    let failed = match parsed {
        Err(_) => true,
        Ok(module) => naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::default(),
        )
        .validate(&module)
        .is_err(),
    };
    assert!(failed, "naga accepted a shader that returns the wrong type");
}
