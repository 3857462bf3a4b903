/**
 * Binds MQTT client ids to devices on the embedded broker. A client id belongs to the device
 * that holds it: while one of its connections uses it, or while it keeps a persistent session
 * (clean: false) under it, another device presenting that id is refused, so it can neither
 * disconnect the holder nor receive its queued messages. The holder itself may reconnect and
 * take its own session over, as MQTT intends. A clean connection of the holder ends the
 * binding with the connection; a persistent one lasts until the holder connects with
 * clean: true (which ends the session) or the broker stops.
 *
 * A device holds at most `maxPersistentPerDevice` persistent client ids at once, so the
 * registry (and the broker's sessions) stay bounded by the configured devices.
 */

/** A connection (aedes' Client): `closed` once it has ended. */
export interface Holder {
  readonly closed: boolean;
}

interface Binding {
  device: string;
  holder: Holder | undefined;
  persistent: boolean;
}

export type ClaimRefusal = 'held_by_other_device' | 'too_many_sessions';

export class ClientIdRegistry {
  private readonly bindings = new Map<string, Binding>();
  private readonly persistentPerDevice = new Map<string, number>();

  constructor(private readonly maxPersistentPerDevice: number) {}

  /**
   * Connection `holder` of `device` (after authentication) wants `clientId`: undefined when it
   * may have it (the binding then points at it), else why not.
   */
  claim(clientId: string, device: string, holder: Holder, persistent: boolean): ClaimRefusal | undefined {
    const current = this.bindings.get(clientId);
    if (current && current.device !== device && (current.persistent || (current.holder !== undefined && !current.holder.closed))) {
      return 'held_by_other_device';
    }
    const alreadyPersistent = current !== undefined && current.device === device && current.persistent;
    if (persistent && !alreadyPersistent && (this.persistentPerDevice.get(device) ?? 0) >= this.maxPersistentPerDevice) {
      return 'too_many_sessions';
    }
    if (current) this.unbind(clientId, current);
    this.bindings.set(clientId, { device, holder, persistent });
    if (persistent) this.persistentPerDevice.set(device, (this.persistentPerDevice.get(device) ?? 0) + 1);
    return undefined;
  }

  /** `holder`'s connection ended: a clean binding ends with it, a persistent one stays with its device. */
  release(clientId: string, holder: Holder): void {
    const current = this.bindings.get(clientId);
    if (!current || current.holder !== holder) return;
    if (current.persistent) current.holder = undefined;
    else this.unbind(clientId, current);
  }

  /** The device holding `clientId`, if any. */
  deviceOf(clientId: string): string | undefined {
    return this.bindings.get(clientId)?.device;
  }

  size(): number {
    return this.bindings.size;
  }

  private unbind(clientId: string, binding: Binding): void {
    this.bindings.delete(clientId);
    if (!binding.persistent) return;
    const left = (this.persistentPerDevice.get(binding.device) ?? 1) - 1;
    if (left > 0) this.persistentPerDevice.set(binding.device, left);
    else this.persistentPerDevice.delete(binding.device);
  }
}
