//! Concept search ("Mask to Concept"): a learnable offset on SAM3's text-encoder input,
//! optimised through the frozen model so its predictions match a few labelled masks, and the
//! hybrid uncertainty (HUE) that ranks the other images for review. May use `model` only.
//!
//! Here so far: the model-independent parts — ground-truth instances from masks, Hungarian
//! matching of queries to instances, HUE, Dice/IoU, and concept files. The differentiable
//! loss and the optimiser loop need the SAM3 model (issue 3) and follow it (issue 6).

pub mod boxes;
pub mod error;
pub mod file;
pub mod instances;
pub mod matching;
pub mod metrics;
pub mod uncertainty;

pub use error::ConceptError;
