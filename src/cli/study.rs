//! `m2c info` and `m2c export`: headless access to the study reader and the NIfTI writer.
#![allow(clippy::print_stdout)]

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};

use crate::study::{self, Series, SeriesKind, Study};

/// List the images found under files or folders.
#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// DICOM files, image files or folders (searched recursively).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Also print SeriesInstanceUIDs (identifiers; off by default).
    #[arg(long)]
    pub identifiers: bool,
}

/// Convert a DICOM series into a NIfTI image volume (`.nii` or `.nii.gz`).
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// A DICOM series folder or file(s).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Output file, e.g. `ct.nii.gz`.
    #[arg(long)]
    pub out: PathBuf,
    /// Which series to export (number shown by `m2c info`) when several were found.
    #[arg(long)]
    pub series: Option<usize>,
    /// Export even with gantry tilt or uneven spacing (sheared affine / mean spacing).
    #[arg(long)]
    pub allow_irregular: bool,
}

/// Prints every series (frames, size, spacing, geometry issues, encodings) and every skipped
/// file with its error.
pub fn info(args: &InfoArgs) -> anyhow::Result<()> {
    let study = study::discover_paths(&args.paths);
    print!("{}", describe_study(&study, args.identifiers));
    Ok(())
}

/// Writes the chosen series as a NIfTI image volume.
pub fn export(args: &ExportArgs) -> anyhow::Result<()> {
    let study = study::discover_paths(&args.paths);
    let candidates: Vec<(usize, &Series)> = study
        .series
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind == SeriesKind::Dicom)
        .map(|(i, s)| (i + 1, s))
        .collect();
    let (number, series) = match (args.series, candidates.as_slice()) {
        (Some(n), _) => candidates
            .iter()
            .find(|(i, _)| *i == n)
            .copied()
            .with_context(|| format!("no DICOM series number {n} (see `m2c info`)"))?,
        (None, [only]) => *only,
        (None, []) => bail!(
            "no DICOM series found ({} files skipped)",
            study.skipped.len()
        ),
        (None, many) => bail!(
            "{} DICOM series found; choose one with --series (see `m2c info`)",
            many.len()
        ),
    };
    let geometry = match series.export_geometry(args.allow_irregular) {
        Err(e @ study::StudyError::IrregularGeometry { .. }) => {
            return Err(anyhow::Error::new(e).context(
                "refused: pass --allow-irregular to export it anyway (a sheared affine for \
                 tilt; the mean slice spacing)",
            ));
        }
        other => other?,
    };
    let volume = series
        .load_volume()
        .with_context(|| format!("decoding series {number}"))?;
    study::write_image_volume(&args.out, &volume, geometry)?;
    let [x, y, z] = volume.dims;
    println!(
        "wrote series {number} ({x}×{y}×{z}) to {}",
        args.out.display()
    );
    Ok(())
}

/// The text `m2c info` prints.
pub fn describe_study(study: &Study, identifiers: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} series, {} skipped file(s)",
        study.series.len(),
        study.skipped.len()
    );
    for (i, s) in study.series.iter().enumerate() {
        describe_series(&mut out, i + 1, s, identifiers);
    }
    if !study.skipped.is_empty() {
        let _ = writeln!(out, "skipped:");
    }
    for err in &study.skipped {
        let _ = writeln!(out, "  {}", error_chain(err));
    }
    out
}

fn describe_series(out: &mut String, number: usize, s: &Series, identifiers: bool) {
    let kind = match s.kind {
        SeriesKind::Dicom => "DICOM",
        _ => "image",
    };
    let modality = s.modality.as_deref().unwrap_or("-");
    let colour = if s.samples_per_pixel == 3 {
        ", colour"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "[{number}] {kind} {modality}: {} frame(s) of {}×{}{colour}; {}",
        s.len(),
        s.width,
        s.height,
        s.encodings.join(", ")
    );
    if let Some(g) = &s.geometry {
        let [dx, dy, dz] = g.spacing_mm;
        let _ = writeln!(out, "    spacing {dx:.3} × {dy:.3} × {dz:.3} mm");
    } else if let Some([row, col]) = s.pixel_spacing_mm {
        let _ = writeln!(
            out,
            "    pixel spacing {col:.3} × {row:.3} mm, no 3D geometry"
        );
    }
    for issue in &s.issues {
        let _ = writeln!(out, "    geometry: {issue}");
    }
    if let Some(first) = s.first_path() {
        let _ = writeln!(out, "    first file: {}", first.display());
    }
    if identifiers && s.kind == SeriesKind::Dicom {
        let _ = writeln!(out, "    SeriesInstanceUID: {}", s.key);
    }
}

/// `error: cause: cause` on one line.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}
