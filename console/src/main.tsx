import { render } from 'preact';
import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { App } from './app';
import { language } from './i18n';

document.documentElement.lang = language.value;
render(<App />, document.getElementById('app')!);
