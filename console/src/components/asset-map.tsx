/**
 * The assets on their coordinates, coloured by their highest open level. With a tile URL template
 * (console.map_tiles) the district's tiles are drawn beneath in Web Mercator; without one the
 * assets are drawn on a plain projection with their names and their streets' names.
 */
import { t } from '../i18n';
import type { Asset } from '../types';

const W = 960;
const H = 600;
const TILE = 256;
const MARGIN = 60;

type Placed = Asset & { location: [number, number]; x: number; y: number };

const mercator = (lon: number, lat: number, zoom: number) => {
  const scale = TILE * 2 ** zoom;
  const s = Math.sin((Math.max(-85, Math.min(85, lat)) * Math.PI) / 180);
  return { x: ((lon + 180) / 360) * scale, y: (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)) * scale };
};

/** Metres per pixel of the plain projection, for its scale bar. */
let plainMetresPerPixel = 0;

function plain(assets: Array<Asset & { location: [number, number] }>): Placed[] {
  const lons = assets.map((a) => a.location[0]);
  const lats = assets.map((a) => a.location[1]);
  const [lon0, lon1, lat0, lat1] = [Math.min(...lons), Math.max(...lons), Math.min(...lats), Math.max(...lats)];
  const k = Math.cos((((lat0 + lat1) / 2) * Math.PI) / 180);
  const spanX = Math.max((lon1 - lon0) * k, 1e-4);
  const spanY = Math.max(lat1 - lat0, 1e-4);
  const scale = Math.min((W - 2 * MARGIN) / spanX, (H - 2 * MARGIN) / spanY);
  const cx = (lon0 + lon1) / 2;
  const cy = (lat0 + lat1) / 2;
  plainMetresPerPixel = 111_320 / scale;
  return assets.map((a) => ({ ...a, x: W / 2 + (a.location[0] - cx) * k * scale, y: H / 2 - (a.location[1] - cy) * scale }));
}

function tiled(assets: Array<Asset & { location: [number, number] }>) {
  let zoom = 18;
  for (; zoom > 1; zoom--) {
    const pts = assets.map((a) => mercator(a.location[0], a.location[1], zoom));
    const w = Math.max(...pts.map((p) => p.x)) - Math.min(...pts.map((p) => p.x));
    const h = Math.max(...pts.map((p) => p.y)) - Math.min(...pts.map((p) => p.y));
    if (w <= W - 2 * MARGIN && h <= H - 2 * MARGIN) break;
  }
  const pts = assets.map((a) => mercator(a.location[0], a.location[1], zoom));
  const cx = (Math.max(...pts.map((p) => p.x)) + Math.min(...pts.map((p) => p.x))) / 2;
  const cy = (Math.max(...pts.map((p) => p.y)) + Math.min(...pts.map((p) => p.y))) / 2;
  const left = cx - W / 2;
  const top = cy - H / 2;
  const placed = assets.map((a, i) => ({ ...a, x: pts[i]!.x - left, y: pts[i]!.y - top }));
  const tiles: Array<{ x: number; y: number; px: number; py: number }> = [];
  const max = 2 ** zoom;
  for (let tx = Math.floor(left / TILE); tx <= Math.floor((left + W) / TILE); tx++) {
    for (let ty = Math.floor(top / TILE); ty <= Math.floor((top + H) / TILE); ty++) {
      if (ty < 0 || ty >= max) continue;
      tiles.push({ x: ((tx % max) + max) % max, y: ty, px: tx * TILE - left, py: ty * TILE - top });
    }
  }
  return { zoom, placed, tiles };
}

const tileUrl = (template: string, z: number, x: number, y: number) =>
  template
    .replace('{z}', String(z))
    .replace('{x}', String(x))
    .replace('{y}', String(y))
    .replace('{s}', 'abc'[(x + y) % 3]!);

export function AssetMap(props: { assets: Asset[]; tiles: string | null; attribution: string | null }) {
  const located = props.assets.filter((a): a is Asset & { location: [number, number] } => a.location !== null);
  if (located.length === 0) return <p class="muted">{t('map.no_locations')}</p>;
  const layout = props.tiles ? tiled(located) : { zoom: 0, placed: plain(located), tiles: [] };
  const streets = new Map<string, Placed[]>();
  for (const a of layout.placed) streets.set(a.street, [...(streets.get(a.street) ?? []), a]);
  // Highest level drawn last, on top.
  const order = ['none', 'blue', 'yellow', 'orange', 'red'];
  const placed = [...layout.placed].sort((a, b) => order.indexOf(a.alert_level ?? 'none') - order.indexOf(b.alert_level ?? 'none'));
  return (
    <figure class="map">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={t('nav.map')} data-testid="map" data-tiles={props.tiles ? 'yes' : 'no'}>
        <rect width={W} height={H} class="map-bg" />
        {layout.tiles.map((tile) => (
          <image href={tileUrl(props.tiles!, layout.zoom, tile.x, tile.y)} x={tile.px} y={tile.py} width={TILE} height={TILE} class="tile" />
        ))}
        {!props.tiles && <Graticule />}
        {!props.tiles && <ScaleBar metresPerPixel={plainMetresPerPixel} />}
        {!props.tiles &&
          [...streets].map(([street, members]) => {
            const x = members.reduce((n, a) => n + a.x, 0) / members.length;
            const y = Math.min(...members.map((a) => a.y));
            return (
              <text x={x} y={Math.max(20, y - 22)} class="street-label" text-anchor="middle">
                {street}
              </text>
            );
          })}
        {placed.map((a) => (
          <g class={`asset asset-${a.alert_level ?? 'none'}`} transform={`translate(${a.x.toFixed(1)},${a.y.toFixed(1)})`} data-testid="map-asset" data-asset-id={a.id}>
            {a.alert_level === 'red' && <circle r="16" class="pulse" />}
            <circle r="8" />
            <text x="12" y="4" class="asset-label">
              {a.name}
              {a.open_alerts > 0 ? ` (${a.open_alerts})` : ''}
            </text>
            <title>{`${a.name} · ${a.street} · ${a.id}`}</title>
          </g>
        ))}
      </svg>
      {props.tiles && props.attribution ? <figcaption class="muted small">{props.attribution}</figcaption> : null}
    </figure>
  );
}

function Graticule() {
  const lines = [];
  for (let x = 0; x <= W; x += 80) lines.push(<line x1={x} y1={0} x2={x} y2={H} />);
  for (let y = 0; y <= H; y += 80) lines.push(<line x1={0} y1={y} x2={W} y2={y} />);
  return <g class="graticule">{lines}</g>;
}

/** A scale bar of a round length, about a fifth of the map's width. */
function ScaleBar(props: { metresPerPixel: number }) {
  if (!(props.metresPerPixel > 0)) return null;
  const target = (W / 5) * props.metresPerPixel;
  const step = 10 ** Math.floor(Math.log10(target));
  const metres = [5, 2, 1].map((m) => m * step).find((m) => m <= target) ?? step;
  const px = metres / props.metresPerPixel;
  const label = metres >= 1000 ? `${metres / 1000} km` : `${metres} m`;
  return (
    <g class="scale-bar" transform={`translate(${W - px - 24},${H - 24})`}>
      <path d={`M0,-6 V0 H${px.toFixed(1)} V-6`} />
      <text x={px / 2} y={-10} text-anchor="middle">
        {label}
      </text>
    </g>
  );
}
