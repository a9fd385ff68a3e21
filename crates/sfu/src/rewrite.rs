//! Per-subscriber rewriting of RTP sequence numbers and timestamps.
//!
//! A subscriber must see one continuous stream per transceiver even when it joins a running
//! stream (whose extended sequence number may already be past a rollover) or when the source
//! behind its transceiver changes. The rewriter keeps the output contiguous: on every (re)start
//! the next input packet is mapped to the next output number.

/// Maps a source's extended sequence numbers and RTP timestamps onto an output stream.
#[derive(Debug, Clone, Default)]
pub struct SeqRewriter {
    /// `out = in - seq_offset`, valid once started.
    seq_offset: u64,
    ts_offset: u32,
    /// First input sequence number of the current run; older packets are dropped.
    run_start: u64,
    started: bool,
    /// Highest output sequence number written so far.
    highest_out: Option<u64>,
    last_out_ts: u32,
}

impl SeqRewriter {
    /// Forget the current source; the next packet starts a new run contiguous with the old.
    pub fn restart(&mut self) {
        self.started = false;
    }

    pub fn is_started(&self) -> bool {
        self.started
    }

    /// Output `(sequence number, timestamp)` for an input packet, or `None` when it predates
    /// the current run.
    pub fn rewrite(
        &mut self,
        in_seq: u64,
        in_ts: u32,
        ts_step_on_restart: u32,
    ) -> Option<(u64, u32)> {
        if !self.started {
            let next_out = match self.highest_out {
                Some(h) => h + 1,
                // Start below 2^16 so the SRTP rollover counter begins at 0.
                None => in_seq & 0xffff,
            };
            self.seq_offset = in_seq.wrapping_sub(next_out);
            let next_ts = match self.highest_out {
                Some(_) => self.last_out_ts.wrapping_add(ts_step_on_restart),
                None => in_ts,
            };
            self.ts_offset = in_ts.wrapping_sub(next_ts);
            self.run_start = in_seq;
            self.started = true;
        }
        if in_seq < self.run_start {
            return None;
        }
        let out_seq = in_seq.wrapping_sub(self.seq_offset);
        let out_ts = in_ts.wrapping_sub(self.ts_offset);
        if self.highest_out.is_none_or(|h| out_seq > h) {
            self.highest_out = Some(out_seq);
            self.last_out_ts = out_ts;
        }
        Some((out_seq, out_ts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_run_keeps_low_bits_and_drops_older_packets() {
        let mut r = SeqRewriter::default();
        assert_eq!(r.rewrite(70_000, 1000, 0), Some((70_000 & 0xffff, 1000)));
        assert_eq!(
            r.rewrite(70_002, 1000, 0),
            Some(((70_000 & 0xffff) + 2, 1000))
        );
        // Reordered packet inside the run is passed through.
        assert_eq!(
            r.rewrite(70_001, 1000, 0),
            Some(((70_000 & 0xffff) + 1, 1000))
        );
        assert_eq!(r.rewrite(69_999, 900, 0), None);
    }

    #[test]
    fn restart_continues_the_output_stream() {
        let mut r = SeqRewriter::default();
        r.rewrite(100, 5000, 0);
        r.rewrite(101, 8000, 0);
        r.restart();
        // A different source with unrelated numbers.
        assert_eq!(r.rewrite(40_000, 123_456, 3000), Some((102, 11_000)));
        assert_eq!(r.rewrite(40_001, 126_456, 3000), Some((103, 14_000)));
    }
}
