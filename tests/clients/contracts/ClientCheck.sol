// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// The contract every client-compatibility script deploys: a constructor argument,
/// state to read and write, an indexed event, a `require` revert with a reason
/// string and a revert with a custom error.
contract ClientCheck {
    error Unauthorized(address caller, uint256 code);

    event Stored(address indexed from, uint256 indexed value, string note);

    address public immutable owner;
    uint256 public value;
    string public note;

    constructor(uint256 initial) {
        owner = msg.sender;
        value = initial;
    }

    /// Writes `v` and emits `Stored`.
    function store(uint256 v, string calldata n) external {
        value = v;
        note = n;
        emit Stored(msg.sender, v, n);
    }

    /// Reverts with `Error(string)` unless `v` is below 10.
    function checkSmall(uint256 v) external pure returns (uint256) {
        require(v < 10, "value too large");
        return v * 2;
    }

    /// Writes `v`, but only for the deployer; anyone else gets `Unauthorized(caller, 7)`.
    function ownerStore(uint256 v) external {
        if (msg.sender != owner) revert Unauthorized(msg.sender, 7);
        value = v;
        emit Stored(msg.sender, v, "owner");
    }
}
