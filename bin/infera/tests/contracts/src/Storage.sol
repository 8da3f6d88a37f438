// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// Test contract for the infera end-to-end suite.
/// Storage layout (asserted by the tests): slot 0 = value, slot 1 = owner, slot 2 = writes mapping.
contract Storage {
    uint256 public value;
    address public owner;
    mapping(address => uint256) public writes;

    event ValueChanged(address indexed setter, uint256 indexed newValue, uint256 oldValue);

    error Unauthorized(address caller, uint256 code);

    constructor(uint256 initial) {
        value = initial;
        owner = msg.sender;
    }

    /// Stores `v`, emits ValueChanged. Reverts with "Storage: unlucky number" for v == 13.
    function set(uint256 v) external {
        require(v != 13, "Storage: unlucky number");
        uint256 old = value;
        value = v;
        writes[msg.sender] += 1;
        emit ValueChanged(msg.sender, v, old);
    }

    function get() external view returns (uint256) {
        return value;
    }

    /// Returns v * 2; reverts with Error("Storage: value too large") when v >= 100.
    function checkValue(uint256 v) external pure returns (uint256) {
        require(v < 100, "Storage: value too large");
        return v * 2;
    }

    /// Always reverts with the custom error Unauthorized(msg.sender, code).
    function failCustom(uint256 code) external view {
        revert Unauthorized(msg.sender, code);
    }
}
