//! Chain specifications: the genesis file, the chain id, which EVM rules apply
//! at which block, and the genesis block itself.
//!
//! A chain is described by a geth-style `genesis.json` (parsed with
//! `alloy-genesis`). The dev chain's is embedded in the binary from
//! `genesis/dev.json`, so `infera node --dev` needs no file; so is the
//! proof-of-authority testnet's, from `genesis/testnet.json`.
//!
//! A genesis file with a `config.clique` section describes a proof-of-authority
//! chain in the manner of EIP-225: its authorised signers are listed in the
//! genesis `extraData` (32 bytes vanity, the signers' addresses in ascending
//! order, 65 zero bytes where a block's seal would be). They are parsed and
//! checked once, in [`ChainSpec::from_json`], and kept as [`CliqueParams`].

use std::path::Path;

use alloy_consensus::{EMPTY_OMMER_ROOT_HASH, Header};
pub use alloy_eips::eip7840::BlobParams;
use alloy_eips::{eip1559::BaseFeeParams, eip7685::EMPTY_REQUESTS_HASH};
use alloy_genesis::{CliqueConfig, Genesis};
use infera_primitives::{
    Account, AccountChange, Address, B256, BlockNumber, Bytes, EMPTY_ROOT_HASH, KECCAK256_EMPTY,
    StateChanges, U256, keccak256,
};
pub use revm::primitives::hardfork::SpecId;

pub mod forks;
pub mod next_block;
pub use forks::{Fork, ForkActivation};
pub use next_block::{BlockAttributes, BlockOutput, GasLimit, NextBlock};

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

/// Chain id of the embedded proof-of-authority testnet: the dev chain's plus
/// one, so a key or transaction of one chain is never valid on the other.
pub const TESTNET_CHAIN_ID: u64 = 6175;

/// The testnet's genesis file, embedded at build time.
pub const TESTNET_GENESIS_JSON: &str = include_str!("../../../genesis/testnet.json");

/// Bytes of free "vanity" data at the start of a Clique header's extra data
/// (EIP-225).
pub const CLIQUE_EXTRA_VANITY_BYTES: usize = 32;

/// Bytes of the seal (a secp256k1 signature `r ‖ s ‖ v`) at the end of a
/// Clique header's extra data (EIP-225).
pub const CLIQUE_EXTRA_SEAL_BYTES: usize = 65;

/// Most authorised signers a Clique genesis may list. The set is fixed for the
/// chain's life and every node keeps the signers of the last `len / 2 + 1`
/// blocks, so the bound keeps that state and the genesis extra data small; a
/// testnet of trusted authorities needs far fewer.
pub const MAX_CLIQUE_SIGNERS: usize = 64;

/// Most bytes a Clique genesis's extra data may hold: vanity, the largest
/// signer list allowed, and the empty seal.
pub const MAX_CLIQUE_GENESIS_EXTRA_DATA_BYTES: usize =
    CLIQUE_EXTRA_VANITY_BYTES + MAX_CLIQUE_SIGNERS * Address::len_bytes() + CLIQUE_EXTRA_SEAL_BYTES;

/// Epoch length used when a Clique config names none (or zero), as geth does.
/// This node never votes, so the epoch has no effect on which blocks are
/// valid; it is kept so the genesis round-trips with geth's meaning.
pub const DEFAULT_CLIQUE_EPOCH: u64 = 30_000;

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
    /// `config.clique.period` is missing or zero: a proof-of-authority chain
    /// needs a block time, or signers would race to seal without pause.
    #[error("config.clique.period must be set and non-zero (seconds between blocks)")]
    CliqueZeroPeriod,
    /// The genesis extra data of a Clique chain is not 32 bytes vanity, a
    /// whole number of 20-byte signer addresses, and a 65-byte seal.
    #[error(
        "clique genesis extraData is {len} bytes; expected 32 bytes vanity + N x 20-byte signers + 65-byte seal"
    )]
    CliqueExtraDataLength {
        /// Length of the extra data found.
        len: usize,
    },
    /// The genesis extra data of a Clique chain lists no signer.
    #[error("clique genesis extraData lists no signer; at least one is needed to seal blocks")]
    CliqueNoSigners,
    /// The genesis extra data of a Clique chain lists more signers than
    /// [`MAX_CLIQUE_SIGNERS`].
    #[error("clique genesis extraData lists {count} signers, at most {MAX_CLIQUE_SIGNERS} allowed")]
    CliqueTooManySigners {
        /// Signers listed.
        count: usize,
    },
    /// The signer list is not strictly ascending (unsorted or duplicated), so
    /// nodes could disagree on whose turn a block is.
    #[error(
        "clique genesis signers must be strictly ascending: signer {index} ({signer}) does not sort after {previous}"
    )]
    CliqueSignersNotAscending {
        /// Position of the offending signer in the list.
        index: usize,
        /// The signer before it.
        previous: Address,
        /// The offending signer.
        signer: Address,
    },
    /// The seal bytes of the genesis extra data are not zero; the genesis
    /// block is not signed by anyone.
    #[error(
        "clique genesis extraData must end in 65 zero bytes (the genesis block carries no seal)"
    )]
    CliqueGenesisSealNotZero,
}

/// Result alias for this crate.
pub type ChainSpecResult<T> = Result<T, ChainSpecError>;

/// The proof-of-authority parameters of a Clique chain, checked when built:
/// the period is non-zero and the signers are non-empty, at most
/// [`MAX_CLIQUE_SIGNERS`] and strictly ascending. Fields are private so that
/// every value in the program holds these promises and the consensus engine
/// need not check them again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CliqueParams {
    period_s: u64,
    epoch: u64,
    signers: Vec<Address>,
}

impl CliqueParams {
    /// Checks and builds the parameters. `epoch` 0 means
    /// [`DEFAULT_CLIQUE_EPOCH`], as in geth.
    pub fn new(period_s: u64, epoch: u64, signers: Vec<Address>) -> ChainSpecResult<Self> {
        if period_s == 0 {
            return Err(ChainSpecError::CliqueZeroPeriod);
        }
        if signers.is_empty() {
            return Err(ChainSpecError::CliqueNoSigners);
        }
        if signers.len() > MAX_CLIQUE_SIGNERS {
            return Err(ChainSpecError::CliqueTooManySigners {
                count: signers.len(),
            });
        }
        for (index, pair) in signers.windows(2).enumerate() {
            if pair[0] >= pair[1] {
                return Err(ChainSpecError::CliqueSignersNotAscending {
                    index: index + 1,
                    previous: pair[0],
                    signer: pair[1],
                });
            }
        }
        let epoch = if epoch == 0 {
            DEFAULT_CLIQUE_EPOCH
        } else {
            epoch
        };
        Ok(Self {
            period_s,
            epoch,
            signers,
        })
    }

    /// Parses the `config.clique` section and the EIP-225 genesis extra data
    /// (`vanity ‖ signers ‖ zero seal`).
    pub fn from_genesis(config: &CliqueConfig, extra_data: &[u8]) -> ChainSpecResult<Self> {
        let len = extra_data.len();
        let fixed = CLIQUE_EXTRA_VANITY_BYTES + CLIQUE_EXTRA_SEAL_BYTES;
        if len < fixed || !(len - fixed).is_multiple_of(Address::len_bytes()) {
            return Err(ChainSpecError::CliqueExtraDataLength { len });
        }
        if len > MAX_CLIQUE_GENESIS_EXTRA_DATA_BYTES {
            return Err(ChainSpecError::CliqueTooManySigners {
                count: (len - fixed) / Address::len_bytes(),
            });
        }
        let (rest, seal) = extra_data.split_at(len - CLIQUE_EXTRA_SEAL_BYTES);
        if seal.iter().any(|b| *b != 0) {
            return Err(ChainSpecError::CliqueGenesisSealNotZero);
        }
        let signers = rest[CLIQUE_EXTRA_VANITY_BYTES..]
            .chunks_exact(Address::len_bytes())
            .map(Address::from_slice)
            .collect();
        Self::new(
            config.period.unwrap_or(0),
            config.epoch.unwrap_or(0),
            signers,
        )
    }

    /// Seconds that must pass between a block and its child.
    pub fn period_s(&self) -> u64 {
        self.period_s
    }

    /// Epoch length in blocks. Kept for fidelity to geth's config; with a
    /// fixed signer set there are no votes to reset and no checkpoints.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The authorised signers, strictly ascending.
    pub fn signers(&self) -> &[Address] {
        &self.signers
    }
}

/// A chain: its genesis and fork schedule.
#[derive(Clone, Debug)]
pub struct ChainSpec {
    /// The parsed genesis file.
    pub genesis: Genesis,
    /// EIP-1559 parameters (Ethereum's: denominator 8, elasticity 2).
    pub base_fee_params: BaseFeeParams,
    /// Proof-of-authority parameters, parsed once from `genesis` when its
    /// config has a `clique` section. Private so that it cannot drift from
    /// the genesis it was parsed from.
    clique: Option<CliqueParams>,
}

impl ChainSpec {
    /// The embedded dev chain.
    pub fn dev() -> Self {
        Self::from_json(DEV_GENESIS_JSON).expect("embedded dev genesis is valid")
    }

    /// The embedded proof-of-authority testnet, sealed by three authorities
    /// (dev keys 7, 8 and 9).
    pub fn testnet() -> Self {
        Self::from_json(TESTNET_GENESIS_JSON).expect("embedded testnet genesis is valid")
    }

    /// Parses a genesis file's contents.
    pub fn from_json(json: &str) -> ChainSpecResult<Self> {
        let genesis: Genesis = serde_json::from_str(json)?;
        let clique = genesis
            .config
            .clique
            .as_ref()
            .map(|config| CliqueParams::from_genesis(config, &genesis.extra_data))
            .transpose()?;
        let spec = Self {
            genesis,
            base_fee_params: BaseFeeParams::ethereum(),
            clique,
        };
        spec.check()?;
        Ok(spec)
    }

    /// The proof-of-authority parameters, when this is a Clique chain.
    pub fn clique(&self) -> Option<&CliqueParams> {
        self.clique.as_ref()
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
        // A Clique genesis carries its signer list in the extra data, checked
        // by `CliqueParams::from_genesis`; only other chains keep the limit.
        if self.clique.is_none() && self.genesis.extra_data.len() > MAX_EXTRA_DATA_BYTES {
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

    /// The EIP-4844 blob base fee update fraction of the block at
    /// `number`/`timestamp` (from [`Self::blob_params_at`]); `None` before Cancun.
    pub fn blob_base_fee_update_fraction_at(
        &self,
        number: BlockNumber,
        timestamp: u64,
    ) -> Option<u64> {
        self.blob_params_at(number, timestamp)
            .map(|p| u64::try_from(p.update_fraction).unwrap_or(u64::MAX))
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

/// Bytes of the testnet genesis file, for `infera init` and tests.
pub fn testnet_genesis_bytes() -> Bytes {
    Bytes::from_static(TESTNET_GENESIS_JSON.as_bytes())
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

    fn address_of_key(key: B256) -> Address {
        let secret = secp256k1::SecretKey::from_byte_array(key.0).unwrap();
        let public = secp256k1::PublicKey::from_secret_key(secp256k1::SECP256K1, &secret);
        address_of_public_key(&public.serialize_uncompressed())
    }

    #[test]
    fn testnet_is_sealed_by_dev_keys_seven_to_nine() {
        let spec = ChainSpec::testnet();
        assert_eq!(spec.chain_id(), TESTNET_CHAIN_ID);
        let clique = spec.clique().expect("testnet is a clique chain");
        assert_eq!(clique.period_s(), 2);
        assert_eq!(clique.epoch(), 30_000);
        let mut derived: Vec<Address> = DEV_PRIVATE_KEYS[7..10]
            .iter()
            .map(|k| address_of_key(*k))
            .collect();
        derived.sort();
        assert_eq!(clique.signers(), derived.as_slice());
        assert_eq!(
            clique.signers(),
            [
                alloy_primitives::address!("0x14dC79964da2C08b23698B3D3cc7Ca32193d9955"),
                alloy_primitives::address!("0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"),
                alloy_primitives::address!("0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"),
            ]
        );
        assert!(ChainSpec::dev().clique().is_none());
    }

    #[test]
    fn testnet_matches_dev_except_chain_id_and_sealing() {
        let dev = ChainSpec::dev();
        let testnet = ChainSpec::testnet();
        assert_eq!(testnet.genesis.alloc, dev.genesis.alloc);
        assert_eq!(testnet.genesis.gas_limit, dev.genesis.gas_limit);
        assert_eq!(
            testnet.genesis.base_fee_per_gas,
            dev.genesis.base_fee_per_gas
        );
        assert_eq!(testnet.spec_at(0, 0), SpecId::OSAKA);
        assert_eq!(testnet.genesis.difficulty, U256::from(1));
        let header = testnet.genesis_header(testnet.genesis_state_root());
        assert_eq!(header.extra_data, testnet.genesis.extra_data);
        assert_eq!(
            header.extra_data.len(),
            CLIQUE_EXTRA_VANITY_BYTES + 3 * 20 + CLIQUE_EXTRA_SEAL_BYTES
        );
    }

    /// A Clique genesis with the given `config.clique` and extra data (hex
    /// without `0x`).
    fn clique_json(clique: &str, extra_hex: &str) -> String {
        format!(
            r#"{{"config":{{"chainId":7,"londonBlock":0,"clique":{clique}}},
            "gasLimit":"0x1000000","difficulty":"0x1","extraData":"0x{extra_hex}","alloc":{{}}}}"#
        )
    }

    fn clique_extra(signers: &[&str], seal: &str) -> String {
        format!("{}{}{seal}", "00".repeat(32), signers.concat())
    }

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";
    const PERIOD: &str = r#"{"period":5,"epoch":0}"#;

    #[test]
    fn parses_a_clique_genesis() {
        let zero_seal = "00".repeat(65);
        let spec =
            ChainSpec::from_json(&clique_json(PERIOD, &clique_extra(&[A, B], &zero_seal))).unwrap();
        let clique = spec.clique().unwrap();
        assert_eq!(clique.period_s(), 5);
        assert_eq!(clique.epoch(), DEFAULT_CLIQUE_EPOCH);
        assert_eq!(clique.signers().len(), 2);
        assert_eq!(clique.signers()[0], Address::repeat_byte(0x11));
        assert_eq!(clique.signers()[1], Address::repeat_byte(0x22));
    }

    #[test]
    fn rejects_malformed_clique_genesis_precisely() {
        let zero_seal = "00".repeat(65);
        let check = |clique: &str, extra: String, want: &str| {
            let err = ChainSpec::from_json(&clique_json(clique, &extra)).unwrap_err();
            assert!(
                err.to_string().contains(want),
                "wanted {want:?}, got: {err}"
            );
            err
        };
        let err = check(
            r#"{"period":0,"epoch":100}"#,
            clique_extra(&[A], &zero_seal),
            "period",
        );
        assert!(matches!(err, ChainSpecError::CliqueZeroPeriod));
        let err = check(r#"{"epoch":100}"#, clique_extra(&[A], &zero_seal), "period");
        assert!(matches!(err, ChainSpecError::CliqueZeroPeriod));
        // One byte short of a whole signer.
        let err = check(
            PERIOD,
            clique_extra(&[&A[2..]], &zero_seal),
            "extraData is 116 bytes",
        );
        assert!(matches!(
            err,
            ChainSpecError::CliqueExtraDataLength { len: 116 }
        ));
        // Plain 32-byte extra data, as on a non-Clique chain.
        let err = check(PERIOD, "00".repeat(32), "extraData is 32 bytes");
        assert!(matches!(
            err,
            ChainSpecError::CliqueExtraDataLength { len: 32 }
        ));
        let err = check(PERIOD, clique_extra(&[], &zero_seal), "no signer");
        assert!(matches!(err, ChainSpecError::CliqueNoSigners));
        let err = check(
            PERIOD,
            clique_extra(&[B, A], &zero_seal),
            "strictly ascending",
        );
        assert!(matches!(
            err,
            ChainSpecError::CliqueSignersNotAscending { index: 1, .. }
        ));
        let err = check(
            PERIOD,
            clique_extra(&[A, A], &zero_seal),
            "strictly ascending",
        );
        assert!(matches!(
            err,
            ChainSpecError::CliqueSignersNotAscending { index: 1, .. }
        ));
        let seal = format!("{}01", "00".repeat(64));
        let err = check(PERIOD, clique_extra(&[A], &seal), "65 zero bytes");
        assert!(matches!(err, ChainSpecError::CliqueGenesisSealNotZero));
        let many: Vec<String> = (1..=MAX_CLIQUE_SIGNERS + 1)
            .map(|i| format!("{i:040x}"))
            .collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let err = check(PERIOD, clique_extra(&many, &zero_seal), "65 signers");
        assert!(matches!(
            err,
            ChainSpecError::CliqueTooManySigners { count: 65 }
        ));
        let at_most: Vec<&str> = many[..MAX_CLIQUE_SIGNERS].to_vec();
        let spec = ChainSpec::from_json(&clique_json(PERIOD, &clique_extra(&at_most, &zero_seal)))
            .unwrap();
        assert_eq!(spec.clique().unwrap().signers().len(), MAX_CLIQUE_SIGNERS);
    }

    #[test]
    fn non_clique_chains_keep_the_32_byte_extra_data_limit() {
        let json = format!(
            r#"{{"config":{{"chainId":7}},"gasLimit":"0x1000000","difficulty":"0x1",
            "extraData":"0x{}","alloc":{{}}}}"#,
            clique_extra(&[A], &"00".repeat(65))
        );
        let err = ChainSpec::from_json(&json).unwrap_err();
        assert!(err.to_string().contains("at most 32"), "{err}");
    }

    #[test]
    fn clique_params_new_checks_its_promises() {
        let a = Address::repeat_byte(1);
        let b = Address::repeat_byte(2);
        assert!(matches!(
            CliqueParams::new(0, 1, vec![a]),
            Err(ChainSpecError::CliqueZeroPeriod)
        ));
        assert!(matches!(
            CliqueParams::new(1, 1, vec![]),
            Err(ChainSpecError::CliqueNoSigners)
        ));
        assert!(matches!(
            CliqueParams::new(1, 1, vec![b, a]),
            Err(ChainSpecError::CliqueSignersNotAscending { index: 1, previous, signer })
                if previous == b && signer == a
        ));
        let params = CliqueParams::new(3, 9, vec![a, b]).unwrap();
        assert_eq!((params.period_s(), params.epoch()), (3, 9));
        assert_eq!(params.signers(), [a, b]);
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
