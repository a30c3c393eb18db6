//! `m2c export-labels` and `m2c import-labels`: a study's labels out of and into the project
//! the window uses for it (beside the study, or in the user's data folder for a read-only
//! study), through the same code as File → Export… and File → Import labels….
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use std::collections::BTreeMap;

use crate::annotation::{
    ExportFailure, ExportFormat, ExportRequest, ImportRequest, SegExportOptions, SegmentCoding,
    StudyProject, export_labels, import_labels, open_study_project,
};
use crate::study::seg::{Code, M2C_UID_ROOT, SegOptions, validate_uid_root};
use crate::study::{self, MaskEncoding, Series};

/// Label file formats on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LabelFormat {
    /// One PNG mask per image or slice, named after it.
    Png,
    /// One NIfTI label volume (`.nii.gz` + JSON sidecar) per series.
    Nifti,
    /// One DICOM Segmentation (`<series>_seg.dcm`) per DICOM series.
    Seg,
}

impl From<LabelFormat> for ExportFormat {
    fn from(f: LabelFormat) -> Self {
        match f {
            LabelFormat::Png => ExportFormat::Png,
            LabelFormat::Nifti => ExportFormat::Nifti,
            LabelFormat::Seg => ExportFormat::Seg,
        }
    }
}

/// Export a study's labels as the window's File → Export… does.
#[derive(Debug, clap::Args)]
pub struct ExportLabelsArgs {
    /// The study folder or file, as opened in the window (its project is found from it).
    #[arg(value_name = "STUDY")]
    pub study: PathBuf,
    /// What to write.
    #[arg(long, value_enum)]
    pub format: LabelFormat,
    /// Destination folder (created if needed); file names follow the images and series.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// PNG: write label values instead of 0/255.
    #[arg(long)]
    pub label_values: bool,
    /// PNG: skip images nobody has annotated.
    #[arg(long)]
    pub skip_unlabelled: bool,
    /// NIfTI: write series with gantry tilt or uneven spacing (sheared affine, mean step).
    #[arg(long)]
    pub allow_irregular: bool,
    /// SEG: copy no patient or study attribute into the segmentation (UIDs are kept so it
    /// still refers to its images).
    #[arg(long)]
    pub deidentify: bool,
    /// SEG: root of the new UIDs (default: M2C Annotator's own).
    #[arg(long, value_name = "UID", default_value = M2C_UID_ROOT)]
    pub uid_root: String,
    /// SEG: segmented property type of a label, `VALUE=SCHEME:CODE:MEANING`
    /// (e.g. `1=SCT:10200004:Liver`); repeatable. Kept in the project for later exports.
    #[arg(long = "type", value_name = "VALUE=CODE", value_parser = parse_class_code)]
    pub property_type: Vec<(u8, Code)>,
    /// SEG: segmented property category of a label (e.g. `1=SCT:123037004:Anatomical
    /// Structure`); repeatable. Default SNOMED-CT Tissue.
    #[arg(long, value_name = "VALUE=CODE", value_parser = parse_class_code)]
    pub category: Vec<(u8, Code)>,
}

/// Import labels someone already made into a study's project.
#[derive(Debug, clap::Args)]
pub struct ImportLabelsArgs {
    /// The study folder or file, as opened in the window.
    #[arg(value_name = "STUDY")]
    pub study: PathBuf,
    /// A DICOM SEG file, a NIfTI label volume (`.nii`/`.nii.gz`), or a folder of PNG masks
    /// named after the images.
    #[arg(value_name = "LABELS")]
    pub labels: PathBuf,
    /// The series the labels belong to (number shown by `m2c info`); default: the one they fit.
    #[arg(long)]
    pub series: Option<usize>,
    /// PNG masks of 0/255: the label value they become (default: the first label).
    #[arg(long, value_name = "VALUE")]
    pub class: Option<u8>,
}

fn parse_class_code(text: &str) -> Result<(u8, Code), String> {
    let (value, code) = text
        .split_once('=')
        .ok_or_else(|| format!("expected VALUE=SCHEME:CODE:MEANING, got {text:?}"))?;
    let value: u8 = value
        .trim()
        .parse()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("label value {value:?} is not 1–255"))?;
    let code = Code::parse(code).ok_or_else(|| {
        format!("code {code:?} is not SCHEME:CODE:MEANING, e.g. SCT:10200004:Liver")
    })?;
    Ok((value, code))
}

/// Discovers `study` and opens its project as the window does (creating it if needed).
fn open(study_path: &Path) -> anyhow::Result<(Vec<Series>, StudyProject)> {
    if !study_path.exists() {
        bail!("{} does not exist", study_path.display());
    }
    let found = study::discover(study_path);
    if found.series.is_empty() {
        bail!(
            "no images found in {} ({} file(s) skipped; see `m2c info`)",
            study_path.display(),
            found.skipped.len()
        );
    }
    let data_dir = crate::engine::paths::m2c_data_dir();
    let opened = open_study_project(study_path, &found.series, data_dir.as_deref(), None)
        .with_context(|| format!("cannot open the project of {}", study_path.display()))?;
    for warning in &opened.report.warnings {
        eprintln!("warning: {warning}");
    }
    Ok((found.series, opened))
}

/// Runs `m2c export-labels`; exit code 1 when a series could not be written.
pub fn export(args: &ExportLabelsArgs) -> anyhow::Result<i32> {
    let (series, mut opened) = open(&args.study)?;
    let request = ExportRequest {
        format: args.format.into(),
        encoding: if args.label_values {
            MaskEncoding::LabelValues
        } else {
            MaskEncoding::Binary
        },
        skip_unlabelled: args.skip_unlabelled,
        allow_irregular: args.allow_irregular,
        seg: seg_options(args, &opened)?,
        folder: args.out.clone(),
    };
    let summary = export_labels(
        &mut opened.project,
        &series,
        &opened.items,
        &request,
        &|_, _| {},
    )?;
    println!(
        "project {}: {}",
        opened.project.root().display(),
        summary.line()
    );
    for path in &summary.written {
        println!("  {}", path.display());
    }
    for failure in &summary.failures {
        eprintln!("error: {failure}");
    }
    if summary
        .failures
        .iter()
        .any(ExportFailure::is_irregular_geometry)
    {
        eprintln!(
            "hint: pass --allow-irregular to export series with gantry tilt or uneven spacing \
             anyway (a sheared affine; the mean slice spacing)"
        );
    }
    Ok(i32::from(!summary.failures.is_empty()))
}

/// The SEG options of `args`: codes merged over the project's saved ones.
fn seg_options(args: &ExportLabelsArgs, opened: &StudyProject) -> anyhow::Result<SegExportOptions> {
    validate_uid_root(&args.uid_root).map_err(|e| anyhow::anyhow!("--uid-root: {e}"))?;
    let saved = opened.project.segment_codings()?;
    let mut codes: BTreeMap<u8, SegmentCoding> = BTreeMap::new();
    for (value, code) in &args.property_type {
        if opened.project.class(*value).is_none() {
            bail!("--type {value}=…: the project has no label with value {value}");
        }
        let entry = codes
            .entry(*value)
            .or_insert_with(|| saved.get(value).cloned().unwrap_or_default());
        entry.property_type = code.clone();
    }
    for (value, code) in &args.category {
        if opened.project.class(*value).is_none() {
            bail!("--category {value}=…: the project has no label with value {value}");
        }
        let entry = codes
            .entry(*value)
            .or_insert_with(|| saved.get(value).cloned().unwrap_or_default());
        entry.category = code.clone();
    }
    Ok(SegExportOptions {
        object: SegOptions {
            uid_root: args.uid_root.clone(),
            deidentify: args.deidentify,
            ..SegOptions::default()
        },
        codes,
    })
}

/// Runs `m2c import-labels`.
pub fn import(args: &ImportLabelsArgs) -> anyhow::Result<i32> {
    let (series, mut opened) = open(&args.study)?;
    let request = ImportRequest {
        path: args.labels.clone(),
        series: args.series,
        binary_class: args.class,
    };
    let summary = import_labels(&mut opened.project, &series, &opened.items, &request)?;
    println!(
        "project {}: {}",
        opened.project.root().display(),
        summary.line()
    );
    for file in &summary.unmatched_files {
        println!("  ignored (named after no image): {}", file.display());
    }
    Ok(0)
}
