#!/usr/bin/env python3
"""Interop scenarios with paho-mqtt 2.x, driven by tests/interop.rs against any broker.

Usage: interop.py --port PORT --protocol {311,5} SCENARIO

Each scenario checks the broker's behaviour itself and exits 0 when it matches the MQTT
specification (and Mosquitto, the oracle), or prints "FAIL: <scenario>: expected ..., got ..."
on stderr and exits 1. Every wait is bounded, so a silent broker fails instead of hanging.
"""

import argparse
import os
import queue
import signal
import subprocess
import sys
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

WAIT = 5.0  # seconds for anything that should happen promptly
QUIET = 0.5  # seconds of silence that prove "nothing more arrives"


class Failure(Exception):
    pass


def check(cond, what, expected, got):
    if not cond:
        raise Failure(f"{what}: expected {expected!r}, got {got!r}")


class Client:
    """A paho client on its own network thread, with every event pushed to a queue."""

    def __init__(self, args, client_id=None, clean=True, expiry=None, will=None):
        self.args = args
        self.v5 = args.protocol == "5"
        self.client_id = client_id or f"py-{uuid.uuid4().hex[:10]}"
        self.clean = clean
        self.expiry = expiry
        self.messages = queue.Queue()
        self.events = queue.Queue()
        self.c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5 if self.v5 else mqtt.MQTTv311,
            clean_session=None if self.v5 else clean,
        )
        if will is not None:
            topic, payload, qos = will
            self.c.will_set(topic, payload, qos=qos)
        self.c.on_connect = lambda c, u, flags, rc, props: self.events.put(
            ("connack", flags.session_present, rc.value)
        )
        self.c.on_subscribe = lambda c, u, mid, rcs, props: self.events.put(
            ("suback", mid, [r.value for r in rcs])
        )
        self.c.on_message = lambda c, u, msg: self.messages.put(msg)

    def connect(self):
        kwargs = {}
        if self.v5:
            props = Properties(PacketTypes.CONNECT)
            if self.expiry is not None:
                props.SessionExpiryInterval = self.expiry
            kwargs = {"clean_start": self.clean, "properties": props}
        self.c.connect("127.0.0.1", self.args.port, keepalive=30, **kwargs)
        self.c.loop_start()
        kind, session_present, rc = self.event("connack")
        check(rc == 0, "CONNACK code", 0, rc)
        return session_present

    def event(self, kind):
        try:
            ev = self.events.get(timeout=WAIT)
        except queue.Empty:
            raise Failure(f"{self.client_id}: no {kind} within {WAIT}s") from None
        check(ev[0] == kind, f"{self.client_id}: next event", kind, ev)
        return ev

    def subscribe(self, topic, qos):
        result, mid = self.c.subscribe(topic, qos)
        check(result == mqtt.MQTT_ERR_SUCCESS, "subscribe() result", 0, result)
        _, got_mid, codes = self.event("suback")
        check(got_mid == mid and codes == [qos], f"SUBACK for {topic}", [qos], codes)

    def publish(self, topic, payload, qos=0, retain=False, properties=None):
        info = self.c.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        info.wait_for_publish(timeout=WAIT)
        check(info.is_published(), f"publish to {topic} completed", True, False)

    def take(self, n, what):
        got = []
        deadline = time.monotonic() + WAIT
        while len(got) < n:
            left = deadline - time.monotonic()
            try:
                got.append(self.messages.get(timeout=max(left, 0.001)))
            except queue.Empty:
                raise Failure(
                    f"{what}: expected {n} messages within {WAIT}s, got {len(got)}: "
                    f"{[(m.topic, m.payload) for m in got]}"
                ) from None
        return got

    def quiet(self, what):
        try:
            m = self.messages.get(timeout=QUIET)
        except queue.Empty:
            return
        raise Failure(f"{what}: expected no further message, got {(m.topic, m.payload)!r}")

    def disconnect(self):
        self.c.disconnect()
        self.c.loop_stop()


def prefix(args, name):
    # Distinct topics per run, so a broker's leftovers from another scenario cannot interfere.
    return f"interop/{name}/v{args.protocol}/{uuid.uuid4().hex[:8]}"


def scenario_retained(args):
    t = prefix(args, "retained")
    pub = Client(args)
    pub.connect()
    pub.publish(f"{t}/a", b"first", qos=1, retain=True)
    pub.publish(f"{t}/a", b"second", qos=1, retain=True)  # replaces "first"
    pub.publish(f"{t}/b", b"kept", qos=1, retain=True)
    pub.publish(f"{t}/c", b"doomed", qos=1, retain=True)
    pub.publish(f"{t}/c", b"", qos=1, retain=True)  # an empty retained payload deletes it

    sub = Client(args)
    sub.connect()
    sub.subscribe(f"{t}/#", 1)
    got = sub.take(2, "retained messages delivered on subscribe")
    seen = sorted((m.topic, m.payload, m.retain) for m in got)
    want = [(f"{t}/a", b"second", True), (f"{t}/b", b"kept", True)]
    check(seen == want, "retained set on subscribe", want, seen)
    sub.quiet("after the retained set (deleted topic must stay deleted)")

    # A live publication with the retain flag reaches existing subscribers with retain cleared.
    pub.publish(f"{t}/b", b"live", qos=1, retain=True)
    (m,) = sub.take(1, "live retained publication")
    check((m.payload, m.retain) == (b"live", False), "live delivery", (b"live", False), (m.payload, m.retain))
    pub.publish(f"{t}/a", b"", qos=1, retain=True)
    pub.publish(f"{t}/b", b"", qos=1, retain=True)
    sub.take(2, "empty retained publications forwarded live")
    sub.disconnect()
    late = Client(args)
    late.connect()
    late.subscribe(f"{t}/#", 1)
    late.quiet("subscribe after every retained message was deleted")
    late.disconnect()
    pub.disconnect()


def scenario_qos2(args):
    t = prefix(args, "qos2")
    n = 50
    sub = Client(args)
    sub.connect()
    sub.subscribe(t, 2)
    pub = Client(args)
    pub.connect()
    infos = [pub.c.publish(t, f"m{i}".encode(), qos=2) for i in range(n)]
    for info in infos:
        info.wait_for_publish(timeout=WAIT)
        check(info.is_published(), "QoS 2 publish handshake", True, False)
    got = sub.take(n, "QoS 2 deliveries")
    sub.quiet("after the QoS 2 deliveries (exactly once)")
    payloads = sorted(m.payload for m in got)
    want = sorted(f"m{i}".encode() for i in range(n))
    check(payloads == want, "each QoS 2 message exactly once", want, payloads)
    check(all(m.qos == 2 for m in got), "delivered QoS", 2, sorted({m.qos for m in got}))
    pub.disconnect()
    sub.disconnect()


def scenario_persistent(args):
    t = prefix(args, "persistent")
    cid = f"py-persist-{uuid.uuid4().hex[:8]}"
    sub = Client(args, client_id=cid, clean=False, expiry=300)
    present = sub.connect()
    check(not present, "session present on first connect", False, present)
    sub.subscribe(t, 1)
    sub.disconnect()

    pub = Client(args)
    pub.connect()
    for i in range(3):
        pub.publish(t, f"offline{i}".encode(), qos=1)
    pub.disconnect()

    again = Client(args, client_id=cid, clean=False, expiry=300)
    present = again.connect()
    check(present, "session present on reconnect", True, present)
    got = again.take(3, "messages queued while offline")
    payloads = [m.payload for m in got]
    want = [b"offline0", b"offline1", b"offline2"]
    check(payloads == want, "offline queue in order", want, payloads)
    again.quiet("after the offline queue")
    again.disconnect()
    # Leave no session behind on a long-lived broker.
    cleanup = Client(args, client_id=cid, clean=True, expiry=0)
    cleanup.connect()
    cleanup.disconnect()


def scenario_will(args):
    t = prefix(args, "will")
    watcher = Client(args)
    watcher.connect()
    watcher.subscribe(t, 1)
    # The will carrier is a separate process killed with SIGKILL: its socket closes with no
    # DISCONNECT, exactly like a crashed device.
    child = subprocess.Popen(
        [sys.executable, __file__, "--port", str(args.port), "--protocol", args.protocol, "will-carrier", t],
        stdout=subprocess.PIPE,
    )
    try:
        line = child.stdout.readline().strip()
        check(line == b"connected", "will carrier ready", b"connected", line)
        watcher.quiet("while the will carrier is alive")
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=WAIT)
    (m,) = watcher.take(1, "will after abrupt close")
    check((m.topic, m.payload) == (t, b"gone"), "will message", (t, b"gone"), (m.topic, m.payload))

    # Control: a clean DISCONNECT must not publish the will.
    polite = Client(args, will=(t, b"polite-will", 1))
    polite.connect()
    polite.disconnect()
    watcher.quiet("after a normal DISCONNECT (will must be discarded)")
    watcher.disconnect()


def will_carrier(args, topic):
    c = Client(args, will=(topic, b"gone", 1))
    c.connect()
    print("connected", flush=True)
    time.sleep(WAIT * 4)  # killed long before this ends


def scenario_shared(args):
    t = prefix(args, "shared")
    n = 10
    members = [Client(args), Client(args)]
    for m in members:
        m.connect()
        m.subscribe(f"$share/g/{t}", 1)
    pub = Client(args)
    pub.connect()
    for i in range(n):
        pub.publish(t, f"s{i}".encode(), qos=1)
    deadline = time.monotonic() + WAIT
    while sum(m.messages.qsize() for m in members) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(QUIET)  # a duplicate delivery would show up here
    per_member = []
    for m in members:
        got = []
        while not m.messages.empty():
            got.append(m.messages.get().payload)
        per_member.append(got)
    payloads = [p for got in per_member for p in got]
    counts = [len(got) for got in per_member]
    check(len(payloads) == n, "shared deliveries in total (each message to one member)", n, len(payloads))
    want = sorted(f"s{i}".encode() for i in range(n))
    check(sorted(payloads) == want, "shared payloads", want, sorted(payloads))
    # Round robin: the two members share the load evenly, not all to one.
    check(max(counts) - min(counts) <= 1, "shared split between 2 members", [n // 2, n // 2], counts)
    pub.disconnect()
    for m in members:
        m.disconnect()


def scenario_properties(args):
    check(args.protocol == "5", "protocol for the properties scenario", "5", args.protocol)
    t = prefix(args, "props")
    sub = Client(args)
    sub.connect()
    sub.subscribe(t, 1)
    pub = Client(args)
    pub.connect()
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [("k1", "v1"), ("k2", "v2"), ("k1", "again")]
    props.ResponseTopic = f"{t}/reply"
    props.CorrelationData = b"\x00corr\xff"
    props.ContentType = "application/x-test"
    props.PayloadFormatIndicator = 1
    pub.publish(t, b"with-props", qos=1, properties=props)
    (m,) = sub.take(1, "publication with properties")
    p = m.properties
    got = (
        getattr(p, "UserProperty", None),
        getattr(p, "ResponseTopic", None),
        getattr(p, "CorrelationData", None),
        getattr(p, "ContentType", None),
        getattr(p, "PayloadFormatIndicator", None),
    )
    want = (props.UserProperty, props.ResponseTopic, props.CorrelationData, props.ContentType, 1)
    check(got == want, "v5 properties passed through", want, got)
    pub.disconnect()
    sub.disconnect()


SCENARIOS = {
    "retained": scenario_retained,
    "qos2": scenario_qos2,
    "persistent": scenario_persistent,
    "will": scenario_will,
    "shared": scenario_shared,
    "properties": scenario_properties,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--protocol", choices=["311", "5"], required=True)
    ap.add_argument("scenario", choices=sorted(SCENARIOS) + ["will-carrier"])
    ap.add_argument("extra", nargs="*")
    args = ap.parse_args()
    try:
        if args.scenario == "will-carrier":
            will_carrier(args, args.extra[0])
        else:
            SCENARIOS[args.scenario](args)
    except Failure as e:
        print(f"FAIL: {args.scenario} (MQTT {args.protocol}): {e}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {args.scenario} (MQTT {args.protocol})")


if __name__ == "__main__":
    main()
