//! A project's labels as a DICOM Segmentation: one segment per label class that has pixels on
//! the series, its algorithm type from the masks' provenance, and the class's codes from the
//! project's `segment_codes.json` (SNOMED-CT Tissue/Tissue unless the user chose others).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::annotation::document::{ItemId, MaskProvenance, ReviewState, Tool};
use crate::annotation::error::{AnnotationError, Result};
use crate::annotation::project::Project;
use crate::annotation::snapshot::{sync_dir, write_atomic};
use crate::study::Series;
use crate::study::seg::{
    self, Algorithm, AlgorithmType, Code, SegFrame, SegOptions, SegWritten, SegmentDescription,
};

/// The file in the project folder that keeps each class's segment coding.
pub const SEGMENT_CODES_FILE: &str = "segment_codes.json";

/// How one label class is described in a DICOM Segmentation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentCoding {
    /// Segmented Property Category, e.g. SCT 85756007 "Tissue" or 123037004 "Anatomical
    /// Structure".
    pub category: Code,
    /// Segmented Property Type, e.g. SCT 85756007 "Tissue" or 10200004 "Liver".
    pub property_type: Code,
    /// How the masks imported into this class were made, as their file said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported: Option<ImportedAlgorithm>,
}

impl Default for SegmentCoding {
    fn default() -> Self {
        Self {
            category: Code::tissue(),
            property_type: Code::tissue(),
            imported: None,
        }
    }
}

/// The algorithm type and identification of an imported segment, kept so that exporting it
/// again describes it as its source did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedAlgorithm {
    pub algorithm_type: AlgorithmType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<Algorithm>,
}

/// Options of a project's SEG export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegExportOptions {
    /// UID root, de-identification, series description, … of the written object.
    pub object: SegOptions,
    /// Codings chosen for this export, by class value; saved in the project for next time.
    pub codes: BTreeMap<u8, SegmentCoding>,
}

/// A model result in a mask's provenance: (concept search rather than box prompt, concept id,
/// checkpoint hash).
type ModelUse = (bool, Option<String>, Option<String>);

/// How one mask on one item came about, for `SegmentAlgorithmType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Origin {
    Manual,
    /// A model result a person accepted or edited.
    Reviewed,
    /// A model result nobody reviewed.
    Unreviewed,
    Imported,
}

fn origin(state: ReviewState, provenance: Option<&MaskProvenance>) -> Origin {
    let Some(p) = provenance else {
        return Origin::Manual;
    };
    let model = |t: Tool| matches!(t, Tool::ConceptSearch | Tool::BoxPrompt);
    if model(p.created.tool) || model(p.modified.tool) {
        if matches!(state, ReviewState::Accepted | ReviewState::Corrected) {
            Origin::Reviewed
        } else {
            Origin::Unreviewed
        }
    } else if p.created.tool == Tool::Import && p.modified.tool == Tool::Import {
        Origin::Imported
    } else {
        Origin::Manual
    }
}

impl Project {
    /// The segment codings saved in the project (classes without one use Tissue/Tissue).
    pub fn segment_codings(&self) -> Result<BTreeMap<u8, SegmentCoding>> {
        let path = self.root().join(SEGMENT_CODES_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(source) => return Err(AnnotationError::ReadSegmentCodes { path, source }),
        };
        serde_json::from_slice(&bytes).map_err(|e| AnnotationError::ReadSegmentCodes {
            path,
            source: e.into(),
        })
    }

    /// Saves `codes` over the codings of their classes (others are kept).
    pub fn save_segment_codings(&mut self, codes: &BTreeMap<u8, SegmentCoding>) -> Result<()> {
        if codes.is_empty() {
            return Ok(());
        }
        let mut all = self.segment_codings()?;
        all.extend(codes.iter().map(|(k, v)| (*k, v.clone())));
        let path = self.root().join(SEGMENT_CODES_FILE);
        let json =
            serde_json::to_vec_pretty(&all).map_err(|e| AnnotationError::WriteSegmentCodes {
                path: path.clone(),
                source: e.into(),
            })?;
        write_atomic(&path, &json)
            .and_then(|()| sync_dir(self.root()))
            .map_err(|source| AnnotationError::WriteSegmentCodes { path, source })
    }

    /// The segments and frames of `slices` (the items of a series' slices, in order): one
    /// segment per class with pixels, numbered 1.. in class-value order.
    pub fn seg_content(
        &mut self,
        slices: &[ItemId],
        codes: &BTreeMap<u8, SegmentCoding>,
    ) -> Result<(Vec<SegmentDescription>, Vec<SegFrame>)> {
        let classes: Vec<(u8, String, [u8; 3])> = self
            .classes()
            .map(|c| (c.value, c.name.clone(), c.colour))
            .collect();
        let mut segments = Vec::new();
        let mut frames = Vec::new();
        for (value, name, colour) in classes {
            let number = u16::try_from(segments.len() + 1).unwrap_or(u16::MAX);
            let mut origins = BTreeSet::new();
            let mut models: BTreeSet<ModelUse> = BTreeSet::new();
            let before = frames.len();
            for (k, &item) in slices.iter().enumerate() {
                let info = self
                    .item(item)
                    .ok_or(AnnotationError::UnknownItem { item })?;
                let (state, provenance) = (info.state(), info.provenance(value).cloned());
                let Some(mask) = self.mask(item, value)? else {
                    continue;
                };
                let size = mask.size();
                let Some(frame) =
                    SegFrame::from_mask(number, k, size.width, size.height, mask.as_bytes())
                else {
                    continue;
                };
                frames.push(frame);
                origins.insert(origin(state, provenance.as_ref()));
                for p in provenance.iter().flat_map(|p| [&p.created, &p.modified]) {
                    if matches!(p.tool, Tool::ConceptSearch | Tool::BoxPrompt) {
                        models.insert((
                            p.tool == Tool::ConceptSearch,
                            p.concept_id.clone(),
                            p.checkpoint_hash.clone(),
                        ));
                    }
                }
            }
            if frames.len() == before {
                continue;
            }
            let coding = codes.get(&value).cloned().unwrap_or_default();
            let (algorithm_type, algorithm) = describe(&origins, &models, coding.imported.as_ref());
            segments.push(SegmentDescription {
                number,
                label: name,
                colour,
                category: coding.category,
                property_type: coding.property_type,
                algorithm_type,
                algorithm,
                description: None,
            });
        }
        Ok((segments, frames))
    }

    /// Writes `slices` (the items of `series`' slices, in order) as one DICOM Segmentation at
    /// `path`, with the project's codings overridden by `options.codes`.
    pub fn export_seg(
        &mut self,
        slices: &[ItemId],
        series: &Series,
        path: &Path,
        options: &SegExportOptions,
    ) -> Result<SegWritten> {
        let mut codes = self.segment_codings()?;
        codes.extend(options.codes.iter().map(|(k, v)| (*k, v.clone())));
        let (segments, frames) = self.seg_content(slices, &codes)?;
        seg::write_seg(path, series, &segments, &frames, &options.object).map_err(|source| {
            AnnotationError::WriteExport {
                path: path.to_path_buf(),
                source,
            }
        })
    }
}

/// The segment's algorithm type and identification: AUTOMATIC when every frame is an
/// unreviewed model result, SEMIAUTOMATIC when model results were accepted or corrected by a
/// person (or mixed with hand-drawn frames), MANUAL when every frame was drawn by hand; imported
/// frames count as their source described them.
fn describe(
    origins: &BTreeSet<Origin>,
    models: &BTreeSet<ModelUse>,
    imported: Option<&ImportedAlgorithm>,
) -> (AlgorithmType, Option<Algorithm>) {
    if !models.is_empty() {
        let kind = if origins.iter().all(|o| *o == Origin::Unreviewed) {
            AlgorithmType::Automatic
        } else {
            AlgorithmType::Semiautomatic
        };
        return (kind, Some(model_algorithm(models)));
    }
    match imported {
        Some(i) if i.algorithm_type != AlgorithmType::Manual && i.algorithm.is_some() => {
            let kind = if origins.iter().all(|o| *o == Origin::Imported) {
                i.algorithm_type
            } else {
                AlgorithmType::Semiautomatic
            };
            (kind, i.algorithm.clone())
        }
        _ => (AlgorithmType::Manual, None),
    }
}

/// "M2C SAM3 concept search" (and/or box prompt), the checkpoint hash as version, and every
/// concept id and checkpoint hash used as parameters.
fn model_algorithm(models: &BTreeSet<ModelUse>) -> Algorithm {
    let concept = models.iter().any(|(c, _, _)| *c);
    let boxes = models.iter().any(|(c, _, _)| !*c);
    let name = match (concept, boxes) {
        (true, true) => "M2C SAM3 concept search and box prompt",
        (false, true) => "M2C SAM3 box prompt",
        _ => "M2C SAM3 concept search",
    };
    let checkpoints: BTreeSet<&str> = models.iter().filter_map(|(_, _, c)| c.as_deref()).collect();
    let concepts: BTreeSet<&str> = models.iter().filter_map(|(_, c, _)| c.as_deref()).collect();
    let version = match checkpoints.iter().collect::<Vec<_>>().as_slice() {
        [one] => (**one).to_owned(),
        [] => "unknown checkpoint".to_owned(),
        many => format!("{} checkpoints", many.len()),
    };
    let join = |set: &BTreeSet<&str>| set.iter().copied().collect::<Vec<_>>().join(",");
    Algorithm {
        name: name.to_owned(),
        version,
        parameters: Some(format!(
            "concept_id={}; checkpoint_sha256={}; m2c {}",
            join(&concepts),
            join(&checkpoints),
            env!("CARGO_PKG_VERSION")
        )),
        family: Code::artificial_intelligence(),
    }
}
