//! A bounded cache of decoded models, shared by every EVM the node runs.
//!
//! Keyed by model id (keccak256 of the bytes). Decoding is deterministic and a
//! model's bytes never change, so an entry is valid forever (across blocks,
//! reorgs and past-state calls), and a hit or a miss never changes a result or
//! the gas charged; the cache only saves decoding time.

#[cfg(feature = "test-hooks")]
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use alloy_primitives::B256;
use infera_kernels::{Kernels, Model, ModelError, RunOptions};
use parking_lot::Mutex;

use crate::offload::Offload;
pub use infera_metrics::inference::Device;

/// Default bound on the heap bytes of the decoded models the cache holds
/// ([`Model::heap_bytes`]: parameters plus the kernels' prepared weights, up
/// to about ten times a model's encoded size), not their encoded size.
pub const DEFAULT_CACHE_MODEL_BYTES: usize = 256 * 1024 * 1024;

/// Default bound on the number of cached models.
pub const DEFAULT_CACHE_MODELS: usize = 64;

#[derive(Debug)]
struct Entry {
    model: Arc<Model>,
    bytes: usize,
    last_used: u64,
}

#[derive(Debug, Default)]
struct Inner {
    entries: Vec<(B256, Entry)>,
    bytes: usize,
    tick: u64,
}

/// Decoded models by id, least recently used evicted first.
#[derive(Debug)]
pub struct ModelCache {
    inner: Mutex<Inner>,
    max_bytes: usize,
    max_models: usize,
    /// Kernels inferences run with. Every choice gives the same bytes (the
    /// engine's invariant); benchmarks pick [`Kernels::Portable`] to price
    /// gas against the reference loops a node without AVX2 runs.
    kernels: Kernels,
    /// Fault injection for consensus tests: every inference output is
    /// rotated by one byte, so this node computes results no honest node
    /// reproduces and its peers must reject its blocks. Never set in
    /// production: only builds with the `test-hooks` feature have it
    /// (`infera node --test.corrupt-inference`).
    #[cfg(feature = "test-hooks")]
    corrupt_outputs: AtomicBool,
    /// The accelerator inferences may run on (set once at node start,
    /// `--inference.device`); `None`: every inference on the CPU.
    offload: OnceLock<Offload>,
}

impl Default for ModelCache {
    fn default() -> Self {
        Self::new(DEFAULT_CACHE_MODEL_BYTES, DEFAULT_CACHE_MODELS)
    }
}

impl ModelCache {
    /// A cache holding at most `max_models` models of at most `max_bytes`
    /// decoded bytes in all ([`Model::heap_bytes`]). A model larger than
    /// `max_bytes` is never kept.
    pub fn new(max_bytes: usize, max_models: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            max_bytes,
            max_models,
            kernels: Kernels::Best,
            #[cfg(feature = "test-hooks")]
            corrupt_outputs: AtomicBool::new(false),
            offload: OnceLock::new(),
        }
    }

    /// Lets inferences run on `offload`'s accelerator from now on. Once per
    /// cache: a second call returns the offload it was given.
    pub fn set_offload(&self, offload: Offload) -> Result<(), Offload> {
        self.offload.set(offload)
    }

    /// The accelerator inferences may run on, if any.
    pub fn offload(&self) -> Option<&Offload> {
        self.offload.get()
    }

    /// One inference of model `id` (already decoded, `input` of its input
    /// length): the CPU reference's bytes, computed on the accelerator where
    /// [`Offload`] places the model, else on the CPU.
    pub fn infer(&self, id: B256, model: &Arc<Model>, input: &[u8]) -> Result<Vec<u8>, ModelError> {
        self.infer_on(id, model, input).0
    }

    /// [`ModelCache::infer`], and which device computed the bytes it returns.
    pub fn infer_on(
        &self,
        id: B256,
        model: &Arc<Model>,
        input: &[u8],
    ) -> (Result<Vec<u8>, ModelError>, Device) {
        let cpu = || model.run_with(input, self.run_options());
        match self.offload.get() {
            Some(offload) => offload.infer_on(id, model, input, cpu),
            None => (cpu(), Device::Cpu),
        }
    }

    /// Turns the consensus-test fault injection on or off (see the field).
    #[cfg(feature = "test-hooks")]
    pub fn set_corrupt_outputs(&self, corrupt: bool) {
        self.corrupt_outputs.store(corrupt, Ordering::Relaxed);
    }

    /// Whether inference outputs are deliberately corrupted.
    #[cfg(feature = "test-hooks")]
    pub fn corrupts_outputs(&self) -> bool {
        self.corrupt_outputs.load(Ordering::Relaxed)
    }

    /// The same cache running inferences with `kernels`.
    pub fn with_kernels(mut self, kernels: Kernels) -> Self {
        self.kernels = kernels;
        self
    }

    /// How inferences run (single-threaded; the kernels chosen above).
    pub fn run_options(&self) -> RunOptions {
        RunOptions {
            threads: 1,
            kernels: self.kernels,
        }
    }

    /// A shared default cache.
    pub fn shared() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The cached model `id`, if any.
    pub fn get(&self, id: &B256) -> Option<Arc<Model>> {
        let mut inner = self.inner.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let (_, entry) = inner.entries.iter_mut().find(|(key, _)| key == id)?;
        entry.last_used = tick;
        Some(entry.model.clone())
    }

    /// Keep `model` under `id`, counted by its decoded size, evicting the
    /// least recently used models to stay within the bounds.
    pub fn insert(&self, id: B256, model: Arc<Model>) {
        let bytes = model.heap_bytes();
        if bytes > self.max_bytes || self.max_models == 0 {
            return;
        }
        let mut inner = self.inner.lock();
        if inner.entries.iter().any(|(key, _)| *key == id) {
            return;
        }
        while inner.entries.len() >= self.max_models || inner.bytes + bytes > self.max_bytes {
            let Some(oldest) = inner
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, (_, entry))| entry.last_used)
                .map(|(i, _)| i)
            else {
                break;
            };
            let (_, evicted) = inner.entries.swap_remove(oldest);
            inner.bytes -= evicted.bytes;
        }
        inner.tick += 1;
        let last_used = inner.tick;
        inner.bytes += bytes;
        inner.entries.push((
            id,
            Entry {
                model,
                bytes,
                last_used,
            },
        ));
        infera_metrics::inference::cache_size(inner.bytes, inner.entries.len());
    }

    /// Decoded bytes of the cached models, as counted against the bound.
    pub fn held_bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    /// The bound on [`ModelCache::held_bytes`].
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Number of cached models.
    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits() -> (Arc<Model>, usize) {
        let bytes = include_bytes!("../../kernels/models/digits/digits.infera");
        let model = Arc::new(Model::decode(bytes).unwrap());
        let size = model.heap_bytes();
        (model, size)
    }

    #[test]
    fn evicts_least_recently_used_within_bounds() {
        let (model, size) = digits();
        let cache = ModelCache::new(size * 2, 10);
        let ids: Vec<B256> = (1..=3u8).map(B256::repeat_byte).collect();
        cache.insert(ids[0], model.clone());
        cache.insert(ids[1], model.clone());
        assert!(cache.get(&ids[0]).is_some()); // ids[1] is now the oldest
        cache.insert(ids[2], model.clone());
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&ids[1]).is_none());
        assert!(cache.get(&ids[0]).is_some());
        assert!(cache.get(&ids[2]).is_some());
    }

    #[test]
    fn counts_decoded_bytes_and_stays_within_them() {
        let (model, size) = digits();
        let encoded = include_bytes!("../../kernels/models/digits/digits.infera").len();
        // Decoded, a model holds more than its file: the bound must see that.
        assert!(size > encoded, "decoded {size} vs encoded {encoded}");
        let cache = ModelCache::new(size * 3 + size / 2, 100);
        for i in 0..20u8 {
            cache.insert(B256::repeat_byte(i), model.clone());
            assert!(cache.held_bytes() <= cache.max_bytes());
        }
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.held_bytes(), 3 * size);
    }

    #[test]
    fn too_large_models_and_zero_capacity_are_not_kept() {
        let (model, size) = digits();
        let cache = ModelCache::new(size - 1, 10);
        cache.insert(B256::ZERO, model.clone());
        assert!(cache.is_empty());
        let none = ModelCache::new(usize::MAX, 0);
        none.insert(B256::ZERO, model);
        assert!(none.is_empty());
    }
}
