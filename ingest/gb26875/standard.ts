/**
 * Meanings from GB/T 26875.3-2011 (section 8.2): status bits, analogue types, GB 18030 text.
 *
 * Status of a building fire facility system (8.2.1.1) and of a component (8.2.1.2), bit = 1:
 *   bit0 normal operation (0: test), bit1 fire alarm, bit2 fault, bit3 shielded (disabled),
 *   bit4 supervisory, bit5 started (0: stopped), bit6 feedback, bit7 delay, bit8 main power
 *   fault (component: power fault); systems only: bit9 backup power fault, bit10 bus fault,
 *   bit11 manual, bit12 configuration changed, bit13 reset.
 * Transmission device running status (8.2.1.8), 1 byte: bit0 normal monitoring (0: test), bit1
 *   fire alarm, bit2 fault, bit3 main power fault, bit4 backup power fault, bit5 channel to the
 *   monitoring centre faulty, bit6 link to the monitored facility faulty.
 */

export const STATUS_BIT = {
  normal: 0,
  fireAlarm: 1,
  fault: 2,
  shielded: 3,
  supervisory: 4,
  started: 5,
  feedback: 6,
  delay: 7,
  mainPowerFault: 8,
  backupPowerFault: 9,
  busFault: 10,
} as const;

export const DEVICE_STATUS_BIT = { normal: 0, fireAlarm: 1, fault: 2, mainPowerFault: 3, backupPowerFault: 4, channelFault: 5, linkFault: 6 } as const;

export const bit = (value: number, n: number): 0 | 1 => ((value >> n) & 1) as 0 | 1;

/**
 * Analogue types (8.2.1.3): the metric a value becomes, its unit and its resolution (the wire
 * value times `scale`). Pressures are stored in MPa whichever unit they are sent in. Types 13-127 are reserved, 128-255 user defined: such values are not stored.
 */
export const ANALOGUE_TYPES: Readonly<Record<number, { metric: string; unit: string; scale: number }>> = {
  1: { metric: 'event_count', unit: '', scale: 1 },
  2: { metric: 'level', unit: 'm', scale: 0.01 }, // height
  3: { metric: 'temperature', unit: '°C', scale: 0.1 },
  4: { metric: 'pressure', unit: 'MPa', scale: 0.1 },
  5: { metric: 'pressure', unit: 'MPa', scale: 0.0001 }, // sent in kPa (0.1 kPa), stored in MPa like type 4
  6: { metric: 'gas_lel', unit: '%LEL', scale: 0.1 },
  7: { metric: 'duration', unit: 's', scale: 1 },
  8: { metric: 'voltage', unit: 'V', scale: 0.1 },
  9: { metric: 'current', unit: 'A', scale: 0.1 },
  10: { metric: 'flow', unit: 'L/s', scale: 0.1 },
  11: { metric: 'air_volume', unit: 'm³/min', scale: 0.1 },
  12: { metric: 'wind_speed', unit: 'm/s', scale: 1 },
};

/** Rounds a scaled value to its resolution, so 0.1 * 3 is 0.3 and not 0.30000000000000004. */
export function scaled(raw: number, scale: number): number {
  const decimals = scale >= 1 ? 0 : Math.round(-Math.log10(scale));
  return Number((raw * scale).toFixed(decimals));
}

const gb18030 = new TextDecoder('gb18030');

/** A component description: GB 18030 bytes, up to the first NUL, trimmed. */
export function decodeDescription(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return gb18030.decode(end < 0 ? bytes : bytes.subarray(0, end)).trim();
}

let encodeTable: Map<string, number> | undefined;

/**
 * GB 18030 bytes of a text (Node decodes GB 18030 but has no encoder): ASCII and the two-byte
 * range, which holds every CJK character of GB 2312 and GBK; other characters become "?".
 * Cut to `max` bytes without splitting a character.
 */
export function encodeDescription(text: string, max = 31): Uint8Array {
  if (!encodeTable) {
    encodeTable = new Map();
    const pair = new Uint8Array(2);
    for (let hi = 0x81; hi <= 0xfe; hi++) {
      for (let lo = 0x40; lo <= 0xfe; lo++) {
        if (lo === 0x7f) continue;
        pair[0] = hi;
        pair[1] = lo;
        const ch = gb18030.decode(pair);
        if (ch.length === 1 && ch !== '\ufffd' && !encodeTable.has(ch)) encodeTable.set(ch, (hi << 8) | lo);
      }
    }
  }
  const out: number[] = [];
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    const bytes = code < 0x80 ? [code] : encodeTable.has(ch) ? [encodeTable.get(ch)! >> 8, encodeTable.get(ch)! & 0xff] : [0x3f];
    if (out.length + bytes.length > max) break;
    out.push(...bytes);
  }
  return Uint8Array.from(out);
}
