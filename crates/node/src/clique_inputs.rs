//! What the pure Clique rules of `infera-consensus` need from the node and
//! cannot read themselves: the recent headers, from canonical storage or
//! along a side chain, and the local clock.

use std::time::{SystemTime, UNIX_EPOCH};

use alloy_consensus::Header;
use infera_consensus::Clique;
use infera_primitives::{Address, BlockNumber};
use infera_storage::Reader;

use crate::{NodeError, NodeResult};

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The signers of `parent` and the blocks before it, newest first, as many
/// as `clique`'s recent-signer rule needs for `parent`'s child. `parent_of`
/// finds a header's parent: in canonical storage, or along a side chain.
pub(crate) fn recent_signers(
    clique: &Clique,
    parent: &Header,
    mut parent_of: impl FnMut(&Header) -> NodeResult<Header>,
) -> NodeResult<Vec<(BlockNumber, Address)>> {
    let depth = usize::try_from(clique.recent_depth(parent.number)).unwrap_or(usize::MAX);
    let mut headers = Vec::with_capacity(depth);
    if depth > 0 {
        headers.push(parent.clone());
    }
    while let Some(last) = headers.last().filter(|_| headers.len() < depth) {
        let next = parent_of(last)?;
        headers.push(next);
    }
    // Every stored block passed these rules, so a seal that no longer
    // recovers is corruption here, not a peer's fault.
    clique
        .recent_signers(&headers)
        .map_err(|e| NodeError::Invariant(format!("stored {e}")))
}

/// [`recent_signers`] along the canonical chain in `reader`.
pub(crate) fn canonical_recent_signers(
    reader: &Reader,
    clique: &Clique,
    head: &Header,
) -> NodeResult<Vec<(BlockNumber, Address)>> {
    recent_signers(clique, head, |h| {
        let number = h.number - 1;
        reader
            .header(number)?
            .ok_or_else(|| NodeError::Invariant(format!("canonical block {number} has no header")))
    })
}
