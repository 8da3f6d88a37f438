//! Block and chain configuration, and the conversion of transactions to revm's [`TxEnv`].

use alloy_consensus::{Transaction as _, TxEnvelope};
use alloy_primitives::{Address, B256, U256};
use infera_primitives::RecoveredTx;
use revm::{
    context::{BlockEnv, CfgEnv, TxEnv, either::Either},
    context_interface::block::BlobExcessGasAndPrice,
    primitives::{
        eip4844::{BLOB_BASE_FEE_UPDATE_FRACTION_CANCUN, BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE},
        hardfork::SpecId,
    },
};

use crate::error::InvalidTransaction;

/// The EIP-7825 cap on one transaction's gas limit (Osaka and later).
pub const TX_GAS_LIMIT_CAP: u64 = revm::primitives::eip7825::TX_GAS_LIMIT_CAP;

/// Chain-level execution settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecutionConfig {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// The hard fork rules to execute with (e.g. `SpecId::OSAKA`).
    pub spec: SpecId,
}

impl ExecutionConfig {
    /// A config with the newest fork revm supports.
    pub fn new(chain_id: u64) -> Self {
        Self {
            chain_id,
            spec: SpecId::default(),
        }
    }

    /// The per-transaction gas cap in force under this fork, if any (EIP-7825).
    pub fn tx_gas_limit_cap(&self) -> Option<u64> {
        self.spec
            .is_enabled_in(SpecId::OSAKA)
            .then_some(TX_GAS_LIMIT_CAP)
    }

    /// Most blobs one transaction may carry: the block maximum of Cancun (6)
    /// and Prague (9), and EIP-7594's per-transaction cap (6) from Osaka on.
    pub fn max_blobs_per_tx(&self) -> Option<u64> {
        if self.spec.is_enabled_in(SpecId::OSAKA) {
            Some(6)
        } else if self.spec.is_enabled_in(SpecId::PRAGUE) {
            Some(9)
        } else if self.spec.is_enabled_in(SpecId::CANCUN) {
            Some(6)
        } else {
            None
        }
    }

    pub(crate) fn cfg_env(&self) -> CfgEnv {
        let mut cfg = CfgEnv::new_with_spec(self.spec);
        cfg.chain_id = self.chain_id;
        if let Some(max) = self.max_blobs_per_tx() {
            cfg.set_max_blobs_per_tx(max);
        }
        cfg
    }
}

/// The block fields execution depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockEnvInput {
    /// Block number.
    pub number: u64,
    /// Block timestamp, seconds since the UNIX epoch.
    pub timestamp: u64,
    /// Receives the priority fees.
    pub beneficiary: Address,
    /// Block gas limit.
    pub gas_limit: u64,
    /// EIP-1559 base fee per gas, in wei.
    pub base_fee_per_gas: u64,
    /// The PREVRANDAO value (the header's mix hash).
    pub prevrandao: B256,
    /// EIP-4844 excess blob gas (0 on this chain, which has no blobs).
    pub excess_blob_gas: u64,
    /// Parent block hash, for the EIP-2935 history system call.
    pub parent_hash: B256,
    /// Parent beacon block root, for the EIP-4788 system call (`None` skips it).
    pub parent_beacon_block_root: Option<B256>,
    /// Proof-of-work difficulty (the DIFFICULTY opcode before the merge; zero after).
    pub difficulty: U256,
    /// EIP-4844 blob base fee update fraction; `None` takes the fork's
    /// default (Cancun's before Prague, Prague's from Prague on).
    pub blob_base_fee_update_fraction: Option<u64>,
}

impl BlockEnvInput {
    /// What `header` fixes for executing its block; the blob base fee update
    /// fraction comes from the chain's blob schedule (`None`: the fork's default).
    pub fn from_header(
        header: &alloy_consensus::Header,
        blob_base_fee_update_fraction: Option<u64>,
    ) -> Self {
        Self {
            number: header.number,
            timestamp: header.timestamp,
            beneficiary: header.beneficiary,
            gas_limit: header.gas_limit,
            base_fee_per_gas: header.base_fee_per_gas.unwrap_or(0),
            prevrandao: header.mix_hash,
            excess_blob_gas: header.excess_blob_gas.unwrap_or(0),
            parent_hash: header.parent_hash,
            parent_beacon_block_root: header.parent_beacon_block_root,
            difficulty: header.difficulty,
            blob_base_fee_update_fraction,
        }
    }

    pub(crate) fn block_env(&self, spec: SpecId) -> BlockEnv {
        let fraction =
            self.blob_base_fee_update_fraction
                .unwrap_or(if spec.is_enabled_in(SpecId::PRAGUE) {
                    BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE
                } else {
                    BLOB_BASE_FEE_UPDATE_FRACTION_CANCUN
                });
        BlockEnv {
            number: U256::from(self.number),
            beneficiary: self.beneficiary,
            timestamp: U256::from(self.timestamp),
            gas_limit: self.gas_limit,
            basefee: self.base_fee_per_gas,
            difficulty: self.difficulty,
            prevrandao: spec.is_enabled_in(SpecId::MERGE).then_some(self.prevrandao),
            blob_excess_gas_and_price: spec
                .is_enabled_in(SpecId::CANCUN)
                .then(|| BlobExcessGasAndPrice::new(self.excess_blob_gas, fraction)),
            slot_num: 0,
        }
    }
}

/// Build revm's [`TxEnv`] for a recovered transaction. EIP-4844 transactions
/// execute (imported blocks may carry them); the pool refuses them earlier.
pub fn tx_env(tx: &RecoveredTx) -> Result<TxEnv, InvalidTransaction> {
    let envelope = &tx.tx;
    let (max_fee, priority) = match envelope {
        TxEnvelope::Legacy(_) | TxEnvelope::Eip2930(_) => (envelope.max_fee_per_gas(), None),
        TxEnvelope::Eip1559(_) | TxEnvelope::Eip7702(_) | TxEnvelope::Eip4844(_) => (
            envelope.max_fee_per_gas(),
            envelope.max_priority_fee_per_gas(),
        ),
    };
    let authorization_list = match envelope {
        TxEnvelope::Eip7702(signed) => signed
            .tx()
            .authorization_list
            .iter()
            .cloned()
            .map(Either::Left)
            .collect(),
        _ => Vec::new(),
    };
    Ok(TxEnv {
        tx_type: envelope.tx_type() as u8,
        caller: tx.sender,
        gas_limit: envelope.gas_limit(),
        gas_price: max_fee,
        kind: envelope.kind(),
        value: envelope.value(),
        data: envelope.input().clone(),
        nonce: envelope.nonce(),
        chain_id: envelope.chain_id(),
        access_list: envelope.access_list().cloned().unwrap_or_default(),
        gas_priority_fee: priority,
        blob_hashes: envelope
            .blob_versioned_hashes()
            .map(<[B256]>::to_vec)
            .unwrap_or_default(),
        max_fee_per_blob_gas: envelope.max_fee_per_blob_gas().unwrap_or(0),
        authorization_list,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gas_cap_applies_from_osaka() {
        assert_eq!(ExecutionConfig::new(1).tx_gas_limit_cap(), Some(1 << 24));
        let prague = ExecutionConfig {
            chain_id: 1,
            spec: SpecId::PRAGUE,
        };
        assert_eq!(prague.tx_gas_limit_cap(), None);
    }
}
