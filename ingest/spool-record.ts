/**
 * The spool's record on disk: `u32 LE body length | u32 LE CRC-32 of (length bytes + body) |
 * body`, the body `f64 LE append time (epoch ms) | payload`. Writing, checking and reading one
 * record; the spool (spool.ts) decides where records go.
 */
import { crc32 } from 'node:zlib';

const HEADER = 8;
/** Bytes of the append time that starts a record's body. */
export const RECORD_TIME = 8;
/** Bytes a record takes beyond its payload. */
export const RECORD_OVERHEAD = HEADER + RECORD_TIME;
/** A body longer than this is a corrupt length field, not a record. */
export const MAX_RECORD_BODY = 16 * 1024 * 1024;

/** CRC-32 (zlib's) lookup table, for the few header bytes a record's checksum starts with. */
const CRC_TABLE = (() => {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  return table;
})();

/** zlib's crc32 of `buf[start, end)` continued from `crc`, without making a view for a few bytes. */
function crcOfBytes(buf: Buffer, start: number, end: number, crc: number): number {
  let c = ~crc;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/**
 * The checksum of the record at `offset`: over its length field and body (append time, then
 * the payload). The payload is passed as given (a string is checksummed as its UTF-8 bytes), so
 * writing a record makes no buffer views; the header bytes go through the table.
 */
function recordCrc(buf: Buffer, offset: number, payload: string | Uint8Array): number {
  return crc32(payload, crcOfBytes(buf, offset + HEADER, offset + HEADER + RECORD_TIME, crcOfBytes(buf, offset, offset + 4, 0)));
}

/** Appends one record for `payload` to `out` at `offset`; returns the new offset. */
export function writeRecord(out: Buffer, offset: number, payload: string | Uint8Array, payloadBytes: number, appendedAt: number): number {
  const bodyLength = RECORD_TIME + payloadBytes;
  out.writeUInt32LE(bodyLength, offset);
  out.writeDoubleLE(appendedAt, offset + HEADER);
  if (typeof payload === 'string') out.write(payload, offset + HEADER + RECORD_TIME, payloadBytes, 'utf8');
  else out.set(payload, offset + HEADER + RECORD_TIME);
  out.writeUInt32LE(recordCrc(out, offset, payload), offset + 4);
  return offset + HEADER + bodyLength;
}

export type ParsedRecord = { kind: 'record'; length: number; appendedAt: number; payload: Buffer } | { kind: 'incomplete'; need: number } | { kind: 'corrupt'; why: string };

/** The record at `pos` of `buf`, if whole and intact. */
export function parseRecord(buf: Buffer, pos: number): ParsedRecord {
  if (buf.length - pos < HEADER) return { kind: 'incomplete', need: HEADER };
  const bodyLength = buf.readUInt32LE(pos);
  if (bodyLength < RECORD_TIME || bodyLength > MAX_RECORD_BODY) return { kind: 'corrupt', why: `impossible record length ${bodyLength}` };
  const end = pos + HEADER + bodyLength;
  if (end > buf.length) return { kind: 'incomplete', need: HEADER + bodyLength };
  const payload = buf.subarray(pos + HEADER + RECORD_TIME, end);
  if (recordCrc(buf, pos, payload) !== buf.readUInt32LE(pos + 4)) return { kind: 'corrupt', why: 'checksum mismatch' };
  return { kind: 'record', length: HEADER + bodyLength, appendedAt: buf.readDoubleLE(pos + HEADER), payload };
}

/**
 * The record at `pos` of bytes this process wrote and still holds (never read from disk), so
 * neither its length nor its checksum is checked.
 */
export function writtenRecord(buf: Buffer, pos: number): { length: number; appendedAt: number; payload: Buffer } {
  const length = HEADER + buf.readUInt32LE(pos);
  return { length, appendedAt: buf.readDoubleLE(pos + HEADER), payload: buf.subarray(pos + HEADER + RECORD_TIME, pos + length) };
}
