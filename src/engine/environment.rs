//! One look at the machine: which device the engine would use, whether it computes, and where
//! the SAM3 checkpoint is. `m2c doctor` prints it; the app shows it in its status bar.

use std::path::Path;
use std::time::{Duration, Instant};

use burn::tensor::{Device, Tensor};

use super::device::{self, DevicePlan, DevicePreference};
use super::error::CheckpointError;
use super::weights::{self, CheckpointSummary, WeightsSearch};

/// Everything `m2c doctor` reports.
#[derive(Debug)]
pub struct EnvironmentReport {
    pub plan: DevicePlan,
    /// Result of a small computation on the planned device.
    pub device_check: Option<Result<Duration, String>>,
    pub weights: WeightsSearch,
    /// Header check of the checkpoint that was found.
    pub checkpoint: Option<Result<CheckpointSummary, CheckpointError>>,
}

/// Probes adapters, plans the device, optionally runs a check computation on it, and locates
/// and inspects the checkpoint. Takes well under a second on a GPU, a few seconds on lavapipe.
pub fn probe(
    preference: DevicePreference,
    explicit_weights: Option<&Path>,
    run_device_check: bool,
) -> EnvironmentReport {
    let plan = device::plan_for(preference);
    let device_check = run_device_check.then(|| check_plan(&plan));
    let weights = weights::locate(explicit_weights);
    let checkpoint = weights
        .found
        .as_deref()
        .map(|path| weights::check_checkpoint(path, None));
    EnvironmentReport {
        plan,
        device_check,
        weights,
        checkpoint,
    }
}

fn check_plan(plan: &DevicePlan) -> Result<Duration, String> {
    let device = device::open(plan).map_err(|e| e.to_string())?;
    check_device(&device)
}

/// Runs a small element-wise computation and a reduction on `device` and checks the result,
/// so that a device that initialises but cannot compute is caught before any real work.
/// A panic inside the backend (driver trouble) becomes an error string.
pub fn check_device(device: &Device) -> Result<Duration, String> {
    let start = Instant::now();
    let device = device.clone();
    let outcome = std::panic::catch_unwind(move || {
        let x = Tensor::<1>::from_floats([1.0, 2.0, 3.0, 4.0], &device);
        let total: f32 = x.mul_scalar(2.0).add_scalar(0.5).sum().into_scalar();
        total
    });
    match outcome {
        Ok(total) if (total - 22.0).abs() < 1e-4 => Ok(start.elapsed()),
        Ok(total) => Err(format!("check computation gave {total}, expected 22")),
        Err(_) => Err("the backend panicked during the check computation".to_owned()),
    }
}
