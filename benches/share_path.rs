//! The per-share hot path, piece by piece: checking and rewriting a submit for upstream, mapping the pool's
//! reply back through the reply table, and encoding a broadcast once. Run: `cargo bench --bench share_path`.
//! End to end, `tests/zero_alloc.rs` shows a forwarded share costs the proxy no heap allocation.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fastproxy::pending::Pending;
use fastproxy::protocol::json::{write_notification, IdBuf, Parser};
use fastproxy::protocol::stratum::{check_submit, write_submit_upstream};
use std::hint::black_box;
use std::time::{Duration, Instant};

const SUBMIT: &[u8] = br#"{"id":4711,"method":"mining.submit","params":["farm.rig17","1a2b3c","000000000001","5f5e1000","0a0b0c0d","00002000"]}"#;

fn bench_rewrite(c: &mut Criterion) {
    let mut g = c.benchmark_group("share");
    g.throughput(Throughput::Elements(1));
    let mut parser = Parser::default();
    let mut line = SUBMIT.to_vec();
    let mut out = Vec::with_capacity(512);
    g.bench_function("parse + check + rewrite a submit for upstream", |b| {
        b.iter(|| {
            line.copy_from_slice(SUBMIT);
            out.clear();
            parser.parse(&mut line, |m| {
                let m = m.unwrap();
                let s = check_submit(&m.params, m.params_len, 6).unwrap();
                write_submit_upstream(
                    &mut out,
                    81_604_378_625,
                    "account.farm1",
                    &s,
                    [0x12u8, 0x34].into_iter(),
                );
            });
            black_box(out.len())
        })
    });
    let mut table: Pending<(usize, u64, IdBuf)> = Pending::default();
    let id = IdBuf::null();
    let now = Instant::now();
    let deadline = now + Duration::from_secs(30);
    g.bench_function("reply table: insert + take", |b| {
        b.iter(|| {
            let pid = table.insert((17, 42, id.clone()), 3, now, Some(deadline));
            black_box(table.take(pid).map(|e| e.value.0))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("broadcast");
    g.throughput(Throughput::Elements(1));
    let params = format!(
        r#"["4d16b6f85af6e219","{}","{}","{}",["{}","{}","{}"],"20000000","1d00ffff","5f5e1000",true]"#,
        "ab".repeat(32),
        "01".repeat(60),
        "02".repeat(40),
        "cd".repeat(32),
        "ef".repeat(32),
        "12".repeat(32)
    );
    let mut out = Vec::with_capacity(1024);
    g.bench_function("encode a mining.notify once (for all miners)", |b| {
        b.iter(|| {
            out.clear();
            write_notification(&mut out, "mining.notify", params.as_bytes());
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench_rewrite);

/// Shares judged per job before the next (clean) job: about 30 s of a 65,536-miner farm at 20 shares per
/// minute per miner, so the duplicate-detection set grows as large as it does in such a farm.
const SHARES_PER_JOB: u64 = 600_000;

/// Writes `n` into `out` as hex digits, in place (the low digits when `out` is short).
fn hex_counter(out: &mut [u8], n: u64) {
    for (i, d) in out.iter_mut().rev().enumerate() {
        *d = b"0123456789abcdef"[((n >> (4 * i)) & 15) as usize];
    }
}

fn bench_job(depth: usize) -> fastproxy::work::Job {
    fastproxy::work::Job {
        job_id: "j".into(),
        prevhash: [7; 32],
        coinb1: vec![1; 60],
        coinb2: vec![2; 40],
        merkle_branch: vec![[9; 32]; depth],
        version: 0x2000_0000,
        nbits: 0x1d00_ffff,
        ntime: 0x5f5e_1000,
        clean_jobs: true,
    }
}

/// A submit to [`bench_job`] with this extranonce2 (hex digits).
fn bench_submit(extranonce2: &[u8]) -> fastproxy::protocol::stratum::Submit<'_> {
    fastproxy::protocol::stratum::Submit {
        job_id: "j",
        extranonce2: std::str::from_utf8(extranonce2).unwrap(),
        ntime: "5f5e1000",
        nonce: "00000000",
        version_bits: None,
    }
}

fn bench_validation(c: &mut Criterion) {
    use fastproxy::validate::{check_stratum, BookJob, JobBook};
    let mut g = c.benchmark_group("validate");
    g.throughput(Throughput::Elements(1));
    // The floor: one SHA-256 compression (a V1 share needs 6 plus 3 per merkle branch level).
    let mut state = [7u32; 8];
    let block = [[3u8; 64].into()];
    g.bench_function("one SHA-256 compression (floor)", |b| {
        b.iter(|| sha2::compress256(black_box(&mut state), black_box(&block)))
    });
    for depth in [0usize, 4, 12] {
        let job = bench_job(depth);
        let mut book = JobBook::default();
        let e1p = [0xaa, 0xbb, 0xcc, 0xdd, 0x12, 0x34];
        // A new extranonce2 per share (a repeated one would be a duplicate), written in place.
        let mut en2 = *b"000000000000";
        let mut n = 0u64;
        let name = format!("rebuild + hash + classify a V1 share ({depth}-level merkle branch)");
        g.bench_function(name, |b| {
            b.iter(|| {
                if n.is_multiple_of(SHARES_PER_JOB) {
                    book.add(BookJob::Stratum(job.clone()), [0xff; 32]);
                }
                n += 1;
                hex_counter(&mut en2, n);
                let share = bench_submit(&en2);
                let entry = book.find("j").unwrap();
                black_box(check_stratum(entry, &e1p, &share, 0, &[0xff; 32], 7200))
            })
        });
    }
    g.finish();
    // Two shares hashed side by side, as the reactor does when two arrive in one round: time per share.
    let mut g = c.benchmark_group("validate_pairs");
    g.throughput(Throughput::Elements(2));
    for depth in [0usize, 4, 12] {
        use fastproxy::share_hash::share_hashes;
        use fastproxy::validate::{judge, prepare_stratum};
        let job = bench_job(depth);
        let mut book = JobBook::default();
        let e1p = [0xaa, 0xbb, 0xcc, 0xdd, 0x12, 0x34];
        let mut en2 = [*b"000000000000", *b"800000000000"];
        let mut n = 0u64;
        let name = format!("two V1 shares side by side ({depth}-level merkle branch)");
        g.bench_function(name, |b| {
            b.iter(|| {
                if n.is_multiple_of(SHARES_PER_JOB) {
                    book.add(BookJob::Stratum(job.clone()), [0xff; 32]);
                }
                n += 1;
                for e in en2.iter_mut() {
                    hex_counter(&mut e[1..], n);
                }
                let share = |k: usize| bench_submit(&en2[k]);
                let entry = book.get("j").unwrap();
                let checks =
                    [0, 1].map(|k| prepare_stratum(entry, &e1p, &share(k), 0, 7200).unwrap());
                let [a, b] = [0, 1].map(|k| entry.share_input(&checks[k]).unwrap());
                let hashes = share_hashes([&a, &b]);
                let entry = book.find("j").unwrap();
                black_box(hashes.map(|h| judge(entry, h, &[0xff; 32])))
            })
        });
    }
    g.finish();
    // A busy round's parked shares hashed together (sixteen at a time with AVX-512, the rest in pairs), as
    // `Reactor::judge_waiting_shares` does: prepare, hash and judge, time per share.
    let mut g = c.benchmark_group("validate_batch");
    for (depth, batch) in [(0usize, 64usize), (4, 64), (12, 64), (12, 16), (12, 2)] {
        use fastproxy::share_hash::{hash_many, ManyScratch};
        use fastproxy::validate::{judge, prepare_stratum};
        g.throughput(Throughput::Elements(batch as u64));
        let job = bench_job(depth);
        let mut book = JobBook::default();
        // One miner per share: its own prefix in extranonce1 and its own extranonce2 counter.
        let e1ps: Vec<[u8; 6]> = (0..batch as u16)
            .map(|m| {
                let [hi, lo] = m.to_be_bytes();
                [0xaa, 0xbb, 0xcc, 0xdd, hi, lo]
            })
            .collect();
        let mut en2s = vec![*b"000000000000"; batch];
        let (mut hashes, mut scratch) = (Vec::new(), ManyScratch::default());
        let mut n = 0u64;
        let name = format!("{batch} V1 shares in one round ({depth}-level merkle branch)");
        g.bench_function(name, |b| {
            b.iter(|| {
                if n.is_multiple_of(SHARES_PER_JOB / batch as u64) {
                    book.add(BookJob::Stratum(job.clone()), [0xff; 32]);
                }
                n += 1;
                for e in en2s.iter_mut() {
                    hex_counter(e, n);
                }
                let share = |k: usize| bench_submit(&en2s[k]);
                let entry = book.get("j").unwrap();
                let checks: Vec<_> = (0..batch)
                    .map(|k| prepare_stratum(entry, &e1ps[k], &share(k), 0, 7200).unwrap())
                    .collect();
                hash_many(
                    batch,
                    |k| entry.share_input(&checks[k]),
                    &mut hashes,
                    &mut scratch,
                );
                let entry = book.find("j").unwrap();
                for h in &hashes {
                    black_box(judge(entry, h.unwrap(), &[0xff; 32]));
                }
            })
        });
    }
    g.finish();
}

criterion_group!(validation, bench_validation);
criterion_main!(benches, validation);
