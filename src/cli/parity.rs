//! `m2c parity --fixtures DIR`: runs the SAM3 model of a reference fixture folder (the committed
//! `tests/fixtures/sam3-tiny`, or one made by `tests/reference/make_reference.py`, e.g. the
//! full-size preset) stage by stage on the chosen device and compares every tensor with the HF
//! reference, the same comparisons as `tests/model/model_parity.rs`. Reference tensors the folder
//! lacks are listed as "not in fixtures" and not counted.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::engine::device::plan_for;
use crate::engine::tools::parity::{
    Comparison, DEFAULT_TOLERANCE, PARITY_STAGES as STAGES, run_parity, tracker_fixtures_present,
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
    /// Run only this stage (repeatable; default: all). The full-size folder takes many
    /// minutes per stage on the CPU.
    #[arg(long = "stage", value_name = "STAGE", value_parser = clap::builder::PossibleValuesParser::new(STAGES))]
    pub stages: Vec<String>,
}

pub fn run(cli: &Cli, args: &ParityArgs) -> anyhow::Result<i32> {
    if !args.fixtures.is_dir() {
        bail!(
            "fixture folder {} does not exist (expected e.g. tests/fixtures/sam3-tiny)",
            args.fixtures.display()
        );
    }
    let plan = plan_for(cli.device);
    println!("{}", plan.device_line());
    let start = Instant::now();
    let mut lap = Instant::now();
    let progress = |stage: &str, got: &[Comparison]| {
        let seconds = lap.elapsed().as_secs_f64();
        lap = Instant::now();
        let compared: Vec<&Comparison> = got.iter().filter(|c| c.absent.is_none()).collect();
        if got.is_empty() {
            println!("{stage}: {seconds:.1} s");
        } else {
            println!(
                "stage {stage}: {} tensors, max abs err {:.3e}, max rel err {:.3e} ({seconds:.1} s)",
                compared.len(),
                worst(&compared, |c| c.max_abs_err),
                worst(&compared, Comparison::max_rel_err),
            );
        }
    };
    let comparisons = run_parity(&args.fixtures, &plan, &args.stages, progress)
        .with_context(|| format!("cannot run the parity check on {}", args.fixtures.display()))?;
    if !tracker_fixtures_present(&args.fixtures) {
        println!(
            "tracker: skipped ({} lacks sam3_tracker_config.json, sam3_tracker_model.safetensors \
             or tracker_box.safetensors)",
            args.fixtures.display()
        );
    }
    let (absent, compared): (Vec<&Comparison>, Vec<&Comparison>) =
        comparisons.iter().partition(|c| c.absent.is_some());
    println!(
        "compared {} tensors in {:.2} s",
        compared.len(),
        start.elapsed().as_secs_f64()
    );
    for c in &absent {
        let what = c.absent.as_deref().unwrap_or_default();
        println!("skipped {}: not in fixtures ({what})", c.name);
    }
    let failed = compared
        .iter()
        .filter(|c| !c.within(args.tolerance))
        .count();
    if failed > 0 || args.table {
        print!("{}", table(&compared, args.tolerance));
    }
    let max_err = worst(&compared, |c| c.max_abs_err);
    println!(
        "max rel err {:.3e} (max abs err / max |reference| of each tensor)",
        worst(&compared, Comparison::max_rel_err)
    );
    if failed == 0 {
        println!(
            "parity ok: {} tensors, max abs err {max_err:.3e}",
            compared.len()
        );
        Ok(0)
    } else {
        println!(
            "parity FAILED: {failed} of {} tensors exceed {:.0e}, max abs err {max_err:.3e}",
            compared.len(),
            args.tolerance
        );
        Ok(1)
    }
}

/// The largest of `err` over `comparisons`; NaN when any is NaN.
fn worst(comparisons: &[&Comparison], err: fn(&Comparison) -> f32) -> f32 {
    comparisons.iter().map(|c| err(c)).fold(0.0f32, |acc, e| {
        if acc.is_nan() || e.is_nan() {
            f32::NAN
        } else {
            acc.max(e)
        }
    })
}

/// One line per tensor: verdict, name, max abs error, max rel error (to the reference's largest
/// magnitude), the reference's largest magnitude, shapes when they differ, worst element.
fn table(comparisons: &[&Comparison], tolerance: f32) -> String {
    let width = comparisons.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = format!(
        "{:4}  {:width$}  {:>10}  {:>10}  {:>10}  detail\n",
        "", "tensor", "max abs", "max rel", "max |ref|"
    );
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
            "{verdict:4}  {:width$}  {:>10.3e}  {:>10.3e}  {:>10.3e}  {detail}\n",
            c.name,
            c.max_abs_err,
            c.max_rel_err(),
            c.reference_absmax
        );
    }
    out
}
