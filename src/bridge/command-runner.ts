import type { CommandTable } from "./command-table.js";
import type { Command } from "./protocol.js";

/**
 * The contract between the HTTP side and the Redis side: the routes run commands through a
 * CommandRunner; `RedisConnections` (shared-connection.ts) and `ClusterConnections` (cluster.ts)
 * implement it.
 */

/** Result of one command inside a pipeline or transaction. */
export type Outcome = { ok: true; reply: unknown } | { ok: false; error: string };

/** What the HTTP app needs from Redis. */
export interface CommandRunner {
  /** One command; rejects with RedisCommandError or RedisUnavailableError. */
  run(command: Command): Promise<unknown>;
  /** Commands in order, not atomic; per-command errors are outcomes, rejects only when unavailable. */
  pipeline(commands: Command[]): Promise<Outcome[]>;
  /** MULTI/commands/EXEC on a dedicated connection; rejects with RedisCommandError on EXECABORT. */
  transaction(commands: Command[]): Promise<Outcome[]>;
  /** The server's command table (`COMMAND`), read once and kept. */
  commandTable?(): Promise<CommandTable>;
}
