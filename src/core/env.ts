/**
 * `process.env` where there is one (Node, Vercel), read through globalThis so that the code still
 * loads on workerd, where there is none (bindings arrive with each request instead).
 */
export function processEnv(): Record<string, string | undefined> | undefined {
  return (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
}
