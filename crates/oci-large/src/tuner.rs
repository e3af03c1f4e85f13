//! [`ChunkTuner`]: the chunk size, adjusted from the measured time of
//! each range request so that one request takes about the target time.

use std::time::Duration;

use crate::options::DownloadOptions;

/// Granularity of chunk sizes: 64 KiB.
const GRAIN: u64 = 64 * 1024;

/// Picks the size of the next chunk from how long finished ones took.
#[derive(Debug, Clone)]
pub(crate) struct ChunkTuner {
    size: u64,
    min: u64,
    max: u64,
    target: (Duration, Duration),
}

impl ChunkTuner {
    /// A tuner starting at the options' initial chunk size.
    pub(crate) fn new(options: &DownloadOptions) -> ChunkTuner {
        let min = options.min_chunk.max(1);
        let max = options.max_chunk.max(min);
        ChunkTuner {
            size: options.initial_chunk.clamp(min, max),
            min,
            max,
            target: options.target_request_time,
        }
    }

    /// The size of the next chunk.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Learns from one request: `bytes` arrived in `elapsed`. Outside the
    /// target span, the size moves towards the one that would have taken
    /// the middle of the span, by at most a factor of two per step.
    pub(crate) fn observe(&mut self, bytes: u64, elapsed: Duration) {
        let (low, high) = self.target;
        if bytes == 0 || (elapsed >= low && elapsed <= high) {
            return;
        }
        let goal = (low + high) / 2;
        let secs = elapsed.as_secs_f64().max(1e-6);
        let ideal = bytes as f64 / secs * goal.as_secs_f64();
        let step = ideal.clamp(self.size as f64 / 2.0, self.size as f64 * 2.0);
        let rounded = ((step as u64) / GRAIN).max(1) * GRAIN;
        let next = rounded.clamp(self.min, self.max);
        if next != self.size {
            tracing::debug!(from = self.size, to = next, ?elapsed, "chunk size tuned");
            self.size = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::MIB;

    fn tuner() -> ChunkTuner {
        ChunkTuner::new(&DownloadOptions::default())
    }

    #[test]
    fn fast_requests_grow_the_chunk_up_to_the_maximum() {
        let mut t = tuner();
        assert_eq!(t.size(), 4 * MIB);
        t.observe(4 * MIB, Duration::from_millis(50));
        assert_eq!(t.size(), 8 * MIB, "at most doubles per step");
        for _ in 0..10 {
            let size = t.size();
            t.observe(size, Duration::from_millis(50));
        }
        assert_eq!(t.size(), 64 * MIB);
    }

    #[test]
    fn slow_requests_shrink_the_chunk_down_to_the_minimum() {
        let mut t = tuner();
        t.observe(4 * MIB, Duration::from_secs(3));
        assert_eq!(t.size(), 2 * MIB);
        for _ in 0..10 {
            let size = t.size();
            t.observe(size, Duration::from_secs(10));
        }
        assert_eq!(t.size(), MIB);
    }

    #[test]
    fn a_request_inside_the_target_keeps_the_size() {
        let mut t = tuner();
        t.observe(4 * MIB, Duration::from_millis(700));
        assert_eq!(t.size(), 4 * MIB);
    }

    #[test]
    fn the_size_settles_where_a_request_takes_the_target_time() {
        // A link of 20 MiB/s: 0.75 s of it is 15 MiB.
        let mut t = tuner();
        for _ in 0..10 {
            let size = t.size();
            let secs = size as f64 / (20 * MIB) as f64;
            t.observe(size, Duration::from_secs_f64(secs));
        }
        let secs = t.size() as f64 / (20 * MIB) as f64;
        assert!(
            (0.5..=1.0).contains(&secs),
            "{} bytes take {secs} s",
            t.size()
        );
    }
}
