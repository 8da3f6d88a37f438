//! `eth_baseFee` and `eth_blobBaseFee`: the next block's fees.

use alloy_primitives::U256;

use crate::{RpcContext, RpcError, RpcResult};

impl RpcContext {
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
}
