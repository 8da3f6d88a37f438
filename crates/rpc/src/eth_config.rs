//! `eth_config` (EIP-7910): the rules of the fork in force at the head, of
//! the next scheduled one and of the last scheduled one.

use std::collections::BTreeMap;

use alloy_eips::eip2124::ForkHash;
use alloy_eips::eip7910::{EthConfig, EthForkConfig, SystemContract};
use alloy_primitives::{Address, B256, Bytes, address};
use infera_chainspec::{ChainSpec, Fork, ForkActivation};
use infera_evm::SpecId;

use crate::{RpcContext, RpcError, RpcResult};

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

/// The chain's fork activations as `eth_config` needs them.
struct ForkTimes {
    /// Block forks after genesis, for the EIP-2124 fork hash.
    blocks: Vec<u64>,
    /// Time forks after the genesis time, for the EIP-2124 fork hash.
    times: Vec<u64>,
    /// Activation times of the forks `eth_config` describes: Cancun (the
    /// first with blob parameters) through the last BPO fork.
    schedule: Vec<u64>,
}

impl ForkTimes {
    fn of(chain: &ChainSpec) -> Self {
        let genesis_time = chain.genesis.timestamp;
        let (mut blocks, mut times, mut schedule) = (Vec::new(), Vec::new(), Vec::new());
        for (fork, activation) in chain.forks() {
            match activation {
                ForkActivation::Block(block) if block > 0 => blocks.push(block),
                ForkActivation::Block(_) => {}
                ForkActivation::Time(time) => {
                    if time > genesis_time {
                        times.push(time);
                    }
                    if (Fork::Cancun..=Fork::Bpo5).contains(&fork) {
                        schedule.push(time);
                    }
                }
            }
        }
        for list in [&mut blocks, &mut times, &mut schedule] {
            list.sort_unstable();
            list.dedup();
        }
        Self {
            blocks,
            times,
            schedule,
        }
    }

    /// EIP-2124: CRC32 of the genesis hash and every fork passed at
    /// `activation`.
    fn fork_hash(&self, genesis_hash: B256, activation: u64) -> Bytes {
        let mut hash = ForkHash::from(genesis_hash);
        for block in &self.blocks {
            hash += *block;
        }
        for time in self.times.iter().filter(|&&t| t <= activation) {
            hash += *time;
        }
        Bytes::copy_from_slice(&hash.0)
    }
}

impl RpcContext {
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
        let forks = ForkTimes::of(self.chain());
        let config_at = |activation| self.fork_config(&forks, genesis_hash, activation);
        let now = head.timestamp;
        let schedule = &forks.schedule;
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

    /// The rules of the fork activated at `activation`.
    fn fork_config(
        &self,
        forks: &ForkTimes,
        genesis_hash: B256,
        activation: u64,
    ) -> RpcResult<EthForkConfig> {
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
            fork_id: forks.fork_hash(genesis_hash, activation),
            precompiles,
            system_contracts,
        })
    }
}
