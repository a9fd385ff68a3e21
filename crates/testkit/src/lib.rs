//! Test peers for Stoa.
//!
//! [`Peer`] is a str0m endpoint (full ICE, frame mode) that publishes synthetic Opus and VP8
//! and counts what it receives; it answers server offers like a polite browser. [`SimNet`]
//! connects peers to an in-process [`Sfu`] over a simulated network with latency and loss,
//! driven by simulated time, so SFU tests run faster than real time and deterministically.

mod peer;
mod sim;

pub use peer::{Peer, Received};
pub use sim::{LinkParams, SfuSim, SimNet};
