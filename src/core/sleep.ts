/** Resolves after `ms` milliseconds (a plain timer: platform-free, runs on workerd). */
export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));
