//! Labelled image sets for the headless commands: a manifest (`manifest.tsv` as in
//! `shared/data/*`: tab-separated with a header naming at least `file` and `mask`, optionally
//! `split`; paths relative to the manifest's folder) or a folder with `images/` and `masks/`
//! paired by file stem. Masks are read as grayscale, foreground where the value is > 127.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Extensions of the image files the commands read.
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp", "tif", "tiff"];

/// Failures reading a labelled set.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("cannot decode mask {}", path.display())]
    Mask {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
}

/// One labelled image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledItem {
    pub image: PathBuf,
    pub mask: PathBuf,
    /// The manifest's `split` column (`support`, `query`, …), if any.
    pub split: Option<String>,
}

impl LabelledItem {
    /// Name used for output files and reports: the image's file stem.
    pub fn stem(&self) -> String {
        self.image
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// Reads a manifest file or a folder with `images/` and `masks/` (see the module docs).
pub fn labelled_items(path: &Path) -> Result<Vec<LabelledItem>, DatasetError> {
    if path.is_dir() {
        let manifest = path.join("manifest.tsv");
        if manifest.is_file() {
            read_manifest(&manifest)
        } else {
            paired_folder(path)
        }
    } else {
        read_manifest(path)
    }
}

/// The rows of a manifest.
pub fn read_manifest(path: &Path) -> Result<Vec<LabelledItem>, DatasetError> {
    let text = std::fs::read_to_string(path).map_err(|source| DatasetError::Read {
        path: path.to_owned(),
        source,
    })?;
    let invalid = |reason: String| DatasetError::Invalid {
        path: path.to_owned(),
        reason,
    };
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .ok_or_else(|| invalid("empty manifest".to_owned()))?
        .split('\t')
        .map(str::trim)
        .collect();
    let column = |name: &str| header.iter().position(|h| *h == name);
    let (Some(file_col), Some(mask_col)) = (column("file"), column("mask")) else {
        return Err(invalid(format!(
            "the header must name `file` and `mask` columns (tab-separated); found {header:?}"
        )));
    };
    let split_col = column("split");
    let base = path.parent().unwrap_or(Path::new("."));
    let mut items = Vec::new();
    for (n, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split('\t').map(str::trim).collect();
        let cell = |i: usize| {
            cells
                .get(i)
                .copied()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| invalid(format!("row {} has no column {i}", n + 2)))
        };
        items.push(LabelledItem {
            image: base.join(cell(file_col)?),
            mask: base.join(cell(mask_col)?),
            split: split_col
                .and_then(|i| cells.get(i))
                .map(|s| (*s).to_owned()),
        });
    }
    if items.is_empty() {
        return Err(invalid("no rows".to_owned()));
    }
    Ok(items)
}

/// `dir/images/x.*` paired with `dir/masks/x.*`.
fn paired_folder(dir: &Path) -> Result<Vec<LabelledItem>, DatasetError> {
    let (images, masks) = (dir.join("images"), dir.join("masks"));
    if !images.is_dir() || !masks.is_dir() {
        return Err(DatasetError::Invalid {
            path: dir.to_owned(),
            reason: "expected a manifest.tsv, or `images/` and `masks/` folders whose files \
                     pair by name"
                .to_owned(),
        });
    }
    let masks = by_stem(&image_files(&masks)?);
    let mut items = Vec::new();
    for image in image_files(&images)? {
        let stem = stem_of(&image);
        if let Some(mask) = masks.get(&stem) {
            items.push(LabelledItem {
                image,
                mask: mask.clone(),
                split: None,
            });
        }
    }
    if items.is_empty() {
        return Err(DatasetError::Invalid {
            path: dir.to_owned(),
            reason: "no image in images/ has a mask of the same name in masks/".to_owned(),
        });
    }
    Ok(items)
}

fn stem_of(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn by_stem(files: &[PathBuf]) -> BTreeMap<String, PathBuf> {
    files.iter().map(|p| (stem_of(p), p.clone())).collect()
}

/// Image files directly in `dir` (by extension), sorted by name.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let read_err = |source| DatasetError::Read {
        path: dir.to_owned(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if path.is_file() && IMAGE_EXTENSIONS.contains(&ext.as_str()) {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// A binary mask file: foreground where the grayscale value is > 127; with its size.
pub fn read_mask(path: &Path) -> Result<(Vec<bool>, usize, usize), DatasetError> {
    let img = image::open(path)
        .map_err(|source| DatasetError::Mask {
            path: path.to_owned(),
            source,
        })?
        .to_luma8();
    let (w, h) = img.dimensions();
    let flags = img.into_raw().into_iter().map(|v| v > 127).collect();
    Ok((
        flags,
        usize::try_from(w).unwrap_or(0),
        usize::try_from(h).unwrap_or(0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_rows_resolve_against_its_folder_and_keep_the_split() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.tsv");
        std::fs::write(
            &path,
            "file\tmask\tsplit\twidth\nimages/a.jpg\tmasks/a.png\tsupport\t10\n\
             images/b.jpg\tmasks/b.png\tquery\t10\n",
        )
        .unwrap();
        let items = labelled_items(dir.path()).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].image, dir.path().join("images/a.jpg"));
        assert_eq!(items[1].mask, dir.path().join("masks/b.png"));
        assert_eq!(items[0].split.as_deref(), Some("support"));
        assert_eq!(items[1].stem(), "b");
    }

    #[test]
    fn a_manifest_without_the_needed_columns_says_what_it_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.tsv");
        std::fs::write(&path, "image,mask\na.png,b.png\n").unwrap();
        let err = read_manifest(&path).unwrap_err().to_string();
        assert!(err.contains("`file` and `mask`"), "{err}");
    }

    #[test]
    fn folders_pair_images_and_masks_by_stem() {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["images", "masks"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        for name in ["images/x.jpg", "images/y.png", "masks/x.png", "masks/z.png"] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let items = labelled_items(dir.path()).unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].mask, dir.path().join("masks/x.png"));
        let err = labelled_items(&dir.path().join("images")).unwrap_err();
        assert!(err.to_string().contains("images/"), "{err}");
    }
}
