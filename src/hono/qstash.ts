/*
 * Upstash QStash as a clock: a QStash schedule calls `/cron/<job>` (or `/dispatch`) with an
 * `Upstash-Signature` header instead of the bearer. The signature is what `@upstash/qstash`'s
 * `Receiver.verify` checks, done here with Web Crypto in a few lines so that no deployment
 * bundles the SDK (and its jose and crypto-js) for it: a JWT signed HS256 with the signing key's
 * own bytes, `iss` "Upstash", `nbf`/`exp` around now, `sub` the URL QStash called and `body` the
 * base64url SHA-256 of the request body (padding ignored). The current key is tried, then the
 * next one (QStash signs with the next key during a rotation).
 *
 * The URL: only its path and query must equal the request's, because the host a platform reports
 * behind its proxy (or a custom domain) need not be the one QStash called; a signature for
 * another route of the deployment is still refused. A replayed request (same signature within
 * its `exp`) runs nothing new: the slot it names is claimed once.
 */
import { processEnv } from "../core/env.js";
import { constantTimeEquals } from "../core/secrets.js";
import type { Bindings } from "./types.js";

export interface QStashSigningKeys {
  /** `QSTASH_CURRENT_SIGNING_KEY` (console.upstash.com/qstash, "Signing keys"). */
  currentSigningKey: string;
  /** `QSTASH_NEXT_SIGNING_KEY`: tried when the current key does not verify. */
  nextSigningKey?: string;
}

/** Clock difference tolerated on `nbf` and `exp`, in seconds. */
const CLOCK_TOLERANCE_S = 5;

/**
 * The signing keys from the bindings (Cloudflare) or `process.env` (Node, Vercel), or undefined
 * when `QSTASH_CURRENT_SIGNING_KEY` is not set: then a QStash request needs the bearer like any other.
 */
export function qstashKeysOf(env: Bindings | undefined): QStashSigningKeys | undefined {
  const read = (name: string): string | undefined => {
    const value = env?.[name] ?? processEnv()?.[name];
    return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined;
  };
  const currentSigningKey = read("QSTASH_CURRENT_SIGNING_KEY");
  if (currentSigningKey === undefined) return undefined;
  const nextSigningKey = read("QSTASH_NEXT_SIGNING_KEY");
  return nextSigningKey === undefined
    ? { currentSigningKey }
    : { currentSigningKey, nextSigningKey };
}

const textEncoder = new TextEncoder();

function base64UrlToBytes(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return undefined;
  const padded = text.replace(/-/g, "+").replace(/_/g, "/");
  try {
    return Uint8Array.from(atob(padded + "=".repeat((4 - (padded.length % 4)) % 4)), (char) =>
      char.charCodeAt(0),
    );
  } catch {
    return undefined;
  }
}

function bytesToBase64Url(bytes: ArrayBuffer): string {
  let binary = "";
  for (const byte of new Uint8Array(bytes)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function jsonOf(part: string): Record<string, unknown> | undefined {
  const bytes = base64UrlToBytes(part);
  if (!bytes) return undefined;
  try {
    const value: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return value !== null && typeof value === "object"
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

async function signedWith(key: string, signingInput: string, signature: Uint8Array) {
  const hmac = await crypto.subtle.importKey(
    "raw",
    textEncoder.encode(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["verify"],
  );
  // crypto.subtle.verify compares in constant time.
  return crypto.subtle.verify("HMAC", hmac, signature, textEncoder.encode(signingInput));
}

/**
 * Why `signature` does not prove that QStash sent `body` to `url` now, or undefined when it does.
 * Never throws; the reason names no key.
 */
export async function qstashSignatureProblem(
  keys: QStashSigningKeys,
  signature: string,
  body: string,
  url: string,
  nowMs: number = Date.now(),
): Promise<string | undefined> {
  const parts = signature.trim().split(".");
  if (parts.length !== 3) return "the signature is not a JWT";
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
  const header = jsonOf(headerPart);
  if (header?.alg !== "HS256") return "the signature is not an HS256 JWT";
  const mac = base64UrlToBytes(signaturePart);
  if (!mac) return "the signature is not base64url";
  const signingInput = `${headerPart}.${payloadPart}`;
  let verified = false;
  for (const key of [keys.currentSigningKey, keys.nextSigningKey]) {
    if (key !== undefined && (await signedWith(key, signingInput, mac))) {
      verified = true;
      break;
    }
  }
  if (!verified) return "the signature does not verify with the signing keys";
  const payload = jsonOf(payloadPart);
  if (!payload) return "the signature's payload is not JSON";
  if (payload.iss !== "Upstash") return "the signature was not issued by Upstash";
  const nowS = nowMs / 1000;
  if (typeof payload.exp !== "number" || payload.exp <= nowS - CLOCK_TOLERANCE_S) {
    return "the signature has expired";
  }
  if (typeof payload.nbf === "number" && payload.nbf > nowS + CLOCK_TOLERANCE_S) {
    return "the signature is not valid yet";
  }
  if (typeof payload.sub !== "string" || !samePathAndQuery(payload.sub, url)) {
    return "the signature was made for another URL";
  }
  const bodyHash = bytesToBase64Url(
    await crypto.subtle.digest("SHA-256", textEncoder.encode(body)),
  );
  if (
    typeof payload.body !== "string" ||
    !constantTimeEquals(payload.body.replace(/=+$/, ""), bodyHash)
  ) {
    return "the body does not match the signature";
  }
  return undefined;
}

function samePathAndQuery(signed: string, requested: string): boolean {
  try {
    const a = new URL(signed);
    const b = new URL(requested);
    return a.pathname === b.pathname && a.search === b.search;
  } catch {
    return false;
  }
}
