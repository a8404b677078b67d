//! What a reload does to the control API's runtime changes: the config file is the source of truth, so a
//! SIGHUP (or `RunningProxy::reload`) sets weights and the route and pool switches back to the file's values,
//! logging each value it resets, while accepted difficulty survives; a changed route layout needs a restart.

mod common;

use common::api::route;
use common::*;
use fastproxy::config::Config;
use fastproxy_sim::pool::SimPoolConfig;
use serde_json::Value;
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

const TOKEN: &str = "test";
/// sha256("test")
const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// A proxy entry `farm` with routes (name, weight, pool), an API on port `api` (if any) and miners on `listen`.
fn yaml(listen: u16, api: Option<u16>, routes: &[(&str, f64, SocketAddr)]) -> String {
    let api = api.map_or(String::new(), |port| {
        format!("api: {{ listen: 127.0.0.1:{port}, token_sha256: {HASH} }}\n")
    });
    let mut y = format!(
        "threads: 1\n{api}proxies:\n  - name: farm\n    protocol: stratum\n    listen: [{{address: 127.0.0.1:{listen}}}]\n    routes:\n"
    );
    for (name, w, pool) in routes {
        y += &format!(
            "      - {{ name: {name}, weight: {w}, pools: [{{url: stratum+tcp://{pool}, user: u.{name}, password: x}}] }}\n"
        );
    }
    y
}

/// One HTTP/1.1 request with the token; (status, JSON body).
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, Value) {
    common::api::http(addr, method, path, Some(TOKEN), body)
}

#[test]
fn sighup_sets_api_changes_back_to_the_file_and_logs_each() {
    let a = pool(SimPoolConfig::default());
    let b = pool(SimPoolConfig::default());
    let (listen, api_port) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("fastproxy-reload-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("proxy.yaml");
    let file = yaml(
        listen,
        Some(api_port),
        &[("main", 70.0, a.addr()), ("fee", 30.0, b.addr())],
    );
    std::fs::write(&cfg, &file).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fastproxy"))
        .arg("-c")
        .arg(&cfg)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let api = SocketAddr::from(([127, 0, 0, 1], api_port));
    wait_until(Duration::from_secs(20), "API listening", || {
        TcpStream::connect(api).is_ok()
    });
    let (s, body) = http(api, "PUT", "/api/v1/routes/fee", r#"{"weight": 55}"#);
    assert_eq!(s, 200, "{body}");
    let (s, body) = http(api, "POST", "/api/v1/routes/main/disable", "");
    assert_eq!(s, 200, "{body}");
    let (s, body) = http(api, "POST", "/api/v1/pools/fee/0/disable", "");
    assert_eq!(s, 200, "{body}");
    let (_, doc) = http(api, "GET", "/api/v1/routes", "");
    assert_eq!(route(&doc, "fee")["weight"], 55.0, "{doc}");
    assert_eq!(route(&doc, "main")["enabled"], false, "{doc}");
    assert_eq!(route(&doc, "fee")["pools"][0]["enabled"], false, "{doc}");
    let version = doc["version"].as_u64().unwrap();

    // The same file again: a reload sets everything back to it.
    assert!(Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    wait_until(Duration::from_secs(20), "the reload", || {
        let (_, doc) = http(api, "GET", "/api/v1/routes", "");
        doc["version"].as_u64().unwrap() > version
    });
    let (_, doc) = http(api, "GET", "/api/v1/routes", "");
    assert_eq!(route(&doc, "fee")["weight"], 30.0, "{doc}");
    assert_eq!(route(&doc, "main")["weight"], 70.0, "{doc}");
    assert_eq!(route(&doc, "main")["enabled"], true, "{doc}");
    assert_eq!(route(&doc, "fee")["pools"][0]["enabled"], true, "{doc}");
    let (status, log) = terminate(&mut child, Duration::from_secs(15));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(status.success(), "{log}");
    for line in [
        "reload: route farm/fee weight 55 -> 30",
        "reload: route farm/main enabled again",
        "reload: route farm/fee pool 0 enabled again",
        "config reloaded",
    ] {
        assert!(log.contains(line), "no '{line}' in the log:\n{log}");
    }
    assert!(
        !log.contains("reload: route farm/main weight"),
        "an unchanged weight is not logged:\n{log}"
    );
}

#[test]
fn reload_keeps_accepted_difficulty_follows_pool_lists_but_new_routes_need_a_restart() {
    let a = pool(SimPoolConfig::default());
    let b = pool(SimPoolConfig::default());
    let c = pool(SimPoolConfig::default());
    let listen = free_port();
    let routes = [("main", 70.0, a.addr()), ("fee", 30.0, b.addr())];
    let mut proxy = start_proxy(&yaml(listen, None, &routes));
    let control = proxy.control();
    control.route((0, 0)).accepted.add(123.0);
    control.set_weight((0, 0), 5.0).unwrap();

    let load = |y: &str| Config::from_yaml(y).unwrap();
    // A third route or a renamed route: refused, nothing changes.
    for changed in [
        yaml(
            listen,
            None,
            &[routes[0], routes[1], ("extra", 10.0, c.addr())],
        ),
        yaml(listen, None, &[routes[0], ("fees", 30.0, b.addr())]),
    ] {
        let err = proxy.reload(load(&changed)).unwrap_err();
        assert!(err.contains("restart"), "{err}\n{changed}");
        assert_eq!(control.route((0, 0)).weight.get(), 5.0, "{changed}");
    }
    // A second pool in each route: applied at runtime, the routes' pool lists grow with it.
    let two_pools = yaml(listen, None, &routes).replace(
        "pools: [{url: stratum+tcp://",
        &format!(
            "pools: [{{url: stratum+tcp://{}, user: x}}, {{url: stratum+tcp://",
            c.addr()
        ),
    );
    proxy
        .reload(load(&two_pools))
        .expect("a route's pool list may change at runtime");
    assert_eq!(control.route((0, 0)).pools().len(), 2);
    assert_eq!(control.route((0, 0)).weight.get(), 70.0);
    control.set_weight((0, 0), 5.0).unwrap();

    // Same layout, fee's pool moved to c: weights back to the file, the URL follows, accepted stays.
    proxy
        .reload(load(&yaml(
            listen,
            None,
            &[routes[0], ("fee", 30.0, c.addr())],
        )))
        .expect("same layout reloads");
    assert_eq!(control.route((0, 0)).weight.get(), 70.0);
    assert_eq!(control.route((0, 0)).accepted.get(), 123.0);
    assert_eq!(
        control.route((0, 1)).pools()[0].url_now(),
        format!("stratum+tcp://{}", c.addr())
    );
    assert!(control.route((0, 1)).pools()[0].enabled.load(Relaxed));
    proxy.stop();
}
