//! The command line: `m2c [PATH...]` opens the app, subcommands run the same engine headless.
//! anyhow is allowed here (the binary's edge); everything below returns typed errors.
#![allow(clippy::print_stdout)]

mod annotate;
mod bench;
mod doctor;
mod eval;
mod labels;
mod loop_cmd;
mod model;
mod parity;
mod search;
mod segment;
pub mod study;
mod weights;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::engine::device::DevicePreference;

/// M2C Annotator: few-shot medical image annotation with SAM3 concept search.
///
/// Without a subcommand, opens the annotation window (optionally on the given study paths).
#[derive(Debug, Parser)]
#[command(name = "m2c", version, about)]
pub struct Cli {
    /// Study folders or files to open in the window (DICOM series, PNG/JPEG folders).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// SAM3 checkpoint: `model.safetensors` from Hugging Face `facebook/sam3`, or its folder.
    #[arg(long, global = true, env = "M2C_WEIGHTS", value_name = "PATH")]
    pub weights: Option<PathBuf>,

    /// Compute device: `auto` (a hardware GPU when present, else the CPU), `gpu` or `cpu`.
    #[arg(long, global = true, env = "M2C_DEVICE", value_name = "DEVICE", value_parser = parse_device, default_value = "auto")]
    pub device: DevicePreference,

    /// CPU threads the subcommands compute with on the CPU device (default: every core). The
    /// window's own count is in Settings (default: every core but one).
    #[arg(long, global = true, env = "M2C_THREADS", value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Headless subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the compute device the engine would use, check that it computes, and say
    /// whether the SAM3 weights were found and where we looked.
    Doctor(doctor::DoctorArgs),
    /// List what a folder or files hold: series, frames, size, spacing, tilt, transfer
    /// syntax, and why any file was skipped.
    Info(study::InfoArgs),
    /// Convert a series to a NIfTI image volume with the source geometry.
    Export(study::ExportArgs),
    /// Write a study's labels (from the project the window uses) as PNG masks, NIfTI label
    /// volumes or DICOM Segmentation objects, as File → Export… does.
    ExportLabels(labels::ExportLabelsArgs),
    /// Bring labels someone already made (DICOM SEG, NIfTI label volume, folder of PNG masks)
    /// into the project the window uses for a study, as File → Import labels… does.
    ImportLabels(labels::ImportLabelsArgs),
    /// Dice and IoU of predicted masks against ground truth, per image and on average.
    Eval(eval::EvalArgs),
    /// Compare the SAM3 implementation with HF reference fixtures, tensor by tensor, on the
    /// chosen device.
    Parity(parity::ParityArgs),
    /// Segment images with a text prompt: one PNG mask per image and an instances.json.
    Segment(segment::SegmentArgs),
    /// Learn a concept from a few labelled images (concept search) and save it as a `.m2c`
    /// file; prints the loss of every step.
    Search(search::SearchArgs),
    /// Segment images with a learned concept: PNG masks plus hue.csv (uncertainty per image,
    /// which ones are auto-accepted).
    Annotate(annotate::AnnotateArgs),
    /// Simulate the annotation loop on a labelled set, the ground truth standing in for the
    /// human's corrections: one line per round (labelled, mean Dice/IoU, auto-accepted).
    Loop(loop_cmd::LoopArgs),
    /// Time SAM3 and concept search on the chosen device (random weights by default): median
    /// ms and peak memory per stage.
    Bench(bench::BenchArgs),
    /// SAM3 weights: `m2c weights install PATH` checks a downloaded checkpoint and puts it
    /// where the app finds it (or records it in the settings with --in-place).
    Weights(weights::WeightsArgs),
}

/// The checkpoint the subcommands use: `--weights` / `M2C_WEIGHTS`, else the path saved in the
/// settings (the app's Settings dialog, `m2c weights install --in-place`), else `None`: the
/// default places are searched.
pub(crate) fn chosen_weights(cli: &Cli) -> Option<PathBuf> {
    cli.weights
        .clone()
        .or_else(|| crate::engine::ModelSettings::load().0.weights)
}

fn parse_device(value: &str) -> Result<DevicePreference, String> {
    DevicePreference::parse(value).map_err(|e| e.to_string())
}

/// Runs a subcommand. Returns the process exit code.
pub fn run(cli: &Cli, command: &Command) -> anyhow::Result<i32> {
    // Before the first kernel: rayon's global pool is the one burn's CPU backend computes in.
    match crate::engine::compute::use_threads_globally(cli.threads.map(usize::from)) {
        Ok(threads) => tracing::debug!("computing with {threads} CPU threads"),
        Err(e) => tracing::warn!("{e}; using rayon's default pool"),
    }
    match command {
        Command::Doctor(args) => doctor::run(cli, args),
        Command::Info(args) => study::info(args).map(|()| 0),
        Command::Export(args) => study::export(args).map(|()| 0),
        Command::ExportLabels(args) => labels::export(args),
        Command::ImportLabels(args) => labels::import(args),
        Command::Eval(args) => eval::run(args),
        Command::Parity(args) => parity::run(cli, args),
        Command::Segment(args) => segment::run(cli, args),
        Command::Search(args) => search::run(cli, args),
        Command::Annotate(args) => annotate::run(cli, args),
        Command::Loop(args) => loop_cmd::run(cli, args),
        Command::Bench(args) => bench::run(cli, args),
        Command::Weights(args) => weights::run(cli, args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_flags_go_before_or_after_the_subcommand() {
        let cli = Cli::try_parse_from(["m2c", "--device", "cpu", "doctor"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Doctor(_))));
        assert_eq!(cli.device, DevicePreference::Cpu);
        let cli = Cli::try_parse_from(["m2c", "doctor", "--device", "gpu"]).unwrap();
        assert_eq!(cli.device, DevicePreference::Gpu);
    }

    #[test]
    fn bare_paths_open_the_window() {
        let cli = Cli::try_parse_from(["m2c", "--device", "cpu", "study/ct", "more"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.paths.len(), 2);
    }
}
