//! The next block's header, built in one place.
//!
//! Every path that makes a header (the dev and Clique sealers through
//! `infera-node`'s builder, `testing_buildBlockV1`, `eth_simulateV1`, the
//! benchmarks) starts from [`NextBlock::new`], executes with the environment
//! its header implies (`infera_evm::BlockEnvInput::from_header`, as the
//! importer does), and completes it with [`NextBlock::finish`].
//!
//! It lives here, in `infera-chainspec`, because what it decides before
//! execution follows from the parent and this chain's rules alone (the fork
//! schedule, the EIP-1559 base fee, EIP-4844/7918 excess blob gas, which fields
//! each fork adds), and because every crate that builds or checks headers
//! already depends on this one; `infera-evm` does not, and needs nothing from
//! here but the header.

use alloy_consensus::{
    EMPTY_OMMER_ROOT_HASH, Header, ReceiptEnvelope, Transaction as _, TxEnvelope,
    proofs::{calculate_receipt_root, calculate_transaction_root, calculate_withdrawals_root},
};
use alloy_eips::{
    eip1559::INITIAL_BASE_FEE,
    eip4895::Withdrawal,
    eip7685::{EMPTY_REQUESTS_HASH, Requests},
};
use infera_primitives::{Address, B256, Bloom, Bytes, U256};

use crate::{ChainSpec, SpecId};

/// How the next block's gas limit is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GasLimit {
    /// The parent's limit (doubled at the London block, EIP-1559 elasticity).
    Parent,
    /// One step of geth's `CalcGasLimit` from the parent's limit (doubled at
    /// the London block) towards this target.
    Towards(u64),
    /// Exactly this limit (`eth_simulateV1`'s block override).
    Exact(u64),
}

/// What the proposer of the next block chooses; everything else follows from
/// the parent and the chain.
#[derive(Clone, Debug)]
pub struct BlockAttributes {
    pub timestamp: u64,
    pub beneficiary: Address,
    /// The header's mix hash: PREVRANDAO from the merge on.
    pub prev_randao: B256,
    pub gas_limit: GasLimit,
    pub extra_data: Bytes,
    /// The EIP-4788 root, from Cancun on only (dropped before).
    pub parent_beacon_block_root: B256,
    /// EIP-4895 withdrawals, credited after the transactions (Shanghai on).
    pub withdrawals: Vec<Withdrawal>,
}

/// What execution produced, for the fields the header commits to.
#[derive(Clone, Copy, Debug)]
pub struct BlockOutput<'a> {
    pub state_root: B256,
    pub transactions: &'a [TxEnvelope],
    pub receipts: &'a [ReceiptEnvelope],
    /// The EIP-7685 requests of the block (ignored before Prague).
    pub requests: &'a Requests,
}

/// The next block's header between its two halves: the fields fixed before
/// execution are set, the roots, gas used and bloom are not yet.
#[derive(Clone, Debug)]
pub struct NextBlock {
    header: Header,
    spec: SpecId,
    blob_base_fee_update_fraction: Option<u64>,
}

impl NextBlock {
    /// The header of the block after `parent` (whose hash is `parent_hash`),
    /// as far as it is known before execution.
    pub fn new(
        chain: &ChainSpec,
        parent: &Header,
        parent_hash: B256,
        attributes: &BlockAttributes,
    ) -> Self {
        let number = parent.number + 1;
        let timestamp = attributes.timestamp;
        let spec = chain.spec_at(number, timestamp);
        let enabled = |fork| spec.is_enabled_in(fork);
        let london = enabled(SpecId::LONDON);
        let parent_london = chain
            .spec_at(parent.number, parent.timestamp)
            .is_enabled_in(SpecId::LONDON);
        // At the London block the parent's limit counts `elasticity` times,
        // and the base fee starts at its initial value (EIP-1559).
        let parent_limit = if london && !parent_london {
            parent.gas_limit.saturating_mul(
                u64::try_from(chain.base_fee_params.elasticity_multiplier).unwrap_or(1),
            )
        } else {
            parent.gas_limit
        };
        let gas_limit = match attributes.gas_limit {
            GasLimit::Parent => parent_limit,
            GasLimit::Towards(target) => next_gas_limit(parent_limit, target),
            GasLimit::Exact(limit) => limit,
        };
        let base_fee_per_gas = london.then(|| {
            if parent_london {
                chain.next_base_fee(parent).unwrap_or(INITIAL_BASE_FEE)
            } else {
                INITIAL_BASE_FEE
            }
        });
        let blob_params = chain.blob_params_at(number, timestamp);
        // The parent's fields are absent before Cancun: zero, as geth counts them.
        let excess_blob_gas = blob_params.map(|params| {
            params.next_block_excess_blob_gas_osaka(
                parent.excess_blob_gas.unwrap_or(0),
                parent.blob_gas_used.unwrap_or(0),
                parent.base_fee_per_gas.unwrap_or(0),
            )
        });
        let header = Header {
            parent_hash,
            ommers_hash: EMPTY_OMMER_ROOT_HASH,
            beneficiary: attributes.beneficiary,
            // A proof-of-authority seal sets its own difficulty.
            difficulty: if enabled(SpecId::MERGE) {
                U256::ZERO
            } else {
                parent.difficulty
            },
            number,
            gas_limit,
            timestamp,
            extra_data: attributes.extra_data.clone(),
            mix_hash: attributes.prev_randao,
            base_fee_per_gas,
            withdrawals_root: enabled(SpecId::SHANGHAI)
                .then(|| calculate_withdrawals_root(&attributes.withdrawals)),
            blob_gas_used: enabled(SpecId::CANCUN).then_some(0),
            excess_blob_gas,
            parent_beacon_block_root: enabled(SpecId::CANCUN)
                .then_some(attributes.parent_beacon_block_root),
            requests_hash: enabled(SpecId::PRAGUE).then_some(EMPTY_REQUESTS_HASH),
            ..Default::default()
        };
        Self {
            header,
            spec,
            blob_base_fee_update_fraction: blob_params
                .map(|p| u64::try_from(p.update_fraction).unwrap_or(u64::MAX)),
        }
    }

    /// The header so far: execute with the environment it implies.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// For callers that override fields before execution (`eth_simulateV1`'s
    /// block overrides).
    pub fn header_mut(&mut self) -> &mut Header {
        &mut self.header
    }

    /// The EVM rules of the block.
    pub fn spec(&self) -> SpecId {
        self.spec
    }

    /// The EIP-4844 blob base fee update fraction of the block (`None` before
    /// Cancun), for the execution environment.
    pub fn blob_base_fee_update_fraction(&self) -> Option<u64> {
        self.blob_base_fee_update_fraction
    }

    /// The complete, unsealed header: roots, gas used, bloom, blob gas used
    /// and requests hash from what execution produced.
    pub fn finish(self, output: BlockOutput<'_>) -> Header {
        let mut header = self.header;
        let mut logs_bloom = Bloom::ZERO;
        for receipt in output.receipts {
            logs_bloom.accrue_bloom(receipt.logs_bloom());
        }
        header.state_root = output.state_root;
        header.transactions_root = calculate_transaction_root(output.transactions);
        header.receipts_root = calculate_receipt_root(output.receipts);
        header.logs_bloom = logs_bloom;
        header.gas_used = output
            .receipts
            .last()
            .map_or(0, |receipt| receipt.cumulative_gas_used());
        if header.blob_gas_used.is_some() {
            header.blob_gas_used = Some(
                output
                    .transactions
                    .iter()
                    .filter_map(|tx| tx.blob_gas_used())
                    .sum(),
            );
        }
        if header.requests_hash.is_some() {
            header.requests_hash = Some(output.requests.requests_hash());
        }
        header
    }
}

/// Geth's `CalcGasLimit`: a step of at most parent/1024 - 1 towards `desired`.
pub fn next_gas_limit(parent: u64, desired: u64) -> u64 {
    let delta = (parent / 1024).saturating_sub(1);
    let desired = desired.max(5000);
    if parent < desired {
        (parent + delta).min(desired)
    } else if parent > desired {
        parent.saturating_sub(delta).max(desired)
    } else {
        parent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gas_limit_moves_at_most_one_step_towards_the_target() {
        // The execution-apis chain: 200M moves down by 200M/1024 - 1.
        assert_eq!(next_gas_limit(200_000_000, 60_000_000), 199_804_689);
        assert_eq!(next_gas_limit(30_000_000, 60_000_000), 30_029_295);
        assert_eq!(next_gas_limit(60_000_100, 60_000_000), 60_000_000);
        assert_eq!(next_gas_limit(60_000_000, 60_000_000), 60_000_000);
    }
}
