/**
 * Texture staging: copies tensors into rgba32float textures so that a kernel can read them with textureLoad.
 * Why: on a CPU adapter (llvmpipe) a storage-buffer read whose address differs between invocations is emulated
 * invocation by invocation (an exec-mask test, a bounds check, a branch and a scalar load each; a vec4 read is
 * 4 of each), while a texture fetch for all invocations of a SIMD vector is one vectorised gather. The conv
 * forward kernel (also the stride-1 input gradient) reads its input and weight this way where the tile table
 * asks for it (ConvTiles.forward.textures).
 *
 * Layout: texel t holds elements 4t .. 4t + 4 of the tensor and sits at (t mod width, t / width), width a
 * power of two (shaders compute the position with a mask and a shift). A tensor is staged by a copy in the
 * command stream (Device.copyToTexture; on a CPU adapter a memcpy, ~0.05 ms per MiB). A staging texture is kept
 * per device for the device's life, one per (slot, height): captured commands stay valid on replay, and since
 * commands run in order, the next copy into a slot comes after the last read of the previous one.
 */
import type { Device } from '../engine/device.js';
import type { Tensor } from '../engine/tensor.js';

/** A tensor to stage into `slot`. */
export interface StageSource {
  slot: number;
  t: Tensor;
}

export interface TextureLayout {
  /** log2 of the texture width in texels. */
  shift: number;
  /** The most texels a staged tensor may have on this device. */
  maxTexels: number;
}

export function textureLayout(device: Device): TextureLayout {
  const dim = device.limits.maxTextureDimension2D;
  const shift = Math.floor(Math.log2(Math.min(dim, 8192)));
  return { shift, maxTexels: 2 ** shift * dim };
}

/** Whether a tensor of `elements` floats can be staged: whole texels, within the device's texture size. */
export function stageable(device: Device, elements: number): boolean {
  return elements % 4 === 0 && elements / 4 <= textureLayout(device).maxTexels;
}

interface Staging {
  texture: GPUTexture;
  view: GPUTextureView;
}

const textures = new WeakMap<Device, Map<string, Staging>>();

function stagingTexture(device: Device, slot: number, height: number): Staging {
  let m = textures.get(device);
  if (!m) textures.set(device, (m = new Map()));
  const key = `${slot}:${height}`;
  let t = m.get(key);
  if (!t) {
    const texture = device.device.createTexture({
      label: `stage ${key}`,
      size: [2 ** textureLayout(device).shift, height],
      format: 'rgba32float',
      usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST,
    });
    t = { texture, view: texture.createView() };
    m.set(key, t);
  }
  return t;
}

/** Stages each source into its slot's texture and returns the views to bind, by slot (as Device.run takes them). */
export function stageTextures(device: Device, sources: readonly StageSource[]): Map<number, { textureView: GPUTextureView }> {
  const { shift } = textureLayout(device);
  const out = new Map<number, { textureView: GPUTextureView }>();
  for (const s of sources) {
    if (!stageable(device, s.t.size)) throw new Error(`stageTextures: ${s.t.describe()} does not fit a staging texture`);
    const texels = s.t.size / 4;
    const { texture, view } = stagingTexture(device, s.slot, Math.ceil(texels / 2 ** shift));
    device.copyToTexture(s.t.gpuBuffer(), texture, texels, shift);
    out.set(s.slot, { textureView: view });
  }
  return out;
}
