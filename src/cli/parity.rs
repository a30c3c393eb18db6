//! `m2c parity --fixtures DIR`: runs the SAM3 model of a reference fixture folder
//! (`shared/fixtures/sam3-tiny`) stage by stage on the chosen device and compares every tensor
//! with the HF reference, the same comparisons as `tests/model_parity.rs`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::engine::device::plan_for;
use crate::engine::inference::{
    Comparison, DEFAULT_TOLERANCE, run_parity, tracker_fixtures_present,
};

use super::Cli;

#[derive(Debug, clap::Args)]
pub struct ParityArgs {
    /// Fixture folder: sam3_config.json, sam3_model.safetensors, inputs.safetensors and the
    /// reference tensors (vision, text, det_text, det_text_box, grad_text_features); the tracker
    /// scenario runs too when sam3_tracker_config.json, sam3_tracker_model.safetensors and
    /// tracker_box.safetensors are there.
    #[arg(long, value_name = "DIR")]
    pub fixtures: PathBuf,
    /// Largest absolute error allowed on any element.
    #[arg(long, value_name = "ATOL", default_value_t = DEFAULT_TOLERANCE)]
    pub tolerance: f32,
    /// Print the per-tensor table even when everything is within tolerance.
    #[arg(long)]
    pub table: bool,
}

pub fn run(cli: &Cli, args: &ParityArgs) -> anyhow::Result<i32> {
    if !args.fixtures.is_dir() {
        bail!(
            "fixture folder {} does not exist (expected e.g. shared/fixtures/sam3-tiny)",
            args.fixtures.display()
        );
    }
    let plan = plan_for(cli.device);
    println!("{}", plan.device_line());
    let start = Instant::now();
    let comparisons = run_parity(&args.fixtures, &plan)
        .with_context(|| format!("cannot run the parity check on {}", args.fixtures.display()))?;
    if !tracker_fixtures_present(&args.fixtures) {
        println!(
            "tracker: skipped ({} lacks sam3_tracker_config.json, sam3_tracker_model.safetensors \
             or tracker_box.safetensors)",
            args.fixtures.display()
        );
    }
    println!(
        "compared {} tensors in {:.2} s",
        comparisons.len(),
        start.elapsed().as_secs_f64()
    );
    let failed = comparisons
        .iter()
        .filter(|c| !c.within(args.tolerance))
        .count();
    if failed > 0 || args.table {
        print!("{}", table(&comparisons, args.tolerance));
    }
    let max_err = comparisons
        .iter()
        .map(|c| c.max_abs_err)
        .fold(0.0f32, |acc, e| if e.is_nan() { e } else { acc.max(e) });
    if failed == 0 {
        println!(
            "parity ok: {} tensors, max abs err {max_err:.3e}",
            comparisons.len()
        );
        Ok(0)
    } else {
        println!(
            "parity FAILED: {failed} of {} tensors exceed {:.0e}, max abs err {max_err:.3e}",
            comparisons.len(),
            args.tolerance
        );
        Ok(1)
    }
}

/// One line per tensor: verdict, name, max abs error, shapes when they differ, worst element.
fn table(comparisons: &[Comparison], tolerance: f32) -> String {
    let width = comparisons.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = format!("{:4}  {:width$}  {:>10}  detail\n", "", "tensor", "max abs");
    for c in comparisons {
        let verdict = if c.within(tolerance) { "ok" } else { "FAIL" };
        let detail = if c.actual_shape == c.expected_shape {
            c.worst
                .map(|(i, a, e)| format!("worst [{i}]: {a} vs {e}"))
                .unwrap_or_default()
        } else {
            format!(
                "shape {:?}, expected {:?}",
                c.actual_shape, c.expected_shape
            )
        };
        out += &format!(
            "{verdict:4}  {:width$}  {:>10.3e}  {detail}\n",
            c.name, c.max_abs_err
        );
    }
    out
}
