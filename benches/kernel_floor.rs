//! The kernel's floor under the proxy's CPU per share: what the socket calls a forwarded share cannot avoid
//! cost on this machine, measured over real TCP connections on 127.0.0.1.
//!
//! Per share the proxy makes one `recv` (the miner's submit) and one `send` (the reply); its pool side is
//! batched (about a hundred shares per call under load). One iteration here is a miner's submit and the reply
//! over one of 1,000 connections: two sends and two recvs, so **half an iteration is the floor of one share**.
//! On loopback the sender's `send` also runs the receiver's TCP input, as it does in the proxy.
//! Run: `cargo bench --bench kernel_floor`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

const SUBMIT: &[u8] = b"{\"id\":4711,\"method\":\"mining.submit\",\"params\":[\"farm.rig17\",\"1a2b3c\",\"0000000000000001\",\"5f5e1000\",\"0a0b0c0d\"]}\n";
const REPLY: &[u8] = b"{\"id\":4711,\"result\":true,\"error\":null}\n";
const PAIRS: usize = 1000;

fn pairs() -> Vec<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local addr");
    (0..PAIRS)
        .map(|_| {
            let miner = TcpStream::connect(addr).expect("connect");
            let (proxy, _) = listener.accept().expect("accept");
            for s in [&miner, &proxy] {
                s.set_nodelay(true).expect("nodelay");
            }
            (miner, proxy)
        })
        .collect()
}

fn bench_round_trip(c: &mut Criterion) {
    let mut conns = pairs();
    let mut buf = [0u8; 512];
    let mut next = 0usize;
    let mut g = c.benchmark_group("kernel_floor");
    g.throughput(Throughput::Elements(1));
    g.bench_function("submit + reply over loopback TCP (2 sends, 2 recvs)", |b| {
        b.iter(|| {
            let (miner, proxy) = &mut conns[next];
            next = (next + 1) % PAIRS;
            miner.write_all(SUBMIT).expect("send submit");
            let mut got = 0;
            while got < SUBMIT.len() {
                got += proxy.read(&mut buf[got..]).expect("recv submit");
            }
            proxy.write_all(REPLY).expect("send reply");
            let mut got = 0;
            while got < REPLY.len() {
                got += miner.read(&mut buf[got..]).expect("recv reply");
            }
            black_box(&buf);
        })
    });
    g.finish();
}

/// One job broadcast: the same ~1 KB mining.notify (12 merkle branches) written to each of 1,000 miners in
/// turn. Only the `send` calls are timed (the miners read outside the timed part): the floor of fan-out per
/// miner.
fn bench_fanout_send(c: &mut Criterion) {
    let mut conns = pairs();
    let notify = vec![b'x'; 1100];
    let mut buf = vec![0u8; 64 * 1024];
    let mut g = c.benchmark_group("kernel_floor");
    g.throughput(Throughput::Elements(1));
    g.bench_function("one 1.1 KB notify sent to one miner (send only)", |b| {
        b.iter_custom(|iters| {
            let mut timed = std::time::Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(PAIRS as u64) as usize;
                let start = std::time::Instant::now();
                for (_, proxy) in conns.iter_mut().take(n) {
                    proxy.write_all(&notify).expect("send notify");
                }
                timed += start.elapsed();
                for (miner, _) in conns.iter_mut().take(n) {
                    let mut got = 0;
                    while got < notify.len() {
                        got += miner.read(&mut buf[got..]).expect("recv notify");
                    }
                }
                left -= n as u64;
            }
            timed
        })
    });
    g.finish();
}

criterion_group!(benches, bench_round_trip, bench_fanout_send);
criterion_main!(benches);
