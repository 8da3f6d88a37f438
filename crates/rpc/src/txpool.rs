//! geth's `txpool_` namespace: what the pool holds, by sender and nonce.

use std::collections::BTreeMap;

use alloy_primitives::{Address, U64};
use alloy_rpc_types_eth::Transaction;
use infera_primitives::RecoveredTx;
use serde::Serialize;

use crate::{RpcContext, convert};

/// `txpool_status`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct TxPoolStatus {
    pub pending: U64,
    pub queued: U64,
}

/// `txpool_content`: sender -> nonce -> transaction, as geth answers.
#[derive(Clone, Debug, Serialize, Default)]
pub struct TxPoolContent {
    pub pending: BTreeMap<String, BTreeMap<String, Transaction>>,
    pub queued: BTreeMap<String, BTreeMap<String, Transaction>>,
}

/// `txpool_contentFrom`: nonce -> transaction of one sender.
#[derive(Clone, Debug, Serialize, Default)]
pub struct TxPoolContentFrom {
    pub pending: BTreeMap<String, Transaction>,
    pub queued: BTreeMap<String, Transaction>,
}

fn nonce_map(txs: Vec<RecoveredTx>) -> BTreeMap<Address, BTreeMap<String, Transaction>> {
    let mut out: BTreeMap<Address, BTreeMap<String, Transaction>> = BTreeMap::new();
    for tx in txs {
        use alloy_consensus::Transaction as _;
        out.entry(tx.sender).or_default().insert(
            tx.tx.nonce().to_string(),
            convert::rpc_transaction(&tx, None),
        );
    }
    out
}

impl RpcContext {
    /// `txpool_status`.
    pub fn txpool_status(&self) -> TxPoolStatus {
        let pool = self.pool().lock();
        TxPoolStatus {
            pending: U64::from(pool.pending_count()),
            queued: U64::from(pool.queued_count()),
        }
    }

    /// `txpool_content`.
    pub fn txpool_content(&self) -> TxPoolContent {
        let (pending, queued) = {
            let pool = self.pool().lock();
            (pool.all_pending(), pool.all_queued())
        };
        let keyed = |txs| {
            nonce_map(txs)
                .into_iter()
                .map(|(a, m)| (a.to_checksum(None), m))
                .collect()
        };
        TxPoolContent {
            pending: keyed(pending),
            queued: keyed(queued),
        }
    }

    /// `txpool_contentFrom`.
    pub fn txpool_content_from(&self, address: Address) -> TxPoolContentFrom {
        let (pending, queued) = {
            let pool = self.pool().lock();
            (pool.all_pending(), pool.all_queued())
        };
        let of = |txs: Vec<RecoveredTx>| {
            nonce_map(txs.into_iter().filter(|tx| tx.sender == address).collect())
                .remove(&address)
                .unwrap_or_default()
        };
        TxPoolContentFrom {
            pending: of(pending),
            queued: of(queued),
        }
    }
}
