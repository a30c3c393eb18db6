#![allow(dead_code, reason = "each target uses some of these helpers")]

//! Shared by the file-reader fuzz targets: a per-process scratch folder, emptied before each
//! input (the readers take paths), and a valid project to copy the snapshot from. No panic is
//! caught: any panic in `m2c` or below aborts and counts as a crash.

use std::path::{Path, PathBuf};

/// A fresh, empty scratch folder for this process (the same path every call).
pub fn scratch_dir() -> Option<PathBuf> {
    let dir = std::env::temp_dir().join(format!("m2c-fuzz-files-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).ok()?;
    }
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir)
}

/// Writes `bytes` to `dir/name`.
pub fn put(dir: &Path, name: &str, bytes: &[u8]) -> Option<PathBuf> {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).ok()?;
    }
    std::fs::write(&path, bytes).ok()?;
    Some(path)
}

/// Splits `data` at the first occurrence of `sep` (the whole input and nothing when absent).
pub fn split2<'a>(data: &'a [u8], sep: &[u8]) -> (&'a [u8], &'a [u8]) {
    match data.windows(sep.len()).position(|w| w == sep) {
        Some(i) => (&data[..i], &data[i + sep.len()..]),
        None => (data, &[]),
    }
}

/// CRC-32 (IEEE), bitwise: the fuzz workspace has no crc crate of its own.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A valid project made once per process through the public API: class 1, items `a`
/// (70 × 65, a painted stroke) and `b` (3 × 2), saved (snapshot generation 1).
pub struct Template {
    pub dir: PathBuf,
    pub generation: u64,
}

pub fn template_project() -> Option<&'static Template> {
    static TEMPLATE: std::sync::OnceLock<Option<Template>> = std::sync::OnceLock::new();
    TEMPLATE.get_or_init(make_template).as_ref()
}

fn make_template() -> Option<Template> {
    use m2c::annotation::{Brush, LabelClass, Project, ProjectOptions};
    let dir = std::env::temp_dir().join(format!("m2c-fuzz-template-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut project = Project::create(&dir, None, ProjectOptions::default()).ok()?;
    project
        .set_class(LabelClass {
            value: 1,
            name: "lesion".into(),
            colour: [255, 0, 0],
            concept: None,
        })
        .ok()?;
    let a = project.add_item("a", 70, 65).ok()?;
    project.add_item("b", 3, 2).ok()?;
    let brush = Brush {
        radius_px: 6.0,
        erase: false,
    };
    project.begin_stroke(a, 1, brush).ok()?;
    project.stroke_to([10.0, 10.0]).ok()?;
    project.stroke_to([50.0, 40.0]).ok()?;
    project.end_stroke().ok()?;
    project.save().ok()?;
    let generation = project.generation();
    Some(Template { dir, generation })
}

/// Copies the template's snapshot and mask files (not its journal or lock) into `dst`.
pub fn copy_snapshot(src: &Path, dst: &Path) -> Option<()> {
    std::fs::copy(src.join("snapshot.json"), dst.join("snapshot.json")).ok()?;
    let masks = src.join("masks");
    for item in std::fs::read_dir(&masks).ok()? {
        let item = item.ok()?;
        let target = dst.join("masks").join(item.file_name());
        std::fs::create_dir_all(&target).ok()?;
        for file in std::fs::read_dir(item.path()).ok()? {
            let file = file.ok()?;
            std::fs::copy(file.path(), target.join(file.file_name())).ok()?;
        }
    }
    Some(())
}

/// What the app does with an opened project: reads the recovery report, every item's key,
/// state and masks.
pub fn touch_everything(mut project: m2c::annotation::Project) {
    let _ = format!("{:?}", project.recovery());
    let keys: Vec<String> = project.items().iter().map(|i| i.key().to_owned()).collect();
    for key in keys {
        if let Some(id) = project.find_item(&key) {
            let _ = project.item(id).map(|i| (i.state(), i.hue()));
            let _ = project.masks(id).map(|m| m.len());
        }
    }
}
