//! Discovery: walk files and folders, recognise each file by its content (not its name), read
//! headers only, and group DICOM frames into ordered series.
//!
//! Nothing is decoded here: DICOM files are read up to Pixel Data, raster images up to their
//! size, so listing thousands of files costs one header read each. Hidden entries (names that
//! start with `.`) are not visited. Symlinked folders are not followed (no cycles).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use crate::study::dicom::{self, DicomHeader, transfer_syntax_name};
use crate::study::geometry::stack_geometry;
use crate::study::raster;
use crate::study::{FrameRef, Result, Series, SeriesKind, Study, StudyError};

/// What a file's first bytes say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Dicom,
    Raster,
}

/// Discovers every image under `path` (a file or a folder, searched recursively).
pub fn discover(path: &Path) -> Study {
    discover_paths(std::slice::from_ref(&path.to_path_buf()))
}

/// Discovers every image in `paths` (files and folders, folders searched recursively).
pub fn discover_paths(paths: &[PathBuf]) -> Study {
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for path in paths {
        collect_files(path, &mut files, &mut skipped);
    }
    let mut headers = Vec::new();
    let mut series = Vec::new();
    for file in files {
        match sniff(&file) {
            Ok(FileKind::Dicom) => match dicom::read_header(&file) {
                Ok(h) => headers.push(h),
                Err(e) => skipped.push(e),
            },
            Ok(FileKind::Raster) => match raster::raster_series(&file) {
                Ok(s) => series.push(s),
                Err(e) => skipped.push(e),
            },
            Err(e) => skipped.push(e),
        }
    }
    series.extend(group_dicom(headers, &mut skipped));
    series.sort_by(|a, b| a.first_path().cmp(&b.first_path()));
    tracing::debug!(
        series = series.len(),
        skipped = skipped.len(),
        "discovery finished"
    );
    Study { series, skipped }
}

fn collect_files(path: &Path, files: &mut Vec<PathBuf>, skipped: &mut Vec<StudyError>) {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(source) => {
            skipped.push(StudyError::ReadFile {
                path: path.to_path_buf(),
                source,
            });
            return;
        }
    };
    if !meta.is_dir() {
        files.push(path.to_path_buf());
        return;
    }
    let entries = match fs::read_dir(path) {
        Ok(entries) => entries,
        Err(source) => {
            skipped.push(StudyError::ReadFile {
                path: path.to_path_buf(),
                source,
            });
            return;
        }
    };
    let mut children: Vec<(PathBuf, bool)> = entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            let is_symlink_dir = entry.file_type().ok()?.is_symlink() && entry.path().is_dir();
            (!hidden && !is_symlink_dir).then(|| (entry.path(), entry.path().is_dir()))
        })
        .collect();
    children.sort();
    for (child, is_dir) in children {
        if is_dir {
            collect_files(&child, files, skipped);
        } else {
            files.push(child);
        }
    }
}

/// Recognises DICOM (the `DICM` marker at byte 128) and PNG, JPEG, TIFF and BMP by magic
/// number; anything else is [`StudyError::NotAnImage`] with a reason.
pub(crate) fn sniff(path: &Path) -> Result<FileKind> {
    let read_err = |source| StudyError::ReadFile {
        path: path.to_path_buf(),
        source,
    };
    let file = fs::File::open(path).map_err(read_err)?;
    let mut head = Vec::with_capacity(132);
    file.take(132).read_to_end(&mut head).map_err(read_err)?;
    if head.is_empty() {
        return Err(StudyError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    if head.get(128..132) == Some(b"DICM") {
        return Ok(FileKind::Dicom);
    }
    const MAGICS: [&[u8]; 5] = [
        b"\x89PNG\r\n\x1a\n",
        b"\xff\xd8\xff",
        b"II*\0",
        b"MM\0*",
        b"BM",
    ];
    if MAGICS.iter().any(|m| head.starts_with(m)) {
        return Ok(FileKind::Raster);
    }
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let reason = match ext.as_str() {
        "dcm" | "dicom" | "ima" if head.len() < 132 => {
            format!("too short for a DICOM file ({} bytes)", head.len())
        }
        "dcm" | "dicom" | "ima" => "no DICM marker at byte 128".to_owned(),
        "png" | "jpg" | "jpeg" | "tif" | "tiff" | "bmp" => {
            format!("the .{ext} extension does not match the file's content")
        }
        "nii" | "gz" => "NIfTI input is not supported".to_owned(),
        _ => "not DICOM, PNG, JPEG, TIFF or BMP".to_owned(),
    };
    Err(StudyError::NotAnImage {
        path: path.to_path_buf(),
        reason,
    })
}

/// Groups headers by SeriesInstanceUID, drops repeated SOP instances and frames whose size
/// differs from the series, orders frames and computes geometry.
fn group_dicom(headers: Vec<DicomHeader>, skipped: &mut Vec<StudyError>) -> Vec<Series> {
    let mut groups: BTreeMap<String, Vec<DicomHeader>> = BTreeMap::new();
    for h in headers {
        groups.entry(h.series_key.clone()).or_default().push(h);
    }
    groups
        .into_values()
        .filter_map(|group| build_series(group, skipped))
        .collect()
}

fn build_series(mut group: Vec<DicomHeader>, skipped: &mut Vec<StudyError>) -> Option<Series> {
    group.sort_by(|a, b| a.path.cmp(&b.path));
    let first = group.first()?.clone();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    let mut kept = Vec::new();
    for h in group {
        if (h.columns, h.rows) != (first.columns, first.rows) {
            skipped.push(StudyError::SizeMismatch {
                path: h.path,
                expected_width: first.columns,
                expected_height: first.rows,
                found_width: h.columns,
                found_height: h.rows,
            });
            continue;
        }
        if let Some(uid) = &h.sop_instance_uid {
            if let Some(other) = seen.get(uid) {
                skipped.push(StudyError::DuplicateInstance {
                    path: h.path,
                    other: other.clone(),
                });
                continue;
            }
            seen.insert(uid.clone(), h.path.clone());
        }
        kept.push(h);
    }
    // One entry per frame: (placement, instance number, path, frame).
    let mut frames: Vec<_> = kept
        .iter()
        .flat_map(|h| {
            (0..h.frames).map(move |f| {
                let placement = h.placements.get(f as usize).copied().flatten();
                (placement, h.instance_number, h.path.clone(), f)
            })
        })
        .collect();
    let all_placed = frames.iter().all(|(p, ..)| p.is_some());
    let normal = frames.first().and_then(|(p, ..)| p.map(|p| p.normal()));
    match normal {
        Some(n) if all_placed => frames.sort_by(|a, b| {
            let da =
                a.0.map_or(0.0, |p| crate::study::geometry::dot(p.position, n));
            let db =
                b.0.map_or(0.0, |p| crate::study::geometry::dot(p.position, n));
            da.total_cmp(&db)
                .then_with(|| (&a.2, a.3).cmp(&(&b.2, b.3)))
        }),
        _ => frames.sort_by(|a, b| (a.1, &a.2, a.3).cmp(&(b.1, &b.2, b.3))),
    }
    let placements: Vec<_> = frames.iter().map(|(p, ..)| *p).collect();
    let width = first.columns as usize;
    let height = first.rows as usize;
    let (geometry, issues) = match first.pixel_spacing {
        Some(spacing) if placements.iter().any(Option::is_some) => stack_geometry(
            &placements,
            width,
            height,
            spacing,
            first.slice_thickness.unwrap_or(1.0),
        ),
        _ => (None, Vec::new()),
    };
    let mut encodings: Vec<String> = kept
        .iter()
        .map(|h| transfer_syntax_name(&h.transfer_syntax_uid).to_owned())
        .collect();
    encodings.sort();
    encodings.dedup();
    Some(Series {
        key: first.series_key,
        kind: SeriesKind::Dicom,
        modality: first.modality,
        width: first.columns,
        height: first.rows,
        frames: frames
            .into_iter()
            .map(|(_, _, path, frame)| FrameRef { path, frame })
            .collect(),
        samples_per_pixel: first.samples_per_pixel,
        encodings,
        geometry,
        issues,
        pixel_spacing_mm: first.pixel_spacing,
    })
}
