const encoder = new TextEncoder();

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

/**
 * Compares two secrets in constant time: both are hashed first, so neither the length nor the
 * position of the first difference shows in the timing.
 */
export async function secretsEqual(given: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([sha256(given), sha256(expected)]);
  let difference = 0;
  for (let i = 0; i < a.length; i += 1) {
    difference |= (a[i] as number) ^ (b[i] as number);
  }
  return difference === 0;
}

/**
 * The token of an `Authorization: Bearer <token>` header, or undefined. Everything after the
 * scheme counts, surrounding whitespace aside, so a `CRON_SECRET` with spaces inside still matches
 * the `Bearer ${CRON_SECRET}` that Vercel sends, and one with spaces or tabs around it matches the
 * trimmed secret the app compares with.
 */
export function bearerToken(header: string | undefined | null): string | undefined {
  const match = /^Bearer[ \t]+(\S(?:.*\S)?)\s*$/i.exec(header ?? "");
  return match?.[1];
}
