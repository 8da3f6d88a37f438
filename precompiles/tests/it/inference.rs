//! The inference precompile: output equals the engine's, STATICCALL, gas
//! charged before work, typed errors, and models surviving a restart.

use alloy_primitives::{B256, Bytes, U256, keccak256};
use alloy_sol_types::{SolCall, SolError};
use infera_evm::CallOutcome;
use infera_kernels::Model;
use infera_precompiles::{abi::*, gas};

use crate::{
    common::{DIGITS, DevChain, KEY, Via, address_of, digit, forwarder},
    registry::{model_info, register_digits},
};

fn infer(id: B256, input: &[u8]) -> Bytes {
    IInference::inferCall {
        id,
        input: Bytes::copy_from_slice(input),
    }
    .abi_encode()
    .into()
}

fn infer_argmax(id: B256, input: &[u8]) -> Bytes {
    IInference::inferArgmaxCall {
        id,
        input: Bytes::copy_from_slice(input),
    }
    .abi_encode()
    .into()
}

#[test]
fn inference_matches_the_engine_on_real_digits() {
    let mut chain = DevChain::new();
    let id = register_digits(&mut chain);
    let model = Model::decode(DIGITS).unwrap();
    let mut correct = 0;
    for index in 0..10 {
        let (input, label) = digit(index);
        let expected = model.run(&input).unwrap();
        let out = chain.call_ok(INFERENCE_ADDRESS, infer(id, &input));
        let output = IInference::inferCall::abi_decode_returns(&out).unwrap();
        assert_eq!(output.as_ref(), expected.as_slice(), "digit {index}");
        let out = chain.call_ok(INFERENCE_ADDRESS, infer_argmax(id, &input));
        let top = IInference::inferArgmaxCall::abi_decode_returns(&out).unwrap();
        let want = infera_precompiles::argmax(model.output_spec().dtype, &expected);
        assert_eq!(top, U256::from(want));
        correct += usize::from(want as i64 == label);
    }
    assert!(correct >= 9, "{correct}/10 digits right");
}

#[test]
fn inference_through_staticcall_from_a_contract_and_in_a_transaction() {
    let mut chain = DevChain::new();
    let id = register_digits(&mut chain);
    let (input, _) = digit(0);
    let expected = Model::decode(DIGITS).unwrap().run(&input).unwrap();
    let fwd = chain.deploy(&forwarder(INFERENCE_ADDRESS, Via::StaticCall, false));
    let out = chain.call_ok(fwd, infer(id, &input));
    assert_eq!(
        IInference::inferCall::abi_decode_returns(&out)
            .unwrap()
            .as_ref(),
        expected.as_slice()
    );
    // The typed error reaches the calling contract as revert data.
    let revert = chain.call_revert(fwd, infer(id, &input[..10]));
    assert_eq!(
        InvalidInputLength::abi_decode(&revert).unwrap(),
        InvalidInputLength {
            id,
            expected: U256::from(64),
            actual: U256::from(10)
        }
    );
    // Inference in a mined transaction.
    let receipt = chain.transact(KEY, fwd, infer(id, &input), 1_000_000);
    assert!(receipt.status());
}

fn intrinsic(data: &[u8]) -> u64 {
    21_000
        + data
            .iter()
            .map(|b| if *b == 0 { 4 } else { 16 })
            .sum::<u64>()
}

#[test]
fn gas_is_charged_up_front_and_exactly() {
    let mut chain = DevChain::new();
    let id = register_digits(&mut chain);
    let info = model_info(&chain, id);
    let (input, _) = digit(1);
    let data = infer(id, &input);
    let need = gas::inference_call_gas(
        info.inferenceGas,
        u64::from(info.inputBytes),
        u64::from(info.outputBytes),
    );
    let exact = intrinsic(&data) + need;
    let from = address_of(KEY);
    match chain.call_with(from, INFERENCE_ADDRESS, data.clone(), Some(exact)) {
        CallOutcome::Success { gas_used, .. } => assert_eq!(gas_used, exact),
        other => panic!("{other:?}"),
    }
    // One gas short: an out-of-gas halt that uses all gas, not a revert.
    match chain.call_with(from, INFERENCE_ADDRESS, data.clone(), Some(exact - 1)) {
        CallOutcome::Halt { reason, gas_used } => {
            assert!(reason.contains("OutOfGas"), "{reason}");
            assert_eq!(gas_used, exact - 1);
        }
        other => panic!("{other:?}"),
    }
    // Failures before the run are charged the base only.
    let bad = infer(id, &input[..63]);
    match chain.call_with(from, INFERENCE_ADDRESS, bad.clone(), None) {
        CallOutcome::Revert { gas_used, .. } => {
            assert_eq!(gas_used, intrinsic(&bad) + gas::INFER_BASE_GAS)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn typed_errors_of_inference() {
    let mut chain = DevChain::new();
    let unknown = B256::repeat_byte(0xee);
    let revert = chain.call_revert(INFERENCE_ADDRESS, infer(unknown, &[0; 64]));
    assert_eq!(
        UnknownModel::abi_decode(&revert).unwrap(),
        UnknownModel { id: unknown }
    );
    let revert = chain.call_revert(INFERENCE_ADDRESS, Bytes::from_static(b"\x01\x02"));
    assert!(MalformedCall::abi_decode(&revert).is_ok());
    let id = register_digits(&mut chain);
    let revert = chain.call_revert(INFERENCE_ADDRESS, infer(id, &[0; 65]));
    assert_eq!(
        InvalidInputLength::abi_decode(&revert).unwrap(),
        InvalidInputLength {
            id,
            expected: U256::from(64),
            actual: U256::from(65)
        }
    );
    // The revert data also reads as text for tools.
    assert!(
        infera_precompiles::describe_revert(&revert)
            .unwrap()
            .contains("InvalidInputLength")
    );
}

#[test]
fn a_model_survives_a_restart_and_stays_in_the_state_root() {
    let mut chain = DevChain::new();
    let id = register_digits(&mut chain);
    let (input, _) = digit(2);
    let before = chain.call_ok(INFERENCE_ADDRESS, infer(id, &input));
    let root = {
        let reader = chain.db().reader().unwrap();
        let head = reader.head_number().unwrap().unwrap();
        reader.header(head).unwrap().unwrap().state_root
    };
    chain.reopen();
    assert!(chain.models.is_empty());
    // Decoded from the model account's code in storage.
    assert_eq!(chain.call_ok(INFERENCE_ADDRESS, infer(id, &input)), before);
    assert_eq!(model_info(&chain, id).size as usize, DIGITS.len());
    // The model is part of the state the root commits: a new block on top
    // recomputes the root from storage and gets the same one.
    let next = chain.seal();
    assert_eq!(next.block.header.state_root, root);
    assert_eq!(keccak256(DIGITS), id);
}
