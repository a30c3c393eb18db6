//! Exports: label maps composed from the class masks, written through `crate::study`'s PNG and
//! NIfTI writers, with the annotation provenance (review state, HUE, tool, concept id,
//! checkpoint hash and time per class) in a JSON sidecar.
//!
//! For NIfTI the provenance goes under an `"annotation"` key of the study writer's own sidecar
//! (`x.json` beside `x.nii.gz`), so one file describes the labels. For PNG folders it is one
//! JSON file listing every mask written.

pub(crate) mod plan;
pub(crate) mod seg;

use std::path::{Path, PathBuf};

use super::document::{ItemId, LabelClass, MaskProvenance, ReviewState, now_unix_ms};
use super::error::{AnnotationError, Result};
use super::project::Project;
use super::snapshot::{sync_dir, write_atomic};
use crate::study::nifti::{LabelInfo, LabelSidecar, Provenance as StudyProvenance};
use crate::study::{self, LabelMap, LabelVolume, MaskEncoding, VolumeGeometry};

/// The annotation part of an export sidecar.
#[derive(Debug, Clone, serde::Serialize)]
struct AnnotationSidecar {
    software: String,
    exported_unix_ms: u64,
    classes: Vec<LabelClass>,
    items: Vec<ExportedItem>,
}

/// Provenance of one exported image or slice.
#[derive(Debug, Clone, serde::Serialize)]
struct ExportedItem {
    key: String,
    /// The PNG written for it (PNG exports).
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<PathBuf>,
    /// Its index along the volume's slice axis (NIfTI exports).
    #[serde(skip_serializing_if = "Option::is_none")]
    slice: Option<usize>,
    state: ReviewState,
    #[serde(skip_serializing_if = "Option::is_none")]
    hue: Option<f32>,
    masks: Vec<ExportedMask>,
}

#[derive(Debug, Clone, serde::Serialize)]
struct ExportedMask {
    class: u8,
    pixels: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    provenance: Option<MaskProvenance>,
}

impl Project {
    /// The item's labels as one map: each pixel holds the value of the class whose mask covers
    /// it; where masks overlap, the higher class value wins.
    pub fn label_map(&mut self, item: ItemId) -> Result<LabelMap> {
        let size = self
            .item(item)
            .ok_or(AnnotationError::UnknownItem { item })?
            .size();
        let mut map = LabelMap::new(size.width, size.height);
        for (&class, mask) in self.masks(item)? {
            for (label, &set) in map.labels.iter_mut().zip(mask.as_bytes()) {
                if set != 0 {
                    *label = u16::from(class);
                }
            }
        }
        Ok(map)
    }

    /// Writes one PNG per `(item, path)` through the study's mask writer, then `sidecar`
    /// (JSON) with every item's provenance.
    pub fn export_png(
        &mut self,
        targets: &[(ItemId, PathBuf)],
        encoding: MaskEncoding,
        sidecar: &Path,
    ) -> Result<()> {
        let mut items = Vec::with_capacity(targets.len());
        for (item, path) in targets {
            let map = self.label_map(*item)?;
            study::write_mask_png(path, &map, encoding).map_err(|source| {
                AnnotationError::WriteExport {
                    path: path.clone(),
                    source,
                }
            })?;
            let mut entry = self.exported_item(*item)?;
            entry.file = Some(path.clone());
            items.push(entry);
        }
        let json = serde_json::to_vec_pretty(&self.annotation_sidecar(items))
            .map_err(|e| sidecar_error(sidecar, e.into()))?;
        write_sidecar(sidecar, &json)?;
        tracing::info!(masks = targets.len(), "PNG masks exported");
        Ok(())
    }

    /// Stacks `slices` (in the series' slice order) into a label volume on `geometry` and
    /// writes it with the study's NIfTI writer; the sidecar gets the label names and colours,
    /// `provenance`, and the annotation provenance under `"annotation"`.
    pub fn export_nifti(
        &mut self,
        slices: &[ItemId],
        geometry: &VolumeGeometry,
        path: &Path,
        mut provenance: StudyProvenance,
    ) -> Result<()> {
        let maps = slices
            .iter()
            .map(|&s| self.label_map(s))
            .collect::<Result<Vec<_>>>()?;
        let volume =
            LabelVolume::from_slices(&maps).ok_or(AnnotationError::ExportSlicesDiffer {
                path: path.to_path_buf(),
            })?;
        let labels = self
            .classes()
            .map(|c| LabelInfo {
                value: u16::from(c.value),
                name: c.name.clone(),
                color: c.colour,
            })
            .collect();
        if provenance.method.is_none() {
            provenance.method = Some(self.method_summary(slices));
        }
        let sidecar = LabelSidecar { labels, provenance };
        study::write_label_volume(path, &volume, geometry, &sidecar).map_err(|source| {
            AnnotationError::WriteExport {
                path: path.to_path_buf(),
                source,
            }
        })?;
        let items = slices
            .iter()
            .enumerate()
            .map(|(k, &s)| {
                let mut entry = self.exported_item(s)?;
                entry.slice = Some(k);
                Ok(entry)
            })
            .collect::<Result<Vec<_>>>()?;
        add_to_study_sidecar(&study::sidecar_path(path), &self.annotation_sidecar(items))
    }

    fn exported_item(&mut self, item: ItemId) -> Result<ExportedItem> {
        let info = self
            .item(item)
            .ok_or(AnnotationError::UnknownItem { item })?;
        let (key, state, hue) = (info.key().to_owned(), info.state(), info.hue());
        let provenance: Vec<(u8, Option<MaskProvenance>)> = self
            .classes()
            .map(|c| (c.value, info.provenance(c.value).cloned()))
            .collect();
        let masks = self.masks(item)?;
        let masks = provenance
            .into_iter()
            .filter_map(|(class, provenance)| {
                let pixels = masks.get(&class).map_or(0, |m| m.count());
                (pixels > 0 || provenance.is_some()).then_some(ExportedMask {
                    class,
                    pixels,
                    provenance,
                })
            })
            .collect();
        Ok(ExportedItem {
            key,
            file: None,
            slice: None,
            state,
            hue,
            masks,
        })
    }

    fn annotation_sidecar(&self, items: Vec<ExportedItem>) -> AnnotationSidecar {
        AnnotationSidecar {
            software: format!("m2c {}", env!("CARGO_PKG_VERSION")),
            exported_unix_ms: now_unix_ms(),
            classes: self.classes().cloned().collect(),
            items,
        }
    }

    /// "m2c annotation: 12 accepted, 3 corrected" (review states of the exported items).
    fn method_summary(&self, items: &[ItemId]) -> String {
        let mut counts: Vec<(ReviewState, usize)> = Vec::new();
        for state in items
            .iter()
            .filter_map(|&i| self.item(i))
            .map(|i| i.state())
        {
            match counts.iter_mut().find(|(s, _)| *s == state) {
                Some((_, n)) => *n += 1,
                None => counts.push((state, 1)),
            }
        }
        let parts: Vec<String> = counts
            .iter()
            .map(|(s, n)| format!("{n} {}", format!("{s:?}").to_lowercase()))
            .collect();
        format!("m2c annotation: {}", parts.join(", "))
    }
}

fn sidecar_error(path: &Path, source: std::io::Error) -> AnnotationError {
    AnnotationError::WriteExportSidecar {
        path: path.to_path_buf(),
        source,
    }
}

fn write_sidecar(path: &Path, json: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    write_atomic(path, json)
        .and_then(|()| sync_dir(dir))
        .map_err(|e| sidecar_error(path, e))
}

/// Adds `"annotation": …` to the JSON sidecar the study writer produced, keeping its fields.
fn add_to_study_sidecar(path: &Path, annotation: &AnnotationSidecar) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| sidecar_error(path, e))?;
    let mut json: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| sidecar_error(path, e.into()))?;
    let value = serde_json::to_value(annotation).map_err(|e| sidecar_error(path, e.into()))?;
    let Some(object) = json.as_object_mut() else {
        let reason = std::io::Error::other("the study sidecar is not a JSON object");
        return Err(sidecar_error(path, reason));
    };
    object.insert("annotation".to_owned(), value);
    let out = serde_json::to_vec_pretty(&json).map_err(|e| sidecar_error(path, e.into()))?;
    write_sidecar(path, &out)
}

#[cfg(test)]
mod tests {
    use crate::annotation::{Brush, LabelClass, Project, ProjectOptions, ReviewState};
    use crate::study::MaskEncoding;

    fn project(dir: &std::path::Path) -> (Project, crate::annotation::ItemId) {
        let mut p = Project::create(&dir.join("p"), None, ProjectOptions::default()).unwrap();
        for (value, name) in [(1, "lesion"), (2, "cyst")] {
            p.set_class(LabelClass {
                value,
                name: name.into(),
                colour: [255, 0, 0],
                concept: None,
            })
            .unwrap();
        }
        let item = p.add_item("a.png", 40, 30).unwrap();
        let brush = Brush {
            radius_px: 5.0,
            erase: false,
        };
        for (class, x) in [(1, 10.0), (2, 14.0)] {
            p.begin_stroke(item, class, brush).unwrap();
            p.stroke_to([x, 10.0]).unwrap();
            p.end_stroke().unwrap();
        }
        (p, item)
    }

    #[test]
    fn label_map_gives_overlaps_to_the_higher_class() {
        let dir = tempfile::tempdir().unwrap();
        let (mut p, item) = project(dir.path());
        let map = p.label_map(item).unwrap();
        assert_eq!(map.get(6, 10), Some(1));
        assert_eq!(map.get(12, 10), Some(2));
        assert_eq!(map.get(39, 29), Some(0));
    }

    #[test]
    fn png_export_writes_masks_and_provenance() {
        let dir = tempfile::tempdir().unwrap();
        let (mut p, item) = project(dir.path());
        let out = dir.path().join("a_mask.png");
        let sidecar = dir.path().join("provenance.json");
        p.export_png(&[(item, out.clone())], MaskEncoding::LabelValues, &sidecar)
            .unwrap();
        let back = crate::study::read_mask_png(&out).unwrap();
        assert_eq!(back, p.label_map(item).unwrap());
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&sidecar).unwrap()).unwrap();
        let entry = &json["items"][0];
        assert_eq!(entry["key"], "a.png");
        assert_eq!(
            entry["state"],
            serde_json::to_value(ReviewState::Corrected).unwrap()
        );
        assert_eq!(entry["masks"][0]["provenance"]["created"]["tool"], "brush");
    }

    #[test]
    fn nifti_export_stacks_slices_and_adds_provenance_to_the_study_sidecar() {
        let dir = tempfile::tempdir().unwrap();
        let (mut p, first) = project(dir.path());
        let second = p.add_item("b.png", 40, 30).unwrap();
        let geometry = crate::study::VolumeGeometry::unit_grid([40, 30, 2]);
        let path = dir.path().join("labels.nii.gz");
        let provenance = crate::study::nifti::Provenance::default();
        p.export_nifti(&[first, second], &geometry, &path, provenance)
            .unwrap();
        assert!(path.is_file());
        let sidecar = crate::study::sidecar_path(&path);
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&sidecar).unwrap()).unwrap();
        assert_eq!(
            json["labels"][1]["name"], "cyst",
            "the study writer's fields stay"
        );
        assert_eq!(json["annotation"]["items"][1]["slice"], 1);
        assert_eq!(json["annotation"]["items"][1]["key"], "b.png");
        let method = json["provenance"]["method"].as_str().unwrap();
        assert!(method.contains("1 corrected"), "{method}");
    }

    #[test]
    fn slices_of_different_sizes_are_not_stacked() {
        let dir = tempfile::tempdir().unwrap();
        let (mut p, first) = project(dir.path());
        let other = p.add_item("c.png", 20, 30).unwrap();
        let geometry = crate::study::VolumeGeometry::unit_grid([40, 30, 2]);
        let path = dir.path().join("labels.nii");
        let result = p.export_nifti(
            &[first, other],
            &geometry,
            &path,
            crate::study::nifti::Provenance::default(),
        );
        assert!(matches!(
            result,
            Err(crate::annotation::AnnotationError::ExportSlicesDiffer { .. })
        ));
        assert!(!path.exists());
    }
}
