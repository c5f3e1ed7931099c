import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, beforeEach } from "vitest";
import type { AlertBody } from "../../src/core/monitoring/alerts.js";

/** One alert POST as it arrived. */
export interface AlertDelivery {
  /** The body as sent (what a signature covers). */
  raw: string;
  /** The `cron-guard-signature` header, undefined when the alert was unsigned. */
  signature: string | undefined;
  body: AlertBody;
}

/**
 * A local webhook for a test file's alerts (a real node:http server on 127.0.0.1): it answers every
 * POST 204 and keeps what arrived. Started before the file's tests, stopped after them; what
 * arrived is cleared before each test. `url` is known once the server listens (inside tests).
 */
export function useAlertReceiver() {
  let server: Server | undefined;
  let url = "";
  const received: AlertBody[] = [];
  const deliveries: AlertDelivery[] = [];
  beforeAll(async () => {
    const listening = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        const raw = Buffer.concat(chunks).toString("utf8");
        const signature = request.headers["cron-guard-signature"];
        const body = JSON.parse(raw) as AlertBody;
        deliveries.push({
          raw,
          signature: Array.isArray(signature) ? signature[0] : signature,
          body,
        });
        received.push(body);
        response.writeHead(204).end();
      });
    });
    server = listening;
    await new Promise<void>((resolve) => listening.listen(0, "127.0.0.1", resolve));
    const address = listening.address();
    url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}/hook`;
  });
  afterAll(
    () => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())),
  );
  beforeEach(() => {
    received.length = 0;
    deliveries.length = 0;
  });
  return {
    get url() {
      return url;
    },
    /** The parsed bodies, in arrival order. */
    received,
    /** Each POST with its raw body and signature. */
    deliveries,
  };
}
