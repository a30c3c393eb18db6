//! Concept search ("Mask to Concept"): a learnable offset on SAM3's text-encoder input,
//! optimised through the frozen model so its predictions match a few labelled masks, and the
//! hybrid uncertainty (HUE) that ranks the other images for review. May use `model` only.
//!
//! Not implemented yet: tracked in issue 6.
