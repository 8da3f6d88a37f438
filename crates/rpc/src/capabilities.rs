//! `eth_capabilities`: what history this node can answer from.

use alloy_primitives::{B256, U64};
use serde::Serialize;

use crate::{RpcContext, RpcError, RpcResult};

/// One part of the node's data and how far back it reaches
/// (`eth_capabilities`).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Capability {
    pub disabled: bool,
    pub oldest_block: U64,
}

/// The head block as `eth_capabilities` names it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct HeadRef {
    pub number: U64,
    pub hash: B256,
}

/// `eth_capabilities`: what history this node can answer from.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Capabilities {
    pub head: HeadRef,
    pub state: Capability,
    pub tx: Capability,
    pub logs: Capability,
    pub receipts: Capability,
    pub blocks: Capability,
    pub stateproofs: Capability,
}

impl RpcContext {
    /// `eth_capabilities`: this node keeps every block, receipt and log and
    /// the state of every block; proofs are served for the head only.
    pub fn capabilities(&self) -> RpcResult<Capabilities> {
        let reader = self.db().reader()?;
        let head = self.head(&reader)?;
        let hash = reader
            .canonical_hash(head)?
            .ok_or_else(|| RpcError::NotFound("head hash missing".into()))?;
        let full = Capability {
            disabled: false,
            oldest_block: U64::ZERO,
        };
        Ok(Capabilities {
            head: HeadRef {
                number: U64::from(head),
                hash,
            },
            state: full.clone(),
            tx: full.clone(),
            logs: full.clone(),
            receipts: full.clone(),
            blocks: full,
            stateproofs: Capability {
                disabled: false,
                oldest_block: U64::from(head),
            },
        })
    }
}
