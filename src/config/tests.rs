//! The unit tests of the configuration: parsing, errors with their lines, the template, pool URLs, and
//! routes (`routes:` against `pools:`, weights, names, the `api:` section).

use super::*;

#[test]
fn template_parses_and_checks() {
    let c = Config::from_yaml(&template("stratum+tcp://127.0.0.1:3334", "acct.w")).unwrap();
    assert_eq!(c.proxies.len(), 1);
    assert_eq!(c.proxies[0].min_extranonce2_size, 4);
    assert_eq!(c.proxies[0].pools[0].password, "x");
}

#[test]
fn unknown_key_is_an_error_with_its_line() {
    let y = "proxies:\n  - name: a\n    protocol: stratum\n    listen: [{address: 127.0.0.1:1}]\n    pools: []\n    min_extranonce_size: 4\n";
    let e = Config::from_yaml(y).unwrap_err();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].line, Some(6), "{e:?}");
    assert!(e[0].message.contains("min_extranonce_size"), "{e:?}");
}

#[test]
fn every_semantic_problem_is_listed_with_lines() {
    let y = "proxies:\n  - name: a\n    protocol: stratum\n    listen:\n      - address: nothere\n    pools:\n      - url: http://x:1\n        user: u\n      - url: stratum+tcp://host\n        user: u\n";
    let e = Config::from_yaml(y).unwrap_err();
    let lines: Vec<_> = e.iter().map(|p| p.line).collect();
    assert_eq!(lines, vec![Some(5), Some(7), Some(9)], "{e:?}");
}

#[test]
fn max_miners_top_level_and_per_entry_with_lines() {
    let y = "max_miners: 10\nproxies:\n  - name: a\n    protocol: stratum\n    listen: [{address: 127.0.0.1:1}]\n    max_miners: 3\n    pools: [{url: stratum+tcp://h:1, user: u}]\n";
    let c = Config::from_yaml(y).unwrap();
    assert_eq!(c.max_miners.as_ref().map(|m| m.value), Some(10));
    assert_eq!(c.proxies[0].max_miners.as_ref().map(|m| m.value), Some(3));
    let e = Config::from_yaml(&y.replace(": 10", ": 0").replace(": 3", ": 0")).unwrap_err();
    let lines: Vec<_> = e.iter().map(|p| p.line).collect();
    assert_eq!(lines, vec![Some(1), Some(6)], "{e:?}");
    let e = Config::from_yaml(&y.replace("max_miners: 3", "max_miner: 3")).unwrap_err();
    assert_eq!(e[0].line, Some(6), "{e:?}");
    let e = Config::from_yaml(&format!("max_queued_output: 1000\n{y}")).unwrap_err();
    assert!(e[0].message.contains("max_queued_output"), "{e:?}");
}

#[test]
fn handshake_timeout_defaults_to_10_s_and_is_checked_with_its_line() {
    let base = "proxies:\n  - name: a\n    protocol: stratum\n    listen: [{address: 127.0.0.1:1}]\n    pools: [{url: stratum+tcp://127.0.0.1:1, user: u}]\n";
    let c = Config::from_yaml(base).unwrap();
    assert_eq!(c.proxies[0].handshake_timeout, 10.0);
    let c = Config::from_yaml(&format!("{base}    handshake_timeout: 1.5\n")).unwrap();
    assert_eq!(c.proxies[0].handshake_timeout, 1.5);
    let e = Config::from_yaml(&format!("{base}    handshake_timeout: soon\n")).unwrap_err();
    assert_eq!(e[0].line, Some(6), "{e:?}");
    let e = Config::from_yaml(&format!("{base}    handshake_timeout: 0\n")).unwrap_err();
    assert!(
        e[0].message
            .contains("handshake_timeout must be a positive"),
        "{e:?}"
    );
    let t = template("stratum+tcp://127.0.0.1:3334", "acct.w");
    let line = t.lines().find(|l| l.contains("handshake_timeout"));
    let uncommented = line.unwrap().replacen("# ", "", 1);
    let c = Config::from_yaml(&t.replace(line.unwrap(), &uncommented)).unwrap();
    assert_eq!(c.proxies[0].handshake_timeout, 10.0, "{uncommented}");
}

#[test]
fn pool_url_forms() {
    assert_eq!(
        PoolUrl::parse("stratum+tcp://pool.example.com:3333").unwrap(),
        PoolUrl {
            host: "pool.example.com".into(),
            port: 3333,
            tls: false
        }
    );
    assert!(
        PoolUrl::parse("stratum+ssl://pool.example.com:443")
            .unwrap()
            .tls
    );
    assert!(
        PoolUrl::parse("stratum+tls://pool.example.com:443")
            .unwrap()
            .tls
    );
    assert!(PoolUrl::parse("stratum+tcp://h:0").is_err());
    assert!(PoolUrl::parse("stratum+tcp://h:x").is_err());
    assert!(PoolUrl::parse("ftp://h:1").is_err());
}

/// A proxy entry with `body` (at 4 spaces) after its listen line; the body starts at line 5.
fn entry(body: &str) -> String {
    format!("proxies:\n  - name: a\n    protocol: stratum\n    listen: [{{address: 127.0.0.1:1}}]\n{body}")
}

const TWO_ROUTES: &str = "    routes:\n      - name: main\n        weight: 70\n        pools: [{url: stratum+tcp://127.0.0.1:1, user: u}, {url: stratum+tcp://127.0.0.1:2, user: b}]\n      - name: fee\n        weight: 30\n        pools: [{url: stratum+tcp://127.0.0.1:3, user: f}]\n";

#[test]
fn pools_alone_is_one_default_route_of_weight_100() {
    let c = Config::from_yaml(&entry(
        "    pools: [{url: stratum+tcp://127.0.0.1:1, user: u}]\n",
    ))
    .unwrap();
    let routes = c.proxies[0].route_list();
    assert_eq!(routes.len(), 1);
    assert_eq!((routes[0].name, routes[0].weight), ("default", 100.0));
    assert_eq!(routes[0].pools[0].url.value, "stratum+tcp://127.0.0.1:1");
    assert!(!c.proxies[0].pools_from_routes);
}

#[test]
fn routes_parse_with_weights_and_pool_lists_and_fill_pools_from_the_first() {
    let c = Config::from_yaml(&entry(TWO_ROUTES)).unwrap();
    let p = &c.proxies[0];
    let routes = p.route_list();
    let summary: Vec<_> = routes
        .iter()
        .map(|r| (r.name, r.weight, r.pools.len()))
        .collect();
    assert_eq!(summary, vec![("main", 70.0, 2), ("fee", 30.0, 1)]);
    // The reactor serves the first route's pools until the routing integration.
    assert!(p.pools_from_routes);
    let urls: Vec<_> = p.pools.iter().map(|x| x.url.value.as_str()).collect();
    assert_eq!(
        urls,
        ["stratum+tcp://127.0.0.1:1", "stratum+tcp://127.0.0.1:2"]
    );
    // A checked config checks again (the runtime re-checks on start and reload).
    assert!(c.check().is_empty(), "{:?}", c.check());
}

#[test]
fn bad_routes_are_listed_with_their_lines() {
    // Lines: 5 routes, 6 name: main, 7 weight: 70, 8 pools, 9 name: fee, 10 weight: 30, 11 pools.
    let bad = |from: &str, to: &str| {
        let y = entry(&TWO_ROUTES.replace(from, to));
        let e = Config::from_yaml(&y).unwrap_err();
        e.iter()
            .map(|p| (p.line, p.message.clone()))
            .collect::<Vec<_>>()
    };
    let e = bad("weight: 30", "weight: -1");
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].0, Some(10), "{e:?}");
    assert!(e[0].1.contains("weight -1"), "{e:?}");
    for inf in [".inf", ".nan", "-.inf"] {
        let e = bad("weight: 70", &format!("weight: {inf}"));
        assert_eq!(e[0].0, Some(7), "{inf}: {e:?}");
        assert!(e[0].1.contains("finite"), "{inf}: {e:?}");
    }
    assert!(Config::from_yaml(&entry(&TWO_ROUTES.replace("weight: 70", "weight: 0"))).is_ok());
    let e = entry(
        &TWO_ROUTES
            .replace("weight: 70", "weight: 0")
            .replace("weight: 30", "weight: 0"),
    );
    let e = Config::from_yaml(&e).unwrap_err();
    assert_eq!((e.len(), e[0].line), (1, Some(7)), "{e:?}");
    assert!(e[0].message.contains("every route has weight 0"), "{e:?}");
    let e = bad("name: fee", "name: main");
    assert_eq!(
        e,
        vec![(Some(9), "proxy 'a': route name 'main' is used twice".into())]
    );
    let e = bad("name: fee", "name: ''");
    assert_eq!(
        e,
        vec![(Some(9), "proxy 'a': a route has an empty name".into())]
    );
    let e = bad("name: fee", "name: a/b");
    assert_eq!(e[0].0, Some(9), "{e:?}");
    let e = bad(
        "pools: [{url: stratum+tcp://127.0.0.1:3, user: f}]",
        "pools: []",
    );
    assert_eq!(
        e,
        vec![(Some(9), "proxy 'a': route 'fee' has no pools".into())]
    );
    let e = bad("stratum+tcp://127.0.0.1:3", "http://127.0.0.1:3");
    assert_eq!(e[0].0, Some(11), "a route's pool URL is checked: {e:?}");
    let e = bad("        weight: 30\n", "");
    assert!(
        e[0].0.is_some() && e[0].1.contains("missing field `weight`"),
        "{e:?}"
    );
}

#[test]
fn pools_and_routes_together_is_an_error_at_the_routes() {
    let y = entry(&format!(
        "    pools: [{{url: stratum+tcp://127.0.0.1:9, user: u}}]\n{TWO_ROUTES}"
    ));
    let e = Config::from_yaml(&y).unwrap_err();
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].line, Some(7), "{e:?}");
    assert!(e[0].message.contains("both 'pools' and 'routes'"), "{e:?}");
    let e = Config::from_yaml(&entry("    routes: []\n")).unwrap_err();
    assert!(e[0].message.contains("no pools"), "{e:?}");
}

#[test]
fn api_section_checks_listen_and_token_hash_with_lines() {
    let pools = "    pools: [{url: stratum+tcp://127.0.0.1:1, user: u}]\n";
    let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"; // sha256("test")
    let y = format!(
        "api:\n  listen: 127.0.0.1:9200\n  token_sha256: {hash}\n{}",
        entry(pools)
    );
    let c = Config::from_yaml(&y).unwrap();
    let h = c.api.as_ref().unwrap().token_hash().unwrap();
    assert_eq!((h[0], h[31]), (0x9f, 0x08));
    let e = Config::from_yaml(&y.replace(hash, &hash[1..])).unwrap_err();
    assert_eq!(e[0].line, Some(3), "{e:?}");
    assert!(e[0].message.contains("64 hex digits"), "{e:?}");
    let e = Config::from_yaml(&y.replace(hash, &hash.replace('9', "g"))).unwrap_err();
    assert_eq!(e[0].line, Some(3), "{e:?}");
    let e = Config::from_yaml(&y.replace("127.0.0.1:9200", "localhost")).unwrap_err();
    assert_eq!(e[0].line, Some(2), "{e:?}");
    let e = Config::from_yaml(&y.replace("  token_sha256", "  token")).unwrap_err();
    assert_eq!(e[0].line, Some(3), "{e:?}");
}

#[test]
fn template_routes_and_api_examples_parse_when_uncommented() {
    let t = template("stratum+tcp://127.0.0.1:3334", "acct.w");
    let routes: Vec<&str> = t
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("# routes:"))
        .take(3)
        .collect();
    assert_eq!(routes.len(), 3, "{t}");
    let mut y = t.clone();
    let pools_at = y.find("    pools:").unwrap();
    let pools_end = y[pools_at..].find("    # Or split").unwrap() + pools_at;
    y.replace_range(pools_at..pools_end, "");
    for l in &routes {
        y = y.replace(l, &l.replacen("# ", "", 1));
    }
    let c = Config::from_yaml(&y).unwrap_or_else(|e| panic!("{e:?}\n{y}"));
    let names: Vec<_> = c.proxies[0]
        .route_list()
        .iter()
        .map(|r| r.name.to_string())
        .collect();
    assert_eq!(names, ["main", "fee"]);
    let api = t.lines().find(|l| l.starts_with("# api:")).unwrap();
    let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let line = api
        .replacen("# ", "", 1)
        .replace("<the 64 hex digits sha256sum printed>", hash);
    let c = Config::from_yaml(&t.replace(api, &line)).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(c.api.is_some());
}

/// The SRI example authority key (base58-check of `[0x01, 0x00] ‖ x-only key`).
const SRI_KEY: &str = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72";

/// base58-check of `raw` (a version and a key as the config would spell them).
fn base58check(raw: &[u8]) -> String {
    bs58::encode(raw).with_check().into_string()
}

#[test]
fn an_sv2_pool_with_its_authority_key_parses() {
    // Lines: 5 pools, 6 url, 7 user, 8 authority_public_key, 9 the V1 backup.
    let y = entry(&format!(
        "    pools:\n      - url: stratum2+tcp://127.0.0.1:34254\n        user: acct.w\n        authority_public_key: {SRI_KEY}\n      - {{url: stratum+tcp://127.0.0.1:3333, user: u}}\n"
    ));
    let c = Config::from_yaml(&y).unwrap_or_else(|e| panic!("{e:?}"));
    let pools = &c.proxies[0].pools;
    assert!(pools[0].is_sv2() && !pools[1].is_sv2());
    let key = pools[0].authority_key().unwrap().unwrap();
    assert_eq!(key.to_base58(), SRI_KEY);
    assert!(pools[1].authority_key().is_none());
    let url = PoolUrl::parse(&pools[0].url.value).unwrap();
    assert_eq!(
        (url.host.as_str(), url.port, url.tls),
        ("127.0.0.1", 34254, false)
    );
    // In a route too.
    let routes = TWO_ROUTES.replace(
        "{url: stratum+tcp://127.0.0.1:3, user: f}",
        &format!("{{url: stratum2+tcp://127.0.0.1:3, user: f, authority_public_key: {SRI_KEY}}}"),
    );
    let c = Config::from_yaml(&entry(&routes)).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(c.check().is_empty(), "{:?}", c.check());
}

#[test]
fn sv2_pool_problems_are_listed_with_their_lines() {
    let sv2 = |key: Option<&str>| {
        let key = key.map_or(String::new(), |k| {
            format!("        authority_public_key: {k}\n")
        });
        entry(&format!(
            "    pools:\n      - url: stratum2+tcp://127.0.0.1:34254\n        user: acct.w\n{key}"
        ))
    };
    let problems = |y: &str| {
        Config::from_yaml(y)
            .unwrap_err()
            .into_iter()
            .map(|p| (p.line, p.message))
            .collect::<Vec<_>>()
    };
    // No key: at the URL's line.
    let e = problems(&sv2(None));
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].0, Some(6), "{e:?}");
    assert!(e[0].1.contains("needs authority_public_key"), "{e:?}");
    // A bad checksum (one character changed), a wrong version, not a point on the curve: at the key's line.
    let bad_checksum = SRI_KEY.replace("PH72", "PH73");
    let mut raw = [0u8; 34];
    raw[0] = 2;
    raw[2..].copy_from_slice(
        &crate::protocol::sv2::AuthorityKey::parse(SRI_KEY)
            .unwrap()
            .x_only(),
    );
    let wrong_version = base58check(&raw);
    raw[0] = 1;
    raw[2..].fill(0xff); // x ≥ p: no point has it
    let off_curve = base58check(&raw);
    for (key, says) in [
        (bad_checksum.as_str(), "checksum"),
        (wrong_version.as_str(), "version 2"),
        (off_curve.as_str(), "not a valid x-only public key"),
        ("not-base58-0OIl", "bad authority public key"),
    ] {
        let e = problems(&sv2(Some(key)));
        assert_eq!(e.len(), 1, "{key}: {e:?}");
        assert_eq!(e[0].0, Some(8), "{key}: {e:?}");
        assert!(e[0].1.contains(says), "{key}: {e:?}");
    }
    // A key on a V1 pool: at the key's line.
    let v1 = sv2(Some(SRI_KEY)).replace("stratum2+tcp", "stratum+tcp");
    let e = problems(&v1);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].0, Some(8), "{e:?}");
    assert!(e[0].1.contains("for Stratum V2 pools"), "{e:?}");
    // An SV2 pool on an Equihash entry: at the URL's line.
    let eq = sv2(Some(SRI_KEY)).replace("protocol: stratum", "protocol: equihash");
    let e = problems(&eq);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].0, Some(6), "{e:?}");
    assert!(e[0].1.contains("needs protocol: stratum"), "{e:?}");
    // TLS options do not apply to an SV2 URL (its encryption is Noise).
    let tls = sv2(Some(SRI_KEY)) + "        insecure_skip_verify: true\n";
    let e = problems(&tls);
    assert!(
        e.iter()
            .any(|(l, m)| *l == Some(6) && m.contains("stratum+ssl")),
        "{e:?}"
    );
}
