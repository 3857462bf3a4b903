/**
 * The GB/T 26875.3-2011 frame (section 6), pure: bytes -> frames and back, no I/O.
 *
 *   offset  size  field
 *   0       2     start "@@"
 *   2       2     business serial number (little-endian, as every multi-byte number)
 *   4       2     protocol version
 *   6       6     time label: second, minute, hour, day, month, year - 2000
 *   12      6     source address
 *   18      6     destination address
 *   24      2     application data length L (at most 1024)
 *   26      1     command byte
 *   27      L     application data
 *   27+L    1     checksum: sum of bytes 2 .. 26+L, mod 256
 *   28+L    2     end "##"
 */

export const START = 0x40; // '@'
export const END = 0x23; // '#'
export const HEADER_BYTES = 27;
/** Start, header fields, checksum and end: a frame is this plus its application data. */
export const FRAME_OVERHEAD = 30;
/** The standard's limit of the application data unit. */
export const MAX_APP_DATA = 1024;
export const MAX_FRAME_BYTES = FRAME_OVERHEAD + MAX_APP_DATA;

export const COMMAND = { control: 1, send: 2, confirm: 3, request: 4, response: 5, deny: 6 } as const;

/** The six bytes of a time label, as sent (not checked: a wrong calendar value is the mapping's concern). */
export interface TimeLabel {
  second: number;
  minute: number;
  hour: number;
  day: number;
  month: number;
  /** Years since 2000. */
  year: number;
}

export interface FrameHeader {
  serial: number;
  version: number;
  time: TimeLabel;
  /** 48-bit little-endian addresses, written "0x" + 12 upper-case hex digits. */
  source: string;
  destination: string;
  command: number;
}

export interface Frame extends FrameHeader {
  appData: Uint8Array;
}

export type FrameErrorCode = 'bad_length' | 'bad_end' | 'bad_checksum';

/**
 * One step of scanning a receive buffer:
 * - `frame`: a whole valid frame; the next one starts at `next`;
 * - `garbage`: `next` bytes before any start sequence, to be dropped;
 * - `bad`: a frame start whose length, end or checksum is wrong; `header` when its fields could be
 *   read (to deny it with its serial number); scanning resumes at `next`;
 * - `more`: the buffer holds the beginning of a frame; wait for more bytes.
 */
export type ScanResult =
  | { kind: 'frame'; frame: Frame; next: number }
  | { kind: 'garbage'; next: number }
  | { kind: 'bad'; code: FrameErrorCode; detail: string; header: FrameHeader; next: number }
  | { kind: 'more' };

export function addressToString(bytes: Uint8Array, offset: number): string {
  let hex = '';
  for (let i = 5; i >= 0; i--) hex += bytes[offset + i]!.toString(16).padStart(2, '0');
  return `0x${hex.toUpperCase()}`;
}

const ADDRESS = /^0x[0-9A-Fa-f]{12}$/;

export function isAddress(text: string): boolean {
  return ADDRESS.test(text);
}

/** Canonical spelling of an address: "0x" and upper-case hex. */
export function normalizeAddress(text: string): string {
  return `0x${text.slice(2).toUpperCase()}`;
}

function writeAddress(out: Uint8Array, offset: number, address: string): void {
  if (!isAddress(address)) throw new RangeError(`address must be 0x and 12 hex digits, got "${address}"`);
  for (let i = 0; i < 6; i++) out[offset + i] = parseInt(address.slice(2 + (5 - i) * 2, 4 + (5 - i) * 2), 16);
}

export function readTime(bytes: Uint8Array, offset: number): TimeLabel {
  return { second: bytes[offset]!, minute: bytes[offset + 1]!, hour: bytes[offset + 2]!, day: bytes[offset + 3]!, month: bytes[offset + 4]!, year: bytes[offset + 5]! };
}

export function writeTime(out: Uint8Array, offset: number, t: TimeLabel): void {
  out.set(
    [t.second, t.minute, t.hour, t.day, t.month, t.year].map((v) => v & 0xff),
    offset,
  );
}

function readHeader(buf: Uint8Array, at: number): FrameHeader {
  return {
    serial: buf[at + 2]! | (buf[at + 3]! << 8),
    version: buf[at + 4]! | (buf[at + 5]! << 8),
    time: readTime(buf, at + 6),
    source: addressToString(buf, at + 12),
    destination: addressToString(buf, at + 18),
    command: buf[at + 26]!,
  };
}

export function checksum(bytes: Uint8Array, from: number, to: number): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum = (sum + bytes[i]!) & 0xff;
  return sum;
}

/** Looks for the next frame in `buf` from its first byte. Never throws. */
export function scanFrame(buf: Uint8Array, maxAppData: number = MAX_APP_DATA): ScanResult {
  let start = -1;
  for (let i = 0; i + 1 < buf.length; i++) {
    if (buf[i] === START && buf[i + 1] === START) {
      start = i;
      break;
    }
  }
  if (start < 0) {
    // A lone trailing '@' may be the first half of a start sequence.
    const keep = buf.length > 0 && buf[buf.length - 1] === START ? 1 : 0;
    return buf.length - keep > 0 ? { kind: 'garbage', next: buf.length - keep } : { kind: 'more' };
  }
  if (start > 0) return { kind: 'garbage', next: start };
  if (buf.length < HEADER_BYTES) return { kind: 'more' };
  const header = readHeader(buf, 0);
  const length = buf[24]! | (buf[25]! << 8);
  if (length > maxAppData) return { kind: 'bad', code: 'bad_length', detail: `application data length ${length} is above the limit of ${maxAppData}`, header, next: 2 };
  const total = FRAME_OVERHEAD + length;
  if (buf.length < total) return { kind: 'more' };
  if (buf[28 + length] !== END || buf[29 + length] !== END) {
    return { kind: 'bad', code: 'bad_end', detail: `no "##" after ${length} bytes of application data (length wrong or frame cut)`, header, next: 2 };
  }
  const expected = checksum(buf, 2, 27 + length);
  if (buf[27 + length] !== expected) {
    return { kind: 'bad', code: 'bad_checksum', detail: `checksum is 0x${buf[27 + length]!.toString(16)}, the bytes sum to 0x${expected.toString(16)}`, header, next: total };
  }
  return { kind: 'frame', frame: { ...header, appData: buf.slice(27, 27 + length) }, next: total };
}

/** The bytes of a frame; throws RangeError on a field out of range (a programming error). */
export function encodeFrame(frame: Frame): Buffer {
  const length = frame.appData.length;
  if (length > MAX_APP_DATA) throw new RangeError(`application data of ${length} bytes is above ${MAX_APP_DATA}`);
  const out = Buffer.alloc(FRAME_OVERHEAD + length);
  out[0] = out[1] = START;
  out.writeUInt16LE(frame.serial & 0xffff, 2);
  out.writeUInt16LE(frame.version & 0xffff, 4);
  writeTime(out, 6, frame.time);
  writeAddress(out, 12, frame.source);
  writeAddress(out, 18, frame.destination);
  out.writeUInt16LE(length, 24);
  out[26] = frame.command & 0xff;
  out.set(frame.appData, 27);
  out[27 + length] = checksum(out, 2, 27 + length);
  out[28 + length] = out[29 + length] = END;
  return out;
}

/** The time label of an instant in a device's local time (UTC offset in minutes; China: +480). */
export function timeLabelAt(epochMs: number, utcOffsetMinutes: number): TimeLabel {
  const d = new Date(epochMs + utcOffsetMinutes * 60_000);
  return { second: d.getUTCSeconds(), minute: d.getUTCMinutes(), hour: d.getUTCHours(), day: d.getUTCDate(), month: d.getUTCMonth() + 1, year: d.getUTCFullYear() - 2000 };
}

/** The instant of a time label, or undefined when its fields are not a calendar time. */
export function timeLabelToEpoch(t: TimeLabel, utcOffsetMinutes: number): number | undefined {
  if (t.month < 1 || t.month > 12 || t.day < 1 || t.day > 31 || t.hour > 23 || t.minute > 59 || t.second > 59 || t.year > 99) return undefined;
  const ms = Date.UTC(2000 + t.year, t.month - 1, t.day, t.hour, t.minute, t.second);
  if (new Date(ms).getUTCDate() !== t.day) return undefined; // 31 February
  return ms - utcOffsetMinutes * 60_000;
}
