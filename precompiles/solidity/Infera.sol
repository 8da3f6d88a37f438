// SPDX-License-Identifier: MIT OR Apache-2.0
// Typed wrappers around the AI precompiles for contracts to call.
pragma solidity ^0.8.24;

import {INFERENCE, MODEL_REGISTRY, IInference, IModelRegistry, ModelInfo} from "./IInfera.sol";

/// Calls the inference and registry precompiles with STATICCALL. A failing
/// call re-reverts with the precompile's revert data unchanged, so the caller
/// (and its caller, up to the wallet) sees the typed error, e.g.
/// `InvalidInputLength(id, 64, 63)`, and can match it by selector.
library Infera {
    /// Dtype tags of `ModelInfo.inputType` / `outputType`.
    uint8 internal constant INT8 = 0;
    uint8 internal constant INT32 = 1;

    /// The precompile at `precompile` returned nothing: the chain this contract
    /// runs on has no AI precompiles (a call to an empty account succeeds
    /// with empty return data, which would otherwise decode as garbage).
    error PrecompileUnavailable(address precompile);
    /// An output index past the end of the tensor.
    error OutputIndexOutOfRange(uint256 index, uint256 length);

    /// Runs model `id` on `input`; returns the output tensor's bytes.
    function infer(bytes32 id, bytes memory input) internal view returns (bytes memory output) {
        bytes memory ret = _staticcall(INFERENCE, abi.encodeCall(IInference.infer, (id, input)));
        return abi.decode(ret, (bytes));
    }

    /// Runs model `id` on `input`; returns the index of the largest output
    /// element (the first one on ties): the label of a classifier.
    function inferArgmax(bytes32 id, bytes memory input) internal view returns (uint256 label) {
        bytes memory ret = _staticcall(INFERENCE, abi.encodeCall(IInference.inferArgmax, (id, input)));
        return abi.decode(ret, (uint256));
    }

    /// Details of registered model `id`; reverts `UnknownModel(id)` otherwise.
    function modelInfo(bytes32 id) internal view returns (ModelInfo memory info) {
        bytes memory ret = _staticcall(MODEL_REGISTRY, abi.encodeCall(IModelRegistry.modelInfo, (id)));
        return abi.decode(ret, (ModelInfo));
    }

    /// Whether `id` is a registered model (never reverts for an unknown one).
    function isRegistered(bytes32 id) internal view returns (bool) {
        (bool ok, bytes memory ret) = MODEL_REGISTRY.staticcall(abi.encodeCall(IModelRegistry.modelInfo, (id)));
        return ok && ret.length > 0;
    }

    /// Element `i` of an int8 output tensor.
    function int8At(bytes memory output, uint256 i) internal pure returns (int8) {
        if (i >= output.length) revert OutputIndexOutOfRange(i, output.length);
        return int8(uint8(output[i]));
    }

    /// Element `i` of an int32 output tensor (little-endian, as the precompile returns it).
    function int32At(bytes memory output, uint256 i) internal pure returns (int32) {
        uint256 count = output.length / 4;
        if (i >= count) revert OutputIndexOutOfRange(i, count);
        uint256 o = i * 4;
        uint32 v = uint32(uint8(output[o])) | (uint32(uint8(output[o + 1])) << 8)
            | (uint32(uint8(output[o + 2])) << 16) | (uint32(uint8(output[o + 3])) << 24);
        return int32(v);
    }

    /// STATICCALL that bubbles a revert unchanged and refuses an empty answer.
    function _staticcall(address precompile, bytes memory data) private view returns (bytes memory ret) {
        bool ok;
        (ok, ret) = precompile.staticcall(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 32), mload(ret))
            }
        }
        if (ret.length == 0) revert PrecompileUnavailable(precompile);
    }
}
