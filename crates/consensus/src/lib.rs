//! Proof-of-authority consensus in the manner of EIP-225 (Clique).
//!
//! A fixed set of authorities, listed in the genesis extra data (see
//! [`infera_chainspec::CliqueParams`]), seal blocks in turn: block `n` is *in
//! turn* for `signers[n % len]`, which seals it with difficulty
//! [`DIFFICULTY_IN_TURN`]; any other authority may seal it *out of turn* with
//! [`DIFFICULTY_OUT_OF_TURN`] when the in-turn one is late, so the heaviest
//! chain is the one where authorities kept their turns. A seal is a secp256k1
//! signature over the header (minus the seal) in the last 65 bytes of the
//! extra data.
//!
//! Deliberately absent, compared with EIP-225:
//! - **Voting.** The signer set is fixed by genesis for the chain's life, so
//!   the beneficiary and nonce carry no votes (the nonce must be zero), and
//!   there are no epoch checkpoints: every non-genesis header's extra data is
//!   exactly vanity ‖ seal, with no signer list.
//! - **Randomness from signers.** The header's mix hash (PREVRANDAO after the
//!   merge) must be `keccak256(parent hash)` ([`prev_randao`]), so a signer
//!   cannot grind it.
//!
//! Everything here is pure: no clock (callers pass `now_s`), no I/O, no
//! floating point. Fork choice and reorgs live in the node; this crate says
//! whether one header may follow another and what weight it carries.

#![deny(clippy::float_arithmetic)]

use std::time::Duration;

use alloy_consensus::{EMPTY_OMMER_ROOT_HASH, Header};
use alloy_primitives::{Address, B64, B256, Bytes, U256, keccak256};
/// Re-exported so callers building [`Clique`] need not name the chainspec
/// crate.
pub use infera_chainspec::CliqueParams;
use infera_chainspec::{ChainSpec, address_of_public_key};
use secp256k1::{
    Message, SECP256K1, SecretKey,
    ecdsa::{RecoverableSignature, RecoveryId},
};

/// Bytes of free "vanity" data at the start of a header's extra data.
pub const EXTRA_VANITY_BYTES: usize = infera_chainspec::CLIQUE_EXTRA_VANITY_BYTES;

/// Bytes of the seal (`r ‖ s ‖ v`, v the recovery id 0 or 1) at the end of a
/// header's extra data.
pub const EXTRA_SEAL_BYTES: usize = infera_chainspec::CLIQUE_EXTRA_SEAL_BYTES;

/// Exact extra-data length of every non-genesis header: with no voting there
/// are no checkpoint signer lists, only vanity and seal.
pub const EXTRA_DATA_BYTES: usize = EXTRA_VANITY_BYTES + EXTRA_SEAL_BYTES;

/// Difficulty of a block sealed by the signer whose turn it is.
pub const DIFFICULTY_IN_TURN: u64 = 2;

/// Difficulty of a block sealed by a backup signer.
pub const DIFFICULTY_OUT_OF_TURN: u64 = 1;

/// How far ahead of the local clock a header's timestamp may be, in seconds.
/// Geth's value for Clique: it tolerates clocks a little apart without letting
/// a signer claim a slot long before its time.
pub const MAX_FUTURE_DRIFT_S: u64 = 15;

/// How long an out-of-turn signer waits, per step of distance from the
/// in-turn signer, after the earliest allowed seal time. Deterministic rather
/// than geth's random wiggle, so backups seal one after another instead of at
/// once: 500 ms is geth's wiggle unit and well above block propagation on a
/// testnet of a few nodes, so the first backup's block normally reaches the
/// next backup before that one's timer fires. With [`MAX_CLIQUE_SIGNERS`]
/// signers the longest wait is 31.5 s.
///
/// [`MAX_CLIQUE_SIGNERS`]: infera_chainspec::MAX_CLIQUE_SIGNERS
pub const OUT_OF_TURN_DELAY_STEP: Duration = Duration::from_millis(500);

/// Half the order of the secp256k1 group. A signature with `s` above it is
/// the mirror of one below it for the same key and message (EIP-2); allowing
/// both would give every sealed header two hashes.
pub const SECP256K1_HALF_ORDER: U256 = U256::from_be_bytes([
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
]);

// Fork choice by total difficulty must prefer chains where signers kept their
// turns, and an out-of-turn block must still add weight.
const _: () = assert!(DIFFICULTY_IN_TURN > DIFFICULTY_OUT_OF_TURN);
const _: () = assert!(DIFFICULTY_OUT_OF_TURN > 0);
const _: () = assert!(EXTRA_DATA_BYTES == 97);

/// Why a header is not a valid Clique block, or why a seal cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ConsensusError {
    /// The header's number is not its parent's plus one.
    #[error("block number {number} does not follow parent number {parent_number}")]
    NotChild {
        /// The header's number.
        number: u64,
        /// The parent's number.
        parent_number: u64,
    },
    /// The header's parent hash is not the hash of the given parent.
    #[error("parent hash {got} is not the parent's hash {expected}")]
    ParentHashMismatch {
        /// Hash of the parent header.
        expected: B256,
        /// The header's parent hash.
        got: B256,
    },
    /// The header was sealed less than one period after its parent.
    #[error("timestamp {timestamp} is before {earliest} (parent timestamp + period)")]
    TooEarly {
        /// The header's timestamp.
        timestamp: u64,
        /// The earliest timestamp allowed.
        earliest: u64,
    },
    /// The header's timestamp is too far ahead of the local clock.
    #[error(
        "timestamp {timestamp} is more than {MAX_FUTURE_DRIFT_S} s ahead of the local clock {now_s}"
    )]
    TooFarInFuture {
        /// The header's timestamp.
        timestamp: u64,
        /// The local clock, in seconds since the Unix epoch.
        now_s: u64,
    },
    /// The extra data is not exactly vanity ‖ seal.
    #[error(
        "extra data is {len} bytes, expected exactly {EXTRA_DATA_BYTES} (32 vanity + 65 seal; no signer lists without voting)"
    )]
    ExtraDataLength {
        /// Length of the header's extra data.
        len: usize,
    },
    /// The extra data is too short to hold a seal.
    #[error("extra data is {len} bytes, too short for a {EXTRA_SEAL_BYTES}-byte seal")]
    MissingSeal {
        /// Length of the header's extra data.
        len: usize,
    },
    /// The seal's recovery id is not 0 or 1.
    #[error("seal recovery id is {v}, expected 0 or 1")]
    InvalidRecoveryId {
        /// The seal's last byte.
        v: u8,
    },
    /// The seal's `s` is in the upper half of the curve order: a malleated
    /// copy of a valid seal (EIP-2).
    #[error("seal s value {s:#x} is above half the curve order (malleable signature)")]
    HighS {
        /// The seal's `s`.
        s: U256,
    },
    /// The seal is not a valid signature over the header's seal hash.
    #[error("seal is not a valid secp256k1 signature: {0}")]
    InvalidSignature(#[source] secp256k1::Error),
    /// The seal recovers to an address that is not an authority.
    #[error("block {number} sealed by {signer}, which is not an authorised signer")]
    UnauthorisedSigner {
        /// The header's number.
        number: u64,
        /// The address the seal recovers to.
        signer: Address,
    },
    /// The signer sealed another block too recently.
    #[error(
        "signer {signer} sealed block {last_sealed}, too recent to seal block {number} (one block per {window} allowed)"
    )]
    RecentlySigned {
        /// The signer.
        signer: Address,
        /// The header's number.
        number: u64,
        /// The latest block the signer sealed within the window.
        last_sealed: u64,
        /// The recent window ([`Clique::recent_window`]).
        window: u64,
    },
    /// The caller did not supply the signer of a block inside the recent
    /// window, so whether the signer sealed too recently cannot be decided.
    #[error("signer of block {missing} is needed to check block {number} but was not supplied")]
    RecentSignersIncomplete {
        /// The header's number.
        number: u64,
        /// The block whose signer is missing.
        missing: u64,
    },
    /// The difficulty does not say whether the signer was in turn.
    #[error(
        "block {number} sealed by {signer} has difficulty {got}, expected {expected} ({})",
        if *expected == U256::from(DIFFICULTY_IN_TURN) { "in turn" } else { "out of turn" }
    )]
    WrongDifficulty {
        /// The header's number.
        number: u64,
        /// The signer.
        signer: Address,
        /// The difficulty for this signer at this number.
        expected: U256,
        /// The header's difficulty.
        got: U256,
    },
    /// The nonce is not zero (it would be a vote, and there is no voting).
    #[error("nonce is {nonce}, expected zero (signer voting is not supported)")]
    NonZeroNonce {
        /// The header's nonce.
        nonce: B64,
    },
    /// The ommers hash is not that of an empty list.
    #[error("ommers hash is {got}, expected the empty list's {EMPTY_OMMER_ROOT_HASH}")]
    WrongOmmersHash {
        /// The header's ommers hash.
        got: B256,
    },
    /// Signing produced only signatures whose recovery id (2 or 3) does not
    /// fit the seal's `v`; astronomically unlikely, see [`MAX_SEAL_ATTEMPTS`].
    #[error("no signature with recovery id 0 or 1 after {attempts} attempts")]
    SealUnencodable {
        /// Signatures tried.
        attempts: u8,
    },
    /// The mix hash (PREVRANDAO) is not `keccak256(parent hash)`.
    #[error("mix hash is {got}, expected keccak256(parent hash) = {expected}")]
    WrongMixHash {
        /// `keccak256(parent hash)`.
        expected: B256,
        /// The header's mix hash.
        got: B256,
    },
}

/// Result alias for this crate.
pub type ConsensusResult<T> = Result<T, ConsensusError>;

/// A block handed to [`Clique::recent_signers`] whose seal does not recover.
/// Every block a node keeps passed [`Clique::verify_header`], so for the
/// caller this means its stored chain is corrupt, not that a peer misbehaved.
#[derive(Debug, thiserror::Error)]
#[error("block {number} has a bad seal: {source}")]
pub struct BadRecentSeal {
    /// The block's number.
    pub number: u64,
    /// Why its seal does not recover.
    #[source]
    pub source: ConsensusError,
}

/// The Clique rules of one chain: its period and authorities.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clique {
    period_s: u64,
    /// Non-empty and strictly ascending (promised by [`CliqueParams`]), so
    /// turns are the same on every node and lookups can binary-search.
    signers: Vec<Address>,
}

impl Clique {
    /// The rules for these parameters.
    pub fn new(params: &CliqueParams) -> Self {
        Self {
            period_s: params.period_s(),
            signers: params.signers().to_vec(),
        }
    }

    /// The rules of a chain, when it is a Clique chain.
    pub fn from_chain(spec: &ChainSpec) -> Option<Self> {
        spec.clique().map(Self::new)
    }

    /// The authorities, strictly ascending.
    pub fn signers(&self) -> &[Address] {
        &self.signers
    }

    /// Seconds that must pass between a block and its child.
    pub fn period_s(&self) -> u64 {
        self.period_s
    }

    /// Whether `address` is an authority.
    pub fn is_signer(&self, address: Address) -> bool {
        self.signer_index(address).is_some()
    }

    fn signer_index(&self, address: Address) -> Option<usize> {
        self.signers.binary_search(&address).ok()
    }

    fn len_u64(&self) -> u64 {
        // At most MAX_CLIQUE_SIGNERS, so the conversion never saturates.
        u64::try_from(self.signers.len()).unwrap_or(u64::MAX)
    }

    /// Position in `signers` of the authority whose turn block `number` is.
    fn in_turn_index(&self, number: u64) -> usize {
        // The remainder is below the signer count, which is a usize.
        usize::try_from(number % self.len_u64()).unwrap_or(0)
    }

    /// The authority whose turn block `number` is: `signers[number % len]`.
    pub fn in_turn_signer(&self, number: u64) -> Address {
        self.signers[self.in_turn_index(number)]
    }

    /// How many places after the in-turn authority `signer` comes, wrapping
    /// round the list: 0 when in turn, `None` for a non-authority.
    pub fn distance_from_turn(&self, number: u64, signer: Address) -> Option<usize> {
        let index = self.signer_index(signer)?;
        let len = self.signers.len();
        Some((index + len - self.in_turn_index(number)) % len)
    }

    /// The difficulty `signer` must give block `number`:
    /// [`DIFFICULTY_IN_TURN`] in turn, [`DIFFICULTY_OUT_OF_TURN`] otherwise.
    pub fn difficulty(&self, number: u64, signer: Address) -> U256 {
        if self.in_turn_signer(number) == signer {
            U256::from(DIFFICULTY_IN_TURN)
        } else {
            U256::from(DIFFICULTY_OUT_OF_TURN)
        }
    }

    /// A signer may seal at most one block in any window of this many
    /// consecutive blocks: `len / 2 + 1`. A majority of honest signers thus
    /// always outpaces a minority, and no single signer can run the chain.
    pub fn recent_window(&self) -> u64 {
        self.len_u64() / 2 + 1
    }

    /// Checks that `signer` sealed none of the blocks in the recent window
    /// before `number`. `recent` holds `(block number, signer)` pairs and
    /// must cover every block from `number - (recent_window - 1)` (or block 1,
    /// the genesis having no signer) to `number - 1`; pairs outside that
    /// range are ignored. Does not check that `signer` is an authority.
    pub fn check_recent(
        &self,
        number: u64,
        signer: Address,
        recent: &[(u64, Address)],
    ) -> ConsensusResult<()> {
        let window = self.recent_window();
        let first = number.saturating_sub(window - 1).max(1);
        if let Some(missing) = (first..number).find(|n| !recent.iter().any(|(m, _)| m == n)) {
            return Err(ConsensusError::RecentSignersIncomplete { number, missing });
        }
        let last_sealed = recent
            .iter()
            .filter(|(n, s)| *s == signer && (first..number).contains(n))
            .map(|(n, _)| *n)
            .max();
        match last_sealed {
            Some(last_sealed) => Err(ConsensusError::RecentlySigned {
                signer,
                number,
                last_sealed,
                window,
            }),
            None => Ok(()),
        }
    }

    /// Whether `signer` may seal block `number` given the signers of the
    /// blocks before it (see [`Self::check_recent`] for what `recent` must
    /// hold). False for a non-authority, and false when `recent` is missing a
    /// block it needs: a signer must not seal unless it can tell it is
    /// allowed to.
    pub fn may_seal(&self, number: u64, signer: Address, recent: &[(u64, Address)]) -> bool {
        self.is_signer(signer) && self.check_recent(number, signer, recent).is_ok()
    }

    /// How many blocks, the parent and its ancestors, [`Self::check_recent`]
    /// needs the signers of to check the child of block `parent_number`: the
    /// window less the child itself, and never the genesis block, which has
    /// no seal.
    pub fn recent_depth(&self, parent_number: u64) -> u64 {
        self.recent_window().saturating_sub(1).min(parent_number)
    }

    /// The `(block number, signer)` pairs [`Self::check_recent`] and
    /// [`Self::may_seal`] want for the child of `recent[0]`, read from the
    /// seals of `recent`: the parent and its ancestors, newest first, at
    /// least [`Self::recent_depth`] of them (later ones are ignored).
    pub fn recent_signers(&self, recent: &[Header]) -> Result<Vec<(u64, Address)>, BadRecentSeal> {
        let Some(parent) = recent.first() else {
            return Ok(Vec::new());
        };
        let depth = usize::try_from(self.recent_depth(parent.number)).unwrap_or(usize::MAX);
        recent
            .iter()
            .take(depth)
            .map(|header| {
                recover_signer(header)
                    .map(|signer| (header.number, signer))
                    .map_err(|source| BadRecentSeal {
                        number: header.number,
                        source,
                    })
            })
            .collect()
    }

    /// The earliest timestamp a child of `parent` may carry: one period
    /// later.
    pub fn earliest_timestamp(&self, parent: &Header) -> u64 {
        parent.timestamp.saturating_add(self.period_s)
    }

    /// How long after the earliest allowed time (`parent.timestamp + period`)
    /// `signer` waits before sealing `number`: zero in turn, otherwise
    /// [`OUT_OF_TURN_DELAY_STEP`] times its distance from the in-turn
    /// position, so backups do not all seal at once and the nearest one wins
    /// when the in-turn signer is down. `None` for a non-authority.
    pub fn seal_delay(&self, number: u64, signer: Address) -> Option<Duration> {
        let distance = self.distance_from_turn(number, signer)?;
        // Below MAX_CLIQUE_SIGNERS, so the conversion never saturates.
        let steps = u32::try_from(distance).unwrap_or(u32::MAX);
        Some(OUT_OF_TURN_DELAY_STEP.saturating_mul(steps))
    }

    /// Checks every Clique rule for `header` as the child of `parent` and
    /// returns its signer. `recent` holds the signers of the blocks before
    /// `header` (see [`Self::check_recent`]); `now_s` is the local clock in
    /// seconds since the Unix epoch. Gas, base fee, roots and the other
    /// execution fields are the importer's to check.
    pub fn verify_header(
        &self,
        header: &Header,
        parent: &Header,
        recent: &[(u64, Address)],
        now_s: u64,
    ) -> ConsensusResult<Address> {
        let number = header.number;
        if parent.number.checked_add(1) != Some(number) {
            return Err(ConsensusError::NotChild {
                number,
                parent_number: parent.number,
            });
        }
        let parent_hash = parent.hash_slow();
        if header.parent_hash != parent_hash {
            return Err(ConsensusError::ParentHashMismatch {
                expected: parent_hash,
                got: header.parent_hash,
            });
        }
        let earliest = self.earliest_timestamp(parent);
        if header.timestamp < earliest {
            return Err(ConsensusError::TooEarly {
                timestamp: header.timestamp,
                earliest,
            });
        }
        if header.timestamp > now_s.saturating_add(MAX_FUTURE_DRIFT_S) {
            return Err(ConsensusError::TooFarInFuture {
                timestamp: header.timestamp,
                now_s,
            });
        }
        if header.extra_data.len() != EXTRA_DATA_BYTES {
            return Err(ConsensusError::ExtraDataLength {
                len: header.extra_data.len(),
            });
        }
        if header.nonce != B64::ZERO {
            return Err(ConsensusError::NonZeroNonce {
                nonce: header.nonce,
            });
        }
        if header.ommers_hash != EMPTY_OMMER_ROOT_HASH {
            return Err(ConsensusError::WrongOmmersHash {
                got: header.ommers_hash,
            });
        }
        let expected_mix = prev_randao(parent_hash);
        if header.mix_hash != expected_mix {
            return Err(ConsensusError::WrongMixHash {
                expected: expected_mix,
                got: header.mix_hash,
            });
        }
        // The signature is the costly check: only after the cheap ones.
        let signer = recover_signer(header)?;
        if !self.is_signer(signer) {
            return Err(ConsensusError::UnauthorisedSigner { number, signer });
        }
        self.check_recent(number, signer, recent)?;
        let expected = self.difficulty(number, signer);
        if header.difficulty != expected {
            return Err(ConsensusError::WrongDifficulty {
                number,
                signer,
                expected,
                got: header.difficulty,
            });
        }
        Ok(signer)
    }
}

/// The mix hash (PREVRANDAO) of a child of the block with this hash:
/// `keccak256(parent hash)`, fixed by the chain so signers have no say in it.
pub fn prev_randao(parent_hash: B256) -> B256 {
    keccak256(parent_hash)
}

/// The hash a seal signs: `keccak256(rlp(header))` with the extra data's last
/// [`EXTRA_SEAL_BYTES`] removed, as EIP-225 defines it. Every other field,
/// vanity included, is covered. Fails when the extra data is too short to
/// hold a seal.
pub fn seal_hash(header: &Header) -> ConsensusResult<B256> {
    let len = header.extra_data.len();
    let unsealed_len = len
        .checked_sub(EXTRA_SEAL_BYTES)
        .ok_or(ConsensusError::MissingSeal { len })?;
    Ok(hash_with_extra_data(
        header,
        header.extra_data.slice(..unsealed_len),
    ))
}

/// `keccak256(rlp(header))` with the extra data replaced.
fn hash_with_extra_data(header: &Header, extra_data: Bytes) -> B256 {
    let mut unsealed = header.clone();
    unsealed.extra_data = extra_data;
    keccak256(alloy_rlp::encode(&unsealed))
}

/// How many nonces [`sign_header`] tries before giving up on a signature
/// whose recovery id fits the seal's `v` (0 or 1). Ids 2 and 3 arise only
/// when the nonce point's x is at least the curve order, with probability
/// about 2^-128 per try, so one more try is all that is ever needed.
pub const MAX_SEAL_ATTEMPTS: u8 = 4;

/// Seals `header` with `key`: sets its extra data to the vanity (the first
/// [`EXTRA_VANITY_BYTES`] of the current extra data, zero-padded or
/// truncated) followed by the 65-byte signature `r ‖ s ‖ v` over its seal
/// hash, `v` the recovery id 0 or 1 (libsecp256k1 signs with low `s`).
/// Returns the signer's address. Every other field must be final before
/// sealing: changing one afterwards changes whom the seal recovers to.
pub fn sign_header(header: &mut Header, key: &SecretKey) -> ConsensusResult<Address> {
    let mut extra = [0u8; EXTRA_DATA_BYTES];
    let vanity_len = header.extra_data.len().min(EXTRA_VANITY_BYTES);
    extra[..vanity_len].copy_from_slice(&header.extra_data[..vanity_len]);
    let hash = hash_with_extra_data(header, Bytes::copy_from_slice(&extra[..EXTRA_VANITY_BYTES]));
    let message = Message::from_digest(hash.0);
    // The first try is plain RFC 6979, so a seal is reproducible from the key
    // and header alone; later tries mix the attempt number into the nonce.
    let mut signature = SECP256K1.sign_ecdsa_recoverable(message, key);
    let mut attempt = 1;
    let (v, rs) = loop {
        let (recovery_id, rs) = signature.serialize_compact();
        match recovery_id {
            RecoveryId::Zero => break (0, rs),
            RecoveryId::One => break (1, rs),
            RecoveryId::Two | RecoveryId::Three if attempt < MAX_SEAL_ATTEMPTS => {
                let mut noncedata = [0u8; 32];
                noncedata[31] = attempt;
                signature =
                    SECP256K1.sign_ecdsa_recoverable_with_noncedata(message, key, &noncedata);
                attempt += 1;
            }
            RecoveryId::Two | RecoveryId::Three => {
                return Err(ConsensusError::SealUnencodable {
                    attempts: MAX_SEAL_ATTEMPTS,
                });
            }
        }
    };
    extra[EXTRA_VANITY_BYTES..EXTRA_DATA_BYTES - 1].copy_from_slice(&rs);
    extra[EXTRA_DATA_BYTES - 1] = v;
    header.extra_data = Bytes::copy_from_slice(&extra);
    let public = key.public_key(SECP256K1);
    Ok(address_of_public_key(&public.serialize_uncompressed()))
}

/// The address whose key sealed `header`. Refuses a seal with a recovery id
/// other than 0 or 1, and a malleable one (`s` above half the curve order),
/// so each signed header has exactly one valid encoding.
pub fn recover_signer(header: &Header) -> ConsensusResult<Address> {
    let hash = seal_hash(header)?;
    let seal = &header.extra_data[header.extra_data.len() - EXTRA_SEAL_BYTES..];
    let (rs, v) = seal.split_at(64);
    let recovery_id = match v[0] {
        0 => RecoveryId::Zero,
        1 => RecoveryId::One,
        v => return Err(ConsensusError::InvalidRecoveryId { v }),
    };
    let s = U256::from_be_slice(&rs[32..]);
    if s > SECP256K1_HALF_ORDER {
        return Err(ConsensusError::HighS { s });
    }
    let signature = RecoverableSignature::from_compact(rs, recovery_id)
        .map_err(ConsensusError::InvalidSignature)?;
    let public = signature
        .recover(Message::from_digest(hash.0))
        .map_err(ConsensusError::InvalidSignature)?;
    Ok(address_of_public_key(&public.serialize_uncompressed()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use infera_chainspec::DEV_PRIVATE_KEYS;

    /// The testnet's rules and its three authorities' keys, in signer order
    /// (dev keys 7, 8 and 9 sort in that order by address).
    fn testnet() -> (Clique, Vec<SecretKey>) {
        let clique = Clique::from_chain(&ChainSpec::testnet()).expect("testnet is clique");
        let keys: Vec<SecretKey> = DEV_PRIVATE_KEYS[7..10]
            .iter()
            .map(|k| SecretKey::from_byte_array(k.0).unwrap())
            .collect();
        (clique, keys)
    }

    fn address_of(key: &SecretKey) -> Address {
        address_of_public_key(&key.public_key(SECP256K1).serialize_uncompressed())
    }

    fn genesis() -> Header {
        let spec = ChainSpec::testnet();
        spec.genesis_header(spec.genesis_state_root())
    }

    /// An unsigned child of `parent` that follows every rule for `signer`.
    fn child(clique: &Clique, parent: &Header, signer: Address) -> Header {
        let parent_hash = parent.hash_slow();
        let number = parent.number + 1;
        Header {
            parent_hash,
            number,
            timestamp: clique.earliest_timestamp(parent),
            extra_data: Bytes::from_static(b"infera"),
            mix_hash: prev_randao(parent_hash),
            difficulty: clique.difficulty(number, signer),
            ommers_hash: EMPTY_OMMER_ROOT_HASH,
            gas_limit: parent.gas_limit,
            base_fee_per_gas: parent.base_fee_per_gas,
            ..Default::default()
        }
    }

    fn signed_child(clique: &Clique, parent: &Header, key: &SecretKey) -> Header {
        let mut header = child(clique, parent, address_of(key));
        sign_header(&mut header, key).unwrap();
        header
    }

    /// Rules with `n` authorities 0x01.., 0x02.., ...
    fn clique_of(n: u8) -> (Clique, Vec<Address>) {
        let signers: Vec<Address> = (1..=n).map(Address::repeat_byte).collect();
        let params = CliqueParams::new(1, 0, signers.clone()).unwrap();
        (Clique::new(&params), signers)
    }

    #[test]
    fn half_order_is_half_the_curve_order() {
        let order = U256::from_be_bytes(secp256k1::constants::CURVE_ORDER);
        assert_eq!(SECP256K1_HALF_ORDER, order >> 1);
    }

    #[test]
    fn sign_and_recover_round_trip_with_testnet_keys() {
        let (clique, keys) = testnet();
        let parent = genesis();
        for key in &keys {
            let mut header = child(&clique, &parent, address_of(key));
            let signer = sign_header(&mut header, key).unwrap();
            assert_eq!(signer, address_of(key));
            assert!(clique.is_signer(signer));
            assert_eq!(recover_signer(&header).unwrap(), signer);
            assert_eq!(header.extra_data.len(), EXTRA_DATA_BYTES);
            // The vanity is kept and zero-padded.
            assert_eq!(&header.extra_data[..6], b"infera");
            assert!(
                header.extra_data[6..EXTRA_VANITY_BYTES]
                    .iter()
                    .all(|b| *b == 0)
            );
            // Signing is deterministic (RFC 6979), and re-sealing a sealed
            // header gives the same seal.
            let mut again = header.clone();
            sign_header(&mut again, key).unwrap();
            assert_eq!(again, header);
        }
    }

    #[test]
    fn vanity_is_truncated_to_32_bytes() {
        let (clique, keys) = testnet();
        let mut header = child(&clique, &genesis(), address_of(&keys[0]));
        header.extra_data = Bytes::from(vec![7u8; 40]);
        sign_header(&mut header, &keys[0]).unwrap();
        assert_eq!(header.extra_data.len(), EXTRA_DATA_BYTES);
        assert_eq!(&header.extra_data[..EXTRA_VANITY_BYTES], &[7u8; 32]);
        assert_eq!(recover_signer(&header).unwrap(), address_of(&keys[0]));
    }

    #[test]
    fn seal_hash_covers_everything_but_the_seal() {
        let (clique, keys) = testnet();
        let header = signed_child(&clique, &genesis(), &keys[1]);
        let hash = seal_hash(&header).unwrap();
        // A different seal (another key's) leaves the seal hash unchanged.
        let mut resealed = header.clone();
        sign_header(&mut resealed, &keys[2]).unwrap();
        assert_ne!(resealed.extra_data, header.extra_data);
        assert_eq!(seal_hash(&resealed).unwrap(), hash);
        let mut zeroed = header.clone();
        let mut extra = header.extra_data.to_vec();
        extra[EXTRA_VANITY_BYTES..].fill(0);
        zeroed.extra_data = extra.into();
        assert_eq!(seal_hash(&zeroed).unwrap(), hash);
        // Any other field changes it.
        type Change = (&'static str, fn(&mut Header));
        let changes: [Change; 12] = [
            ("parent_hash", |h| h.parent_hash = B256::repeat_byte(1)),
            ("beneficiary", |h| h.beneficiary = Address::repeat_byte(1)),
            ("state_root", |h| h.state_root = B256::repeat_byte(1)),
            ("receipts_root", |h| h.receipts_root = B256::repeat_byte(1)),
            ("difficulty", |h| h.difficulty += U256::from(1)),
            ("number", |h| h.number += 1),
            ("gas_limit", |h| h.gas_limit += 1),
            ("gas_used", |h| h.gas_used += 1),
            ("timestamp", |h| h.timestamp += 1),
            ("mix_hash", |h| h.mix_hash = B256::repeat_byte(1)),
            ("nonce", |h| h.nonce = B64::repeat_byte(1)),
            ("vanity", |h| {
                let mut extra = h.extra_data.to_vec();
                extra[0] ^= 1;
                h.extra_data = extra.into();
            }),
        ];
        for (field, change) in changes {
            let mut changed = header.clone();
            change(&mut changed);
            assert_ne!(seal_hash(&changed).unwrap(), hash, "{field}");
        }
    }

    #[test]
    fn seal_hash_needs_room_for_a_seal() {
        let header = Header {
            extra_data: Bytes::from(vec![0u8; EXTRA_SEAL_BYTES - 1]),
            ..Default::default()
        };
        assert!(matches!(
            seal_hash(&header),
            Err(ConsensusError::MissingSeal { len: 64 })
        ));
        assert!(matches!(
            recover_signer(&header),
            Err(ConsensusError::MissingSeal { len: 64 })
        ));
    }

    #[test]
    fn accepts_in_turn_and_out_of_turn_headers() {
        let (clique, keys) = testnet();
        let parent = genesis();
        // Block 1 is key 8's turn (index 1).
        assert_eq!(clique.in_turn_signer(1), address_of(&keys[1]));
        let now = parent.timestamp + clique.period_s();
        let in_turn = signed_child(&clique, &parent, &keys[1]);
        assert_eq!(in_turn.difficulty, U256::from(DIFFICULTY_IN_TURN));
        assert_eq!(
            clique.verify_header(&in_turn, &parent, &[], now).unwrap(),
            address_of(&keys[1])
        );
        let out_of_turn = signed_child(&clique, &parent, &keys[2]);
        assert_eq!(out_of_turn.difficulty, U256::from(DIFFICULTY_OUT_OF_TURN));
        assert_eq!(
            clique
                .verify_header(&out_of_turn, &parent, &[], now)
                .unwrap(),
            address_of(&keys[2])
        );
        // A short chain: 1 by key 8 (in turn), 2 by key 9 (in turn), 3 by
        // key 8 (out of turn; key 7's turn, key 9 sealed block 2).
        let mut recent = vec![(1, address_of(&keys[1]))];
        let two = signed_child(&clique, &in_turn, &keys[2]);
        assert_eq!(two.difficulty, U256::from(DIFFICULTY_IN_TURN));
        clique
            .verify_header(&two, &in_turn, &recent, two.timestamp)
            .unwrap();
        recent.push((2, address_of(&keys[2])));
        let three = signed_child(&clique, &two, &keys[1]);
        assert_eq!(three.difficulty, U256::from(DIFFICULTY_OUT_OF_TURN));
        clique
            .verify_header(&three, &two, &recent, three.timestamp)
            .unwrap();
        // Timestamps later than the earliest, up to the drift, are fine.
        let mut late = child(&clique, &parent, address_of(&keys[1]));
        late.timestamp = now + 100;
        sign_header(&mut late, &keys[1]).unwrap();
        clique
            .verify_header(&late, &parent, &[], now + 100 - MAX_FUTURE_DRIFT_S)
            .unwrap();
    }

    /// Each rule, broken on an otherwise valid in-turn block 1 before it is
    /// sealed, with the error it must give.
    #[test]
    fn each_rule_refuses_a_header_that_breaks_it() {
        type Case = (&'static str, fn(&mut Header), fn(&ConsensusError) -> bool);
        let (clique, keys) = testnet();
        let parent = genesis();
        let now = parent.timestamp + clique.period_s();
        let cases: [Case; 9] = [
            (
                "number",
                |h| h.number = 2,
                |e| {
                    matches!(
                        e,
                        ConsensusError::NotChild {
                            number: 2,
                            parent_number: 0
                        }
                    )
                },
            ),
            (
                "parent hash",
                |h| h.parent_hash = B256::repeat_byte(9),
                |e| matches!(e, ConsensusError::ParentHashMismatch { got, .. } if *got == B256::repeat_byte(9)),
            ),
            (
                "too early",
                |h| h.timestamp -= 1,
                |e| {
                    matches!(
                        e,
                        ConsensusError::TooEarly {
                            timestamp: 1,
                            earliest: 2
                        }
                    )
                },
            ),
            (
                "too far in the future",
                |h| h.timestamp += MAX_FUTURE_DRIFT_S + 1,
                |e| {
                    matches!(
                        e,
                        ConsensusError::TooFarInFuture {
                            timestamp: 18,
                            now_s: 2
                        }
                    )
                },
            ),
            (
                "nonce",
                |h| h.nonce = B64::with_last_byte(1),
                |e| matches!(e, ConsensusError::NonZeroNonce { .. }),
            ),
            (
                "ommers",
                |h| h.ommers_hash = B256::ZERO,
                |e| matches!(e, ConsensusError::WrongOmmersHash { got } if got.is_zero()),
            ),
            (
                "mix hash",
                |h| h.mix_hash = B256::ZERO,
                |e| matches!(e, ConsensusError::WrongMixHash { got, .. } if got.is_zero()),
            ),
            (
                "in-turn difficulty",
                |h| h.difficulty = U256::from(DIFFICULTY_OUT_OF_TURN),
                |e| {
                    matches!(e, ConsensusError::WrongDifficulty { number: 1, expected, got, .. }
                        if *expected == U256::from(2) && *got == U256::from(1))
                },
            ),
            (
                "zero difficulty",
                |h| h.difficulty = U256::ZERO,
                |e| matches!(e, ConsensusError::WrongDifficulty { got, .. } if got.is_zero()),
            ),
        ];
        let valid = signed_child(&clique, &parent, &keys[1]);
        clique.verify_header(&valid, &parent, &[], now).unwrap();
        for (rule, break_it, expect) in cases {
            let mut header = child(&clique, &parent, address_of(&keys[1]));
            break_it(&mut header);
            sign_header(&mut header, &keys[1]).unwrap();
            let err = clique
                .verify_header(&header, &parent, &[], now)
                .expect_err(rule);
            assert!(expect(&err), "{rule}: unexpected {err:?}");
            // Every message names the problem with its values.
            assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn out_of_turn_difficulty_must_be_one() {
        let (clique, keys) = testnet();
        let parent = genesis();
        let mut header = child(&clique, &parent, address_of(&keys[0]));
        header.difficulty = U256::from(DIFFICULTY_IN_TURN);
        sign_header(&mut header, &keys[0]).unwrap();
        let err = clique
            .verify_header(&header, &parent, &[], header.timestamp)
            .unwrap_err();
        assert!(
            matches!(err, ConsensusError::WrongDifficulty { signer, got, .. }
                if signer == address_of(&keys[0]) && got == U256::from(2)),
            "{err:?}"
        );
        assert!(err.to_string().contains("out of turn"), "{err}");
    }

    #[test]
    fn extra_data_must_be_exactly_vanity_and_seal() {
        let (clique, keys) = testnet();
        let parent = genesis();
        let header = signed_child(&clique, &parent, &keys[1]);
        for len in [
            0,
            EXTRA_SEAL_BYTES,
            EXTRA_DATA_BYTES - 1,
            EXTRA_DATA_BYTES + 20,
        ] {
            let mut bad = header.clone();
            let mut extra = vec![0u8; len];
            let keep = len.min(EXTRA_DATA_BYTES);
            extra[len - keep..].copy_from_slice(&header.extra_data[EXTRA_DATA_BYTES - keep..]);
            bad.extra_data = extra.into();
            let err = clique
                .verify_header(&bad, &parent, &[], bad.timestamp)
                .unwrap_err();
            assert!(
                matches!(err, ConsensusError::ExtraDataLength { len: got } if got == len),
                "{len}: {err:?}"
            );
        }
    }

    #[test]
    fn unauthorised_and_tampered_headers_are_refused() {
        let (clique, keys) = testnet();
        let parent = genesis();
        let outsider = SecretKey::from_byte_array(DEV_PRIVATE_KEYS[0].0).unwrap();
        let header = signed_child(&clique, &parent, &outsider);
        let err = clique
            .verify_header(&header, &parent, &[], header.timestamp)
            .unwrap_err();
        assert!(
            matches!(err, ConsensusError::UnauthorisedSigner { number: 1, signer }
                if signer == address_of(&outsider)),
            "{err:?}"
        );

        let mut tampered = signed_child(&clique, &parent, &keys[1]);
        tampered.state_root = B256::repeat_byte(0xee);
        let recovered = recover_signer(&tampered).unwrap();
        assert_ne!(recovered, address_of(&keys[1]));
        assert!(!clique.is_signer(recovered));
        let err = clique
            .verify_header(&tampered, &parent, &[], tampered.timestamp)
            .unwrap_err();
        assert!(
            matches!(err, ConsensusError::UnauthorisedSigner { signer, .. } if signer == recovered),
            "{err:?}"
        );
    }

    #[test]
    fn malleable_and_malformed_seals_are_refused() {
        let (clique, keys) = testnet();
        let parent = genesis();
        let header = signed_child(&clique, &parent, &keys[1]);
        let seal_at = EXTRA_VANITY_BYTES;

        // The mirror signature (n - s, flipped v) is valid for the same key;
        // libsecp256k1's recovery accepts it, so the check must be ours.
        let order = U256::from_be_bytes(secp256k1::constants::CURVE_ORDER);
        let s = U256::from_be_slice(&header.extra_data[seal_at + 32..seal_at + 64]);
        assert!(s <= SECP256K1_HALF_ORDER, "libsecp256k1 signs with low s");
        let high_s = order - s;
        let mut extra = header.extra_data.to_vec();
        extra[seal_at + 32..seal_at + 64].copy_from_slice(&high_s.to_be_bytes::<32>());
        extra[EXTRA_DATA_BYTES - 1] ^= 1;
        let id = RecoveryId::from_u8_masked(extra[EXTRA_DATA_BYTES - 1]);
        let mirror = RecoverableSignature::from_compact(&extra[seal_at..seal_at + 64], id).unwrap();
        let hash = seal_hash(&header).unwrap();
        let public = mirror.recover(Message::from_digest(hash.0)).unwrap();
        assert_eq!(
            address_of_public_key(&public.serialize_uncompressed()),
            address_of(&keys[1])
        );
        let mut malleated = header.clone();
        malleated.extra_data = extra.into();
        assert!(matches!(
            recover_signer(&malleated),
            Err(ConsensusError::HighS { s }) if s == high_s
        ));
        let err = clique
            .verify_header(&malleated, &parent, &[], malleated.timestamp)
            .unwrap_err();
        assert!(matches!(err, ConsensusError::HighS { .. }), "{err:?}");

        for v in [2u8, 3, 27, 28] {
            let mut bad = header.clone();
            let mut extra = header.extra_data.to_vec();
            extra[EXTRA_DATA_BYTES - 1] = v;
            bad.extra_data = extra.into();
            assert!(
                matches!(recover_signer(&bad), Err(ConsensusError::InvalidRecoveryId { v: got }) if got == v),
                "v = {v}"
            );
        }

        // r = 0 is no signature at all.
        let mut zero_r = header.clone();
        let mut extra = header.extra_data.to_vec();
        extra[seal_at..seal_at + 32].fill(0);
        zero_r.extra_data = extra.into();
        assert!(matches!(
            recover_signer(&zero_r),
            Err(ConsensusError::InvalidSignature(_))
        ));
    }

    #[test]
    fn a_signer_may_not_seal_twice_within_the_recent_window() {
        let (clique, keys) = testnet();
        let parent = genesis();
        let one = signed_child(&clique, &parent, &keys[1]);
        let two = signed_child(&clique, &one, &keys[1]);
        let recent = [(1, address_of(&keys[1]))];
        let err = clique
            .verify_header(&two, &one, &recent, two.timestamp)
            .unwrap_err();
        assert!(
            matches!(
                err,
                ConsensusError::RecentlySigned {
                    number: 2,
                    last_sealed: 1,
                    window: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        // Without the history the check cannot be made, and says so.
        let err = clique
            .verify_header(&two, &one, &[], two.timestamp)
            .unwrap_err();
        assert!(
            matches!(
                err,
                ConsensusError::RecentSignersIncomplete {
                    number: 2,
                    missing: 1
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn recent_signers_reads_the_window_from_the_seals() {
        let (clique, keys) = testnet();
        let genesis = genesis();
        let one = signed_child(&clique, &genesis, &keys[1]);
        let two = signed_child(&clique, &one, &keys[2]);
        // Three authorities: a window of two, so only the parent's signer
        // matters, and the unsealed genesis never does.
        assert_eq!(clique.recent_depth(0), 0);
        assert_eq!(clique.recent_depth(2), 1);
        assert_eq!(
            clique
                .recent_signers(std::slice::from_ref(&genesis))
                .unwrap(),
            vec![]
        );
        let recent = [two.clone(), one.clone(), genesis];
        assert_eq!(
            clique.recent_signers(&recent).unwrap(),
            vec![(2, address_of(&keys[2]))]
        );
        assert!(clique.may_seal(
            3,
            address_of(&keys[1]),
            &clique.recent_signers(&recent).unwrap()
        ));
        assert!(!clique.may_seal(
            3,
            address_of(&keys[2]),
            &clique.recent_signers(&recent).unwrap()
        ));

        let (five, _) = clique_of(5);
        assert_eq!(five.recent_depth(1), 1);
        assert_eq!(five.recent_depth(9), 2);
        let mut bad = two;
        let last = bad.extra_data.len() - 1;
        let mut extra = bad.extra_data.to_vec();
        extra[last] = 7;
        bad.extra_data = extra.into();
        let err = clique.recent_signers(&[bad, one]).unwrap_err();
        assert_eq!(err.number, 2);
        assert!(
            matches!(err.source, ConsensusError::InvalidRecoveryId { v: 7 }),
            "{err:?}"
        );
    }

    #[test]
    fn recent_window_with_one_signer() {
        let (clique, s) = clique_of(1);
        assert_eq!(clique.recent_window(), 1);
        // A lone signer seals every block; it needs no history.
        assert!(clique.may_seal(1, s[0], &[]));
        assert!(clique.may_seal(10, s[0], &[(9, s[0])]));
        assert!(!clique.may_seal(10, Address::repeat_byte(9), &[]));
    }

    #[test]
    fn recent_window_with_two_signers() {
        let (clique, s) = clique_of(2);
        assert_eq!(clique.recent_window(), 2);
        assert!(clique.may_seal(1, s[0], &[]));
        assert!(clique.may_seal(1, s[1], &[]));
        // Strict alternation.
        assert!(!clique.may_seal(10, s[0], &[(9, s[0])]));
        assert!(clique.may_seal(10, s[1], &[(9, s[0])]));
        assert!(clique.may_seal(10, s[0], &[(8, s[0]), (9, s[1])]));
        // History is required for block 9 only.
        assert!(!clique.may_seal(10, s[1], &[(8, s[0])]));
    }

    #[test]
    fn recent_window_with_three_signers() {
        let (clique, s) = clique_of(3);
        assert_eq!(clique.recent_window(), 2);
        assert!(!clique.may_seal(10, s[0], &[(9, s[0])]));
        assert!(clique.may_seal(10, s[0], &[(8, s[0]), (9, s[1])]));
        assert!(clique.may_seal(10, s[2], &[(9, s[1])]));
        // Pairs at or after the block itself and outside the window are
        // ignored.
        assert!(clique.may_seal(10, s[0], &[(9, s[1]), (10, s[0]), (11, s[0])]));
        assert!(clique.may_seal(10, s[0], &[(7, s[0]), (8, s[0]), (9, s[1])]));
    }

    #[test]
    fn recent_window_with_five_signers() {
        let (clique, s) = clique_of(5);
        assert_eq!(clique.recent_window(), 3);
        let history = [(7, s[0]), (8, s[1]), (9, s[2])];
        assert!(!clique.may_seal(10, s[1], &history));
        assert!(!clique.may_seal(10, s[2], &history));
        assert!(clique.may_seal(10, s[0], &history));
        assert!(clique.may_seal(10, s[3], &history));
        assert!(clique.may_seal(10, s[4], &history));
        // The last two blocks are needed, not more.
        assert!(clique.may_seal(10, s[0], &history[1..]));
        assert!(!clique.may_seal(10, s[0], &history[2..]));
        assert!(matches!(
            clique.check_recent(10, s[0], &history[2..]),
            Err(ConsensusError::RecentSignersIncomplete {
                number: 10,
                missing: 8
            })
        ));
        // Near genesis only the blocks that exist are needed.
        assert!(clique.may_seal(2, s[0], &[(1, s[1])]));
        assert!(!clique.may_seal(2, s[1], &[(1, s[1])]));
        assert!(matches!(
            clique.check_recent(3, s[1], &[(1, s[1]), (2, s[2])]),
            Err(ConsensusError::RecentlySigned {
                last_sealed: 1,
                window: 3,
                ..
            })
        ));
    }

    #[test]
    fn turns_rotate_through_the_sorted_signers() {
        let (clique, s) = clique_of(3);
        for number in 0..9u64 {
            let in_turn = s[(number % 3) as usize];
            assert_eq!(clique.in_turn_signer(number), in_turn);
            for signer in &s {
                let want = if *signer == in_turn { 2u64 } else { 1 };
                assert_eq!(clique.difficulty(number, *signer), U256::from(want));
            }
        }
    }

    #[test]
    fn seal_delay_is_zero_in_turn_and_grows_with_distance() {
        for n in [1u8, 2, 3, 5] {
            let (clique, s) = clique_of(n);
            for number in 0..u64::from(n) * 2 {
                let in_turn = clique.in_turn_signer(number);
                assert_eq!(clique.seal_delay(number, in_turn), Some(Duration::ZERO));
                // Walk the signers in order after the in-turn one.
                let start = s.iter().position(|a| *a == in_turn).unwrap();
                let mut previous = Duration::ZERO;
                for step in 1..s.len() {
                    let signer = s[(start + step) % s.len()];
                    assert_eq!(clique.distance_from_turn(number, signer), Some(step));
                    let delay = clique.seal_delay(number, signer).unwrap();
                    assert!(delay > previous, "n={n} number={number} step={step}");
                    previous = delay;
                }
            }
            assert_eq!(clique.seal_delay(0, Address::repeat_byte(0xff)), None);
        }
        let (clique, s) = clique_of(3);
        assert_eq!(clique.seal_delay(0, s[2]), Some(OUT_OF_TURN_DELAY_STEP * 2));
    }
}
