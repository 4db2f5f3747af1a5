// Bounded waiting for tests: every wait takes a limit and rejects with what it
// was waiting for. Pure timers; no state, any caller (one Node thread).
//
//   await sleep(200)
//   await withTimeout(promise, 5000, "the ack")     rejects "timed out after 5000 ms: the ack"
//   const v = await waitFor(() => s.frames[0], 2000, "a frame")   polls until truthy, returns it
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function withTimeout(p, ms, what) {
  let timer;
  return Promise.race([
    p,
    new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

// Poll fn() (may be async, may throw to give up early) every `step` ms until it
// returns a truthy value; returns that value.
export async function waitFor(fn, ms, what, step = 25) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    await sleep(step);
  }
}
