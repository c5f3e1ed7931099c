import { UnkeyableArgumentError } from "./errors.js";
/**
 * A canonical text for a list of arguments: equal values give equal text, different values give
 * different text. Object keys are sorted, so `{a, b}` and `{b, a}` agree; every value carries its
 * type, so `1` and `"1"`, `null` and `NaN`, `-0` and `0`, `[]` and `{}` differ; `Map` and `Set` are
 * encoded by content in a canonical order; a `Date` by its time. Anything whose identity is not its
 * content (functions, symbols, class instances, cyclic structures) is refused with an
 * UnkeyableArgumentError rather than collapsed into a key it shares with other values.
 */
export function canonicalArguments(args: readonly unknown[]): string {
  return encode(args, new Set(), "arguments");
}

function encode(value: unknown, path: Set<object>, where: string): string {
  switch (typeof value) {
    case "undefined":
      return "u";
    case "boolean":
      return value ? "t" : "f";
    case "string":
      return `s${JSON.stringify(value)}`;
    case "bigint":
      return `b${value.toString()}`;
    case "number":
      if (Object.is(value, -0)) return "n-0";
      return `n${String(value)}`;
    case "object":
      if (value === null) return "z";
      return encodeObject(value, path, where);
    default:
      throw new UnkeyableArgumentError(
        `${where} is a ${typeof value}, which has no canonical key: pass key(...args) to guarded()`,
      );
  }
}

function encodeObject(value: object, path: Set<object>, where: string): string {
  if (path.has(value)) {
    throw new UnkeyableArgumentError(`${where} is cyclic: pass key(...args) to guarded()`);
  }
  path.add(value);
  try {
    if (Array.isArray(value)) {
      return `a[${value.map((item, i) => encode(item, path, `${where}[${i}]`)).join(",")}]`;
    }
    if (value instanceof Date) return `d${value.getTime()}`;
    if (value instanceof Map) {
      const entries = [...value].map(
        ([k, v]) => `${encode(k, path, `${where} key`)}=>${encode(v, path, `${where} value`)}`,
      );
      return `m{${entries.sort().join(",")}}`;
    }
    if (value instanceof Set) {
      const members = [...value].map((member) => encode(member, path, `${where} member`));
      return `S{${members.sort().join(",")}}`;
    }
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      const kind = (proto as { constructor?: { name?: string } }).constructor?.name ?? "object";
      throw new UnkeyableArgumentError(
        `${where} is a ${kind} instance, which has no canonical key: pass key(...args) to guarded()`,
      );
    }
    if (Object.getOwnPropertySymbols(value).length > 0) {
      throw new UnkeyableArgumentError(
        `${where} has symbol keys, which have no canonical key: pass key(...args) to guarded()`,
      );
    }
    const record = value as Record<string, unknown>;
    const fields = Object.keys(record)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${encode(record[key], path, `${where}.${key}`)}`);
    return `o{${fields.join(",")}}`;
  } finally {
    path.delete(value);
  }
}

/**
 * The first `bytes` bytes of the SHA-256 digest of `canonicalArguments(args)`, as hex: a short
 * name for the arguments that is the same wherever the same values are given.
 */
export async function canonicalDigest(args: readonly unknown[], bytes: number): Promise<string> {
  const text = canonicalArguments(args);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest).slice(0, bytes), (byte) =>
    byte.toString(16).padStart(2, "0"),
  ).join("");
}
