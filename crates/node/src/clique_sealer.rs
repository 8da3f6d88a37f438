//! The Clique sealer: produces this authority's blocks in its turn, or as a
//! backup after a delay, when the recent-signer rule lets it.

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use infera_consensus::Clique;
use infera_primitives::{Address, BlockNumber, ChainEvent};
use parking_lot::Mutex;
use tokio::sync::broadcast;
use tracing::{debug, error};

use crate::{
    NodeError, NodeResult,
    builder::CommittedBlock,
    chain::ChainManager,
    clique_inputs::{canonical_recent_signers, unix_now_s},
};

fn unix_now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// Pause after a failed seal, so a persistent fault does not spin.
const SEAL_RETRY_DELAY: Duration = Duration::from_secs(1);

/// How long the sealer sleeps at most before looking at the head again when
/// it may not seal (another signer's turn and the recent-signer rule).
const IDLE_RECHECK: Duration = Duration::from_millis(500);

/// Seals this authority's blocks.
pub(crate) struct CliqueSealer {
    pub manager: Arc<Mutex<ChainManager>>,
    pub clique: Clique,
    pub key: secp256k1::SecretKey,
    pub signer: Address,
    pub events: broadcast::Sender<ChainEvent>,
    /// Where sealed blocks go to be gossiped.
    pub publish: tokio::sync::mpsc::UnboundedSender<CommittedBlock>,
}

impl CliqueSealer {
    pub(crate) async fn run(self) {
        let mut heads = self.events.subscribe();
        loop {
            let plan = {
                let manager = self.manager.clone();
                let clique = self.clique.clone();
                let signer = self.signer;
                tokio::task::spawn_blocking(move || plan_next(&manager, &clique, signer)).await
            };
            let plan = match plan {
                Ok(Ok(plan)) => plan,
                Ok(Err(err)) => {
                    error!(target: "infera::sealer", %err, "cannot plan the next block");
                    tokio::time::sleep(SEAL_RETRY_DELAY).await;
                    continue;
                }
                Err(err) => {
                    error!(target: "infera::sealer", %err, "planning task failed");
                    tokio::time::sleep(SEAL_RETRY_DELAY).await;
                    continue;
                }
            };
            let Some(plan) = plan else {
                // Not allowed to seal the next block: wait for a new head.
                wait_for_head(&mut heads, IDLE_RECHECK).await;
                continue;
            };
            let wait_ms = plan.seal_at_ms.saturating_sub(unix_now_ms());
            let wait = Duration::from_millis(u64::try_from(wait_ms).unwrap_or(u64::MAX));
            if !wait.is_zero() && wait_for_head(&mut heads, wait).await {
                // The head moved while we waited: plan again on the new one.
                continue;
            }
            let manager = self.manager.clone();
            let key = self.key;
            let signer = self.signer;
            let clique = self.clique.clone();
            let sealed = tokio::task::spawn_blocking(move || {
                let mut manager = manager.lock();
                if manager.head().hash != plan.parent_hash {
                    return Ok(None);
                }
                let difficulty = clique.difficulty(plan.number, signer);
                let seal = move |header: &mut alloy_consensus::Header| {
                    header.difficulty = difficulty;
                    header.nonce = Default::default();
                    infera_consensus::sign_header(header, &key)
                        .map(|_| ())
                        .map_err(|e| NodeError::Invariant(format!("cannot sign block: {e}")))
                };
                manager.seal_next(signer, plan.timestamp_s, &seal).map(Some)
            })
            .await;
            match sealed {
                Ok(Ok(Some(committed))) => {
                    crate::sealer::log_sealed(&committed.block);
                    let _ = self.publish.send(committed);
                }
                Ok(Ok(None)) => debug!(target: "infera::sealer", "head moved before sealing"),
                Ok(Err(err)) => {
                    error!(target: "infera::sealer", %err, "sealing failed; retrying");
                    tokio::time::sleep(SEAL_RETRY_DELAY).await;
                }
                Err(err) => {
                    error!(target: "infera::sealer", %err, "sealing task failed");
                    tokio::time::sleep(SEAL_RETRY_DELAY).await;
                }
            }
        }
    }
}

/// When and on what the next block would be sealed.
#[derive(Clone, Copy, Debug)]
struct Plan {
    number: BlockNumber,
    parent_hash: infera_primitives::B256,
    timestamp_s: u64,
    /// Wall-clock time to seal at, in Unix milliseconds.
    seal_at_ms: u128,
}

/// The next block's plan, or `None` if `signer` may not seal it.
fn plan_next(
    manager: &Mutex<ChainManager>,
    clique: &Clique,
    signer: Address,
) -> NodeResult<Option<Plan>> {
    let manager = manager.lock();
    let head = manager.head();
    let reader = manager.db().reader()?;
    let parent = reader
        .header(head.number)?
        .ok_or_else(|| NodeError::Invariant(format!("head block {} has no header", head.number)))?;
    let number = head.number + 1;
    let recent = canonical_recent_signers(&reader, clique, &parent)?;
    if !clique.may_seal(number, signer, &recent) {
        return Ok(None);
    }
    let timestamp_s = clique.earliest_timestamp(&parent).max(unix_now_s());
    let delay = clique.seal_delay(number, signer).unwrap_or_default();
    Ok(Some(Plan {
        number,
        parent_hash: head.hash,
        timestamp_s,
        seal_at_ms: u128::from(timestamp_s) * 1000 + delay.as_millis(),
    }))
}

/// Waits up to `timeout` for a new canonical block; true if one came.
async fn wait_for_head(heads: &mut broadcast::Receiver<ChainEvent>, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, heads.recv()).await {
            Err(_) => return false,
            Ok(Ok(ChainEvent::NewBlock { .. })) => return true,
            Ok(Ok(_)) => {}
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => return true,
            Ok(Err(broadcast::error::RecvError::Closed)) => return false,
        }
    }
}

/// The address of an authority key.
pub fn address_of_key(key: &secp256k1::SecretKey) -> Address {
    let public = secp256k1::PublicKey::from_secret_key_global(key);
    infera_chainspec::address_of_public_key(&public.serialize_uncompressed())
}
