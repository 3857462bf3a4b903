/** Notes typed into forms, kept in sessionStorage so that a sign-in in between does not lose them. */
import { useState } from 'preact/hooks';

const PREFIX = 'watchpost.draft.';

export function useDraft(key: string): [string, (value: string) => void, () => void] {
  const [value, setValue] = useState(() => {
    try {
      return sessionStorage.getItem(PREFIX + key) ?? '';
    } catch {
      return '';
    }
  });
  const set = (next: string) => {
    setValue(next);
    try {
      if (next) sessionStorage.setItem(PREFIX + key, next);
      else sessionStorage.removeItem(PREFIX + key);
    } catch {
      // storage full or disabled: the draft lives in the page only
    }
  };
  return [value, set, () => set('')];
}
