#!/usr/bin/env python3
"""Writes the seed corpora of the gateway fuzz targets (publish, pos, config, http_head,
batch, extmsg) into tests/fuzz/corpus/<name>/. Run by hand; the seeds are
committed and each is a CTest entry (fuzz.<name>.<file>). Deterministic.

    python3 tests/fuzz/gen_gw_corpus.py [tests/fuzz/corpus]

Inputs that a fuzzing run found (crashes, or worth keeping) are committed
beside these under their own names (found_*), and are not written here.
"""
import json
import os
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

KEY = b"\x00"  # auth byte: signing key
PUB = b"\x01"  # token with publish on user:42/* and team:7/status
SUB = b"\x02"  # token without publish
BAD = b"\x03"  # garbage credential


def put(target, name, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- publish: auth byte, query, '\n', body ----
pub = {
    "json_object": KEY + b"channel=user:42&topic=ai\n" + b'{"msg":"hi","n":[1,2.5,true,null]}',
    "json_string_body": KEY + b"channel=user:42&topic=ai\n\"just a string\"",
    "json_number_body": KEY + b"channel=c&topic=t\n-12.5e3",
    "text_body": KEY + b"channel=c&topic=t\nplain text, not JSON",
    "empty_body": KEY + b"channel=c&topic=t\n",
    "no_body": KEY + b"channel=c&topic=t",
    "not_utf8_body": KEY + b"channel=c&topic=t\n\xff\xfe\x80",
    "nul_in_body": KEY + b"channel=c&topic=t\nab\x00cd",
    "control_chars_body": KEY + b"channel=c&topic=t\n\x01\x1f\t\r\n\"\\",
    "multi_topic": KEY + b"channel=user:42&topic=a&topic=b&topic=c\n[1]",
    "idem_repeat_topic": KEY + b"channel=c&topic=a&topic=a&idempotency_key=k1\n{}",
    "run_fn_ids": KEY + b"channel=c&topic=t&run_id=run-1&fn_id=fn%2F2\n{}",
    "percent_encoded": KEY + b"channel=user%3A42&topic=caf%C3%A9+x\n{}",
    "bad_percent": KEY + b"channel=c%2&topic=t\n{}",
    "nul_percent": KEY + b"channel=c%00x&topic=t\n{}",
    "wildcard_topic": KEY + b"channel=c&topic=*\n{}",
    "missing_channel": KEY + b"topic=t\n{}",
    "missing_topic": KEY + b"channel=c\n{}",
    "seventeen_topics": KEY + b"channel=c&" + b"&".join(b"topic=t%d" % i for i in range(17)) + b"\n{}",
    "long_channel": KEY + b"channel=" + b"x" * 80 + b"&topic=t\n{}",
    "utf8_names": KEY + "channel=café&topic=€uro\n{}".encode(),
    "token_granted": PUB + b"channel=user:42&topic=ai\n{}",
    "token_team_status": PUB + b"channel=team:7&topic=status\n{}",
    "token_not_granted": PUB + b"channel=team:7&topic=other\n{}",
    "token_no_publish": SUB + b"channel=user:42&topic=ai\n{}",
    "garbage_credential": BAD + b"channel=user:42&topic=ai\n{}",
    "deep_json": KEY + b"channel=c&topic=t\n" + b"[" * 200 + b"]" * 200,
    # the fixture's RTGW_MAX_JSON_DEPTH is 8: exactly at it, one past it, far past it
    "deep_json_at_limit": KEY + b"channel=c&topic=t\n" + b"[" * 8 + b"1" + b"]" * 8,
    "deep_json_past_limit": KEY + b"channel=c&topic=t\n" + b"[" * 9 + b"1" + b"]" * 9,
    "deep_json_100k": PUB + b"channel=user:42&topic=ai\n" + b"[" * 100000 + b"]" * 100000,
    "duplicate_keys_json": KEY + b"channel=c&topic=t\n{\"a\":1,\"a\":2}",
    "big_integer_json": KEY + b"channel=c&topic=t\n123456789012345678901234567890",
    "escapes_json": KEY + b"channel=c&topic=t\n\"\\u00e9\\ud83d\\ude00\\u0000\"",
    # issue 15: JSON forwarded as its bytes; metadata and fn_slug in the frame
    "metadata_json": KEY + b"channel=c&topic=t&fn_slug=my-fn&metadata=%7B%22a%22%3A%5B1%2C%20%7B%7D%5D%2C%22a%22%3A1e400%7D\n"
                     + b'{ "x" : 0.1 , "y": 1E+2 }',
    "metadata_not_json": KEY + b"channel=c&topic=t&metadata=%7Bnot\n1",
    "found_nul_after_number": KEY + b"channel=c&topic=a&topic=a\n2\x00",
    "lone_surrogate_escape": KEY + b"channel=c&topic=t\n\"\\ud800 lone surrogate escape\"",
}
for k, v in pub.items():
    put("publish", k, v)

# ---- pos: the bytes are a position ----
pos = {
    "canonical": "1f-7",
    "zero": "0-0",
    "max_epoch": "ffffffffffffffff-9999999999999999999",
    "leading_zero_offset": "1-01",
    "leading_zero_epoch": "01-1",
    "uppercase": "ABC-1",
    "twenty_digits": "1-12345678901234567890",
    "seventeen_hex": "12345678901234567-1",
    "no_dash": "abc",
    "two_dashes": "1--1",
    "empty_offset": "a-",
    "space": " 1-1",
    "binary_pair": b"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10",
    "huge_offset_pair": b"\x00" * 8 + b"\xff" * 8,
}
for k, v in pos.items():
    put("pos", k, v)

# ---- config: dev byte (bit 0), then the .env file ----
KEYLINE = "RTGW_SIGNING_KEY=signkey-test-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"
cfg = {
    "minimal": "\x00" + KEYLINE,
    "dev_empty": "\x01",
    "example_like": "\x00" + KEYLINE + "RTGW_LISTEN=0.0.0.0:8288\nRTGW_ALLOWED_ORIGINS=https://app.example.com, http://localhost:3000\n"
    "RTGW_LOG_LEVEL=debug\nRTGW_PUBLIC_URL=https://rt.example.com\nRTGW_MAX_CONNECTIONS=5000\n",
    "quotes_export_comments": "\x00# comment\nexport " + KEYLINE + "RTGW_LOG_LEVEL='warn'\nRTGW_TOKEN_ISSUER=\"me\" # trailing\n",
    "out_of_range": "\x00" + KEYLINE + "RTGW_MAX_CONNECTIONS=0\nRTGW_TOKEN_TTL=999999999\nRTGW_HISTORY_MAX=-1\n",
    "not_numbers": "\x00" + KEYLINE + "RTGW_MAX_BODY_BYTES=12k\nRTGW_PING_INTERVAL_MS=\nRTGW_QUEUE_MAX_BYTES=0x10\n",
    "bad_key": "\x00RTGW_SIGNING_KEY=signkey-test-zz\n",
    "fallback_equal": "\x00" + KEYLINE + KEYLINE.replace("KEY=", "KEY_FALLBACK=", 1),
    "no_equals": "\x00" + KEYLINE + "RTGW_LISTEN\n",
    "bad_listen": "\x00" + KEYLINE + "RTGW_LISTEN=[::1:80\n",
    "v6_listen": "\x00" + KEYLINE + "RTGW_LISTEN=[::1]:0\n",
    "origins_bad": "\x00" + KEYLINE + "RTGW_ALLOWED_ORIGINS=*,https://a.com/,app.com,,\n",
    "public_url_bad": "\x00" + KEYLINE + "RTGW_PUBLIC_URL=http://rt.example.com/path\n",
    "public_url_v6": "\x00" + KEYLINE + "RTGW_PUBLIC_URL=http://[::1]:8288\n",
    "redis_urls": "\x00" + KEYLINE + "RTGW_REDIS_URL=redis://:s3cret@[::1]:6379/2\n",
    "redis_bad": "\x00" + KEYLINE + "RTGW_REDIS_URL=rediss://u:p%zz@h\n",
    "tls_half": "\x00" + KEYLINE + "RTGW_TLS_CERT=/nonexistent/cert.pem\n",
    "tls_missing_files": "\x00" + KEYLINE + "RTGW_TLS_CERT=/nonexistent/c.pem\nRTGW_TLS_KEY=/nonexistent/k.pem\n",
    "ttl_above_max": "\x00" + KEYLINE + "RTGW_TOKEN_TTL=4000\n",
    "alg_log_bad": "\x00" + KEYLINE + "RTGW_TOKEN_ALG=none\nRTGW_LOG_LEVEL=verbose\n",
    "long_line": "\x00" + KEYLINE + "RTGW_TOKEN_ISSUER=" + "i" * 9000 + "\n",
    "crlf_nul": "\x00" + KEYLINE.replace("\n", "\r\n") + "RTGW_LOG_LEVEL=info\x00junk\r\n",
}
for k, v in cfg.items():
    put("config", k, v.encode("latin-1"))

# ---- batch: auth byte, then the body ----
def ev(**kw):
    return kw


batch = {
    "one": KEY + json.dumps([ev(channel="user:42", topic="ai", data={"x": 1})]).encode(),
    "mixed": KEY + json.dumps([
        ev(channel="c", topic="t", data=[1, 2], run_id="r", fn_id="f"),
        ev(channel="c", topic="*", data=1),
        ev(channel="", topic="t"),
        ev(topic="t"),
        "not an object",
        ev(channel="c", topic="t", run_id=""),
        ev(channel="c", topic="t"),
    ]).encode(),
    "idempotent": KEY + json.dumps([
        ev(channel="c", topic="t", data=1, idempotency_key="k"),
        ev(channel="c", topic="t", data=2, idempotency_key="k"),
        ev(channel="c", topic="u", data=3, idempotency_key="k"),
    ]).encode(),
    "token_grants": PUB + json.dumps([
        ev(channel="user:42", topic="any", data="a"),
        ev(channel="team:7", topic="status", data="b"),
        ev(channel="team:7", topic="other", data="c"),
    ]).encode(),
    "token_no_publish": SUB + json.dumps([ev(channel="user:42", topic="ai")]).encode(),
    "garbage_credential": BAD + b"[]",
    "empty_array": KEY + b"[]",
    "object_not_array": KEY + b'{"channel":"c","topic":"t"}',
    "not_json": KEY + b"[{",
    "too_many": KEY + json.dumps([ev(channel="c", topic="t")] * 17).encode(),
    "duplicate_keys": KEY + b'[{"channel":"c","channel":"d","topic":"t"}]',
    "unicode_names": KEY + json.dumps([ev(channel="caf\u00e9", topic="\u20ac", data="\u0001\"\\")]).encode(),
    "control_in_name": KEY + json.dumps([ev(channel="a\nb", topic="t")]).encode(),
    "deep_data_at_limit": KEY + b'[{"channel":"c","topic":"t","data":' + b"[" * 8 + b"]" * 8 + b"}]",
    "deep_data_past_limit": KEY + b'[{"channel":"c","topic":"t","data":' + b"[" * 9 + b"]" * 9 + b"}]",
    # issue 15: data forwarded as its bytes
    "raw_data_bytes": KEY + b'[{"channel":"c","topic":"t","data":123456789012345678901234567890},'
                      + b'{"channel":"c","topic":"t","fn_slug":"s","data":{"a":1,"a":[0.10]}}]',
    "found_nul_in_array": PUB + b"[5\x00]",
    "data_with_whitespace": KEY + b'[{"channel":"c","topic":"t","data": [ 0.1 , "\\u00e9" ] }]',
}
for k, v in batch.items():
    put("batch", k, v)

# ---- extmsg: 'P' payload to sign | 'T' token | 'S' sub payload | the message itself ----
now = 1700000000
def payload(topics, **kw):
    p = {"iss": "rtgw", "sub": "user:42", "iat": now, "exp": now + 60, "jti": "j", "env": "test",
         "topics": [{"channel": c, "name": n, "kind": "run"} for c, n in topics], "publish": False}
    p.update(kw)
    return "P" + json.dumps(p, separators=(",", ":"))


ext = {
    "refresh_same": payload([("user:42", "*"), ("team:7", "status"), ("team:7", "alerts")]),
    "refresh_narrower": payload([("user:42", "ai"), ("team:7", "status")]),
    "refresh_drop_channel": payload([("user:42", "*")]),
    "refresh_no_topics": payload([]),
    "refresh_broader": payload([("team:7", "*")]),
    "refresh_other_channel": payload([("user:43", "ai")]),
    "refresh_expired": payload([("user:42", "*")], exp=now - 100),
    "refresh_wrong_env": payload([("user:42", "*")], env="prod"),
    "token_garbage": "Tnot.a.token",
    "token_empty": "T",
    "no_token": '{"kind":"rtgw.refresh"}',
    "token_not_string": '{"kind":"rtgw.refresh","token":42}',
    "unknown_kind": '{"kind":"rtgw.subscribe","channel":"c"}',
    "no_kind": '{"token":"x"}',
    "kind_not_string": '{"kind":1}',
    "not_json": "hello",
    "array": "[1,2]",
    "duplicate_keys": '{"kind":"rtgw.refresh","kind":"x"}',
    "empty": "",
    "deep_message": "[" * 5000 + '{"kind":"rtgw.refresh"}' + "]" * 5000,
    # Inngest's sub and unsub ('S': a payload signed and sent as {"kind":"sub","data":…})
    "sub_new_topics": "S" + payload([("user:43", "ai"), ("team:7", "status"), ("user:43", "ai")])[1:],
    "sub_over_cap": "S" + payload([("c", str(i)) for i in range(4)])[1:],
    "sub_expired": "S" + payload([("user:43", "ai")], exp=now - 100)[1:],
    "sub_not_string": '{"kind":"sub","data":["x"]}',
    "sub_garbage": '{"kind":"sub","data":"not.a.token"}',
    "unsub_some": '{"kind":"unsub","data":[{"kind":"run","channel":"team:7","name":"status"},{"channel":"user:42","name":"*"}]}',
    "unsub_unknown": '{"kind":"unsub","data":[{"channel":"nowhere","name":"x"}]}',
    "unsub_bad_entry": '{"kind":"unsub","data":[{"channel":"team:7"}]}',
    "unsub_not_list": '{"kind":"unsub","data":"team:7"}',
    "unsub_other_kind": '{"kind":"uKsuj","data":[{"channel":"user:42","name":"*"}]}',
    "sub_other_kind": '{"kind":"subs","data":"x.y.z"}',
    "unsub_deep": '{"kind":"unsub","data":[[[[[[[[{"channel":"a","name":"b"}]]]]]]]]}',
}
for k, v in ext.items():
    put("extmsg", k, v)

# ---- http_head: cut byte, size byte (max = 16 + 16 * it), then a request head ----
def head(*lines, end="\r\n"):
    return end.join(lines) + end + end


hh = {
    "get_health": head("GET /health HTTP/1.1", "Host: x"),
    "get_lf_only": head("GET /health HTTP/1.1", "Host: x", end="\n"),
    "publish_content_length": head("POST /v1/realtime/publish?channel=c&topic=t HTTP/1.1", "Host: x",
                                   "Content-Length: 2") + "{}",
    "chunked": head("POST /v1/realtime/publish HTTP/1.1", "Transfer-Encoding: chunked") + "2\r\n{}\r\n0\r\n\r\n",
    "smuggle_cl_te": head("POST / HTTP/1.1", "Content-Length: 4", "Transfer-Encoding: chunked"),
    "smuggle_te_cl": head("POST / HTTP/1.1", "Transfer-Encoding: chunked", "Content-Length: 4"),
    "smuggle_te_space_colon": head("POST / HTTP/1.1", "Transfer-Encoding : chunked"),
    "smuggle_two_te": head("POST / HTTP/1.1", "Transfer-Encoding: chunked", "Transfer-Encoding: identity"),
    "smuggle_two_cl": head("POST / HTTP/1.1", "Content-Length: 4", "Content-Length: 5"),
    "same_cl_twice": head("POST / HTTP/1.1", "Content-Length: 4", "content-length: 4"),
    "cl_not_decimal": head("POST / HTTP/1.1", "Content-Length: +4"),
    "te_gzip": head("POST / HTTP/1.1", "Transfer-Encoding: gzip, chunked"),
    "websocket_upgrade": head("GET /v1/realtime/connect?token=x HTTP/1.1", "Host: x", "Upgrade: websocket",
                              "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                              "Sec-WebSocket-Version: 13"),
    "control_byte": "GET / HTTP/1.1\r\nHost: x\x01y\r\n\r\n",
    "no_end": "GET / HTTP/1.1\r\nHost: x\r\n" + "X-Pad: " + "a" * 600,
    "high_bytes": head("GET /\xc3\xa9 HTTP/1.1", "X-Name: caf\xc3\xa9"),
    # rt_http_parse_strict (the front door's own answers): taken, and refused
    "strict_mint_pipelined": head("POST /v1/realtime/token HTTP/1.1", "Authorization: Bearer k",
                                  "Content-Length: 2") + "[]" + head("GET /health HTTP/1.0"),
    "strict_values_trimmed": head("GET /v1/realtime/connect?a=b?c HTTP/1.1", "X-A:   v  ", "X-B:", "X-C:\tw\t"),
    "strict_tab_inside_value": head("GET / HTTP/1.1", "X-A: a\tb"),
    "strict_folded": head("GET / HTTP/1.1", "X-A: a", " folded"),
    "strict_bare_lf_line": "GET / HTTP/1.1\r\nX-A: a\nX-B: b\r\n\r\n",
    "strict_bare_cr": "GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n",
    "strict_percent_path": head("GET /v1/realtime/%63onnect HTTP/1.1", "Host: x"),
    "strict_http2": head("GET / HTTP/2.0", "Host: x"),
    "strict_lower_method": head("get / HTTP/1.1", "Host: x"),
    "strict_64_headers": head("GET / HTTP/1.1", *["X-%d: v" % i for i in range(64)]),
    "strict_63_headers": head("GET / HTTP/1.1", *["X-%d: v" % i for i in range(63)]),
    "strict_nul_in_head": "GET / HTTP/1.1\r\nX-A: a\x00b\r\n\r\n",
    "strict_no_colon": head("GET / HTTP/1.1", "Host x"),
    "strict_space_in_name": head("GET / HTTP/1.1", "X A: b"),
    "strict_leading_spaces": head("GET / HTTP/1.1", "X-A:   v", "X-B:"),
    "strict_trailing_space": head("GET /v1/realtime/connect HTTP/1.1", "Sec-WebSocket-Version: 13 "),
    "strict_cl_trailing_space": head("POST /v1/realtime/token HTTP/1.1", "Content-Length: 2 ") + "[]",
}
for i, (k, v) in enumerate(hh.items()):
    put("http_head", k, bytes([0x5a ^ i, 0x40]) + v.encode("latin1"))
