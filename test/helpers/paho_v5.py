#!/usr/bin/env python3
"""Publishes messages with Eclipse paho-mqtt's MQTT 5 client (a peer this project did not write) and prints one JSON
line: {"rc": connect reason, "connack": {properties}, "acks": [{"mid", "code", "name", "reason"}...]}.

Usage: paho_v5.py --port P --client-id ID --messages JSON [--username U --password P]
JSON is a list of {"topic", "payload", "qos", "content_type"?, "user_properties"? [[k, v]...], "topic_alias"?}.

paho 1.6 reads the reason code and reason string of each PUBACK but its on_publish callback passes only the message
id; this script decodes them with paho's own ReasonCodes and Properties from the packet paho received.
"""
import argparse, json, struct, sys, threading
import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCodes

ap = argparse.ArgumentParser()
ap.add_argument("--host", default="127.0.0.1")
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--client-id", required=True)
ap.add_argument("--messages", required=True)
ap.add_argument("--username"); ap.add_argument("--password")
a = ap.parse_args()

acks = {}
done = threading.Event()
lock = threading.Lock()
expected = 0


class Client(mqtt.Client):
    def _handle_pubackcomp(self, cmd):
        packet = self._in_packet["packet"]
        mid, = struct.unpack("!H", packet[:2])
        entry = {"mid": mid, "code": 0, "name": "Success", "reason": None}
        if len(packet) > 2:
            rc = ReasonCodes(PacketTypes.PUBACK)
            rc.unpack(packet[2:])
            entry["code"] = rc.value
            entry["name"] = rc.getName()
            if len(packet) > 3:
                props = Properties(PacketTypes.PUBACK)
                props.unpack(packet[3:])
                entry["reason"] = getattr(props, "ReasonString", None)
        with lock:
            acks[mid] = entry
            if len(acks) >= expected:
                done.set()
        return super()._handle_pubackcomp(cmd)


try:
    client = Client(mqtt.CallbackAPIVersion.VERSION1, client_id=a.client_id, protocol=mqtt.MQTTv5)  # paho 2.x
except AttributeError:
    client = Client(client_id=a.client_id, protocol=mqtt.MQTTv5)  # paho 1.x
if a.username:
    client.username_pw_set(a.username, a.password)

connected = threading.Event()
result = {"rc": None, "connack": {}}


def on_connect(c, u, flags, rc, properties=None):
    result["rc"] = rc.value if hasattr(rc, "value") else rc
    if properties is not None:
        result["connack"] = {k: v for k, v in properties.json().items()}
    connected.set()


client.on_connect = on_connect
client.connect(a.host, a.port, keepalive=30, clean_start=True)
client.loop_start()
connected.wait(10)
if result["rc"] != 0:
    print(json.dumps({**result, "acks": []}))
    client.loop_stop()
    sys.exit(0)

messages = json.loads(a.messages)
expected = sum(1 for m in messages if m["qos"] > 0)
mids = []
for m in messages:
    props = Properties(PacketTypes.PUBLISH)
    if "content_type" in m:
        props.ContentType = m["content_type"]
    for k, v in m.get("user_properties", []):
        props.UserProperty = (k, v)
    if "topic_alias" in m:
        props.TopicAlias = m["topic_alias"]
    payload = m["payload"].encode() if isinstance(m["payload"], str) else bytes(m["payload"])
    info = client.publish(m["topic"], payload, qos=m["qos"], properties=props)
    mids.append(info.mid if m["qos"] > 0 else None)
if expected > 0:
    done.wait(20)
client.disconnect()
client.loop_stop()
with lock:
    out = [acks.get(mid) if mid is not None else None for mid in mids]
print(json.dumps({**result, "acks": out}))
