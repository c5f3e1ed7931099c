/**
 * Signed alerts: the header the sender makes, checked by the exported verifier and by an
 * independent node:crypto HMAC (the recipe a receiver in another language follows).
 */
import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../../src/core/errors.js";
import {
  ALERT_SIGNATURE_HEADER,
  DEFAULT_SIGNATURE_TOLERANCE_MS,
  verifyAlertSignature,
} from "../../../src/core/monitoring/index.js";
import { createAlertSigner } from "../../../src/core/monitoring/signature.js";

const SECRET = "whsec-test-0123456789";
const NOW_MS = Date.UTC(2026, 10, 25, 12, 0, 30, 250);
const T = Math.floor(NOW_MS / 1_000);
const BODY = JSON.stringify({ kind: "failed", job: "boom", text: "cron-guard: job boom failed ✓" });

/** What any receiver computes: hex HMAC-SHA256 of "<t>.<raw body>". */
const hmacHex = (secret: string, t: number, body: string | Buffer) =>
  createHmac("sha256", secret)
    .update(Buffer.concat([Buffer.from(`${t}.`), Buffer.from(body)]))
    .digest("hex");

const verify = (
  header: string | null | undefined,
  overrides: Partial<Parameters<typeof verifyAlertSignature>[0]> = {},
) => verifyAlertSignature({ secret: SECRET, header, body: BODY, nowMs: NOW_MS, ...overrides });

describe("alert signatures", () => {
  it("the signer's header is t=<unix s>,v1=<hex HMAC-SHA256 of '<t>.<body>'> and verifies", async () => {
    const header = await createAlertSigner(SECRET)(BODY, NOW_MS);
    expect(ALERT_SIGNATURE_HEADER).toBe("cron-guard-signature");
    expect(header).toBe(`t=${T},v1=${hmacHex(SECRET, T, BODY)}`);
    expect(await verify(header)).toBe(true);
    // a header made without cron-guard's code (another language's receiver test) verifies too
    expect(await verify(`t=${T},v1=${hmacHex(SECRET, T, BODY)}`)).toBe(true);
    // the raw bytes of the body work as well as its text
    expect(await verify(header, { body: new TextEncoder().encode(BODY) })).toBe(true);
  });

  it("refuses a different secret and a changed body", async () => {
    const header = await createAlertSigner(SECRET)(BODY, NOW_MS);
    expect(await verify(header, { secret: `${SECRET}x` })).toBe(false);
    expect(await verify(header, { body: BODY.replace("boom", "bonk") })).toBe(false);
    expect(await verify(header, { body: `${BODY} ` })).toBe(false);
    // a re-serialized body is not the raw body
    expect(await verify(header, { body: JSON.stringify(JSON.parse(BODY), null, 1) })).toBe(false);
    // changing the timestamp breaks the digest: t is signed with the body
    expect(await verify(header.replace(`t=${T}`, `t=${T + 1}`))).toBe(false);
  });

  it("refuses a timestamp outside the tolerance, either way (default five minutes)", async () => {
    expect(DEFAULT_SIGNATURE_TOLERANCE_MS).toBe(300_000);
    const signAt = (ms: number) => createAlertSigner(SECRET)(BODY, ms);
    const tMs = T * 1_000;
    expect(await verify(await signAt(tMs), { nowMs: tMs + 300_000 })).toBe(true);
    expect(await verify(await signAt(tMs), { nowMs: tMs + 300_001 })).toBe(false);
    expect(await verify(await signAt(tMs), { nowMs: tMs - 300_001 })).toBe(false);
    expect(await verify(await signAt(NOW_MS - 3_600_000))).toBe(false);
    expect(await verify(await signAt(NOW_MS - 3_600_000), { toleranceMs: 3_601_000 })).toBe(true);
    expect(await verify(await signAt(tMs), { nowMs: tMs + 1_000, toleranceMs: 0 })).toBe(false);
    // without nowMs the receiver's own clock is used: a signature made now verifies
    const fresh = await createAlertSigner(SECRET)(BODY, Date.now());
    expect(await verifyAlertSignature({ secret: SECRET, header: fresh, body: BODY })).toBe(true);
  });

  it("refuses missing and malformed headers", async () => {
    const digest = hmacHex(SECRET, T, BODY);
    const malformed = [
      null,
      undefined,
      "",
      "garbage",
      digest,
      `v1=${digest}`,
      `t=${T}`,
      `t=${T},v1=`,
      `t=abc,v1=${digest}`,
      `t=-${T},v1=${digest}`,
      `t=${T}.5,v1=${digest}`,
      `t=${T},t=${T},v1=${digest}`,
      `t=${T},v1=${digest.slice(1)}`,
      `t=${T},v1=${digest}0`,
      `t=${T},v1=${digest.slice(0, -1)}g`,
      `t=${T};v1=${digest}`,
      `t=${T},v1=${digest},${"x".repeat(1_100)}=1`,
    ];
    for (const header of malformed) expect(await verify(header), String(header)).toBe(false);
    // tolerated: spaces after commas, upper-case hex, unknown schemes beside v1
    expect(await verify(`t=${T}, v1=${digest.toUpperCase()}, v0=whatever`)).toBe(true);
  });

  it("accepts the header when any of several v1 digests matches (rotation), and trims secrets", async () => {
    const digest = hmacHex(SECRET, T, BODY);
    const other = hmacHex("old-secret", T, BODY);
    expect(await verify(`t=${T},v1=${other},v1=${digest}`)).toBe(true);
    expect(await verify(`t=${T},v1=${other}`)).toBe(false);
    // surrounding whitespace (a newline from `echo secret | wrangler secret put`) is ignored on both sides
    const header = await createAlertSigner(`  ${SECRET}\n`)(BODY, NOW_MS);
    expect(header).toBe(`t=${T},v1=${digest}`);
    expect(await verify(header, { secret: `${SECRET}\n` })).toBe(true);
  });

  it("a blank secret or a bad tolerance is the receiver's mistake: ConfigError", async () => {
    await expect(verify(`t=${T},v1=${hmacHex("", T, BODY)}`, { secret: " " })).rejects.toThrow(
      ConfigError,
    );
    await expect(verify("", { secret: "" })).rejects.toThrow(ConfigError);
    await expect(verify("", { toleranceMs: -1 })).rejects.toThrow(ConfigError);
    await expect(verify("", { toleranceMs: Number.NaN })).rejects.toThrow(ConfigError);
    expect(() => createAlertSigner(" \n")).toThrow(ConfigError);
  });
});
