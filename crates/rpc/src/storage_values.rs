//! `eth_getStorageValues`: many slots of many accounts at one block.

use std::collections::BTreeMap;

use alloy_eips::BlockId;
use alloy_primitives::{Address, B256, U256};
use infera_primitives::StateReader;

use crate::{RpcContext, RpcError, RpcResult, proof::decode_storage_key};

/// Most storage slots one `eth_getStorageValues` may ask for, all accounts
/// together.
pub const MAX_STORAGE_VALUES: usize = 1_024;

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
}
