//! Which seconds the schedule loop runs at each tick, with osquery's drift accounting
//! (`--schedule_max_drift`): a loop that fell behind (a slow tick, a stopped or
//! suspended process) catches up on the seconds it missed as long as it is at most
//! `max_drift` seconds late, and gives them up beyond that.
//!
//! osquery runs each missed second back to back; here a catch-up hands the loop the
//! whole range at once, and the loop submits each query due in it once (see
//! `Ticker::advance`), so a stall of N seconds never turns into N runs of a query.
//! osquery, giving up, leaves its step counter behind the clock for good; here the
//! counter goes back to the clock, so intervals stay aligned on wall-clock multiples.

use std::ops::RangeInclusive;

/// The next second the loop owes a turn to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ticker {
    next: i64,
}

/// What a tick runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Steps {
    /// The seconds whose due queries run now (`None`: nothing yet).
    pub(super) seconds: Option<RangeInclusive<i64>>,
    /// Seconds the loop was late by (0 on time).
    pub(super) behind: u64,
    /// Whether the missed seconds were given up (late by more than the drift allowed).
    pub(super) skipped: bool,
}

impl Steps {
    fn none() -> Steps {
        Steps {
            seconds: None,
            behind: 0,
            skipped: false,
        }
    }
}

impl Ticker {
    /// A ticker whose first turn is the second after `now` (start-up runs its own).
    pub(super) fn new(now: i64) -> Ticker {
        Ticker { next: now + 1 }
    }

    /// The seconds to run at wall-clock second `now`.
    pub(super) fn advance(&mut self, now: i64, max_drift: u64) -> Steps {
        if now < self.next {
            if self.next - now > 1 {
                // The clock was set back: follow it rather than wait for the old time.
                self.next = now + 1;
                return Steps {
                    seconds: Some(now..=now),
                    behind: 0,
                    skipped: false,
                };
            }
            return Steps::none();
        }
        let behind = (now - self.next) as u64;
        self.next = now + 1;
        if behind > max_drift {
            Steps {
                seconds: Some(now..=now),
                behind,
                skipped: true,
            }
        } else {
            Steps {
                seconds: Some((now - behind as i64)..=now),
                behind,
                skipped: false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_time_ticks_run_one_second_each() {
        let mut t = Ticker::new(100);
        assert_eq!(t.advance(100, 60), Steps::none());
        let s = t.advance(101, 60);
        assert_eq!(
            (s.seconds, s.behind, s.skipped),
            (Some(101..=101), 0, false)
        );
        let s = t.advance(102, 60);
        assert_eq!(s.seconds, Some(102..=102));
        // Woken twice in one second: the second wake runs nothing.
        assert_eq!(t.advance(102, 60).seconds, None);
    }

    #[test]
    fn a_stall_within_the_drift_catches_up_every_missed_second() {
        let mut t = Ticker::new(100);
        t.advance(101, 60);
        let s = t.advance(111, 60);
        assert_eq!(
            (s.seconds, s.behind, s.skipped),
            (Some(102..=111), 9, false)
        );
        // Back on time after.
        assert_eq!(t.advance(112, 60).seconds, Some(112..=112));
        // Exactly the drift allowed still catches up.
        let s = t.advance(173, 60);
        assert_eq!(
            (s.seconds, s.behind, s.skipped),
            (Some(113..=173), 60, false)
        );
    }

    #[test]
    fn a_stall_beyond_the_drift_gives_up_the_missed_seconds() {
        let mut t = Ticker::new(100);
        let s = t.advance(200, 60);
        assert_eq!(
            (s.seconds, s.behind, s.skipped),
            (Some(200..=200), 99, true)
        );
        assert_eq!(t.advance(201, 60).seconds, Some(201..=201));
        // --schedule_max_drift=0: never catch up.
        let s = t.advance(203, 0);
        assert_eq!((s.seconds, s.behind, s.skipped), (Some(203..=203), 1, true));
    }

    #[test]
    fn a_clock_set_back_is_followed() {
        let mut t = Ticker::new(1000);
        t.advance(1001, 60);
        let s = t.advance(500, 60);
        assert_eq!((s.seconds, s.skipped), (Some(500..=500), false));
        assert_eq!(t.advance(501, 60).seconds, Some(501..=501));
    }
}
