//! The RPC's metrics middleware: every call's method, latency and whether it
//! failed, recorded through `infera-metrics` (names and descriptions there).

use std::{collections::HashSet, future::Future, sync::Arc, time::Instant};

use jsonrpsee::{
    MethodResponse,
    core::{
        middleware::{Batch, BatchEntry, Notification, RpcServiceT},
        server::{BatchResponseBuilder, Methods},
    },
    types::Request,
};

/// Label of a call whose method this server does not serve: clients choose
/// method names, and each distinct label is a series, so unknown ones share one.
const UNKNOWN_METHOD: &str = "unknown";

/// Wraps each connection's RPC service in [`RpcMetrics`].
#[derive(Clone)]
pub(crate) struct RpcMetricsLayer {
    methods: Arc<HashSet<&'static str>>,
    max_response_bytes: usize,
}

impl RpcMetricsLayer {
    /// Labels calls by the names in `methods`; batches answer within
    /// `max_response_bytes`, as jsonrpsee's own batch handling does.
    pub(crate) fn new(methods: &Methods, max_response_bytes: u32) -> Self {
        Self {
            methods: Arc::new(methods.method_names().collect()),
            max_response_bytes: max_response_bytes as usize,
        }
    }
}

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, service: S) -> Self::Service {
        RpcMetrics {
            service,
            layer: self.clone(),
        }
    }
}

/// Times and counts every call, batch entries included.
#[derive(Clone)]
pub(crate) struct RpcMetrics<S> {
    service: S,
    layer: RpcMetricsLayer,
}

impl<S> RpcMetrics<S> {
    fn label(&self, method: &str) -> &'static str {
        self.layer
            .methods
            .get(method)
            .copied()
            .unwrap_or(UNKNOWN_METHOD)
    }
}

impl<S> RpcServiceT for RpcMetrics<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Send
        + Sync
        + Clone
        + 'static,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let method = self.label(request.method_name());
        let service = self.service.clone();
        async move {
            let started = Instant::now();
            let response = service.call(request).await;
            infera_metrics::rpc::call(method, started.elapsed(), response.is_error());
            response
        }
    }

    // jsonrpsee's own batch handling calls the inner service for each entry,
    // past this layer; so the entries are answered here, one `call` each.
    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let this = self.clone();
        async move {
            let mut responses = BatchResponseBuilder::new_with_limit(this.layer.max_response_bytes);
            let mut got_notification = false;
            for entry in batch {
                let response = match entry {
                    Ok(BatchEntry::Call(request)) => this.call(request).await,
                    Ok(BatchEntry::Notification(notification)) => {
                        got_notification = true;
                        this.service.notification(notification).await;
                        continue;
                    }
                    Err(err) => {
                        let (err, id) = err.into_parts();
                        MethodResponse::error(id, err)
                    }
                };
                if let Err(too_large) = responses.append(response) {
                    return too_large;
                }
            }
            if responses.is_empty() && got_notification {
                MethodResponse::notification()
            } else {
                MethodResponse::from_batch(responses.finish())
            }
        }
    }

    fn notification<'a>(
        &self,
        notification: Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        self.service.notification(notification)
    }
}
