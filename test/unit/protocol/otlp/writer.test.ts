import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProtoWriter, split64, varintSize } from '../../../../protocol/otlp/writer.js';
import { ProtoReader } from '../../../../protocol/otlp/reader.js';
import { ProtoError } from '../../../../protocol/errors.js';

test('varints round-trip across every length up to 2^53', () => {
  const values = [
    0,
    1,
    127,
    128,
    300,
    16383,
    16384,
    2 ** 31 - 1,
    2 ** 31,
    2 ** 32 - 1,
    2 ** 32,
    2 ** 35 + 7,
    Number.MAX_SAFE_INTEGER,
  ];
  const w = new ProtoWriter(8);
  for (const v of values) w.varint(v);
  const r = new ProtoReader(w.finish());
  for (const v of values) assert.equal(r.varint(), v);
  assert.equal(r.pos, r.end);
  assert.equal(varintSize(127), 1);
  assert.equal(varintSize(128), 2);
  assert.equal(varintSize(Number.MAX_SAFE_INTEGER), 8);
});

test("negative int64 varints use ten bytes of two's complement", () => {
  const w = new ProtoWriter();
  for (const v of [-1, -2, -128, -(2 ** 32), -(2 ** 53 - 1)]) w.int64(v);
  const r = new ProtoReader(w.finish());
  for (const v of [-1, -2, -128, -(2 ** 32), -(2 ** 53 - 1)]) {
    const start = r.pos;
    assert.equal(BigInt.asIntN(64, r.varintBig()), BigInt(v));
    assert.equal(r.pos - start, 10);
  }
});

test('sfixed64 keeps sign and magnitude of safe integers', () => {
  const values = [0, 1, -1, 2 ** 32, -(2 ** 32), 2 ** 53 - 1, -(2 ** 53 - 1), -123456789012];
  const w = new ProtoWriter();
  for (const v of values) w.sfixed64(v);
  const r = new ProtoReader(w.finish());
  for (const v of values) assert.equal(r.sfixed64Big(), BigInt(v));
  assert.deepEqual(split64(-1), [0xffffffff, 0xffffffff]);
});

test('timestamps become exact nanoseconds, sub-millisecond fractions kept to the microsecond', () => {
  const cases: [number, bigint][] = [
    [0, 0n],
    [1732280000123, 1732280000123000000n],
    [1732280000123.456, 1732280000123456000n],
    // eslint-disable-next-line no-loss-of-precision -- the literal's rounding is what this case tests
    [1732280000123.9999, 1732280000124000000n], // rounds up into the next millisecond
    [4102444800000.001, 4102444800000001000n], // 2100-01-01
    [9.2e12, 9200000000000000000n], // near the int64 nanosecond limit (year 2261)
  ];
  const w = new ProtoWriter();
  for (const [ms] of cases) w.timeFromMs(ms);
  const r = new ProtoReader(w.finish());
  for (const [ms, ns] of cases) assert.equal(r.fixed64Big(), ns, `ts ${ms}`);
});

test('strings of every size and script round-trip, and long bodies shift their length into place', () => {
  const strings = ['', 'temp', 'ü', '温度', '😀x', 'a'.repeat(127), 'a'.repeat(128), 'é'.repeat(70), 'b'.repeat(20000)];
  const w = new ProtoWriter(16);
  w.fork(1);
  for (const s of strings) w.stringField(2, s);
  w.join();
  const bytes = w.finish();
  const r = new ProtoReader(bytes);
  const got: string[] = [];
  r.fields(r.end, (f, wire) => {
    assert.equal(f, 1);
    r.fields(r.submessageEnd(), (f2, wire2) => {
      assert.equal(f2, 2);
      assert.equal(wire2, 2);
      got.push(r.string());
    });
    assert.equal(wire, 2);
  });
  assert.deepEqual(got, strings);
});

test('the writer is reusable: a second batch does not see the first', () => {
  const w = new ProtoWriter(4);
  w.stringField(1, 'first batch with a long string'.repeat(10));
  const a = w.finish();
  w.reset();
  w.stringField(1, 'x');
  const b = w.finish();
  assert.deepEqual([...b], [0x0a, 1, 0x78]);
  assert.equal(a.length, 1 + 2 + 300);
});

test('reader rejects truncated input, bad wire types and overlong varints with OTLPEDGE_PROTO_MALFORMED', () => {
  const w = new ProtoWriter();
  w.stringField(1, 'hello');
  const ok = w.finish();
  const bad: Uint8Array[] = [
    ok.subarray(0, 3),
    Uint8Array.from([0x0b]), // wire type 3 (group)
    Uint8Array.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
    Uint8Array.from([0x00, 0x00]), // field 0
    Uint8Array.from([0x11, 1, 2, 3]), // truncated fixed64
  ];
  for (const b of bad) {
    assert.throws(
      () => {
        const r = new ProtoReader(b);
        r.fields(r.end, (_f, wire) => r.skip(wire));
      },
      (e: unknown) => e instanceof ProtoError && e.code === 'OTLPEDGE_PROTO_MALFORMED',
    );
  }
});
