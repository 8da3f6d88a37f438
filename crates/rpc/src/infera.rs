//! The `infera_` namespace: the model registry and inference, read for
//! wallets and tools.
//!
//! Every answer comes from ABI calls to the precompiles executed through the
//! node's own call path (the one `eth_call` uses, with the same precompile
//! provider), so it reads exactly what consensus reads: no second
//! implementation of the registry's storage layout lives here. A call that
//! reverts becomes an "execution reverted" error (code 3) whose message names
//! the precompile's custom error with its fields and whose `data` is the raw
//! revert data.

use alloy_eips::{BlockId, BlockNumberOrTag};
use alloy_primitives::{Address, B256, Bytes, U64, U256};
use alloy_rpc_types_eth::Filter;
use alloy_sol_types::{SolCall, SolError, SolEvent};
use infera_evm::{CallLimits, CallOutcome, CallRequest};
use infera_precompiles::abi::{self, IInference, IModelRegistry, ModelInfo};
use serde::Serialize;

use crate::{RpcContext, RpcError, RpcResult};

/// Most models one `infera_listModels` returns; page with `start`.
pub const MAX_LISTED_MODELS: u64 = 1_000;

/// Gas limit of the registry and inference calls made here: the EIP-7825
/// per-transaction cap, so anything a transaction could run, runs.
const CALL_GAS: u64 = 1 << 24;

/// A registered model in `infera_listModels`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelSummary {
    pub id: B256,
    pub size: U64,
    pub inference_gas: U64,
    pub uploader: Address,
    pub block_number: U64,
}

/// A tensor's element type, shape and byte length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TensorDetails {
    /// `"int8"` or `"int32"` (or `"tag N"` for a tag this node does not know).
    pub dtype: String,
    pub shape: Vec<u32>,
    pub bytes: U64,
}

/// An upload in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadDetails {
    pub uploader: Address,
    pub id: B256,
    pub received: U64,
    pub size: U64,
}

/// `infera_getModel`: a registered model, or only the uploads of one that is
/// not registered yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelDetails {
    pub id: B256,
    pub registered: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<U64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uploader: Option<Address>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_number: Option<U64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inference_gas: Option<U64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<TensorDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<TensorDetails>,
    /// Unfinished uploads of this id seen in the last
    /// `max_logs_block_range` blocks (empty once registered).
    pub uploads: Vec<UploadDetails>,
}

/// `infera_dryRun`: an inference without a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DryRun {
    /// The output tensor's bytes, as `IInference.infer` returns them.
    pub output: Bytes,
    /// `IInference.inferArgmax` on the same input.
    pub argmax: U64,
    /// Gas the inference precompile charges for this call: what a contract's
    /// STATICCALL of it costs.
    pub gas_used: U64,
    /// Gas a transaction calling the inference precompile directly with this
    /// input uses (intrinsic and calldata gas included).
    pub transaction_gas: U64,
    /// The model's inference gas fixed at registration.
    pub inference_gas: U64,
}

impl RpcContext {
    /// `infera_listModels(block?, start?, limit?)`: registered models in
    /// registration order, at most [`MAX_LISTED_MODELS`] per call.
    pub fn infera_list_models(
        &self,
        block: Option<BlockId>,
        start: Option<U64>,
        limit: Option<U64>,
    ) -> RpcResult<Vec<ModelSummary>> {
        let at = self.pinned_block(block)?;
        let count = self.registry_call(IModelRegistry::modelCountCall {}, at)?;
        let start = start.map_or(0, |s| s.to::<u64>());
        let limit = limit.map_or(MAX_LISTED_MODELS, |l| l.to::<u64>());
        if limit > MAX_LISTED_MODELS {
            return Err(RpcError::LimitExceeded(format!(
                "limit {limit} is above the maximum of {MAX_LISTED_MODELS} models per call; page with start"
            )));
        }
        let end = count.min(U256::from(start.saturating_add(limit)));
        let mut out = Vec::new();
        let mut index = U256::from(start);
        while index < end {
            let id = self.registry_call(IModelRegistry::modelAtCall { index }, at)?;
            let info = self.registry_call(IModelRegistry::modelInfoCall { id }, at)?;
            out.push(ModelSummary {
                id,
                size: U64::from(info.size),
                inference_gas: U64::from(info.inferenceGas),
                uploader: info.uploader,
                block_number: U64::from(info.blockNumber),
            });
            index += U256::from(1);
        }
        Ok(out)
    }

    /// `infera_getModel(id, block?)`: details of a registered model, the
    /// progress of its uploads when it is not registered yet, `null` when the
    /// chain has never heard of it.
    pub fn infera_get_model(
        &self,
        id: B256,
        block: Option<BlockId>,
    ) -> RpcResult<Option<ModelDetails>> {
        let at = self.pinned_block(block)?;
        match self.registry_call(IModelRegistry::modelInfoCall { id }, at) {
            Ok(info) => return Ok(Some(details(info))),
            Err(RpcError::Reverted { data, .. })
                if abi::UnknownModel::abi_decode(&data).is_ok_and(|e| e.id == id) => {}
            Err(e) => return Err(e),
        }
        let uploads = self.uploads_of(id, at)?;
        Ok((!uploads.is_empty()).then_some(ModelDetails {
            id,
            registered: false,
            size: None,
            uploader: None,
            block_number: None,
            inference_gas: None,
            input: None,
            output: None,
            uploads,
        }))
    }

    /// `infera_getUpload(uploader, id, block?)`: bytes received and declared
    /// size of `uploader`'s upload of `id` (both 0 when there is none).
    pub fn infera_get_upload(
        &self,
        uploader: Address,
        id: B256,
        block: Option<BlockId>,
    ) -> RpcResult<UploadDetails> {
        let at = self.pinned_block(block)?;
        let status = self.registry_call(IModelRegistry::uploadStatusCall { uploader, id }, at)?;
        Ok(UploadDetails {
            uploader,
            id,
            received: U64::from(status.received),
            size: U64::from(status.size),
        })
    }

    /// `infera_dryRun(id, input, block?)`: runs the inference precompile as a
    /// call; a bad id or input is the precompile's typed revert. A heavy call:
    /// it waits its turn, and its inferences run within one deadline.
    pub fn infera_dry_run(
        &self,
        id: B256,
        input: Bytes,
        block: Option<BlockId>,
    ) -> RpcResult<DryRun> {
        self.heavy(|limits| self.dry_run_within(id, input, block, limits))
    }

    fn dry_run_within(
        &self,
        id: B256,
        input: Bytes,
        block: Option<BlockId>,
        limits: CallLimits,
    ) -> RpcResult<DryRun> {
        let at = self.pinned_block(block)?;
        let (info, _) = self.precompile_call(
            abi::MODEL_REGISTRY_ADDRESS,
            IModelRegistry::modelInfoCall { id }.abi_encode(),
            at,
            limits,
        )?;
        let info = decode_returns::<IModelRegistry::modelInfoCall>(&info)?;
        let infer = IInference::inferCall {
            id,
            input: input.clone(),
        };
        let (ret, gas_used) =
            self.precompile_call(abi::INFERENCE_ADDRESS, infer.abi_encode(), at, limits)?;
        let output = decode_returns::<IInference::inferCall>(&ret)?;
        let (ret, _) = self.precompile_call(
            abi::INFERENCE_ADDRESS,
            IInference::inferArgmaxCall { id, input }.abi_encode(),
            at,
            limits,
        )?;
        let argmax = decode_returns::<IInference::inferArgmaxCall>(&ret)?;
        Ok(DryRun {
            output,
            argmax: U64::from(argmax.to::<u64>()),
            gas_used: U64::from(infera_precompiles::gas::inference_call_gas(
                info.inferenceGas,
                u64::from(info.inputBytes),
                u64::from(info.outputBytes),
            )),
            transaction_gas: U64::from(gas_used),
            inference_gas: U64::from(info.inferenceGas),
        })
    }

    /// Resolves `block` once, so the several calls of one method all read the
    /// same state.
    fn pinned_block(&self, block: Option<BlockId>) -> RpcResult<BlockId> {
        let id = block.unwrap_or(BlockId::Number(BlockNumberOrTag::Latest));
        let header = self
            .block_by_id(id, false)?
            .ok_or_else(|| RpcError::NotFound(format!("header not found for block {id}")))?;
        Ok(BlockId::Number(BlockNumberOrTag::Number(
            header.header.number,
        )))
    }

    /// A read of the registry: cheap, so it does not wait its turn among the
    /// heavy calls, but it runs within the gas cap and a deadline.
    fn registry_call<C: SolCall>(&self, call: C, at: BlockId) -> RpcResult<C::Return> {
        let limits = self.call_limits();
        let (ret, _) =
            self.precompile_call(abi::MODEL_REGISTRY_ADDRESS, call.abi_encode(), at, limits)?;
        decode_returns::<C>(&ret)
    }

    /// Executes a call of `to` through the node's call path; returns the
    /// output and the gas used.
    fn precompile_call(
        &self,
        to: Address,
        data: Vec<u8>,
        at: BlockId,
        limits: CallLimits,
    ) -> RpcResult<(Bytes, u64)> {
        let req = CallRequest {
            to: Some(to),
            gas: Some(CALL_GAS),
            input: data.into(),
            ..CallRequest::default()
        };
        match self.call_outcome(req, Some(at), limits)? {
            CallOutcome::Success {
                output, gas_used, ..
            } => Ok((output, gas_used)),
            CallOutcome::Revert { output, .. } => Err(RpcError::Reverted {
                reason: describe_revert(&output),
                data: output,
            }),
            CallOutcome::Halt { reason, .. } => {
                Err(RpcError::Halted(format!("execution halted: {reason}")))
            }
        }
    }

    /// Unfinished uploads of `id` whose `UploadProgress` events fall in the
    /// last `max_logs_block_range` blocks up to `at`.
    fn uploads_of(&self, id: B256, at: BlockId) -> RpcResult<Vec<UploadDetails>> {
        let BlockId::Number(BlockNumberOrTag::Number(to)) = at else {
            return Err(RpcError::Evm("block not pinned".into()));
        };
        let range = self.config().max_logs_block_range.max(1);
        let filter = Filter::new()
            .address(abi::MODEL_REGISTRY_ADDRESS)
            .event_signature(IModelRegistry::UploadProgress::SIGNATURE_HASH)
            .topic1(id)
            .from_block(to.saturating_sub(range - 1))
            .to_block(to);
        let mut uploaders: Vec<Address> = Vec::new();
        for log in self.logs(&filter)? {
            if let Some(topic) = log.topics().get(2) {
                let who = Address::from_word(*topic);
                if !uploaders.contains(&who) {
                    uploaders.push(who);
                }
            }
        }
        let mut out = Vec::new();
        for uploader in uploaders {
            let u = self.infera_get_upload(uploader, id, Some(at))?;
            if u.size > U64::ZERO && u.received < u.size {
                out.push(u);
            }
        }
        Ok(out)
    }
}

fn decode_returns<C: SolCall>(ret: &[u8]) -> RpcResult<C::Return> {
    C::abi_decode_returns(ret).map_err(|e| {
        RpcError::Evm(format!(
            "{} returned undecodable data 0x{}: {e}",
            C::SIGNATURE,
            alloy_primitives::hex::encode(ret)
        ))
    })
}

fn dtype_name(tag: u8) -> String {
    match tag {
        0 => "int8".to_string(),
        1 => "int32".to_string(),
        other => format!("tag {other}"),
    }
}

fn details(info: ModelInfo) -> ModelDetails {
    ModelDetails {
        id: info.id,
        registered: true,
        size: Some(U64::from(info.size)),
        uploader: Some(info.uploader),
        block_number: Some(U64::from(info.blockNumber)),
        inference_gas: Some(U64::from(info.inferenceGas)),
        input: Some(TensorDetails {
            dtype: dtype_name(info.inputType),
            shape: info.inputShape,
            bytes: U64::from(info.inputBytes),
        }),
        output: Some(TensorDetails {
            dtype: dtype_name(info.outputType),
            shape: info.outputShape,
            bytes: U64::from(info.outputBytes),
        }),
        uploads: Vec::new(),
    }
}

/// Names a revert of the AI precompiles with its fields, e.g.
/// `InvalidInputLength { id: 0x…, expected: 64, actual: 63 }`, or an
/// `Error(string)` / `Panic(uint256)` revert. `None` for anything else.
pub fn describe_revert(data: &[u8]) -> Option<String> {
    infera_precompiles::describe_revert(data)
        .or_else(|| infera_evm::decode_revert_reason(&Bytes::copy_from_slice(data)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverts_are_named_with_fields() {
        let id = B256::repeat_byte(0xab);
        let data = abi::InvalidInputLength {
            id,
            expected: U256::from(64),
            actual: U256::from(63),
        }
        .abi_encode();
        let text = describe_revert(&data).unwrap();
        assert!(text.starts_with("InvalidInputLength {"), "{text}");
        assert!(
            text.contains("expected: 64") && text.contains("actual: 63"),
            "{text}"
        );

        let text = describe_revert(&abi::WriteInStaticCall {}.abi_encode()).unwrap();
        assert_eq!(text, "WriteInStaticCall");
        let text = describe_revert(
            &abi::MalformedCall {
                reason: "unknown selector 0xdeadbeef".into(),
            }
            .abi_encode(),
        )
        .unwrap();
        assert!(text.contains("unknown selector 0xdeadbeef"), "{text}");
    }

    #[test]
    fn foreign_and_truncated_reverts_are_not_misnamed() {
        assert_eq!(describe_revert(&[]), None);
        assert_eq!(describe_revert(&[1, 2, 3, 4, 5]), None);
        // The right selector with missing fields does not decode.
        let truncated = &abi::InvalidInputLength {
            id: B256::ZERO,
            expected: U256::from(1),
            actual: U256::from(2),
        }
        .abi_encode()[..40];
        assert_eq!(describe_revert(truncated), None);
    }

    #[test]
    fn model_details_shape() {
        let info = ModelInfo {
            id: B256::repeat_byte(1),
            size: 7549,
            uploader: Address::repeat_byte(2),
            blockNumber: 3,
            inferenceGas: 2_100,
            inputType: 0,
            inputShape: vec![1, 1, 8, 8],
            outputType: 1,
            outputShape: vec![1, 10],
            inputBytes: 64,
            outputBytes: 40,
        };
        let v = serde_json::to_value(details(info)).unwrap();
        assert_eq!(v["size"], "0x1d7d");
        assert_eq!(v["registered"], true);
        assert_eq!(v["input"]["dtype"], "int8");
        assert_eq!(v["input"]["shape"], serde_json::json!([1, 1, 8, 8]));
        assert_eq!(v["output"]["dtype"], "int32");
        assert_eq!(v["output"]["bytes"], "0x28");
        assert_eq!(v["blockNumber"], "0x3");
        assert_eq!(v["inferenceGas"], "0x834");
    }
}
