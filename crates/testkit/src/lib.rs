//! Test peers for Stoa.
//!
//! [`Peer`] (from `stoa-client`) is a str0m endpoint (full ICE, frame mode) that publishes
//! synthetic Opus and VP8 (optionally as simulcast layers) and counts what it receives; it
//! answers server offers like a polite browser. [`SimNet`] connects peers to an in-process [`Sfu`] over a simulated
//! network with latency, loss and a bandwidth limit, driven by simulated time, so SFU tests
//! run faster than real time and deterministically.

mod sim;

pub use sim::{LinkParams, SfuSim, SimNet};
pub use stoa_client::{default_layers, FrameRecord, Peer, PeerError, Received, SendLayer};
