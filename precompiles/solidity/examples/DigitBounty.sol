// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {IInferaErrors, ModelInfo} from "../IInfera.sol";
import {Infera} from "../Infera.sol";

/// Pays `reward` wei to whoever submits an image that the model classifies as
/// `targetDigit`, once per distinct image (by keccak256 of its bytes). The
/// model's answer moves money: every node re-runs the inference, so no one
/// can claim with an image the model does not label `targetDigit`.
///
/// An example, not a design for real stakes: two images that differ by one
/// pixel are distinct, so a rich bounty would be drained by near-copies.
contract DigitBounty is IInferaErrors {
    bytes32 public immutable modelId;
    uint256 public immutable targetDigit;
    uint256 public immutable reward;
    address public immutable sponsor;
    /// Who was paid for an image, by its hash.
    mapping(bytes32 imageHash => address) public claimedBy;

    event BountyPaid(address indexed winner, bytes32 indexed imageHash, uint256 label, uint256 reward);

    /// The model labelled the image `label`, not the target digit.
    error WrongDigit(uint256 expected, uint256 label);
    /// This image has already been paid for.
    error AlreadyClaimed(bytes32 imageHash, address winner);
    /// The contract holds less than one reward.
    error BountyExhausted(uint256 balance, uint256 reward);
    /// The target is not an output index of the model.
    error TargetOutOfRange(uint256 targetDigit, uint256 outputs);
    /// Only the sponsor may withdraw what is left.
    error NotSponsor(address caller);
    /// Sending ETH failed.
    error TransferFailed(address to, uint256 amount);

    /// Funded with the value sent; reverts `UnknownModel(id)` for an
    /// unregistered model and `TargetOutOfRange` for a digit the model cannot
    /// output.
    constructor(bytes32 id, uint256 target, uint256 rewardWei) payable {
        ModelInfo memory info = Infera.modelInfo(id);
        uint256 outputs = 1;
        for (uint256 i = 0; i < info.outputShape.length; i++) {
            outputs *= info.outputShape[i];
        }
        if (target >= outputs) revert TargetOutOfRange(target, outputs);
        modelId = id;
        targetDigit = target;
        reward = rewardWei;
        sponsor = msg.sender;
    }

    /// Pays the reward to the caller if the model labels `image` as the target.
    function claim(bytes calldata image) external returns (uint256 label) {
        bytes32 imageHash = keccak256(image);
        address winner = claimedBy[imageHash];
        if (winner != address(0)) revert AlreadyClaimed(imageHash, winner);
        label = Infera.inferArgmax(modelId, image);
        if (label != targetDigit) revert WrongDigit(targetDigit, label);
        if (address(this).balance < reward) revert BountyExhausted(address(this).balance, reward);
        // Effects before the transfer: a re-entrant claim of the same image fails.
        claimedBy[imageHash] = msg.sender;
        emit BountyPaid(msg.sender, imageHash, label, reward);
        (bool ok,) = msg.sender.call{value: reward}("");
        if (!ok) revert TransferFailed(msg.sender, reward);
    }

    /// The sponsor takes back what is left.
    function withdraw() external {
        if (msg.sender != sponsor) revert NotSponsor(msg.sender);
        uint256 amount = address(this).balance;
        (bool ok,) = sponsor.call{value: amount}("");
        if (!ok) revert TransferFailed(sponsor, amount);
    }

    /// Anyone may top the bounty up.
    receive() external payable {}
}
