//! Concept search ("Mask to Concept"): a learnable offset on SAM3's text-encoder input,
//! optimised through the frozen model so its predictions match a few labelled masks, and the
//! hybrid uncertainty (HUE) that ranks the other images for review. May use `model` only.
//!
//! - Model-independent parts: ground-truth instances from masks, Hungarian matching of queries
//!   to instances, HUE, Dice/IoU, and concept files.
//! - The differentiable part: the embedding φ ([`embedding`]), training targets
//!   ([`targets`]), the authors' loss ([`loss`]) and the optimiser loop ([`search`]).

pub mod boxes;
pub mod embedding;
pub mod error;
pub mod file;
pub mod instances;
pub mod loss;
mod loss_terms;
pub mod matching;
pub mod metrics;
pub mod search;
pub mod targets;
pub mod uncertainty;

pub use embedding::BasePrompt;
pub use error::ConceptError;
pub use search::{SearchControl, SearchOutcome, SearchProblem, SearchProgress, search};
pub use targets::{BinaryMask, ImageTargets};
