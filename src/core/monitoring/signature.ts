/*
 * Signed alerts (the Stripe scheme): `cron-guard-signature: t=<unix seconds>,v1=<hex>` where the
 * hex is HMAC-SHA256(secret, "<t>.<raw body>"). The timestamp is signed with the body, so a
 * receiver can refuse a replayed alert by its age; one header carries both. Web Crypto only.
 */
import { ConfigError } from "../errors.js";
import { constantTimeEquals } from "../secrets.js";

/** The header every signed alert POST carries. */
export const ALERT_SIGNATURE_HEADER = "cron-guard-signature";

/** How far `t` may be from the receiver's clock, either way, by default: five minutes. */
export const DEFAULT_SIGNATURE_TOLERANCE_MS = 300_000;

/** Longer headers are refused unread: ours is about 80 characters. */
const MAX_HEADER_LENGTH = 1_024;
const TIMESTAMP = /^\d{1,12}$/;
const DIGEST = /^[0-9a-f]{64}$/;

const encoder = new TextEncoder();

/** Web Crypto's key type, named without the DOM lib (the same global on Node and workerd). */
type HmacKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;

/** The secret as it is used: without surrounding whitespace. A blank secret is no secret. */
export function normalizeAlertSecret(secret: unknown): string | undefined {
  if (typeof secret !== "string") return undefined;
  const trimmed = secret.trim();
  return trimmed === "" ? undefined : trimmed;
}

function hmacKey(secret: string): Promise<HmacKey> {
  return crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
}

function signedBytes(timestampS: number, body: string | Uint8Array): Uint8Array {
  const head = encoder.encode(`${timestampS}.`);
  const tail = typeof body === "string" ? encoder.encode(body) : body;
  const bytes = new Uint8Array(head.length + tail.length);
  bytes.set(head, 0);
  bytes.set(tail, head.length);
  return bytes;
}

async function digestHex(
  key: HmacKey,
  timestampS: number,
  body: string | Uint8Array,
): Promise<string> {
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, signedBytes(timestampS, body)));
  return Array.from(mac, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Signs bodies with one secret (its key imported once): resolves to the header's value. */
export type AlertSigner = (body: string, nowMs: number) => Promise<string>;

/** A signer for `secret` (trimmed; blank throws ConfigError: a caller without one sends unsigned). */
export function createAlertSigner(secret: string): AlertSigner {
  const usable = normalizeAlertSecret(secret);
  if (usable === undefined) throw new ConfigError("secret", "must not be blank");
  let key: Promise<HmacKey> | undefined;
  return async (body, nowMs) => {
    key ??= hmacKey(usable);
    const timestampS = Math.floor(nowMs / 1_000);
    return `t=${timestampS},v1=${await digestHex(await key, timestampS, body)}`;
  };
}

export interface VerifyAlertSignatureOptions {
  /** The alert secret the sender uses (surrounding whitespace is ignored, as by the sender). */
  secret: string;
  /** The `cron-guard-signature` header as received (`request.headers.get(...)`); null or absent: refused. */
  header: string | null | undefined;
  /**
   * The raw request body, exactly as received (`await request.text()`), before any JSON parsing:
   * a re-serialized object does not match.
   */
  body: string | Uint8Array;
  /**
   * How far the signed timestamp may be from `nowMs`, either way, in ms. Default 300 000 (five
   * minutes, as Stripe): bounds how long a captured alert can be replayed.
   */
  toleranceMs?: number;
  /** The receiver's clock, in ms since the epoch. Default `Date.now()`. */
  nowMs?: number;
}

/**
 * Whether an alert POST was signed by cron-guard with `secret` within the tolerance. False for a
 * missing or malformed header, a timestamp out of tolerance, a different secret or a changed body;
 * the digests are compared in constant time. Throws ConfigError only for a blank secret or a
 * negative or non-numeric tolerance (the receiver's mistake, not the request's).
 */
export async function verifyAlertSignature(options: VerifyAlertSignatureOptions): Promise<boolean> {
  const secret = normalizeAlertSecret(options.secret);
  if (secret === undefined) throw new ConfigError("secret", "must be a non-blank string");
  const toleranceMs = options.toleranceMs ?? DEFAULT_SIGNATURE_TOLERANCE_MS;
  if (typeof toleranceMs !== "number" || Number.isNaN(toleranceMs) || toleranceMs < 0) {
    throw new ConfigError("toleranceMs", "must be a number of at least 0 ms");
  }
  const parsed = parseSignatureHeader(options.header);
  if (!parsed) return false;
  const nowMs = options.nowMs ?? Date.now();
  if (!(Math.abs(nowMs - parsed.timestampS * 1_000) <= toleranceMs)) return false;
  if (typeof options.body !== "string" && !(options.body instanceof Uint8Array)) return false;
  const expected = await digestHex(await hmacKey(secret), parsed.timestampS, options.body);
  let matched = false;
  // Every v1 is compared (no early exit), each in time that depends only on the digest's length.
  for (const presented of parsed.digests) {
    matched = constantTimeEquals(presented, expected) || matched;
  }
  return matched;
}

/** `t=<digits>` exactly once and at least one `v1=<64 hex>`; other `k=v` parts are ignored. */
function parseSignatureHeader(
  header: string | null | undefined,
): { timestampS: number; digests: string[] } | undefined {
  if (typeof header !== "string" || header.length > MAX_HEADER_LENGTH) return undefined;
  let timestamp: string | undefined;
  const digests: string[] = [];
  for (const part of header.split(",")) {
    const equals = part.indexOf("=");
    if (equals < 0) return undefined;
    const name = part.slice(0, equals).trim();
    const value = part.slice(equals + 1).trim();
    if (name === "t") {
      if (timestamp !== undefined || !TIMESTAMP.test(value)) return undefined;
      timestamp = value;
    } else if (name === "v1") {
      const digest = value.toLowerCase();
      if (!DIGEST.test(digest)) return undefined;
      digests.push(digest);
    }
  }
  if (timestamp === undefined || digests.length === 0) return undefined;
  return { timestampS: Number(timestamp), digests };
}
