//! The node's Prometheus metrics, all in one place: every series' name,
//! kind, unit and description ([`SERIES`]), and one small function per thing
//! the node records, so that the code paths that measure never spell a name.
//!
//! Recording goes through the `metrics` facade: until a recorder is
//! installed (`infera node` without `--metrics`, tests, tools) every call
//! is a no-op costing an atomic load. With the `exporter` feature,
//! [`exporter::serve`] installs the Prometheus recorder (once per process)
//! and serves its text format on `/metrics`.
//!
//! Names follow Prometheus' conventions: the `infera_` prefix, base units
//! (seconds, bytes), `_total` on counters, the unit as the suffix.

use std::time::Duration;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};

#[cfg(feature = "exporter")]
pub mod exporter;

/// What kind of series a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (`_total`).
    Counter,
    /// A value that is set.
    Gauge,
    /// A distribution of samples (buckets, sum, count).
    Histogram,
}

/// One exported series.
#[derive(Debug, Clone, Copy)]
pub struct Series {
    /// The Prometheus name.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// Its unit, if it has one.
    pub unit: Option<Unit>,
    /// Its labels (each with a bounded set of values).
    pub labels: &'static [&'static str],
    /// The `# HELP` text.
    pub help: &'static str,
}

macro_rules! series {
    ($($(#[$doc:meta])* $const:ident = $name:literal, $kind:ident, $unit:expr, [$($label:literal),*], $help:literal;)*) => {
        $($(#[$doc])* pub const $const: &str = $name;)*
        /// Every series the node exports.
        pub const SERIES: &[Series] = &[
            $(Series { name: $name, kind: Kind::$kind, unit: $unit, labels: &[$($label),*], help: $help },)*
        ];
    };
}

series! {
    /// Number of the canonical head block.
    CHAIN_HEAD_NUMBER = "infera_chain_head_number", Gauge, None, [],
        "Number of the canonical head block";
    /// Timestamp of the head block.
    CHAIN_HEAD_TIMESTAMP = "infera_chain_head_timestamp_seconds", Gauge, Some(Unit::Seconds), [],
        "Timestamp of the canonical head block (Unix seconds)";
    /// Wall clock minus the head's timestamp.
    CHAIN_HEAD_AGE = "infera_chain_head_age_seconds", Gauge, Some(Unit::Seconds), [],
        "Seconds since the head block's timestamp, sampled every second";
    /// Blocks added to the chain, by how (`sealed` here, `imported` from peers).
    CHAIN_BLOCKS = "infera_chain_blocks_total", Counter, Some(Unit::Count), ["source"],
        "Blocks committed, by source: sealed by this node or imported";
    /// Transactions in committed blocks.
    CHAIN_TRANSACTIONS = "infera_chain_transactions_total", Counter, Some(Unit::Count), ["source"],
        "Transactions in committed blocks, by source";
    /// Gas used by committed blocks; its rate is the chain's gas per second.
    CHAIN_GAS_USED = "infera_chain_gas_used_total", Counter, Some(Unit::Count), ["source"],
        "Gas used by committed blocks, by source (rate() gives gas per second)";
    /// Gas of the last block over the time it took to process.
    CHAIN_GAS_PER_SECOND = "infera_chain_gas_per_second", Gauge, None, ["source"],
        "Gas of the last committed block divided by its build or import time";
    /// Whole build of a sealed block.
    CHAIN_SEAL_SECONDS = "infera_chain_seal_seconds", Histogram, Some(Unit::Seconds), [],
        "Time to build and commit a block this node sealed";
    /// One phase of a sealed block's build.
    CHAIN_SEAL_PHASE_SECONDS = "infera_chain_seal_phase_seconds", Histogram, Some(Unit::Seconds), ["phase"],
        "Time of one phase of building a sealed block (select, execute, apply, state_root, insert, commit, pool)";
    /// Whole import of a peer's block.
    CHAIN_IMPORT_SECONDS = "infera_chain_import_seconds", Histogram, Some(Unit::Seconds), [],
        "Time to validate, execute and commit an imported block";
    /// One phase of an imported block's import.
    CHAIN_IMPORT_PHASE_SECONDS = "infera_chain_import_phase_seconds", Histogram, Some(Unit::Seconds), ["phase"],
        "Time of one phase of importing a block (validate, execute, apply, state_root, commit)";

    /// Executable transactions in the pool.
    TXPOOL_PENDING = "infera_txpool_pending", Gauge, Some(Unit::Count), [],
        "Executable (pending) transactions in the pool";
    /// Nonce-gapped transactions in the pool.
    TXPOOL_QUEUED = "infera_txpool_queued", Gauge, Some(Unit::Count), [],
        "Transactions in the pool waiting for a nonce gap (queued)";
    /// Transactions admitted.
    TXPOOL_ADMITTED = "infera_txpool_admitted_total", Counter, Some(Unit::Count), [],
        "Transactions admitted to the pool (RPC and peers)";
    /// Transactions refused, by reason.
    TXPOOL_REJECTED = "infera_txpool_rejected_total", Counter, Some(Unit::Count), ["reason"],
        "Transactions refused admission to the pool, by reason";

    /// Connected peers (handshake done).
    NETWORK_PEERS = "infera_network_peers", Gauge, Some(Unit::Count), [],
        "Peers connected with a completed status handshake";
    /// Bans, by reason.
    NETWORK_BANS = "infera_network_peer_bans_total", Counter, Some(Unit::Count), ["reason"],
        "Peers banned, by reason";
    /// Gossip messages by direction and topic.
    NETWORK_GOSSIP = "infera_network_gossip_messages_total", Counter, Some(Unit::Count), ["direction", "topic"],
        "Gossip messages received (in) and published (out), by topic (block, tx)";
    /// Blocks imported by range sync; its rate is sync blocks per second.
    NETWORK_SYNC_BLOCKS = "infera_network_sync_blocks_total", Counter, Some(Unit::Count), [],
        "Blocks imported by range sync (rate() gives blocks per second)";

    /// JSON-RPC calls by method.
    RPC_REQUESTS = "infera_rpc_requests_total", Counter, Some(Unit::Count), ["method"],
        "JSON-RPC calls, by method (batch entries counted one by one)";
    /// JSON-RPC calls answered with an error, by method.
    RPC_ERRORS = "infera_rpc_errors_total", Counter, Some(Unit::Count), ["method"],
        "JSON-RPC calls answered with an error, by method";
    /// JSON-RPC call latency by method.
    RPC_REQUEST_SECONDS = "infera_rpc_request_seconds", Histogram, Some(Unit::Seconds), ["method"],
        "Time to answer a JSON-RPC call, by method";
    /// Open JSON-RPC connections (HTTP and WebSocket).
    RPC_CONNECTIONS = "infera_rpc_connections", Gauge, Some(Unit::Count), [],
        "Open JSON-RPC connections (HTTP and WebSocket, all servers)";

    /// Inference precompile calls that ran a model.
    INFERENCE_CALLS = "infera_inference_calls_total", Counter, Some(Unit::Count), ["model", "device"],
        "Inferences run by the precompile, by model id and device (cpu, gpu)";
    /// Inference latency (the model run, decoding excluded).
    INFERENCE_SECONDS = "infera_inference_seconds", Histogram, Some(Unit::Seconds), ["model", "device"],
        "Time of one inference, by model id and device";
    /// Gas charged by the inference precompile.
    INFERENCE_GAS = "infera_inference_gas_total", Counter, Some(Unit::Count), ["model", "device"],
        "Gas charged for inferences, by model id and device";
    /// Model cache hits.
    INFERENCE_CACHE_HITS = "infera_inference_model_cache_hits_total", Counter, Some(Unit::Count), [],
        "Inferences whose model was already decoded in the cache";
    /// Model cache misses (model decoded from state).
    INFERENCE_CACHE_MISSES = "infera_inference_model_cache_misses_total", Counter, Some(Unit::Count), [],
        "Inferences that decoded their model from state";
    /// Decoded bytes the cache holds.
    INFERENCE_CACHE_BYTES = "infera_inference_model_cache_bytes", Gauge, Some(Unit::Bytes), [],
        "Decoded bytes of the models in the cache";
    /// Models the cache holds.
    INFERENCE_CACHE_MODELS = "infera_inference_model_cache_models", Gauge, Some(Unit::Count), [],
        "Models in the cache";
    /// GPU failures answered by the CPU.
    INFERENCE_GPU_FALLBACKS = "infera_inference_gpu_fallbacks_total", Counter, Some(Unit::Count), [],
        "Accelerator calls that failed and ran on the CPU instead";
    /// GPU results that differed from the CPU reference.
    INFERENCE_GPU_MISMATCHES = "infera_inference_gpu_mismatches_total", Counter, Some(Unit::Count), [],
        "Accelerator results that differed from the CPU reference";

    /// Size of the MDBX data file.
    STORAGE_FILE_BYTES = "infera_storage_db_file_bytes", Gauge, Some(Unit::Bytes), [],
        "Size of the MDBX data file on disk (free pages and growth reserve included)";
    /// Bytes of the tables' pages.
    STORAGE_USED_BYTES = "infera_storage_db_used_bytes", Gauge, Some(Unit::Bytes), [],
        "Bytes of the pages every table uses (branch, leaf and overflow pages)";
    /// Pages one write transaction dirtied.
    STORAGE_COMMIT_PAGES = "infera_storage_commit_pages", Histogram, Some(Unit::Count), ["source"],
        "MDBX pages written (allocated or copied) by one block's write transaction";
    /// Pages written by all block commits.
    STORAGE_PAGES_WRITTEN = "infera_storage_pages_written_total", Counter, Some(Unit::Count), [],
        "MDBX pages written (allocated or copied) by block commits";
}

/// Registers every series' description and unit with the installed recorder.
pub fn describe() {
    for series in SERIES {
        let (name, help) = (series.name, series.help);
        match (series.kind, series.unit) {
            (Kind::Counter, Some(unit)) => describe_counter!(name, unit, help),
            (Kind::Counter, None) => describe_counter!(name, help),
            (Kind::Gauge, Some(unit)) => describe_gauge!(name, unit, help),
            (Kind::Gauge, None) => describe_gauge!(name, help),
            (Kind::Histogram, Some(unit)) => describe_histogram!(name, unit, help),
            (Kind::Histogram, None) => describe_histogram!(name, help),
        }
    }
}

/// The chain: head, blocks sealed and imported, their phases.
pub mod chain {
    use super::*;

    /// A block sealed here, with the time of each build phase.
    pub fn sealed(phases: &[(&'static str, Duration)], total: Duration, txs: usize, gas: u64) {
        histogram!(CHAIN_SEAL_SECONDS).record(total);
        for (phase, time) in phases {
            histogram!(CHAIN_SEAL_PHASE_SECONDS, "phase" => *phase).record(*time);
        }
        committed("sealed", total, txs, gas);
    }

    /// A block imported, with the time of each import phase.
    pub fn imported(phases: &[(&'static str, Duration)], total: Duration, txs: usize, gas: u64) {
        histogram!(CHAIN_IMPORT_SECONDS).record(total);
        for (phase, time) in phases {
            histogram!(CHAIN_IMPORT_PHASE_SECONDS, "phase" => *phase).record(*time);
        }
        committed("imported", total, txs, gas);
    }

    fn committed(source: &'static str, total: Duration, txs: usize, gas: u64) {
        counter!(CHAIN_BLOCKS, "source" => source).increment(1);
        counter!(CHAIN_TRANSACTIONS, "source" => source).increment(txs as u64);
        counter!(CHAIN_GAS_USED, "source" => source).increment(gas);
        let secs = total.as_secs_f64();
        if secs > 0.0 {
            gauge!(CHAIN_GAS_PER_SECOND, "source" => source).set(gas as f64 / secs);
        }
    }

    /// The head as sampled now: its number, and its timestamp against the
    /// wall clock `now_s` (both Unix seconds).
    pub fn head(number: u64, timestamp_s: u64, now_s: u64) {
        gauge!(CHAIN_HEAD_NUMBER).set(number as f64);
        gauge!(CHAIN_HEAD_TIMESTAMP).set(timestamp_s as f64);
        gauge!(CHAIN_HEAD_AGE).set(now_s.saturating_sub(timestamp_s) as f64);
    }
}

/// The transaction pool.
pub mod txpool {
    use super::*;

    /// The pool's sizes as sampled now.
    pub fn sizes(pending: usize, queued: usize) {
        gauge!(TXPOOL_PENDING).set(pending as f64);
        gauge!(TXPOOL_QUEUED).set(queued as f64);
    }

    /// A transaction entered the pool.
    pub fn admitted() {
        counter!(TXPOOL_ADMITTED).increment(1);
    }

    /// A transaction was refused; `reason` is one of a fixed set of words.
    pub fn rejected(reason: &'static str) {
        counter!(TXPOOL_REJECTED, "reason" => reason).increment(1);
    }
}

/// The peer-to-peer network.
pub mod network {
    use super::*;

    /// Connected peers as sampled now.
    pub fn peers(count: usize) {
        gauge!(NETWORK_PEERS).set(count as f64);
    }

    /// A peer was banned; `reason` is one of a fixed set of words.
    pub fn banned(reason: &'static str) {
        counter!(NETWORK_BANS, "reason" => reason).increment(1);
    }

    /// A gossip message arrived on `topic` (`block` or `tx`).
    pub fn gossip_in(topic: &'static str) {
        counter!(NETWORK_GOSSIP, "direction" => "in", "topic" => topic).increment(1);
    }

    /// A gossip message was published on `topic`.
    pub fn gossip_out(topic: &'static str) {
        counter!(NETWORK_GOSSIP, "direction" => "out", "topic" => topic).increment(1);
    }

    /// Range sync imported `blocks` blocks.
    pub fn sync_blocks(blocks: u64) {
        counter!(NETWORK_SYNC_BLOCKS).increment(blocks);
    }
}

/// The JSON-RPC servers.
pub mod rpc {
    use super::*;

    /// One call of `method` (a served method's name, or `unknown`) answered
    /// after `elapsed`, with an error or not.
    pub fn call(method: &'static str, elapsed: Duration, error: bool) {
        counter!(RPC_REQUESTS, "method" => method).increment(1);
        if error {
            counter!(RPC_ERRORS, "method" => method).increment(1);
        }
        histogram!(RPC_REQUEST_SECONDS, "method" => method).record(elapsed);
    }

    /// A connection was opened.
    pub fn connection_opened() {
        gauge!(RPC_CONNECTIONS).increment(1.0);
    }

    /// A connection was closed (or evicted).
    pub fn connection_closed() {
        gauge!(RPC_CONNECTIONS).decrement(1.0);
    }
}

/// The AI precompiles' inferences.
pub mod inference {
    use super::*;

    /// Where an inference's returned bytes were computed.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Device {
        /// The CPU reference.
        Cpu,
        /// The accelerator.
        Gpu,
    }

    impl Device {
        /// The label value.
        pub const fn label(self) -> &'static str {
            match self {
                Self::Cpu => "cpu",
                Self::Gpu => "gpu",
            }
        }
    }

    /// One inference of `model` (its id, hex) on `device`, charged `gas`.
    pub fn call(model: String, device: Device, elapsed: Duration, gas: u64) {
        let labels = [("model", model), ("device", device.label().to_owned())];
        counter!(INFERENCE_CALLS, &labels).increment(1);
        histogram!(INFERENCE_SECONDS, &labels).record(elapsed);
        counter!(INFERENCE_GAS, &labels).increment(gas);
    }

    /// The model was found decoded in the cache (`hit`) or decoded now.
    pub fn cache_lookup(hit: bool) {
        if hit {
            counter!(INFERENCE_CACHE_HITS).increment(1);
        } else {
            counter!(INFERENCE_CACHE_MISSES).increment(1);
        }
    }

    /// What the model cache holds after a change.
    pub fn cache_size(bytes: usize, models: usize) {
        gauge!(INFERENCE_CACHE_BYTES).set(bytes as f64);
        gauge!(INFERENCE_CACHE_MODELS).set(models as f64);
    }

    /// An accelerator call failed and the CPU answered.
    pub fn gpu_fallback() {
        counter!(INFERENCE_GPU_FALLBACKS).increment(1);
    }

    /// An accelerator result differed from the CPU reference.
    pub fn gpu_mismatch() {
        counter!(INFERENCE_GPU_MISMATCHES).increment(1);
    }
}

/// The MDBX database.
pub mod storage {
    use super::*;

    /// The data file's size and the bytes of the tables' pages.
    pub fn size(file_bytes: u64, used_bytes: u64) {
        gauge!(STORAGE_FILE_BYTES).set(file_bytes as f64);
        gauge!(STORAGE_USED_BYTES).set(used_bytes as f64);
    }

    /// A block's write transaction (`source`: `sealed` or `imported`) wrote `pages` pages.
    pub fn commit_pages(source: &'static str, pages: u64) {
        histogram!(STORAGE_COMMIT_PAGES, "source" => source).record(pages as f64);
        counter!(STORAGE_PAGES_WRITTEN).increment(pages);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        let mut seen = std::collections::HashSet::new();
        for s in SERIES {
            assert!(seen.insert(s.name), "{} listed twice", s.name);
            assert!(
                s.name.starts_with("infera_"),
                "{}: no infera_ prefix",
                s.name
            );
            assert!(
                s.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}: not snake case",
                s.name
            );
            assert_eq!(
                s.kind == Kind::Counter,
                s.name.ends_with("_total"),
                "{}: `_total` is for counters, and every counter has it",
                s.name
            );
            match s.unit {
                Some(Unit::Seconds) => assert!(
                    s.name.ends_with("_seconds") || s.name.ends_with("_seconds_total"),
                    "{}: a duration ends in _seconds",
                    s.name
                ),
                Some(Unit::Bytes) => assert!(s.name.ends_with("_bytes"), "{}", s.name),
                _ => assert!(!s.name.ends_with("_seconds"), "{}: not in seconds", s.name),
            }
            assert!(!s.help.is_empty());
        }
    }
}
