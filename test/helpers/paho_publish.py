#!/usr/bin/env python3
"""Publishes device readings with Eclipse paho-mqtt (a peer this project did not write) and prints one JSON line:
{"published": N, "acked": [seq, ...], "rc": connect result}.

Usage: paho_publish.py --port P --device ID --count N [--qos Q] [--tls-ca F --tls-cert F --tls-key F]
       [--username U --password P] [--payload-json TEXT] [--start-seq S] [--topic T]
Each reading is {"ts": <epoch ms>, "seq": <n>, "temperature": 20 + n/10, "humidity": 40 + n, "fw": "paho"} unless
--payload-json gives a fixed payload.
"""
import argparse, json, ssl, sys, threading, time
import paho.mqtt.client as mqtt

ap = argparse.ArgumentParser()
ap.add_argument("--host", default="127.0.0.1")
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--device", required=True)
ap.add_argument("--count", type=int, default=1)
ap.add_argument("--qos", type=int, default=1)
ap.add_argument("--tls-ca"); ap.add_argument("--tls-cert"); ap.add_argument("--tls-key")
ap.add_argument("--username"); ap.add_argument("--password")
ap.add_argument("--payload-json")
ap.add_argument("--topic")
ap.add_argument("--start-seq", type=int, default=0)
ap.add_argument("--ts", type=int, default=1732280000000)
a = ap.parse_args()

try:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, client_id=a.device)  # paho 2.x
except AttributeError:
    client = mqtt.Client(client_id=a.device)  # paho 1.x
if a.username:
    client.username_pw_set(a.username, a.password)
if a.tls_ca:
    client.tls_set(ca_certs=a.tls_ca, certfile=a.tls_cert, keyfile=a.tls_key, cert_reqs=ssl.CERT_REQUIRED)

connected = threading.Event()
result = {"rc": None}
acked_mids = set()
lock = threading.Lock()

def on_connect(c, u, flags, rc):
    result["rc"] = rc
    connected.set()

def on_publish(c, u, mid):
    with lock:
        acked_mids.add(mid)

client.on_connect = on_connect
client.on_publish = on_publish
client.max_inflight_messages_set(100)
client.connect(a.host, a.port, keepalive=30)
client.loop_start()
connected.wait(10)
if result["rc"] != 0:
    print(json.dumps({"published": 0, "acked": [], "rc": result["rc"]}))
    client.loop_stop()
    sys.exit(0)

topic = a.topic or f"devices/{a.device}/telemetry"
mid_to_seq = {}
for i in range(a.count):
    seq = a.start_seq + i
    payload = a.payload_json if a.payload_json is not None else json.dumps(
        {"ts": a.ts + seq * 1000, "seq": seq, "temperature": 20 + seq / 10, "humidity": 40 + seq, "fw": "paho"})
    info = client.publish(topic, payload, qos=a.qos)
    mid_to_seq[info.mid] = seq

deadline = time.time() + 20
while time.time() < deadline:
    with lock:
        if a.qos == 0 or len(acked_mids) >= a.count:
            break
    time.sleep(0.02)
time.sleep(0.1)
client.disconnect()
client.loop_stop()
with lock:
    acked = sorted(mid_to_seq[m] for m in acked_mids if m in mid_to_seq)
print(json.dumps({"published": a.count, "acked": acked if a.qos > 0 else [], "rc": result["rc"]}))
