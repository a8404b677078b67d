//! Line framing and JSON parsing of the messages on the hot path (a miner's submit, a pool's reply).
//! Run: `cargo bench --bench framing`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fastproxy::framing::feed;
use fastproxy::protocol::json::Parser;
use std::hint::black_box;
use std::ops::ControlFlow;

const SUBMIT: &[u8] = br#"{"id":4711,"method":"mining.submit","params":["farm.rig17","1a2b3c","0000000000000001","5f5e1000","0a0b0c0d"]}"#;
const REPLY: &[u8] = br#"{"id":81604378625,"result":true,"error":null}"#;

fn stream(line: &[u8], n: usize) -> Vec<u8> {
    let mut s = Vec::with_capacity((line.len() + 1) * n);
    for _ in 0..n {
        s.extend_from_slice(line);
        s.push(b'\n');
    }
    s
}

fn bench_framing(c: &mut Criterion) {
    let data = stream(SUBMIT, 1000);
    let mut g = c.benchmark_group("framing");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("1000 submit lines in 1500-byte reads", |b| {
        let mut buf = data.clone();
        let mut partial = Vec::new();
        b.iter(|| {
            buf.copy_from_slice(&data);
            let mut n = 0usize;
            for chunk in buf.chunks_mut(1500) {
                feed(&mut partial, chunk, 16384, |l| {
                    n += l.len();
                    ControlFlow::Continue(())
                });
            }
            black_box(n)
        })
    });
    g.finish();
}

fn bench_parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    let mut parser = Parser::default();
    g.bench_function("miner submit", |b| {
        let mut line = SUBMIT.to_vec();
        b.iter(|| {
            line.copy_from_slice(SUBMIT);
            parser.parse(&mut line, |m| black_box(m.map(|m| m.params_len).ok()))
        })
    });
    g.bench_function("pool share reply", |b| {
        let mut line = REPLY.to_vec();
        b.iter(|| {
            line.copy_from_slice(REPLY);
            parser.parse(&mut line, |m| {
                black_box(m.map(|m| m.id_scalar.as_u64()).ok())
            })
        })
    });
    g.finish();
}

criterion_group!(benches, bench_framing, bench_parse);
criterion_main!(benches);
