// `npm start`: the local stack of the example deployment (see ./command.ts).
import { runAsProcess } from "../../src/cli/framework.js";
import { startCommand } from "./command.js";

runAsProcess("npm start --", { start: startCommand }, ["start", ...process.argv.slice(2)]).catch(
  (error: unknown) => {
    process.stderr.write(`npm start: ${String(error)}\n`);
    process.exit(1);
  },
);
