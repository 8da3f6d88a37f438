//! Running inferences on an accelerator (a GPU) without ever changing a
//! result or the gas.
//!
//! The CPU reference (`Model::run_with`) defines every answer. An
//! [`Accelerator`] computes the same bytes faster for some models; [`Offload`]
//! decides, per model, where its inferences run, and falls back to the CPU
//! whenever the accelerator fails. Gas is charged by the precompile before any
//! of this runs, so where an inference ran cannot change it.
//!
//! Placement ([`Placement::Measured`], what `--inference.device auto` uses):
//! the first [`TRIAL_RUNS`] inferences of a model run on both the CPU and the
//! accelerator. The CPU's bytes are returned; the accelerator's must be equal
//! (a difference keeps the model on the CPU for good and is logged as an
//! error: it is a kernel bug the parity suite missed). After the trial the
//! model stays on whichever was faster by median time, so small models, where
//! launch and copy overheads dominate, stay on the CPU: the crossover is
//! measured on the machine that runs the node, per model, not guessed.
//! [`Placement::Always`] (`--inference.device cuda[:N]`) sends every model to
//! the accelerator, still with the CPU fallback.
//!
//! After [`MAX_CONSECUTIVE_FAILURES`] failed calls in a row the accelerator is
//! switched off for the rest of the process (a lost device keeps failing).
//!
//! A result the trial did not check is still never allowed to decide that a
//! block is invalid: block import runs under an [`AcceleratorWatch`], which
//! records every result the accelerator returned on that thread. A block
//! refused with such results is executed again under
//! [`AcceleratorWatch::cpu_only`], and [`Offload::verify_served`] compares the
//! recorded results with the CPU's and keeps every model whose result differed
//! on the CPU for good (`infera-node`'s `import_block_with`).

use std::{
    cell::RefCell,
    collections::HashMap,
    fmt,
    marker::PhantomData,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use alloy_primitives::B256;
use infera_kernels::{Model, ModelError};
use infera_metrics::inference::Device;
use parking_lot::Mutex;
use tracing::{error, info, warn};

/// Inferences of a model timed on both sides before it is placed. The first
/// accelerator run of a model includes uploading its weights and is not
/// counted, so the decision uses `TRIAL_RUNS - 1` samples per side.
pub const TRIAL_RUNS: usize = 6;

/// Failed accelerator calls in a row after which it is switched off.
pub const MAX_CONSECUTIVE_FAILURES: u32 = 3;

/// Input and output bytes an [`AcceleratorWatch`] keeps to check the
/// accelerator's results later; calls past it are kept by model only (and
/// such a model is moved to the CPU if its block turns out wrong).
pub const MAX_WATCHED_BYTES: usize = 64 * 1024 * 1024;

/// A device that runs a validated model and returns exactly the bytes of the
/// CPU reference (`Model::run`), e.g. the CUDA backend of `infera-gpu`.
pub trait Accelerator: Send + Sync {
    /// What it is, for logs (e.g. "CUDA device 0 (NVIDIA H100 80GB HBM3)").
    fn name(&self) -> String;

    /// One inference of model `id` on `input` (validated length). An error is
    /// a local fault: the caller computes the call on the CPU instead.
    fn run(&self, id: B256, model: &Arc<Model>, input: &[u8]) -> Result<Vec<u8>, String>;

    /// The model `id` will not run here again: drop any device copy of it.
    fn release(&self, id: B256) {
        let _ = id;
    }
}

/// How [`Offload`] decides where a model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Time a trial on both sides, then keep the faster (module docs).
    Measured,
    /// Every model on the accelerator.
    Always,
}

/// Where one model's inferences run now.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Site {
    /// Still being timed: run on both, return the CPU's bytes.
    Trial {
        runs: usize,
        cpu: Vec<Duration>,
        accelerator: Vec<Duration>,
    },
    Accelerator,
    Cpu,
}

/// Which side a finished trial picks: the accelerator only when its median
/// time is below the CPU's.
pub fn faster_on_accelerator(cpu: &[Duration], accelerator: &[Duration]) -> bool {
    match (median(cpu), median(accelerator)) {
        (Some(cpu), Some(accelerator)) => accelerator < cpu,
        _ => false,
    }
}

fn median(samples: &[Duration]) -> Option<Duration> {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied()
}

/// Counters of an [`Offload`], for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OffloadStats {
    /// Inferences whose returned bytes came from the accelerator.
    pub accelerated: u64,
    /// Inferences computed on the CPU (placement, trial or fallback).
    pub on_cpu: u64,
    /// Accelerator calls that failed and were computed on the CPU instead.
    pub fallbacks: u64,
    /// Accelerator results that differed from the CPU reference: in a
    /// model's trial, or found by [`Offload::verify_served`] (one per model).
    pub mismatches: u64,
    /// Blocks refused with accelerator results and executed again on the CPU.
    pub rechecked_blocks: u64,
    /// Of those, blocks the CPU reference accepted: the accelerator's results
    /// alone made them look invalid.
    pub overturned_blocks: u64,
}

/// One inference whose returned bytes came from the accelerator, as an
/// [`AcceleratorWatch`] saw it.
#[derive(Debug, Clone)]
pub struct ServedCall {
    /// The model.
    pub id: B256,
    /// The model, decoded (to compute the CPU reference again).
    pub model: Arc<Model>,
    /// The input and the accelerator's output; `None` past
    /// [`MAX_WATCHED_BYTES`].
    pub evidence: Option<(Vec<u8>, Vec<u8>)>,
}

/// What the watch of this thread does (see [`AcceleratorWatch`]).
enum Watch {
    Record {
        calls: Vec<ServedCall>,
        bytes: usize,
    },
    CpuOnly,
}

thread_local! {
    /// Execution is synchronous: every inference of a block runs on the
    /// thread that executes it, while RPC calls on other threads share the
    /// same [`Offload`]. A thread-local scope tells the two apart without
    /// threading a context through revm and the precompile.
    static WATCH: RefCell<Option<Watch>> = const { RefCell::new(None) };
}

/// While alive, changes how every [`Offload`] treats the inferences of this
/// thread: [`record`](Self::record) keeps each result the accelerator
/// returned, [`cpu_only`](Self::cpu_only) runs them all on the CPU reference.
/// Dropping it (or [`finish`](Self::finish)) restores the watch it replaced.
pub struct AcceleratorWatch {
    previous: Option<Watch>,
    /// The scope belongs to the thread it was opened on.
    _thread_bound: PhantomData<*const ()>,
}

impl fmt::Debug for AcceleratorWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcceleratorWatch").finish_non_exhaustive()
    }
}

impl AcceleratorWatch {
    /// Records the accelerator's results on this thread until
    /// [`finish`](Self::finish).
    pub fn record() -> Self {
        Self::open(Watch::Record {
            calls: Vec::new(),
            bytes: 0,
        })
    }

    /// Runs every inference of this thread on the CPU reference while alive.
    pub fn cpu_only() -> Self {
        Self::open(Watch::CpuOnly)
    }

    fn open(watch: Watch) -> Self {
        Self {
            previous: WATCH.with(|w| w.borrow_mut().replace(watch)),
            _thread_bound: PhantomData,
        }
    }

    /// The calls the accelerator served since [`record`](Self::record), in
    /// order (none for a [`cpu_only`](Self::cpu_only) watch).
    pub fn finish(self) -> Vec<ServedCall> {
        match WATCH.with(|w| w.borrow_mut().take()) {
            Some(Watch::Record { calls, .. }) => calls,
            _ => Vec::new(),
        }
    }
}

impl Drop for AcceleratorWatch {
    fn drop(&mut self) {
        let previous = self.previous.take();
        WATCH.with(|w| *w.borrow_mut() = previous);
    }
}

fn cpu_only_here() -> bool {
    WATCH.with(|w| matches!(*w.borrow(), Some(Watch::CpuOnly)))
}

fn record_served(id: B256, model: &Arc<Model>, input: &[u8], output: &[u8]) {
    WATCH.with(|w| {
        if let Some(Watch::Record { calls, bytes }) = &mut *w.borrow_mut() {
            let size = input.len() + output.len();
            let evidence = (*bytes + size <= MAX_WATCHED_BYTES).then(|| {
                *bytes += size;
                (input.to_vec(), output.to_vec())
            });
            calls.push(ServedCall {
                id,
                model: model.clone(),
                evidence,
            });
        }
    });
}

/// An accelerator and the per-model placement of inferences on it.
pub struct Offload {
    accelerator: Arc<dyn Accelerator>,
    placement: Placement,
    sites: Mutex<HashMap<B256, Site>>,
    consecutive_failures: AtomicU32,
    disabled: AtomicBool,
    accelerated: AtomicU64,
    on_cpu: AtomicU64,
    fallbacks: AtomicU64,
    mismatches: AtomicU64,
    // 32 bits: a block is re-checked only after a refusal, so these stay far
    // below 2^32, and `Offload` stays small enough to be returned by value
    // (`ModelCache::set_offload`).
    rechecked_blocks: AtomicU32,
    overturned_blocks: AtomicU32,
}

impl fmt::Debug for Offload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Offload")
            .field("accelerator", &self.accelerator.name())
            .field("placement", &self.placement)
            .field("disabled", &self.is_disabled())
            .field("stats", &self.stats())
            .finish()
    }
}

impl Offload {
    /// Inferences go to `accelerator` as `placement` decides.
    pub fn new(accelerator: Arc<dyn Accelerator>, placement: Placement) -> Self {
        Self {
            accelerator,
            placement,
            sites: Mutex::new(HashMap::new()),
            consecutive_failures: AtomicU32::new(0),
            disabled: AtomicBool::new(false),
            accelerated: AtomicU64::new(0),
            on_cpu: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
            mismatches: AtomicU64::new(0),
            rechecked_blocks: AtomicU32::new(0),
            overturned_blocks: AtomicU32::new(0),
        }
    }

    /// The accelerator's name.
    pub fn name(&self) -> String {
        self.accelerator.name()
    }

    /// True once the accelerator was switched off after repeated failures.
    pub fn is_disabled(&self) -> bool {
        self.disabled.load(Ordering::Relaxed)
    }

    /// What ran where so far.
    pub fn stats(&self) -> OffloadStats {
        OffloadStats {
            accelerated: self.accelerated.load(Ordering::Relaxed),
            on_cpu: self.on_cpu.load(Ordering::Relaxed),
            fallbacks: self.fallbacks.load(Ordering::Relaxed),
            mismatches: self.mismatches.load(Ordering::Relaxed),
            rechecked_blocks: u64::from(self.rechecked_blocks.load(Ordering::Relaxed)),
            overturned_blocks: u64::from(self.overturned_blocks.load(Ordering::Relaxed)),
        }
    }

    /// True when model `id`'s inferences return the accelerator's bytes now
    /// (its trial is over and picked the accelerator, or the placement is
    /// [`Placement::Always`] and it was not moved to the CPU since).
    pub fn serves(&self, id: B256) -> bool {
        if self.is_disabled() {
            return false;
        }
        match self.sites.lock().get(&id) {
            Some(site) => *site == Site::Accelerator,
            None => self.placement == Placement::Always,
        }
    }

    /// Checks the accelerator's results of a block that was refused with
    /// them and executed again on the CPU reference (`cpu` computes a call's
    /// reference bytes). Every model with a result that differs is kept on the
    /// CPU for good, counted and logged as an error with the block. When the
    /// CPU accepted the block (`cpu_accepted`) but no kept result differs,
    /// the models whose results were not kept (past [`MAX_WATCHED_BYTES`])
    /// are moved, since one of them must be wrong. Returns the models moved
    /// to the CPU.
    pub fn verify_served(
        &self,
        served: &[ServedCall],
        cpu_accepted: bool,
        block_number: u64,
        block_hash: B256,
        cpu: impl Fn(&Arc<Model>, &[u8]) -> Result<Vec<u8>, ModelError>,
    ) -> Vec<B256> {
        self.rechecked_blocks.fetch_add(1, Ordering::Relaxed);
        if cpu_accepted {
            self.overturned_blocks.fetch_add(1, Ordering::Relaxed);
        }
        let mut wrong: Vec<B256> = Vec::new();
        let mut unchecked: Vec<B256> = Vec::new();
        for call in served {
            if wrong.contains(&call.id) {
                continue;
            }
            match &call.evidence {
                Some((input, output)) if cpu(&call.model, input).ok().as_ref() != Some(output) => {
                    wrong.push(call.id);
                }
                Some(_) => {}
                None if !unchecked.contains(&call.id) => unchecked.push(call.id),
                None => {}
            }
        }
        let accelerator = self.accelerator.name();
        if wrong.is_empty() && cpu_accepted {
            if unchecked.is_empty() {
                error!(target: "infera::inference", block = block_number, hash = %block_hash, %accelerator, "the CPU reference accepts a block refused with accelerator results, yet every one of them matches the CPU: the difference is not the accelerator's");
            } else {
                warn!(target: "infera::inference", block = block_number, hash = %block_hash, %accelerator, models = ?unchecked, "the CPU reference accepts a block refused with accelerator results; those not kept (past the bound) must hold the wrong one");
            }
            wrong = unchecked;
        }
        for id in &wrong {
            self.mismatches.fetch_add(1, Ordering::Relaxed);
            infera_metrics::inference::gpu_mismatch();
            error!(target: "infera::inference", model = %id, block = block_number, hash = %block_hash, %accelerator, cpu_accepted, "accelerator result differs from the CPU reference in a block (a kernel bug the trial missed); the block was judged on the CPU and this model stays on the CPU");
            self.place(*id, Site::Cpu);
        }
        wrong
    }

    /// One inference of model `id`: on the accelerator or the CPU (`cpu`
    /// computes the reference), always the CPU reference's bytes or its error.
    pub fn infer(
        &self,
        id: B256,
        model: &Arc<Model>,
        input: &[u8],
        cpu: impl FnOnce() -> Result<Vec<u8>, ModelError>,
    ) -> Result<Vec<u8>, ModelError> {
        self.infer_on(id, model, input, cpu).0
    }

    /// [`Offload::infer`], and which device computed the bytes it returns.
    pub fn infer_on(
        &self,
        id: B256,
        model: &Arc<Model>,
        input: &[u8],
        cpu: impl FnOnce() -> Result<Vec<u8>, ModelError>,
    ) -> (Result<Vec<u8>, ModelError>, Device) {
        if self.is_disabled() || cpu_only_here() {
            return (self.count_cpu(cpu()), Device::Cpu);
        }
        let site = {
            let mut sites = self.sites.lock();
            sites
                .entry(id)
                .or_insert_with(|| match self.placement {
                    Placement::Measured => Site::Trial {
                        runs: 0,
                        cpu: Vec::new(),
                        accelerator: Vec::new(),
                    },
                    Placement::Always => Site::Accelerator,
                })
                .clone()
        };
        match site {
            Site::Cpu => (self.count_cpu(cpu()), Device::Cpu),
            Site::Accelerator => match self.accelerator.run(id, model, input) {
                Ok(bytes) => {
                    self.consecutive_failures.store(0, Ordering::Relaxed);
                    self.accelerated.fetch_add(1, Ordering::Relaxed);
                    record_served(id, model, input, &bytes);
                    (Ok(bytes), Device::Gpu)
                }
                Err(reason) => {
                    self.failed(id, &reason);
                    (self.count_cpu(cpu()), Device::Cpu)
                }
            },
            // A trial returns the CPU's bytes.
            Site::Trial { .. } => (self.trial(id, model, input, cpu), Device::Cpu),
        }
    }

    fn count_cpu(&self, result: Result<Vec<u8>, ModelError>) -> Result<Vec<u8>, ModelError> {
        self.on_cpu.fetch_add(1, Ordering::Relaxed);
        result
    }

    fn failed(&self, id: B256, reason: &str) {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        infera_metrics::inference::gpu_fallback();
        let failures = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        warn!(target: "infera::inference", model = %id, accelerator = %self.accelerator.name(), %reason, "accelerator failed; this inference runs on the CPU (same result, same gas)");
        if failures >= MAX_CONSECUTIVE_FAILURES && !self.disabled.swap(true, Ordering::Relaxed) {
            error!(target: "infera::inference", accelerator = %self.accelerator.name(), failures, "accelerator failed {failures} times in a row; every inference runs on the CPU from now on");
        }
    }

    fn trial(
        &self,
        id: B256,
        model: &Arc<Model>,
        input: &[u8],
        cpu: impl FnOnce() -> Result<Vec<u8>, ModelError>,
    ) -> Result<Vec<u8>, ModelError> {
        let started = Instant::now();
        let reference = cpu();
        let cpu_time = started.elapsed();
        self.on_cpu.fetch_add(1, Ordering::Relaxed);
        // An input the CPU refuses has no result to compare.
        let Ok(expected) = reference else {
            return reference;
        };
        let started = Instant::now();
        let result = self.accelerator.run(id, model, input);
        let accelerator_time = started.elapsed();
        let bytes = match result {
            Ok(bytes) => {
                self.consecutive_failures.store(0, Ordering::Relaxed);
                bytes
            }
            Err(reason) => {
                self.failed(id, &reason);
                return Ok(expected);
            }
        };
        if bytes != expected {
            self.mismatches.fetch_add(1, Ordering::Relaxed);
            infera_metrics::inference::gpu_mismatch();
            error!(target: "infera::inference", model = %id, accelerator = %self.accelerator.name(), "accelerator result differs from the CPU reference (a kernel bug; the CPU's bytes were used): this model stays on the CPU");
            self.place(id, Site::Cpu);
            return Ok(expected);
        }
        let mut sites = self.sites.lock();
        let Some(Site::Trial {
            runs,
            cpu,
            accelerator,
        }) = sites.get_mut(&id)
        else {
            return Ok(expected);
        };
        *runs += 1;
        // The first run of a model uploads its weights to the device: it is
        // not a fair sample of either side.
        if *runs > 1 {
            cpu.push(cpu_time);
            accelerator.push(accelerator_time);
        }
        if cpu.len() + 1 >= TRIAL_RUNS {
            let on_accelerator = faster_on_accelerator(cpu, accelerator);
            let cpu_us = median(cpu).unwrap_or_default().as_micros();
            let accelerator_us = median(accelerator).unwrap_or_default().as_micros();
            let site = if on_accelerator {
                Site::Accelerator
            } else {
                Site::Cpu
            };
            let chosen = if on_accelerator {
                self.accelerator.name()
            } else {
                "CPU".to_string()
            };
            info!(target: "infera::inference", model = %id, cpu_us, accelerator_us, samples = cpu.len(), "model placed on the {chosen} (faster by median time)");
            sites.insert(id, site);
            drop(sites);
            if !on_accelerator {
                self.accelerator.release(id);
            }
        }
        Ok(expected)
    }

    fn place(&self, id: B256, site: Site) {
        self.sites.lock().insert(id, site);
        self.accelerator.release(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread::sleep;

    fn digits() -> Arc<Model> {
        let bytes = include_bytes!("../../kernels/models/digits/digits.infera");
        Arc::new(Model::decode(bytes).unwrap())
    }

    fn input(model: &Model, seed: u8) -> Vec<u8> {
        let n = model.input_spec().elements() * model.input_spec().dtype.size_bytes();
        (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
    }

    /// A stand-in accelerator: the CPU reference's bytes (or wrong ones, or
    /// an error), after an optional delay, counting its calls.
    #[derive(Default)]
    struct Fake {
        delay: Duration,
        wrong: bool,
        /// Wrong bytes for these models only.
        wrong_for: Vec<B256>,
        failing: AtomicBool,
        calls: AtomicU64,
        released: Mutex<Vec<B256>>,
    }

    impl Accelerator for Fake {
        fn name(&self) -> String {
            "fake accelerator".into()
        }
        fn run(&self, id: B256, model: &Arc<Model>, input: &[u8]) -> Result<Vec<u8>, String> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            sleep(self.delay);
            if self.failing.load(Ordering::Relaxed) {
                return Err("device lost".into());
            }
            let mut out = model.run(input).map_err(|e| e.to_string())?;
            if self.wrong || self.wrong_for.contains(&id) {
                out[0] ^= 1;
            }
            Ok(out)
        }
        fn release(&self, id: B256) {
            self.released.lock().push(id);
        }
    }

    fn offload(fake: &Arc<Fake>, placement: Placement) -> Offload {
        Offload::new(fake.clone(), placement)
    }

    #[test]
    fn always_runs_on_the_accelerator_and_falls_back_to_the_cpu_on_errors() {
        let model = digits();
        let fake = Arc::new(Fake::default());
        let offload = offload(&fake, Placement::Always);
        let id = B256::repeat_byte(1);
        let x = input(&model, 7);
        let want = model.run(&x).unwrap();
        let cpu = || model.run(&x);
        assert_eq!(offload.infer(id, &model, &x, cpu).unwrap(), want);
        assert_eq!(offload.stats().accelerated, 1);

        fake.failing.store(true, Ordering::Relaxed);
        for n in 1..=u64::from(MAX_CONSECUTIVE_FAILURES) {
            assert_eq!(offload.infer(id, &model, &x, cpu).unwrap(), want);
            assert_eq!(offload.stats().fallbacks, n);
        }
        assert!(offload.is_disabled());
        let calls = fake.calls.load(Ordering::Relaxed);
        assert_eq!(offload.infer(id, &model, &x, cpu).unwrap(), want);
        assert_eq!(
            fake.calls.load(Ordering::Relaxed),
            calls,
            "a disabled accelerator is not called"
        );
        assert_eq!(
            offload.stats().on_cpu,
            1 + u64::from(MAX_CONSECUTIVE_FAILURES)
        );
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let model = digits();
        let fake = Arc::new(Fake::default());
        let offload = offload(&fake, Placement::Always);
        let x = input(&model, 1);
        let cpu = || model.run(&x);
        for _ in 0..3 {
            fake.failing.store(true, Ordering::Relaxed);
            for _ in 1..MAX_CONSECUTIVE_FAILURES {
                offload.infer(B256::ZERO, &model, &x, cpu).unwrap();
            }
            fake.failing.store(false, Ordering::Relaxed);
            offload.infer(B256::ZERO, &model, &x, cpu).unwrap();
        }
        assert!(!offload.is_disabled());
    }

    #[test]
    fn a_result_that_differs_from_the_cpu_is_never_returned_and_keeps_the_model_on_the_cpu() {
        let model = digits();
        let fake = Arc::new(Fake {
            wrong: true,
            ..Fake::default()
        });
        let offload = offload(&fake, Placement::Measured);
        let id = B256::repeat_byte(2);
        for seed in 0..4 {
            let x = input(&model, seed);
            let want = model.run(&x).unwrap();
            assert_eq!(
                offload.infer(id, &model, &x, || model.run(&x)).unwrap(),
                want
            );
        }
        assert_eq!(offload.stats().mismatches, 1);
        assert_eq!(fake.calls.load(Ordering::Relaxed), 1);
        assert_eq!(*fake.released.lock(), vec![id]);
    }

    #[test]
    fn a_slower_accelerator_leaves_the_model_on_the_cpu_after_the_trial() {
        let model = digits();
        let fake = Arc::new(Fake {
            delay: Duration::from_millis(5),
            ..Fake::default()
        });
        let offload = offload(&fake, Placement::Measured);
        let id = B256::repeat_byte(3);
        let x = input(&model, 3);
        let want = model.run(&x).unwrap();
        for _ in 0..TRIAL_RUNS + 4 {
            assert_eq!(
                offload.infer(id, &model, &x, || model.run(&x)).unwrap(),
                want
            );
        }
        assert_eq!(fake.calls.load(Ordering::Relaxed), TRIAL_RUNS as u64);
        assert_eq!(offload.stats().accelerated, 0);
        assert_eq!(*fake.released.lock(), vec![id]);
    }

    #[test]
    fn a_faster_accelerator_takes_the_model_after_the_trial() {
        let model = digits();
        let fake = Arc::new(Fake::default());
        let offload = offload(&fake, Placement::Measured);
        let id = B256::repeat_byte(4);
        let x = input(&model, 4);
        let want = model.run(&x).unwrap();
        // A CPU much slower than the accelerator.
        let slow_cpu = || {
            sleep(Duration::from_millis(5));
            model.run(&x)
        };
        for _ in 0..TRIAL_RUNS {
            assert_eq!(offload.infer(id, &model, &x, slow_cpu).unwrap(), want);
        }
        assert_eq!(
            offload.stats().accelerated,
            0,
            "the trial returns the CPU's bytes"
        );
        assert_eq!(offload.infer(id, &model, &x, slow_cpu).unwrap(), want);
        assert_eq!(offload.stats().accelerated, 1);
        assert!(fake.released.lock().is_empty());
        // Another model starts its own trial.
        offload
            .infer(B256::repeat_byte(5), &model, &x, slow_cpu)
            .unwrap();
        assert_eq!(offload.stats().accelerated, 1);
    }

    #[test]
    fn an_input_the_cpu_refuses_is_refused_without_calling_the_accelerator() {
        let model = digits();
        let fake = Arc::new(Fake::default());
        let offload = offload(&fake, Placement::Measured);
        let err = offload
            .infer(B256::ZERO, &model, &[1, 2, 3], || model.run(&[1, 2, 3]))
            .unwrap_err();
        assert!(matches!(err, ModelError::InputLength { .. }), "{err}");
        assert_eq!(fake.calls.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_watch_records_the_accelerators_results_of_its_own_thread_only() {
        let model = digits();
        let fake = Arc::new(Fake::default());
        let offload = Arc::new(offload(&fake, Placement::Always));
        let id = B256::repeat_byte(6);
        let x = input(&model, 6);
        let want = model.run(&x).unwrap();
        offload.infer(id, &model, &x, || model.run(&x)).unwrap();

        let watch = AcceleratorWatch::record();
        assert_eq!(
            offload.infer(id, &model, &x, || model.run(&x)).unwrap(),
            want
        );
        std::thread::scope(|s| {
            s.spawn(|| offload.infer(id, &model, &x, || model.run(&x)).unwrap());
        });
        let served = watch.finish();
        assert_eq!(offload.stats().accelerated, 3);
        assert_eq!(served.len(), 1, "only the watching thread's call");
        assert_eq!(served[0].id, id);
        assert_eq!(served[0].evidence, Some((x.clone(), want.clone())));

        offload.infer(id, &model, &x, || model.run(&x)).unwrap();
        assert!(AcceleratorWatch::record().finish().is_empty());
    }

    #[test]
    fn a_cpu_only_watch_never_calls_the_accelerator_and_restores_the_outer_watch() {
        let model = digits();
        let fake = Arc::new(Fake::default());
        let offload = offload(&fake, Placement::Always);
        let id = B256::repeat_byte(7);
        let x = input(&model, 7);
        let outer = AcceleratorWatch::record();
        {
            let _cpu = AcceleratorWatch::cpu_only();
            offload.infer(id, &model, &x, || model.run(&x)).unwrap();
        }
        assert_eq!(fake.calls.load(Ordering::Relaxed), 0);
        assert_eq!(offload.stats().on_cpu, 1);
        assert!(offload.serves(id), "CPU-only runs do not move the model");
        offload.infer(id, &model, &x, || model.run(&x)).unwrap();
        assert_eq!(outer.finish().len(), 1);
    }

    #[test]
    fn verifying_a_block_moves_exactly_the_models_whose_results_differ() {
        let model = digits();
        let (good, bad) = (B256::repeat_byte(8), B256::repeat_byte(9));
        let fake = Arc::new(Fake {
            wrong_for: vec![bad],
            ..Fake::default()
        });
        let offload = offload(&fake, Placement::Always);
        let watch = AcceleratorWatch::record();
        for seed in 0..3 {
            let x = input(&model, seed);
            for id in [good, bad, good] {
                offload.infer(id, &model, &x, || model.run(&x)).unwrap();
            }
        }
        let served = watch.finish();
        assert_eq!(served.len(), 9);
        let moved = offload.verify_served(&served, true, 5, B256::ZERO, |m, x| m.run(x));
        assert_eq!(moved, vec![bad]);
        let stats = offload.stats();
        assert_eq!(
            (
                stats.mismatches,
                stats.rechecked_blocks,
                stats.overturned_blocks
            ),
            (1, 1, 1)
        );
        assert!(offload.serves(good));
        assert!(!offload.serves(bad));
        assert_eq!(*fake.released.lock(), vec![bad]);

        // A block the CPU refuses too, with right results: nothing moves.
        let x = input(&model, 9);
        let watch = AcceleratorWatch::record();
        offload.infer(good, &model, &x, || model.run(&x)).unwrap();
        let served = watch.finish();
        assert!(
            offload
                .verify_served(&served, false, 6, B256::ZERO, |m, x| m.run(x))
                .is_empty()
        );
        let stats = offload.stats();
        assert_eq!(
            (
                stats.mismatches,
                stats.rechecked_blocks,
                stats.overturned_blocks
            ),
            (1, 2, 1)
        );
        assert!(offload.serves(good));
    }

    #[test]
    fn an_overturned_block_moves_the_models_whose_results_were_not_kept() {
        let model = digits();
        let fake = Arc::new(Fake::default());
        let offload = offload(&fake, Placement::Always);
        let (a, b, c) = (
            B256::repeat_byte(10),
            B256::repeat_byte(11),
            B256::repeat_byte(12),
        );
        let x = input(&model, 10);
        let unkept = |id| ServedCall {
            id,
            model: model.clone(),
            evidence: None,
        };
        let kept = ServedCall {
            id: c,
            model: model.clone(),
            evidence: Some((x.clone(), model.run(&x).unwrap())),
        };
        let served = [unkept(b), kept.clone(), unkept(a), unkept(b)];
        assert!(
            offload
                .verify_served(&served, false, 1, B256::ZERO, |m, x| m.run(x))
                .is_empty(),
            "a refused block proves nothing about unkept results"
        );
        let moved = offload.verify_served(&served, true, 1, B256::ZERO, |m, x| m.run(x));
        assert_eq!(moved, vec![b, a]);
        assert!(!offload.serves(a) && !offload.serves(b));
        assert!(offload.serves(c), "its result was checked and is right");
        assert_eq!(offload.stats().mismatches, 2);

        // Every result kept and right: the accelerator is not blamed.
        assert!(
            offload
                .verify_served(&[kept], true, 2, B256::ZERO, |m, x| m.run(x))
                .is_empty()
        );
        assert!(offload.serves(c));
    }

    #[test]
    fn evidence_is_kept_up_to_the_bound_only() {
        let model = digits();
        let fake = Arc::new(Fake::default());
        let offload = offload(&fake, Placement::Always);
        let x = input(&model, 12);
        let per_call = x.len() + model.run(&x).unwrap().len();
        let watch = AcceleratorWatch::record();
        // Pretend most of the bound is used, then fill it.
        WATCH.with(|w| {
            if let Some(Watch::Record { bytes, .. }) = &mut *w.borrow_mut() {
                *bytes = MAX_WATCHED_BYTES - per_call;
            }
        });
        for _ in 0..2 {
            offload
                .infer(B256::ZERO, &model, &x, || model.run(&x))
                .unwrap();
        }
        let served = watch.finish();
        assert!(served[0].evidence.is_some());
        assert!(served[1].evidence.is_none());
    }

    #[test]
    fn the_trial_picks_the_accelerator_only_when_its_median_is_lower() {
        let ms = |v: &[u64]| {
            v.iter()
                .map(|&m| Duration::from_millis(m))
                .collect::<Vec<_>>()
        };
        assert!(faster_on_accelerator(&ms(&[5, 5, 5]), &ms(&[1, 9, 2])));
        assert!(!faster_on_accelerator(&ms(&[5, 5, 5]), &ms(&[5, 5, 5])));
        assert!(!faster_on_accelerator(&ms(&[1, 1, 9]), &ms(&[2, 2, 0])));
        assert!(!faster_on_accelerator(&[], &[]));
    }
}
