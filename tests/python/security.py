#!/usr/bin/env python3
"""paho-mqtt 2.x against a secured broker, driven by tests/security_serve.rs.

Usage: security.py --port PORT --protocol {311,5} SCENARIO [ARGS]

Passwords come from the environment (MQSEC_TEST_PW_<USER>), never from argv.

Scenarios:
  connect USER|-          print the CONNACK reason code paho reports (0 = accepted); "-" connects
                          without credentials
  acl-guide               the users' guide ACL of formats.md: SUBSCRIBE, PUBLISH and delivery
                          decisions as admin, sensor_001 and dashboard; exits 1 with "FAIL: ..."

Every wait is bounded, so a silent broker fails instead of hanging.
"""

import argparse
import os
import queue
import sys
import uuid

import paho.mqtt.client as mqtt

WAIT = 10.0


class Failure(Exception):
    pass


def check(cond, what, expected, got):
    if not cond:
        raise Failure(f"{what}: expected {expected!r}, got {got!r}")


class Client:
    def __init__(self, args, user):
        self.v5 = args.protocol == "5"
        self.events = queue.Queue()
        self.messages = queue.Queue()
        self.c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"py-{user or 'anon'}-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5 if self.v5 else mqtt.MQTTv311,
        )
        if user:
            self.c.username_pw_set(user, os.environ[f"MQSEC_TEST_PW_{user}"])
        self.c.on_connect = lambda c, u, flags, rc, props: self.events.put(("connack", rc.value))
        self.c.on_subscribe = lambda c, u, mid, rcs, props: self.events.put(
            ("suback", [r.value for r in rcs])
        )
        self.c.on_publish = lambda c, u, mid, rc, props: self.events.put(("puback", rc.value))
        self.c.on_message = lambda c, u, msg: self.messages.put(msg)
        self.port = args.port

    def event(self, kind):
        try:
            ev = self.events.get(timeout=WAIT)
        except queue.Empty:
            raise Failure(f"no {kind} within {WAIT}s") from None
        check(ev[0] == kind, "next event", kind, ev)
        return ev[1]

    def connect(self):
        self.c.connect("127.0.0.1", self.port, keepalive=30)
        self.c.loop_start()
        return self.event("connack")

    def subscribe(self, topic):
        self.c.subscribe(topic, 1)
        return self.event("suback")

    def publish(self, topic, payload):
        self.c.publish(topic, payload, qos=1)
        return self.event("puback")

    def next_message(self, what):
        try:
            m = self.messages.get(timeout=WAIT)
        except queue.Empty:
            raise Failure(f"{what}: no message within {WAIT}s") from None
        return m.topic, m.payload

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def scenario_connect(args):
    user = None if args.extra[0] == "-" else args.extra[0]
    c = Client(args, user)
    print(c.connect())
    c.close()


def scenario_acl_guide(args):
    denied_sub = 0x87 if args.protocol == "5" else 0x80
    admin = Client(args, "admin")
    check(admin.connect() == 0, "admin CONNACK", 0, "refused")
    check(admin.subscribe("#") == [1], "admin SUBACK for #", [1], "other")
    sensor = Client(args, "sensor_001")
    check(sensor.connect() == 0, "sensor_001 CONNACK", 0, "refused")
    got = sensor.subscribe("sensors/#")
    check(got == [denied_sub], "sensor_001 may not subscribe sensors/#", [denied_sub], got)
    got = sensor.subscribe("commands/#")
    check(got == [1], "sensor_001 may subscribe commands/# (it may read commands/001)", [1], got)
    dash = Client(args, "dashboard")
    check(dash.connect() == 0, "dashboard CONNACK", 0, "refused")
    got = dash.subscribe("sensors/#")
    check(got == [denied_sub], "dashboard's own `topic deny #` wins", [denied_sub], got)

    # Publish: denied first, then allowed; one publisher's messages stay in order, so the
    # allowed one arriving first proves the denied one was dropped.
    rc = sensor.publish("sensors/002/temp", b"denied")
    if args.protocol == "5":
        check(rc == 0x87, "PUBACK for a denied publish", 0x87, rc)
    sensor.publish("sensors/001/temp", b"allowed")
    got = admin.next_message("admin's delivery")
    check(got == ("sensors/001/temp", b"allowed"), "admin receives", ("sensors/001/temp", b"allowed"), got)

    # Delivery: sensor_001 subscribed to commands/# but may read commands/001 only.
    admin.publish("commands/002", b"not for you")
    admin.publish("commands/001", b"for you")
    got = sensor.next_message("sensor_001's delivery")
    check(got == ("commands/001", b"for you"), "sensor_001 receives", ("commands/001", b"for you"), got)
    for c in (admin, sensor, dash):
        c.close()


SCENARIOS = {"connect": scenario_connect, "acl-guide": scenario_acl_guide}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--protocol", choices=["311", "5"], required=True)
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("extra", nargs="*")
    args = ap.parse_args()
    try:
        SCENARIOS[args.scenario](args)
    except Failure as e:
        print(f"FAIL: {args.scenario} (MQTT {args.protocol}): {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
