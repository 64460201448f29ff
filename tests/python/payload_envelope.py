#!/usr/bin/env python3
"""An independent implementation of the mqsec payload envelope, written from
docs/payload-envelope.md alone (not from mqsec's source), used by tests/payload.rs to check interop
both ways.

    payload_envelope.py seal    --key-file F [--topic T] [--base64]   < plaintext > envelope
    payload_envelope.py open    --key-file F [--topic T] [--base64] [--max-age SECONDS]
    payload_envelope.py sign    --key-file F [--topic T] [--base64]
    payload_envelope.py verify  --key-file F [--topic T] [--base64] [--max-age SECONDS]
    payload_envelope.py check-vectors FILE      # seal and open every vector, byte for byte
    payload_envelope.py make-vectors            # print the fixed vectors as JSON

Exit 0 on success, 1 when an envelope is rejected (nothing on stdout), 2 on usage/key-file errors.
"""

import argparse
import base64
import binascii
import datetime
import hashlib
import hmac
import json
import os
import re
import struct
import sys
import time

from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)

MAGIC = b"\x89MQP"
VERSION = 1
ALG_AEAD = 0x01
ALG_MAC = 0x02
FLAG_TOPIC = 0x01
SKEW = 300
KEY_ID_RE = re.compile(rb"^[A-Za-z0-9._-]{1,32}$")


class Rejected(Exception):
    pass


def topic_block(topic):
    t = b"" if topic is None else topic.encode("utf-8")
    return struct.pack(">H", len(t)) + t


def header(alg, key_id, timestamp, topic, nonce=b""):
    kid = key_id.encode("ascii")
    flags = FLAG_TOPIC if topic is not None else 0
    return MAGIC + bytes([VERSION, alg, flags, len(kid)]) + kid + struct.pack(">Q", timestamp) + nonce


def seal(key, key_id, topic, plaintext, nonce, timestamp):
    h = header(ALG_AEAD, key_id, timestamp, topic, nonce)
    return h + crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, h + topic_block(topic), nonce, key)


def sign(key, key_id, topic, payload, timestamp):
    h = header(ALG_MAC, key_id, timestamp, topic)
    tag = hmac.new(key, h + topic_block(topic) + payload, hashlib.sha256).digest()
    return h + payload + tag


def parse(env):
    if len(env) < 8 or env[:4] != MAGIC:
        raise Rejected("bad magic or too short")
    version, alg, flags, id_len = env[4], env[5], env[6], env[7]
    if version != VERSION:
        raise Rejected("unsupported version %d" % version)
    if alg not in (ALG_AEAD, ALG_MAC):
        raise Rejected("unknown algorithm")
    if flags & ~FLAG_TOPIC:
        raise Rejected("reserved flags")
    if not 1 <= id_len <= 32:
        raise Rejected("key id length")
    nonce_len, tag_len = (24, 16) if alg == ALG_AEAD else (0, 32)
    hlen = 8 + id_len + 8 + nonce_len
    if len(env) < hlen + tag_len:
        raise Rejected("truncated")
    kid = env[8 : 8 + id_len]
    if not KEY_ID_RE.match(kid):
        raise Rejected("key id characters")
    (ts,) = struct.unpack(">Q", env[8 + id_len : 16 + id_len])
    return {
        "alg": alg,
        "bound": bool(flags & FLAG_TOPIC),
        "key_id": kid.decode("ascii"),
        "timestamp": ts,
        "nonce": env[16 + id_len : hlen],
        "header": env[:hlen],
        "body": env[hlen : len(env) - tag_len],
        "tag": env[len(env) - tag_len :],
    }


def open_envelope(keys, topic, env, expect_alg, max_age=None, now=None):
    p = parse(env)
    if p["alg"] != expect_alg:
        raise Rejected("unexpected algorithm")
    if p["bound"] and topic is None:
        raise Rejected("topic-bound envelope, no topic given")
    if not p["bound"] and topic is not None:
        raise Rejected("unbound envelope, topic given")
    key = keys.get(p["key_id"])
    if key is None:
        raise Rejected("unknown key id")
    aad = p["header"] + topic_block(topic)
    if expect_alg == ALG_AEAD:
        try:
            out = crypto_aead_xchacha20poly1305_ietf_decrypt(p["body"] + p["tag"], aad, p["nonce"], key)
        except Exception:
            raise Rejected("authentication failed")
    else:
        want = hmac.new(key, aad + p["body"], hashlib.sha256).digest()
        if not hmac.compare_digest(want, p["tag"]):
            raise Rejected("authentication failed")
        out = p["body"]
    if max_age is not None:
        now = int(time.time()) if now is None else now
        if p["timestamp"] > now + SKEW or now - p["timestamp"] > max_age:
            raise Rejected("too old or from the future")
    return out


def load_keys(path):
    """Returns (dict id -> key bytes, id of the sealing key)."""
    keys, newest, best = {}, None, None
    with open(path, "rb") as f:
        for n, raw in enumerate(f.read().split(b"\n"), 1):
            line = raw.decode("utf-8").strip()
            if not line or line.startswith("#"):
                continue
            fields = line.split()
            if len(fields) != 3:
                raise ValueError("%s:%d: expected 3 fields" % (path, n))
            kid, created, b64 = fields
            if not KEY_ID_RE.match(kid.encode()) or kid in keys:
                raise ValueError("%s:%d: bad or duplicate key id" % (path, n))
            when = datetime.datetime.fromisoformat(created.replace("Z", "+00:00"))
            key = base64.b64decode(b64, validate=True)
            if len(key) != 32:
                raise ValueError("%s:%d: key is not 32 bytes" % (path, n))
            keys[kid] = key
            if best is None or when >= best:
                best, newest = when, kid
    if not keys:
        raise ValueError("%s: no keys" % path)
    return keys, newest


def read_stdin(b64):
    data = sys.stdin.buffer.read()
    if b64:
        data = base64.b64decode(data.strip(b" \t\r\n"), validate=True)
    return data


def write_stdout(data, b64):
    if b64:
        data = base64.b64encode(data) + b"\n"
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def vectors():
    key = bytes(range(32))
    key2 = hashlib.sha256(b"mqsec vector key 2").digest()
    nonce = bytes(range(0x40, 0x58))
    ts = 1767225600  # 2026-01-01T00:00:00Z
    cases = [
        ("aead-topic", ALG_AEAD, key, "k1", "sensors/001/temp", b'{"temp": 21.5}'),
        ("aead-no-topic", ALG_AEAD, key, "k1", None, b"hello, world"),
        ("aead-empty", ALG_AEAD, key, "k1", "a/b", b""),
        ("aead-empty-no-topic", ALG_AEAD, key2, "2026-01.sensors_A", None, b""),
        ("aead-utf8-topic", ALG_AEAD, key2, "2026-01.sensors_A", "capteurs/température/é", bytes(range(256))),
        ("mac-topic", ALG_MAC, key, "k1", "cmd/valves/3", b"open"),
        ("mac-no-topic", ALG_MAC, key, "k1", None, b"hello, world"),
        ("mac-empty", ALG_MAC, key2, "2026-01.sensors_A", "a/b", b""),
        ("mac-utf8-topic", ALG_MAC, key2, "2026-01.sensors_A", "capteurs/température/é", b"\x00\xff binary"),
    ]
    out = []
    for name, alg, k, kid, topic, pt in cases:
        v = {
            "name": name,
            "algorithm": "xchacha20poly1305" if alg == ALG_AEAD else "hmac-sha256",
            "key_id": kid,
            "key": base64.b64encode(k).decode(),
            "timestamp": ts,
            "topic": topic,
            "plaintext": pt.hex(),
        }
        if alg == ALG_AEAD:
            v["nonce"] = nonce.hex()
            env = seal(k, kid, topic, pt, nonce, ts)
        else:
            env = sign(k, kid, topic, pt, ts)
        v["envelope"] = env.hex()
        out.append(v)
    return out


def check_vectors(path):
    with open(path, encoding="utf-8") as f:
        vs = json.load(f)
    for v in vs:
        key = base64.b64decode(v["key"])
        pt = bytes.fromhex(v["plaintext"])
        env = bytes.fromhex(v["envelope"])
        keys = {v["key_id"]: key}
        if v["algorithm"] == "xchacha20poly1305":
            mine = seal(key, v["key_id"], v["topic"], pt, bytes.fromhex(v["nonce"]), v["timestamp"])
            got = open_envelope(keys, v["topic"], env, ALG_AEAD)
        else:
            mine = sign(key, v["key_id"], v["topic"], pt, v["timestamp"])
            got = open_envelope(keys, v["topic"], env, ALG_MAC)
        if mine != env or got != pt:
            print("vector %s: mismatch" % v["name"], file=sys.stderr)
            return 1
    print("%d vectors ok" % len(vs))
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["seal", "open", "sign", "verify", "check-vectors", "make-vectors"])
    ap.add_argument("file", nargs="?")
    ap.add_argument("--key-file")
    ap.add_argument("--topic")
    ap.add_argument("--base64", action="store_true")
    ap.add_argument("--max-age", type=int)
    a = ap.parse_args()
    if a.cmd == "make-vectors":
        print(json.dumps(vectors(), indent=2, ensure_ascii=False))
        return 0
    if a.cmd == "check-vectors":
        return check_vectors(a.file)
    try:
        keys, newest = load_keys(a.key_file)
    except (OSError, ValueError) as e:
        print("key file: %s" % e, file=sys.stderr)
        return 2
    if a.cmd in ("seal", "sign"):
        data = sys.stdin.buffer.read()
        if a.cmd == "seal":
            env = seal(keys[newest], newest, a.topic, data, os.urandom(24), int(time.time()))
        else:
            env = sign(keys[newest], newest, a.topic, data, int(time.time()))
        write_stdout(env, a.base64)
        return 0
    try:
        env = read_stdin(a.base64)
        alg = ALG_AEAD if a.cmd == "open" else ALG_MAC
        out = open_envelope(keys, a.topic, env, alg, a.max_age)
    except (Rejected, binascii.Error, ValueError) as e:
        print("rejected: %s" % e, file=sys.stderr)
        return 1
    write_stdout(out, False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
