/** Warning levels as in Chinese emergency practice: blue (IV) < yellow (III) < orange (II) < red (I). */
export const LEVELS = ['blue', 'yellow', 'orange', 'red'] as const;
export type Level = (typeof LEVELS)[number];

export function levelRank(level: Level): number {
  return LEVELS.indexOf(level) + 1;
}

export function isLevel(value: unknown): value is Level {
  return typeof value === 'string' && (LEVELS as readonly string[]).includes(value);
}

export const LEVEL_NAMES_ZH: Record<Level, string> = { blue: '蓝色', yellow: '黄色', orange: '橙色', red: '红色' };
