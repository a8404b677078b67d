//! The control API's requests → responses, without sockets: bearer-token check (SHA-256, constant time), the
//! `/api/v1/...` paths, JSON bodies, and a log line with the caller's address for every change.

use crate::control::{Control, RouteAt};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use subtle::ConstantTimeEq;

/// A request as the server read it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path with its query (the query is ignored).
    pub path: &'a str,
    /// The `Authorization` header, if any.
    pub authorization: Option<&'a str>,
    pub body: &'a [u8],
    pub caller: SocketAddr,
}

/// Status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub body: Value,
}

fn error(status: u16, message: impl Into<String>) -> Response {
    Response {
        status,
        body: json!({ "error": message.into() }),
    }
}

fn ok(body: Value) -> Response {
    Response { status: 200, body }
}

/// Whether `authorization` is `Bearer <token>` with SHA-256(token) equal to `token_hash` (constant time).
pub fn authorized(authorization: Option<&str>, token_hash: &[u8; 32]) -> bool {
    let Some(token) = authorization.and_then(|a| a.trim().strip_prefix("Bearer ")) else {
        return false;
    };
    let hash = Sha256::digest(token.trim().as_bytes());
    bool::from(hash.as_slice().ct_eq(token_hash))
}

/// `%XX` escapes of a path segment decoded (a bad escape stays as it is).
fn decode(segment: &str) -> String {
    let b = segment.as_bytes();
    let (mut out, mut i) = (Vec::with_capacity(b.len()), 0);
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A route named as `[route]` or `[proxy, route]`.
fn route_at(control: &Control, parts: &[String]) -> Result<RouteAt, Response> {
    let found = match parts {
        [route] => control.find_route(None, route),
        [proxy, route] => control.find_route(Some(proxy), route),
        _ => return Err(error(404, "name a route as ROUTE or PROXY/ROUTE")),
    };
    found.map_err(|e| error(404, e))
}

fn label(control: &Control, at: RouteAt) -> String {
    format!("{}/{}", control.proxies[at.0].name, control.route(at).name)
}

/// Answers one request. `token_hash` is the SHA-256 of the bearer token.
pub fn handle(req: &Request, control: &Control, token_hash: &[u8; 32]) -> Response {
    if !authorized(req.authorization, token_hash) {
        return error(401, "missing or wrong bearer token");
    }
    let path = req.path.split(['?', '#']).next().unwrap_or("");
    let Some(rest) = path.strip_prefix("/api/v1/") else {
        return error(404, "not found: the API is under /api/v1/");
    };
    let parts: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode)
        .collect();
    let who = req.caller;
    let (resource, args) = match parts.split_first() {
        Some((r, a)) => (r.as_str(), a),
        None => return error(404, "try /api/v1/routes or /api/v1/workers"),
    };
    let action = args.last().map(String::as_str);
    match (req.method, resource, action) {
        ("GET", "routes", None) => ok(routes(control)),
        ("GET", "workers", None) => ok(workers(control)),
        ("PUT", "routes", Some(_)) => {
            let at = match route_at(control, args) {
                Ok(at) => at,
                Err(e) => return e,
            };
            let weight = match serde_json::from_slice::<Value>(req.body) {
                Err(e) => return error(400, format!("body is not JSON: {e}")),
                Ok(v) => match v.get("weight").map(|w| (w.as_f64(), w)) {
                    Some((Some(w), _)) => w,
                    Some((None, w)) => return error(400, format!("weight {w} is not a number")),
                    None => return error(400, "body must be {\"weight\": N}"),
                },
            };
            match control.set_weight(at, weight) {
                Ok(old) => {
                    log::info!(
                        "api: {who} set route {} weight {old} -> {weight}",
                        label(control, at)
                    );
                    ok(json!({ "route": label(control, at), "weight": weight, "was": old }))
                }
                Err(e) => error(400, e),
            }
        }
        ("POST", "routes", Some(a @ ("enable" | "disable"))) => {
            let at = match route_at(control, &args[..args.len() - 1]) {
                Ok(at) => at,
                Err(e) => return e,
            };
            match control.set_route_enabled(at, a == "enable") {
                Ok(old) => {
                    log::info!(
                        "api: {who} {a}d route {} (was enabled: {old})",
                        label(control, at)
                    );
                    ok(json!({ "route": label(control, at), "enabled": a == "enable" }))
                }
                Err(e) => error(400, e),
            }
        }
        ("POST", "pools", Some(a @ ("enable" | "disable"))) if args.len() >= 3 => {
            let n = args.len();
            let at = match route_at(control, &args[..n - 2]) {
                Ok(at) => at,
                Err(e) => return e,
            };
            let Ok(index) = args[n - 2].parse::<usize>() else {
                return error(400, format!("pool index '{}' is not a number", args[n - 2]));
            };
            match control.set_pool_enabled(at, index, a == "enable") {
                Ok(old) => {
                    let url = control.route(at).pools()[index].url_now();
                    log::info!(
                        "api: {who} {a}d pool {index} ({url}) of route {} (was enabled: {old})",
                        label(control, at)
                    );
                    ok(
                        json!({ "route": label(control, at), "pool": index, "url": url,
                               "enabled": a == "enable" }),
                    )
                }
                Err(e) => error(404, e),
            }
        }
        ("POST", "workers", Some("kick")) if (2..=3).contains(&args.len()) => {
            let (proxy, worker) = match &args[..args.len() - 1] {
                [w] => (None, w.as_str()),
                [p, w] => (Some(p.as_str()), w.as_str()),
                _ => unreachable!("2 or 3 parts"),
            };
            match control.kick(proxy, worker) {
                Ok((proxy, seq)) => {
                    log::info!("api: {who} kicked worker {proxy}/{worker} (command {seq})");
                    ok(json!({ "proxy": proxy, "worker": worker, "command": seq }))
                }
                Err(e) => error(404, e),
            }
        }
        (_, "routes" | "workers" | "pools", _) => error(
            405,
            format!(
                "{} {path}: use GET routes|workers, PUT routes/NAME, POST .../enable|disable|kick",
                req.method
            ),
        ),
        _ => error(404, format!("no resource '{resource}'")),
    }
}

/// `GET /api/v1/routes`: each route's weight, target and measured split, and its pools.
fn routes(control: &Control) -> Value {
    let mut out = Vec::new();
    for p in &control.proxies {
        for r in p.views() {
            let pools: Vec<Value> = r
                .pools
                .iter()
                .enumerate()
                .map(|(i, pool)| {
                    json!({ "index": i, "url": pool.url, "enabled": pool.enabled, "up": pool.up })
                })
                .collect();
            out.push(json!({
                "proxy": p.name,
                "name": r.name,
                "weight": r.weight,
                "enabled": r.enabled,
                "available": r.available,
                "target_split": r.target_split,
                "accepted_difficulty": r.accepted_difficulty,
                "measured_split": r.measured_split,
                "pools": pools,
            }));
        }
    }
    json!({ "routes": out, "version": control.version() })
}

/// `GET /api/v1/workers`.
fn workers(control: &Control) -> Value {
    let list: Vec<Value> = control
        .workers()
        .into_iter()
        .map(|(proxy, name, w)| {
            json!({ "proxy": proxy, "name": name, "route": w.route, "hashrate": w.hashrate,
                    "movable": w.movable, "connections": w.connections })
        })
        .collect();
    json!({ "workers": list })
}
