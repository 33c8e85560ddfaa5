"""An analytics consumer outside Rust: reads every event of the ONAIR stream with nats-py and
validates each payload against the published JSON Schema of its type (openapi/events/<type>.json),
and its headers against the CloudEvents attributes the AsyncAPI document lists.

usage: python3 validate_events.py <nats url> <openapi dir>
Prints one line per event type with its count; exits 1 on the first invalid event or unknown type.
"""
import asyncio
import json
import os
import sys
from collections import Counter

import jsonschema
import nats

REQUIRED_HEADERS = ["ce-specversion", "ce-id", "ce-source", "ce-type", "ce-time", "ce-subject",
                    "ce-datacontenttype", "Nats-Msg-Id"]


async def main(url, openapi):
    schemas = {}
    folder = os.path.join(openapi, "events")
    for name in os.listdir(folder):
        with open(os.path.join(folder, name)) as f:
            schema = json.load(f)
        schemas[schema["title"]] = schema
    nc = await nats.connect(url)
    js = nc.jetstream()
    info = await js.stream_info("ONAIR")
    counts = Counter()
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg("ONAIR", seq)
        headers = msg.headers or {}
        missing = [h for h in REQUIRED_HEADERS if h not in headers]
        if missing:
            print(f"FAIL seq {seq}: missing headers {missing}")
            return 1
        event_type = headers["ce-type"]
        if headers["Nats-Msg-Id"] != headers["ce-id"]:
            print(f"FAIL seq {seq}: Nats-Msg-Id differs from ce-id")
            return 1
        schema = schemas.get(event_type)
        if schema is None:
            print(f"FAIL seq {seq}: no schema for {event_type}")
            return 1
        try:
            jsonschema.validate(json.loads(msg.data), schema)
        except jsonschema.ValidationError as e:
            print(f"FAIL seq {seq} ({event_type}): {e.message}")
            return 1
        counts[event_type] += 1
    await nc.close()
    for event_type, n in sorted(counts.items()):
        print(f"ok {event_type} {n}")
    print(f"VALID {sum(counts.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2])))
