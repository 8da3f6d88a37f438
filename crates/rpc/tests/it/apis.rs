//! `--http.api`: a server answers the selected namespaces only.

use crate::heavy::{context, post};
use infera_rpc::{ALL_NAMESPACES, RpcApis, RpcConfig, server::served_methods};

fn config(apis: RpcApis) -> RpcConfig {
    RpcConfig {
        apis,
        ..RpcConfig::default()
    }
}

#[test]
fn every_method_has_a_known_namespace_and_the_public_set_leaves_debug_testing_personal_and_admin_out()
 {
    let dir = tempfile::tempdir().unwrap();
    let all = served_methods(&context(dir.path(), config(RpcApis::all()))).unwrap();
    let names: Vec<&str> = all.method_names().collect();
    for name in &names {
        let namespace = name.split('_').next().unwrap();
        assert!(
            ALL_NAMESPACES.contains(&namespace),
            "{name}: unknown namespace"
        );
    }
    for namespace in ALL_NAMESPACES {
        let prefix = format!("{namespace}_");
        assert!(
            names.iter().any(|n| n.starts_with(&prefix)),
            "no {namespace}_ method"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let public = served_methods(&context(dir.path(), config(RpcApis::public()))).unwrap();
    let served: Vec<&str> = public.method_names().collect();
    assert!(served.contains(&"eth_chainId") && served.contains(&"infera_listModels"));
    assert!(served.contains(&"eth_subscribe") && served.contains(&"txpool_status"));
    let private = |n: &str| {
        ["debug_", "testing_", "personal_", "admin_"]
            .iter()
            .any(|p| n.starts_with(p))
    };
    assert!(!served.iter().any(|n| private(n)), "{served:?}");
    assert_eq!(
        served.len() + names.iter().filter(|n| private(n)).count(),
        names.len()
    );
}

#[test]
fn a_server_answers_method_not_found_outside_its_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let apis: RpcApis = "eth,debug".parse().unwrap();
    let ctx = context(dir.path(), config(apis));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let servers = runtime
        .block_on(infera_rpc::start_servers(
            ctx,
            Some("127.0.0.1:0".parse().unwrap()),
            None,
        ))
        .unwrap();
    let addr = servers.http_addr.unwrap();

    let chain_id = post(addr, "eth_chainId", serde_json::json!([]));
    assert!(chain_id["result"].is_string(), "{chain_id}");
    let header = post(addr, "debug_getRawHeader", serde_json::json!(["latest"]));
    assert!(header["result"].is_string(), "{header}");
    for (method, params) in [
        ("net_version", serde_json::json!([])),
        ("testing_buildBlockV1", serde_json::json!([])),
    ] {
        let refused = post(addr, method, params);
        assert_eq!(refused["error"]["code"], -32601, "{method}: {refused}");
    }
    runtime.block_on(servers.stop());
}
