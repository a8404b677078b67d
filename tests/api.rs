//! The control API over real HTTP on 127.0.0.1: bearer-token auth (401), each verb, 400s with messages,
//! 404s, and concurrent changes from several threads against one shared control state.

mod common;

use common::api::{http, route};
use fastproxy::config::Config;
use fastproxy::control::{Command, Control, WorkerInfo};
use serde_json::Value;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

const TOKEN: &str = "test";
/// sha256("test")
const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn config(routes: &[(&str, f64)]) -> Config {
    let mut y = format!(
        "api: {{ listen: 127.0.0.1:0, token_sha256: {HASH} }}\nproxies:\n  - name: farm\n    protocol: stratum\n    listen: [{{address: 127.0.0.1:1}}]\n    routes:\n"
    );
    for (i, (name, w)) in routes.iter().enumerate() {
        y += &format!(
            "      - {{ name: {name}, weight: {w}, pools: [{{url: stratum+tcp://127.0.0.1:{}, user: u}}, {{url: stratum+tcp://127.0.0.1:{}, user: b}}] }}\n",
            100 + i,
            200 + i
        );
    }
    Config::from_yaml(&y).unwrap_or_else(|e| panic!("{e:?}\n{y}"))
}

fn start(routes: &[(&str, f64)]) -> (fastproxy::api::ApiHandle, Arc<Control>) {
    let c = config(routes);
    let control = Arc::new(Control::from_config(&c));
    let api = c.api.as_ref().unwrap();
    let listen = api.listen.value.parse().unwrap();
    let handle = fastproxy::api::start(listen, api.token_hash().unwrap(), control.clone()).unwrap();
    (handle, control)
}

#[test]
fn requests_without_or_with_a_wrong_token_get_401() {
    let (api, control) = start(&[("main", 70.0), ("fee", 30.0)]);
    let a = api.local_addr();
    for token in [None, Some("wrong"), Some(""), Some("test ")] {
        let (status, body) = http(a, "GET", "/api/v1/routes", token, "");
        if token == Some("test ") {
            assert_eq!(status, 200, "surrounding spaces are trimmed: {body}");
            continue;
        }
        assert_eq!(status, 401, "{token:?}: {body}");
        assert!(body["error"].as_str().unwrap().contains("token"), "{body}");
    }
    let (status, _) = http(
        a,
        "PUT",
        "/api/v1/routes/main",
        Some("wrong"),
        r#"{"weight": 1}"#,
    );
    assert_eq!(status, 401);
    assert_eq!(
        control.route((0, 0)).weight.get(),
        70.0,
        "no change without the token"
    );
    let (status, body) = http(a, "GET", "/api/v1/routes", Some(TOKEN), "");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn routes_show_weights_split_and_pool_states_and_each_verb_changes_them() {
    let (api, control) = start(&[("main", 70.0), ("fee", 30.0)]);
    let a = api.local_addr();
    let t = Some(TOKEN);
    // Reactors' side: pools up, accepted difficulty.
    for r in &control.proxies[0].routes {
        r.pools()[0].up.store(true, Relaxed);
    }
    control.route((0, 0)).accepted.add(60.0);
    control.route((0, 1)).accepted.add(40.0);
    let (_, doc) = http(a, "GET", "/api/v1/routes", t, "");
    let main = route(&doc, "main");
    assert_eq!(main["weight"], 70.0);
    assert_eq!(main["target_split"], 0.7);
    assert_eq!(main["measured_split"], 0.6);
    assert_eq!(main["available"], true);
    assert_eq!(main["pools"][1]["url"], "stratum+tcp://127.0.0.1:200");
    assert_eq!(main["pools"][1]["up"], false);

    let (status, body) = http(a, "PUT", "/api/v1/routes/fee", t, r#"{"weight": 50}"#);
    assert_eq!((status, &body["was"]), (200, &Value::from(30.0)), "{body}");
    assert_eq!(control.route((0, 1)).weight.get(), 50.0);
    let (status, _) = http(a, "PUT", "/api/v1/routes/farm/fee", t, r#"{"weight": 25}"#);
    assert_eq!(status, 200, "PROXY/ROUTE form");
    assert_eq!(control.route((0, 1)).weight.get(), 25.0);

    let (status, _) = http(a, "POST", "/api/v1/routes/fee/disable", t, "");
    assert_eq!(status, 200);
    let (_, doc) = http(a, "GET", "/api/v1/routes", t, "");
    assert_eq!(route(&doc, "fee")["enabled"], false);
    assert_eq!(
        route(&doc, "fee")["target_split"],
        0.0,
        "a disabled route has weight 0"
    );
    assert_eq!(route(&doc, "main")["target_split"], 1.0);
    let (status, _) = http(a, "POST", "/api/v1/routes/fee/enable", t, "");
    assert_eq!(status, 200);
    assert!(control.route((0, 1)).enabled.load(Relaxed));

    // A route whose only up pool is disabled is unavailable: its weight goes to the others.
    let (status, body) = http(a, "POST", "/api/v1/pools/main/0/disable", t, "");
    assert_eq!(status, 200, "{body}");
    let (_, doc) = http(a, "GET", "/api/v1/routes", t, "");
    assert_eq!(route(&doc, "main")["pools"][0]["enabled"], false);
    assert_eq!(route(&doc, "main")["available"], false);
    assert_eq!(route(&doc, "fee")["target_split"], 1.0);
    let (status, _) = http(a, "POST", "/api/v1/pools/farm/main/0/enable", t, "");
    assert_eq!(status, 200);
    assert!(control.route((0, 0)).available());

    control.set_worker(
        "farm",
        "rig1",
        WorkerInfo {
            route: "main".into(),
            hashrate: 5.0,
            movable: true,
            connections: 2,
        },
    );
    let (_, doc) = http(a, "GET", "/api/v1/workers", t, "");
    assert_eq!(doc["workers"][0]["name"], "rig1", "{doc}");
    assert_eq!(doc["workers"][0]["connections"], 2, "{doc}");
    let (status, body) = http(a, "POST", "/api/v1/workers/rig1/kick", t, "");
    assert_eq!(status, 200, "{body}");
    let cmds = control.commands_since(0);
    assert_eq!(cmds.len(), 1);
    assert_eq!(
        cmds[0].1,
        Command::Kick {
            proxy: "farm".into(),
            worker: "rig1".into()
        }
    );
    assert!(
        control.commands_since(cmds[0].0).is_empty(),
        "a reactor sees each command once"
    );
    let (status, _) = http(a, "POST", "/api/v1/workers/nobody/kick", t, "");
    assert_eq!(status, 404);
}

#[test]
fn bad_bodies_and_values_get_400_with_a_message_and_unknown_names_404() {
    let (api, control) = start(&[("main", 70.0), ("fee", 30.0)]);
    let a = api.local_addr();
    let t = Some(TOKEN);
    for (body, says) in [
        ("{weight: 5", "not JSON"),
        ("", "not JSON"),
        (r#"{"weight": "5"}"#, "not a number"),
        (r#"{"weight": -1}"#, ">= 0"),
        (r#"{"wait": 5}"#, "{\"weight\": N}"),
        (r#"{"weight": 1e999}"#, "not JSON"),
    ] {
        let (status, doc) = http(a, "PUT", "/api/v1/routes/main", t, body);
        assert_eq!(status, 400, "{body}: {doc}");
        let msg = doc["error"].as_str().unwrap();
        assert!(msg.contains(says), "{body}: {msg}");
    }
    assert_eq!(control.route((0, 0)).weight.get(), 70.0, "nothing changed");
    let (status, _) = http(a, "PUT", "/api/v1/routes/main", t, r#"{"weight": 0}"#);
    assert_eq!(status, 200, "one zero is fine");
    let (status, doc) = http(a, "PUT", "/api/v1/routes/fee", t, r#"{"weight": 0}"#);
    assert_eq!(status, 400, "{doc}");
    assert!(doc["error"]
        .as_str()
        .unwrap()
        .contains("no enabled route of positive weight"));
    let (status, _) = http(a, "POST", "/api/v1/routes/fee/disable", t, "");
    assert_eq!(
        status, 400,
        "the last enabled route of positive weight stays"
    );
    assert_eq!(control.route((0, 1)).weight.get(), 30.0);
    assert_eq!(
        http(a, "PUT", "/api/v1/routes/nope", t, r#"{"weight": 1}"#).0,
        404
    );
    assert_eq!(
        http(a, "POST", "/api/v1/routes/other/main/enable", t, "").0,
        404
    );
    assert_eq!(
        http(a, "POST", "/api/v1/pools/main/7/disable", t, "").0,
        404
    );
    assert_eq!(
        http(a, "POST", "/api/v1/pools/main/x/disable", t, "").0,
        400
    );
    assert_eq!(http(a, "GET", "/api/v1/nothing", t, "").0, 404);
    assert_eq!(http(a, "GET", "/metrics", t, "").0, 404);
    assert_eq!(http(a, "DELETE", "/api/v1/routes/main", t, "").0, 405);
    let big = format!("{{\"weight\": 1, \"pad\": \"{}\"}}", "x".repeat(70_000));
    assert_eq!(http(a, "PUT", "/api/v1/routes/main", t, &big).0, 413);
}

#[test]
fn concurrent_changes_from_several_threads_all_land() {
    let names = ["r0", "r1", "r2", "r3", "r4", "r5"];
    // "keep" stays enabled, so every disable is allowed whatever the order.
    let mut routes: Vec<(&str, f64)> = names.iter().map(|n| (*n, 10.0)).collect();
    routes.push(("keep", 10.0));
    let (api, control) = start(&routes);
    let a = api.local_addr();
    let threads: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let name = name.to_string();
            std::thread::spawn(move || {
                for k in 1..=15 {
                    let w = (i * 100 + k) as f64;
                    let (status, doc) = http(
                        a,
                        "PUT",
                        &format!("/api/v1/routes/{name}"),
                        Some(TOKEN),
                        &format!("{{\"weight\": {w}}}"),
                    );
                    assert_eq!(status, 200, "{doc}");
                    let verb = if k % 2 == 0 { "enable" } else { "disable" };
                    let (status, doc) = http(
                        a,
                        "POST",
                        &format!("/api/v1/routes/{name}/{verb}"),
                        Some(TOKEN),
                        "",
                    );
                    assert_eq!(status, 200, "{doc}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let (_, doc) = http(a, "GET", "/api/v1/routes", Some(TOKEN), "");
    for (i, name) in names.iter().enumerate() {
        let r = route(&doc, name);
        assert_eq!(r["weight"], (i * 100 + 15) as f64, "{r}");
        assert_eq!(r["enabled"], false, "last verb was disable: {r}");
    }
    assert_eq!(doc["version"], 6 * 30, "every change counted once");
    assert_eq!(control.version(), 6 * 30);
}
