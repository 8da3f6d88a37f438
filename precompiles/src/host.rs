//! The precompiles' view of the EVM: state through revm's journal (so every
//! write is reverted with its call frame and lands in the block's state
//! changes), a gas meter, and the ways a call ends.

use alloy_primitives::{Address, B256, Bytes, KECCAK256_EMPTY, Log, U256, keccak256};
use alloy_sol_types::SolError;
use revm::{
    bytecode::Bytecode,
    context_interface::{JournalTr, journaled_state::account::JournaledAccountTr},
};

use crate::{abi::MODEL_REGISTRY_ADDRESS, layout::CODE_PREFIX};

/// How a precompile call ends other than by returning.
#[derive(Debug)]
pub(crate) enum Exit {
    /// Not enough gas: an ordinary out-of-gas halt of the call.
    OutOfGas,
    /// Revert with ABI-encoded custom error bytes.
    Revert(Bytes),
    /// The database failed: the node cannot execute the block (not a call outcome).
    Fatal(String),
}

pub(crate) type Step<T> = Result<T, Exit>;

/// Revert with a custom error.
pub(crate) fn revert<E: SolError>(error: E) -> Exit {
    Exit::Revert(error.abi_encode().into())
}

/// Gas charged so far against the call's limit.
#[derive(Debug)]
pub(crate) struct GasMeter {
    limit: u64,
    used: u64,
}

impl GasMeter {
    pub(crate) fn new(limit: u64) -> Self {
        Self { limit, used: 0 }
    }

    /// Charge `amount`; out of gas when it would pass the limit.
    pub(crate) fn charge(&mut self, amount: u64) -> Step<()> {
        let used = self.used.saturating_add(amount);
        if used > self.limit {
            return Err(Exit::OutOfGas);
        }
        self.used = used;
        Ok(())
    }

    /// Charge up to a total of `total` (no-op if already charged that much).
    pub(crate) fn charge_to(&mut self, total: u64) -> Step<()> {
        self.charge(total.saturating_sub(self.used))
    }

    pub(crate) fn used(&self) -> u64 {
        self.used
    }
}

fn fatal(error: impl std::fmt::Display) -> Exit {
    Exit::Fatal(format!("AI precompile state access failed: {error}"))
}

/// State access through the journal.
pub(crate) struct Host<'a, J> {
    journal: &'a mut J,
}

impl<'a, J: JournalTr> Host<'a, J> {
    pub(crate) fn new(journal: &'a mut J) -> Self {
        Self { journal }
    }

    /// A slot of the registry account.
    pub(crate) fn sload(&mut self, slot: U256) -> Step<U256> {
        // The journal reads storage only of accounts it has loaded.
        self.journal
            .load_account(MODEL_REGISTRY_ADDRESS)
            .map_err(fatal)?;
        self.journal
            .sload(MODEL_REGISTRY_ADDRESS, slot)
            .map(|load| load.data)
            .map_err(fatal)
    }

    /// Write a slot of the registry account (loads it first).
    pub(crate) fn sstore(&mut self, slot: U256, value: U256) -> Step<()> {
        self.ensure_registry_account()?;
        self.journal
            .sstore(MODEL_REGISTRY_ADDRESS, slot, value)
            .map(|_| ())
            .map_err(fatal)
    }

    /// Give the registry account nonce 1, so that EIP-161 never deletes it as
    /// empty (its storage would go with it).
    fn ensure_registry_account(&mut self) -> Step<()> {
        let mut account = self
            .journal
            .load_account_mut(MODEL_REGISTRY_ADDRESS)
            .map_err(fatal)?;
        if account.nonce() == 0 {
            account.bump_nonce();
        }
        Ok(())
    }

    /// The payload of a model or chunk account: its code without
    /// [`CODE_PREFIX`]. `None` when the account has no such code.
    pub(crate) fn payload(&mut self, address: Address) -> Step<Option<Bytes>> {
        let code = self.journal.code(address).map_err(fatal)?.data;
        match code.first() {
            Some(&CODE_PREFIX) => Ok(Some(code.slice(1..))),
            _ => Ok(None),
        }
    }

    /// Store `payload` as the code `CODE_PREFIX ‖ payload` of `address`.
    pub(crate) fn set_payload(&mut self, address: Address, payload: &[u8]) -> Step<()> {
        let mut code = Vec::with_capacity(payload.len() + 1);
        code.push(CODE_PREFIX);
        code.extend_from_slice(payload);
        let code = Bytes::from(code);
        let hash = keccak256(&code);
        self.journal
            .load_account_with_code(address)
            .map_err(fatal)?;
        self.journal
            .set_code_with_hash(address, Bytecode::new_raw(code), hash);
        Ok(())
    }

    /// Remove the code of `address` (an account left empty is deleted at the
    /// end of the transaction, EIP-161).
    pub(crate) fn clear_code(&mut self, address: Address) -> Step<()> {
        self.journal
            .load_account_with_code(address)
            .map_err(fatal)?;
        self.journal
            .set_code_with_hash(address, Bytecode::default(), KECCAK256_EMPTY);
        Ok(())
    }

    /// Emit a registry event.
    pub(crate) fn log(&mut self, data: alloy_primitives::LogData) {
        self.journal.log(Log {
            address: MODEL_REGISTRY_ADDRESS,
            data,
        });
    }
}

/// `B256` from a storage word.
pub(crate) fn word_to_b256(word: U256) -> B256 {
    B256::from(word.to_be_bytes::<32>())
}
