//! Unlocked dev accounts (`--dev` only): eth_accounts, eth_sendTransaction,
//! eth_signTransaction, eth_sign, personal_sign, eth_signTypedData_v4.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, Signature, U256, eip191_hash_message, keccak256};
use serde_json::{Value, json};

use crate::abi::{self, calldata, u256_of, w};
use crate::http::{Rpc, addr, b256, bytes, hex, qty};
use crate::node::{CHAIN_ID, Node};
use crate::wallet::{DEV_ADDRESSES, Wallet, ether};
use crate::{balance_u, fee_paid};

/// EIP-712's "Ether Mail" example as wallets send it.
fn mail_typed_data() -> Value {
    json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"}
            ],
            "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
            "Mail": [
                {"name": "from", "type": "Person"},
                {"name": "to", "type": "Person"},
                {"name": "contents", "type": "string"}
            ]
        },
        "primaryType": "Mail",
        "domain": {
            "name": "Ether Mail",
            "version": "1",
            "chainId": 1,
            "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"
        },
        "message": {
            "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
            "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
            "contents": "Hello, Bob!"
        }
    })
}

fn signature(v: &Value) -> Signature {
    let raw = bytes(v);
    assert_eq!(raw.len(), 65, "a signature is 65 bytes r ‖ s ‖ v: {v}");
    assert!(raw[64] == 27 || raw[64] == 28, "v is 27 or 28: {v}");
    Signature::try_from(raw.as_slice()).unwrap()
}

fn wait_ok(rpc: &Rpc, hash: B256) -> Value {
    let r = rpc.wait_receipt(hash);
    assert_eq!(r["status"], "0x1", "transaction failed: {r}");
    r
}

#[test]
fn eth_accounts_lists_the_ten_funded_dev_accounts() {
    let node = Node::start();
    let accounts: Vec<Address> =
        serde_json::from_value(node.rpc.ok("eth_accounts", json!([]))).unwrap();
    let expected: Vec<Address> = DEV_ADDRESSES.iter().map(|a| a.parse().unwrap()).collect();
    assert_eq!(accounts, expected);
    for a in accounts {
        assert_eq!(node.rpc.balance(a, "latest"), ether(10_000));
    }
}

#[test]
fn send_transaction_transfer_and_deploy_without_nonce_gas_or_fees() {
    let node = Node::start();
    let rpc = &node.rpc;
    let alice = Wallet::dev(0).address;
    let bob = Wallet::fresh("dev_accounts/bob").address;

    // A plain transfer: only from, to, value.
    let before = balance_u(rpc, alice, "latest");
    let hash = b256(&rpc.ok(
        "eth_sendTransaction",
        json!([{"from": alice, "to": bob, "value": "0xde0b6b3a7640000"}]),
    ));
    let r = wait_ok(rpc, hash);
    assert_eq!(qty(&r["gasUsed"]), 21_000);
    assert_eq!(r["type"], "0x2", "EIP-1559 by default: {r}");
    assert_eq!(addr(&r["from"]), alice);
    assert_eq!(rpc.balance(bob, "latest"), ether(1));
    assert_eq!(
        balance_u(rpc, alice, "latest"),
        before - ether(1) - fee_paid(&r)
    );
    let tx = rpc.tx(hash);
    assert_eq!(qty(&tx["nonce"]), 0);
    assert_eq!(qty(&tx["chainId"]), CHAIN_ID);

    // A deployment: no `to`, no gas, no nonce; the constructor runs.
    let mut code = abi::storage().bytecode;
    code.extend_from_slice(w(42).as_slice());
    let hash = b256(&rpc.ok(
        "eth_sendTransaction",
        json!([{"from": alice, "data": hex(&code)}]),
    ));
    let r = wait_ok(rpc, hash);
    let contract = addr(&r["contractAddress"]);
    assert_eq!(
        contract,
        alice.create(1),
        "second transaction of alice: nonce 1"
    );
    let get = rpc.ok(
        "eth_call",
        json!([{"to": contract, "data": hex(&calldata("get()", &[]))}, "latest"]),
    );
    assert_eq!(u256_of(&bytes(&get)), U256::from(42u64));

    // A call through the contract, legacy pricing because gasPrice is given.
    let hash = b256(&rpc.ok(
        "eth_sendTransaction",
        json!([{"from": alice, "to": contract, "gasPrice": "0x3b9aca00",
                "data": hex(&calldata("set(uint256)", &[w(7)]))}]),
    ));
    let r = wait_ok(rpc, hash);
    assert_eq!(r["type"], "0x0", "{r}");
    let get = rpc.ok(
        "eth_call",
        json!([{"to": contract, "data": hex(&calldata("get()", &[]))}, "latest"]),
    );
    assert_eq!(u256_of(&bytes(&get)), U256::from(7u64));
    assert_eq!(rpc.nonce(alice, "latest"), 3);
}

#[test]
fn send_transaction_back_to_back_uses_pending_nonces() {
    // Block time 2 s: both transactions wait in the pool together.
    let node = Node::start_with_block_time(2);
    let rpc = &node.rpc;
    let from = Wallet::dev(1).address;
    let to = Wallet::fresh("dev_accounts/pending").address;
    let hashes: Vec<B256> = (0..3)
        .map(|_| {
            b256(&rpc.ok(
                "eth_sendTransaction",
                json!([{"from": from, "to": to, "value": "0x1"}]),
            ))
        })
        .collect();
    for (i, hash) in hashes.iter().enumerate() {
        wait_ok(rpc, *hash);
        assert_eq!(qty(&rpc.tx(*hash)["nonce"]), i as u64);
    }
    assert_eq!(rpc.balance(to, "latest"), U256::from(3u64));
}

#[test]
fn sign_transaction_returns_raw_bytes_the_node_accepts() {
    let node = Node::start();
    let rpc = &node.rpc;
    let from = Wallet::dev(2).address;
    let raw = bytes(&rpc.ok(
        "eth_signTransaction",
        json!([{"from": from, "to": from, "value": "0x5"}]),
    ));
    assert_eq!(raw[0], 2, "an EIP-1559 envelope");
    // Signing pooled nothing.
    assert_eq!(rpc.nonce(from, "pending"), 0);
    let hash = rpc.send_raw(&raw).unwrap();
    assert_eq!(hash, keccak256(&raw));
    let r = wait_ok(rpc, hash);
    assert_eq!(addr(&r["from"]), from);
}

#[test]
fn message_signatures_recover_to_the_account() {
    let node = Node::start();
    let rpc = &node.rpc;
    let alice = Wallet::dev(0).address;
    let carol = Wallet::dev(3).address;

    // Known vector: ethers v6 Wallet(key #0).signMessage("hello world").
    let expected = "0xa461f509887bd19e312c0c58467ce8ff8e300d3c1a90b608a760c5b80318eaf15fe57c96f9175d6cd4daad4663763baa7e78836e067d0163e9a2ccf2ff753f5b1b";
    let message = hex(b"hello world");
    assert_eq!(rpc.ok("eth_sign", json!([alice, message])), json!(expected));
    // personal_sign takes (message, address): the order is swapped.
    assert_eq!(
        rpc.ok("personal_sign", json!([message, alice])),
        json!(expected)
    );
    assert_eq!(
        rpc.ok("personal_sign", json!(["hello world", alice, ""])),
        json!(expected),
        "a plain-text message is signed as its UTF-8 bytes"
    );

    let sig = signature(&rpc.ok("personal_sign", json!([hex(b"gm"), carol])));
    assert_eq!(
        sig.recover_address_from_prehash(&eip191_hash_message(b"gm"))
            .unwrap(),
        carol
    );

    // EIP-712: the Mail example, as an object and as a JSON string.
    // Known vector: ethers v6 Wallet(key #0).signTypedData(Mail).
    let expected712 = "0x6ea8bb309a3401225701f3565e32519f94a0ea91a5910ce9229fe488e773584c0390416a2190d9560219dab757ecca2029e63fa9d1c2aebf676cc25b9f03126a1b";
    assert_eq!(
        rpc.ok("eth_signTypedData_v4", json!([alice, mail_typed_data()])),
        json!(expected712)
    );
    assert_eq!(
        rpc.ok(
            "eth_signTypedData_v4",
            json!([alice, mail_typed_data().to_string()])
        ),
        json!(expected712)
    );
    // web3.py's and geth's name for the same method.
    assert_eq!(
        rpc.ok("eth_signTypedData", json!([alice, mail_typed_data()])),
        json!(expected712)
    );
    // The digest EIP-712 states for the example.
    let digest: B256 = "0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"
        .parse()
        .unwrap();
    let sig = signature(&rpc.ok("eth_signTypedData_v4", json!([carol, mail_typed_data()])));
    assert_eq!(sig.recover_address_from_prehash(&digest).unwrap(), carol);
}

#[test]
fn unknown_accounts_and_bad_requests_are_refused_clearly() {
    let node = Node::start();
    let rpc = &node.rpc;
    let stranger = Wallet::fresh("dev_accounts/stranger").address;
    let alice = Wallet::dev(0).address;

    let e = rpc.err(
        "eth_sendTransaction",
        json!([{"from": stranger, "to": alice, "value": "0x1"}]),
    );
    assert_eq!(e.code, -32000, "{e:?}");
    assert!(
        e.message.contains("unknown account") && e.message.contains(&format!("{stranger}")),
        "{e:?}"
    );
    for (method, params) in [
        ("eth_sign", json!([stranger, "0x00"])),
        ("personal_sign", json!(["0x00", stranger])),
        ("eth_signTypedData_v4", json!([stranger, mail_typed_data()])),
        (
            "eth_signTransaction",
            json!([{"from": stranger, "to": alice}]),
        ),
    ] {
        let e = rpc.err(method, params);
        assert!(e.message.contains("unknown account"), "{method}: {e:?}");
    }

    let e = rpc.err(
        "eth_sendTransaction",
        json!([{"to": alice, "value": "0x1"}]),
    );
    assert_eq!(e.code, -32602, "{e:?}");
    assert!(e.message.contains("`from`"), "{e:?}");
    let e = rpc.err(
        "eth_sendTransaction",
        json!([{"from": alice, "to": alice, "gasPrice": "0x1", "maxFeePerGas": "0x2"}]),
    );
    assert_eq!(e.code, -32602, "{e:?}");
    let e = rpc.err(
        "eth_sendTransaction",
        json!([{"from": alice, "value": "not a number"}]),
    );
    assert_eq!(e.code, -32602, "{e:?}");
    let e = rpc.err("eth_signTypedData_v4", json!([alice, {"types": {}}]));
    assert_eq!(e.code, -32602, "{e:?}");
    assert!(e.message.contains("EIP-712"), "{e:?}");

    // The pool's own checks apply: more value than the balance.
    let e = rpc.err(
        "eth_sendTransaction",
        json!([{"from": alice, "to": stranger, "value": hex(&ether(1_000_000).to_be_bytes::<32>()), "gas": "0x5208"}]),
    );
    assert_eq!(e.code, -32000, "{e:?}");
    assert!(e.message.contains("funds"), "{e:?}");
    assert_eq!(rpc.nonce(alice, "pending"), 0, "nothing was pooled");
}

/// On a chain other than the dev chain no key is held, even under `--dev`.
#[test]
fn other_chains_hold_no_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut genesis: Value = serde_json::from_str(infera_chainspec::DEV_GENESIS_JSON).unwrap();
    genesis["config"]["chainId"] = json!(424_242);
    let genesis_path = dir.path().join("genesis.json");
    std::fs::write(&genesis_path, genesis.to_string()).unwrap();
    let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::fs::File::create(dir.path().join("node.log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_infera"))
        .args(["node", "--dev", "--chain"])
        .arg(&genesis_path)
        .arg("--datadir")
        .arg(dir.path().join("data"))
        .args(["--http.addr", "127.0.0.1", "--http.port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let rpc = Rpc::new((Ipv4Addr::LOCALHOST, port).into());
    let deadline = Instant::now() + Duration::from_secs(30);
    let result = loop {
        if let Ok(Ok(id)) = rpc.try_request("eth_chainId", json!([])) {
            assert_eq!(qty(&id), 424_242);
            let accounts = rpc.ok("eth_accounts", json!([]));
            let alice = Wallet::dev(0).address;
            let refused = rpc.err(
                "eth_sendTransaction",
                json!([{"from": alice, "to": alice, "value": "0x1"}]),
            );
            break Ok((accounts, refused));
        }
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            break Err(std::fs::read_to_string(dir.path().join("node.log")).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    let (accounts, refused) = result.unwrap_or_else(|log| panic!("node did not start:\n{log}"));
    assert_eq!(accounts, json!([]));
    assert!(refused.message.contains("holds no keys"), "{refused:?}");
}
