// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {IInferaErrors} from "../IInfera.sol";
import {Infera} from "../Infera.sol";

/// Classifies 8x8 handwritten-digit images with a model registered on chain
/// (kernels/models/digits: int8 input [1, 1, 8, 8], ten logits out), and
/// records every answer. Every node re-runs the inference when it executes
/// the transaction, so the stored label is as final as any other state.
contract DigitClassifier is IInferaErrors {
    struct Classification {
        address who;
        uint8 label;
        uint64 blockNumber;
    }

    /// The model every image is classified with, fixed at deployment.
    bytes32 public immutable modelId;
    /// Classifications made so far; the next request id.
    uint256 public requestCount;
    /// Every classification, by request id (0, 1, ...).
    mapping(uint256 requestId => Classification) public results;

    event Classified(address indexed who, uint256 indexed requestId, uint256 label);

    /// Reverts `UnknownModel(id)` unless `id` is a registered model.
    constructor(bytes32 id) {
        Infera.modelInfo(id);
        modelId = id;
    }

    /// Classifies `image` (the model's int8 input bytes), stores and emits the
    /// label. A wrong-length image reverts `InvalidInputLength` from the
    /// precompile, unchanged.
    function classify(bytes calldata image) external returns (uint256 requestId, uint256 label) {
        label = Infera.inferArgmax(modelId, image);
        requestId = requestCount++;
        results[requestId] = Classification(msg.sender, uint8(label), uint64(block.number));
        emit Classified(msg.sender, requestId, label);
    }

    /// The label an image would get, without a transaction (eth_call).
    function predict(bytes calldata image) external view returns (uint256 label) {
        return Infera.inferArgmax(modelId, image);
    }

    /// The label stored for `requestId`.
    function labelOf(uint256 requestId) external view returns (uint256) {
        return results[requestId].label;
    }
}
