import type { Server } from "node:http";
import type { Socket } from "node:net";

/** How often idle connections are looked for; an idle one is closed within this much of its limit. */
const SWEEP_MS = 1_000;

interface SocketState {
  /** Requests read on this connection and not answered yet. */
  open: number;
  /** The sweep count when the connection last answered (or opened). */
  lastSweep: number;
}

/** Where a socket keeps its state: a property, cheaper per request than a Map lookup. */
const STATE = Symbol("cron-guard idle state");
type TrackedSocket = Socket & { [STATE]?: SocketState };

/**
 * Closes keep-alive connections that wait longer than `idleMs` for their next request, with
 * one timer for all connections. node:http's own `keepAliveTimeout` clears a timer on the
 * socket when a request arrives and creates a new one when it is answered, on every request:
 * about 3% of the bridge's requests/s. Here a request costs two property updates.
 *
 * Create the server with `keepAliveTimeout: 0` (this replaces it), call `opened` when a request
 * arrives and `answered` once its answer is written; a connection that closes is forgotten.
 */
export class IdleConnections {
  readonly #sockets = new Set<TrackedSocket>();
  readonly #idleSweeps: number;
  readonly #timer: NodeJS.Timeout;
  #sweeps = 0;

  constructor(server: Server, idleMs: number) {
    this.#idleSweeps = Math.max(1, Math.ceil(idleMs / SWEEP_MS));
    server.on("connection", (socket: TrackedSocket) => {
      socket[STATE] = { open: 0, lastSweep: this.#sweeps };
      this.#sockets.add(socket);
      socket.once("close", () => this.#sockets.delete(socket));
    });
    this.#timer = setInterval(() => this.#sweep(), SWEEP_MS);
    this.#timer.unref();
  }

  opened(socket: TrackedSocket): void {
    const state = socket[STATE];
    if (state) state.open += 1;
  }

  answered(socket: TrackedSocket): void {
    const state = socket[STATE];
    if (state === undefined) return;
    state.open = Math.max(0, state.open - 1);
    state.lastSweep = this.#sweeps;
  }

  close(): void {
    clearInterval(this.#timer);
  }

  #sweep(): void {
    this.#sweeps += 1;
    for (const socket of this.#sockets) {
      const state = socket[STATE] as SocketState;
      if (state.open === 0 && this.#sweeps - state.lastSweep > this.#idleSweeps) {
        this.#sockets.delete(socket);
        socket.destroy();
      }
    }
  }
}
