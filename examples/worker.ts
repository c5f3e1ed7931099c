import { createWorker } from "../src/platforms/cloudflare.js";
import { exampleJobs } from "./jobs.js";

/** The example deployment on Cloudflare Workers: wrangler.toml's `main`. */
export default createWorker(exampleJobs());
