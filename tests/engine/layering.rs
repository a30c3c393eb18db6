//! Guard rail: modules may only depend in the direction of `shared/design/style.md` §2
//! (`app → engine → concept → model`, `app → annotation → study`, `engine → study`,
//! `cli → engine, concept, annotation, study`, `parity → model` (the fixture comparisons of the
//! tests and `m2c parity`, kept out of the pure model); `study` uses nothing of ours),
//! egui/eframe/rfd appear only under `app/`, burn never reaches `app/`, `study/` or
//! `annotation/`, only `engine/device.rs` names a concrete burn backend, and the app uses only
//! the engine's façade (what `engine/mod.rs` re-exports), never its submodules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers panic on setup failure"
)]

use std::path::{Path, PathBuf};

/// Our top-level modules, and which others each may use.
const ALLOWED: &[(&str, &[&str])] = &[
    ("app", &["engine", "annotation", "study"]),
    ("engine", &["concept", "model", "parity", "study"]),
    ("concept", &["model"]),
    ("model", &[]),
    ("parity", &["model"]),
    ("annotation", &["study"]),
    ("study", &[]),
    ("cli", &["engine", "concept", "annotation", "study"]),
    ("main", &["cli", "app"]),
    (
        "lib",
        &[
            "app",
            "cli",
            "concept",
            "engine",
            "annotation",
            "study",
            "model",
            "parity",
        ],
    ),
];

const UI_CRATES: &[&str] = &["egui", "eframe", "egui_wgpu", "rfd", "winit"];
const BURN_FREE: &[&str] = &["app", "study", "annotation", "cli", "main"];
const BACKEND_PATTERNS: &[&str] = &[
    "Device::flex",
    "Device::wgpu",
    "Device::vulkan",
    "Device::metal",
    "Device::webgpu",
    "Device::cuda",
    "Device::rocm",
    "Device::cpu",
    "Device::ndarray",
    "wgpu_options(",
    "burn::backend",
    "burn_wgpu",
    "burn_flex",
    "burn_cubecl",
    "Autodiff<",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file under `src/` belongs to.
fn module_of(rel: &Path) -> String {
    let mut parts = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned());
    let first = parts.next().unwrap_or_default();
    first.trim_end_matches(".rs").to_owned()
}

/// Names of our modules that `line` refers to through `crate::`.
fn crate_refs(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in line.match_indices("crate::") {
        let rest = &line[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
    }
    out
}

/// Submodules of `engine` that `line` reaches into (`crate::engine::worker::Event`, or
/// `crate::engine::{worker::Event, …}`), where the app must use the façade `engine/mod.rs`
/// re-exports.
fn engine_submodule_refs(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in line.match_indices("crate::engine::") {
        let rest = &line[i + "crate::engine::".len()..];
        let items: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => group[..group.find('}').unwrap_or(group.len())]
                .split(',')
                .collect(),
            None => vec![rest],
        };
        for item in items {
            let item = item.trim();
            let name: String = item
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let is_module = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
            if is_module && item[name.len()..].starts_with("::") {
                out.push(name);
            }
        }
    }
    out
}

fn mentions_crate(line: &str, krate: &str) -> bool {
    line.match_indices(krate).any(|(i, _)| {
        let before_ok = i == 0
            || !line[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
        before_ok && line[i + krate.len()..].starts_with("::")
    })
}

/// Every violation in one file's source; `rel` is the path under `src/`.
fn violations(rel: &Path, source: &str) -> Vec<String> {
    let module = module_of(rel);
    let allowed = ALLOWED
        .iter()
        .find(|(m, _)| *m == module)
        .map_or(&[][..], |(_, a)| *a);
    let is_device_rs = rel == Path::new("engine").join("device.rs");
    let mut found = Vec::new();
    for (n, raw) in source.lines().enumerate() {
        let line = raw.trim_start();
        if line.starts_with("//") {
            continue;
        }
        let at = format!("src/{}:{}", rel.display(), n + 1);
        for target in crate_refs(line) {
            let ours = ALLOWED.iter().any(|(m, _)| *m == target);
            if ours && target != module && !allowed.contains(&target.as_str()) {
                found.push(format!("{at}: {module} must not use crate::{target}"));
            }
        }
        if module == "app" {
            for sub in engine_submodule_refs(line) {
                found.push(format!(
                    "{at}: app reaches into crate::engine::{sub}; use what engine/mod.rs re-exports"
                ));
            }
        }
        if module != "app" {
            for krate in UI_CRATES {
                if mentions_crate(line, krate) || line.starts_with(&format!("use {krate}")) {
                    found.push(format!("{at}: {krate} is only allowed under app/"));
                }
            }
        }
        if BURN_FREE.contains(&module.as_str()) && mentions_crate(line, "burn") {
            found.push(format!("{at}: burn is not allowed in {module}"));
        }
        if !is_device_rs {
            for pat in BACKEND_PATTERNS {
                if line.contains(pat) {
                    found.push(format!(
                        "{at}: `{pat}` names a backend; only engine/device.rs may"
                    ));
                }
            }
        }
    }
    found
}

#[test]
fn modules_depend_only_in_the_allowed_direction() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 5, "found only {} source files", files.len());
    let mut all = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src/");
        let source = std::fs::read_to_string(file).expect("readable source");
        all.extend(violations(rel, &source));
    }
    assert!(all.is_empty(), "layering violations:\n{}", all.join("\n"));
}

#[test]
fn the_checker_catches_each_kind_of_violation() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "study/dicom.rs",
            "use crate::engine::Engine;",
            "must not use crate::engine",
        ),
        (
            "model/vit.rs",
            "use crate::{study, app};",
            "must not use crate::study",
        ),
        (
            "engine/worker.rs",
            "let ui = egui::Context::default();",
            "egui is only allowed",
        ),
        (
            "study/raster.rs",
            "use burn::tensor::Tensor;",
            "burn is not allowed",
        ),
        (
            "model/sam3.rs",
            "let d = Device::flex();",
            "names a backend",
        ),
        (
            "concept/search.rs",
            "let d = burn::backend::Wgpu::default();",
            "names a backend",
        ),
        (
            "app/learning.rs",
            "use crate::engine::worker::Event;",
            "reaches into crate::engine::worker",
        ),
        (
            "app/mod.rs",
            "use crate::engine::{Engine, device::DevicePlan};",
            "reaches into crate::engine::device",
        ),
    ];
    for (path, line, expected) in cases {
        let v = violations(Path::new(path), line);
        assert!(
            v.iter().any(|m| m.contains(expected)),
            "{path}: `{line}` should be flagged with {expected:?}, got {v:?}"
        );
    }
    // Allowed directions pass.
    assert!(
        violations(
            Path::new("app/mod.rs"),
            "use crate::engine::{Engine, Event};"
        )
        .is_empty()
    );
    assert!(
        violations(
            Path::new("cli/model.rs"),
            "use crate::engine::device::plan_for;"
        )
        .is_empty()
    );
    assert!(violations(Path::new("engine/device.rs"), "Device::flex()").is_empty());
    assert!(violations(Path::new("annotation/edit.rs"), "use crate::study::Mask;").is_empty());
    assert!(
        violations(
            Path::new("study/x.rs"),
            "// uses crate::engine in a comment"
        )
        .is_empty()
    );
}
