//! The clock the generator reads, and how it waits for that clock to move on.

use std::sync::Arc;
use std::time::Duration;

/// What the generator needs of a clock. The gateway's one [`crate::clock::Clock`] implements it
/// (system or manual); tests of the generator's edge cases implement it too, with clocks that
/// stall or go back on cue.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch; negative before 1970.
    fn now_ms(&self) -> i64;

    /// Called while the generator waits for this clock to gain `behind_ms` more milliseconds
    /// (a used-up millisecond or a small rollback). Rare and bounded, so the default sleeps for
    /// the bulk and yields for the last millisecond; fake clocks override it to advance time.
    fn pause(&self, behind_ms: u64) {
        wait_for_real_time(behind_ms);
    }
}

/// The default [`Clock::pause`] of a clock that moves by itself: sleeps for the bulk of
/// `behind_ms` and yields for the last millisecond.
pub fn wait_for_real_time(behind_ms: u64) {
    if behind_ms >= 2 {
        std::thread::sleep(Duration::from_millis(behind_ms - 1));
    } else {
        std::thread::yield_now();
    }
}

/// The order-id generator reads the same clock as the rest of the gateway: one clock, not two.
/// A system clock keeps the trait's default wait (sleeping); a manual clock is moved by the
/// wait instead, exactly as far as the generator needs, as real time would have moved it.
/// (Implemented here, beside the trait, so the clock knows nothing of order ids.)
impl Clock for crate::clock::Clock {
    fn now_ms(&self) -> i64 {
        self.read_ms()
    }

    fn pause(&self, behind_ms: u64) {
        if self.is_manual() {
            let behind = i64::try_from(behind_ms).unwrap_or(i64::MAX);
            self.advance_to(self.read_ms().saturating_add(behind));
        } else {
            wait_for_real_time(behind_ms);
        }
    }
}

/// Lets generators (and tests) share one clock.
impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now_ms(&self) -> i64 {
        (**self).now_ms()
    }

    fn pause(&self, behind_ms: u64) {
        (**self).pause(behind_ms);
    }
}
