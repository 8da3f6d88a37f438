//! Bounds on the methods that execute (`eth_call`, `eth_estimateGas`,
//! `eth_createAccessList`, `eth_simulateV1`, `infera_dryRun`): the gas cap
//! and the deadline of each request (as geth's `--rpc.gascap` and
//! `--rpc.evmtimeout`), and a gate that lets at most `--rpc.maxheavycalls` of
//! them execute at once, the others waiting in line.
//!
//! These methods are `blocking` jsonrpsee methods: they run on tokio's
//! blocking threads, never on the runtime's workers, so cheap methods
//! (`eth_blockNumber`, `eth_sendRawTransaction`) keep being answered. The gate
//! keeps the executions from taking every core; time spent waiting in line
//! counts toward the request's deadline, so a waiting request gives up when
//! its time is over rather than run late.

use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::Thread,
    time::{Duration, Instant},
};

use infera_evm::{CallLimits, Deadline};
use parking_lot::Mutex;

use crate::{MAX_QUEUED_HEAVY_CALLS, RpcContext, RpcError, RpcResult};

/// How many heavy calls may execute at once by default: one per core.
pub fn default_max_heavy_calls() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Parses `--rpc.evmtimeout`: a bare number of milliseconds (`5000`), or a
/// duration as geth writes it (`5s`, `1.5s`, `300ms`, `1m30s`; units `ms`,
/// `s`, `m`, `h`). `0` disables the timeout.
pub fn parse_evm_timeout(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration: give milliseconds (5000) or a duration (5s, 300ms)".into());
    }
    if let Ok(ms) = text.parse::<u64>() {
        return Ok(Duration::from_millis(ms));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{text:?}: {rest:?} has no unit (ms, s, m or h)"))?;
        let (number, tail) = rest.split_at(number_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{text:?}: {number:?} is not a number"))?;
        let unit_s = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3_600.0,
            other => {
                return Err(format!(
                    "{text:?}: unknown unit {other:?} (use ms, s, m or h)"
                ));
            }
        };
        let part =
            Duration::try_from_secs_f64(value * unit_s).map_err(|e| format!("{text:?}: {e}"))?;
        total = total
            .checked_add(part)
            .ok_or_else(|| format!("{text:?}: too long"))?;
        rest = tail;
    }
    Ok(total)
}

/// Lets at most `limit` heavy calls execute at once; the others wait in
/// arrival order, each until its deadline.
#[derive(Debug)]
pub(crate) struct HeavyCallGate {
    limit: usize,
    max_queued: usize,
    state: Mutex<GateState>,
}

#[derive(Debug, Default)]
struct GateState {
    running: usize,
    queue: VecDeque<Arc<Waiter>>,
}

#[derive(Debug)]
struct Waiter {
    thread: Thread,
    /// Set, under the gate's lock, when a finishing call hands its slot over.
    granted: AtomicBool,
}

/// A slot of the gate; given back (to the first in line) when dropped.
#[derive(Debug)]
pub(crate) struct HeavyPermit<'a> {
    gate: &'a HeavyCallGate,
}

impl Drop for HeavyPermit<'_> {
    fn drop(&mut self) {
        self.gate.release(&mut self.gate.state.lock());
    }
}

/// Why the gate gave no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GateRefusal {
    /// The deadline passed in line.
    Timeout,
    /// The line is full.
    QueueFull { running: usize, queued: usize },
}

impl HeavyCallGate {
    pub(crate) fn new(limit: usize, max_queued: usize) -> Self {
        Self {
            limit: limit.max(1),
            max_queued,
            state: Mutex::default(),
        }
    }

    /// A slot, at once or after waiting in line until `deadline` (`None`:
    /// as long as it takes).
    pub(crate) fn acquire(
        &self,
        deadline: Option<Instant>,
    ) -> Result<HeavyPermit<'_>, GateRefusal> {
        let waiter = {
            let mut state = self.state.lock();
            if state.running < self.limit && state.queue.is_empty() {
                state.running += 1;
                return Ok(HeavyPermit { gate: self });
            }
            if state.queue.len() >= self.max_queued {
                return Err(GateRefusal::QueueFull {
                    running: state.running,
                    queued: state.queue.len(),
                });
            }
            let waiter = Arc::new(Waiter {
                thread: std::thread::current(),
                granted: AtomicBool::new(false),
            });
            state.queue.push_back(waiter.clone());
            waiter
        };
        loop {
            if waiter.granted.load(Ordering::Acquire) {
                return Ok(HeavyPermit { gate: self });
            }
            let now = Instant::now();
            match deadline {
                Some(at) if now >= at => {
                    let mut state = self.state.lock();
                    if waiter.granted.load(Ordering::Acquire) {
                        // Handed a slot as time ran out: pass it on.
                        self.release(&mut state);
                    } else {
                        state.queue.retain(|w| !Arc::ptr_eq(w, &waiter));
                    }
                    return Err(GateRefusal::Timeout);
                }
                Some(at) => std::thread::park_timeout(at - now),
                None => std::thread::park(),
            }
        }
    }

    /// Hands a finished call's slot to the first in line, or frees it.
    fn release(&self, state: &mut GateState) {
        match state.queue.pop_front() {
            Some(next) => {
                next.granted.store(true, Ordering::Release);
                next.thread.unpark();
            }
            None => state.running -= 1,
        }
    }

    /// Calls executing now and calls waiting.
    pub(crate) fn load(&self) -> (usize, usize) {
        let state = self.state.lock();
        (state.running, state.queue.len())
    }
}

impl RpcContext {
    /// The bounds of one request's executions, its deadline counted from now.
    pub(crate) fn call_limits(&self) -> CallLimits {
        let config = self.config();
        CallLimits {
            gas_cap: (config.gas_cap > 0).then_some(config.gas_cap),
            deadline: (!config.evm_timeout.is_zero()).then(|| Deadline::after(config.evm_timeout)),
        }
    }

    /// Runs one heavy request: waits for a slot of the gate (the wait counts
    /// toward the deadline), then executes `f` within the request's bounds.
    pub(crate) fn heavy<T>(&self, f: impl FnOnce(CallLimits) -> RpcResult<T>) -> RpcResult<T> {
        let limits = self.call_limits();
        let _permit = self.enter_heavy(&limits)?;
        f(limits)
    }

    /// A slot of the gate for a request with `limits`.
    pub(crate) fn enter_heavy(&self, limits: &CallLimits) -> RpcResult<HeavyPermit<'_>> {
        self.heavy_gate()
            .acquire(limits.deadline.map(|d| d.at()))
            .map_err(|refusal| match refusal {
                GateRefusal::Timeout => {
                    let timeout = limits.deadline.map(|d| d.timeout()).unwrap_or_default();
                    crate::eth::evm_error(infera_evm::EvmError::Timeout { timeout })
                }
                GateRefusal::QueueFull { running, queued } => RpcError::LimitExceeded(format!(
                    "too many execution requests: {running} executing and {queued} waiting \
                     (at most {MAX_QUEUED_HEAVY_CALLS} wait; see --rpc.maxheavycalls)"
                )),
            })
    }

    /// Heavy calls executing now and waiting, for tests and metrics.
    pub fn heavy_call_load(&self) -> (usize, usize) {
        self.heavy_gate().load()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    #[test]
    fn timeouts_parse_as_geth_writes_them_or_as_milliseconds() {
        assert_eq!(parse_evm_timeout("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_evm_timeout("5000"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_evm_timeout("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_evm_timeout("1.5s"), Ok(Duration::from_millis(1_500)));
        assert_eq!(parse_evm_timeout("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_evm_timeout("0"), Ok(Duration::ZERO));
        for bad in ["", "5x", "s", "1.2.3s", "-1s"] {
            assert!(parse_evm_timeout(bad).is_err(), "{bad:?} accepted");
        }
        assert!(
            parse_evm_timeout("5x")
                .unwrap_err()
                .contains("unknown unit")
        );
    }

    #[test]
    fn a_second_call_waits_for_the_slot_and_gets_it_when_it_is_freed() {
        let gate = Arc::new(HeavyCallGate::new(1, 8));
        let first = gate.acquire(None).unwrap();
        let (done, finished) = mpsc::channel();
        let waiting = {
            let gate = gate.clone();
            std::thread::spawn(move || {
                let permit = gate.acquire(None);
                done.send(()).unwrap();
                permit.is_ok()
            })
        };
        while gate.load() != (1, 1) {
            std::thread::yield_now();
        }
        assert!(finished.try_recv().is_err(), "the second call did not wait");
        drop(first);
        assert!(waiting.join().unwrap());
        assert_eq!(gate.load(), (0, 0));
    }

    #[test]
    fn a_call_waiting_past_its_deadline_leaves_the_line() {
        let gate = HeavyCallGate::new(1, 8);
        let _first = gate.acquire(None).unwrap();
        let deadline = Instant::now() + Duration::from_millis(20);
        assert_eq!(
            gate.acquire(Some(deadline)).unwrap_err(),
            GateRefusal::Timeout
        );
        assert_eq!(gate.load(), (1, 0));
    }

    #[test]
    fn a_full_line_refuses_at_once() {
        let gate = Arc::new(HeavyCallGate::new(1, 1));
        let first = gate.acquire(None).unwrap();
        let queued = {
            let gate = gate.clone();
            std::thread::spawn(move || gate.acquire(None).is_ok())
        };
        while gate.load() != (1, 1) {
            std::thread::yield_now();
        }
        assert_eq!(
            gate.acquire(None).unwrap_err(),
            GateRefusal::QueueFull {
                running: 1,
                queued: 1
            }
        );
        drop(first);
        assert!(queued.join().unwrap());
    }

    #[test]
    fn slots_go_in_arrival_order() {
        let gate = Arc::new(HeavyCallGate::new(1, 8));
        let first = gate.acquire(None).unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for i in 0..4 {
            let (waiter_gate, order) = (gate.clone(), order.clone());
            threads.push(std::thread::spawn(move || {
                let _permit = waiter_gate.acquire(None).unwrap();
                order.lock().push(i);
            }));
            // The next thread queues only once this one is in line.
            while gate.load().1 != i + 1 {
                std::thread::yield_now();
            }
        }
        drop(first);
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(*order.lock(), vec![0, 1, 2, 3]);
    }
}
