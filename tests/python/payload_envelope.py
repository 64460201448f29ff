#!/usr/bin/env python3
"""An independent implementation of the mqsec payload envelope, written from
docs/payload-envelope.md alone (not from mqsec's source), used by tests/payload.rs to check interop
both ways.

    payload_envelope.py seal    --key-file F [--topic T] [--base64]   < plaintext > envelope
    payload_envelope.py open    --key-file F [--topic T] [--base64] [--max-age SECONDS]
    payload_envelope.py sign    --key-file F [--topic T] [--base64]
    payload_envelope.py verify  --key-file F [--topic T] [--base64] [--max-age SECONDS]
    payload_envelope.py check-vectors FILE...   # seal and open every vector, byte for byte;
                                                # a vector with "reject" must be refused at that step
    payload_envelope.py check-key-files FILE    # parse every key-file case, compare the outcome
    payload_envelope.py make-vectors            # print the fixed vectors as JSON
    payload_envelope.py make-reject-vectors     # print the must-fail vectors as JSON

Exit 0 on success, 1 when an envelope is rejected (nothing on stdout), 2 on usage/key-file errors.
"""

import argparse
import base64
import binascii
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
KEY_ID_RE = re.compile(rb"[A-Za-z0-9._-]{1,32}")


class Rejected(Exception):
    """An envelope refused at one step of section 3: "format" (step 1-2), "topic-binding" (3),
    "key-id" (4) or "authentication" (5), "age" (6)."""

    def __init__(self, step, why):
        super().__init__("%s: %s" % (step, why))
        self.step = step


class KeyFileError(ValueError):
    """A key file refused: `field` is "fields", "id", "created", "key", "duplicate" or "empty";
    line 0 means the whole file."""

    def __init__(self, path, line, field, why):
        super().__init__("%s:%d: %s" % (path, line, why))
        self.line = line
        self.field = field


def topic_block(topic):
    t = b"" if topic is None else topic.encode("utf-8")
    return struct.pack(">H", len(t)) + t


def header(alg, key_id, timestamp, topic, nonce=b"", flags=None):
    kid = key_id.encode("ascii")
    if flags is None:
        flags = FLAG_TOPIC if topic is not None else 0
    return MAGIC + bytes([VERSION, alg, flags, len(kid)]) + kid + struct.pack(">Q", timestamp) + nonce


def seal(key, key_id, topic, plaintext, nonce, timestamp, flags=None):
    h = header(ALG_AEAD, key_id, timestamp, topic, nonce, flags)
    return h + crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, h + topic_block(topic), nonce, key)


def sign(key, key_id, topic, payload, timestamp, flags=None):
    h = header(ALG_MAC, key_id, timestamp, topic, flags=flags)
    tag = hmac.new(key, h + topic_block(topic) + payload, hashlib.sha256).digest()
    return h + payload + tag


def parse(env):
    if len(env) < 8 or env[:4] != MAGIC:
        raise Rejected("format", "bad magic or too short")
    version, alg, flags, id_len = env[4], env[5], env[6], env[7]
    if version != VERSION:
        raise Rejected("format", "unsupported version %d" % version)
    if alg not in (ALG_AEAD, ALG_MAC):
        raise Rejected("format", "unknown algorithm")
    if flags & ~FLAG_TOPIC:
        raise Rejected("format", "reserved flags")
    if not 1 <= id_len <= 32:
        raise Rejected("format", "key id length")
    nonce_len, tag_len = (24, 16) if alg == ALG_AEAD else (0, 32)
    hlen = 8 + id_len + 8 + nonce_len
    if len(env) < hlen + tag_len:
        raise Rejected("format", "truncated")
    kid = env[8 : 8 + id_len]
    if not KEY_ID_RE.fullmatch(kid):
        raise Rejected("format", "key id characters")
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
        raise Rejected("format", "unexpected algorithm")
    if p["bound"] and topic is None:
        raise Rejected("topic-binding", "topic-bound envelope, no topic given")
    if not p["bound"] and topic is not None:
        raise Rejected("topic-binding", "unbound envelope, topic given")
    key = keys.get(p["key_id"])
    if key is None:
        raise Rejected("key-id", "unknown key id")
    aad = p["header"] + topic_block(topic)
    if expect_alg == ALG_AEAD:
        try:
            out = crypto_aead_xchacha20poly1305_ietf_decrypt(p["body"] + p["tag"], aad, p["nonce"], key)
        except Exception:
            raise Rejected("authentication", "authentication failed")
    else:
        want = hmac.new(key, aad + p["body"], hashlib.sha256).digest()
        if not hmac.compare_digest(want, p["tag"]):
            raise Rejected("authentication", "authentication failed")
        out = p["body"]
    if max_age is not None:
        now = int(time.time()) if now is None else now
        if p["timestamp"] > now + SKEW or now - p["timestamp"] > max_age:
            raise Rejected("age", "too old or from the future")
    return out


BLANKS = re.compile(r"[ \t]+")
CREATED_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
)


def is_leap(y):
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def month_days(y, m):
    return [31, 29 if is_leap(y) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]


def days_from_civil(y, m, d):
    """Days since 1970-01-01 of a proleptic Gregorian date (any year, 0 included)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(z):
    """The proleptic Gregorian (year, month, day) of a day count since 1970-01-01."""
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return (yoe + era * 400 + (m <= 2), m, d)


def parse_created(text):
    """CREATED (section 5) as an instant: (seconds since the epoch, nanoseconds), or None."""
    m = CREATED_RE.fullmatch(text)
    if not m:
        return None
    y, mo, d, h, mi, sec = (int(g) for g in m.groups()[:6])
    ns = int(((m.group(7) or "") + "000000000")[:9])
    if not (1 <= mo <= 12 and 1 <= d <= month_days(y, mo) and h <= 23 and mi <= 59 and sec <= 60):
        return None
    offset = 0
    if m.group(8):
        oh, om = int(m.group(9)), int(m.group(10))
        if oh > 23 or om > 59:
            return None
        offset = (oh * 60 + om) * 60 * (-1 if m.group(8) == "-" else 1)
    leap = sec == 60
    if leap:
        sec, ns = 59, 999_999_999
    t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset
    if leap:
        # Only as the last second of a month, in UTC.
        days, rem = divmod(t, 86400)
        uy, um, ud = civil_from_days(days)
        if rem != 86399 or ud != month_days(uy, um):
            return None
    return (t, ns)


def parse_key_file(data, path="keys"):
    """Returns (dict id -> key bytes, id of the sealing key). Raises KeyFileError."""
    keys, newest, best = {}, None, None
    for n, raw in enumerate(data.split(b"\n"), 1):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise KeyFileError(path, n, "fields", "not UTF-8")
        line = line.strip(" \t")
        if not line or line.startswith("#"):
            continue
        fields = BLANKS.split(line)
        if len(fields) != 3:
            raise KeyFileError(path, n, "fields", "expected 3 fields, found %d" % len(fields))
        kid, created, b64 = fields
        if not KEY_ID_RE.fullmatch(kid.encode("utf-8")):
            raise KeyFileError(path, n, "id", "bad key id")
        when = parse_created(created)
        if when is None:
            raise KeyFileError(path, n, "created", "CREATED is not RFC 3339")
        try:
            key = base64.b64decode(b64, validate=True)
        except binascii.Error:
            key = None
        # b64decode takes non-canonical last characters; section 5 refuses them.
        if key is None or base64.b64encode(key).decode("ascii") != b64:
            raise KeyFileError(path, n, "key", "KEY is not canonical padded base64")
        if len(key) != 32:
            raise KeyFileError(path, n, "key", "KEY is not 32 bytes")
        if kid in keys:
            raise KeyFileError(path, n, "duplicate", "duplicate key id")
        keys[kid] = key
        # The latest instant seals; on a tie the later line.
        if best is None or when >= best:
            best, newest = when, kid
    if not keys:
        raise KeyFileError(path, 0, "empty", "no keys")
    return keys, newest


def load_keys(path):
    with open(path, "rb") as f:
        return parse_key_file(f.read(), path)


def check_key_files(path):
    with open(path, encoding="utf-8") as f:
        cases = json.load(f)
    bad = 0
    for c in cases:
        try:
            _, newest = parse_key_file(c["text"].encode("utf-8"))
            got = {"newest": newest}
        except KeyFileError as e:
            got = {"error": {"line": e.line, "field": e.field}}
        want = {k: c[k] for k in ("newest", "error") if k in c}
        if got != want:
            print("key file %s: got %s, expected %s" % (c["name"], got, want), file=sys.stderr)
            bad += 1
    if bad:
        return 1
    print("%d key files ok" % len(cases))
    return 0


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


KEY1 = bytes(range(32))
KEY2 = hashlib.sha256(b"mqsec vector key 2").digest()
NONCE = bytes(range(0x40, 0x58))
TS = 1767225600  # 2026-01-01T00:00:00Z
# 269 bytes: the topic block's length prefix is 0x01 0x0d, its high byte non-zero.
LONG_TOPIC = "/".join("level%03d" % i for i in range(30))
# 32 bytes, the longest key id, with every kind of character allowed.
LONG_KEY_ID = "Sensors.2026-01_ABCDEFGHIJKLMNOP"


def vector(name, alg, k, kid, topic, pt):
    v = {
        "name": name,
        "algorithm": "xchacha20poly1305" if alg == ALG_AEAD else "hmac-sha256",
        "key_id": kid,
        "key": base64.b64encode(k).decode(),
        "timestamp": TS,
        "topic": topic,
        "plaintext": pt.hex(),
    }
    if alg == ALG_AEAD:
        v["nonce"] = NONCE.hex()
        env = seal(k, kid, topic, pt, NONCE, TS)
    else:
        env = sign(k, kid, topic, pt, TS)
    v["envelope"] = env.hex()
    return v


def vectors():
    key, key2 = KEY1, KEY2
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
        ("aead-long-topic", ALG_AEAD, key, "k1", LONG_TOPIC, b"long topic"),
        ("mac-long-topic", ALG_MAC, key, "k1", LONG_TOPIC, b"long topic"),
        ("aead-key-id-32", ALG_AEAD, key2, LONG_KEY_ID, "a/b", b"longest key id"),
        ("mac-key-id-32", ALG_MAC, key2, LONG_KEY_ID, "a/b", b"longest key id"),
    ]
    return [vector(*c) for c in cases]


def reject_vectors():
    """Envelopes a receiver must refuse, each at one step of section 3. Every one carries a valid
    tag for what was sealed (except the tampered ones), so only that step can refuse it."""
    key = KEY1
    aead_topic, mac_topic = "sensors/001/temp", "cmd/valves/3"
    cases = [
        # name, about, alg, receiver (key id, topic), sender (key id, topic, flags), flip, step
        ("aead-tampered-tag", "the last tag byte of aead-topic with its low bit flipped",
         ALG_AEAD, ("k1", aead_topic), ("k1", aead_topic, None), True, "authentication"),
        ("mac-tampered-tag", "the last tag byte of mac-topic with its low bit flipped",
         ALG_MAC, ("k1", mac_topic), ("k1", mac_topic, None), True, "authentication"),
        ("aead-wrong-topic", "aead-topic opened with another topic",
         ALG_AEAD, ("k1", "sensors/002/temp"), ("k1", aead_topic, None), False, "authentication"),
        ("mac-wrong-topic", "mac-topic opened with another topic",
         ALG_MAC, ("k1", "cmd/valves/4"), ("k1", mac_topic, None), False, "authentication"),
        ("aead-unknown-key-id", "sealed under id k2 with the very key the receiver holds as k1: "
         "a receiver that tries its keys instead of looking up the id would open it",
         ALG_AEAD, ("k1", aead_topic), ("k2", aead_topic, None), False, "key-id"),
        ("mac-unknown-key-id", "signed under id k2 with the very key the receiver holds as k1",
         ALG_MAC, ("k1", mac_topic), ("k2", mac_topic, None), False, "key-id"),
        ("aead-key-id-case", "sealed under id K1; the receiver holds k1 (ids are case-sensitive)",
         ALG_AEAD, ("k1", aead_topic), ("K1", aead_topic, None), False, "key-id"),
        ("aead-reserved-flag", "flags 0x03: topic-bound and reserved bit 1, with a valid tag over it",
         ALG_AEAD, ("k1", aead_topic), ("k1", aead_topic, 0x03), False, "format"),
        ("mac-reserved-flag", "flags 0x80: reserved bit 7 on an unbound envelope, with a valid tag",
         ALG_MAC, ("k1", None), ("k1", None, 0x80), False, "format"),
        ("aead-unbound-topic-given", "an unbound envelope where the receiver names a topic",
         ALG_AEAD, ("k1", aead_topic), ("k1", None, None), False, "topic-binding"),
        ("aead-bound-no-topic", "a topic-bound envelope where the receiver names no topic",
         ALG_AEAD, ("k1", None), ("k1", aead_topic, None), False, "topic-binding"),
    ]
    out = []
    for name, about, alg, (rkid, rtopic), (skid, stopic, flags), flip, step in cases:
        pt = b'{"temp": 21.5}' if alg == ALG_AEAD else b"open"
        sealed = {"key_id": skid, "topic": stopic,
                  "flags": flags if flags is not None else (FLAG_TOPIC if stopic is not None else 0),
                  "timestamp": TS, "plaintext": pt.hex(), "flip_last_bit": flip}
        if alg == ALG_AEAD:
            sealed["nonce"] = NONCE.hex()
            env = seal(key, skid, stopic, pt, NONCE, TS, flags)
        else:
            env = sign(key, skid, stopic, pt, TS, flags)
        if flip:
            env = env[:-1] + bytes([env[-1] ^ 0x01])
        out.append({
            "name": name,
            "about": about,
            "algorithm": "xchacha20poly1305" if alg == ALG_AEAD else "hmac-sha256",
            "key_id": rkid,
            "key": base64.b64encode(key).decode(),
            "topic": rtopic,
            "envelope": env.hex(),
            "reject": step,
            "sealed_with": sealed,
        })
    return out


def check_vectors(paths):
    n = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            vs = json.load(f)
        for v in vs:
            key = base64.b64decode(v["key"])
            env = bytes.fromhex(v["envelope"])
            keys = {v["key_id"]: key}
            alg = ALG_AEAD if v["algorithm"] == "xchacha20poly1305" else ALG_MAC
            if "reject" in v:
                s = v["sealed_with"]
                pt = bytes.fromhex(s["plaintext"])
                if alg == ALG_AEAD:
                    mine = seal(key, s["key_id"], s["topic"], pt, bytes.fromhex(s["nonce"]), s["timestamp"], s["flags"])
                else:
                    mine = sign(key, s["key_id"], s["topic"], pt, s["timestamp"], s["flags"])
                if s["flip_last_bit"]:
                    mine = mine[:-1] + bytes([mine[-1] ^ 0x01])
                try:
                    open_envelope(keys, v["topic"], env, alg)
                    step = None
                except Rejected as e:
                    step = e.step
                if mine != env or step != v["reject"]:
                    print("vector %s: made %s, refused at %s" % (v["name"], mine == env, step), file=sys.stderr)
                    return 1
            else:
                pt = bytes.fromhex(v["plaintext"])
                if alg == ALG_AEAD:
                    mine = seal(key, v["key_id"], v["topic"], pt, bytes.fromhex(v["nonce"]), v["timestamp"])
                else:
                    mine = sign(key, v["key_id"], v["topic"], pt, v["timestamp"])
                got = open_envelope(keys, v["topic"], env, alg)
                if mine != env or got != pt:
                    print("vector %s: mismatch" % v["name"], file=sys.stderr)
                    return 1
            n += 1
    print("%d vectors ok" % n)
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "cmd",
        choices=["seal", "open", "sign", "verify", "check-vectors", "check-key-files", "make-vectors", "make-reject-vectors"],
    )
    ap.add_argument("files", nargs="*")
    ap.add_argument("--key-file")
    ap.add_argument("--topic")
    ap.add_argument("--base64", action="store_true")
    ap.add_argument("--max-age", type=int)
    a = ap.parse_args()
    if a.cmd == "make-vectors":
        print(json.dumps(vectors(), indent=2, ensure_ascii=False))
        return 0
    if a.cmd == "make-reject-vectors":
        print(json.dumps(reject_vectors(), indent=2, ensure_ascii=False))
        return 0
    if a.cmd == "check-vectors":
        return check_vectors(a.files)
    if a.cmd == "check-key-files":
        return check_key_files(a.files[0])
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
