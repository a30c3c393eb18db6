//! `m2c export-labels`: a study's labels out of the project the window uses for it (beside
//! the study, or in the user's data folder for a read-only study), through the same code as
//! File → Export….
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::annotation::{
    ExportFormat, ExportRequest, StudyProject, export_labels, open_study_project,
};
use crate::study::{self, MaskEncoding, Series};

/// Label file formats on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LabelFormat {
    /// One PNG mask per image or slice, named after it.
    Png,
    /// One NIfTI label volume (`.nii.gz` + JSON sidecar) per series.
    Nifti,
}

impl From<LabelFormat> for ExportFormat {
    fn from(f: LabelFormat) -> Self {
        match f {
            LabelFormat::Png => ExportFormat::Png,
            LabelFormat::Nifti => ExportFormat::Nifti,
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
    Ok(i32::from(!summary.failures.is_empty()))
}
