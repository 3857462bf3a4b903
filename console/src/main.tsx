import { render } from 'preact';
import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { restoreSession } from './api';
import { App } from './app';
import { language } from './i18n';
import { prefetch } from './live';

document.documentElement.lang = language.value;
// The session check and the board's lists at once, before the first frame: the board draws as soon as both are in.
void restoreSession();
prefetch();
render(<App />, document.getElementById('app')!);
