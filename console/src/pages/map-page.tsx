/** The map of the assets, refreshed as alerts change, with the assets that have no coordinates listed below. */
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api';
import { AssetMap } from '../components/asset-map';
import { ErrorMessage } from '../components/error-message';
import { LevelBadge } from '../components/level-badge';
import { t } from '../i18n';
import { changed } from '../live';
import { useStore } from '../store';
import type { Asset, Session } from '../types';

export function MapPage(props: { session: Session }) {
  const [assets, setAssets] = useState<Asset[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const lastChange = useStore(changed);
  useEffect(() => {
    const timer = setTimeout(
      () => {
        api<{ assets: Asset[] }>('GET', '/api/v1/assets').then((a) => setAssets(a.assets), setError);
      },
      assets ? 500 : 0,
    );
    return () => clearTimeout(timer);
  }, [lastChange]);
  if (!assets) return <section>{error ? <ErrorMessage error={error} /> : <div class="loading" />}</section>;
  const unplaced = assets.filter((a) => a.location === null);
  return (
    <section>
      <div class="page-head">
        <h2>{t('map.title')}</h2>
        <div class="legend">
          {(['red', 'orange', 'yellow', 'blue', null] as const).map((l) => (
            <span class={`legend-item asset-${l ?? 'none'}`}>
              <svg width="14" height="14">
                <circle cx="7" cy="7" r="6" />
              </svg>
              {l ? t(`level.${l}`) : t('level.none')}
            </span>
          ))}
        </div>
      </div>
      <ErrorMessage error={error} />
      <AssetMap assets={assets} tiles={props.session.map_tiles} attribution={props.session.map_attribution} />
      {unplaced.length > 0 && (
        <>
          <h3>{t('map.unplaced')}</h3>
          <ul class="plain">
            {unplaced.map((a) => (
              <li>
                <LevelBadge level={a.alert_level} /> {a.name} · {a.street} <span class="muted small">{a.id}</span>
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}
