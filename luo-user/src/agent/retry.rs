//! Sending cancel or finish until it is sent, refused, no longer needed, or given up on.
//!
//! The usual failure is `EBUSY`: the control device admits one opener, and a person's
//! `luoctl prepare` or another agent may hold it for a moment. So a failed send is retried
//! after a delay that doubles, within a bounded total; before each retry the state is read
//! again, and the retries stop once it no longer calls for the event (someone else cancelled
//! or finished, or the live update moved on). Errors that waiting cannot mend (no device, no
//! permission, the observer flavour, a refusal by the state machine) end it at once.

use std::time::Duration;

use luo_state::{Event, State};

use crate::error::{Error, Result};

/// When a failed cancel or finish is tried again: after `first`, then after twice as long
/// each time (never more than `max_delay`), as long as the delays add up to at most `total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The delay before the first retry.
    pub first: Duration,
    /// The longest delay between two tries.
    pub max_delay: Duration,
    /// The most time spent waiting between tries, all delays together.
    pub total: Duration,
}

impl Backoff {
    /// 100 ms, doubling up to 2 s, for at most 10 s of waiting: long enough for a person's
    /// `luoctl` command to let go of the device, short enough that a stuck agent says so.
    pub const DEFAULT: Backoff = Backoff {
        first: Duration::from_millis(100),
        max_delay: Duration::from_secs(2),
        total: Duration::from_secs(10),
    };

    /// No retry: one try only.
    pub const NONE: Backoff = Backoff {
        first: Duration::ZERO,
        max_delay: Duration::ZERO,
        total: Duration::ZERO,
    };

    /// The delays between tries, in order.
    pub fn delays(&self) -> impl Iterator<Item = Duration> + use<> {
        let Backoff {
            first,
            max_delay,
            total,
        } = *self;
        let mut next = first.min(max_delay);
        let mut spent = Duration::ZERO;
        std::iter::from_fn(move || {
            let delay = next;
            if delay.is_zero() {
                return None;
            }
            spent = spent.checked_add(delay).filter(|&spent| spent <= total)?;
            next = delay.saturating_mul(2).min(max_delay);
            Some(delay)
        })
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::DEFAULT
    }
}

/// How sending cancel or finish ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum Delivery {
    /// The kernel applied the event; the orchestrator is now in `state`.
    Sent {
        /// Where the event led.
        state: State,
        /// How many tries it took.
        attempts: u32,
    },
    /// The state machine refused the event (it is not allowed in the state the kernel has).
    Refused {
        /// The refusal, with the state.
        error: Error,
        /// How many tries were made.
        attempts: u32,
    },
    /// Before a retry the state was `state`, which no longer calls for the event: someone
    /// else sent it, or the live update moved on.
    NotNeeded {
        /// The state read.
        state: State,
        /// How many tries were made.
        attempts: u32,
    },
    /// It could not be sent: `error` is the last failure, after `attempts` tries (one when
    /// waiting could not help).
    GaveUp {
        /// The last failure.
        error: Error,
        /// How many tries were made.
        attempts: u32,
    },
}

impl Delivery {
    /// Whether the event was applied.
    pub fn is_sent(&self) -> bool {
        matches!(self, Delivery::Sent { .. })
    }

    /// Whether the orchestrator ended where the event leads, by this send or another's:
    /// false when it was refused or given up on, which leaves the live update where the
    /// failed hooks left it.
    pub fn is_settled(&self) -> bool {
        matches!(self, Delivery::Sent { .. } | Delivery::NotNeeded { .. })
    }

    /// How many tries were made.
    pub fn attempts(&self) -> u32 {
        match self {
            Delivery::Sent { attempts, .. }
            | Delivery::Refused { attempts, .. }
            | Delivery::NotNeeded { attempts, .. }
            | Delivery::GaveUp { attempts, .. } => *attempts,
        }
    }
}

/// A failed try that will be tried again.
#[derive(Debug)]
pub struct Retrying<'a> {
    /// The event.
    pub event: Event,
    /// The number of the try that failed (1 for the first).
    pub attempt: u32,
    /// Why it failed.
    pub error: &'a Error,
    /// How long until the next try.
    pub delay: Duration,
}

/// Whether the state still calls for `event`: `prepared` or `frozen` for cancel, `updated`
/// for finish.
pub(crate) fn still_wanted(event: Event, state: State) -> bool {
    match event {
        Event::Cancel => matches!(state, State::Prepared | State::Frozen),
        Event::Finish => state == State::Updated,
        _ => false,
    }
}

/// Whether waiting may mend `error`: a busy device, a device that went away (a module
/// reloading), an ioctl that failed for a reason of the moment.
fn transient(error: &Error) -> bool {
    matches!(
        error,
        Error::Busy { .. } | Error::Gone { .. } | Error::Io { .. }
    )
}

/// Sends `event` with `send` until it is applied, refused or given up on, waiting the delays
/// of `backoff` between tries with `sleep` (false: stop waiting, the caller is going away) and
/// reading the state with `state` before each retry. `retrying` hears of each retry.
pub(crate) fn deliver(
    event: Event,
    backoff: Backoff,
    mut send: impl FnMut() -> Result<State>,
    mut state: impl FnMut() -> Result<State>,
    mut sleep: impl FnMut(Duration) -> bool,
    mut retrying: impl FnMut(Retrying<'_>),
) -> Delivery {
    let mut delays = backoff.delays();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let error = match send() {
            Ok(state) => return Delivery::Sent { state, attempts },
            Err(error @ Error::EventRefused { .. }) => {
                return Delivery::Refused { error, attempts };
            }
            Err(error) => error,
        };
        let delay = match delays.next() {
            Some(delay) if transient(&error) => delay,
            _ => return Delivery::GaveUp { error, attempts },
        };
        retrying(Retrying {
            event,
            attempt: attempts,
            error: &error,
            delay,
        });
        if !sleep(delay) {
            return Delivery::GaveUp { error, attempts };
        }
        match state() {
            Ok(now) if !still_wanted(event, now) => {
                return Delivery::NotNeeded {
                    state: now,
                    attempts,
                };
            }
            Ok(_) => {}
            // The state cannot be read: the last send's failure is the one to report.
            Err(_) => return Delivery::GaveUp { error, attempts },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::path::PathBuf;

    use super::*;

    fn busy() -> Error {
        Error::Busy {
            path: PathBuf::from("/dev/liveupdate"),
        }
    }

    #[test]
    fn the_default_delays_double_from_100ms_and_stay_within_10s() {
        let delays: Vec<u64> = Backoff::DEFAULT
            .delays()
            .map(|d| u64::try_from(d.as_millis()).unwrap())
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
        assert!(Backoff::DEFAULT.delays().sum::<Duration>() <= Backoff::DEFAULT.total);
        assert_eq!(Backoff::NONE.delays().count(), 0);
    }

    #[test]
    fn a_busy_device_is_tried_again_until_the_send_succeeds() {
        let tries = Cell::new(0);
        let slept = RefCell::new(Vec::new());
        let heard = Cell::new(0);
        let delivery = deliver(
            Event::Cancel,
            Backoff::DEFAULT,
            || {
                tries.set(tries.get() + 1);
                if tries.get() < 3 {
                    Err(busy())
                } else {
                    Ok(State::Normal)
                }
            },
            || Ok(State::Prepared),
            |delay| {
                slept.borrow_mut().push(delay);
                true
            },
            |_| heard.set(heard.get() + 1),
        );
        assert!(matches!(
            delivery,
            Delivery::Sent {
                state: State::Normal,
                attempts: 3
            }
        ));
        assert_eq!(
            *slept.borrow(),
            [Duration::from_millis(100), Duration::from_millis(200)]
        );
        assert_eq!(heard.get(), 2);
    }

    #[test]
    fn retries_stop_once_the_state_no_longer_calls_for_the_event() {
        let delivery = deliver(
            Event::Finish,
            Backoff::DEFAULT,
            || Err(busy()),
            || Ok(State::Normal),
            |_| true,
            |_| {},
        );
        assert!(matches!(
            delivery,
            Delivery::NotNeeded {
                state: State::Normal,
                attempts: 1
            }
        ));
    }

    #[test]
    fn a_device_that_stays_busy_is_given_up_on_after_the_backoff() {
        let delivery = deliver(
            Event::Cancel,
            Backoff::DEFAULT,
            || Err(busy()),
            || Ok(State::Prepared),
            |_| true,
            |_| {},
        );
        let expected = Backoff::DEFAULT.delays().count() + 1;
        match delivery {
            Delivery::GaveUp {
                error: Error::Busy { .. },
                attempts,
            } => assert_eq!(usize::try_from(attempts).unwrap(), expected),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_missing_device_is_not_tried_again() {
        let delivery = deliver(
            Event::Cancel,
            Backoff::DEFAULT,
            || {
                Err(Error::NotFound {
                    path: PathBuf::from("/dev/liveupdate"),
                })
            },
            || panic!("no retry, so no read"),
            |_| panic!("no retry, so no wait"),
            |_| panic!("no retry"),
        );
        assert!(matches!(delivery, Delivery::GaveUp { attempts: 1, .. }));
    }

    #[test]
    fn a_refusal_is_reported_as_such_without_retry() {
        let delivery = deliver(
            Event::Finish,
            Backoff::DEFAULT,
            || {
                Err(Error::EventRefused {
                    path: PathBuf::from("/dev/liveupdate"),
                    event: Event::Finish,
                    state: Some(State::Normal),
                })
            },
            || panic!("no retry"),
            |_| panic!("no retry"),
            |_| panic!("no retry"),
        );
        assert!(matches!(delivery, Delivery::Refused { attempts: 1, .. }));
    }

    #[test]
    fn a_stop_while_waiting_gives_up() {
        let delivery = deliver(
            Event::Cancel,
            Backoff::DEFAULT,
            || Err(busy()),
            || panic!("stopped before the read"),
            |_| false,
            |_| {},
        );
        assert!(matches!(delivery, Delivery::GaveUp { attempts: 1, .. }));
    }
}
