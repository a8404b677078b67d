//! Inputs the fuzzers (fuzz/, see fuzz/README.md) found, replayed through the same invariant code the fuzz
//! targets run, so that `cargo test` keeps them fixed; and the whole seed corpus, which must pass every
//! invariant too.

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod invariants;

use fastproxy::framing::{feed, Framed};
use std::ops::ControlFlow;
use std::path::Path;

/// Every seed in fuzz/corpus/<target>/ passes its target's invariants.
#[test]
fn seed_corpus_passes_every_invariant() {
    type Check = fn(&[u8]);
    let targets: [(&str, Check); 8] = [
        ("framing", invariants::framing),
        ("miner_msg_stratum", invariants::miner_msg_stratum),
        ("miner_msg_equihash", invariants::miner_msg_equihash),
        ("pool_msg", invariants::pool_msg),
        ("proxy_protocol", invariants::proxy_protocol),
        ("config", invariants::config),
        ("sv2_client", invariants::sv2_client),
        ("sv2_session", invariants::sv2_session),
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join("corpus");
    for (target, check) in targets {
        let mut n = 0;
        for entry in std::fs::read_dir(root.join(target)).expect("corpus dir") {
            let path = entry.expect("corpus entry").path();
            let data = std::fs::read(&path).expect("corpus file");
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if let Err(e) = std::panic::catch_unwind(|| check(&data)) {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!("seed {target}/{name}: {msg}");
            }
            n += 1;
        }
        assert!(n > 0, "no seeds for {target}");
    }
}

/// Feeds `chunks` one after the other, as a connection's reads; the lines handed out and the last verdict.
fn feed_chunks(chunks: &[&[u8]], max_line: usize) -> (Vec<Vec<u8>>, Framed) {
    let mut partial = Vec::new();
    let mut lines = Vec::new();
    let mut verdict = Framed::Ok;
    for chunk in chunks {
        let mut data = chunk.to_vec();
        verdict = feed(&mut partial, &mut data, max_line, |l| {
            lines.push(l.to_vec());
            ControlFlow::Continue(())
        });
        if verdict != Framed::Ok {
            break;
        }
    }
    (lines, verdict)
}

/// Found by the `framing` target: a complete line longer than `max_line` that arrives within one read was
/// handed out (only an unfinished tail was measured), while the same line split over two reads is TooLong.
#[test]
fn framing_a_long_line_in_one_read_is_too_long() {
    let (lines, verdict) = feed_chunks(&[b"{\"id\":1}\nxxxxx\n"], 4);
    assert_eq!(verdict, Framed::TooLong, "handed out: {lines:?}");
    assert!(lines.iter().all(|l| l.len() <= 4), "{lines:?}");
    // Split, the same bytes were already refused.
    assert_eq!(
        feed_chunks(&[b"{\"id\":1}\nxx", b"xxx\n"], 4).1,
        Framed::TooLong
    );
    // A blank (whitespace) line over the limit too, whichever way it arrives.
    assert_eq!(feed_chunks(&[b"      \n"], 4).1, Framed::TooLong);
    assert_eq!(feed_chunks(&[b"   ", b"   \n"], 4).1, Framed::TooLong);
    // The fuzzer's input: limit 4 (first byte 3), no stop, no chunk sizes, then the stream.
    invariants::framing(b"\x03\x00\x00aaaaa\n");
    invariants::framing(b"\x03\x00\x00\r\n      \n");
}

/// Found by `miner_msg_stratum` (a false alarm of the check, kept so it stays fixed): serde_json's default
/// float parsing is not correctly rounded; simd-json's is. The id echoes within an ulp.
#[test]
fn float_ids_echo_within_an_ulp() {
    invariants::miner_msg_stratum(b"\x13\xbe\x00\xef{\"id\":\t66632.666666666666}");
}

/// A minimal valid config with `extra` lines added to its proxy entry.
fn config_with(extra: &str) -> String {
    format!(
        "proxies:\n  - name: a\n    protocol: stratum\n    listen: [{{address: \"127.0.0.1:3333\"}}]\n    pools: [{{url: \"stratum+tcp://127.0.0.1:3334\", user: u}}]\n{extra}"
    )
}

/// Found by the `config` target: a vardiff `retarget_interval` that is finite and positive but too large for a
/// `Duration` (over about 1.8e19 s) passes the check, then `Duration::from_secs_f64` panics in the reactor's
/// once-a-second retarget.
#[test]
fn config_vardiff_retarget_interval_must_fit_a_duration() {
    let yaml = config_with("    vardiff: {retarget_interval: 1e300}\n");
    if let Ok(c) = fastproxy::config::Config::from_yaml(&yaml) {
        let v = c.proxies[0].vardiff.as_ref().expect("vardiff");
        assert!(
            std::time::Duration::try_from_secs_f64(v.retarget_interval).is_ok(),
            "retarget_interval {} accepted",
            v.retarget_interval
        );
    }
    invariants::config(yaml.as_bytes());
}

/// `Authenticator::check` turns `ban_seconds` into a Duration with `from_secs_f64(x.clamp(..))`, which panics
/// on NaN: non-finite values must stay refused (today by the YAML reader's float policy).
#[test]
fn config_auth_non_finite_ban_seconds_is_refused() {
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$ipoulaARisN3sb2qsrbxQA$FbU1qGio1sx1E72rGUx4wveKU4Irjz/C0fRPMkvYlmo";
    for ban in [".nan", ".inf", "-.inf"] {
        let yaml = config_with(&format!(
            "    auth: {{users: [{{name: farm1, password_hash: \"{hash}\"}}], ban_seconds: {ban}}}\n"
        ));
        invariants::config(yaml.as_bytes());
    }
}

/// Found by `pool_msg` and `miner_msg_stratum` (false alarms of the check, kept so they stay fixed): simd-json
/// refuses integers beyond 64 bits (also when a duplicate key hides them from serde_json's reading) and
/// numbers whose exponent is out of f64's range (`0e244444...`), which serde_json reads; the line is refused
/// whole.
#[test]
fn numbers_beyond_f64_or_64_bits_may_be_refused() {
    invariants::miner_msg_stratum(
        b"\x03\x00{\"id\":1,\"method\":\"x\",\"params\":[{\"a\":533333333333333333333333333333,\"a\":0}]}",
    );
    invariants::pool_msg(
        b"\x03{\"id\":null,\"method\":\"mining.set_difficulty\",\"params\":[18446744073709551616]}",
    );
    let mut input = b"\x03{\"id\":0e2".to_vec();
    input.extend_from_slice(&[b'4'; 115]);
    input.extend_from_slice(b"2\n}");
    invariants::pool_msg(&input);
    invariants::pool_msg(b"\x03{\"id\":null,\"method\":\"mining.notify\",\"params\":[1e-400]}");
}

/// Found by `miner_msg_stratum`: with a repeated top-level key the parser mixed occurrences: `result` from the
/// last one but `result_json` (and `params_json`, stale `params[i]`) from an earlier one, so the subscribe
/// parser and the reply writer read different results. Either the last occurrence wins whole (serde_json's
/// reading) or the line is refused.
#[test]
fn duplicate_keys_are_read_consistently() {
    invariants::miner_msg_stratum(
        b"\x13B\xef\x00{\"result\": [\"slush.minssword\"], \"id\": 2, \"result\": \"ize\"}",
    );
    invariants::miner_msg_stratum(
        b"\x03\x00{\"id\":1,\"params\":[[1],\"a\",\"b\"],\"params\":[\"x\"]}",
    );
    invariants::pool_msg(
        b"\x03{\"id\":2,\"result\":[null,\"00\",8],\"error\":null,\"result\":true}",
    );
}

#[test]
fn a_repeated_id_may_be_refused_for_its_first_value() {
    // Found by fuzz/pool_msg: the first "id" is a float too long to echo, the second is 8; the reference
    // parser keeps the last, the proxy refused the line for the first.
    let long = "6".repeat(56) + "." + &"6".repeat(60) + "8";
    let line = format!("\x03{{\"id\":{long},\"id\":8,\"method\":\"mining.ping\",\"params\":[]}}");
    invariants::pool_msg(line.as_bytes());
}

/// sv2_client found a NewExtendedMiningJob whose BOOL `version_rolling_allowed` was the byte 0x02: only its low
/// bit counts (SV2 §3.1: senders may set the padding bits), so it is `false` and encodes back as 0x00.
#[test]
fn sv2_a_bool_with_padding_bits_reads_its_low_bit() {
    use fastproxy::protocol::sv2::{messages::decode, Event};
    // channel 2, job 1, no min_ntime, version 0x20000000, the BOOL, no merkle path, empty coinbase parts.
    let job = |flag: u8| {
        let mut p = vec![2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x20, flag, 0];
        p.extend_from_slice(&[0, 0, 0, 0]);
        p
    };
    for (flag, allowed) in [
        (0x00, false),
        (0x01, true),
        (0x02, false),
        (0x03, true),
        (0xfe, false),
    ] {
        match decode(0, 0x1f, &mut job(flag)) {
            Ok(Event::NewJob(j)) => assert_eq!(j.version_rolling_allowed, allowed, "0x{flag:02x}"),
            other => panic!("0x{flag:02x}: {other:?}"),
        }
        // Through an encrypted session, as the fuzzer sent it: mode 2, whole; SetupConnection.Success first.
        let mut input = vec![2, 0, 0, 0, 0x01, 6, 0, 2, 0, 0, 0, 0, 0];
        let payload = job(flag);
        input.extend_from_slice(&[0x00, 0x80, 0x1f, payload.len() as u8, 0]);
        input.extend_from_slice(&payload);
        invariants::sv2_client(&input);
    }
}
