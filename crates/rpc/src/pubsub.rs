//! `eth_subscribe`: `newHeads`, `logs` and `newPendingTransactions`, fed by the
//! node's chain events. A subscriber that falls behind the event channel's
//! capacity misses events rather than slowing the node.

use alloy_rpc_types_eth::{Filter, Header as RpcHeader};
use infera_primitives::ChainEvent;
use jsonrpsee::{
    PendingSubscriptionSink, SubscriptionMessage, core::SubscriptionResult, types::ErrorObjectOwned,
};
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

use crate::{INVALID_PARAMS_CODE, RpcContext, eth::collect_block_logs};

enum Kind {
    NewHeads,
    Logs(Box<Filter>),
    PendingTransactions,
}

pub(crate) async fn subscribe(
    ctx: RpcContext,
    pending: PendingSubscriptionSink,
    kind: String,
    params: Option<Value>,
) -> SubscriptionResult {
    let kind = match kind.as_str() {
        "newHeads" => Kind::NewHeads,
        "newPendingTransactions" => Kind::PendingTransactions,
        "logs" => {
            let filter = match params {
                Some(value) => match serde_json::from_value::<Filter>(value) {
                    Ok(filter) => filter,
                    Err(err) => {
                        pending
                            .reject(invalid(format!("invalid logs filter: {err}")))
                            .await;
                        return Ok(());
                    }
                },
                None => Filter::default(),
            };
            Kind::Logs(Box::new(filter))
        }
        other => {
            pending
                .reject(invalid(format!(
                    "unsupported subscription {other:?}; expected newHeads, logs or newPendingTransactions"
                )))
                .await;
            return Ok(());
        }
    };
    let mut events = ctx.events().subscribe();
    let sink = pending.accept().await?;
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                _ = sink.closed() => return,
                event = events.recv() => event,
            };
            let items: Vec<Value> = match event {
                Ok(ChainEvent::NewBlock { block, receipts }) => match &kind {
                    Kind::NewHeads => {
                        let header = RpcHeader {
                            hash: block.hash,
                            inner: block.header.clone(),
                            total_difficulty: Some(block.header.difficulty),
                            size: None,
                        };
                        vec![serde_json::to_value(header).unwrap_or_default()]
                    }
                    Kind::Logs(filter) => {
                        let mut logs = Vec::new();
                        if filter.matches_bloom(block.header.logs_bloom) {
                            collect_block_logs(filter, &block, &receipts, &mut logs);
                        }
                        logs.into_iter()
                            .filter_map(|log| serde_json::to_value(log).ok())
                            .collect()
                    }
                    Kind::PendingTransactions => Vec::new(),
                },
                Ok(ChainEvent::PendingTransaction(hash)) => match kind {
                    Kind::PendingTransactions => vec![Value::String(hash.to_string())],
                    _ => Vec::new(),
                },
                Err(RecvError::Lagged(_)) => Vec::new(),
                Err(RecvError::Closed) => return,
            };
            for item in items {
                let Ok(raw) = serde_json::value::to_raw_value(&item) else {
                    continue;
                };
                if sink.send(SubscriptionMessage::from(raw)).await.is_err() {
                    return;
                }
            }
        }
    });
    Ok(())
}

fn invalid(message: String) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(INVALID_PARAMS_CODE, message, None::<()>)
}
