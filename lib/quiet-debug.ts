/**
 * aedes' MQTT parser and serializer (mqtt-packet) call the `debug` package a dozen times for
 * every packet. With DEBUG unset those calls print nothing, but each still builds an arguments
 * array: ~3 % of the CPU and ~12 % of the allocations of a QoS 1 reading (profile of the
 * ingest-qos1 benchmark). Unless DEBUG is set, this module puts a disabled `debug` in the
 * CommonJS module cache before those packages load, so their calls cost one empty function call.
 * With DEBUG set, the real package loads and prints as usual.
 *
 * Import it before anything that loads aedes or mqtt (the composition root's first import).
 */
import { createRequire, Module } from 'node:module';

type Noop = ((...args: unknown[]) => void) & { enabled: boolean; namespace: string; extend: (suffix: string) => Noop; log: () => void; destroy: () => boolean };

function disabled(namespace: string): Noop {
  const fn = (() => {}) as Noop;
  fn.enabled = false;
  fn.namespace = namespace;
  fn.extend = (suffix: string) => disabled(`${namespace}:${suffix}`);
  fn.log = () => {};
  fn.destroy = () => false;
  return fn;
}

/** The `debug` factory, disabled: same call shape, no output. */
function quietFactory(): unknown {
  const factory = (namespace: string) => disabled(namespace);
  return Object.assign(factory, {
    default: factory,
    enable: () => {},
    disable: () => '',
    enabled: () => false,
    names: [],
    skips: [],
    formatters: {},
    coerce: (value: unknown) => value,
  });
}

/** Installs the disabled `debug` unless DEBUG is set; returns whether it did. */
export function quietDebug(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.DEBUG) return false;
  const require = createRequire(import.meta.url);
  let path: string;
  try {
    path = require.resolve('debug');
  } catch {
    return false; // not installed: nothing to quiet
  }
  if (require.cache[path]) return false; // already loaded: too late to replace
  const mod = new Module(path);
  mod.filename = path;
  mod.loaded = true;
  mod.exports = quietFactory();
  require.cache[path] = mod;
  return true;
}

quietDebug();
