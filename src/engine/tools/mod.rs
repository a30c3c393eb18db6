//! Engine workloads of the command line's tools, apart from the runtime the app uses: `m2c bench`
//! ([`bench`]), `m2c parity` ([`parity`]), the simulated annotation loop of `m2c loop`
//! ([`simulate`]) and labelled datasets read from a manifest ([`dataset`]). Nothing of the app
//! reaches these.

pub mod bench;
pub mod dataset;
pub mod parity;
pub mod simulate;
