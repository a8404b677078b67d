//! The status page as a person sees it: headless Chromium loads `/` from the metrics server on 127.0.0.1, runs
//! its script (which polls `/status`), and the rendered DOM must show the numbers `/status` holds; a screenshot
//! must be a real picture. Needs Chromium (Debian: `apt-get install -y chromium`); without it the test FAILS
//! with that instruction, it never passes silently.

use fastproxy::config::Config;
use fastproxy::control::Control;
use fastproxy::metrics::{self, MetricsOptions};
use fastproxy::stats::{ProxyStats, Reject};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The Chromium binary: `$CHROMIUM`, else `chromium` / `chromium-browser` on the PATH or in /usr/bin.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]);
    for dir in dirs {
        for name in ["chromium", "chromium-browser"] {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "Chromium is not installed, so the status page cannot be checked. Install it (Debian: \
         `apt-get install -y chromium`) or point $CHROMIUM at the binary. This test does not skip."
    );
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p = std::env::temp_dir().join(format!(
            "fastproxy-page-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs headless Chromium on `url` with `extra` arguments; returns its stdout. Killed after 90 s.
fn run_chromium(url: &str, extra: &[String]) -> Vec<u8> {
    let profile = TempDir::new("profile");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1280,900",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.0.display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run Chromium: {e}"));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stdout.read_to_end(&mut b);
        b
    });
    let err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stderr.read_to_end(&mut b);
        b
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("Chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = out.join().unwrap();
    let err = err.join().unwrap();
    assert!(
        status.success(),
        "Chromium failed ({status}): {}",
        String::from_utf8_lossy(&err)
    );
    out
}

fn get_json(addr: SocketAddr, path: &str) -> Value {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let at = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert!(raw.starts_with(b"HTTP/1.1 200"), "{path}: not 200");
    serde_json::from_slice(&raw[at + 4..]).expect("JSON body")
}

/// The text content of the element carrying `attr` (e.g. `id="total-miners"`) after `from`.
fn text_after<'a>(dom: &'a str, from: usize, attr: &str) -> Option<&'a str> {
    let at = from + dom[from..].find(attr)?;
    let open_end = at + dom[at..].find('>')? + 1;
    let close = open_end + dom[open_end..].find('<')?;
    Some(&dom[open_end..close])
}

/// The text of cell `field` in the row whose `data-KEY` is `value`.
fn row_field<'a>(dom: &'a str, key: &str, value: &str, field: &str) -> &'a str {
    let row = format!("<tr data-{key}=\"{value}\"");
    let at = dom
        .find(&row)
        .unwrap_or_else(|| panic!("no row {row} in the DOM:\n{dom}"));
    let end = at + dom[at..].find("</tr>").unwrap();
    text_after(&dom[..end], at, &format!("data-field=\"{field}\""))
        .unwrap_or_else(|| panic!("no {field} in row {row}"))
}

/// Stats of two proxies, one on its first pool, one failed over to its backup.
fn stats() -> (Arc<ProxyStats>, Arc<ProxyStats>) {
    let btc = Arc::new(ProxyStats::new(
        [
            "stratum+tcp://pool-a.example:3333",
            "stratum+tcp://pool-b.example:3333",
        ],
        100,
    ));
    btc.miners_connected.store(17, Relaxed);
    btc.miners_total.store(20, Relaxed);
    btc.shares_accepted.store(168, Relaxed);
    btc.shares_rejected.store(6, Relaxed);
    btc.shares_errored.store(2, Relaxed);
    btc.on_share_error(Reject::PoolUnavailable);
    btc.on_share_error(Reject::Timeout);
    btc.upstream_moved(None, Some(0));
    let p = btc.pool(0);
    p.on_connecting(false);
    p.on_ready();
    p.set_difficulty(65536.0);
    for _ in 0..168 {
        p.on_accepted(65536.0);
    }
    for _ in 0..5 {
        p.on_rejected(Reject::Stale);
    }
    p.on_rejected(Reject::Duplicate);
    for ms in [2, 5, 9, 14, 40] {
        p.on_reply(Duration::from_millis(ms));
    }
    let now = Instant::now();
    let rig1 = btc.workers.attach("farm.rig1", now);
    for _ in 0..123 {
        rig1.on_accepted(65536.0, now);
    }
    let rig2 = btc.workers.attach("farm.rig2", now);
    for _ in 0..45 {
        rig2.on_accepted(65536.0, now);
    }
    for _ in 0..6 {
        rig2.on_rejected(now);
    }
    std::mem::forget((rig1, rig2));

    let ltc = Arc::new(ProxyStats::new(
        [
            "stratum+tcp://ltc-a.example:3333",
            "stratum+tcp://ltc-b.example:3333",
        ],
        100,
    ));
    ltc.miners_connected.store(3, Relaxed);
    ltc.upstream_moved(None, Some(0));
    ltc.pool(0).on_connecting(false);
    ltc.pool(0).on_closed(false);
    ltc.upstream_moved(Some(0), Some(1));
    ltc.pool(1).on_connecting(true);
    ltc.pool(1).on_ready();
    ltc.failovers.store(1, Relaxed);
    (btc, ltc)
}

/// The control state of a `btc-farm` entry with routes main (70) and fee (30), two pools each: main's first
/// pool up with 600 of accepted difficulty, fee's pools down with 400.
fn control() -> Arc<Control> {
    let y = "proxies:\n  - name: btc-farm\n    protocol: stratum\n    listen: [{address: 127.0.0.1:1}]\n    routes:\n      - { name: main, weight: 70, pools: [{url: stratum+tcp://pool-a.example:3333, user: u}, {url: stratum+tcp://pool-b.example:3333, user: u}] }\n      - { name: fee, weight: 30, pools: [{url: stratum+tcp://fee.example:3333, user: f}] }\n";
    let c = Arc::new(Control::from_config(&Config::from_yaml(y).unwrap()));
    c.route((0, 0)).pools()[0].up.store(true, Relaxed);
    c.route((0, 0)).accepted.add(600.0);
    c.route((0, 1)).accepted.add(400.0);
    c
}

/// Checks the route rows of the page against the `routes` of `/status`'s first proxy.
fn check_routes(dom: &str, status: &Value) {
    let routes = status["proxies"][0]["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 2, "{status}");
    let pct = |v: &Value| format!("{:.1} %", 100.0 * v.as_f64().unwrap());
    for r in routes {
        let name = r["name"].as_str().unwrap();
        assert_eq!(
            row_field(dom, "route", name, "weight"),
            r["weight"].to_string().trim_end_matches(".0"),
            "{name} weight"
        );
        assert_eq!(
            row_field(dom, "route", name, "target"),
            pct(&r["target_split"]),
            "{name} target"
        );
        assert_eq!(
            row_field(dom, "route", name, "measured"),
            pct(&r["measured_split"]),
            "{name} measured"
        );
    }
}

/// Pixels of a PNG as RGBA rows.
fn decode_png(path: &Path) -> (u32, u32, Vec<[u8; 4]>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("PNG size")];
    let info = reader.next_frame(&mut buf).expect("PNG frame");
    let bytes = &buf[..info.buffer_size()];
    let px: Vec<[u8; 4]> = match info.color_type {
        png::ColorType::Rgba => bytes
            .chunks_exact(4)
            .map(|c| [c[0], c[1], c[2], c[3]])
            .collect(),
        png::ColorType::Rgb => bytes
            .chunks_exact(3)
            .map(|c| [c[0], c[1], c[2], 255])
            .collect(),
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    (info.width, info.height, px)
}

#[test]
fn the_status_page_shows_what_status_holds() {
    let (btc, ltc) = stats();
    let control = control();
    let m = metrics::start_with_control(
        "127.0.0.1:0".parse().unwrap(),
        vec![("btc-farm".into(), btc), ("ltc-farm".into(), ltc)],
        Some(control.clone()),
        MetricsOptions {
            history_interval: Duration::from_millis(100),
            history_len: 360,
        },
    )
    .unwrap();
    let addr = m.local_addr();
    // Let the history gather a few samples for the chart.
    std::thread::sleep(Duration::from_millis(500));
    let status = get_json(addr, "/status");
    let url = format!("http://{addr}/");

    let started = Instant::now();
    let dom = String::from_utf8(run_chromium(&url, &["--dump-dom".to_string()])).unwrap();
    eprintln!("Chromium --dump-dom took {:?}", started.elapsed());
    assert!(
        dom.contains("id=\"total-miners\""),
        "not the status page:\n{dom}"
    );
    let error = text_after(&dom, 0, "id=\"error\"").unwrap_or_default();
    assert!(error.is_empty(), "the page shows an error: {error}");
    let totals = &status["totals"];
    assert_eq!(totals["miners_connected"], 20);
    assert_eq!(
        text_after(&dom, 0, "id=\"total-miners\""),
        Some(totals["miners_connected"].to_string().as_str()),
        "miners connected"
    );
    assert_eq!(
        text_after(&dom, 0, "id=\"total-accepted\""),
        Some(totals["shares_accepted"].to_string().as_str())
    );
    assert_eq!(
        text_after(&dom, 0, "id=\"total-rejected\""),
        Some(totals["shares_rejected"].to_string().as_str())
    );
    let updated = text_after(&dom, 0, "id=\"updated\"").unwrap();
    assert!(updated.starts_with("updated "), "{updated}");
    let hashrate = text_after(&dom, 0, "id=\"total-hashrate\"").unwrap();
    assert!(
        hashrate.ends_with("H/s") && !hashrate.starts_with("0 "),
        "{hashrate}"
    );

    let note = text_after(&dom, 0, "id=\"chart-note\"").unwrap();
    let samples: usize = note.split(' ').next().unwrap().parse().unwrap();
    assert!(samples >= 2, "the chart has no history: {note}");

    // Workers: the accepted / rejected counts /status gives.
    let btc_json = &status["proxies"][0];
    for w in btc_json["workers"].as_array().unwrap() {
        if w["other"] == true {
            continue;
        }
        let name = w["name"].as_str().unwrap();
        assert_eq!(
            row_field(&dom, "worker", name, "accepted"),
            w["shares_accepted"].to_string(),
            "{name} accepted"
        );
        assert_eq!(
            row_field(&dom, "worker", name, "rejected"),
            w["shares_rejected"].to_string(),
            "{name} rejected"
        );
        assert_eq!(
            row_field(&dom, "worker", name, "miners"),
            w["connected"].to_string()
        );
    }
    assert_eq!(row_field(&dom, "worker", "farm.rig1", "accepted"), "123");
    // Pools and states.
    assert_eq!(
        row_field(&dom, "pool", "1", "url"),
        "stratum+tcp://pool-a.example:3333"
    );
    assert_eq!(row_field(&dom, "pool", "1", "accepted"), "168");
    assert_eq!(row_field(&dom, "pool", "1", "rejected"), "6");
    assert_eq!(row_field(&dom, "reason", "stale", "pool"), "5");
    assert_eq!(row_field(&dom, "reason", "timeout", "proxy"), "1");
    let ltc_at = dom.find("data-proxy=\"ltc-farm\"").expect("second proxy");
    assert_eq!(
        text_after(&dom, ltc_at, "data-field=\"state\""),
        Some("failed over to pool 2")
    );
    let btc_at = dom.find("data-proxy=\"btc-farm\"").expect("first proxy");
    assert_eq!(
        text_after(&dom, btc_at, "data-field=\"state\""),
        Some("subscribed")
    );

    // Routes: weight, target and measured split as /status has them (fee is down: target 0).
    check_routes(&dom, &status);
    assert_eq!(row_field(&dom, "route", "main", "target"), "100.0 %");
    assert_eq!(row_field(&dom, "route", "fee", "measured"), "40.0 %");
    assert_eq!(row_field(&dom, "route", "fee", "state"), "down");
    // A weight changed at runtime and fee's pool back up: the next load of the page shows it.
    control.set_weight((0, 1), 10.0).unwrap();
    control.route((0, 1)).pools()[0].up.store(true, Relaxed);
    control.route((0, 1)).accepted.add(1000.0);
    let status = get_json(addr, "/status");
    let dom = String::from_utf8(run_chromium(&url, &["--dump-dom".to_string()])).unwrap();
    check_routes(&dom, &status);
    assert_eq!(row_field(&dom, "route", "fee", "weight"), "10");
    assert_eq!(row_field(&dom, "route", "fee", "target"), "12.5 %");
    assert_eq!(row_field(&dom, "route", "fee", "measured"), "70.0 %");
    assert_eq!(row_field(&dom, "route", "fee", "state"), "available");

    // The screenshot: a real picture of the page, chart included.
    let dir = TempDir::new("shot");
    let shot = dir.0.join("status.png");
    run_chromium(&url, &[format!("--screenshot={}", shot.display())]);
    let size = std::fs::metadata(&shot)
        .map(|m| m.len())
        .unwrap_or_else(|e| panic!("no screenshot written: {e}"));
    assert!(size > 20_000, "screenshot of {size} bytes: too small");
    let (w, h, px) = decode_png(&shot);
    assert_eq!((w, h), (1280, 900));
    let mut colours = std::collections::HashSet::new();
    for p in &px {
        colours.insert(*p);
    }
    assert!(
        colours.len() > 50,
        "{} colours: the screenshot is (nearly) blank",
        colours.len()
    );
    // The chart (#1a73e8: its line and the marker of the latest sample) is drawn.
    let blue = px
        .iter()
        .filter(|p| p[2] > 200 && p[0] < 80 && (90..150).contains(&p[1]))
        .count();
    assert!(
        blue > 20,
        "no chart line in the screenshot ({blue} blue pixels)"
    );
    if let Some(keep) = std::env::var_os("FASTPROXY_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
    m.stop();
}
