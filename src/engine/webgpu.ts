/**
 * Loads Dawn's Node binding: installs its WebGPU globals (GPUBufferUsage, GPUMapMode, ...) before any engine
 * module uses them, and paces how it waits for the GPU.
 *
 * Dawn's binding waits for a promise (onSubmittedWorkDone, mapAsync, requestDevice) by calling
 * wgpuInstanceProcessEvents from a callback that re-queues itself through the global `setImmediate` for as
 * long as anything is pending: a busy loop that holds one CPU core for the whole wait. On a software adapter
 * the GPU *is* the CPU cores, so that loop competes with the shaders it waits for (on 2 cores a conv loop ran
 * at 9.0 ms per call busy-waiting and 4.5 ms paced). With pacing on, Dawn's polls (anonymous native
 * functions, unlike anything JavaScript code schedules) sleep briefly first, so the waiting thread leaves the
 * cores to the shaders; every other setImmediate call is untouched. Device.create turns
 * pacing on for software adapters, for the whole process: in the bench unroll's device opens first, so the
 * tfjs and gpu.js peers on the same adapter wait the same way.
 */
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);

export { create };

// Sleep before each poll of one wait: none before the first, then from MIN_SLEEP_MS growing by half to
// MAX_SLEEP_MS, so short waits keep their latency and long ones cost about two polls per millisecond.
const MIN_SLEEP_MS = 0.02;
const MAX_SLEEP_MS = 0.5;

let pacing = false;
let sleepMs = 0;
/** True while one of Dawn's polls runs: a poll it schedules then continues the same wait. */
let inPoll = false;
/** Dawn polls seen while pacing (tests check that pacing still sees them). */
export const pacingStats = { polls: 0 };
const immediate = globalThis.setImmediate;
const nativeSource = Function.prototype.toString;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

function isDawnPoll(fn: unknown): boolean {
  return typeof fn === 'function' && fn.name === '' && nativeSource.call(fn).includes('[native code]');
}

const paced = ((fn: (...args: unknown[]) => void, ...args: unknown[]) => {
  if (!pacing || !isDawnPoll(fn)) return immediate(fn, ...args);
  // Dawn re-queues its poll from inside the previous one; scheduled from anywhere else, a new wait began.
  if (!inPoll) sleepMs = 0;
  if (sleepMs > 0) {
    // The thread blocks here (nothing else of this process runs meanwhile: it is waiting for the GPU anyway).
    Atomics.wait(sleeper, 0, 0, sleepMs);
  }
  pacingStats.polls++;
  sleepMs = Math.min(MAX_SLEEP_MS, Math.max(MIN_SLEEP_MS, sleepMs * 1.5));
  return immediate(() => {
    inPoll = true;
    try {
      fn(...args);
    } finally {
      inPoll = false;
    }
  });
}) as typeof setImmediate;
Object.assign(paced, immediate);
globalThis.setImmediate = paced;

/** Sleep between Dawn's polls instead of spinning (see above); returns the previous setting. */
export function paceDawnEvents(on: boolean): boolean {
  const was = pacing;
  pacing = on;
  return was;
}
