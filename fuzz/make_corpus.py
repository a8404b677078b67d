#!/usr/bin/env python3
"""Writes the seed corpus fuzz/corpus/<target>/ from real messages (shared/specs/stratum.md, ZIP 301, the
Zcash genesis block in tests/fixtures, HAProxy's proxy-protocol.txt, `fastproxy --generate-config`).

Run from anywhere: python3 fuzz/make_corpus.py. Each file starts with the few control bytes the target reads
first (see fuzz/src/lib.rs), then the message."""
import hashlib, json, os, struct, subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CORPUS = os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- real V1 lines (shared/specs/stratum.md, slush pool docs, BIP 310, NiceHash extranonce)
V1_MINER = {
    "subscribe": '{"id": 1, "method": "mining.subscribe", "params": ["cgminer/4.10.0"]}',
    "subscribe_session": '{"id": 1, "method": "mining.subscribe", "params": ["bmminer/2.0.0", "ae6812eb4cd7735a302a8a9dd95cf71f"]}',
    "authorize": '{"params": ["slush.miner1", "password"], "id": 2, "method": "mining.authorize"}',
    "configure": '{"id":1,"method":"mining.configure","params":[["version-rolling","minimum-difficulty"],{"version-rolling.mask":"1fffe000","version-rolling.min-bit-count":2,"minimum-difficulty.value":2048}]}',
    "extranonce_subscribe": '{"id": 3, "method": "mining.extranonce.subscribe", "params": []}',
    "suggest_difficulty": '{"id": 4, "method": "mining.suggest_difficulty", "params": [0.001]}',
    "submit": '{"params": ["slush.miner1", "bf", "00000001", "504e86ed", "b2957c02"], "id": 4, "method": "mining.submit"}',
    "submit_version": '{"id":"s-9","method":"mining.submit","params":["w1.rig","4f","0a0b0c0d","5f5e1000","0a0b0c0d","00002000"]}',
    "submit_escaped_job": '{"id":9,"method":"mining.submit","params":["w","j\\"1\\u00e9","00000001","5f5e1000","0a0b0c0d"]}',
}
NOTIFY = ('{"params": ["bf", "4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000",'
          '"01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20020862062f503253482f04b8864e5008",'
          '"072f736c7573682f000000000100f2052a010000001976a914d23fcdf86f7e756a64a7a9688ef9903327048ed988ac00000000", [],'
          '"00000002", "1c2ac4af", "504e86b9", false], "id": null, "method": "mining.notify"}')
V1_POOL = {
    "subscribe_result": '{"id": 1, "result": [ [ ["mining.set_difficulty", "b4b6693b72a50c7116db18d6497cac52"], ["mining.notify", "ae6812eb4cd7735a302a8a9dd95cf71f"]], "08000002", 4], "error": null}',
    "subscribe_result_pair": '{"id":2,"result":[["mining.notify","ae6812eb4cd7735a302a8a9dd95cf71f"],"f8002c90",8],"error":null}',
    "subscribe_result_null": '{"id":2,"result":[null,"f8002c90",8],"error":null}',
    "configure_result": '{"id":1,"result":{"version-rolling":true,"version-rolling.mask":"1fffe000"},"error":null}',
    "authorize_result": '{"error": null, "id": 2, "result": true}',
    "notify": NOTIFY,
    "notify_branch": '{"id":null,"method":"mining.notify","params":["4f","00000000000000000000000000000000000000000000000000000000000000aa","0100","ffff",["' + "11" * 32 + '","' + "22" * 32 + '"],"20000000","1d00ffff","5f5e1000",true]}',
    "set_difficulty": '{"id":null,"method":"mining.set_difficulty","params":[65536]}',
    "set_difficulty_frac": '{"id":null,"method":"mining.set_difficulty","params":[0.001]}',
    "set_extranonce": '{"id":null,"method":"mining.set_extranonce","params":["08000002",4]}',
    "set_version_mask": '{"id":null,"method":"mining.set_version_mask","params":["1fffe000"]}',
    "reject": '{"id":4,"result":null,"error":[23,"Low difficulty share",null]}',
    "reject_object": '{"id":5,"result":null,"error":{"code":21,"message":"Job not found"}}',
    "reconnect": '{"id":null,"method":"client.reconnect","params":["pool2.example.com",3333,5]}',
    "show_message": '{"id":null,"method":"client.show_message","params":["maintenance at 12:00 UTC"]}',
    "get_version": '{"id":7,"method":"client.get_version","params":[]}',
    "ping": '{"id":8,"method":"mining.ping","params":[]}',
}

# --- Equihash (ZIP 301) with the Zcash genesis block
g = json.load(open(os.path.join(ROOT, "tests", "fixtures", "zcash_genesis.json")))
nonce_header = bytes.fromhex(g["nonce"])[::-1]  # display order -> header order
time_le = struct.pack("<I", g["time"]).hex()
bits_le = struct.pack("<I", int(g["bits"], 16)).hex()
version_le = struct.pack("<I", g["version"]).hex()
merkle = bytes.fromhex(g["merkle_root"])[::-1].hex()
solution = "fd4005" + g["solution"]
nonce1, p_, nonce2 = nonce_header[:4], nonce_header[4:6], nonce_header[6:]
EQ_MINER = {
    "subscribe": '{"id":1,"method":"mining.subscribe","params":["nheqminer/0.5c",null,"zec.pool.example",3357]}',
    "authorize": '{"id":2,"method":"mining.authorize","params":["t1worker.rig1","x"]}',
    "submit_genesis": '{"id":4,"method":"mining.submit","params":["t1worker.rig1","1","%s","%s","%s"]}'
    % (time_le, nonce2.hex(), solution),
}
EQ_POOL = {
    "subscribe_result": '{"id":1,"result":["4e8a0c1f","%s"],"error":null}' % nonce1.hex(),
    "subscribe_result_null": '{"id":1,"result":[null,"0a0b0c0d0e0f"],"error":null}',
    "set_target": '{"id":null,"method":"mining.set_target","params":["0007ffff00000000000000000000000000000000000000000000000000000000"]}',
    "notify_genesis": '{"id":null,"method":"mining.notify","params":["1","%s","%s","%s","%s","%s","%s",true]}'
    % (version_le, "00" * 32, merkle, "00" * 32, time_le, bits_le),
    "notify_9": '{"id":null,"method":"mining.notify","params":["2","00000020","%s","%s","%s","%s","%s",false,true]}'
    % ("11" * 32, "22" * 32, "00" * 32, time_le, bits_le),
    "set_extranonce": '{"id":null,"method":"mining.set_extranonce","params":["0a0b0c0d"]}',
}

# framing: [limit-1, stop_after, n sizes, sizes..., stream]
stream = "\n".join(list(V1_MINER.values())[:5]) + "\r\n\n" + V1_MINER["submit"] + "\n{\"partial"
put("framing", "v1_lines", bytes([0x80 | 30, 0, 3, 7, 13, 1]) + stream.encode())
put("framing", "crlf_blank", bytes([15, 2, 2, 1, 5]) + b"{\"a\":1}\r\n\r\n \n{\"b\":2}\n" + b"x" * 20 + b"\n")
put("framing", "long_line", bytes([9, 0, 1, 4]) + b"0123456789\nab\n")

# miner lines, V1: [b (en2 size 4, prefix 2), prefix 2 bytes, sel, line]
for k, line in V1_MINER.items():
    put("miner_msg_stratum", k, bytes([3 | (2 << 3), 0xBE, 0xEF, 0]) + line.encode())
# en2 size 8 without a prefix for the plain submit
put("miner_msg_stratum", "submit_en2_4_noprefix", bytes([3, 5]) + V1_MINER["submit"].encode())

# miner lines, Equihash: [b (nonce2 26 bytes, (200,9), prefix), prefix, sel, line]
for k, line in EQ_MINER.items():
    put("miner_msg_equihash", k, bytes([25 | (2 << 5) | 0x80]) + p_ + bytes([1]) + line.encode())
small_solution = "24" + "5a" * 36  # (48, 5): 36-byte solutions
put("miner_msg_equihash", "submit_48_5",
    bytes([7 | (0 << 5) | 0x80, 0x12, 0x34, 0]) +
    ('{"id":"x","method":"mining.submit","params":["w","j","%s","%s","%s"]}'
     % (time_le, "00" * 8, small_solution)).encode())

# pool lines: [min_keep-1, line]
for k, line in V1_POOL.items():
    put("pool_msg", "v1_" + k, bytes([3]) + line.encode())
for k, line in EQ_POOL.items():
    put("pool_msg", "eq_" + k, bytes([3]) + line.encode())

# PROXY protocol: [cut (u16 LE), bytes]; cut at the header's end, a Stratum line after it.
payload = (V1_MINER["subscribe"] + "\n").encode()
def pp(name, header):
    put("proxy_protocol", name, struct.pack("<H", len(header)) + header + payload)
pp("v1_tcp4", b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n")
pp("v1_tcp6", b"PROXY TCP6 2001:db8::1 2001:db8::2 4000 3333\r\n")
pp("v1_tcp6_mapped", b"PROXY TCP6 ::ffff:10.0.0.1 :: 1 2\r\n")
pp("v1_unknown", b"PROXY UNKNOWN\r\n")
pp("v1_unknown_full", b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n")
SIG = b"\r\n\r\n\x00\r\nQUIT\n"
def v2(cmd, fam, body):
    return SIG + bytes([cmd, fam]) + struct.pack(">H", len(body)) + body
b4 = bytes([10, 0, 0, 1, 10, 0, 0, 2]) + struct.pack(">HH", 56324, 3333)
b6 = bytes(15) + b"\x01" + bytes(15) + b"\x02" + struct.pack(">HH", 4000, 3333)
tlv = lambda t, v: bytes([t]) + struct.pack(">H", len(v)) + v
pp("v2_tcp4", v2(0x21, 0x11, b4))
pp("v2_tcp6", v2(0x21, 0x21, b6))
pp("v2_tcp4_tlvs", v2(0x21, 0x11, b4 + tlv(0x01, b"stratum") + tlv(0x03, b"\x00\x00\x00\x00") + tlv(0x04, b"")))
pp("v2_local", v2(0x20, 0x00, b""))
pp("v2_unix", v2(0x21, 0x31, bytes(216)))
pp("v2_udp4", v2(0x21, 0x12, b4))
put("proxy_protocol", "no_header", struct.pack("<H", 0) + payload)

# config: the template --generate-config prints, and an Equihash + TLS-pool variant.
template = subprocess.run(["cargo", "run", "-q", "--", "--generate-config"], cwd=ROOT, check=True,
                          capture_output=True).stdout
put("config", "template.yaml", template)
put("config", "features.yaml", """threads: 2
drain_timeout: 5
metrics: { listen: 127.0.0.1:9100, max_workers: 10 }
proxies:
  - name: btc
    protocol: stratum
    listen:
      - address: 127.0.0.1:3333
        proxy_protocol: v2
    pools:
      - url: stratum+tcp://127.0.0.1:3334
        user: acct.w
    auth: { users: [{ name: farm1, password_hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$Zm9vYmFyYmF6cXV4" }], match: account, max_failures: 3, ban_seconds: 30 }
    share_reply: immediate
    validate_shares: true
    max_ntime_roll: 600
    vardiff: { shares_per_minute: 20, retarget_interval: 30, min_difficulty: 0.001, start_difficulty: 64 }
""")
put("config", "equihash.yaml", """threads: 0
proxies:
  - name: zec
    protocol: equihash
    equihash_n: 144
    equihash_k: 5
    listen:
      - address: "[::1]:3357"
        proxy_protocol: optional
    pools:
      - url: stratum+ssl://zec.pool.example:443
        user: t1worker
        insecure_skip_verify: true
      - url: pool.example:3357
        user: t1worker
        password: x
    share_timeout: 2.5
    failback: false
""")

# sv2_client (fuzz/src/sv2.rs): mode byte (0 handshake bytes, 1 raw after the handshake, 2 encrypted frames),
# chunk size byte, then frames as ext_type U16 LE, msg_type U8, length U16 LE, payload (SV2 encodings, §5.3).
def sv2_frame(ty, payload, channel=False):
    return struct.pack("<HBH", 0x8000 if channel else 0, ty, len(payload)) + payload


def sv2_str(s):
    return bytes([len(s)]) + s


U32 = lambda v: struct.pack("<I", v)
SV2_SETUP_OK = sv2_frame(0x01, struct.pack("<HI", 2, 0))
SV2_SESSION = [
    SV2_SETUP_OK,
    sv2_frame(0x14, U32(1) + U32(2) + b"\xff" * 32 + struct.pack("<H", 8) + sv2_str(b"\x00\x00\x00\x01") + U32(1)),
    sv2_frame(0x1f, U32(2) + U32(1) + b"\x00" + U32(0x20000000) + b"\x01" + bytes([2]) + b"\x11" * 32
              + b"\x22" * 32 + struct.pack("<H", 42) + b"\x01" * 42 + struct.pack("<H", 32) + b"\x02" * 32, True),
    sv2_frame(0x20, U32(2) + U32(1) + b"\x33" * 32 + U32(1700000000) + U32(0x1d00ffff), True),
    sv2_frame(0x21, U32(2) + b"\xff" * 28 + b"\x00" * 4, True),
    sv2_frame(0x19, U32(2) + sv2_str(b"\x00\x00\x00\x02"), True),
    sv2_frame(0x1c, U32(2) + U32(9) + U32(10) + struct.pack("<Q", 10), True),
    sv2_frame(0x1d, U32(2) + U32(10) + sv2_str(b"stale-share"), True),
    sv2_frame(0x12, U32(3) + sv2_str(b"max-channels")),
    sv2_frame(0x18, U32(2) + sv2_str(b"bye"), True),
    sv2_frame(0x04, sv2_str(b"pool.example.com") + struct.pack("<H", 34254)),
    sv2_frame(0x7f, b"unknown"),
    sv2_frame(0x01, struct.pack("<HI", 2, 0), False),
]
put("sv2_client", "session", bytes([2, 0]) + b"".join(SV2_SESSION))
put("sv2_client", "session_chunked", bytes([2, 7]) + b"".join(SV2_SESSION))
put("sv2_client", "job_before_setup", bytes([2, 0]) + b"".join(SV2_SESSION[2:4]) + SV2_SETUP_OK)
put("sv2_client", "setup_error", bytes([2, 0]) + sv2_frame(0x02, U32(4) + sv2_str(b"unsupported-protocol")))
put("sv2_client", "extension", bytes([2, 0]) + SV2_SETUP_OK + struct.pack("<HBH", 0x0001, 0x01, 0))
put("sv2_client", "raw_after_handshake", bytes([1, 0]) + bytes(range(64)))
put("sv2_client", "handshake_garbage", bytes([0, 16]) + bytes(234))

# sv2_session (fuzz/src/sv2_session.rs): opcodes then their argument bytes. 0 SetupConnection.Success, 1 channel
# opened, 2 job (flags bit 0: active), 3 prev hash, 4 SetTarget, 5 SetExtranoncePrefix, 6 Success (seq choice,
# count choice), 7 Error, 8 raw frame, 9-11 a share (job id, extranonce2 choice, version bits).
SESS_OPEN = bytes([0, 0, 1, 0, 1, 0, 4, 2, 1, 0, 1, 3, 0, 1, 0x33])
SHARE = bytes([9, 1, 1, 1])
put("sv2_session", "open_and_mine", SESS_OPEN + SHARE * 3 + bytes([6, 0, 0, 0]) + SHARE * 2 + bytes([7, 0, 0, 5])
    + bytes([6, 0, 0, 0]))
put("sv2_session", "short_success", SESS_OPEN + SHARE * 3 + bytes([6, 0, 0, 2]) + bytes([7, 0, 2, 1, 9])
    + bytes([6, 0, 0, 0]))
put("sv2_session", "unknown_seq", SESS_OPEN + SHARE + bytes([6, 0, 3, 2, 0]) + bytes([7, 0, 4, 9, 9, 9, 9, 1])
    + bytes([6, 7, 9, 9, 9, 9, 0, 0, 0]))
put("sv2_session", "target_prefix_raw", SESS_OPEN + SHARE + bytes([4, 0, 0x0f, 5, 0, 6, 8, 0, 0x20, 4, 1, 2, 3, 4])
    + SHARE + bytes([6, 0, 0, 0]) + bytes([2, 0, 0, 2, 3, 0, 2, 0x44]))
put("sv2_session", "before_channel", SHARE + bytes([6, 0, 0, 0, 7, 0, 0, 1, 0, 1, 0, 0, 30, 0]))
