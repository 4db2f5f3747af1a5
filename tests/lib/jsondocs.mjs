// Tricky JSON documents for the byte-exact payload tests, and a reader for a
// field's raw bytes in a frame. rtgw forwards a publish body's JSON as the bytes
// it received (only the whitespace between tokens is dropped, so a frame stays one
// line); these are the documents a re-encoding parser would change.
// Pure data and functions; no I/O.
//
//   for (const d of TRICKY_JSON) publish(body = d.body) → frame's rawField(text, "data") === d.want

export const TRICKY_JSON = [
  { name: "decimal", body: "0.1", want: "0.1" },
  { name: "exponent", body: "1e2", want: "1e2" },
  { name: "exponent_signed", body: "-1.50E+02", want: "-1.50E+02" },
  { name: "negative_zero", body: "-0", want: "-0" },
  { name: "big_integer", body: "123456789012345678901234567890", want: "123456789012345678901234567890" },
  { name: "big_integer_in_object", body: '{"id":18446744073709551617,"n":-9223372036854775809}',
    want: '{"id":18446744073709551617,"n":-9223372036854775809}' },
  { name: "nul_escape", body: '"\\u0000"', want: '"\\u0000"' },
  { name: "escapes", body: '"tab\\tq\\"b\\\\s\\/ \\u00e9\\uD83D\\uDE00"', want: '"tab\\tq\\"b\\\\s\\/ \\u00e9\\uD83D\\uDE00"' },
  { name: "unicode", body: '"é 😀 中文 <>&"', want: '"é 😀 中文 <>&"' },
  { name: "nested", body: '{"a":[1,{"b":[0.10,{"c":1e-7}]}],"d":{"e":null,"f":true}}',
    want: '{"a":[1,{"b":[0.10,{"c":1e-7}]}],"d":{"e":null,"f":true}}' },
  { name: "deep", body: "[".repeat(40) + "1.0" + "]".repeat(40), want: "[".repeat(40) + "1.0" + "]".repeat(40) },
  { name: "whitespace_between_tokens", body: '{\n  "a" : [ 1 ,\t2 ],\r\n  "b" : "x y\\n"\n}\n',
    want: '{"a":[1,2],"b":"x y\\n"}' },
  { name: "duplicate_keys_kept", body: '{"a":1,"a":2}', want: '{"a":1,"a":2}' },
];

// The raw text of the value of "name" in a JSON object text (the first
// occurrence of "name": outside a string value of an earlier field is assumed;
// test frames use plain channel and topic names).
export function rawField(text, name) {
  const key = `"${name}":`;
  const at = text.indexOf(key);
  if (at < 0) return undefined;
  let i = at + key.length, depth = 0, inStr = false;
  const start = i;
  for (; i < text.length; i++) {
    const c = text[i];
    if (inStr) {
      if (c === "\\") i++;
      else if (c === '"') { inStr = false; if (depth === 0) return text.slice(start, i + 1); }
      continue;
    }
    if (c === '"') inStr = true;
    else if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") {
      if (depth === 0) return text.slice(start, i);
      if (--depth === 0) return text.slice(start, i + 1);
    } else if (c === "," && depth === 0) return text.slice(start, i);
  }
  return text.slice(start);
}
