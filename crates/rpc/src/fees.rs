//! `eth_baseFee` and `eth_blobBaseFee`: the next block's fees.

use alloy_consensus::Header;
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
        let fee = self.next_blob_fee(&head).ok_or_else(|| {
            RpcError::InvalidParams("blob transactions are not enabled before Cancun".into())
        })?;
        Ok(U256::from(fee))
    }

    /// The blob base fee of the block after `parent` (dated one second
    /// later), or `None` before Cancun.
    pub(crate) fn next_blob_fee(&self, parent: &Header) -> Option<u128> {
        let params = self
            .chain()
            .blob_params_at(parent.number + 1, parent.timestamp + 1)?;
        let excess = match self.chain().blob_params_at(parent.number, parent.timestamp) {
            Some(parent_params) => parent_params.next_block_excess_blob_gas_osaka(
                parent.excess_blob_gas.unwrap_or(0),
                parent.blob_gas_used.unwrap_or(0),
                parent.base_fee_per_gas.unwrap_or(0),
            ),
            None => 0,
        };
        Some(params.calc_blob_fee(excess))
    }

    /// The blob base fee of block `header` itself (what its blob
    /// transactions paid per blob gas), or `None` before Cancun.
    pub(crate) fn blob_fee_of(&self, header: &Header) -> Option<u128> {
        let params = self
            .chain()
            .blob_params_at(header.number, header.timestamp)?;
        Some(params.calc_blob_fee(header.excess_blob_gas.unwrap_or(0)))
    }

    /// Blob gas used over the block's maximum, for `eth_feeHistory` (0 before
    /// Cancun).
    pub(crate) fn blob_gas_used_ratio(&self, header: &Header) -> f64 {
        let max = self
            .chain()
            .blob_params_at(header.number, header.timestamp)
            .map_or(0, |p| p.max_blob_gas_per_block());
        if max == 0 {
            return 0.0;
        }
        header.blob_gas_used.unwrap_or(0) as f64 / max as f64
    }
}
