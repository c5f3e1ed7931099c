import { Agent, createServer, request, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { IdleConnections } from "../../src/bridge/idle-connections.js";

const IDLE_MS = 1_500;

interface Harness {
  url: string;
  server: Server;
  idle: IdleConnections;
}

let harness: Harness | undefined;

afterEach(async () => {
  if (!harness) return;
  harness.idle.close();
  harness.server.closeAllConnections();
  await new Promise((resolve) => harness?.server.close(resolve));
  harness = undefined;
});

/** A server like the bridge's: no node keep-alive timer, IdleConnections told about every answer. */
async function start(answerAfterMs = 0): Promise<Harness> {
  const server = createServer({ keepAliveTimeout: 0 });
  const idle = new IdleConnections(server, IDLE_MS);
  server.on("request", (req, res) => {
    idle.opened(req.socket);
    req.resume();
    req.on("end", () => {
      setTimeout(() => {
        res.end("ok");
        idle.answered(req.socket);
      }, answerAfterMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  harness = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, idle };
  return harness;
}

/** GET on one kept-alive socket; resolves with the socket once answered. */
function get(url: string, agent: Agent): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      res.resume();
      res.on("end", () => resolve(req.socket as Socket));
    });
    req.on("error", reject);
    req.end();
  });
}

function closedWithin(socket: Socket, ms: number): Promise<boolean> {
  if (socket.destroyed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

describe("IdleConnections", () => {
  it("closes a keep-alive connection that waits longer than its limit for a request", async () => {
    const { url } = await start();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const socket = await get(url, agent);
    expect(await closedWithin(socket, IDLE_MS - 500)).toBe(false);
    expect(await closedWithin(socket, 2_500)).toBe(true);
    agent.destroy();
  });

  it("keeps a connection that goes on sending requests", async () => {
    const { url } = await start();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const first = await get(url, agent);
    for (let i = 0; i < 8; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(await get(url, agent)).toBe(first);
    }
    expect(first.destroyed).toBe(false);
    agent.destroy();
  });

  it("never closes a connection whose request is still being answered", async () => {
    const { url } = await start(IDLE_MS + 1_500);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const answered = await get(url, agent);
    expect(answered.destroyed).toBe(false);
    agent.destroy();
  });
});
