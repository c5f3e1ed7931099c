import { connect as connectTcp, type Socket } from "node:net";
import { connect as connectTls } from "node:tls";
import { RedisUnavailableError } from "./errors.js";
import { parseRedisUrl } from "./redis-url.js";
import { encodeCommand, ProtocolError, type Reply, ReplyError, RespParser } from "./resp.js";

/** A command or a batch of commands sent together, waiting for its replies. */
interface Waiting {
  /** Replies this entry waits for: 1 for `send`, the batch's size for `sendBatch`. */
  expected: number;
  /** Whether it came from `sendBatch` or `streamBatch` (then it resolves once all replies came). */
  batch: boolean;
  /** `sendBatch`'s replies so far. */
  replies: Reply[] | undefined;
  /** `streamBatch`'s receiver, given each reply as it arrives instead of keeping it. */
  onReply: ((reply: Reply, index: number) => void) | undefined;
  /** Replies received so far. */
  received: number;
  /** `performance.now()` when it was sent. */
  sentAt: number;
  resolve(value: Reply | Reply[]): void;
  reject(error: Error): void;
}

/** Entries already answered kept at the front of the queue before it drops them. */
const COMPACT_AFTER = 1024;

/**
 * One TCP (or TLS) connection to a redis-server, speaking RESP2, that never reconnects by itself:
 * whoever holds it opens a new one when it closes. Commands sent in one turn of the event loop go
 * out in one write (what many concurrent HTTP requests need); a batch of commands waits behind one
 * promise. Redis answers in order, so the oldest entry still waiting tells whether the connection
 * makes progress ({@link RespConnection.oldestWaitingSince}).
 */
export class RespConnection {
  readonly #socket: Socket;
  readonly #parser: RespParser;
  /** Entries from `#head` on wait; answered ones before it are cleared (not kept alive). */
  #waiting: Array<Waiting | undefined> = [];
  #head = 0;
  #out = "";
  #flushScheduled = false;
  #failure: Error | undefined;
  readonly #closeListeners: Array<(error: Error) => void> = [];

  private constructor(socket: Socket) {
    this.#socket = socket;
    this.#parser = new RespParser((reply) => this.#answer(reply));
    socket.on("data", (chunk: Buffer) => {
      try {
        this.#parser.feed(chunk);
      } catch (error) {
        const reason = error instanceof ProtocolError ? error.message : String(error);
        this.destroy(new RedisUnavailableError(`Redis sent an unreadable reply: ${reason}`));
      }
    });
    socket.on("error", (error: Error) => {
      this.destroy(new RedisUnavailableError(`connection to Redis failed: ${error.message}`));
    });
    socket.on("close", () => {
      this.destroy(new RedisUnavailableError("Redis closed the connection"));
    });
  }

  /**
   * Connects to `redisUrl` (`redis://[[user]:password@]host[:port][/db]`, `rediss://` for TLS),
   * authenticates, selects the database and waits for a PING to come back, so that a connection
   * is only handed out once Redis answers on it (not to a server that only accepted the TCP
   * connection: a stopped redis-server, or something else on that port). Rejects with
   * RedisUnavailableError (or the ReplyError of a refused AUTH/SELECT) once `timeoutMs` have
   * passed without all of that. With `loginAs`, the connection then switches to that ACL user
   * (the selected database stays: a user that may not SELECT still gets the URL's database).
   */
  static open(
    redisUrl: string,
    timeoutMs: number,
    loginAs?: { username: string; password: string },
  ): Promise<RespConnection> {
    const target = parseRedisUrl(redisUrl);
    const socket = target.tls
      ? connectTls({ host: target.host, port: target.port, servername: target.host })
      : connectTcp({ host: target.host, port: target.port });
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    const connection = new RespConnection(socket);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        connection.destroy(
          new RedisUnavailableError(
            `connecting to Redis at ${target.host}:${target.port} timed out after ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      const failed = (error: Error) => {
        clearTimeout(timer);
        reject(error);
      };
      connection.onClose(failed);
      socket.once(target.tls ? "secureConnect" : "connect", () => {
        const login = loginAs ? [["AUTH", loginAs.username, loginAs.password]] : [];
        connection.sendBatch([...target.handshake, ...login, ["PING"]]).then((replies) => {
          const refused = replies.find((reply) => reply instanceof ReplyError);
          if (refused) {
            connection.destroy(refused);
            return;
          }
          clearTimeout(timer);
          connection.#closeListeners.splice(connection.#closeListeners.indexOf(failed), 1);
          resolve(connection);
        }, failed);
      });
    });
  }

  /** Sends one command; resolves with its reply, rejects with a ReplyError or the connection's failure. */
  send(command: readonly string[]): Promise<Reply> {
    return new Promise((resolve, reject) => this.sendWith(command, resolve, reject));
  }

  /**
   * {@link send} with callbacks instead of a promise, for callers that make their own: one
   * promise per command fewer (about 1% of the bridge's requests/s). The callbacks run inside
   * the socket's data handler and must not throw (an error there closes the connection).
   */
  sendWith(
    command: readonly string[],
    onReply: (reply: Reply) => void,
    onError: (error: Error) => void,
  ): void {
    this.#enqueue(
      encodeCommand(command),
      1,
      false,
      undefined,
      onReply as Waiting["resolve"],
      onError,
    );
  }

  /** Sends commands back to back; resolves with their replies in order (error replies as ReplyError elements). */
  sendBatch(commands: readonly (readonly string[])[]): Promise<Reply[]> {
    return new Promise((resolve, reject) => {
      if (commands.length === 0) resolve([]);
      else this.#enqueueBatch(commands, undefined, resolve as Waiting["resolve"], reject);
    });
  }

  /**
   * Sends commands back to back and hands each reply to `onReply` as it arrives, keeping none:
   * the caller can stop holding on to replies once they add up to too much (a pipeline of GETs
   * of one large value). Resolves once all replies came.
   */
  streamBatch(
    commands: readonly (readonly string[])[],
    onReply: (reply: Reply, index: number) => void,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      if (commands.length === 0) resolve();
      else this.#enqueueBatch(commands, onReply, () => resolve(), reject);
    });
  }

  #enqueueBatch(
    commands: readonly (readonly string[])[],
    onReply: Waiting["onReply"],
    resolve: Waiting["resolve"],
    reject: Waiting["reject"],
  ): void {
    let text = "";
    for (const command of commands) text += encodeCommand(command);
    this.#enqueue(text, commands.length, true, onReply, resolve, reject);
  }

  /** When the oldest command still waiting for its reply was sent (`performance.now()`), or undefined. */
  oldestWaitingSince(): number | undefined {
    return this.#waiting[this.#head]?.sentAt;
  }

  /** Commands and batches waiting for replies. */
  get waiting(): number {
    return this.#waiting.length - this.#head;
  }

  /** Whether the connection failed or was closed; it sends nothing more then. */
  get closed(): boolean {
    return this.#failure !== undefined;
  }

  /** Calls `listener` once with the reason when the connection fails or is closed. */
  onClose(listener: (error: Error) => void): void {
    if (this.#failure) listener(this.#failure);
    else this.#closeListeners.push(listener);
  }

  /** Closes the connection; everything still waiting fails with `error`. */
  destroy(error: Error): void {
    if (this.#failure) return;
    this.#failure = error;
    this.#socket.destroy();
    const waiting = this.#waiting.slice(this.#head) as Waiting[];
    this.#waiting = [];
    this.#head = 0;
    for (const entry of waiting) entry.reject(error);
    for (const listener of this.#closeListeners.splice(0)) listener(error);
  }

  #enqueue(
    text: string,
    expected: number,
    batch: boolean,
    onReply: Waiting["onReply"],
    resolve: Waiting["resolve"],
    reject: Waiting["reject"],
  ): void {
    if (this.#failure) {
      reject(this.#failure);
      return;
    }
    this.#waiting.push({
      expected,
      batch,
      replies: undefined,
      onReply,
      received: 0,
      sentAt: performance.now(),
      resolve,
      reject,
    });
    this.#out += text;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      // setImmediate runs after the poll phase: every request read in this turn of the event
      // loop goes out in one write.
      setImmediate(this.#flush);
    }
  }

  readonly #flush = (): void => {
    this.#flushScheduled = false;
    const text = this.#out;
    this.#out = "";
    if (!this.#failure && text.length > 0) this.#socket.write(text);
  };

  #answer(reply: Reply): void {
    const entry = this.#waiting[this.#head];
    if (entry === undefined) {
      throw new ProtocolError("a reply arrived that no command was waiting for");
    }
    if (entry.batch) {
      const index = entry.received;
      entry.received += 1;
      if (entry.onReply) {
        try {
          entry.onReply(reply, index);
        } catch (error) {
          // the receiver's failure is the batch's; the remaining replies are still read
          entry.onReply = undefined;
          entry.reject(error as Error);
        }
      } else {
        entry.replies ??= [];
        entry.replies.push(reply);
      }
      if (entry.received < entry.expected) return;
    }
    // let go of the entry (and the request state its callbacks hold) now, not at compaction
    this.#waiting[this.#head] = undefined;
    this.#head += 1;
    if (this.#head >= this.#waiting.length) {
      this.#waiting.length = 0;
      this.#head = 0;
    } else if (this.#head >= COMPACT_AFTER && this.#head * 2 >= this.#waiting.length) {
      this.#waiting = this.#waiting.slice(this.#head);
      this.#head = 0;
    }
    if (entry.batch) entry.resolve(entry.replies ?? []);
    else if (reply instanceof ReplyError) entry.reject(reply);
    else entry.resolve(reply);
  }
}
