/**
 * `cron-guard/bridge` (Node): the Upstash-REST-compatible bridge in front of a real redis-server,
 * as the README documents it. Everything else in this folder is internal; tests import it from its
 * own module.
 */
export type { LeastPrivilege } from "./acl-rules.js";
export { BridgeOptionsError, type StartBridgeOptions } from "./options.js";
export type { BridgeRequestInfo, BridgeRoute } from "./routes.js";
export { type RunningBridge, startBridge } from "./start.js";
