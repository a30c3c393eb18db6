//! `m2c doctor`: what the engine would run on, and whether the model can be loaded.

use crate::engine::device::{AdapterSummary, BackendChoice};
use crate::engine::environment::{self, EnvironmentReport};
use crate::engine::weights::CHECKPOINT_FILE;

use super::Cli;

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Skip the small check computation on the chosen device.
    #[arg(long)]
    pub no_check: bool,
}

pub fn run(cli: &Cli, args: &DoctorArgs) -> anyhow::Result<i32> {
    let weights = super::chosen_weights(cli);
    let report = environment::probe(cli.device, weights.as_deref(), !args.no_check);
    print!("{}", render(&report));
    let device_failed = matches!(report.device_check, Some(Err(_)));
    Ok(if device_failed { 1 } else { 0 })
}

fn adapter_line(a: &AdapterSummary) -> String {
    format!(
        "{} [{}] {} driver {:?}, f16 {}, largest buffer {} MiB",
        a.name,
        a.kind,
        a.api,
        a.driver,
        if a.shader_f16 { "yes" } else { "no" },
        a.max_buffer_bytes / (1024 * 1024)
    )
}

/// The report as text; the first line after the title is always the `device:` line.
pub fn render(report: &EnvironmentReport) -> String {
    let mut out = format!("M2C Annotator {} doctor\n", env!("CARGO_PKG_VERSION"));
    let plan = &report.plan;
    out += &format!("{}\n", plan.device_line());
    out += &format!("  why: {} (preference: {})\n", plan.reason, plan.preference);
    if plan.backend == BackendChoice::Cpu {
        out += "  note: the CPU backend is fine for manual annotation and tests; SAM3 at full \
                size needs a GPU to be interactive\n";
    }
    match plan.adapters.as_slice() {
        [] => out += "  adapters: none (no Vulkan, Metal or DX12 driver found)\n",
        list => {
            out += &format!("  adapters: {}\n", list.len());
            for a in list {
                out += &format!("    - {}\n", adapter_line(a));
            }
        }
    }
    match &report.device_check {
        Some(Ok(elapsed)) => {
            out += &format!("  check: ok ({:.0} ms)\n", elapsed.as_secs_f64() * 1e3);
        }
        Some(Err(e)) => out += &format!("  check: FAILED: {e}\n"),
        None => out += "  check: skipped\n",
    }
    match (&report.weights.found, &report.checkpoint) {
        (Some(_), Some(Ok(s))) => {
            let dtypes: Vec<String> = s.dtypes.iter().map(|(k, v)| format!("{v} {k}")).collect();
            out += &format!(
                "weights: found {} ({:.2} GB, {} tensors: {} detector, {} tracker; {})\n",
                s.path.display(),
                s.file_bytes as f64 / 1e9,
                s.tensors,
                s.detector_tensors,
                s.tracker_tensors,
                dtypes.join(", ")
            );
            if s.bare {
                out += "  names: a bare Sam3Model export (no detector_model. prefix): usable\n";
            }
            if let Some(config) = &s.config {
                out += &format!("  config: {config} (the tensors match it)\n");
            }
        }
        (Some(path), Some(Err(e))) => {
            out += &format!(
                "weights: found {} but it is unusable: {e}\n",
                path.display()
            );
        }
        _ => {
            out += "weights: not found\n";
            out += "  looked in:\n";
            for p in &report.weights.looked {
                out += &format!("    {}\n", p.display());
            }
            out += &format!(
                "  get them: download {CHECKPOINT_FILE} from Hugging Face facebook/sam3 (gated: \
                 accept the licence there), then run `m2c weights install PATH`, pass --weights \
                 PATH or set M2C_WEIGHTS\n"
            );
        }
    }
    out
}
