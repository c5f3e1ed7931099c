/** An option given to cron-guard is invalid. Thrown once, when the options are validated. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  /** The name of the offending option, e.g. `leaseMs`. */
  readonly option: string;

  constructor(option: string, message: string, options?: { cause?: unknown }) {
    super(`${option}: ${message}`, options);
    this.option = option;
  }
}

/** The store (Redis over HTTP) could not be reached or answered with an error. */
export class StoreUnavailableError extends Error {
  override readonly name = "StoreUnavailableError";

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * The run's lease was lost while the job ran: the slot key expired or another owner holds it.
 * The job's `AbortSignal` is aborted with this error as its reason.
 */
export class LockLostError extends Error {
  override readonly name = "LockLostError";
  readonly key: string;

  constructor(key: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.key = key;
  }
}
