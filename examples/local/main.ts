// `npm start`: the local stack of the example deployment (see ./command.ts).
import { runAsProcess, runCommand } from "../../src/cli/framework.js";
import { startCommand } from "./command.js";

runAsProcess("npm start", (io) =>
  runCommand("npm start", startCommand, process.argv.slice(2), io),
).catch((error: unknown) => {
  process.stderr.write(`npm start: ${String(error)}\n`);
  process.exit(1);
});
