//! `eth_createAccessList`.

use alloy_eips::BlockId;
use alloy_primitives::U64;
use serde::Serialize;

use crate::{RpcContext, RpcResult};

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
