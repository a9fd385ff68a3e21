//! A client peer for Stoa without a browser.
//!
//! [`Peer`] is a str0m endpoint (full ICE, frame mode) that publishes synthetic Opus and VP8
//! (optionally as simulcast layers), answers server offers like a polite browser and counts
//! what it receives. Everything the server sends it is input from the network: a bad offer
//! or answer is a [`PeerError`], never a panic. `stoa load-test` drives many of them; the
//! test kit drives them over a simulated network.

mod peer;

pub use peer::{default_layers, FrameRecord, Peer, PeerError, Received, SendLayer};
