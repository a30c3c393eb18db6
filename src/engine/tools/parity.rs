//! `m2c parity`: the stage-by-stage comparison of [`crate::parity`] on the planned device.

use std::path::Path;

use crate::engine::device::{DevicePlan, open};
use crate::engine::error::EngineError;
use crate::parity::{self, Fixtures};

pub use crate::parity::{Comparison, DEFAULT_TOLERANCE, STAGES as PARITY_STAGES};

/// Whether the fixture folder `dir` holds the tracker scenario (`m2c parity` says when it
/// skips it).
pub fn tracker_fixtures_present(dir: &Path) -> bool {
    Fixtures::new(dir).has_tracker()
}

/// The parity stages named in `only` (all when empty, names in [`parity::STAGES`]) of the
/// fixtures in `dir` on the planned device; `progress(stage, comparisons)` after each stage.
pub fn run_parity(
    dir: &Path,
    plan: &DevicePlan,
    only: &[String],
    progress: impl FnMut(&str, &[Comparison]),
) -> Result<Vec<Comparison>, EngineError> {
    let device = open(plan)?;
    Ok(parity::run_all_with(
        &Fixtures::new(dir),
        &device,
        only,
        progress,
    )?)
}
