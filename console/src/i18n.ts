/** Translations: one file per language (lang/*.json); Chinese by default, the choice kept in localStorage. */
import en from './lang/en.json';
import zh from './lang/zh-CN.json';
import { Store } from './store';

export type Language = 'zh-CN' | 'en';
const DICTIONARIES: Record<Language, Record<string, string>> = { 'zh-CN': zh, en };
const KEY = 'watchpost.language';

function initial(): Language {
  try {
    return localStorage.getItem(KEY) === 'en' ? 'en' : 'zh-CN';
  } catch {
    return 'zh-CN';
  }
}

export const language = new Store<Language>(initial());

export function setLanguage(next: Language): void {
  try {
    localStorage.setItem(KEY, next);
  } catch {
    // private mode: the choice lasts for this page only
  }
  document.documentElement.lang = next;
  language.set(next);
}

/** The text of `key` in the current language, `{name}` replaced from vars; the key itself when missing. */
export function t(key: string, vars: Record<string, string | number> = {}): string {
  const text = DICTIONARIES[language.value][key] ?? DICTIONARIES['zh-CN'][key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name: string) => (name in vars ? String(vars[name]) : m));
}

// One formatter per language: Date#toLocaleString builds a new one per call, which a board of a thousand rows feels.
const formatters = new Map<Language, Intl.DateTimeFormat>();

export function formatTime(iso: string | number | null | undefined): string {
  if (iso === null || iso === undefined) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '—';
  let format = formatters.get(language.value);
  if (!format) {
    format = new Intl.DateTimeFormat(language.value === 'en' ? 'en-GB' : 'zh-CN', {
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hour12: false,
    });
    formatters.set(language.value, format);
  }
  return format.format(d);
}

export function formatNumber(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(Math.abs(n) >= 100 ? 1 : 2);
}
