//! Chain specifications: the genesis file, the chain id, which EVM rules apply
//! at which block, and the genesis block itself.
//!
//! A chain is described by a geth-style `genesis.json` (parsed with
//! `alloy-genesis`). The dev chain's is embedded in the binary from
//! `genesis/dev.json`, so `infera node --dev` needs no file.

use std::path::Path;

use alloy_consensus::{EMPTY_OMMER_ROOT_HASH, Header};
pub use alloy_eips::eip7840::BlobParams;
use alloy_eips::{eip1559::BaseFeeParams, eip7685::EMPTY_REQUESTS_HASH};
use alloy_genesis::Genesis;
use infera_primitives::{
    Account, AccountChange, Address, B256, BlockNumber, Bytes, EMPTY_ROOT_HASH, KECCAK256_EMPTY,
    StateChanges, U256, keccak256,
};
pub use revm::primitives::hardfork::SpecId;

/// Chain id of the embedded dev chain (`--dev`). Chosen to collide with no
/// public network, Hardhat (31337) or geth's dev mode (1337).
pub const DEV_CHAIN_ID: u64 = 6174;

/// The dev chain's genesis file, embedded at build time.
pub const DEV_GENESIS_JSON: &str = include_str!("../../../genesis/dev.json");

/// Base fee of the genesis block when the genesis file names none (1 gwei),
/// as geth does for London-from-genesis chains.
pub const DEFAULT_GENESIS_BASE_FEE_WEI: u64 = 1_000_000_000;

/// Most bytes a header's extra data may hold (Ethereum's rule).
pub const MAX_EXTRA_DATA_BYTES: usize = 32;

/// Errors from loading or checking a chain specification.
#[derive(Debug, thiserror::Error)]
pub enum ChainSpecError {
    /// The genesis file could not be read.
    #[error("cannot read chain spec {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// The genesis file is not valid JSON of the expected shape.
    #[error("invalid chain spec JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The genesis file is well-formed but describes an unusable chain.
    #[error("invalid chain spec: {0}")]
    Invalid(String),
}

/// Result alias for this crate.
pub type ChainSpecResult<T> = Result<T, ChainSpecError>;

/// A chain: its genesis and fork schedule.
#[derive(Clone, Debug)]
pub struct ChainSpec {
    /// The parsed genesis file.
    pub genesis: Genesis,
    /// EIP-1559 parameters (Ethereum's: denominator 8, elasticity 2).
    pub base_fee_params: BaseFeeParams,
}

impl ChainSpec {
    /// The embedded dev chain.
    pub fn dev() -> Self {
        Self::from_json(DEV_GENESIS_JSON).expect("embedded dev genesis is valid")
    }

    /// Parses a genesis file's contents.
    pub fn from_json(json: &str) -> ChainSpecResult<Self> {
        let genesis: Genesis = serde_json::from_str(json)?;
        let spec = Self {
            genesis,
            base_fee_params: BaseFeeParams::ethereum(),
        };
        spec.check()?;
        Ok(spec)
    }

    /// Reads and parses a genesis file.
    pub fn from_file(path: &Path) -> ChainSpecResult<Self> {
        let json = std::fs::read_to_string(path).map_err(|source| ChainSpecError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&json)
    }

    fn check(&self) -> ChainSpecResult<()> {
        if self.genesis.config.chain_id == 0 {
            return Err(ChainSpecError::Invalid(
                "config.chainId must be set and non-zero".into(),
            ));
        }
        if self.genesis.extra_data.len() > MAX_EXTRA_DATA_BYTES {
            return Err(ChainSpecError::Invalid(format!(
                "extraData is {} bytes, at most {MAX_EXTRA_DATA_BYTES} allowed",
                self.genesis.extra_data.len()
            )));
        }
        if self.genesis.gas_limit == 0 {
            return Err(ChainSpecError::Invalid("gasLimit must be non-zero".into()));
        }
        Ok(())
    }

    /// The chain id (EIP-155).
    pub fn chain_id(&self) -> u64 {
        self.genesis.config.chain_id
    }

    /// The EVM rules in force for a block with this number and timestamp.
    pub fn spec_at(&self, number: BlockNumber, timestamp: u64) -> SpecId {
        let c = &self.genesis.config;
        let by_time = |t: Option<u64>| t.is_some_and(|t| timestamp >= t);
        let by_block = |b: Option<u64>| b.is_some_and(|b| number >= b);
        if by_time(c.osaka_time) {
            SpecId::OSAKA
        } else if by_time(c.prague_time) {
            SpecId::PRAGUE
        } else if by_time(c.cancun_time) {
            SpecId::CANCUN
        } else if by_time(c.shanghai_time) {
            SpecId::SHANGHAI
        } else if by_block(c.merge_netsplit_block)
            || c.terminal_total_difficulty.is_some_and(|ttd| ttd.is_zero())
                && by_block(c.london_block)
        {
            SpecId::MERGE
        } else if by_block(c.london_block) {
            SpecId::LONDON
        } else if by_block(c.berlin_block) {
            SpecId::BERLIN
        } else if by_block(c.istanbul_block) {
            SpecId::ISTANBUL
        } else if by_block(c.petersburg_block) || by_block(c.constantinople_block) {
            // revm models Constantinople and Petersburg as one spec (the
            // EIP-1283 net-gas change was never live on mainnet).
            SpecId::PETERSBURG
        } else if by_block(c.byzantium_block) {
            SpecId::BYZANTIUM
        } else if by_block(c.eip158_block) {
            SpecId::SPURIOUS_DRAGON
        } else if by_block(c.eip150_block) {
            SpecId::TANGERINE
        } else if by_block(c.homestead_block) {
            SpecId::HOMESTEAD
        } else {
            SpecId::FRONTIER
        }
    }

    /// The EIP-4844/7840/7892 blob parameters in force at `timestamp` (the
    /// genesis file's `blobSchedule`, else Ethereum's defaults per fork);
    /// `None` before Cancun. `number` picks the fork as [`Self::spec_at`] does.
    pub fn blob_params_at(&self, number: BlockNumber, timestamp: u64) -> Option<BlobParams> {
        let spec = self.spec_at(number, timestamp);
        if !spec.is_enabled_in(SpecId::CANCUN) {
            return None;
        }
        let schedule = self.genesis.config.blob_schedule_blob_params();
        Some(if spec.is_enabled_in(SpecId::OSAKA) {
            schedule
                .active_scheduled_params_at_timestamp(timestamp)
                .copied()
                .unwrap_or(schedule.osaka)
        } else if spec.is_enabled_in(SpecId::PRAGUE) {
            schedule.prague
        } else {
            schedule.cancun
        })
    }

    /// The address whose `DepositEvent` logs are EIP-6110 deposit requests:
    /// the genesis file's `depositContractAddress`, else mainnet's.
    pub fn deposit_contract(&self) -> Address {
        self.genesis
            .config
            .deposit_contract_address
            .unwrap_or(alloy_eips::eip6110::MAINNET_DEPOSIT_CONTRACT_ADDRESS)
    }

    /// True when blocks at this number and timestamp follow proof-of-stake
    /// rules (no difficulty, ommers or block rewards).
    pub fn is_post_merge(&self, number: BlockNumber, timestamp: u64) -> bool {
        self.spec_at(number, timestamp).is_enabled_in(SpecId::MERGE)
    }

    /// The genesis allocation as a set of state changes to apply at block 0.
    pub fn genesis_state(&self) -> StateChanges {
        let mut changes = StateChanges::default();
        for (address, alloc) in &self.genesis.alloc {
            let code = alloc.code.clone().filter(|c| !c.is_empty());
            let code_hash = code.as_ref().map_or(KECCAK256_EMPTY, keccak256);
            if let Some(code) = code {
                changes.contracts.insert(code_hash, code);
            }
            let storage = alloc
                .storage
                .iter()
                .flatten()
                .map(|(slot, value)| (U256::from_be_bytes(slot.0), U256::from_be_bytes(value.0)))
                .filter(|(_, value)| !value.is_zero())
                .collect();
            let info = Account {
                nonce: alloc.nonce.unwrap_or(0),
                balance: alloc.balance,
                code_hash,
            };
            changes.accounts.insert(
                *address,
                AccountChange {
                    info: Some(info),
                    storage_wiped: false,
                    storage,
                },
            );
        }
        changes
    }

    /// The genesis state root, computed in memory from the allocation. Storage
    /// computes the same root from its tables; comparing the two checks both.
    pub fn genesis_state_root(&self) -> B256 {
        alloy_trie::root::state_root_unhashed(
            self.genesis
                .alloc
                .iter()
                .map(|(address, alloc)| (*address, alloc.clone().into_trie_account())),
        )
    }

    /// The genesis header for a given state root.
    pub fn genesis_header(&self, state_root: B256) -> Header {
        let g = &self.genesis;
        let spec = self.spec_at(0, g.timestamp);
        let london = spec.is_enabled_in(SpecId::LONDON);
        let shanghai = spec.is_enabled_in(SpecId::SHANGHAI);
        let cancun = spec.is_enabled_in(SpecId::CANCUN);
        let prague = spec.is_enabled_in(SpecId::PRAGUE);
        Header {
            parent_hash: g.parent_hash.unwrap_or_default(),
            ommers_hash: EMPTY_OMMER_ROOT_HASH,
            beneficiary: g.coinbase,
            state_root,
            transactions_root: EMPTY_ROOT_HASH,
            receipts_root: EMPTY_ROOT_HASH,
            logs_bloom: Default::default(),
            difficulty: g.difficulty,
            number: g.number.unwrap_or(0),
            gas_limit: g.gas_limit,
            gas_used: 0,
            timestamp: g.timestamp,
            extra_data: g.extra_data.clone(),
            mix_hash: g.mix_hash,
            nonce: g.nonce.into(),
            base_fee_per_gas: london.then(|| {
                g.base_fee_per_gas
                    .map_or(DEFAULT_GENESIS_BASE_FEE_WEI, |fee| fee as u64)
            }),
            withdrawals_root: shanghai.then_some(EMPTY_ROOT_HASH),
            blob_gas_used: cancun.then(|| g.blob_gas_used.unwrap_or(0)),
            excess_blob_gas: cancun.then(|| g.excess_blob_gas.unwrap_or(0)),
            parent_beacon_block_root: cancun.then_some(B256::ZERO),
            requests_hash: prague.then_some(EMPTY_REQUESTS_HASH),
            block_access_list_hash: None,
            slot_number: None,
        }
    }

    /// The base fee of the block after `parent` (EIP-1559 rule).
    pub fn next_base_fee(&self, parent: &Header) -> Option<u64> {
        let parent_fee = parent.base_fee_per_gas?;
        Some(self.base_fee_params.next_block_base_fee(
            parent.gas_used,
            parent.gas_limit,
            parent_fee,
        ))
    }
}

/// The private keys of the ten accounts the dev genesis funds: the first ten
/// keys of the standard development mnemonic ("test test ... junk"), the same
/// accounts Hardhat and Anvil unlock. **They are public**: anything sent to
/// these addresses on a real network is taken at once. `infera node --dev`
/// signs with them (`eth_sendTransaction`, `eth_sign`...) and never on
/// another chain.
pub const DEV_PRIVATE_KEYS: [B256; 10] = [
    alloy_primitives::b256!("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"),
    alloy_primitives::b256!("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"),
    alloy_primitives::b256!("5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"),
    alloy_primitives::b256!("7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6"),
    alloy_primitives::b256!("47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a"),
    alloy_primitives::b256!("8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba"),
    alloy_primitives::b256!("92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e"),
    alloy_primitives::b256!("4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356"),
    alloy_primitives::b256!("dbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97"),
    alloy_primitives::b256!("2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6"),
];

/// Bytes of the dev genesis file, for `infera init` and tests.
pub fn dev_genesis_bytes() -> Bytes {
    Bytes::from_static(DEV_GENESIS_JSON.as_bytes())
}

/// The address of a secp256k1 key's account: the low 20 bytes of the keccak
/// of its uncompressed public key.
pub fn address_of_public_key(uncompressed: &[u8; 65]) -> Address {
    Address::from_slice(&keccak256(&uncompressed[1..])[12..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_genesis_funds_the_standard_dev_accounts() {
        let spec = ChainSpec::dev();
        assert_eq!(spec.chain_id(), DEV_CHAIN_ID);
        assert!(spec.genesis.gas_limit >= 60_000_000);
        let ten_thousand_eth = U256::from(10_000u64) * U256::from(10u64).pow(U256::from(18));
        for key in DEV_PRIVATE_KEYS {
            let secret = secp256k1::SecretKey::from_byte_array(key.0).unwrap();
            let public = secp256k1::PublicKey::from_secret_key(secp256k1::SECP256K1, &secret);
            let address = address_of_public_key(&public.serialize_uncompressed());
            let alloc = spec
                .genesis
                .alloc
                .get(&address)
                .unwrap_or_else(|| panic!("{address} not funded"));
            assert_eq!(alloc.balance, ten_thousand_eth);
        }
        assert_eq!(
            spec.genesis.alloc.keys().next().copied(),
            Some(alloy_primitives::address!(
                "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955"
            ))
        );
    }

    #[test]
    fn dev_chain_runs_the_newest_rules_from_genesis() {
        let spec = ChainSpec::dev();
        assert_eq!(spec.spec_at(0, 0), SpecId::OSAKA);
        let header = spec.genesis_header(spec.genesis_state_root());
        assert_eq!(header.base_fee_per_gas, Some(DEFAULT_GENESIS_BASE_FEE_WEI));
        assert_eq!(header.requests_hash, Some(EMPTY_REQUESTS_HASH));
    }

    #[test]
    fn fork_schedule_by_block_and_time() {
        let json = r#"{"config":{"chainId":1,"homesteadBlock":0,"eip150Block":0,"eip155Block":0,
            "eip158Block":0,"byzantiumBlock":0,"constantinopleBlock":0,"petersburgBlock":0,
            "istanbulBlock":0,"berlinBlock":5,"londonBlock":10,"shanghaiTime":100,"cancunTime":200},
            "gasLimit":"0x1000000","difficulty":"0x1","alloc":{}}"#;
        let spec = ChainSpec::from_json(json).unwrap();
        assert_eq!(spec.spec_at(0, 0), SpecId::ISTANBUL);
        assert_eq!(spec.spec_at(5, 0), SpecId::BERLIN);
        assert_eq!(spec.spec_at(10, 0), SpecId::LONDON);
        assert_eq!(spec.spec_at(11, 150), SpecId::SHANGHAI);
        assert_eq!(spec.spec_at(12, 250), SpecId::CANCUN);
    }

    #[test]
    fn execution_apis_genesis_schedule_from_frontier_to_bpo2() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fixtures/execution-apis/tests/genesis.json");
        let Ok(spec) = ChainSpec::from_file(&path) else {
            eprintln!("skipped: {} is missing", path.display());
            return;
        };
        assert_eq!(spec.spec_at(0, 0), SpecId::HOMESTEAD);
        assert_eq!(spec.spec_at(3, 30), SpecId::TANGERINE);
        assert_eq!(spec.spec_at(6, 60), SpecId::SPURIOUS_DRAGON);
        assert_eq!(spec.spec_at(9, 90), SpecId::BYZANTIUM);
        assert_eq!(spec.spec_at(15, 150), SpecId::PETERSBURG);
        assert_eq!(spec.spec_at(27, 270), SpecId::LONDON);
        assert_eq!(spec.spec_at(35, 350), SpecId::LONDON);
        assert_eq!(spec.spec_at(36, 360), SpecId::MERGE);
        assert_eq!(spec.spec_at(39, 390), SpecId::SHANGHAI);
        assert_eq!(spec.spec_at(42, 420), SpecId::CANCUN);
        assert_eq!(spec.spec_at(45, 450), SpecId::PRAGUE);
        assert_eq!(spec.spec_at(48, 480), SpecId::OSAKA);
        assert!(spec.blob_params_at(41, 410).is_none());
        assert_eq!(spec.blob_params_at(42, 420).unwrap().max_blob_count, 6);
        assert_eq!(spec.blob_params_at(45, 450).unwrap().max_blob_count, 9);
        assert_eq!(spec.blob_params_at(51, 510).unwrap().max_blob_count, 15);
        assert_eq!(spec.blob_params_at(54, 540).unwrap().max_blob_count, 21);
    }

    #[test]
    fn rejects_bad_specs_with_reasons() {
        let err = ChainSpec::from_json("{").unwrap_err();
        assert!(err.to_string().contains("invalid chain spec JSON"), "{err}");
        let json = r#"{"config":{"chainId":0},"gasLimit":"0x1","difficulty":"0x0","alloc":{}}"#;
        let err = ChainSpec::from_json(json).unwrap_err();
        assert!(err.to_string().contains("chainId"), "{err}");
    }
}
