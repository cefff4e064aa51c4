/**
 * Tape autograd. Each op records a node (inputs, and a backward that maps the output's gradient to its
 * inputs' gradients by dispatching kernels). backward(loss) walks the nodes reachable from the loss in
 * reverse creation order (a topological order, since a node is created after its inputs) once, and
 * accumulates gradients on the GPU. Backward functions only dispatch kernels over tensors, never touch
 * host arrays, so a whole training step can be captured once and replayed (capture.ts).
 */
import type { Device } from './device.js';
import type { Tensor } from './tensor.js';
import { accumulate, fill } from '../kernels/elementwise.js';

let nextNode = 0;

export interface TapeNode {
  readonly id: number;
  readonly op: string;
  readonly inputs: readonly Tensor[];
  /**
   * Gradients w.r.t. each input (null where an input needs none). `into[k]`, where defined, is input k's
   * gradient so far: a backward may add its gradient for input k into it in place and return it (saving a
   * separate accumulate pass; weights shared across time steps get one contribution per step).
   */
  readonly backward: (gy: Tensor, into: readonly (Tensor | undefined)[]) => (Tensor | null)[];
}

/** Records `out = op(inputs)` if gradients are on and any input needs one. Returns `out`. */
export function record(op: string, inputs: readonly Tensor[], out: Tensor, backward: TapeNode['backward']): Tensor {
  if (out.device.gradEnabled && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.node = { id: nextNode++, op, inputs, backward };
  }
  return out;
}

/** Backpropagates from `loss` (scalar unless `seed` is given). Leaves that require grad get `.grad` (accumulated). */
export function backward(loss: Tensor, seed?: Tensor): void {
  const device = loss.device;
  if (!loss.requiresGrad || !loss.node) throw new Error(`backward: ${loss.describe()} does not depend on any tensor that requires grad`);
  if (!seed && loss.size !== 1) throw new Error(`backward: ${loss.describe()} is not a scalar; pass a seed gradient`);
  // Collect reachable nodes.
  const nodes = new Map<number, Tensor>();
  const stack = [loss];
  while (stack.length) {
    const t = stack.pop()!;
    if (!t.node || nodes.has(t.node.id)) continue;
    nodes.set(t.node.id, t);
    for (const i of t.node.inputs) if (i.requiresGrad) stack.push(i);
  }
  const order = [...nodes.keys()].sort((a, b) => b - a);
  const grads = new Map<Tensor, Tensor>();
  const owned = new Set<Tensor>();
  const prev = device.gradEnabled;
  device.gradEnabled = false;
  try {
    grads.set(loss, seed ?? fill(device, loss.shape, 1));
    if (!seed) owned.add(grads.get(loss)!);
    for (const id of order) {
      const out = nodes.get(id)!;
      const gy = grads.get(out);
      if (!gy) continue;
      const inputs = out.node!.inputs;
      // The gradient so far of each input that needs one: where the op adds into it, no accumulate pass follows.
      const into = inputs.map((x) => (x.requiresGrad ? (x.node ? grads.get(x) : x.grad) ?? undefined : undefined));
      const gxs = out.node!.backward(gy, into);
      if (owned.has(gy)) {
        gy.dispose();
        owned.delete(gy);
      }
      grads.delete(out);
      inputs.forEach((x, k) => {
        const gx = gxs[k];
        if (!gx || !x.requiresGrad) {
          if (gx && !x.requiresGrad) gx.dispose();
          return;
        }
        if (gx === into[k]) return; // added in place
        if (gx.size !== x.size) throw new Error(`backward of ${out.node!.op}: gradient [${gx.shape}] for input [${x.shape}]`);
        const target = x.node ? grads.get(x) : x.grad;
        if (target) {
          accumulate(target, gx);
          gx.dispose();
        } else if (x.node) {
          grads.set(x, gx);
          owned.add(gx);
        } else {
          x.grad = gx;
          device.scopes[device.scopes.length - 1]?.delete(gx);
        }
      });
    }
  } finally {
    device.gradEnabled = prev;
    for (const g of owned) g.dispose();
  }
}

export function noGrad<T>(device: Device, fn: () => T): T {
  const prev = device.gradEnabled;
  device.gradEnabled = false;
  try {
    return fn();
  } finally {
    device.gradEnabled = prev;
  }
}

function collect(x: unknown, into: Set<unknown>): void {
  if (x && typeof x === 'object') {
    if ('gpuBuffer' in x) into.add(x);
    else if (Array.isArray(x)) x.forEach((v) => collect(v, into));
    else if (x.constructor === Object) Object.values(x).forEach((v) => collect(v, into));
  }
}

/**
 * Disposes every tensor created inside `fn` except those it returns (like tf.tidy). Leaves' `.grad`
 * set by backward() inside the scope are not tracked: optimisers consume and dispose them.
 */
export function tidy<T>(device: Device, fn: () => T): T {
  const scope = new Set<{ dispose(): void; readonly disposed: boolean }>();
  device.scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    device.scopes.pop();
  }
  const keep = new Set<unknown>();
  collect(result, keep);
  const outer = device.scopes[device.scopes.length - 1];
  for (const t of scope) {
    if (keep.has(t)) outer?.add(t);
    else t.dispose();
  }
  return result;
}

/** Removes a tensor from the open scopes so tidy() leaves it alive. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of t.device.scopes) s.delete(t);
  return t;
}
