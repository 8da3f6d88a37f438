use alloy_primitives::{Address, U256};
use serde_json::json;

use crate::abi::{
    self, calldata, decode_error_string, error_string, mapping_slot, selector, topic, u256_of, w,
    w256, wa,
};
use crate::http::{addr, b256, bytes, hex, q, qty, qty_u128};
use crate::node::Node;
use crate::wallet::{Wallet, ether};
use crate::{block_of, deploy, fee_paid, send_and_wait, send_ok};

/// Storage(42) creation code.
fn storage_code(initial: u64) -> Vec<u8> {
    let mut code = abi::storage().bytecode;
    code.extend_from_slice(w(initial).as_slice());
    code
}

#[test]
fn deploy_and_call_storage_contract() {
    let node = Node::start();
    let rpc = &node.rpc;
    let art = abi::storage();
    assert!(
        art.has("function", "set")
            && art.has("event", "ValueChanged")
            && art.has("error", "Unauthorized")
    );
    let alice = Wallet::dev(0);

    // eth_estimateGas for a deployment, used as the gas limit.
    let est = qty(&rpc.ok(
        "eth_estimateGas",
        json!([{"from": alice.address, "data": hex(&storage_code(42))}]),
    ));
    assert!(
        est > 53_000,
        "creation costs more than 53000 gas, estimate {est}"
    );
    let (c, r) = deploy(rpc, &alice, 0, storage_code(42), est);
    assert!(qty(&r["gasUsed"]) <= est);
    let deploy_block = block_of(&r);

    assert_eq!(
        rpc.code(c, "latest"),
        art.deployed,
        "eth_getCode == deployedBytecode"
    );
    assert_eq!(
        rpc.code(c, q(deploy_block - 1)),
        Vec::<u8>::new(),
        "no code before deployment"
    );
    assert_eq!(rpc.storage(c, w(0), "latest"), w(42), "slot 0 = value");
    assert_eq!(
        rpc.storage(c, w(1), "latest"),
        wa(alice.address),
        "slot 1 = owner"
    );
    assert_eq!(
        u256_of(
            &rpc.call(alice.address, c, &calldata("get()", &[]), "latest")
                .unwrap()
        ),
        U256::from(42)
    );
    assert_eq!(
        addr(&json!(hex(&rpc
            .call(alice.address, c, &calldata("owner()", &[]), "latest")
            .unwrap()[12..]))),
        alice.address
    );

    // Write: set(7) with eth_estimateGas as the gas limit.
    let data = calldata("set(uint256)", &[w(7)]);
    let est = qty(&rpc.ok(
        "eth_estimateGas",
        json!([{"from": alice.address, "to": c, "data": hex(&data)}]),
    ));
    assert!(est > 21_000 && est < 200_000, "estimate for set(7): {est}");
    let r = send_ok(rpc, &alice.tx(1, Some(c), U256::ZERO, data, est));
    assert!(qty(&r["gasUsed"]) <= est);
    let set_block = block_of(&r);
    assert_eq!(
        u256_of(
            &rpc.call(alice.address, c, &calldata("get()", &[]), "latest")
                .unwrap()
        ),
        U256::from(7)
    );
    assert_eq!(rpc.storage(c, w(0), "latest"), w(7));
    assert_eq!(
        rpc.storage(c, mapping_slot(wa(alice.address), 2), "latest"),
        w(1),
        "writes[alice] = 1"
    );
    let logs = r["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(addr(&logs[0]["address"]), c);
    assert_eq!(
        logs[0]["topics"],
        json!([
            topic("ValueChanged(address,uint256,uint256)"),
            wa(alice.address),
            w(7)
        ])
    );
    assert_eq!(bytes(&logs[0]["data"]), w(42).to_vec(), "data = old value");

    // History: eth_call and eth_getStorageAt at the deployment block still see 42.
    let at_deploy = q(deploy_block);
    assert_eq!(
        u256_of(
            &rpc.call(
                alice.address,
                c,
                &calldata("get()", &[]),
                at_deploy.as_str()
            )
            .unwrap()
        ),
        U256::from(42)
    );
    assert_eq!(rpc.storage(c, w(0), at_deploy.as_str()), w(42));
    assert_eq!(rpc.storage(c, w(0), q(set_block)), w(7));
    assert_eq!(
        rpc.storage(c, mapping_slot(wa(alice.address), 2), at_deploy.as_str()),
        w(0)
    );
    // eth_call before the contract existed returns empty output.
    assert_eq!(
        rpc.call(
            alice.address,
            c,
            &calldata("get()", &[]),
            q(deploy_block - 1)
        )
        .unwrap(),
        Vec::<u8>::new()
    );

    // Pure function through eth_call.
    assert_eq!(
        u256_of(
            &rpc.call(
                alice.address,
                c,
                &calldata("checkValue(uint256)", &[w(5)]),
                "latest"
            )
            .unwrap()
        ),
        U256::from(10)
    );
}

#[test]
fn erc20_deploy_and_transfer() {
    let node = Node::start();
    let rpc = &node.rpc;
    let art = abi::erc20();
    let alice = Wallet::dev(0);
    let bob = Wallet::fresh("erc20/bob");
    let supply = ether(1_000_000_000);

    let (t, r) = deploy(rpc, &alice, 0, art.bytecode.clone(), 2_000_000);
    assert_eq!(rpc.code(t, "latest"), art.deployed);
    let logs = r["logs"].as_array().unwrap();
    assert_eq!(
        logs.len(),
        1,
        "constructor emits Transfer(0, deployer, supply)"
    );
    let transfer_topic = topic("Transfer(address,address,uint256)");
    assert_eq!(
        logs[0]["topics"],
        json!([transfer_topic, wa(Address::ZERO), wa(alice.address)])
    );
    assert_eq!(bytes(&logs[0]["data"]), w256(supply).to_vec());

    let bal = |who: Address| {
        u256_of(
            &rpc.call(
                who,
                t,
                &calldata("balanceOf(address)", &[wa(who)]),
                "latest",
            )
            .unwrap(),
        )
    };
    assert_eq!(bal(alice.address), supply);
    assert_eq!(
        u256_of(
            &rpc.call(alice.address, t, &calldata("totalSupply()", &[]), "latest")
                .unwrap()
        ),
        supply
    );
    assert_eq!(
        u256_of(
            &rpc.call(alice.address, t, &calldata("decimals()", &[]), "latest")
                .unwrap()
        ),
        U256::from(18)
    );

    let amount = U256::from(1_000_000u64);
    let data = calldata(
        "transfer(address,uint256)",
        &[wa(bob.address), w256(amount)],
    );
    let ret = rpc.call(alice.address, t, &data, "latest").unwrap();
    assert_eq!(ret, w(1).to_vec(), "transfer returns true");
    let est = qty(&rpc.ok(
        "eth_estimateGas",
        json!([{"from": alice.address, "to": t, "data": hex(&data)}]),
    ));
    let r = send_ok(rpc, &alice.tx(1, Some(t), U256::ZERO, data, est));
    let logs = r["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(addr(&logs[0]["address"]), t);
    assert_eq!(
        logs[0]["topics"],
        json!([transfer_topic, wa(alice.address), wa(bob.address)])
    );
    assert_eq!(bytes(&logs[0]["data"]), w256(amount).to_vec());
    assert_eq!(bal(bob.address), amount);
    assert_eq!(bal(alice.address), supply - amount);
    // balanceOf is slot 1.
    assert_eq!(
        rpc.storage(t, mapping_slot(wa(bob.address), 1), "latest"),
        w256(amount)
    );
}

#[test]
fn reverts_in_calls_and_transactions() {
    let node = Node::start();
    let rpc = &node.rpc;
    let alice = Wallet::dev(3);
    let (c, _) = deploy(rpc, &alice, 0, storage_code(1), 1_000_000);

    // require(..., "reason") -> code 3, data = Error(string), message carries the reason.
    let data = calldata("checkValue(uint256)", &[w(100)]);
    let e = rpc.call(alice.address, c, &data, "latest").unwrap_err();
    assert_eq!(e.code, 3, "revert error code: {e:?}");
    assert_eq!(e.message, "execution reverted: Storage: value too large");
    let revert = bytes(e.data.as_ref().expect("revert data"));
    assert_eq!(revert, error_string("Storage: value too large"));
    assert_eq!(
        decode_error_string(&revert).as_deref(),
        Some("Storage: value too large")
    );

    // Custom error -> code 3, data = selector ++ abi-encoded args.
    let e = rpc
        .call(
            alice.address,
            c,
            &calldata("failCustom(uint256)", &[w(7)]),
            "latest",
        )
        .unwrap_err();
    assert_eq!(e.code, 3, "custom error code: {e:?}");
    assert!(
        e.message.starts_with("execution reverted"),
        "message: {}",
        e.message
    );
    let mut expected = selector("Unauthorized(address,uint256)").to_vec();
    expected.extend_from_slice(wa(alice.address).as_slice());
    expected.extend_from_slice(w(7).as_slice());
    assert_eq!(bytes(e.data.as_ref().expect("custom error data")), expected);

    // eth_estimateGas of a reverting call fails with the revert.
    let e = rpc.err(
        "eth_estimateGas",
        json!([{"from": alice.address, "to": c, "data": hex(&calldata("set(uint256)", &[w(13)]))}]),
    );
    assert!(
        e.message.contains("execution reverted"),
        "estimateGas revert: {e:?}"
    );
    if e.code == 3 {
        assert_eq!(
            bytes(e.data.as_ref().unwrap()),
            error_string("Storage: unlucky number")
        );
    }

    // A reverting transaction is mined with status 0, pays for its gas, changes no state.
    let before = rpc.balance(alice.address, "latest");
    let gas = 100_000;
    let r = send_and_wait(
        rpc,
        &alice.tx(
            1,
            Some(c),
            U256::ZERO,
            calldata("set(uint256)", &[w(13)]),
            gas,
        ),
    );
    assert_eq!(r["status"], "0x0", "reverted tx must have status 0: {r}");
    assert_eq!(r["logs"], json!([]));
    let used = qty(&r["gasUsed"]);
    assert!(
        used > 21_000 && used < gas,
        "a require() revert refunds unused gas: used {used}"
    );
    assert_eq!(rpc.balance(alice.address, "latest"), before - fee_paid(&r));
    assert_eq!(rpc.nonce(alice.address, "latest"), 2);
    assert_eq!(
        rpc.storage(c, w(0), "latest"),
        w(1),
        "state unchanged by the reverted tx"
    );
    let block = rpc.block(q(block_of(&r)), false);
    assert_eq!(block["transactions"], json!([r["transactionHash"]]));
    assert_eq!(b256(&r["blockHash"]), b256(&block["hash"]));
    assert!(qty_u128(&r["effectiveGasPrice"]) > 0);
}

#[test]
fn estimate_gas() {
    let node = Node::start();
    let rpc = &node.rpc;
    let alice = Wallet::dev(0);
    let bob = Wallet::fresh("estimate/bob");

    // Plain transfers cost exactly 21000, with or without value, to fresh or funded accounts.
    for params in [
        json!([{"from": alice.address, "to": bob.address, "value": "0xde0b6b3a7640000"}]),
        json!([{"from": alice.address, "to": bob.address}]),
        json!([{"from": alice.address, "to": Wallet::dev(1).address, "value": "0x1"}, "latest"]),
    ] {
        assert_eq!(
            rpc.ok("eth_estimateGas", params.clone()),
            json!("0x5208"),
            "eth_estimateGas({params})"
        );
    }

    // Contract call: the estimate is a sufficient gas limit.
    let (c, _) = deploy(rpc, &alice, 0, storage_code(0), 1_000_000);
    for (nonce, v) in [(1u64, 5u64), (2, 6)] {
        let data = calldata("set(uint256)", &[w(v)]);
        let est = qty(&rpc.ok(
            "eth_estimateGas",
            json!([{"from": alice.address, "to": c, "data": hex(&data)}]),
        ));
        let r = send_ok(rpc, &alice.tx(nonce, Some(c), U256::ZERO, data, est));
        let used = qty(&r["gasUsed"]);
        assert!(used <= est, "used {used} > estimate {est}");
    }
    assert_eq!(rpc.storage(c, w(0), "latest"), w(6));

    // An unfunded sender cannot move value.
    let e = rpc.err(
        "eth_estimateGas",
        json!([{"from": bob.address, "to": alice.address, "value": "0xde0b6b3a7640000"}]),
    );
    assert!(
        e.message.to_lowercase().contains("insufficient funds"),
        "{e:?}"
    );
}
