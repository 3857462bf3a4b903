/** The red-alarm sound: a WebAudio beep (no audio file), unless muted; the choice kept in localStorage. */
import { Store } from './store';

const KEY = 'watchpost.muted';
export const muted = new Store<boolean>(localStorage.getItem(KEY) === '1');
let context: AudioContext | undefined;

export function setMuted(value: boolean): void {
  localStorage.setItem(KEY, value ? '1' : '0');
  muted.set(value);
  if (!value) unlock();
}

/** Browsers start audio only after a user gesture: the first click creates the context. */
export function unlock(): void {
  try {
    context ??= new AudioContext();
    if (context.state === 'suspended') void context.resume();
  } catch {
    context = undefined;
  }
}

/** Three short beeps. */
export function ring(): void {
  if (muted.value || !context || context.state !== 'running') return;
  const start = context.currentTime;
  for (let i = 0; i < 3; i++) {
    const osc = context.createOscillator();
    const gain = context.createGain();
    osc.type = 'square';
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.12, start + i * 0.35);
    gain.gain.setValueAtTime(0, start + i * 0.35 + 0.2);
    osc.connect(gain).connect(context.destination);
    osc.start(start + i * 0.35);
    osc.stop(start + i * 0.35 + 0.22);
  }
}
