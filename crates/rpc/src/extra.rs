//! Smaller `eth_` methods (`eth_getStorageValues`, `eth_config`,
//! `eth_capabilities`, `eth_baseFee`, `eth_blobBaseFee`) and geth's
//! `txpool_` namespace.

use std::collections::BTreeMap;

use alloy_eips::{
    BlockId,
    eip2124::ForkHash,
    eip7910::{EthConfig, EthForkConfig, SystemContract},
};
use alloy_primitives::{Address, B256, Bytes, U64, U256, address};
use alloy_rpc_types_eth::Transaction;
use infera_evm::SpecId;
use infera_primitives::{RecoveredTx, StateReader};
use serde::Serialize;

use crate::{RpcContext, RpcError, RpcResult, convert, proof::decode_storage_key};

/// Most storage slots one `eth_getStorageValues` may ask for, all accounts
/// together.
pub const MAX_STORAGE_VALUES: usize = 1_024;

/// `txpool_status`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct TxPoolStatus {
    pub pending: U64,
    pub queued: U64,
}

/// `txpool_content`: sender -> nonce -> transaction, as geth answers.
#[derive(Clone, Debug, Serialize, Default)]
pub struct TxPoolContent {
    pub pending: BTreeMap<String, BTreeMap<String, Transaction>>,
    pub queued: BTreeMap<String, BTreeMap<String, Transaction>>,
}

/// `txpool_contentFrom`: nonce -> transaction of one sender.
#[derive(Clone, Debug, Serialize, Default)]
pub struct TxPoolContentFrom {
    pub pending: BTreeMap<String, Transaction>,
    pub queued: BTreeMap<String, Transaction>,
}

/// One part of the node's data and how far back it reaches
/// (`eth_capabilities`).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Capability {
    pub disabled: bool,
    pub oldest_block: U64,
}

/// The head block as `eth_capabilities` names it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct HeadRef {
    pub number: U64,
    pub hash: B256,
}

/// `eth_capabilities`: what history this node can answer from.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Capabilities {
    pub head: HeadRef,
    pub state: Capability,
    pub tx: Capability,
    pub logs: Capability,
    pub receipts: Capability,
    pub blocks: Capability,
    pub stateproofs: Capability,
}

fn nonce_map(txs: Vec<RecoveredTx>) -> BTreeMap<Address, BTreeMap<String, Transaction>> {
    let mut out: BTreeMap<Address, BTreeMap<String, Transaction>> = BTreeMap::new();
    for tx in txs {
        use alloy_consensus::Transaction as _;
        out.entry(tx.sender).or_default().insert(
            tx.tx.nonce().to_string(),
            convert::rpc_transaction(&tx, None),
        );
    }
    out
}

/// Ethereum's precompiles by their EIP-7910 names, with the fork that
/// introduced them. (The chain's AI precompiles are not Ethereum's and have
/// no agreed name, so they are not listed.)
const PRECOMPILES: &[(&str, Address, SpecId)] = &[
    (
        "ECREC",
        address!("0x0000000000000000000000000000000000000001"),
        SpecId::FRONTIER,
    ),
    (
        "SHA256",
        address!("0x0000000000000000000000000000000000000002"),
        SpecId::FRONTIER,
    ),
    (
        "RIPEMD160",
        address!("0x0000000000000000000000000000000000000003"),
        SpecId::FRONTIER,
    ),
    (
        "ID",
        address!("0x0000000000000000000000000000000000000004"),
        SpecId::FRONTIER,
    ),
    (
        "MODEXP",
        address!("0x0000000000000000000000000000000000000005"),
        SpecId::BYZANTIUM,
    ),
    (
        "BN254_ADD",
        address!("0x0000000000000000000000000000000000000006"),
        SpecId::BYZANTIUM,
    ),
    (
        "BN254_MUL",
        address!("0x0000000000000000000000000000000000000007"),
        SpecId::BYZANTIUM,
    ),
    (
        "BN254_PAIRING",
        address!("0x0000000000000000000000000000000000000008"),
        SpecId::BYZANTIUM,
    ),
    (
        "BLAKE2F",
        address!("0x0000000000000000000000000000000000000009"),
        SpecId::ISTANBUL,
    ),
    (
        "KZG_POINT_EVALUATION",
        address!("0x000000000000000000000000000000000000000a"),
        SpecId::CANCUN,
    ),
    (
        "BLS12_G1ADD",
        address!("0x000000000000000000000000000000000000000b"),
        SpecId::PRAGUE,
    ),
    (
        "BLS12_G1MSM",
        address!("0x000000000000000000000000000000000000000c"),
        SpecId::PRAGUE,
    ),
    (
        "BLS12_G2ADD",
        address!("0x000000000000000000000000000000000000000d"),
        SpecId::PRAGUE,
    ),
    (
        "BLS12_G2MSM",
        address!("0x000000000000000000000000000000000000000e"),
        SpecId::PRAGUE,
    ),
    (
        "BLS12_PAIRING_CHECK",
        address!("0x000000000000000000000000000000000000000f"),
        SpecId::PRAGUE,
    ),
    (
        "BLS12_MAP_FP_TO_G1",
        address!("0x0000000000000000000000000000000000000010"),
        SpecId::PRAGUE,
    ),
    (
        "BLS12_MAP_FP2_TO_G2",
        address!("0x0000000000000000000000000000000000000011"),
        SpecId::PRAGUE,
    ),
    (
        "P256VERIFY",
        address!("0x0000000000000000000000000000000000000100"),
        SpecId::OSAKA,
    ),
];

impl RpcContext {
    /// `eth_getStorageValues`: many slots of many accounts at one block.
    pub fn storage_values(
        &self,
        request: BTreeMap<Address, Vec<String>>,
        block: Option<BlockId>,
    ) -> RpcResult<BTreeMap<Address, Vec<B256>>> {
        if request.is_empty() {
            return Err(RpcError::InvalidParams("empty request".into()));
        }
        let total: usize = request.values().map(Vec::len).sum();
        if total > MAX_STORAGE_VALUES {
            return Err(RpcError::InvalidParams(format!(
                "too many slots: {total} (at most {MAX_STORAGE_VALUES})"
            )));
        }
        let mut decoded = BTreeMap::new();
        for (address, keys) in request {
            let slots = keys
                .iter()
                .map(|k| decode_storage_key(k).map(|(slot, _)| U256::from_be_bytes(slot.0)))
                .collect::<RpcResult<Vec<_>>>()?;
            decoded.insert(address, slots);
        }
        let reader = self.db().reader()?;
        let number = self.resolve_state_block(&reader, block)?;
        let read = |state: &dyn Fn(Address, U256) -> RpcResult<U256>| {
            decoded
                .iter()
                .map(|(address, slots)| {
                    let values = slots
                        .iter()
                        .map(|slot| state(*address, *slot).map(B256::from))
                        .collect::<RpcResult<Vec<_>>>()?;
                    Ok((*address, values))
                })
                .collect::<RpcResult<BTreeMap<_, _>>>()
        };
        if number == self.head(&reader)? {
            let state = reader.latest_state();
            read(&|a, s| Ok(state.storage(a, s)?))
        } else {
            let state = reader.state_at(number);
            read(&|a, s| Ok(state.storage(a, s)?))
        }
    }

    /// `eth_baseFee`: the base fee of the next block.
    pub fn base_fee(&self) -> RpcResult<U256> {
        let (_, base_fee) = self.next_base_fee(&self.db().reader()?)?;
        Ok(U256::from(base_fee))
    }

    /// `eth_blobBaseFee`: the blob base fee of the next block.
    pub fn blob_base_fee(&self) -> RpcResult<U256> {
        let (head, _) = self.next_base_fee(&self.db().reader()?)?;
        let next_time = head.timestamp + 1;
        let Some(params) = self.chain().blob_params_at(head.number + 1, next_time) else {
            return Err(RpcError::InvalidParams(
                "blob transactions are not enabled before Cancun".into(),
            ));
        };
        let excess = match self.chain().blob_params_at(head.number, head.timestamp) {
            Some(parent_params) => parent_params.next_block_excess_blob_gas_osaka(
                head.excess_blob_gas.unwrap_or(0),
                head.blob_gas_used.unwrap_or(0),
                head.base_fee_per_gas.unwrap_or(0),
            ),
            None => 0,
        };
        Ok(U256::from(params.calc_blob_fee(excess)))
    }

    /// `eth_capabilities`: this node keeps every block, receipt and log and
    /// the state of every block; proofs are served for the head only.
    pub fn capabilities(&self) -> RpcResult<Capabilities> {
        let reader = self.db().reader()?;
        let head = self.head(&reader)?;
        let hash = reader
            .canonical_hash(head)?
            .ok_or_else(|| RpcError::NotFound("head hash missing".into()))?;
        let full = Capability {
            disabled: false,
            oldest_block: U64::ZERO,
        };
        Ok(Capabilities {
            head: HeadRef {
                number: U64::from(head),
                hash,
            },
            state: full.clone(),
            tx: full.clone(),
            logs: full.clone(),
            receipts: full.clone(),
            blocks: full,
            stateproofs: Capability {
                disabled: false,
                oldest_block: U64::from(head),
            },
        })
    }

    /// `eth_config` (EIP-7910): the fork in force at the head, the next
    /// scheduled one and the last scheduled one.
    pub fn eth_config(&self) -> RpcResult<EthConfig> {
        let reader = self.db().reader()?;
        let head_number = self.head(&reader)?;
        let head = reader
            .header(head_number)?
            .ok_or_else(|| RpcError::NotFound("head header missing".into()))?;
        let genesis_hash = reader
            .genesis_hash()?
            .ok_or_else(|| RpcError::NotFound("genesis hash missing".into()))?;
        let c = &self.chain().genesis.config;
        let genesis_time = self.chain().genesis.timestamp;
        let time_forks: Vec<u64> = [
            c.shanghai_time,
            c.cancun_time,
            c.prague_time,
            c.osaka_time,
            c.bpo1_time,
            c.bpo2_time,
            c.bpo3_time,
            c.bpo4_time,
            c.bpo5_time,
            c.amsterdam_time,
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut block_forks: Vec<u64> = [
            c.homestead_block,
            c.dao_fork_block,
            c.eip150_block,
            c.eip155_block,
            c.eip158_block,
            c.byzantium_block,
            c.constantinople_block,
            c.petersburg_block,
            c.istanbul_block,
            c.muir_glacier_block,
            c.berlin_block,
            c.london_block,
            c.arrow_glacier_block,
            c.gray_glacier_block,
            c.merge_netsplit_block,
        ]
        .into_iter()
        .flatten()
        .filter(|&b| b > 0)
        .collect();
        block_forks.sort_unstable();
        block_forks.dedup();
        let mut fork_times: Vec<u64> = time_forks
            .iter()
            .copied()
            .filter(|&t| t > genesis_time)
            .collect();
        fork_times.sort_unstable();
        fork_times.dedup();
        // EIP-2124: CRC32 of the genesis hash and every fork passed.
        let fork_hash = |activation: u64| {
            let mut hash = ForkHash::from(genesis_hash);
            for b in &block_forks {
                hash += *b;
            }
            for t in fork_times.iter().filter(|&&t| t <= activation) {
                hash += *t;
            }
            Bytes::copy_from_slice(&hash.0)
        };
        // Cancun and later forks, each with its activation time.
        let mut schedule: Vec<u64> = [
            c.cancun_time,
            c.prague_time,
            c.osaka_time,
            c.bpo1_time,
            c.bpo2_time,
            c.bpo3_time,
            c.bpo4_time,
            c.bpo5_time,
        ]
        .into_iter()
        .flatten()
        .collect();
        schedule.sort_unstable();
        schedule.dedup();
        let config_at = |activation: u64| -> RpcResult<EthForkConfig> {
            let spec = self.chain().spec_at(u64::MAX / 2, activation);
            let blob_schedule = self
                .chain()
                .blob_params_at(u64::MAX / 2, activation)
                .ok_or_else(|| RpcError::InvalidParams("eth_config needs Cancun".into()))?;
            let precompiles = PRECOMPILES
                .iter()
                .filter(|(_, _, since)| spec.is_enabled_in(*since))
                .map(|(name, address, _)| ((*name).to_string(), *address))
                .collect();
            let mut system_contracts: BTreeMap<SystemContract, Address> =
                SystemContract::cancun().into_iter().collect();
            if spec.is_enabled_in(SpecId::PRAGUE) {
                system_contracts.extend(SystemContract::prague(Some(
                    self.chain().deposit_contract(),
                )));
            }
            Ok(EthForkConfig {
                activation_time: activation,
                blob_schedule,
                chain_id: self.chain().chain_id(),
                fork_id: fork_hash(activation),
                precompiles,
                system_contracts,
            })
        };
        let now = head.timestamp;
        let current = schedule
            .iter()
            .rev()
            .find(|&&t| t <= now)
            .copied()
            .ok_or_else(|| {
                RpcError::InvalidParams("eth_config is defined from Cancun on".into())
            })?;
        let next = schedule.iter().find(|&&t| t > now).copied();
        let last = schedule.last().copied().filter(|&t| t > now);
        Ok(EthConfig {
            current: config_at(current)?,
            next: next.map(config_at).transpose()?,
            last: last.map(config_at).transpose()?,
        })
    }

    /// `txpool_status`.
    pub fn txpool_status(&self) -> TxPoolStatus {
        let pool = self.pool().lock();
        TxPoolStatus {
            pending: U64::from(pool.pending_count()),
            queued: U64::from(pool.queued_count()),
        }
    }

    /// `txpool_content`.
    pub fn txpool_content(&self) -> TxPoolContent {
        let (pending, queued) = {
            let pool = self.pool().lock();
            (pool.all_pending(), pool.all_queued())
        };
        let keyed = |txs| {
            nonce_map(txs)
                .into_iter()
                .map(|(a, m)| (a.to_checksum(None), m))
                .collect()
        };
        TxPoolContent {
            pending: keyed(pending),
            queued: keyed(queued),
        }
    }

    /// `txpool_contentFrom`.
    pub fn txpool_content_from(&self, address: Address) -> TxPoolContentFrom {
        let (pending, queued) = {
            let pool = self.pool().lock();
            (pool.all_pending(), pool.all_queued())
        };
        let of = |txs: Vec<RecoveredTx>| {
            nonce_map(txs.into_iter().filter(|tx| tx.sender == address).collect())
                .remove(&address)
                .unwrap_or_default()
        };
        TxPoolContentFrom {
            pending: of(pending),
            queued: of(queued),
        }
    }
}

/// `eth_createAccessList`'s answer.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AccessListResult {
    pub access_list: alloy_eips::eip2930::AccessList,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub gas_used: U64,
}

impl RpcContext {
    /// `eth_createAccessList`: the accounts and slots `request` touches, and
    /// the gas it uses with that list; a failed execution is reported in
    /// `error`.
    pub fn create_access_list(
        &self,
        request: alloy_rpc_types_eth::TransactionRequest,
        block: Option<BlockId>,
    ) -> RpcResult<AccessListResult> {
        let req = crate::eth::call_request(request)?;
        // A heavy call: it waits its turn, and all its runs share one deadline.
        let result = self.heavy(|limits| {
            let reader = self.db().reader()?;
            let number = self.resolve_state_block(&reader, block)?;
            let (cfg, env) = self.call_env(&reader, number)?;
            let precompiles = self.precompiles(cfg.spec);
            if number == self.head(&reader)? {
                let state = reader.latest_state();
                infera_evm::create_access_list(state, cfg, env, req, precompiles, limits)
            } else {
                let state = reader.state_at(number);
                infera_evm::create_access_list(state, cfg, env, req, precompiles, limits)
            }
            .map_err(crate::eth::evm_error)
        })?;
        let error = match &result.outcome {
            infera_evm::CallOutcome::Success { .. } => None,
            infera_evm::CallOutcome::Revert { output, .. } => {
                Some(crate::eth::reverted(output.clone()).to_string())
            }
            infera_evm::CallOutcome::Halt { reason, .. } => {
                Some(format!("execution halted: {reason}"))
            }
        };
        Ok(AccessListResult {
            access_list: result.access_list,
            error,
            gas_used: U64::from(result.outcome.gas_used()),
        })
    }
}
