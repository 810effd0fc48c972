//! Round-trip time and the retransmission timeout (BEP 29, "timeouts").
//!
//! BEP 29: "every packet that is ACKed, either by falling in the range
//! (last_ack_nr, ack_nr] or by explicitly being acked by a Selective ACK
//! message, should be used to update an rtt (round trip time) and rtt_var
//! (rtt variance) measurement", with
//!
//! ```text
//! delta = rtt - packet_rtt
//! rtt_var += (abs(delta) - rtt_var) / 4
//! rtt += (packet_rtt - rtt) / 8
//! timeout = max(rtt + rtt_var * 4, 500)
//! ```
//!
//! and "the default timeout for packets associated with the socket is also
//! updated every time rtt and rtt_var is updated … initially 1000 ms", and
//! on a timeout "the packet timeout is doubled". Only packets sent once give
//! samples (Karn's rule), or a retransmission would be timed from the wrong
//! send.

use std::time::Duration;

/// BEP 29: the timeout before any RTT sample.
const INITIAL_TIMEOUT: Duration = Duration::from_millis(1000);
/// BEP 29: the timeout never goes below 500 ms.
const MIN_TIMEOUT: Duration = Duration::from_millis(500);
/// Backoff stops doubling here, so a long outage still retries now and then.
const MAX_TIMEOUT: Duration = Duration::from_secs(30);

/// The smoothed RTT, its variance and the current timeout.
#[derive(Clone, Debug)]
pub(crate) struct RttEstimator {
    /// `None` until the first sample.
    srtt: Option<Duration>,
    rtt_var: Duration,
    /// Doublings since the last sample or ACK.
    backoff: u32,
}

impl Default for RttEstimator {
    fn default() -> Self {
        RttEstimator {
            srtt: None,
            rtt_var: Duration::ZERO,
            backoff: 0,
        }
    }
}

impl RttEstimator {
    /// Folds in the round trip of one packet that was sent once.
    pub(crate) fn on_sample(&mut self, sample: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(sample);
                self.rtt_var = sample / 2;
            }
            Some(rtt) => {
                let delta = rtt.abs_diff(sample);
                self.rtt_var = if delta > self.rtt_var {
                    self.rtt_var + (delta - self.rtt_var) / 4
                } else {
                    self.rtt_var - (self.rtt_var - delta) / 4
                };
                self.srtt = Some(if sample > rtt {
                    rtt + (sample - rtt) / 8
                } else {
                    rtt - (rtt - sample) / 8
                });
            }
        }
    }

    /// New data was acknowledged: the path works, stop backing off.
    pub(crate) fn on_progress(&mut self) {
        self.backoff = 0;
    }

    /// The retransmission timer fired: double the timeout.
    pub(crate) fn on_timeout(&mut self) {
        self.backoff = self.backoff.saturating_add(1).min(16);
    }

    /// The smoothed round trip, once measured.
    pub(crate) fn smoothed(&self) -> Option<Duration> {
        self.srtt
    }

    /// How long to wait for an ACK before retransmitting.
    pub(crate) fn timeout(&self) -> Duration {
        let base = match self.srtt {
            None => INITIAL_TIMEOUT,
            Some(rtt) => (rtt + self.rtt_var * 4).max(MIN_TIMEOUT),
        };
        base.saturating_mul(1 << self.backoff).min(MAX_TIMEOUT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn follows_the_bep_formulas() {
        let mut r = RttEstimator::default();
        assert_eq!(r.timeout(), ms(1000), "initial");
        r.on_sample(ms(200));
        assert_eq!(r.smoothed(), Some(ms(200)));
        assert_eq!(r.timeout(), ms(600), "200 + 4 × 100");
        r.on_sample(ms(280));
        // delta 80: var 100 + (80 - 100)/4 = 95; rtt 200 + 80/8 = 210
        assert_eq!(r.smoothed(), Some(ms(210)));
        assert_eq!(r.timeout(), ms(210 + 4 * 95));
        for _ in 0..100 {
            r.on_sample(ms(20));
        }
        assert_eq!(r.timeout(), MIN_TIMEOUT, "floor of 500 ms");
    }

    #[test]
    fn timeouts_double_until_progress() {
        let mut r = RttEstimator::default();
        r.on_timeout();
        assert_eq!(r.timeout(), ms(2000));
        r.on_timeout();
        assert_eq!(r.timeout(), ms(4000));
        for _ in 0..40 {
            r.on_timeout();
        }
        assert_eq!(r.timeout(), MAX_TIMEOUT);
        r.on_progress();
        assert_eq!(r.timeout(), ms(1000));
    }
}
