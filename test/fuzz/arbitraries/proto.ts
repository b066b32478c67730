/**
 * Valid protobuf encodings of any lime.proto message, generated from the schema itself
 * (protobufjs reflection): every field, repeated field, map and oneof member with values
 * across its type's range (64-bit extremes, NaN and infinities, unicode, unknown enum
 * numbers), nested to a bounded depth, plus unknown fields of every wire type — what a
 * newer peer may send. Mutating these (mutate.ts) reaches the decoder's deep paths far
 * more often than random bytes do.
 */
import fc from 'fast-check';
import protobuf from 'protobufjs';

/** Nesting beyond this depth is left out (lime.proto has no recursive message). */
const MAX_DEPTH = 4;

const int64 = fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }).map(String);
const uint64 = fc.oneof(fc.nat({ max: 1000 }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map(String));
const uint32 = fc.oneof(fc.nat({ max: 1000 }), fc.integer({ min: 0, max: 0xffffffff }));
const int32 = fc.integer({ min: -0x80000000, max: 0x7fffffff });

function scalar(type: string): fc.Arbitrary<unknown> {
  switch (type) {
    case 'double':
      return fc.oneof(fc.double(), fc.constantFrom(0, -0, NaN, Infinity, -Infinity, 2 ** 53, 1e308));
    case 'float':
      return fc.float();
    case 'int32':
    case 'sint32':
    case 'sfixed32':
      return int32;
    case 'uint32':
    case 'fixed32':
      return uint32;
    case 'int64':
    case 'sint64':
    case 'sfixed64':
      return int64;
    case 'uint64':
    case 'fixed64':
      return uint64;
    case 'bool':
      return fc.boolean();
    case 'string':
      return fc.oneof(fc.string({ maxLength: 12 }), fc.string({ unit: 'grapheme', maxLength: 6 }), fc.constantFrom('', 'constructor', '__proto__', 'a'.repeat(300)));
    case 'bytes':
      return fc.uint8Array({ maxLength: 40 });
    default:
      throw new Error(`no arbitrary for protobuf scalar type ${type}`);
  }
}

function valueOf(field: protobuf.Field, depth: number): fc.Arbitrary<unknown> | undefined {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Type) return depth >= MAX_DEPTH ? undefined : objectOf(rt, depth + 1);
  if (rt instanceof protobuf.Enum) {
    const known = Object.values(rt.values);
    return fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...known) }, { weight: 1, arbitrary: fc.integer({ min: -5, max: 1000 }) });
  }
  return scalar(field.type);
}

const cache = new Map<string, fc.Arbitrary<Record<string, unknown>>>();

/** A plain object (protobufjs fromObject form) of message `type`. */
export function objectOf(type: protobuf.Type, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  const id = `${type.fullName}@${depth}`;
  const hit = cache.get(id);
  if (hit !== undefined) return hit;
  const parts: fc.Arbitrary<[string, unknown] | undefined>[] = [];
  for (const field of type.fieldsArray) {
    if (field.partOf !== null && !field.partOf.name.startsWith('_')) continue; // oneof members: below
    const value = valueOf(field, depth);
    if (value === undefined) continue;
    let arb: fc.Arbitrary<unknown> = value;
    if (field.map) {
      const key = scalar((field as unknown as protobuf.MapField).keyType);
      arb = fc.array(fc.tuple(key, value), { maxLength: 3 }).map((kvs) => Object.fromEntries(kvs.map(([k, v]) => [String(k), v])));
    } else if (field.repeated) {
      arb = fc.array(value, { maxLength: 3 });
    }
    parts.push(fc.option(arb.map((v): [string, unknown] => [field.name, v]), { freq: 2, nil: undefined }));
  }
  for (const oneof of type.oneofsArray) {
    if (oneof.name.startsWith('_')) continue; // proto3 `optional`: handled as a field
    const members = oneof.fieldsArray
      .map((f) => ({ f, v: valueOf(f, depth) }))
      .filter((m): m is { f: protobuf.Field; v: fc.Arbitrary<unknown> } => m.v !== undefined)
      .map(({ f, v }) => v.map((x): [string, unknown] => [f.name, x]));
    if (members.length > 0) parts.push(fc.option(fc.oneof(...members), { freq: 8, nil: undefined }));
  }
  const arb = fc.tuple(...parts).map((kvs) => Object.fromEntries(kvs.filter((kv) => kv !== undefined)));
  cache.set(id, arb);
  return arb;
}

/** An unknown field: a field number the schema does not use, with any wire type. */
const unknownField: fc.Arbitrary<Uint8Array> = fc
  .tuple(fc.integer({ min: 1000, max: 536870911 }), fc.constantFrom(0, 1, 2, 5), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.uint8Array({ maxLength: 20 }))
  .map(([no, wt, n, bytes]) => {
    const w = protobuf.Writer.create().uint32((no << 3) | wt);
    if (wt === 0) w.uint64(n.toString());
    else if (wt === 1) w.fixed64(n.toString());
    else if (wt === 2) w.bytes(bytes);
    else w.fixed32(Number(n & 0xffffffffn));
    return w.finish();
  });

/** The encoding of a valid message of `type`, sometimes followed by unknown fields. */
export function encodingOf(type: protobuf.Type): fc.Arbitrary<Uint8Array> {
  return fc.tuple(objectOf(type), fc.array(unknownField, { maxLength: 2 })).map(([obj, unknown]) => {
    const known = type.encode(type.fromObject(obj)).finish();
    const out = new Uint8Array(known.length + unknown.reduce((n, u) => n + u.length, 0));
    out.set(known, 0);
    let o = known.length;
    for (const u of unknown) {
      out.set(u, o);
      o += u.length;
    }
    return out;
  });
}
