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

use std::{
    collections::HashMap,
    fmt,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use alloy_primitives::B256;
use infera_kernels::{Model, ModelError};
use parking_lot::Mutex;
use tracing::{error, info, warn};

/// Inferences of a model timed on both sides before it is placed. The first
/// accelerator run of a model includes uploading its weights and is not
/// counted, so the decision uses `TRIAL_RUNS - 1` samples per side.
pub const TRIAL_RUNS: usize = 6;

/// Failed accelerator calls in a row after which it is switched off.
pub const MAX_CONSECUTIVE_FAILURES: u32 = 3;

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
    /// Accelerator results that differed from the CPU reference.
    pub mismatches: u64,
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
        }
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
        if self.is_disabled() {
            return self.count_cpu(cpu());
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
            Site::Cpu => self.count_cpu(cpu()),
            Site::Accelerator => match self.accelerator.run(id, model, input) {
                Ok(bytes) => {
                    self.consecutive_failures.store(0, Ordering::Relaxed);
                    self.accelerated.fetch_add(1, Ordering::Relaxed);
                    Ok(bytes)
                }
                Err(reason) => {
                    self.failed(id, &reason);
                    self.count_cpu(cpu())
                }
            },
            Site::Trial { .. } => self.trial(id, model, input, cpu),
        }
    }

    fn count_cpu(&self, result: Result<Vec<u8>, ModelError>) -> Result<Vec<u8>, ModelError> {
        self.on_cpu.fetch_add(1, Ordering::Relaxed);
        result
    }

    fn failed(&self, id: B256, reason: &str) {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
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
        failing: AtomicBool,
        calls: AtomicU64,
        released: Mutex<Vec<B256>>,
    }

    impl Accelerator for Fake {
        fn name(&self) -> String {
            "fake accelerator".into()
        }
        fn run(&self, _id: B256, model: &Arc<Model>, input: &[u8]) -> Result<Vec<u8>, String> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            sleep(self.delay);
            if self.failing.load(Ordering::Relaxed) {
                return Err("device lost".into());
            }
            let mut out = model.run(input).map_err(|e| e.to_string())?;
            if self.wrong {
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
