//! EIP-1186 proofs of the head state verify against the state root, for
//! present and absent accounts and slots.

use crate::{Rng, eoa, temp_db};
use alloy_primitives::{Address, B256, U256, keccak256};
use alloy_rlp::Encodable;
use alloy_trie::{EMPTY_ROOT_HASH, Nibbles, proof::verify_proof};
use infera_primitives::{AccountChange, StateChanges};

#[test]
fn proofs_verify_against_state_root() {
    let (_dir, db) = temp_db();
    let mut rng = Rng::new(0xfeed);
    let addresses: Vec<Address> = (0..40).map(|_| rng.address()).collect();
    let mut changes = StateChanges::default();
    for (i, address) in addresses.iter().enumerate() {
        let mut change = AccountChange {
            info: Some(eoa(i as u64, 1_000 + i as u64)),
            ..Default::default()
        };
        if i % 3 == 0 {
            for s in 0..20u64 {
                change.storage.insert(U256::from(s), U256::from(s * 7 + 1));
            }
        }
        changes.accounts.insert(*address, change);
    }
    let mut w = db.writer().unwrap();
    w.apply_state(0, &changes).unwrap();
    let root = w.state_root().unwrap();
    w.commit().unwrap();

    let reader = db.reader().unwrap();
    let slots = [B256::with_last_byte(3), B256::with_last_byte(99)];
    for (i, address) in addresses.iter().enumerate() {
        let proof = reader.latest_proof(*address, &slots).unwrap();
        let account = proof.account.expect("account exists");
        assert_eq!(account.nonce, i as u64);
        let mut leaf = Vec::new();
        account.encode(&mut leaf);
        verify_proof(
            root,
            Nibbles::unpack(keccak256(address)),
            Some(leaf),
            &proof.account_proof,
        )
        .unwrap();
        assert_eq!(proof.storage_proofs.len(), 2);
        if i % 3 == 0 {
            assert_ne!(account.storage_root, EMPTY_ROOT_HASH);
            assert_eq!(proof.storage_proofs[0].value, U256::from(22));
            assert_eq!(proof.storage_proofs[1].value, U256::ZERO);
        } else {
            assert_eq!(account.storage_root, EMPTY_ROOT_HASH);
            assert!(proof.storage_proofs[0].proof.is_empty());
        }
        for sp in &proof.storage_proofs {
            let expected = (!sp.value.is_zero()).then(|| alloy_rlp::encode(sp.value));
            verify_proof(
                account.storage_root,
                Nibbles::unpack(keccak256(sp.slot)),
                expected,
                &sp.proof,
            )
            .unwrap();
        }
    }

    // An absent account: the proof shows its absence.
    let missing = Address::repeat_byte(0xee);
    let proof = reader.latest_proof(missing, &slots).unwrap();
    assert!(proof.account.is_none());
    verify_proof(
        root,
        Nibbles::unpack(keccak256(missing)),
        None,
        &proof.account_proof,
    )
    .unwrap();
    assert!(proof.storage_proofs.iter().all(|p| p.value.is_zero()));
}
