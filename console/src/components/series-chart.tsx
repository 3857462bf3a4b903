/** A sensor's readings with the rule's thresholds as dashed lines (uPlot). */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { t } from '../i18n';
import type { Level, SeriesAnswer } from '../types';

export interface ThresholdLine {
  level: Level;
  value: number;
}

/** 24-hour clock labels (uPlot's default is am/pm); the date when the span crosses midnight shows in the tooltip. */
const clock = (seconds: number) => {
  const d = new Date(seconds * 1000);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
};

const COLOURS: Record<Level, string> = { red: '#d32f2f', orange: '#ef6c00', yellow: '#f9a825', blue: '#1976d2' };

export function SeriesChart(props: { series: SeriesAnswer; thresholds: ThresholdLine[]; unit: string; startedAt: number }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const xs = props.series.points.map((p) => p.t / 1000);
    const ys = props.series.points.map((p) => p.v);
    const lines = props.thresholds;
    const values = [...ys, ...lines.map((l) => l.value)];
    const lo = Math.min(...values);
    const hi = Math.max(...values);
    const pad = (hi - lo) * 0.08 || 1;
    const data: uPlot.AlignedData = [xs, ys, ...lines.map(() => xs.map(() => null))];
    const plot = new uPlot(
      {
        width: el.clientWidth || 640,
        height: 260,
        scales: { x: { time: true }, y: { range: [lo - pad, hi + pad] } },
        legend: { live: false },
        axes: [{ values: (_u: uPlot, splits: number[]) => splits.map(clock) }, { label: props.unit, size: 60 }],
        series: [
          {},
          { label: t('chart.reading'), stroke: '#37474f', width: 1.5, points: { show: ys.length < 80 } },
          ...lines.map((l) => ({ label: `${t(`level.${l.level}`)} ${l.value}`, stroke: COLOURS[l.level], dash: [6, 4] })),
        ],
        hooks: {
          draw: [
            (u: uPlot) => {
              const ctx = u.ctx;
              ctx.save();
              ctx.lineWidth = 1.5 * devicePixelRatio;
              ctx.setLineDash([8 * devicePixelRatio, 5 * devicePixelRatio]);
              for (const l of lines) {
                const y = u.valToPos(l.value, 'y', true);
                ctx.strokeStyle = COLOURS[l.level];
                ctx.beginPath();
                ctx.moveTo(u.bbox.left, y);
                ctx.lineTo(u.bbox.left + u.bbox.width, y);
                ctx.stroke();
              }
              const x = u.valToPos(props.startedAt / 1000, 'x', true);
              if (x >= u.bbox.left && x <= u.bbox.left + u.bbox.width) {
                ctx.strokeStyle = '#9e9e9e';
                ctx.setLineDash([2 * devicePixelRatio, 3 * devicePixelRatio]);
                ctx.beginPath();
                ctx.moveTo(x, u.bbox.top);
                ctx.lineTo(x, u.bbox.top + u.bbox.height);
                ctx.stroke();
              }
              ctx.restore();
            },
          ],
        },
      },
      data,
      el,
    );
    const resize = () => plot.setSize({ width: el.clientWidth || 640, height: 260 });
    addEventListener('resize', resize);
    return () => {
      removeEventListener('resize', resize);
      plot.destroy();
    };
  }, [props.series, props.thresholds, props.unit, props.startedAt]);
  return <div class="chart" ref={box} data-testid="chart" />;
}
