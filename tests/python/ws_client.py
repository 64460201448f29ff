#!/usr/bin/env python3
"""One paho-mqtt 2.x client over WebSocket (wss:// with --ca), driven by tests/tls_listeners.rs.

Usage: ws_client.py --port PORT [--ca CA] [--cert CERT --key KEY] [--protocol {311,5}]
                    [--payload-size N]

Connects, subscribes to a fresh topic, publishes one QoS 1 message of --payload-size bytes to it
and waits for it to come back. Exit 0 and "OK" when it does; exit 3 and "REFUSED: ..." when the
broker does not admit the client (TLS or WebSocket handshake refused, or a CONNACK refusal);
exit 1 and "FAIL: ..." for anything else. Every wait is bounded.
"""

import argparse
import queue
import ssl
import sys
import uuid

import paho.mqtt.client as mqtt

WAIT = 10.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="localhost")
    ap.add_argument("--ca")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--protocol", choices=["311", "5"], default="5")
    ap.add_argument("--payload-size", type=int, default=16)
    args = ap.parse_args()

    v5 = args.protocol == "5"
    events = queue.Queue()
    c = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"ws-{uuid.uuid4().hex[:10]}",
        transport="websockets",
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
    )
    if args.ca:
        c.tls_set(ca_certs=args.ca, certfile=args.cert, keyfile=args.key)
    c.on_connect = lambda cl, u, flags, rc, props: events.put(("connack", rc.value))
    c.on_subscribe = lambda cl, u, mid, rcs, props: events.put(("suback", [r.value for r in rcs]))
    c.on_message = lambda cl, u, msg: events.put(("message", msg.payload))
    c.on_disconnect = lambda cl, u, flags, rc, props: events.put(("disconnect", rc.value))

    def refused(why):
        print(f"REFUSED: {why}")
        sys.exit(3)

    try:
        c.connect(args.host, args.port, keepalive=30)
    except (OSError, ssl.SSLError, mqtt.WebsocketConnectionError) as e:
        refused(f"connect: {e!r}")
    c.loop_start()

    def next_event(kind):
        try:
            ev = events.get(timeout=WAIT)
        except queue.Empty:
            if kind == "connack":
                refused(f"no CONNACK within {WAIT}s")
            print(f"FAIL: no {kind} within {WAIT}s")
            sys.exit(1)
        if ev[0] != kind:
            if kind == "connack":
                refused(f"{ev!r} instead of a CONNACK")
            print(f"FAIL: expected {kind}, got {ev!r}")
            sys.exit(1)
        return ev

    _, rc = next_event("connack")
    if rc != 0:
        refused(f"CONNACK {rc}")
    topic = f"ws/{uuid.uuid4().hex[:8]}"
    c.subscribe(topic, 1)
    _, codes = next_event("suback")
    if codes != [1]:
        print(f"FAIL: SUBACK {codes}")
        sys.exit(1)
    payload = bytes(i % 251 for i in range(args.payload_size))
    c.publish(topic, payload, qos=1)
    _, got = next_event("message")
    if got != payload:
        print(f"FAIL: payload of {len(got)} bytes differs from the {len(payload)} sent")
        sys.exit(1)
    c.disconnect()
    c.loop_stop()
    print("OK")


if __name__ == "__main__":
    main()
